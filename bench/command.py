"""The `bench` command: `synthgate bench` and `python -m bench` are this click command.

    synthgate bench [--quick] [--json] [--cases mst,aim,...] [-o results.json] [--markdown results.md]

Imports the harness only when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and exit code 2, as every synthgate command reports a user's mistake."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small inputs (about a minute or two): proves the harness works.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of tables.")
@click.option(
    "--cases",
    default=None,
    help="Comma-separated cases, by name or number: 1 mst, 2 aim, 3 service, 4 report, "
    "5 throughput, 6 scale, 7 methods, 8 engine, 9 synth_process, 10 estimates, 11 aim_scale, 12 evaluate (default: all).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write the results as JSON to this file."
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the results as markdown tables to this file.",
)
@click.option("--epsilon", type=float, default=1.0, show_default=True, help="Epsilon of the DP cases.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of data sampling and methods.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
def bench(
    quick: bool,
    as_json: bool,
    cases: str | None,
    output: str | None,
    markdown: str | None,
    epsilon: float,
    seed: int,
    quiet: bool,
) -> None:
    """Measure wall time, CPU time and peak memory per stage, with ratios to the bare libraries."""
    from bench import render_markdown, render_text, run_bench

    names = [c for c in (cases or "").split(",") if c.strip()] or None
    if not epsilon > 0:
        fail("--epsilon must be positive")
    try:
        results = run_bench(
            quick=quick,
            cases=names,
            epsilon=epsilon,
            seed=seed,
            log=(lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True)),
        )
    except ValueError as exc:
        fail(str(exc))
    if output:
        Path(output).write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    if markdown:
        Path(markdown).write_text(render_markdown(results), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(results, indent=1, default=str))
    else:
        click.echo(render_text(results), nl=False)
    if not all(c["ok"] for c in results["cases"]):
        raise SystemExit(1)

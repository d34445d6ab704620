"""`synthgate evaluate`: the fidelity, utility and privacy-risk report, offline.

    synthgate evaluate REAL.csv SYNTH.csv --schema S [--target T] [--holdout REAL_HOLDOUT.csv]
                       -o report.html [--json report.json] [--include-internal | --public-only]
                       [--policy POLICY.yaml] [--seed N] [--holdout-fraction F] [--sections ...]

A tool for the data owner, who holds the real rows anyway: the internal
sections (computed on real rows) are in the output by default. `--public-only`
writes what an analyst's bundle would carry instead.

REAL is the table the synthesizer was trained on. Give the rows it never saw
with `--holdout`; without it REAL is split here (80/20, seeded), which is only
sound when the synthesizer was trained on that same training part: if it saw
all of REAL, the privacy-risk figures understate the risk and TSTR is
optimistic, and the report says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from webapp.cli._common import fail, handle_errors, no_huge_pages

NO_HOLDOUT_NOTE = (
    "No holdout was given: REAL was split here into training and holdout rows. If the synthesizer was "
    "trained on all of REAL, the holdout rows were seen in training: the privacy-risk figures then understate "
    "the risk and TSTR is optimistic. Pass the rows the synthesizer never saw with --holdout."
)


def _progress(quiet: bool):
    state = {"last": -1}

    def report(fraction: float, message: str) -> None:
        pct = int(round(100 * fraction))
        if quiet or pct // 10 == state["last"] // 10:
            return
        state["last"] = pct
        click.echo(f"[evaluate {pct:3d}%] {message}", err=True)

    return report


def _read(path: str, schema, what: str, *, strict: bool):
    from privacy.errors import SchemaError
    from privacy.schema import conform_table, read_table

    table = read_table(path, categories=True)  # text columns as categoricals: conform matches each value once
    missing = [n for n in schema.synthesized_columns if n not in table.columns]
    if missing:
        raise SchemaError(f"{what} {Path(path).name} lacks the modelled column(s) {missing}", field="file")
    # declared text domains stay categoricals of the declared values: the report's own encoding
    # (`evaluation._tables.with_declared_categories`) then keeps them as they are, and the split only
    # selects rows; nothing here writes a table
    conformed, _ = conform_table(table, schema, strict=strict, categories=True)
    return conformed


def register(cli: click.Group) -> None:
    @cli.command("evaluate")
    @click.argument("real", type=click.Path(exists=True, dir_okay=False))
    @click.argument("synthetic", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--schema",
        "schema_path",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="The public schema (YAML or JSON).",
    )
    @click.option("--target", default=None, help="Target column for TSTR (default: the schema's target).")
    @click.option(
        "--holdout",
        "holdout_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Real rows the synthesizer never saw. Without it, REAL is split here.",
    )
    @click.option(
        "-o", "--output", "html_path", type=click.Path(dir_okay=False), default=None, help="Write the HTML report here."
    )
    @click.option(
        "--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the JSON report here."
    )
    @click.option(
        "--include-internal/--public-only",
        default=True,
        show_default=True,
        help="Include the sections computed on real rows (on by default: this is the data owner's tool).",
    )
    @click.option(
        "--policy",
        "policy_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Dataset policy YAML whose thresholds colour the summary (default: the policy defaults).",
    )
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and of every sample.")
    @click.option(
        "--holdout-fraction",
        type=float,
        default=0.2,
        show_default=True,
        help="Share of REAL held out when --holdout is not given.",
    )
    @click.option(
        "--sections",
        default="fidelity,utility,privacy,plots",
        show_default=True,
        help="Comma-separated sections to compute.",
    )
    @click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
    @handle_errors
    def evaluate(
        real: str,
        synthetic: str,
        schema_path: str,
        target: str | None,
        holdout_path: str | None,
        html_path: str | None,
        json_path: str | None,
        include_internal: bool,
        policy_path: str | None,
        seed: int,
        holdout_fraction: float,
        sections: str,
        quiet: bool,
    ) -> None:
        """Report how close SYNTHETIC is to REAL, how useful and how exposed."""
        from evaluation import SECTIONS, EvaluationLimits, build_report, split_holdout
        from privacy.policy import load_policy
        from privacy.schema import load_schema

        if html_path is None and json_path is None:
            fail("give -o report.html and/or --json report.json")
        include = {s.strip() for s in sections.split(",") if s.strip()}
        unknown = include - set(SECTIONS)
        if unknown:
            fail(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
        schema = load_schema(Path(schema_path))
        if target is not None and (target not in schema.columns or schema.columns[target].is_dropped):
            fail(f"--target '{target}' is not a modelled column of the schema")
        policy = load_policy(Path(policy_path) if policy_path else None)
        no_huge_pages()  # 1,000,000 rows: about 0.5 s less CPU
        real_df = _read(real, schema, "REAL", strict=True)
        synthetic_df = _read(synthetic, schema, "SYNTH", strict=False)
        notes: list[str] = []
        if holdout_path is not None:
            train, holdout = real_df, _read(holdout_path, schema, "HOLDOUT", strict=True)
        else:
            train, holdout, _ = split_holdout(real_df, schema, target=target, holdout=holdout_fraction, seed=seed)
            notes.append(NO_HOLDOUT_NOTE)
            if not quiet:
                click.echo("warning: " + NO_HOLDOUT_NOTE, err=True)
        thresholds = {
            k: getattr(policy, k)
            for k in ("min_fidelity", "min_utility_ratio", "max_membership_auc", "max_exact_match_rate", "warn_margin")
        }
        report = build_report(
            train,
            holdout,
            synthetic_df,
            schema,
            target,
            thresholds=thresholds,
            seed=seed,
            progress=_progress(quiet),
            include=include,
            # the utility section on a second thread (evaluation/lanes.py): a fifth less wall time on
            # 1,000,000 rows on two cores, the same CPU and the same report
            limits=EvaluationLimits(parallel_sections=True),
        )
        for key in ("utility", "privacy"):
            if key in report.sections:
                report.sections[key].notes.extend(notes)
        if html_path is not None:
            Path(html_path).write_text(report.to_html(include_internal), encoding="utf-8")
        if json_path is not None:
            Path(json_path).write_text(json.dumps(report.to_dict(include_internal), indent=2), encoding="utf-8")
        summary = report.summary if include_internal else report.public_summary
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items() if v is not None}
        click.echo(
            json.dumps(
                {
                    "overall": report.overall_status if include_internal else "withheld",
                    "audience": "internal" if include_internal else "public",
                    **shown,
                }
            )
        )
        for path in (html_path, json_path):
            if path:
                click.echo(f"wrote {path}", err=True)
        sys.stdout.flush()

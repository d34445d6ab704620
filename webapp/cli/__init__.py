"""The `synthgate` command.

Server commands (serve, worker, db, users, demo) run on the service's machine;
client commands (datasets, releases, ledger) talk to the JSON API with a token;
offline commands (schema, synth, evaluate, bench) run the pure libraries on
local files. Each group lives in its own module, imported when the CLI starts;
those modules import heavy libraries only inside their commands, so that
`synthgate synth --method mst` never loads torch, JAX or SDV.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import click

from webapp.cli._common import EXIT_CODES_HELP, SynthgateGroup, end_quickly, started_by_main

COMMAND_MODULES = (
    "webapp.cli.server",
    "webapp.cli.client",
    "webapp.cli.bundles",
    "webapp.cli.erasure",
    "webapp.cli.estimate",
    "webapp.cli.offline",
    "webapp.cli.evaluate",
    "webapp.cli.bench",
)


def package_version() -> str:
    """The installed distribution's version; from pyproject.toml when run from a source tree that is not installed."""
    from importlib import metadata

    try:
        return metadata.version("synthgate")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        import tomllib

        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"


def _print_version(ctx: click.Context) -> None:
    """`--version`: the version is looked up only when asked for (its package metadata costs every other
    command's start up to 20 ms)."""
    if not ctx.resilient_parsing:
        click.echo(f"synthgate {package_version()}")
        ctx.exit()


@click.group(cls=SynthgateGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show the version and exit.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--url",
    default=None,
    help="Service URL for the client commands (also accepted after them; default $SYNTHGATE_URL or "
    "http://127.0.0.1:8000).",
)
@click.option("--token", default=None, help="API token for the client commands (default $SYNTHGATE_TOKEN).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, url: str | None, token: str | None) -> None:
    """synthgate: privacy-first data releases."""
    ctx.obj = {"url": url, "token": token}
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command group not built yet
            raise
        module.register(cli)


_register_all()


def main() -> None:
    started_by_main()
    try:
        cli(prog_name="synthgate")
    except SystemExit as exc:
        end_quickly(exc.code)
        raise

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

import click

COMMAND_MODULES = (
    "webapp.cli.server",
    "webapp.cli.client",
    "webapp.cli.erasure",
    "webapp.cli.offline",
    "webapp.cli.evaluate",
    "webapp.cli.bench",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """synthgate: privacy-first data releases."""
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
    cli(prog_name="synthgate")

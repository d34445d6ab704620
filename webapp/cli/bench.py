"""`synthgate bench`: the benchmark harness (bench/), from the command line.

    synthgate bench [--quick] [--json] [--cases mst,aim,...] [-o results.json] [--markdown results.md]

The command itself lives in bench.command (so that `python -m bench` needs no
part of webapp); it imports the harness only when it runs.
"""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    from bench.command import bench

    cli.add_command(bench, "bench")

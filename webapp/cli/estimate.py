"""`synthgate releases estimate`: the time estimate of a release before it is requested (core/estimates.py).

Registered after webapp/cli/client.py, on its `releases` group; `releases request` prints the same
estimate (`_common.estimate_line`) from the release it created.
"""

from __future__ import annotations

from typing import Any

import click

from webapp.cli._common import estimate_line, handle_errors

__all__ = ["register"]


def register(cli: click.Group) -> None:
    releases = cli.commands.get("releases")
    if not isinstance(releases, click.Group):
        return
    from webapp.cli.client import _client, _number_arg, _parse_options, connection_options

    @releases.command("estimate")
    @connection_options
    @click.argument("dataset")
    @click.option("--method", required=True, help="e.g. mst, aim, mwem, dpctgan (see `synthgate methods`).")
    @click.option("--epsilon", default=None)
    @click.option("--delta", default=None)
    @click.option("--rows", type=int, default=None, help="Rows asked for (default: the public row count).")
    @click.option("--option", "options", multiple=True, help="key=value method option (repeatable).")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_estimate(
        ctx: click.Context,
        dataset: str,
        method: str,
        epsilon: str | None,
        delta: str | None,
        rows: int | None,
        options: tuple[str, ...],
        as_json: bool,
    ) -> None:
        """How long a release of DATASET would take, from public facts only, and whether the dataset's
        policy accepts it; over the limit, the option changes that would bring it under."""
        import json

        body: dict[str, Any] = {"method": method, "options": _parse_options(options)}
        if epsilon is not None:
            body["epsilon"] = _number_arg(epsilon, "epsilon")
        if delta is not None:
            body["delta"] = _number_arg(delta, "delta")
        if rows is not None:
            body["rows"] = rows
        out = _client(ctx).post(f"/datasets/{dataset}/estimate", json=body)
        if as_json:
            click.echo(json.dumps(out, indent=2, default=str))
            return
        est = out["estimate"]
        click.echo(f"{method} on {dataset}: " + estimate_line(est))
        if est.get("suggestions"):
            click.echo("under the limit with: " + ", ".join(est["suggestions"]))
        click.echo(f"basis: {est['basis']}")

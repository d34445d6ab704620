"""`synthgate datasets erase-raw`: erase a dataset's raw data through the API (core/erasure.py).

Registered after webapp/cli/client.py, on its `datasets` group; --url and --token go anywhere, as there."""

from __future__ import annotations

import click

from webapp.cli._common import handle_errors
from webapp.cli.client import _client, connection_options


def register(cli: click.Group) -> None:
    datasets = cli.commands.get("datasets")
    if not isinstance(datasets, click.Group):
        return

    @datasets.command("erase-raw")
    @connection_options
    @click.argument("dataset")
    @click.option("--reason", required=True, help="Why (the erasure request it answers); kept in the audit log.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_erase_raw(ctx: click.Context, dataset: str, reason: str, yes: bool, as_json: bool) -> None:
        """Erase the raw data of DATASET (steward or admin): the uploaded table and every unreleased file
        derived from it. The ledger, the audit trail and approved releases stay. Cannot be undone."""
        import json

        if not yes:
            click.confirm(
                f"Erase the raw data of {dataset}? Releases that read its rows will no longer be possible",
                abort=True,
            )
        out = _client(ctx).post(f"/datasets/{dataset}/erase-raw", json={"reason": reason})
        if as_json:
            click.echo(json.dumps(out, indent=2, default=str))
            return
        done = out["erasure"]
        stopped = [str(c["id"]) for c in done["cancelled_releases"]]
        click.echo(
            f"raw data of {done['dataset']} erased at {done['raw_erased_at']} by {done['raw_erased_by']}"
            + (f"; releases stopped: {', '.join(stopped)}" if stopped else "")
        )

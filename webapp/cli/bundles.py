"""`synthgate bundle verify`: check a release bundle's signature and hashes, and its audit head.

Exit 0 if the bundle verifies, 1 if it fails verification; errors use the codes of webapp/cli/_common.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from webapp.cli._common import EXIT_FAILED, EXIT_OK, fail, handle_errors
from webapp.cli.client import ApiClient


def register(cli: click.Group) -> None:
    @cli.group()
    def bundle() -> None:
        """Release bundles."""

    @bundle.command("verify")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--public-key",
        "public_key",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="The server's public key (PEM).",
    )
    @click.option("--url", envvar="SYNTHGATE_URL", default=None, help="Fetch the server's public key from here.")
    @click.option(
        "--data-dir",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Read the key from a local server's data directory (never creates one).",
    )
    @click.option(
        "--check-audit",
        is_flag=True,
        help="Also check the live audit log (--url, --token) still holds the head this bundle recorded.",
    )
    @click.option("--token", envvar="SYNTHGATE_TOKEN", default=None, help="API token, for --check-audit.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def bundle_verify(
        ctx: click.Context,
        file: str,
        public_key: str | None,
        url: str | None,
        data_dir: str | None,
        check_audit: bool,
        token: str | None,
        as_json: bool,
    ) -> None:
        """Check FILE.zip: signature, every SHA-256, no file added or removed. Exit 1 if it fails verification.

        The key comes from --public-key, --url or --data-dir; verification never writes a key.
        """
        from core.bundle import stored_public_key_pem
        from core.bundle_verify import verify_bundle

        given = ctx.obj if isinstance(ctx.obj, dict) else {}  # `synthgate --url U --token T bundle verify ...`
        url, token = url or given.get("url"), token or given.get("token")
        if public_key:
            pem = Path(public_key).read_text()
        elif data_dir:
            pem = stored_public_key_pem(data_dir)
        elif url:
            pem = ApiClient(url, None).get("/signing-key")["public_key_pem"]
        else:
            fail(
                "say whose signature to check: --public-key FILE (the server's PEM, from GET "
                "/api/v1/signing-key), --url URL (fetch it from the service; or set SYNTHGATE_URL) "
                "or --data-dir DIR (the server's own data directory)"
            )
        if check_audit and not (url and token):
            fail(
                "--check-audit compares the bundle with the live audit log: pass --url and --token "
                "(or set SYNTHGATE_URL and SYNTHGATE_TOKEN)"
            )
        check = verify_bundle(file, pem)
        audit_result = None
        if check_audit and check.ok:
            assert url is not None
            audit_result = _check_bundle_audit_head(ApiClient(url, token), check.manifest)
            if not audit_result["ok"]:
                check.ok = False
                check.problems.append(audit_result["message"])
        if as_json:
            out = check.to_dict()
            if audit_result is not None:
                out["audit"] = audit_result
            click.echo(json.dumps(out))
        elif check.ok:
            click.echo(f"bundle OK: signature valid, {len(check.manifest.get('files', {}))} files match their hashes")
            if audit_result is not None:
                click.echo(audit_result["message"])
        else:
            click.echo("bundle FAILED verification:", err=True)
            for p in check.problems:
                click.echo(f"  - {p}", err=True)
        sys.exit(EXIT_OK if check.ok else EXIT_FAILED)


def _check_bundle_audit_head(client: ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Compare the audit head a bundle's signed manifest recorded with the live log's event at that position."""
    head = manifest.get("audit_head")
    if not isinstance(head, dict) or not isinstance(head.get("count"), int):
        return {
            "ok": False,
            "message": "the bundle records no audit head (it was built before bundles carried "
            "one), so the live audit log cannot be checked against it",
        }
    live = client.get(f"/audit/position/{head['count']}")
    out = {
        "bundle_count": head["count"],
        "bundle_hash": head.get("hash"),
        "live_count": live["count"],
        "live_hash": live.get("hash"),
    }
    if live["count"] < head["count"]:
        return {
            **out,
            "ok": False,
            "problem": "truncated",
            "message": f"the audit log was TRUNCATED: this bundle was approved when the log held "
            f"{head['count']} events, and it now holds {live['count']}",
        }
    if live.get("hash") != head.get("hash"):
        return {
            **out,
            "ok": False,
            "problem": "rewritten",
            "message": f"the audit log was REWRITTEN: its event at position {head['count']} no longer has "
            "the hash this bundle recorded at its approval",
        }
    return {
        **out,
        "ok": True,
        "problem": None,
        "message": f"audit log OK: it still holds the {head['count']} events this bundle was approved "
        f"after, unchanged (now {live['count']} events)",
    }

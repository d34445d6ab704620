"""Client commands: talk to a running service through its JSON API.

--url / SYNTHGATE_URL and --token / SYNTHGATE_TOKEN say where and who; --url and --token are
accepted before the command group (`synthgate --url U releases list`), after it
(`synthgate releases --url U list`) or after the command (`synthgate releases list --url U`), the
last one given winning. Every client command takes --json: one JSON document on stdout, and
errors as a JSON object on stderr (exit codes in webapp/cli/_common.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from webapp.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, ApiError, estimate_line, fail, handle_errors

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout: float = 120.0) -> None:
        import requests

        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        try:
            resp = self.session.request(method, f"{self.url}/api/v1{path}", timeout=self.timeout, **kwargs)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            fail(f"the service URL {self.url!r} (--url or SYNTHGATE_URL) is not a URL such as {DEFAULT_URL}")
        except requests.ConnectionError:
            fail(
                f"cannot reach synthgate at {self.url}: is it running? (set --url or SYNTHGATE_URL)",
                EXIT_UNAVAILABLE,
                "unreachable",
            )
        except requests.Timeout:
            fail(f"synthgate at {self.url} did not answer within {self.timeout:g} s", EXIT_UNAVAILABLE, "timeout")
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_error", "message": resp.text[:300] or resp.reason}
            raise ApiError(resp.status_code, err.get("code", "error"), err.get("message", ""), err.get("field"))
        if resp.headers.get("Content-Type", "").startswith("application/json"):
            return resp.json()
        return resp

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)


def _keep_connection(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Remember --url/--token wherever on the command line they were given (the later one wins)."""
    if value is not None and param.name:
        ctx.ensure_object(dict)[param.name] = value
    return value


def connection_options(fn: Any) -> Any:
    """--url and --token, on the client groups and on each client command."""
    fn = click.option(
        "--token", default=None, expose_value=False, callback=_keep_connection, help="API token [$SYNTHGATE_TOKEN]."
    )(fn)
    return click.option(
        "--url",
        default=None,
        expose_value=False,
        callback=_keep_connection,
        help=f"Service URL [$SYNTHGATE_URL, else {DEFAULT_URL}].",
    )(fn)


def _connection(ctx: click.Context) -> tuple[str, str | None]:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    url = obj.get("url") or os.environ.get("SYNTHGATE_URL") or DEFAULT_URL
    token = obj.get("token") or os.environ.get("SYNTHGATE_TOKEN") or None
    return url, token


def _client(ctx: click.Context) -> ApiClient:
    return ApiClient(*_connection(ctx))


def _echo(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


def _number_arg(text: str | None, name: str) -> float | int | None:
    """Parse a CLI number strictly; the API gets a JSON number (or the error says what to change)."""
    if text is None:
        return None
    from privacy.budget import parse_number

    value = parse_number(text, name)
    as_float = float(value)
    if not math.isfinite(as_float):
        fail(f"{name} must be a finite number, got {text!r}")
    return int(value) if value.denominator == 1 else as_float


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"--option takes key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _attach_spec(options: dict[str, Any], spec_path: str | None) -> None:
    """Put a local spec file's content in the options: the server never reads paths.

    `--spec FILE`, or `--option spec=FILE` naming a file on this machine, sends the
    file's text; the server validates and size-limits it.
    """
    if spec_path is None:
        value = options.get("spec")
        if isinstance(value, str) and "\n" not in value and Path(value).expanduser().is_file():
            spec_path = str(Path(value).expanduser())
    if spec_path is not None:
        options["spec"] = Path(spec_path).read_text(encoding="utf-8")


def _release_line(r: dict[str, Any]) -> str:
    pct = f"{round(100 * (r.get('progress') or 0))}%"
    return (
        f"release {r['id']}  {r['status']:<18} {pct:>4}  {r['method']} on {r['dataset']['name']}  "
        f"epsilon {r['epsilon']} delta {r['delta']}  stage {r.get('stage') or '-'}"
    )


def register(cli: click.Group) -> None:
    # ----------------------------------------------------------------------------------- datasets
    @cli.group()
    @connection_options
    def datasets() -> None:
        """Register and inspect datasets."""

    @datasets.command("register")
    @connection_options
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", required=True)
    @click.option(
        "--schema",
        "schema_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Public schema (YAML/JSON). Without it a schema is proposed and must be confirmed.",
    )
    @click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False), default=None)
    @click.option("--epsilon-budget", default=None)
    @click.option("--delta-budget", default=None)
    @click.option("--description", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_register(
        ctx: click.Context,
        file: str,
        name: str,
        schema_path: str | None,
        policy_path: str | None,
        epsilon_budget: str | None,
        delta_budget: str | None,
        description: str | None,
        as_json: bool,
    ) -> None:
        """Upload FILE (CSV or Parquet) as a new dataset."""
        for text, label in ((epsilon_budget, "epsilon_budget"), (delta_budget, "delta_budget")):
            if text is not None:
                _number_arg(text, label)
        data = {"name": name}
        if epsilon_budget is not None:
            data["epsilon_budget"] = epsilon_budget
        if delta_budget is not None:
            data["delta_budget"] = delta_budget
        if description:
            data["description"] = description
        if schema_path:
            data["schema"] = Path(schema_path).read_text(encoding="utf-8")
        if policy_path:
            data["policy"] = Path(policy_path).read_text(encoding="utf-8")
        with open(file, "rb") as fh:
            out = _client(ctx).post("/datasets", data=data, files={"file": (Path(file).name, fh)})
        ds = out["dataset"]
        lines = [
            f"registered dataset {ds['name']} (id {ds['id']}), budget epsilon {ds['budget']['epsilon']}, "
            f"delta {ds['budget']['delta']}"
        ]
        if not ds["schema_confirmed"]:
            lines.append("the schema was PROPOSED from the data: review it and confirm it before any release")
        for issue in out.get("issues", []):
            lines.append(f"  {issue['severity']}: {issue['message']}")
        _echo(out, as_json, "\n".join(lines))

    @datasets.command("list")
    @connection_options
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_list(ctx: click.Context, as_json: bool) -> None:
        out = _client(ctx).get("/datasets")
        _echo(out, as_json, "\n".join(f"{d['id']:>4}  {d['name']}" for d in out["datasets"]) or "no datasets")

    @datasets.command("show")
    @connection_options
    @click.argument("dataset")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_show(ctx: click.Context, dataset: str, as_json: bool) -> None:
        out = _client(ctx).get(f"/datasets/{dataset}")
        _echo(out, True)  # the dataset view is JSON with or without --json

    @datasets.command("confirm-schema")
    @connection_options
    @click.argument("dataset")
    @click.argument("schema_file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_confirm(ctx: click.Context, dataset: str, schema_file: str, as_json: bool) -> None:
        """Confirm the public schema of DATASET (YAML/JSON file)."""
        out = _client(ctx).request(
            "PUT", f"/datasets/{dataset}/schema", json={"schema": Path(schema_file).read_text(encoding="utf-8")}
        )
        _echo(out, as_json, f"schema of {out['dataset']['name']} confirmed")

    @datasets.command("policy")
    @connection_options
    @click.argument("dataset")
    @click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False), default=None)
    @click.option("--epsilon-budget", default=None)
    @click.option("--delta-budget", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_policy(
        ctx: click.Context,
        dataset: str,
        policy_path: str | None,
        epsilon_budget: str | None,
        delta_budget: str | None,
        as_json: bool,
    ) -> None:
        """Change a dataset's policy or budget (steward)."""
        body: dict[str, Any] = {}
        if policy_path:
            body["policy"] = Path(policy_path).read_text(encoding="utf-8")
        if epsilon_budget is not None:
            body["epsilon_budget"] = _number_arg(epsilon_budget, "epsilon_budget")
        if delta_budget is not None:
            body["delta_budget"] = _number_arg(delta_budget, "delta_budget")
        out = _client(ctx).request("PUT", f"/datasets/{dataset}/policy", json=body)
        _echo(out, as_json, out["dataset"]["ledger"]["guarantee"])

    @datasets.command("grant")
    @connection_options
    @click.argument("dataset")
    @click.argument("user")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_grant(ctx: click.Context, dataset: str, user: str, as_json: bool) -> None:
        """Let USER (an analyst) see DATASET and request releases of it."""
        out = _client(ctx).post(f"/datasets/{dataset}/grants", json={"user": user})
        _echo({"granted": user, **out}, as_json, f"granted {dataset} to {user}")

    @datasets.command("revoke")
    @connection_options
    @click.argument("dataset")
    @click.argument("user")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def datasets_revoke(ctx: click.Context, dataset: str, user: str, as_json: bool) -> None:
        """Take DATASET away from USER (their unfinished jobs on it are cancelled)."""
        out = _client(ctx).request("DELETE", f"/datasets/{dataset}/grants/{user}")
        text = f"revoked {user}'s access to {dataset}" if out.get("revoked") else f"{user} had no grant on {dataset}"
        _echo({"dataset": dataset, "user": user, **out}, as_json, text)

    # ----------------------------------------------------------------------------------- releases
    @cli.group()
    @connection_options
    def releases() -> None:
        """Request, follow, approve and download releases."""

    @releases.command("request")
    @connection_options
    @click.argument("dataset")
    @click.option(
        "--method", required=True, help="e.g. mst, aim, dp-copula, gaussian-copula (see `synthgate methods`)."
    )
    @click.option("--epsilon", default=None)
    @click.option("--delta", default=None)
    @click.option("--rows", type=int, default=None)
    @click.option("--target", default=None)
    @click.option("--rebalance", default=None, help="smote|borderline-smote|adasyn|smotenc on the DP output.")
    @click.option("--option", "options", multiple=True, help="key=value method option (repeatable).")
    @click.option(
        "--spec",
        "spec_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="method spec: a local YAML/JSON scenario spec; its content is sent with the request.",
    )
    @click.option("--purpose", default=None, help="What the release is for (shown to the steward who reviews it).")
    @click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it stops.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_request(
        ctx: click.Context,
        dataset: str,
        method: str,
        epsilon: str | None,
        delta: str | None,
        rows: int | None,
        target: str | None,
        rebalance: str | None,
        options: tuple[str, ...],
        spec_path: str | None,
        purpose: str | None,
        wait: bool,
        as_json: bool,
    ) -> None:
        """Ask for a release of DATASET."""
        body: dict[str, Any] = {"dataset": dataset, "method": method, "options": _parse_options(options)}
        _attach_spec(body["options"], spec_path)
        if epsilon is not None:
            body["epsilon"] = _number_arg(epsilon, "epsilon")
        if delta is not None:
            body["delta"] = _number_arg(delta, "delta")
        for key, value in (("rows", rows), ("target", target), ("rebalance", rebalance), ("purpose", purpose)):
            if value is not None:
                body[key] = value
        client = _client(ctx)
        out = client.post("/releases", json=body)
        release = out["release"]
        if not as_json:
            click.echo(estimate_line(release.get("estimate")))
        if wait:
            release = _follow(client, release["id"], as_json)
        _echo({"release": release}, as_json, _release_line(release))
        if release["status"] == "failed":
            sys.exit(EXIT_FAILED)

    @releases.command("show")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_show(ctx: click.Context, release_id: int, as_json: bool) -> None:
        out = _client(ctx).get(f"/releases/{release_id}")
        r = out["release"]
        text = _release_line(r)
        if r.get("message"):
            text += f"\n  {r['message']}"
        if r.get("gate"):
            text += f"\n  gate: {r['gate'].get('overall')}"
        _echo(out, as_json, text)

    @releases.command("list")
    @connection_options
    @click.option("--status", default=None)
    @click.option("--dataset", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_list(ctx: click.Context, status: str | None, dataset: str | None, as_json: bool) -> None:
        params = {k: v for k, v in (("status", status), ("dataset", dataset)) if v}
        out = _client(ctx).get("/releases", params=params)
        _echo(out, as_json, "\n".join(_release_line(r) for r in out["releases"]) or "no releases")

    @releases.command("wait")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_wait(ctx: click.Context, release_id: int, as_json: bool) -> None:
        """Follow a release with a progress bar until it stops running (exit 1 if it failed)."""
        release = _follow(_client(ctx), release_id, as_json)
        _echo({"release": release}, as_json, _release_line(release))
        if release["status"] == "failed":
            sys.exit(EXIT_FAILED)

    @releases.command("approve")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("--comment", default=None)
    @click.option("--override", default=None, help="Written reason to approve despite a failed gate (audited).")
    @click.option("--include-internal", is_flag=True, help="Put the internal report sections in the bundle.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_approve(
        ctx: click.Context,
        release_id: int,
        comment: str | None,
        override: str | None,
        include_internal: bool,
        as_json: bool,
    ) -> None:
        out = _client(ctx).post(
            f"/releases/{release_id}/approve",
            json={"comment": comment, "override": override, "include_internal": include_internal},
        )
        _echo(out, as_json, f"release {release_id} approved")

    @releases.command("reject")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("--comment", required=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_reject(ctx: click.Context, release_id: int, comment: str, as_json: bool) -> None:
        out = _client(ctx).post(f"/releases/{release_id}/reject", json={"comment": comment})
        _echo(out, as_json, f"release {release_id} rejected (its privacy cost stays charged)")

    @releases.command("cancel")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("--reason", default=None, help="Why (kept in the audit log).")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_cancel(ctx: click.Context, release_id: int, reason: str | None, as_json: bool) -> None:
        """Cancel a queued or running release (its requester or a steward)."""
        out = _client(ctx).post(f"/releases/{release_id}/cancel", json={"reason": reason})
        done = out["cancelled"]
        charge = (
            "its reservation was given back"
            if done["reservation_released"]
            else "its charge stays (the mechanism had read the data)"
            if done["data_read"]
            else "nothing was charged"
        )
        _echo(out, as_json, f"release {release_id} cancelled ({done['was']}); {charge}")

    @releases.command("download")
    @connection_options
    @click.argument("release_id", type=int)
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def releases_download(ctx: click.Context, release_id: int, output: str, as_json: bool) -> None:
        """Save the signed bundle of an approved release to OUTPUT (prints its path)."""
        resp = _client(ctx).get(f"/releases/{release_id}/bundle", stream=True)
        digest, size = hashlib.sha256(), 0
        try:
            fh = open(output, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}")
        with fh:
            for chunk in resp.iter_content(1 << 16):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        out = {
            "release": release_id,
            "output": str(Path(output).resolve()),
            "bytes": size,
            "sha256": digest.hexdigest(),
        }
        _echo(out, as_json, output)

    # ----------------------------------------------------------------------------------- ledger
    @cli.command()
    @click.argument("dataset")
    @connection_options
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def ledger(ctx: click.Context, dataset: str, as_json: bool) -> None:
        """The privacy budget of DATASET: spent, reserved, remaining, history and guarantee."""
        out = _client(ctx).get(f"/datasets/{dataset}/ledger")
        _echo(out["ledger"], as_json, out["text"])


def eta_words(seconds: Any) -> str:
    """The running stage's estimated time left, short ("~40 s left", "~3 min left"); "" when unknown."""
    if seconds is None:
        return ""
    secs = max(1, int(seconds))
    return f" ~{secs} s left" if secs < 60 else f" ~{-(-secs // 60)} min left"


def _follow(client: ApiClient, release_id: int, quiet: bool) -> dict[str, Any]:
    """Poll a release until it leaves queued/running, drawing a progress bar on stderr."""
    last = None
    while True:
        release = client.get(f"/releases/{release_id}")["release"]
        if not quiet:
            pct = int(round(100 * (release.get("progress") or 0)))
            bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
            line = (
                f"\r[{bar}] {pct:3d}%  {release['status']:<18} {(release.get('message') or '')[:50]:<50}"
                f"{eta_words(release.get('eta_seconds')):<14}"
            )
            if line != last:
                click.echo(line, nl=False, err=True)
                last = line
        if release["status"] not in ("queued", "running"):
            if not quiet:
                click.echo("", err=True)
            return release
        time.sleep(0.5)

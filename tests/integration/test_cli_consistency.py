"""The CLI's contract against a real service: --json everywhere, JSON errors on stderr, one exit-code
table, --url/--token after the command, --version, and demo logins that carry working API tokens."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import requests

from tests.integration.release_support import approved_release
from tests.integration.test_release_path import register_demo

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "synthgate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`synthgate ARGS` with no SYNTHGATE_* settings in its environment: where and who come from the options."""
    child = {"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=child, timeout=300, cwd=ROOT)


def as_user(svc, user: str) -> list[str]:  # type: ignore[no-untyped-def]
    """--url and --token, given after the command."""
    return ["--url", svc.url, "--token", svc.tokens[user]]


def json_error(proc: subprocess.CompletedProcess) -> dict:
    assert proc.stdout == "", proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return json.loads(lines[0])["error"]


def test_client_commands_speak_json_and_exit_by_the_table(service_factory, tmp_path):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc, epsilon_budget="0.5")["name"]
    analyst2 = svc.tokens["analyst2:username"]

    # grant and revoke with --json, --url/--token after the command (no SYNTHGATE_* in the environment)
    r = run("datasets", "grant", name, analyst2, "--json", *as_user(svc, "steward"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["granted"] == analyst2 and out["dataset"]["name"] == name
    r = run("releases", "list", "--json", "--dataset", name, *as_user(svc, "analyst2"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["releases"] == []
    r = run("datasets", "revoke", name, analyst2, "--json", *as_user(svc, "steward"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"dataset": name, "user": analyst2, "revoked": True}
    # the revoke took effect: the dataset is now unknown to analyst2 (404 -> 4), as JSON on stderr
    r = run("ledger", name, "--json", *as_user(svc, "analyst2"))
    assert r.returncode == 4, (r.stdout, r.stderr)
    error = json_error(r)
    assert error["code"] == "not_found" and error["status"] == 404

    # the same options before the group and between group and command work as well
    r = run("--url", svc.url, "--token", svc.tokens["analyst"], "datasets", "list", "--json")
    assert r.returncode == 0 and name in [d["name"] for d in json.loads(r.stdout)["datasets"]], r.stderr
    r = run("datasets", "--url", svc.url, "--token", svc.tokens["analyst"], "list", "--json")
    assert r.returncode == 0 and name in r.stdout, r.stderr
    # the last one given wins: a wrong token before the command, the right one after it
    r = run("--token", "sg_wrong", "datasets", "list", *as_user(svc, "analyst"))
    assert r.returncode == 0 and name in r.stdout, r.stderr

    # an approved release: downloading it with --json, approving it again is a conflict (409 -> 5)
    job_id, bundle = approved_release(svc, name)
    target = tmp_path / "bundle.zip"
    r = run("releases", "download", str(job_id), "-o", str(target), "--json", *as_user(svc, "analyst"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {
        "release": job_id,
        "output": str(target.resolve()),
        "bytes": len(bundle),
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
    }
    assert target.read_bytes() == bundle
    r = run("bundle", "verify", str(target), "--json", "--url", svc.url)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stderr
    r = run("releases", "approve", str(job_id), "--comment", "again", "--json", *as_user(svc, "steward2"))
    assert r.returncode == 5, (r.stdout, r.stderr)
    error = json_error(r)
    assert error["code"] == "conflict" and error["status"] == 409 and "approved" in error["message"]
    # without --json: one line of text, same exit code
    r = run("releases", "approve", str(job_id), *as_user(svc, "steward2"))
    assert r.returncode == 5 and r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert "[HTTP 409 conflict]" in r.stderr

    # a budget refusal (a 409 from the API, but a refusal: 3); nothing is charged
    before = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]["history"]
    r = run(
        "releases",
        "request",
        name,
        "--method",
        "mst",
        "--epsilon",
        "0.45",
        "--delta",
        "1e-9",
        "--json",
        *as_user(svc, "analyst"),
    )
    assert r.returncode == 3, (r.stdout, r.stderr)
    error = json_error(r)
    assert error["code"] == "budget_exceeded" and error["status"] == 409
    assert svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]["history"] == before
    # a request that fits, with its purpose
    r = run(
        "releases",
        "request",
        name,
        "--method",
        "mst",
        "--epsilon",
        "0.01",
        "--delta",
        "1e-9",
        "--purpose",
        "a seabird atlas",
        "--json",
        *as_user(svc, "analyst"),
    )
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["release"]["purpose"] == "a seabird atlas"

    # an unknown release: 4
    r = run("releases", "show", "987654", "--json", *as_user(svc, "analyst"))
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert json_error(r)["code"] == "not_found"
    # a wrong token: refused, 3
    r = run("releases", "list", "--json", "--url", svc.url, "--token", "sg_not-a-token")
    assert r.returncode == 3 and json_error(r)["status"] == 401, r.stderr
    # a port nobody listens on: 6, with no HTTP status
    dead = f"http://127.0.0.1:{_free_port()}"
    r = run("releases", "list", "--json", "--url", dead, "--token", svc.tokens["analyst"])
    assert r.returncode == 6, (r.stdout, r.stderr)
    error = json_error(r)
    assert error["code"] == "unreachable" and dead in error["message"] and "status" not in error
    # the environment still works when no option is given
    r = run(
        "releases",
        "show",
        str(job_id),
        "--json",
        env={"SYNTHGATE_URL": svc.url, "SYNTHGATE_TOKEN": svc.tokens["analyst"]},
    )
    assert r.returncode == 0 and json.loads(r.stdout)["release"]["status"] == "approved", r.stderr


def test_version_prints_the_package_version():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"synthgate {metadata.version('synthgate')}"


def test_serve_prints_demo_logins_with_working_api_tokens(tmp_path):
    """`synthgate serve` on an empty data directory: each demo user's password and API token, printed and
    kept in demo-logins.json (0600); each token authenticates as its user, and its issue is audited."""
    data = tmp_path / "data"
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [EXE, "serve", "--data-dir", str(data), "--port", str(port), "--web-workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        deadline = time.time() + 240
        while "Press Ctrl-C" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        printed = {}
        for line in log.read_text().splitlines():
            if " password " in line and "API token " in line:
                role, user, _, password, _, _, token = line.split()
                printed[user] = {"role": role, "password": password, "token": token}
        assert set(printed) == {"steward", "steward2", "analyst", "admin"}, log.read_text()
        logins_file = data / "demo-logins.json"
        assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
        assert json.loads(logins_file.read_text()) == printed
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if requests.get(url + "/api/v1/health", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        for user, login in printed.items():
            me = requests.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {login['token']}"}, timeout=30)
            assert me.status_code == 200 and me.json()["username"] == user, me.text
        # and through the CLI: the analyst's printed token sees the demo dataset
        r = run("datasets", "list", "--json", "--url", url, "--token", printed["analyst"]["token"])
        assert r.returncode == 0 and "adult-demo" in r.stdout, r.stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # every demo token's issue is in the audit log, by the system
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import AuditEvent
    from core.settings import Settings

    settings = Settings.from_env(environ={}, data_dir=str(data))
    with session_scope(settings) as s:
        events = s.execute(select(AuditEvent).where(AuditEvent.action == "token.create")).scalars().all()
        assert sorted(e.detail["user"] for e in events if e.actor == "system") == sorted(printed)
        assert {e.detail["prefix"] for e in events} == {login["token"][:10] for login in printed.values()}

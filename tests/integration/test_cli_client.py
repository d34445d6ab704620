"""The client CLI as a user runs it: subprocesses against a real gunicorn server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "synthgate")


def cli(svc, user: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNTHGATE_URL=svc.url, SYNTHGATE_TOKEN=svc.tokens[user])
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)


def test_cli_register_request_and_ledger(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    r = cli(
        svc,
        "steward",
        "datasets",
        "register",
        "tests/data/pums/PUMS.csv",
        "--name",
        "pums",
        "--schema",
        "tests/data/pums/schema.yaml",
        "--epsilon-budget",
        "1",
        "--delta-budget",
        "1e-6",
    )
    assert r.returncode == 0, r.stderr
    assert "registered dataset pums" in r.stdout
    r = cli(svc, "steward", "datasets", "grant", "pums", svc.tokens["analyst:username"])
    assert r.returncode == 0, r.stderr

    def ledger() -> dict:
        out = cli(svc, "analyst", "ledger", "pums", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    before = ledger()
    assert before["remaining"]["basic"]["epsilon"] == "1"
    # 2: a value the CLI itself refuses before asking; 3: a value the service refuses, or the budget
    for args, field, code in (
        (["--epsilon", "-1"], "epsilon", 3),
        (["--epsilon", "0"], "epsilon", 3),
        (["--epsilon", "0.5", "--delta", "1"], "delta", 3),
        (["--epsilon", "nan"], "epsilon", 2),
        (["--epsilon", "1e309"], "epsilon", 2),
        (["--epsilon", "2"], "epsilon", 3),
    ):
        if "--delta" not in args:
            args = [*args, "--delta", "1e-9"]
        r = cli(svc, "analyst", "releases", "request", "pums", "--method", "mst", *args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert field in r.stderr and "Traceback" not in r.stderr
    assert ledger()["history"] == before["history"]

    r = cli(
        svc,
        "analyst",
        "releases",
        "request",
        "pums",
        "--method",
        "mst",
        "--epsilon",
        "0.25",
        "--delta",
        "1e-9",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    release = json.loads(r.stdout)["release"]
    assert release["status"] == "queued" and release["charge"] == "reserved"
    after = ledger()
    assert [h["action"] for h in after["history"]] == ["reserve"]
    text = cli(svc, "analyst", "ledger", "pums").stdout
    assert "reserved   epsilon 0.25" in text and "guarantee" in text

    # another analyst sees nothing of it; a wrong token is refused cleanly
    r = cli(svc, "analyst2", "releases", "show", str(release["id"]))
    assert r.returncode == 4 and "404" in r.stderr
    env = dict(os.environ, SYNTHGATE_URL=svc.url, SYNTHGATE_TOKEN="sg_not-a-token")
    r = subprocess.run([EXE, "datasets", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 3 and "invalid API token" in r.stderr

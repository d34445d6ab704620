"""A scenario spec is sent as content: an option naming a server-side path is refused."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_cli_client import cli
from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration]

SPEC = """columns:
  code: {values: [server-secret-alpha, server-secret-beta]}
  size: {distribution: norm, loc: 10, scale: 2, min: 0, max: 20}
"""


def test_spec_path_refused_and_cli_sends_content(service_factory, tmp_path):
    svc = service_factory("embedded")
    svc.start_web()
    name = register_demo(svc)["name"]
    # a file on the server's disk (the test shares the machine with the server)
    server_file = svc.settings.data_dir / "server-only.yaml"
    server_file.write_text(SPEC, encoding="utf-8")
    before = ledger_rows(svc, name)

    for path in (str(server_file), "../../etc/passwd.yaml", "/etc/hostname"):
        resp = svc.api(
            "analyst",
            "POST",
            "/releases",
            json={"dataset": name, "method": "spec", "rows": 50, "options": {"spec": path}},
        )
        assert resp.status_code == 400, resp.text
        assert "names a file path" in resp.json()["error"]["message"], resp.text
    assert svc.api("analyst", "GET", "/releases").json()["releases"] == []
    assert ledger_rows(svc, name) == before

    # the CLI reads the requester's own local file and sends its text
    local = tmp_path / "my-spec.yaml"
    local.write_text(SPEC.replace("server-secret", "local"), encoding="utf-8")
    svc.start_worker()
    for args in (["--spec", str(local)], ["--option", f"spec={local}"]):
        r = cli(
            svc, "analyst", "releases", "request", name, "--method", "spec", "--rows", "50", *args, "--wait", "--json"
        )
        assert r.returncode == 0, r.stderr
        release = json.loads(r.stdout)["release"]
        assert release["status"] == "awaiting_approval", (release, svc.worker_logs())
        assert release["options"]["spec"] == local.read_text(encoding="utf-8")

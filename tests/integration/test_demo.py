"""`synthgate demo` on a fresh data directory prints a bundle path whose manifest verifies."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_prints_a_verified_bundle(tmp_path):
    exe = Path(sys.executable).parent / "synthgate"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    proc = subprocess.run(
        [str(exe), "demo", "--data-dir", str(tmp_path / "demo")], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".zip"
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for name, info in manifest["files"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == info["sha256"], name
        assert set(manifest["files"]) == set(zf.namelist()) - {"manifest.json", "manifest.sig"}
    assert manifest["method"] == "mst" and manifest["approved_by"] == "steward"
    # the same check through the CLI, with the key of the demo's server
    check = subprocess.run(
        [str(exe), "bundle", "verify", str(path), "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
    assert "bundle OK" in check.stdout
    # the demo users' logins carry an API token each (the demo's own requests used two of them)
    logins = json.loads((tmp_path / "demo" / "demo-logins.json").read_text())
    assert {name: login["role"] for name, login in logins.items()} == {
        "steward": "steward",
        "steward2": "steward",
        "analyst": "analyst",
        "admin": "admin",
    }
    assert all(login["token"].startswith("sg_") and login["password"] for login in logins.values())

"""Tampering is detected: `synthgate bundle verify` on edited bundles and `synthgate audit
verify` on an audit table edited with raw SQL, both run as real subprocesses.

The bundle is a real one: produced by the pipeline, approved by a steward and
downloaded by its requester through the pages.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.db import dispose_engines
from tests.browser.support import ROOT, finished_release, make_app_env, register_demo

pytestmark = [pytest.mark.integration]

SYNTHGATE = str(Path(sys.executable).parent / "synthgate")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_app_env(tmp_path_factory.mktemp("tamper"))
    register_demo(env)
    env.job_id = finished_release(env, approve=True)  # type: ignore[attr-defined]
    yield env
    dispose_engines()


def cli(env, *args: str) -> subprocess.CompletedProcess:
    """The installed `synthgate` command with the service's settings in its environment."""
    child = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(env.settings.data_dir),
        "PYTHONPATH": str(ROOT),
        **env.settings.env(),
    }
    return subprocess.run([SYNTHGATE, *args], env=child, capture_output=True, text=True, timeout=180, cwd=ROOT)


@pytest.fixture(scope="module")
def bundle(env, tmp_path_factory) -> tuple[Path, Path]:
    """(the bundle as the analyst downloaded it, the server's public key in a PEM file)."""
    analyst = env.pages("analyst")
    page = analyst.get(f"/releases/{env.job_id}").get_data(as_text=True)
    link = page.split('id="download" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    out = tmp_path_factory.mktemp("bundle")
    with analyst.get(link) as resp:
        assert resp.status_code == 200
        (out / "bundle.zip").write_bytes(resp.data)
    pem = env.api("", "GET", "/signing-key").get_json()["public_key_pem"]
    (out / "server.pem").write_text(pem)
    return out / "bundle.zip", out / "server.pem"


def rewrite(
    src: Path, dst: Path, replace: dict[str, bytes | None] | None = None, add: dict[str, bytes] | None = None
) -> Path:
    """A copy of the zip with members replaced (None removes one) or added."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename in replace:
                if replace[item.filename] is not None:
                    zout.writestr(item.filename, replace[item.filename])
            else:
                zout.writestr(item, zin.read(item.filename))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def test_the_genuine_bundle_verifies(env, bundle):
    zip_path, pem = bundle
    proc = cli(env, "bundle", "verify", str(zip_path), "--public-key", str(pem))
    assert proc.returncode == 0, proc.stderr
    assert "bundle OK: signature valid" in proc.stdout
    # the server's own data directory holds the same key
    proc = cli(env, "bundle", "verify", str(zip_path), "--data-dir", str(env.settings.data_dir), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"] is True


def _tampered(bundle_zip: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    manifest = json.loads(member(bundle_zip, "manifest.json"))
    edited_manifest = json.dumps({**manifest, "approved_by": "someone-else"}, indent=2, sort_keys=True).encode()
    # a forger with their own key signs the edited manifest: still not the server's signature
    import base64

    forger = Ed25519PrivateKey.generate()
    forged_sig = base64.b64encode(forger.sign(edited_manifest))
    csv = member(bundle_zip, "data.csv")
    cases = {
        "edited data": (
            rewrite(bundle_zip, tmp / "a.zip", {"data.csv": csv + csv.splitlines(keepends=True)[-1]}),
            "data.csv does not match its SHA-256",
        ),
        "formula injected": (
            rewrite(bundle_zip, tmp / "b.zip", {"data.csv": csv.replace(b"\n", b"\n=HYPERLINK(1),", 1)}),
            "data.csv does not match",
        ),
        "edited manifest": (
            rewrite(bundle_zip, tmp / "c.zip", {"manifest.json": edited_manifest}),
            "signature does not match",
        ),
        "re-signed by another key": (
            rewrite(bundle_zip, tmp / "d.zip", {"manifest.json": edited_manifest, "manifest.sig": forged_sig}),
            "signature does not match",
        ),
        "file added": (
            rewrite(bundle_zip, tmp / "e.zip", add={"extra.csv": b"name\nalice\n"}),
            "extra.csv is in the zip but not in the manifest",
        ),
        "file removed": (
            rewrite(bundle_zip, tmp / "f.zip", {"privacy.md": None}),
            "privacy.md is listed in the manifest but missing",
        ),
        "signature removed": (rewrite(bundle_zip, tmp / "g.zip", {"manifest.sig": None}), "manifest.sig is missing"),
        "statement edited": (
            rewrite(bundle_zip, tmp / "h.zip", {"privacy.md": b"# no guarantee needed\n"}),
            "privacy.md does not match",
        ),
    }
    broken = tmp / "i.zip"
    broken.write_bytes(bundle_zip.read_bytes()[: len(bundle_zip.read_bytes()) // 2])
    cases["truncated"] = (broken, "not a readable zip file")
    return cases


def test_every_tampering_is_detected_by_the_cli(env, bundle, tmp_path):
    zip_path, pem = bundle
    for name, (path, expected) in _tampered(zip_path, tmp_path).items():
        proc = cli(env, "bundle", "verify", str(path), "--public-key", str(pem))
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        assert "FAILED" in proc.stderr and expected in proc.stderr, (name, proc.stderr)


def test_a_genuine_bundle_fails_against_another_servers_key(env, bundle, tmp_path):
    zip_path, _ = bundle
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "other.pem").write_bytes(other)
    proc = cli(env, "bundle", "verify", str(zip_path), "--public-key", str(tmp_path / "other.pem"))
    assert proc.returncode == 1 and "signature does not match" in proc.stderr


def test_bundle_cells_cannot_start_a_formula(env, bundle):
    """The CSV in the bundle is safe to open in a spreadsheet."""
    import pandas as pd

    zip_path, _ = bundle
    df = pd.read_csv(io.BytesIO(member(zip_path, "data.csv")), dtype=str, keep_default_na=False)
    for column in df.columns:
        text = df[column]
        numeric = pd.to_numeric(text, errors="coerce").notna() | (text == "")
        assert not text[~numeric].str.match(r"^[=+\-@\t\r|%]").any(), column


# ------------------------------------------------------------------------------------------ audit


def _db(env) -> sqlite3.Connection:
    return sqlite3.connect(env.settings.database_url.removeprefix("sqlite:///"))


def test_audit_verify_detects_an_edited_row_and_a_removed_one(env):
    proc = cli(env, "audit", "verify")
    assert proc.returncode == 0, proc.stderr
    assert "audit chain intact" in proc.stdout

    # the release's request, not its approval: the bundle signs the head at its approval (the approve
    # event, or the override event after it when the gate failed), and an event at a signed position
    # reports the rewrite there rather than the broken link to the next event
    with _db(env) as conn:
        row_id, original = conn.execute(
            "SELECT id, detail FROM audit_events WHERE action = 'release.request' ORDER BY id LIMIT 1"
        ).fetchone()
        edited = json.dumps({**json.loads(original), "cost": {"epsilon": 0.0, "delta": 0.0}})
        conn.execute("UPDATE audit_events SET detail = ? WHERE id = ?", (edited, row_id))
    proc = cli(env, "audit", "verify")
    assert proc.returncode == 1
    assert f"BROKEN at event {row_id}" in proc.stderr and "edited" in proc.stderr
    check = json.loads(cli(env, "audit", "verify", "--json").stdout)
    assert check["ok"] is False and check["first_bad_id"] == row_id
    # the audit page and the API say so too
    page = env.pages("steward").get("/audit").get_data(as_text=True)
    assert f"BROKEN at event #{row_id}" in page
    assert env.api("admin", "GET", "/audit").get_json()["chain"]["first_bad_id"] == row_id

    # putting the original text back restores the chain: the check is about the content
    with _db(env) as conn:
        conn.execute("UPDATE audit_events SET detail = ? WHERE id = ?", (original, row_id))
    assert cli(env, "audit", "verify").returncode == 0

    # an editor who also recomputes the edited row's hash breaks the link to the next row
    from core.audit import _hash
    from core.db import session_scope
    from core.models import AuditEvent

    with session_scope(env.settings) as s:
        event = s.get(AuditEvent, row_id)
        event.detail = json.loads(edited)
        rehashed = _hash(event.prev_hash, event)
        s.rollback()
    with _db(env) as conn:
        conn.execute("UPDATE audit_events SET detail = ?, hash = ? WHERE id = ?", (edited, rehashed, row_id))
        next_id = conn.execute("SELECT MIN(id) FROM audit_events WHERE id > ?", (row_id,)).fetchone()[0]
    proc = cli(env, "audit", "verify")
    assert proc.returncode == 1 and f"BROKEN at event {next_id}" in proc.stderr
    assert "previous hash does not match" in proc.stderr

    # restore the row (the next row still records its original hash); then delete one
    original_hash = _original_hash(env, row_id)
    with _db(env) as conn:
        conn.execute("UPDATE audit_events SET detail = ?, hash = ? WHERE id = ?", (original, original_hash, row_id))
    assert cli(env, "audit", "verify").returncode == 0
    with _db(env) as conn:
        victim, after = conn.execute(
            "SELECT id, (SELECT MIN(id) FROM audit_events b WHERE b.id > a.id) FROM audit_events a "
            "WHERE action = 'release.download' OR action = 'release.approve' ORDER BY id LIMIT 1"
        ).fetchone()
        conn.execute("DELETE FROM audit_events WHERE id = ?", (victim,))
    proc = cli(env, "audit", "verify")
    assert proc.returncode == 1 and f"BROKEN at event {after}" in proc.stderr and "removed" in proc.stderr


def _original_hash(env, row_id: int) -> str:
    """The hash the row had before it was edited: the next row still records it as prev_hash."""
    with _db(env) as conn:
        return conn.execute(
            "SELECT prev_hash FROM audit_events WHERE id = (SELECT MIN(id) FROM audit_events WHERE id > ?)", (row_id,)
        ).fetchone()[0]

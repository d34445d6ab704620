"""The audit log is anchored outside the database: cutting its end or rewriting it is detected.

A real service (gunicorn + Celery worker, SQLite embedded or PostgreSQL + Redis) produces and
approves a release and records ordinary activity; then the audit table is tampered with directly
in the database, as an attacker with database access would, and both `synthgate audit verify`
(signed checkpoints in storage) and `synthgate bundle verify --check-audit` (the head the bundle's
signed manifest recorded) must say what happened.
"""

from __future__ import annotations

import json
import zipfile

import pytest
from sqlalchemy import delete, insert, select

from core import audit
from core.db import write_session
from core.models import AuditEvent
from tests.browser.support import start_web, start_worker
from tests.integration.release_support import approved_release, cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _signatures_verify_offline(served: dict) -> None:
    """Anyone holding the served checkpoints and the server's public key can check them."""
    import base64

    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(served["public_key_pem"].encode())
    for doc in served["checkpoints"]:
        payload = json.dumps(doc["checkpoint"], sort_keys=True, separators=(",", ":")).encode()
        pub.verify(base64.b64decode(doc["signature"]), payload)  # raises InvalidSignature if not


def _snapshot(svc) -> list[dict]:
    with write_session(svc.settings) as s:
        return [dict(r._mapping) for r in s.execute(select(AuditEvent.__table__).order_by(AuditEvent.id))]


def _restore(svc, rows: list[dict]) -> None:
    with write_session(svc.settings) as s:
        s.execute(delete(AuditEvent))
        s.execute(insert(AuditEvent.__table__), rows)


def _cut(svc, last: int) -> None:
    with write_session(svc.settings) as s:
        ids = s.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(last)).scalars().all()
        s.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))


def _rewrite(svc, event_id: int) -> None:
    """Edit one event and recompute every later link and hash, so that the chain itself verifies."""
    with write_session(svc.settings) as s:
        prev = audit.GENESIS
        for ev in s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all():
            if ev.id == event_id:
                ev.detail = {**(ev.detail or {}), "comment": "approved without review"}
            if ev.id >= event_id:
                ev.prev_hash = prev
                ev.hash = audit._hash(prev, ev)
                s.flush()
            prev = ev.hash


def _audit_verify(svc, *flags: str) -> tuple[int, str]:
    """`synthgate audit verify` as the operator runs it on the service's machine."""
    proc = cli(["audit", "verify", *flags], env=svc.settings.env())
    return proc.returncode, proc.stdout + proc.stderr


def _anchored(svc) -> audit.ChainCheck:
    """The same check in this process (quicker), to confirm a restored log verifies again."""
    from core.bundle import stored_public_key_pem
    from core.storage import get_storage

    with write_session(svc.settings) as s:
        return audit.verify_anchored(s, get_storage(svc.settings), stored_public_key_pem(svc.settings.data_dir))


def _bundle_check(svc, path) -> tuple[int, str]:
    proc = cli(["bundle", "verify", str(path), "--url", svc.url, "--token", svc.tokens["analyst"], "--check-audit"])
    return proc.returncode, proc.stdout + proc.stderr


def test_truncation_and_rewrite_are_detected(service_factory, backend, tmp_path):
    svc = service_factory(backend, audit_checkpoint_every=20)
    start_web(svc)
    start_worker(svc)
    for i in range(60):  # ordinary audited activity before the release
        assert svc.api("analyst", "POST", "/tokens", json={"label": f"t{i}"}).status_code == 201
    job_id, bundle = approved_release(svc)
    (tmp_path / "bundle.zip").write_bytes(bundle)
    manifest_head = json.loads(zipfile.ZipFile(tmp_path / "bundle.zip").read("manifest.json"))["audit_head"]
    assert manifest_head["count"] > 60

    code, out = _audit_verify(svc)
    assert code == 0 and "audit chain intact" in out and "signed checkpoints" in out, out
    check = json.loads(_audit_verify(svc, "--json")[1])
    assert check["checkpoints"] >= 4 and check["latest_checkpoint"] == check["events"]  # the head is signed
    served = svc.api("analyst", "GET", "/audit/checkpoints").json()
    assert {c["checkpoint"]["reason"] for c in served["checkpoints"]} >= {"head", "periodic", f"bundle {job_id}"}
    _signatures_verify_offline(served)
    assert svc.api("analyst", "GET", "/audit/position/0").status_code == 400
    assert svc.api("analyst", "GET", "/audit/verify").status_code == 403
    assert svc.api("admin", "GET", "/audit/verify").json()["chain"]["ok"] is True
    code, out = _bundle_check(svc, tmp_path / "bundle.zip")
    assert code == 0 and "audit log OK" in out, out
    original = _snapshot(svc)

    # 1. the last event removed
    _cut(svc, 1)
    code, out = _audit_verify(svc)
    assert code == 1 and "TRUNCATED" in out and f"holds {len(original) - 1} events" in out, out
    # the audit views stewards read check the same anchors, not the chain alone
    chain = svc.api("steward", "GET", "/audit").json()["chain"]
    assert chain["ok"] is False and chain["problem"] == "truncated", chain
    _restore(svc, original)
    assert _anchored(svc).ok

    # 2. the last 50 removed: the bundle, approved before them, sees it too; the service carrying on
    #    (a new audited request) does not re-sign the cut log
    _cut(svc, 50)
    assert svc.api("analyst", "POST", "/tokens", json={"label": "after the cut"}).status_code == 201
    code, out = _audit_verify(svc)
    assert code == 1 and ("TRUNCATED" in out or "REWRITTEN" in out), out
    code, out = _bundle_check(svc, tmp_path / "bundle.zip")
    assert code == 1 and "TRUNCATED" in out and str(manifest_head["count"]) in out, out
    _restore(svc, original)
    assert _anchored(svc).ok

    # 3. one event (the approval) edited and every later hash recomputed: the chain alone is intact
    approval = next(r["id"] for r in original if r["action"] == "release.approve")
    _rewrite(svc, approval)
    with write_session(svc.settings) as s:
        assert audit.verify_chain(s).ok
    code, out = _audit_verify(svc)
    assert code == 1 and "REWRITTEN" in out, out
    code, out = _bundle_check(svc, tmp_path / "bundle.zip")
    assert code == 1 and "REWRITTEN" in out, out
    _restore(svc, original)
    assert _anchored(svc).ok

    # 4. a checkpoint edited in storage fails its signature
    key = next(c["key"] for c in served["checkpoints"] if c["checkpoint"]["reason"] == "periodic")
    path = svc.settings.storage_dir / key
    doc = json.loads(path.read_text())
    doc["checkpoint"]["count"] += 1
    path.write_text(json.dumps(doc))
    code, out = _audit_verify(svc)
    assert code == 1 and "INVALID signature" in out and key in out, out

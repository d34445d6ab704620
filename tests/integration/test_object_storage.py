"""Several machines: web and workers share only PostgreSQL, Redis and an S3 bucket.

The web server and two worker processes each get their own empty data directory (no path in
common); raw uploads, job artifacts, samples and bundles live in a real S3-compatible server
process, and the session and signing keys come from configuration.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.bundle import verify_bundle
from core.storage import S3Storage
from tests.integration.conftest import Service
from tests.integration.s3_support import bucket_keys, s3_endpoint  # noqa: F401 - the fixture
from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST_LEASE = {"lease_seconds": 6, "heartbeat_seconds": 1, "reaper_seconds": 2}


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_s3_storage_round_trip(s3_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    store = S3Storage("synthgate", "unit/prefix", endpoint_url=s3_endpoint, sse="AES256")
    big = tmp_path / "big.bin"
    big.write_bytes(secrets.token_bytes(9 * 1024 * 1024))  # above the 8 MB multipart threshold
    store.put_file("datasets/1/raw.bin", big)
    store.put_bytes("jobs/1/report.json", b'{"a": 1}')
    assert store.exists("datasets/1/raw.bin") and not store.exists("datasets/2/raw.bin")
    assert store.size("datasets/1/raw.bin") == big.stat().st_size
    assert store.get_bytes("jobs/1/report.json") == b'{"a": 1}'
    with store.open("datasets/1/raw.bin") as stream:
        assert stream.read(1024) == big.read_bytes()[:1024]
    with store.local_path("datasets/1/raw.bin") as path:
        assert path.read_bytes() == big.read_bytes()
    assert not path.exists()  # the temporary copy is gone
    assert store.list_keys("jobs") == ["jobs/1/report.json"]
    assert set(bucket_keys(s3_endpoint, "unit/")) == {
        "unit/prefix/datasets/1/raw.bin",
        "unit/prefix/jobs/1/report.json",
    }
    store.delete_prefix("datasets/1")
    assert not store.exists("datasets/1/raw.bin") and store.exists("jobs/1/report.json")
    from core.errors import InternalError, InvalidRequest

    with pytest.raises(InternalError, match="missing"):
        store.get_bytes("datasets/1/raw.bin")
    with pytest.raises(InvalidRequest):
        store.put_bytes("../escape", b"")


def test_release_across_machines_with_a_worker_killed_mid_fit(service_factory, s3_endpoint, tmp_path):  # noqa: F811
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    shared = {
        "storage_url": "s3://synthgate/releases",
        "s3_endpoint_url": s3_endpoint,
        "secret_key": secrets.token_hex(32),
        "signing_key_pem": pem,
        **FAST_LEASE,
    }
    svc = service_factory("redis-postgres", **shared)
    svc.start_web()
    machines: list[Service] = []
    try:

        def machine(name: str) -> Service:
            root = tmp_path / f"machine-{name}"
            root.mkdir()
            other = Service(
                settings=replace(svc.settings, data_dir=root, storage_dir=root / "storage"),
                tokens=svc.tokens,
                logs=svc.logs,
            )
            machines.append(other)
            other.start_worker(name)
            return other

        name = register_demo(svc)["name"]
        first = machine("a")
        resp = svc.api(
            "analyst",
            "POST",
            "/releases",
            json={
                "dataset": name,
                "method": "dpctgan",
                "epsilon": 1.0,
                "delta": 1e-6,
                "rows": 300,
                "options": {"epochs": 40},
            },
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["release"]["id"]
        svc.wait_for(
            "steward",
            job_id,
            predicate=lambda r: r["status"] == "running" and r["charge"] == "spent" and r["stage"] == "fit",
            timeout=300,
        )
        second = machine("b")
        time.sleep(1)
        first.kill(first.procs[0])
        done = svc.wait_for("steward", job_id, timeout=900)
        assert done["status"] == "awaiting_approval", svc.worker_logs() + second.worker_logs()
        assert done["internal"]["attempts"] == 2
        rows = [h for h in ledger_rows(svc, name) if h["job_id"] == job_id]
        assert sorted(h["action"] for h in rows) == ["reserve", "spend"], rows

        body = {"comment": "ok"}
        if svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]["gate"]["overall"] == "fail":
            body["override"] = "reviewed for the test"
        assert svc.api("steward", "POST", f"/releases/{job_id}/approve", json=body).status_code == 200
        r = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
        assert r.status_code == 200, r.text
        public = svc.api("", "GET", "/signing-key").json()["public_key_pem"]
        check = verify_bundle(r.content, public)
        assert check.ok and check.signature_checked, check.problems
        # a verifier with read access to the bucket alone finds the public key there
        in_bucket = S3Storage("synthgate", "releases", endpoint_url=s3_endpoint).get_bytes("keys/signing_key.pub.pem")
        assert in_bucket.decode() == public and verify_bundle(r.content, in_bucket.decode()).ok
        assert (
            public
            == Ed25519PrivateKey.from_private_bytes(  # the configured key signed it
                serialization.load_pem_private_key(pem.encode(), None).private_bytes_raw()
            )
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

        keys = bucket_keys(s3_endpoint, "releases/")
        assert any(k.startswith("releases/datasets/") for k in keys), keys
        assert any(k.startswith(f"releases/jobs/{job_id}/") for k in keys), keys
        # nothing of the release on any machine's disk: every object is in the bucket
        for root in (svc.settings.data_dir, *(m.settings.data_dir for m in machines)):
            stored = [f for f in _files(root) if f.startswith("storage/") or "signing_key" in f or "secret_key" in f]
            assert stored == [], (root, stored)
    finally:
        for m in machines:
            m.stop()

"""The public half of the signing key is kept in storage, so a verifier with bucket access needs no server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.bundle import (
    PUBLIC_KEY_STORAGE_KEY,
    build_bundle,
    key_fingerprint,
    publish_public_key,
    signing_key,
    verify_bundle,
)
from core.settings import Settings
from core.storage import LocalStorage


def _pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def test_a_bundle_verifies_with_the_key_read_from_storage_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "server", signing_key_pem=_pem())
    storage = LocalStorage(tmp_path / "storage")
    publish_public_key(settings, storage)
    bundle = build_bundle({"data.csv": b"a,b\n1,2\n"}, {"release_id": 1}, signing_key(settings))

    stored = storage.get_bytes(PUBLIC_KEY_STORAGE_KEY).decode()
    check = verify_bundle(bundle, stored)
    assert check.ok and check.signature_checked, check.problems
    assert not storage.exists("signing_key.pem") and "PRIVATE" not in stored
    other = Settings(data_dir=tmp_path / "other", signing_key_pem=_pem())
    assert not verify_bundle(bundle, publish_public_key(other, LocalStorage(tmp_path / "s2"))).ok


def test_a_new_key_replaces_the_current_one_and_the_old_one_stays_by_fingerprint(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    first = Settings(data_dir=tmp_path / "server", signing_key_pem=_pem())
    old = publish_public_key(first, storage)
    assert publish_public_key(first, storage) == old  # idempotent
    new = publish_public_key(replace(first, signing_key_pem=_pem()), storage)
    assert new != old
    assert storage.get_bytes(PUBLIC_KEY_STORAGE_KEY).decode() == new
    assert storage.get_bytes(f"keys/{key_fingerprint(old)}.pub.pem").decode() == old
    assert sorted(storage.list_keys("keys")) == sorted(
        ["keys/signing_key.pub.pem", f"keys/{key_fingerprint(old)}.pub.pem", f"keys/{key_fingerprint(new)}.pub.pem"]
    )

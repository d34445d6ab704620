"""Release bundles: a signed zip an analyst can check on their own machine.

Contents: `data.csv` (spreadsheet-safe cells), `data.parquet`, `schema.json`
(the released public schema), `report.html` / `report.json` (public sections
unless the steward included more), `privacy.md`, `manifest.json` (SHA-256 of
every file, method, cost, library versions, job id, approver) and
`manifest.sig`, an Ed25519 signature of manifest.json by the server's key.
`verify_bundle` checks the signature, every hash, and that no file was added
or removed; it needs only the server's public key, which the API publishes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.settings import Settings

__all__ = [
    "safe_csv_bytes",
    "build_bundle",
    "verify_bundle",
    "BundleCheck",
    "signing_key",
    "public_key_pem",
    "library_versions",
    "MANIFEST",
    "SIGNATURE",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")
LIBRARIES = ("synthgate", "numpy", "pandas", "scipy", "scikit-learn", "smartnoise-synth", "opendp", "diffprivlib",
             "sdv", "imbalanced-learn", "torch", "pyarrow", "sdmetrics")


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV whose text cells cannot start a spreadsheet formula (OWASP CSV injection).

    Text cells beginning with = + - @ tab CR | % get a leading apostrophe.
    Numeric columns are untouched, so negative numbers stay numbers.
    """
    out = df.copy()
    for name in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[name]) or pd.api.types.is_datetime64_any_dtype(out[name])):
            out[name] = out[name].map(_neutralise)
    out.columns = [_neutralise(str(c)) for c in out.columns]
    return out.to_csv(index=False).encode("utf-8")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The server's Ed25519 key, generated once into data_dir/signing_key.pem (0600)."""
    path = settings.data_dir / "signing_key.pem"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        except FileExistsError:
            pass
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return loaded


def public_key_pem(settings: Settings) -> str:
    return signing_key(settings).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_fingerprint(public_pem: str) -> str:
    return hashlib.sha256(public_pem.encode()).hexdigest()[:16]


def build_bundle(files: dict[str, bytes], manifest_fields: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Zip `files` with a manifest of their hashes and an Ed25519 signature of it."""
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    manifest = {
        "format": "synthgate-bundle/1",
        **manifest_fields,
        "library_versions": library_versions(),
        "signing_key_fingerprint": key_fingerprint(public_pem),
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in sorted(files.items())},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    signature = base64.b64encode(key.sign(manifest_bytes))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
        zf.writestr(MANIFEST, manifest_bytes)
        zf.writestr(SIGNATURE, signature)
    return buf.getvalue()


@dataclass
class BundleCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    signature_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "signature_checked": self.signature_checked,
                "job_id": self.manifest.get("job_id"), "files": sorted(self.manifest.get("files", {}))}


def verify_bundle(path_or_bytes: str | Path | bytes, public_pem: str | None) -> BundleCheck:
    """Check a bundle: signature (when a public key is given), hashes, and the file list."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes)
    except (zipfile.BadZipFile, OSError) as exc:
        return BundleCheck(False, [f"not a readable zip file: {exc}"])
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            return BundleCheck(False, ["manifest.json is missing"])
        manifest_bytes = zf.read(MANIFEST)
        try:
            manifest = json.loads(manifest_bytes)
        except json.JSONDecodeError:
            return BundleCheck(False, ["manifest.json is not valid JSON"])
        checked = False
        if public_pem is not None:
            if SIGNATURE not in names:
                problems.append("manifest.sig is missing")
            else:
                try:
                    pub = serialization.load_pem_public_key(public_pem.encode())
                    assert isinstance(pub, Ed25519PublicKey)
                    pub.verify(base64.b64decode(zf.read(SIGNATURE)), manifest_bytes)
                    checked = True
                except (InvalidSignature, ValueError):
                    problems.append("the signature does not match manifest.json (tampered, or signed by another key)")
        listed = manifest.get("files", {})
        for name, info in listed.items():
            if name not in names:
                problems.append(f"{name} is listed in the manifest but missing")
                continue
            digest = hashlib.sha256(zf.read(name)).hexdigest()
            if digest != info.get("sha256"):
                problems.append(f"{name} does not match its SHA-256 in the manifest")
        extra = names - set(listed) - {MANIFEST, SIGNATURE}
        for name in sorted(extra):
            problems.append(f"{name} is in the zip but not in the manifest")
    return BundleCheck(not problems, problems, manifest, checked)

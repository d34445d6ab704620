"""Release bundles: a signed zip an analyst can check on their own machine.

Contents: `data.csv` (spreadsheet-safe cells), `data.parquet`, `schema.json`
(the released public schema), `report.html` / `report.json` (public sections
unless the steward included more), `privacy.md`, `manifest.json` (SHA-256 of
every file, method, cost, library versions, job id, approver, and the audit
log's head at the approval, `audit_head`) and `manifest.sig`, an Ed25519
signature of manifest.json by the server's key. `verify_bundle` (in
core/bundle_verify.py, which needs no service, and re-exported here) checks the
zip's structure, the signature, every hash, and that no file was added or
removed; it needs only the server's public key, which the API publishes, and
never creates one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.bundle_verify import MANIFEST, SIGNATURE, BundleCheck, key_fingerprint, verify_bundle
from core.errors import InvalidRequest
from core.safe_csv import safe_csv_bytes, write_safe_csv
from core.settings import Settings, create_once

__all__ = [
    "MANIFEST",
    "PUBLIC_KEY_STORAGE_KEY",
    "SIGNATURE",
    "BundleCheck",
    "build_bundle",
    "fit_for_purpose_html",
    "key_fingerprint",
    "library_versions",
    "public_key_pem",
    "publish_public_key",
    "safe_csv_bytes",
    "signing_key",
    "stored_public_key_pem",
    "verify_bundle",
    "with_fit_for_purpose",
    "write_safe_csv",
]

LIBRARIES = (
    "synthgate",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "smartnoise-synth",
    "opendp",
    "diffprivlib",
    "sdv",
    "imbalanced-learn",
    "torch",
    "pyarrow",
    "sdmetrics",
)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The server's Ed25519 key: SYNTHGATE_SIGNING_KEY_PEM when set (machines that share no disk all
    take it from configuration), else generated once into data_dir/signing_key.pem (0600)."""
    if settings.signing_key_pem:
        pem = settings.signing_key_pem.replace("\\n", "\n").encode()
        configured = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(configured, Ed25519PrivateKey):
            raise InvalidRequest("SYNTHGATE_SIGNING_KEY_PEM is not an Ed25519 private key", field="signing_key_pem")
        return configured
    path = settings.data_dir / "signing_key.pem"
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        create_once(path, pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return loaded


def public_key_pem(settings: Settings) -> str:
    return (
        signing_key(settings)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


#: where the public half of the signing key is kept in storage, for verifiers with access to the bucket
PUBLIC_KEY_STORAGE_KEY = "keys/signing_key.pub.pem"


def publish_public_key(settings: Settings, storage: Any) -> str:
    """Write the public half of the signing key to storage, where a verifier with read access to the
    bucket (or the storage directory) finds it without asking the server.

    `keys/signing_key.pub.pem` is the current key; `keys/<fingerprint>.pub.pem` keeps every key that
    ever signed, so bundles signed before a key change still verify. Written only when missing or changed.
    """
    pem = public_key_pem(settings)
    for key in (PUBLIC_KEY_STORAGE_KEY, f"keys/{key_fingerprint(pem)}.pub.pem"):
        if not storage.exists(key) or storage.get_bytes(key).decode() != pem:
            storage.put_bytes(key, pem.encode())
    return pem


def stored_public_key_pem(data_dir: str | Path) -> str:
    """The public half of the key already in a server's data directory; never creates one."""
    path = Path(data_dir) / "signing_key.pem"
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InvalidRequest(
            f"{path} does not exist: --data-dir must name the data directory of the server "
            "that signed the bundle (or pass --public-key / --url)",
            field="data_dir",
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InvalidRequest(f"{path} is not an Ed25519 key", field="data_dir")
    return (
        loaded.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def build_bundle(files: dict[str, bytes], manifest_fields: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Zip `files` with a manifest of their hashes and an Ed25519 signature of it."""
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    manifest = {
        "format": "synthgate-bundle/1",
        **manifest_fields,
        "library_versions": library_versions(),
        "signing_key_fingerprint": key_fingerprint(public_pem),
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
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


def fit_for_purpose_html(fit: dict[str, Any]) -> str:
    """The "Fit for the stated purpose?" section of a report page (every value escaped)."""
    from html import escape

    purpose = fit.get("purpose")
    parts = [
        '<section id="fit-for-purpose"><h2>Fit for the stated purpose?</h2>',
        f"<p><strong>Purpose:</strong> {escape(purpose) if purpose else '<em>none stated</em>'}</p>",
        f'<p class="verdict verdict-{escape(str(fit.get("verdict")))}">{escape(str(fit.get("text", "")))}</p>',
        f"<p><small>Basis: {escape(str(fit.get('basis', '')))}.</small></p>",
    ]
    checks = fit.get("checks")
    if checks:
        parts.append("<table><tr><th>check</th><th>status</th><th>value</th><th>threshold</th></tr>")
        for c in checks:
            cells = [c.get(k) for k in ("name", "status", "value", "threshold")]
            parts.append("<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</section>")
    return "".join(parts)


def with_fit_for_purpose(files: dict[str, bytes], fit: dict[str, Any] | None) -> dict[str, bytes]:
    """The bundle's report files with the approved release's "Fit for the stated purpose?" answer added:
    a `fit_for_purpose` key in report.json, a section at the end of report.html. Run before
    `build_bundle`, which hashes and signs the files as they are then."""
    if fit is None:
        return files
    out = dict(files)
    if "report.json" in out:
        doc = json.loads(out["report.json"])
        if isinstance(doc, dict):
            doc["fit_for_purpose"] = fit
            out["report.json"] = json.dumps(doc, indent=2, default=str).encode()
    if "report.html" in out:
        page = out["report.html"].decode("utf-8")
        section = fit_for_purpose_html(fit)
        at = page.rfind("</body>")
        page = page[:at] + section + page[at:] if at >= 0 else page + section
        out["report.html"] = page.encode("utf-8")
    return out

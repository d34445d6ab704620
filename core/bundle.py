"""Release bundles: a signed zip an analyst can check on their own machine.

Contents: `data.csv` (spreadsheet-safe cells), `data.parquet`, `schema.json`
(the released public schema), `report.html` / `report.json` (public sections
unless the steward included more), `privacy.md`, `manifest.json` (SHA-256 of
every file, method, cost, library versions, job id, approver, and the audit
log's head at the approval, `audit_head`) and `manifest.sig`, an Ed25519
signature of manifest.json by the server's key. `verify_bundle` first reads the
zip's structure itself and refuses any zip a standard unzip could extract
differently (see "strict zip reading" below), then checks the signature, every
hash, and that no file was added or removed; it needs only the server's public
key, which the API publishes, and never creates one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mmap
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import InvalidRequest
from core.settings import Settings, create_once

__all__ = [
    "MANIFEST",
    "PUBLIC_KEY_STORAGE_KEY",
    "SIGNATURE",
    "BundleCheck",
    "build_bundle",
    "fit_for_purpose_html",
    "library_versions",
    "public_key_pem",
    "publish_public_key",
    "safe_csv_bytes",
    "signing_key",
    "stored_public_key_pem",
    "verify_bundle",
    "with_fit_for_purpose",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")
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


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; any other is kept.

    A label such as `-1` or `+3.5` is a plain number to a spreadsheet, not a formula: it stays as it
    is, so that the CSV reads back as the Parquet file does.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV whose text cells cannot start a spreadsheet formula (OWASP CSV injection).

    Text cells beginning with = + - @ tab CR | % get a leading apostrophe, unless the whole cell
    is a plain number (a category labelled `-1`). Numeric columns are untouched, so negative
    numbers stay numbers.
    """
    out = df.copy()
    for name in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[name]) or pd.api.types.is_datetime64_any_dtype(out[name])):
            out[name] = out[name].map(_neutralise)
    out.columns = [_neutralise(str(c)) for c in out.columns]
    # CRLF line ends (RFC 4180): a cell holding a carriage return or a line feed is then quoted
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


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


def key_fingerprint(public_pem: str) -> str:
    return hashlib.sha256(public_pem.encode()).hexdigest()[:16]


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


@dataclass
class BundleCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    signature_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "signature_checked": self.signature_checked,
            "job_id": self.manifest.get("job_id"),
            "files": sorted(self.manifest.get("files", {})),
        }


# ------------------------------------------------------------------------------- strict zip reading
#
# A bundle is checked by reading the zip's bytes ourselves, not through `zipfile`: the verifier must
# see exactly what any standard unzip would extract. Anything two readers could resolve differently
# is refused rather than interpreted: duplicate names (zipfile reads the last, unzip the first),
# names that are not plain file names (paths, backslashes, non-ASCII, case twins), directory and
# symlink entries, encryption, data descriptors, zip64, extra fields that rename an entry (Info-ZIP
# Unicode path), a local header that disagrees with the central directory, and bytes anywhere that
# no entry accounts for (prepended data, gaps, anything after the central directory, a comment).

_EOCD = struct.Struct("<4s4H2LH")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_EOCD_SIG, _CENTRAL_SIG, _LOCAL_SIG, _ZIP64_LOCATOR_SIG = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04", b"PK\x06\x07"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_ALLOWED_FLAGS = 0x0806  # deflate level bits and the UTF-8 name flag; never encryption or data descriptors
_HARMLESS_EXTRA = {0x5455, 0x7875}  # extended timestamp, Unix uid/gid: neither renames nor relocates data
_MAX_ENTRIES = 64
_S_IFMT, _S_IFREG = 0o170000, 0o100000


class _Refused(Exception):
    """The zip is not one a verifier and a standard unzip are certain to read alike."""


@dataclass(frozen=True)
class _Entry:
    name: str
    method: int
    crc: int
    compressed: int
    size: int
    data_offset: int


def _extra_ids(extra: bytes, name: str) -> set[int]:
    ids, pos = set(), 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise _Refused(f"{name}: malformed extra field")
        header_id, length = struct.unpack_from("<2H", extra, pos)
        pos += 4 + length
        if pos > len(extra):
            raise _Refused(f"{name}: malformed extra field")
        ids.add(header_id)
    return ids


def _check_name(raw: bytes) -> str:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _Refused(f"entry name {raw!r} is not plain ASCII: unzip tools may decode it differently") from None
    if not _NAME.fullmatch(name):
        raise _Refused(
            f"entry name {name!r} is not a plain file name (no paths, directories, backslashes "
            "or leading dots are allowed in a bundle)"
        )
    return name


def _entries(buf: bytes | mmap.mmap) -> dict[str, _Entry]:
    """The zip's entries, after refusing everything a standard unzip could read differently."""
    size = len(buf)
    if size < _EOCD.size or buf[size - _EOCD.size : size - _EOCD.size + 4] != _EOCD_SIG:
        raise _Refused(
            "the zip does not end with its end-of-central-directory record "
            "(data appended after the archive, or an archive comment)"
        )
    eocd_at = size - _EOCD.size
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment_len = _EOCD.unpack_from(buf, eocd_at)
    if comment_len or disk or cd_disk or on_disk != count:
        raise _Refused("the zip has an archive comment or spans several disks")
    if (
        (eocd_at >= 20 and buf[eocd_at - 20 : eocd_at - 16] == _ZIP64_LOCATOR_SIG)
        or 0xFFFF in (count, on_disk)
        or 0xFFFFFFFF in (cd_size, cd_offset)
    ):
        raise _Refused("the zip uses zip64 records, which bundles never need")
    if count > _MAX_ENTRIES:
        raise _Refused(f"the zip has {count} entries; a bundle has at most {_MAX_ENTRIES}")
    if cd_offset + cd_size != eocd_at:
        raise _Refused(
            "bytes are unaccounted for: the central directory is not where its end record says "
            "(data prepended to the archive, or hidden between its parts)"
        )
    entries: dict[str, _Entry] = {}
    folded: set[str] = set()
    pos, expected_local = cd_offset, 0
    for _ in range(count):
        if pos + _CENTRAL.size > eocd_at or buf[pos : pos + 4] != _CENTRAL_SIG:
            raise _Refused("the central directory is malformed")
        (
            _,
            _made_by,
            needed,
            flags,
            method,
            _mtime,
            _mdate,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk_start,
            _internal,
            external,
            local_at,
        ) = _CENTRAL.unpack_from(buf, pos)
        raw_name = bytes(buf[pos + _CENTRAL.size : pos + _CENTRAL.size + name_len])
        extra = bytes(buf[pos + _CENTRAL.size + name_len : pos + _CENTRAL.size + name_len + extra_len])
        pos += _CENTRAL.size + name_len + extra_len + comment_len
        if pos > eocd_at:
            raise _Refused("the central directory is malformed")
        name = _check_name(raw_name)
        if name in entries:
            raise _Refused(f"the zip holds {name} twice: unzip and a verifier may read different copies")
        if name.casefold() in folded:
            raise _Refused(f"the zip holds two entries whose names differ only in case ({name})")
        if flags & ~_ALLOWED_FLAGS:
            raise _Refused(f"{name} is encrypted or uses a data descriptor (flags {flags:#06x})")
        if method not in (0, 8):
            raise _Refused(f"{name} uses compression method {method}: bundles are only stored or deflated")
        if needed > 20:
            raise _Refused(f"{name} needs zip version {needed / 10}: zip64 or another extension bundles never use")
        if disk_start or 0xFFFFFFFF in (csize, usize, local_at):
            raise _Refused(f"{name} uses zip64 or multi-disk fields")
        mode = external >> 16  # Unix mode bits, whatever system the zip claims it was made on
        if external & 0x10 or (mode & _S_IFMT) not in (0, _S_IFREG) or mode & 0o7000:
            raise _Refused(f"{name} is a directory, a symbolic link or a special file, not a plain file")
        if method == 0 and csize != usize:
            raise _Refused(f"{name} is stored uncompressed but its two sizes differ")
        if _extra_ids(extra, name) - _HARMLESS_EXTRA:
            raise _Refused(f"{name} has extra fields (e.g. a Unicode path or zip64) that may change how it unzips")
        if local_at != expected_local:
            raise _Refused(f"bytes before {name} are unaccounted for (prepended data or a hidden entry)")
        if local_at + _LOCAL.size > cd_offset or buf[local_at : local_at + 4] != _LOCAL_SIG:
            raise _Refused(f"the local header of {name} is missing")
        (_, l_needed, l_flags, l_method, _lt, _ld, l_crc, l_csize, l_usize, l_name_len, l_extra_len) = (
            _LOCAL.unpack_from(buf, local_at)
        )
        l_name = bytes(buf[local_at + _LOCAL.size : local_at + _LOCAL.size + l_name_len])
        l_extra = bytes(buf[local_at + _LOCAL.size + l_name_len : local_at + _LOCAL.size + l_name_len + l_extra_len])
        if (l_name, l_flags, l_method, l_crc, l_csize, l_usize) != (
            raw_name,
            flags,
            method,
            crc,
            csize,
            usize,
        ) or l_needed > 20:
            raise _Refused(f"the local header of {name} disagrees with the central directory")
        if _extra_ids(l_extra, name) - _HARMLESS_EXTRA:
            raise _Refused(f"{name} has extra fields (e.g. a Unicode path or zip64) that may change how it unzips")
        data_at = local_at + _LOCAL.size + l_name_len + l_extra_len
        expected_local = data_at + csize
        if expected_local > cd_offset:
            raise _Refused(f"the data of {name} runs into the central directory")
        entries[name] = _Entry(name, method, crc, csize, usize, data_at)
        folded.add(name.casefold())
    if pos != eocd_at:
        raise _Refused("the central directory holds more than its entries")
    if expected_local != cd_offset:
        raise _Refused("bytes after the last entry are unaccounted for (a hidden entry before the directory)")
    return entries


def _read(buf: bytes | mmap.mmap, entry: _Entry) -> bytes:
    """The entry's bytes exactly as unzip inflates them; its size and CRC-32 must match the headers."""
    raw = buf[entry.data_offset : entry.data_offset + entry.compressed]
    if entry.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(raw, entry.size + 1)
        except zlib.error:
            raise _Refused(f"{entry.name} is not valid deflate data") from None
        if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise _Refused(f"{entry.name}: the compressed data does not end where its header says")
    else:
        data = bytes(raw)
    if len(data) != entry.size or zlib.crc32(data) != entry.crc:
        raise _Refused(f"{entry.name}: its size or CRC-32 does not match its header")
    return data


@contextmanager
def _zip_bytes(path_or_bytes: str | Path | bytes) -> Iterator[bytes | mmap.mmap]:
    if isinstance(path_or_bytes, bytes):
        yield path_or_bytes
        return
    with open(path_or_bytes, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def verify_bundle(path_or_bytes: str | Path | bytes, public_pem: str | None) -> BundleCheck:
    """Check a bundle: its zip structure, the signature (when a public key is given), hashes, the file list.

    The bytes checked are the bytes a standard unzip extracts: a zip that could unzip differently
    from what is verified here is refused before anything else is looked at.
    """
    problems: list[str] = []
    try:
        with _zip_bytes(path_or_bytes) as buf:
            entries = _entries(buf)
            contents = {name: _read(buf, entry) for name, entry in entries.items()}
    except OSError as exc:
        return BundleCheck(False, [f"not a readable zip file: {exc}"])
    except _Refused as exc:
        return BundleCheck(False, [f"not a readable zip file, or not one every unzip reads alike: {exc}"])
    if MANIFEST not in contents:
        return BundleCheck(False, ["manifest.json is missing"])
    manifest_bytes = contents[MANIFEST]
    try:
        manifest = json.loads(manifest_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return BundleCheck(False, ["manifest.json is not valid JSON"])
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        return BundleCheck(False, ["manifest.json is not a bundle manifest"])
    checked = False
    if public_pem is not None:
        if SIGNATURE not in contents:
            problems.append("manifest.sig is missing")
        else:
            try:
                pub = serialization.load_pem_public_key(public_pem.encode())
                if not isinstance(pub, Ed25519PublicKey):
                    raise ValueError("not an Ed25519 key")
                pub.verify(base64.b64decode(contents[SIGNATURE], validate=True), manifest_bytes)
                checked = True
            except (InvalidSignature, ValueError):
                problems.append("the signature does not match manifest.json (tampered, or signed by another key)")
    listed = manifest.get("files", {})
    for name, info in listed.items():
        if name not in contents:
            problems.append(f"{name} is listed in the manifest but missing")
            continue
        digest = hashlib.sha256(contents[name]).hexdigest()
        if not isinstance(info, dict) or digest != info.get("sha256"):
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    extra = set(contents) - set(listed) - {MANIFEST, SIGNATURE}
    for name in sorted(extra):
        problems.append(f"{name} is in the zip but not in the manifest")
    return BundleCheck(not problems, problems, manifest, checked)

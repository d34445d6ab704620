"""Checking a release bundle: the pure part, with no service, database or key store behind it.

`verify_bundle` first reads the zip's structure itself and refuses any zip a standard
unzip could extract differently (see "strict zip reading" below), then checks the
Ed25519 signature of manifest.json, every file's SHA-256, and that no file was added
or removed. It needs only the server's public key (PEM), which the API publishes at
GET /api/v1/signing-key. The CLI's `synthgate bundle verify`, the service and the
Python client (synthgate_client) all call it; it imports only the standard library
and `cryptography`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mmap
import os
import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["MANIFEST", "SIGNATURE", "BundleCheck", "key_fingerprint", "verify_bundle"]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


def key_fingerprint(public_pem: str) -> str:
    return hashlib.sha256(public_pem.encode()).hexdigest()[:16]


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

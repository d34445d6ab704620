"""A bundle verifies only if every standard unzip extracts exactly the bytes that were verified.

The bundle is a real one (gunicorn + Celery worker, approved by a steward, downloaded by the analyst);
the tampered copies are what an attacker could hand an analyst. Each is checked with the installed
`synthgate bundle verify` and, where it matters, extracted with the real Info-ZIP `unzip`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import struct
import subprocess
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.integration.release_support import approved_release, cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNZIP = shutil.which("unzip")
needs_unzip = pytest.mark.skipif(UNZIP is None, reason="Debian `unzip` is missing: run `make browser-deps`")


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> tuple[Path, Path]:
    """(an approved bundle as the analyst downloaded it, the server's public key as a PEM file)."""
    from tests.integration import conftest

    tmp = tmp_path_factory.mktemp("integrity")
    (tmp / "data").mkdir()
    (tmp / "logs").mkdir()
    svc = conftest.setup_service(conftest.make_settings(tmp / "data", "embedded"), tmp / "logs")
    try:
        from tests.browser.support import start_web, start_worker

        start_web(svc)
        start_worker(svc)
        _, data = approved_release(svc)
        (tmp / "bundle.zip").write_bytes(data)
        (tmp / "server.pem").write_text(svc.api("", "GET", "/signing-key").json()["public_key_pem"])
    finally:
        svc.stop()
        from core.db import dispose_engines

        dispose_engines()
    return tmp / "bundle.zip", tmp / "server.pem"


def _members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]], comment: bytes = b"", zip64: str | None = None) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some cases
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                name = info if isinstance(info, str) else info.filename
                if name == zip64:
                    with zf.open(name, "w", force_zip64=True) as fh:
                        fh.write(data)
                else:
                    zf.writestr(info, data)
            zf.comment = comment
    return buf.getvalue()


def _info(name: str, **attrs: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _local_name_swapped(data: bytes, name: str, other: str) -> bytes:
    """The zip with one entry's local-header name replaced (same length): unzip and zipfile disagree."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        at = zf.getinfo(name).header_offset
    assert data[at + 30 : at + 30 + len(name)] == name.encode() and len(other) == len(name)
    return data[: at + 30] + other.encode() + data[at + 30 + len(name) :]


def _flagged(data: bytes, name: str, bit: int) -> bytes:
    """The zip with a general-purpose flag bit set on one entry, in its local and central headers."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        local = zf.getinfo(name).header_offset
    central = struct.unpack_from("<L", data, len(data) - 6)[0]  # the end record's directory offset
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central += 46 + sum(struct.unpack_from("<3H", data, central + 28))
    out = bytearray(data)
    for at in (local + 6, central + 8):
        struct.pack_into("<H", out, at, struct.unpack_from("<H", out, at)[0] | bit)
    return bytes(out)


def tampered_cases(bundle: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (zip bytes, what the verifier must say)."""
    members = _members(bundle)
    genuine = bundle.read_bytes()
    evil_csv = b"name,ssn\nalice,123-45-6789\n"
    csv = {i.filename: d for i, d in members}["data.csv"]
    unicode_path = struct.pack("<HHBI", 0x7075, 5 + len(b"evil.csv"), 1, zlib.crc32(b"data.csv")) + b"evil.csv"
    rest = [(i, d) for i, d in members if i.filename != "data.csv"]
    return {
        "unsigned data.csv before the genuine one": (_zip([("data.csv", evil_csv), *members]), "data.csv twice"),
        "genuine data.csv before an unsigned one": (_zip([*members, ("data.csv", evil_csv)]), "data.csv twice"),
        "prepended bytes": (b"\x00" * 64 + genuine, "unaccounted for"),
        "prepended zip": (_zip([("data.csv", evil_csv)]) + genuine, "unaccounted for"),
        "appended bytes": (genuine + b"trailing data", "does not end with"),
        "archive comment": (_zip(members, comment=b"see evil.csv"), "comment"),
        "name differing only in case": (_zip([*members, ("DATA.csv", evil_csv)]), "differ only in case"),
        "backslash path": (_zip([*members, ("..\\data.csv", evil_csv)]), "not a plain file name"),
        "absolute path": (_zip([*members, ("/tmp/data.csv", evil_csv)]), "not a plain file name"),
        "dot-dot path": (_zip([*members, ("../data.csv", evil_csv)]), "not a plain file name"),
        "directory entry": (
            _zip([*members, (_info("reports/", external_attr=(stat.S_IFDIR | 0o755) << 16 | 0x10), b"")]),
            "not a plain file name",
        ),
        "unicode lookalike": (_zip([*members, ("data\u0441.csv", evil_csv)]), "not plain ASCII"),
        "symlink in place of data.csv": (
            _zip([(_info("data.csv", external_attr=(stat.S_IFLNK | 0o777) << 16), csv), *rest]),
            "symbolic link",
        ),
        "encrypted entry": (_flagged(genuine, "data.csv", 0x1), "encrypted"),
        "Unicode path extra field renames data.csv": (
            _zip([(_info("data.csv", extra=unicode_path), csv), *rest]),
            "extra fields",
        ),
        "local header name differs": (_local_name_swapped(genuine, "data.csv", "evil.csv"), "disagrees"),
        "zip64 entry": (_zip(members, zip64="data.csv"), "zip64"),
        "unlisted file": (_zip([*members, ("extra.csv", evil_csv)]), "extra.csv is in the zip but not in the manifest"),
    }


def _unzip(path: Path, dest: Path) -> dict[str, bytes]:
    """What Info-ZIP unzip writes, never overwriting (the first copy of a name wins, as when run
    without a terminal): every regular file under dest, by relative path."""
    subprocess.run(
        [UNZIP, "-n", "-q", str(path), "-d", str(dest)], capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )
    out = {}
    for p in sorted(dest.rglob("*")):
        if p.is_symlink() or p.is_file():
            out[str(p.relative_to(dest))] = b"<symlink>" if p.is_symlink() else p.read_bytes()
    return out


@needs_unzip
def test_unzip_extracts_exactly_what_verify_checked(genuine, tmp_path):
    bundle, pem = genuine
    proc = cli(["bundle", "verify", str(bundle), "--public-key", str(pem), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    manifest = json.loads({i.filename: d for i, d in _members(bundle)}["manifest.json"])
    extracted = _unzip(bundle, tmp_path / "out")
    assert set(extracted) == set(manifest["files"]) | {"manifest.json", "manifest.sig"}
    for name, info in manifest["files"].items():
        assert hashlib.sha256(extracted[name]).hexdigest() == info["sha256"], name


@needs_unzip
def test_unzip_would_hand_over_the_unsigned_copy(genuine, tmp_path):
    """Why duplicates are refused: zipfile reads the last copy of a name, unzip extracts the first."""
    bundle, _ = genuine
    data, _ = tampered_cases(bundle)["unsigned data.csv before the genuine one"]
    (tmp_path / "dup.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "dup.zip") as zf:
        assert zf.read("data.csv") == {i.filename: d for i, d in _members(bundle)}["data.csv"]
    assert _unzip(tmp_path / "dup.zip", tmp_path / "out")["data.csv"].startswith(b"name,ssn")


def test_every_ambiguous_or_tampered_zip_is_refused(genuine, tmp_path):
    bundle, pem = genuine
    for i, (case, (data, expected)) in enumerate(tampered_cases(bundle).items()):
        path = tmp_path / f"case{i}.zip"
        path.write_bytes(data)
        proc = cli(["bundle", "verify", str(path), "--public-key", str(pem)])
        assert proc.returncode == 1, (case, proc.stdout, proc.stderr)
        assert "bundle FAILED verification" in proc.stderr and expected in proc.stderr, (case, proc.stderr)
        assert "Traceback" not in proc.stderr, (case, proc.stderr)


@needs_unzip
def test_whatever_unzip_extracts_from_a_tampered_zip_is_never_vouched_for(genuine, tmp_path):
    """For every case, either verify refuses, or unzip's output equals the verified files (it never does)."""
    from core.bundle import verify_bundle

    bundle, pem = genuine
    signed = {i.filename: d for i, d in _members(bundle)}
    for i, (case, (data, _)) in enumerate(tampered_cases(bundle).items()):
        check = verify_bundle(data, pem.read_text())
        path = tmp_path / f"case{i}.zip"
        path.write_bytes(data)
        if check.ok:  # pragma: no cover - only reached if a case slips through
            assert _unzip(path, tmp_path / f"out{i}") == signed, case


def test_verify_never_writes_a_key_and_says_what_to_pass(genuine, tmp_path):
    bundle, _ = genuine
    empty = tmp_path / "cwd"
    empty.mkdir()
    proc = cli(["bundle", "verify", str(bundle)], cwd=empty)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "--public-key" in proc.stderr and "--url" in proc.stderr and "--data-dir" in proc.stderr
    assert "FAILED" not in proc.stderr
    assert list(empty.iterdir()) == []
    # a data directory without the server's key is an error too, and stays empty
    proc = cli(["bundle", "verify", str(bundle), "--data-dir", str(empty)], cwd=empty)
    assert proc.returncode == 2 and "signing_key.pem does not exist" in proc.stderr, proc.stderr
    assert list(empty.iterdir()) == []

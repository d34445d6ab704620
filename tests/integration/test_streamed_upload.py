"""A large upload to the S3 backend keeps the web process's memory flat: the body is streamed to disk,
the table is read in batches, and the file goes to the bucket as a multipart upload from disk.

The size is SYNTHGATE_TEST_UPLOAD_MB (default 1024); the peak resident memory of the gunicorn
workers (VmHWM) may grow by less than 300 MB, which includes importing pandas and pyarrow and the
managed transfer's part buffers, so the growth must not depend on the size of the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from pathlib import Path

import pytest
import requests

from tests.integration.s3_support import s3_endpoint  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MB = 1024 * 1024
SIZE_MB = int(os.environ.get("SYNTHGATE_TEST_UPLOAD_MB", "1024"))

SCHEMA = """\
columns:
  age: {kind: ordinal, min: 0, max: 100}
  colour: {kind: categorical, values: [red, green, blue]}
  amount: {kind: continuous, min: 0, max: 1000}
"""


def _write_csv(path: Path, size: int) -> tuple[str, int]:
    """A CSV of about `size` bytes that fits SCHEMA (a block of rows repeated); (its sha256, its rows)."""
    rows = [f"{i % 90 + 5},{('red', 'green', 'blue')[i % 3]},{(i * 37) % 1000}.{i % 100:02d}\n" for i in range(20_000)]
    block = "".join(rows).encode()
    h = hashlib.sha256()
    with path.open("wb") as fh:
        head = b"age,colour,amount\n"
        fh.write(head)
        h.update(head)
        repeats = max(1, size // len(block))
        for _ in range(repeats):
            fh.write(block)
            h.update(block)
    return h.hexdigest(), repeats * len(rows)


class _MultipartBody(io.RawIOBase):
    """A multipart/form-data body read from disk as it is sent, with a known length (no chunked encoding)."""

    def __init__(self, fields: dict[str, str], file_field: str, path: Path) -> None:
        self.boundary = secrets.token_hex(16)
        pre = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        pre += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        self._parts = [io.BytesIO(pre), path.open("rb"), io.BytesIO(f"\r\n--{self.boundary}--\r\n".encode())]
        self.len = len(pre) + path.stat().st_size + len(self._parts[2].getvalue())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        n = 1 << 20 if n is None or n < 0 else n
        while self._parts:
            data = self._parts[0].read(n)
            if data:
                return data
            self._parts.pop(0).close()
        return b""

    def close(self) -> None:
        for part in self._parts:
            part.close()
        super().close()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _peak_rss(pid: int) -> int:
    """VmHWM: the highest resident set size the process has had, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_a_large_upload_to_s3_keeps_the_web_workers_memory_flat(service_factory, s3_endpoint, tmp_path):  # noqa: F811
    import boto3

    svc = service_factory(
        "redis-postgres", storage_url="s3://synthgate/big", s3_endpoint_url=s3_endpoint, max_upload_mb=SIZE_MB + 64
    )
    svc.start_web()
    master = svc.procs[-1].pid
    workers = _children(master)
    assert len(workers) == 2, workers
    svc.api("steward", "GET", "/datasets")  # both workers have served a request and imported what they need
    svc.api("steward", "GET", "/datasets")
    before = {pid: _peak_rss(pid) for pid in workers}

    path = tmp_path / "big.csv"
    sha256, n_rows = _write_csv(path, SIZE_MB * MB)
    size = path.stat().st_size
    body = _MultipartBody({"name": "big", "schema": SCHEMA, "policy": "max_delta: 1e-12"}, "file", path)
    started = time.perf_counter()
    with body:
        resp = requests.post(
            f"{svc.url}/api/v1/datasets",
            data=body,
            timeout=600,
            headers={"Content-Type": body.content_type, "Authorization": f"Bearer {svc.tokens['steward']}"},
        )
    seconds = time.perf_counter() - started
    assert resp.status_code == 201, resp.text[:2000]
    after = {pid: _peak_rss(pid) for pid in workers}
    growth = max(after[pid] - before[pid] for pid in workers)
    print(
        f"\nupload of {size / MB:.0f} MB in {seconds:.0f} s: peak RSS growth of the gunicorn workers {growth / MB:.1f} MB "
        f"(before {[round(v / MB) for v in before.values()]} MB, after {[round(v / MB) for v in after.values()]} MB)"
    )
    assert growth < 300 * MB, (growth, size)

    dataset = resp.json()["dataset"]
    assert dataset["internal"]["rows"] == n_rows
    assert dataset["internal"]["sha256"] == sha256
    assert dataset["schema_confirmed"] is True
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="synthgate", Prefix="big/datasets/").get("Contents", [])]
    assert len(keys) == 1, keys
    obj = s3.get_object(Bucket="synthgate", Key=keys[0])
    assert obj["ContentLength"] == size
    h = hashlib.sha256()
    for chunk in obj["Body"].iter_chunks(1 << 20):
        h.update(chunk)
    assert h.hexdigest() == sha256

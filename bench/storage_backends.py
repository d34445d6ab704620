"""Release time with storage in an S3-compatible object store against local storage, on the same data.

One release of `mst` on tests/data/adult, requested over HTTP, through a real installation
(gunicorn, a Celery worker) whose storage is first the local directory, then a bucket of a moto
S3 server process on 127.0.0.1. The figure is the ratio of request-to-awaiting_approval times
taken in one run; both installations run one after the other on the same machine.

    python -m bench.storage_backends [--out bench/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.service import ROOT, BenchService

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "synthgate-bench",
    "AWS_SECRET_ACCESS_KEY": "synthgate-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ADULT = ROOT / "tests" / "data" / "adult"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _release(folder: Path, overrides: dict[str, str], method: str) -> dict[str, Any]:
    with BenchService(folder, overrides=overrides) as svc:
        svc.start_web()
        svc.start_worker("w1")
        svc.register("adult", ADULT / "adult.csv", ADULT / "schema.yaml")
        job_id, _ = svc.request("adult", method, epsilon=1.0, delta=1e-9, rows=5000)
        (job,), _ = svc.wait([job_id])
        if job.status != "awaiting_approval":
            raise RuntimeError(f"release {job_id} ended {job.status}: {job.error}\n" + svc.log_tail("worker-w1"))
        return {
            "job_id": job_id,
            "total_s": job.total_s,
            "run_s": job.run_s,
            "queue_wait_s": job.queue_wait_s,
            "stages": job.timings,
        }


def _io_s(run: dict[str, Any]) -> float:
    """Seconds of the stages that read or write storage."""
    return float(sum(run["stages"].get(k, 0) for k in ("load", "write")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--method", default="mst")
    args = parser.parse_args(argv)
    os.environ.update(CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="synthgate-bench-") as tmp:
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import boto3
            import requests

            for _ in range(300):
                try:
                    requests.get(endpoint, timeout=2)
                    break
                except requests.RequestException:
                    time.sleep(0.2)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            local = _release(Path(tmp) / "local", {}, args.method)
            s3 = _release(Path(tmp) / "s3", {"storage_url": "s3://bench/run", "s3_endpoint_url": endpoint}, args.method)
        finally:
            moto.terminate()
            moto.wait(timeout=20)
    ratio = s3["total_s"] / local["total_s"]
    result = {
        "case": "storage-backends",
        "method": args.method,
        "data": "tests/data/adult",
        "date": dt.date.today().isoformat(),
        "local": local,
        "s3_moto": s3,
        "s3_over_local": ratio,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"storage-backends-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    stem.with_suffix(".md").write_text(
        f"# Release time: S3 storage (moto, 127.0.0.1) against local storage\n\n"
        f"One `{args.method}` release of tests/data/adult (epsilon 1, 5,000 rows), request to "
        f"awaiting_approval, one run each, one after the other on the same machine.\n\n"
        f"| storage | request to awaiting_approval (s) | in the worker (s) | load + write stages (s) | "
        f"other stages (s) |\n|---|---|---|---|---|\n"
        + "".join(
            f"| {label} | {r['total_s']:.1f} | {r['run_s']:.1f} | {_io_s(r):.2f} | "
            f"{sum(v for v in r['stages'].values() if isinstance(v, int | float)) - _io_s(r):.1f} |\n"
            for label, r in (("local", local), ("S3 (moto)", s3))
        )
        + f"\nRatio S3 / local: **{ratio:.2f}**. The stages that touch storage are `load` (the raw table) "
        "and `write` (artifacts); the others do not, so a difference there is the machine's noise.\n"
    )
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

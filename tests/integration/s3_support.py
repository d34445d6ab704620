"""A real S3-compatible HTTP server (moto's standalone server) on 127.0.0.1, for storage tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import _free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "synthgate-test",
    "AWS_SECRET_ACCESS_KEY": "synthgate-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a fresh S3 server process with a private bucket `synthgate`; AWS credentials in the env."""
    import boto3

    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    port = _free_port()
    log = open(tmp_path / "s3-server.log", "ab")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                requests.get(url, timeout=2)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        "the S3 server did not start: " + (tmp_path / "s3-server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="synthgate")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def bucket_keys(endpoint: str, prefix: str = "") -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="synthgate", Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys

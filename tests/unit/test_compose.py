"""docker-compose.yml describes the multi-machine shape and passes `docker-compose config`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_validates_with_docker_compose():
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose (Debian package) is needed to validate docker-compose.yml: `make test` installs it"
    env = dict(
        os.environ,
        SYNTHGATE_SECRET_KEY="validation-only",
        SYNTHGATE_S3_ACCESS_KEY="validation-only",
        SYNTHGATE_S3_SECRET_KEY="validation-only",
        SYNTHGATE_SIGNING_KEY_PEM="validation-only",
        SYNTHGATE_METRICS_TOKEN="validation-only",
        SYNTHGATE_FLOWER_AUTH="user:validation-only",
    )
    proc = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_compose_has_the_services_with_health_checks_and_no_shared_disk():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    for name in ("web", "worker", "worker-heavy", "redis", "postgres", "minio"):
        assert name in services
        assert "healthcheck" in services[name], name
    assert "gunicorn" in " ".join(services["web"]["command"])
    assert "flower" in services["flower"]["command"] and "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    assert services["worker"]["command"][-2:] == ["--queues", "releases"]
    assert services["worker-heavy"]["command"][-2:] == ["--queues", "releases-heavy"]
    for name in ("web", "worker", "worker-heavy", "migrate"):
        # web and workers share PostgreSQL, Redis and the bucket, never a volume
        assert not services[name].get("volumes"), name
        env = services[name]["environment"]
        assert env["SYNTHGATE_STORAGE_URL"].startswith("s3://")
        assert env["SYNTHGATE_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert "SYNTHGATE_SIGNING_KEY_PEM" in env and "SYNTHGATE_SECRET_KEY" in env

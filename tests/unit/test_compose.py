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
    env = dict(os.environ, SYNTHGATE_SECRET_KEY="validation-only")
    proc = subprocess.run([exe, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_compose_has_the_services_with_health_checks_and_a_shared_volume():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    for name in ("web", "worker", "redis", "postgres"):
        assert name in services
    for name in ("web", "worker", "redis", "postgres"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker"):
        assert any(str(v).startswith("synthgate-data:") for v in services[name]["volumes"])
        assert "gunicorn" in " ".join(services["web"]["command"])
    assert "synthgate-data" in doc["volumes"]

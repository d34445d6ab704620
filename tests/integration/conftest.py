"""Real services for integration tests: PostgreSQL, Redis, gunicorn and Celery worker processes.

Two backends:
* "embedded": SQLite file + kombu's file-system broker under a temporary data dir
  (what `synthgate serve` uses on a bare machine);
* "redis-postgres": a fresh PostgreSQL database per test session and a Redis
  database flushed at the start.

Nothing here is mocked: the web app runs under gunicorn, workers are separate
`celery worker` processes, and tests talk HTTP to them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_DSN = os.environ.get("SYNTHGATE_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 dbname=test")
REDIS_URL = os.environ.get("SYNTHGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import psycopg

    name = f"synthgate_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        user = conn.execute("SELECT current_user").fetchone()[0]
    host_part = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    url = f"postgresql+psycopg://{user}@{host_part.get('host', '127.0.0.1')}:{host_part.get('port', '5432')}/{name}"
    yield url
    from core.db import dispose_engines

    dispose_engines()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    return REDIS_URL


@dataclass
class Service:
    """One synthgate installation: settings, users and their tokens, processes."""

    settings: Any
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)
    url: str | None = None
    logs: Path | None = None
    log_files: list[Any] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.settings.env())
        env["PYTHONPATH"] = str(ROOT)
        return env

    def start_worker(self, name: str = "w1", concurrency: int = 1, queues: str | None = None) -> subprocess.Popen:
        from webapp.cli.server import worker_command

        assert self.logs is not None
        log = open(self.logs / f"worker-{name}.log", "ab")  # noqa: SIM115 - open while the process runs
        self.log_files.append(log)
        proc = subprocess.Popen(
            worker_command(self.settings, concurrency, f"{name}@%h", queues),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        return proc

    def start_web(self) -> str:
        assert self.logs is not None
        port = _free_port()
        log = open(self.logs / "web.log", "ab")  # noqa: SIM115 - open while the process runs
        self.log_files.append(log)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "300",
                "webapp.wsgi:app",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/v1/health", timeout=10).status_code == 200:
                    return self.url
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError("web server exited:\n" + (self.logs / "web.log").read_text()[-3000:])
            time.sleep(0.3)
        raise RuntimeError("web server did not start")

    def kill(self, proc: subprocess.Popen) -> None:
        """kill -9 the process and everything in its session (the worker and its pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for log in self.log_files:
            log.close()
        self.log_files.clear()

    # ----- HTTP helpers ------------------------------------------------------------------------
    def api(self, user: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        assert self.url is not None
        headers = kwargs.pop("headers", {})
        if user:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=120, **kwargs)

    def wait_for(
        self,
        user: str,
        job_id: int,
        until: tuple[str, ...] = ("awaiting_approval", "failed", "approved", "rejected"),
        timeout: float = 600,
        predicate: Any = None,
    ) -> dict[str, Any]:
        deadline = time.time() + timeout
        seen: list[float] = []
        while time.time() < deadline:
            release = self.api(user, "GET", f"/releases/{job_id}").json()["release"]
            seen.append(release["progress"])
            if predicate is not None and predicate(release):
                release["_progress_seen"] = seen
                return release
            if predicate is None and release["status"] in until:
                release["_progress_seen"] = seen
                return release
            time.sleep(0.25)
        raise AssertionError(
            f"release {job_id} did not reach {until} in {timeout}s; last: {release}\n" + self.worker_logs()
        )

    def worker_logs(self) -> str:
        assert self.logs is not None
        return "\n".join(p.read_text()[-4000:] for p in sorted(self.logs.glob("worker-*.log")))


def make_settings(
    tmp: Path, backend: str, pg_url: str | None = None, redis_url: str | None = None, **overrides: Any
) -> Any:
    from core.settings import Settings

    if backend == "embedded":
        return Settings.from_env(environ={}, data_dir=str(tmp), **overrides)
    assert pg_url and redis_url
    return Settings.from_env(environ={}, data_dir=str(tmp), database_url=pg_url, broker_url=redis_url, **overrides)


def setup_service(settings: Any, logs: Path) -> Service:
    from core import audit
    from core.auth import create_token, create_user
    from core.db import write_session
    from core.migrate import upgrade

    upgrade(settings)
    svc = Service(settings=settings, logs=logs)
    with write_session(settings) as s:
        for name, role in (
            ("steward", "steward"),
            ("steward2", "steward"),
            ("analyst", "analyst"),
            ("analyst2", "analyst"),
            ("admin", "admin"),
        ):
            user = create_user(s, f"{name}-{secrets.token_hex(3)}", role, "correct horse battery")
            svc.tokens[name] = create_token(s, user)
            svc.tokens[name + ":username"] = user.username
        audit.record(s, "test.setup", actor="pytest")
    return svc


@pytest.fixture(params=["embedded", "redis-postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def service_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build services on demand: service_factory(backend, **settings overrides)."""
    made: list[Service] = []

    def make(backend: str, **overrides: Any) -> Service:
        pg = request.getfixturevalue("pg_url") if backend == "redis-postgres" else None
        rd = request.getfixturevalue("redis_url") if backend == "redis-postgres" else None
        data = tmp_path / f"svc{len(made)}"
        data.mkdir()
        logs = tmp_path / f"logs{len(made)}"
        logs.mkdir()
        svc = setup_service(make_settings(data, backend, pg, rd, **overrides), logs)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.stop()
    from core.db import dispose_engines

    dispose_engines()

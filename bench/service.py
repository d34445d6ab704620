"""A real synthgate installation for the service cases: gunicorn, Celery worker processes, embedded backend.

The web app runs under gunicorn and each worker is a separate `celery worker`
process (the command `synthgate worker` runs), on the single-machine backend
(SQLite file, kombu's file-system broker) in a scratch data directory.
Releases are requested over HTTP with an analyst's token, exactly as a client
would; their timestamps and stage timings are read back from the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mib, process_cpu_s

__all__ = ["BenchService", "JobTimes"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            kids = [int(x) for x in fh.read().split()]
    except OSError:
        return out
    for kid in kids:
        out.append(kid)
        out.extend(_descendants(kid))
    return out


@dataclass
class JobTimes:
    """One release job as the database recorded it."""

    job_id: int
    status: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    timings: dict[str, float]
    error: str | None = None

    @property
    def queue_wait_s(self) -> float | None:
        return None if self.started_at is None else (self.started_at - self.created_at).total_seconds()

    @property
    def run_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def total_s(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.created_at).total_seconds()


@dataclass
class BenchService:
    """Processes and users of one scratch installation; `stop()` ends every process it started."""

    folder: Path
    settings: Any = None
    tokens: dict[str, str] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    web: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    url: str | None = None
    _logs: list[Any] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)  # more settings, e.g. storage_url for S3

    def __post_init__(self) -> None:
        from core import audit
        from core.auth import create_token, create_user
        from core.db import write_session
        from core.migrate import upgrade
        from core.settings import Settings

        self.folder.mkdir(parents=True, exist_ok=True)
        # a throwaway installation that runs many releases on one dataset: its budget ceiling is the
        # bench's own (a real installation keeps the defaults, and a second steward confirms raises)
        self.settings = Settings.from_env(
            environ={},
            data_dir=str(self.folder / "data"),
            budget_max_epsilon="1000",
            budget_confirm_epsilon="1000",
            budget_confirm_delta="1e-3",
            **self.overrides,
        )
        upgrade(self.settings)
        with write_session(self.settings) as s:
            for name, role in (("steward", "steward"), ("analyst", "analyst")):
                user = create_user(s, f"bench-{name}-{secrets.token_hex(3)}", role, PASSWORD)
                self.tokens[name] = create_token(s, user, label="bench")
                self.usernames[name] = user.username
            audit.record(s, "bench.setup", actor="synthgate bench")

    # ----- processes -------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.settings.env())
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def _log(self, name: str) -> Any:
        fh = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(fh)
        return fh

    def start_web(self, timeout: float = 120) -> str:
        import requests

        port = _free_port()
        self.web = subprocess.Popen(
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
            stdout=self._log("web"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/v1/health", timeout=10).status_code == 200:
                    return self.url
            except requests.RequestException:
                pass
            if self.web.poll() is not None:
                raise RuntimeError("web server exited:\n" + self.log_tail("web"))
            time.sleep(0.2)
        raise RuntimeError("web server did not start in time")

    def start_worker(self, name: str, timeout: float = 120) -> subprocess.Popen:
        """Start one worker process (concurrency 1) and wait until its pool is up."""
        from workers.command import worker_command

        proc = subprocess.Popen(
            worker_command(self.settings, 1, f"{name}@%h"),
            env=self.env,
            stdout=self._log(f"worker-{name}"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.workers.append(proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n" + self.log_tail(f"worker-{name}"))
            if " ready." in self.log_tail(f"worker-{name}"):
                return proc
            time.sleep(0.2)
        raise RuntimeError(f"worker {name} did not become ready:\n" + self.log_tail(f"worker-{name}"))

    def worker_peak_rss_mib(self) -> dict[str, float]:
        """Peak RSS of each worker process and its pool children (VmHWM), by pid."""
        out: dict[str, float] = {}
        for proc in self.workers:
            if proc.poll() is not None:
                continue
            for pid in [proc.pid, *_descendants(proc.pid)]:
                out[str(pid)] = peak_rss_mib(pid)
        return out

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the web server's processes and by the workers' processes."""

        def tree(proc: subprocess.Popen | None) -> float:
            if proc is None or proc.poll() is not None:
                return 0.0
            return sum(process_cpu_s(pid) for pid in [proc.pid, *_descendants(proc.pid)])

        return {"web": tree(self.web), "workers": sum(tree(p) for p in self.workers)}

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for fh in self._logs:
            fh.close()
        self._logs.clear()
        from core.db import dispose_engines

        dispose_engines()

    def __enter__(self) -> BenchService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- API -------------------------------------------------------------------------------
    def api(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        assert self.url is not None, "start_web() first"
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=120, **kwargs)

    def register(
        self, name: str, csv_path: Path, schema_path: Path, epsilon_budget: str = "1000", delta_budget: str = "1e-3"
    ) -> dict[str, Any]:
        """Register a dataset as the steward and grant it to the analyst."""
        with open(csv_path, "rb") as fh:
            resp = self.api(
                "steward",
                "POST",
                "/datasets",
                files={"file": (csv_path.name, fh)},
                data={
                    "name": name,
                    "schema": schema_path.read_text(encoding="utf-8"),
                    "epsilon_budget": epsilon_budget,
                    "delta_budget": delta_budget,
                },
            )
        if resp.status_code != 201:
            raise RuntimeError(f"registering {name} failed: {resp.status_code} {resp.text[:500]}")
        grant = self.api("steward", "POST", f"/datasets/{name}/grants", json={"user": self.usernames["analyst"]})
        if grant.status_code != 201:
            raise RuntimeError(f"granting {name} failed: {grant.status_code} {grant.text[:500]}")
        return resp.json()["dataset"]

    def dataset_policy(self, name: str) -> dict[str, Any]:
        from core.db import session_scope
        from core.models import Dataset

        with session_scope(self.settings) as s:
            ds = s.query(Dataset).filter_by(name=name).one()
            return dict(ds.policy or {})

    def request(
        self, dataset: str, method: str, epsilon: float, delta: float, rows: int, options: dict[str, Any] | None = None
    ) -> tuple[int, float]:
        """Request a release as the analyst; (job id, seconds the request took)."""
        body: dict[str, Any] = {"dataset": dataset, "method": method, "epsilon": epsilon, "delta": delta, "rows": rows}
        if options:
            body["options"] = options
        t0 = time.perf_counter()
        resp = self.api("analyst", "POST", "/releases", json=body)
        took = time.perf_counter() - t0
        if resp.status_code != 202:
            raise RuntimeError(f"release request refused: {resp.status_code} {resp.text[:500]}")
        return int(resp.json()["release"]["id"]), took

    def jobs(self, job_ids: list[int]) -> list[JobTimes]:
        from core.db import session_scope
        from core.models import ReleaseJob

        with session_scope(self.settings) as s:
            rows = s.query(ReleaseJob).filter(ReleaseJob.id.in_(job_ids)).all()
            found = {
                j.id: JobTimes(
                    j.id, j.status, j.created_at, j.started_at, j.finished_at, dict(j.timings or {}), j.error
                )
                for j in rows
            }
        return [found[i] for i in job_ids]

    def worker_pids(self, job_ids: list[int]) -> dict[int, str | None]:
        """Job id -> pid of the worker process that (last) started it, from the audit log."""
        from core.db import session_scope
        from core.models import AuditEvent

        out: dict[int, str | None] = dict.fromkeys(job_ids)
        with session_scope(self.settings) as s:
            events = (
                s.query(AuditEvent)
                .filter(AuditEvent.action == "release.start", AuditEvent.object_id.in_([str(i) for i in job_ids]))
                .order_by(AuditEvent.id)
                .all()
            )
            for e in events:
                owner = str((e.detail or {}).get("worker", ""))
                parts = owner.split(":")
                out[int(e.object_id)] = parts[1] if len(parts) > 1 else owner or None
        return out

    def wait(self, job_ids: list[int], timeout: float = 3600, poll: float = 0.1) -> tuple[list[JobTimes], float]:
        """Wait until every job has left the queue and the worker; (jobs, seconds waited)."""
        done = ("awaiting_approval", "failed", "approved", "rejected")
        t0 = time.perf_counter()
        while True:
            jobs = self.jobs(job_ids)
            if all(j.status in done for j in jobs):
                return jobs, time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(
                    f"releases {job_ids} not done after {timeout:.0f} s: "
                    f"{[(j.job_id, j.status) for j in jobs]}\n" + self.log_tail("worker-w1")
                )
            if not any(p.poll() is None for p in self.workers):
                raise RuntimeError("every worker has exited:\n" + self.log_tail("worker-w1"))
            time.sleep(poll)

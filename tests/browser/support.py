"""Helpers shared by the web app's integration and browser tests.

`PageClient` drives the pages through Flask's test client the way a browser
does: it reads the CSRF token from each form it submits. `run_job_here` runs a
queued release through the real pipeline in this process (claim, lease,
pipeline, finish), for tests that need a finished release without a worker.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO_CSV = ROOT / "core" / "demo" / "adult_sample.csv"
DEMO_SCHEMA = ROOT / "core" / "demo" / "adult_schema.yaml"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def release_method() -> str:
    """mst when its module is installed here, else the dp-marginals baseline."""
    from privacy.synthesizers import create_synthesizer

    try:
        create_synthesizer("mst")
    except ModuleNotFoundError:
        return "dp-marginals"
    return "mst"


def csrf_token(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token on the page"
    return unescape(m.group(1) or m.group(2))


def form_action_token(html: str, action: str) -> str:
    """The CSRF token of the form that posts to `action` (every form carries one)."""
    start = html.find(f'action="{action}"')
    assert start >= 0, f"no form posting to {action}"
    return csrf_token(html[start:])


class PageClient:
    """A logged-in browser session on the test client."""

    def __init__(self, app: Any, username: str | None = None, password: str = PASSWORD) -> None:
        self.client = app.test_client()
        self.username = username
        if username is not None:
            resp = self.login(username, password)
            assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]

    def login(self, username: str, password: str):  # type: ignore[no-untyped-def]
        page = self.client.get("/login").get_data(as_text=True)
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": csrf_token(page)}
        )

    def get(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.get(path, **kw)

    def csrf(self) -> str:
        """A CSRF token valid for this session (from the account page, which every role may open)."""
        return csrf_token(self.client.get("/account").get_data(as_text=True))

    def post_form(self, page_path: str, action: str, data: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        """Open `page_path`, take the CSRF token of its form posting to `action`, submit `data`."""
        page = self.client.get(page_path)
        assert page.status_code in (200, 201), (page_path, page.status_code)
        token = form_action_token(page.get_data(as_text=True), action)
        return self.client.post(action, data={**(data or {}), "csrf_token": token}, **kw)

    def post_raw(self, action: str, data: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.post(action, data=data or {}, **kw)


@dataclass
class AppEnv:
    """An app on a real SQLite file and storage directory, with one user per role (and spares)."""

    settings: Any
    app: Any
    users: dict[str, str] = field(default_factory=dict)  # role key -> username
    tokens: dict[str, str] = field(default_factory=dict)

    def api(self, who: str, method: str, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        headers = kw.pop("headers", {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.app.test_client().open(f"/api/v1{path}", method=method, headers=headers, **kw)

    def pages(self, who: str) -> PageClient:
        return PageClient(self.app, self.users[who])


def make_app_env(tmp: Path, **overrides: Any) -> AppEnv:
    from core import audit
    from core.auth import create_token, create_user
    from core.db import write_session
    from core.migrate import upgrade
    from core.settings import Settings
    from webapp import create_app

    settings = Settings.from_env(environ={}, data_dir=str(tmp), **overrides)
    upgrade(settings)
    env = AppEnv(settings=settings, app=None)
    with write_session(settings) as s:
        for key, role in (
            ("steward", "steward"),
            ("steward2", "steward"),
            ("analyst", "analyst"),
            ("analyst2", "analyst"),
            ("admin", "admin"),
        ):
            user = create_user(s, f"{key}-{secrets.token_hex(2)}", role, PASSWORD)
            env.users[key] = user.username
            env.tokens[key] = create_token(s, user)
        audit.record(s, "test.setup", actor="pytest")
    env.app = create_app(settings)
    return env


def register_demo(
    env: AppEnv, name: str = "adult", epsilon_budget: str = "3", grant: str | None = "analyst", schema: bool = True
) -> dict:
    """The demo table; without `schema` a schema is proposed from the data and awaits confirmation."""
    data = {
        "name": name,
        "epsilon_budget": epsilon_budget,
        "delta_budget": "1e-6",
        "file": (io.BytesIO(DEMO_CSV.read_bytes()), "adult.csv"),
    }
    if schema:
        data["schema"] = DEMO_SCHEMA.read_text()
    resp = env.api("steward", "POST", "/datasets", data=data)
    assert resp.status_code == 201, resp.get_json()
    if grant:
        r = env.api("steward", "POST", f"/datasets/{name}/grants", json={"user": env.users[grant]})
        assert r.status_code == 201, r.get_json()
    return resp.get_json()["dataset"]


def run_job_here(settings: Any, job_id: int) -> None:
    """Run one queued release through the real pipeline in this process.

    Warnings are shown, not raised, as in a worker process: pytest's
    warnings-as-errors is for the code under test here, not the libraries the
    pipeline calls."""
    import warnings

    from core.storage import get_storage
    from workers.jobs import JobControl, claim
    from workers.pipeline import run_pipeline

    owner = f"pytest:{secrets.token_hex(3)}"
    assert claim(job_id, owner, settings), f"job {job_id} could not be claimed"
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        with JobControl(job_id, owner, settings) as control:
            run_pipeline(job_id, control, settings, get_storage(settings))


def request_release(
    env: AppEnv, who: str = "analyst", dataset: str = "adult", epsilon: float = 0.25, rows: int = 300
) -> int:
    resp = env.api(
        who,
        "POST",
        "/releases",
        json={"dataset": dataset, "method": release_method(), "epsilon": epsilon, "delta": 1e-9, "rows": rows},
    )
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["release"]["id"]


def finished_release(env: AppEnv, who: str = "analyst", dataset: str = "adult", approve: bool = False) -> int:
    """A release of `who`, produced by the real pipeline; approved by the steward if asked."""
    job_id = request_release(env, who, dataset)
    run_job_here(env.settings, job_id)
    view = env.api("steward", "GET", f"/releases/{job_id}").get_json()["release"]
    assert view["status"] == "awaiting_approval", view
    if approve:
        body = {"comment": "ok"}
        if view["gate"]["overall"] == "fail":
            body["override"] = "reviewed for the test"
        resp = env.api("steward", "POST", f"/releases/{job_id}/approve", json=body)
        assert resp.status_code == 200, resp.get_json()
    return job_id


def start_web(svc: Any, web_workers: int = 2, timeout: float = 120) -> str:
    """Start gunicorn for a tests/integration Service, tolerant of a slow, shared machine
    (the health check may take seconds while the workers import)."""
    import subprocess
    import sys
    import time

    import requests

    from tests.integration.conftest import _free_port

    port = _free_port()
    with open(svc.logs / "web.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(web_workers),
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "300",
                "webapp.wsgi:app",
            ],
            env=svc.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    svc.procs.append(proc)
    svc.url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(svc.url + "/api/v1/health", timeout=15).status_code == 200:
                return svc.url
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError("web server exited:\n" + (svc.logs / "web.log").read_text()[-3000:])
        time.sleep(0.3)
    raise RuntimeError("web server did not start")


def start_worker(svc: Any, name: str = "w1", concurrency: int = 1) -> Any:
    """Start one Celery worker process for a tests/integration Service."""
    import subprocess

    from webapp.cli.server import worker_command

    with open(svc.logs / f"worker-{name}.log", "ab") as log:
        proc = subprocess.Popen(
            worker_command(svc.settings, concurrency, f"{name}@%h"),
            env=svc.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    svc.procs.append(proc)
    return proc


def register_demo_table(
    svc: Any, name: str, *, schema: bool = True, grant: str | None = "analyst", **fields: str
) -> dict:
    """The demo table registered on a running service (`svc.api`) as `name`, with its documented schema
    unless `schema=False` (a proposal then awaits confirmation), shared with `grant`; `fields` are the
    other form fields (policy, budgets, description). Returns the dataset as the API gave it."""
    data = {**fields, "name": name}
    if schema:
        data["schema"] = DEMO_SCHEMA.read_text()
    with open(DEMO_CSV, "rb") as fh:
        resp = svc.api("steward", "POST", "/datasets", files={"file": ("adult.csv", fh)}, data=data)
    assert resp.status_code == 201, resp.text
    if grant:
        r = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens[f"{grant}:username"]})
        assert r.status_code == 201, r.text
    return resp.json()["dataset"]


def demo_service(base: Path, worker: bool = True) -> Any:
    """gunicorn (and a worker unless `worker=False`) in `base`, with the demo table registered as `adult`
    and shared with the analyst. The caller stops it (`svc.stop()`)."""
    from tests.integration.conftest import make_settings, setup_service

    (base / "data").mkdir()
    (base / "logs").mkdir()
    svc = setup_service(make_settings(base / "data", "embedded"), base / "logs")
    try:
        start_web(svc)
        if worker:
            start_worker(svc)
        register_demo_table(
            svc,
            "adult",
            epsilon_budget="4",
            delta_budget="1e-6",
            description="UCI Adult (1994 census extract), 3,000-row sample",
        )
    except BaseException:
        svc.stop()
        raise
    return svc

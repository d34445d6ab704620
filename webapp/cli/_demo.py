"""`synthgate demo`: one full release on the bundled demo data.

It runs the real path: the web app's API (in process), a Celery worker in its
own process on the embedded broker, the ledger, the steward's approval and the
signed bundle, then verifies the bundle's manifest and prints its path.

The demo users and dataset that `synthgate serve` creates on an empty
database (`ensure_demo_setup`) are set up here too, and the server commands
import them from here.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import click

from webapp.cli._common import child_env, fail
from workers.command import worker_command

DEMO_DIR = Path(__file__).resolve().parents[2] / "core" / "demo"
DEMO_USERS = (("steward", "steward"), ("steward2", "steward"), ("analyst", "analyst"), ("admin", "admin"))
DEMO_TOKEN_LABEL = "demo login"


def ensure_demo_setup(settings) -> dict[str, dict[str, str | None]] | None:  # type: ignore[no-untyped-def]
    """On an empty database: demo users with fresh passwords and API tokens, and the demo dataset.

    The logins ({user: {"role", "password", "token"}}) are written to data_dir/demo-logins.json
    (mode 0600) so later starts can print them again. Each token's issue is audited (token.create,
    by the system). Returns the logins, or None when the database already had users and no logins
    file exists.
    """
    from sqlalchemy import func, select

    from core import audit, releases
    from core.auth import create_token_row, create_user
    from core.db import write_session
    from core.models import User
    from core.storage import get_storage

    logins_path = settings.data_dir / "demo-logins.json"
    with write_session(settings) as s:
        if s.execute(select(func.count()).select_from(User)).scalar_one() == 0:
            logins: dict[str, dict[str, str | None]] = {}
            users = {}
            for name, role in DEMO_USERS:
                password = secrets.token_urlsafe(9)
                users[name] = create_user(s, name, role, password)
                logins[name] = {"role": role, "password": password, "token": None}
            audit.record(s, "users.demo_created", actor="system", detail={"users": list(logins)})
            for name, user in users.items():
                token, row = create_token_row(s, user, label=DEMO_TOKEN_LABEL)
                audit.record(
                    s,
                    "token.create",
                    actor="system",
                    object_type="token",
                    object_id=row.id,
                    detail={"user": name, "label": DEMO_TOKEN_LABEL, "prefix": row.prefix},
                )
                logins[name]["token"] = token
            ds, _ = releases.register_dataset(
                s,
                get_storage(settings),
                users["steward"],
                upload_path=DEMO_DIR / "adult_sample.csv",
                filename="adult_sample.csv",
                name="adult-demo",
                schema_text=(DEMO_DIR / "adult_schema.yaml").read_text(),
                epsilon_budget="3",
                delta_budget="1e-6",
                description="3,000-row sample of UCI Adult (demo data)",
                settings=settings,
            )
            releases.grant(s, users["steward"], ds, "analyst")
            fd = os.open(logins_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # a file left from an earlier database keeps its mode through O_TRUNC
            with os.fdopen(fd, "w") as fh:
                json.dump(logins, fh, indent=2)
            return logins
    if logins_path.exists():
        return read_logins(logins_path)
    return None


def read_logins(path: Path) -> dict[str, dict[str, str | None]]:
    """demo-logins.json, also in its earlier form ({user: password}, no tokens)."""
    roles = dict(DEMO_USERS)
    out: dict[str, dict[str, str | None]] = {}
    for name, entry in json.loads(path.read_text()).items():
        if isinstance(entry, str):
            entry = {"password": entry, "token": None}
        out[name] = {
            "role": entry.get("role") or roles.get(name),
            "password": entry.get("password"),
            "token": entry.get("token"),
        }
    return out


def run_demo(*, data_dir: str | None, method: str, epsilon: str, output: str | None, timeout: int) -> Path:
    from sqlalchemy import select

    from core.auth import create_token
    from core.bundle import public_key_pem, verify_bundle
    from core.db import write_session
    from core.migrate import upgrade
    from core.models import User
    from core.settings import Settings
    from webapp import create_app

    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="synthgate-demo-"))
    settings = Settings.from_env(data_dir=str(root), database_url="", broker_url="")
    settings.ensure_dirs()
    settings.get_secret_key()
    click.echo(f"demo data directory: {settings.data_dir}", err=True)
    upgrade(settings)
    logins = ensure_demo_setup(settings) or {}
    analyst_token = (logins.get("analyst") or {}).get("token")
    steward_token = (logins.get("steward") or {}).get("token")
    if not (analyst_token and steward_token):  # a data directory from before demo logins had tokens
        with write_session(settings) as s:
            analyst = s.execute(select(User).where(User.username == "analyst")).scalar_one()
            steward = s.execute(select(User).where(User.username == "steward")).scalar_one()
            analyst_token = create_token(s, analyst, label="demo")
            steward_token = create_token(s, steward, label="demo")

    worker = subprocess.Popen(
        worker_command(settings, 1, "demo-worker@%h"),
        env=child_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        app = create_app(settings)
        client = app.test_client()
        a = {"Authorization": f"Bearer {analyst_token}"}
        st = {"Authorization": f"Bearer {steward_token}"}
        resp = client.post(
            "/api/v1/releases",
            headers=a,
            json={
                "dataset": "adult-demo",
                "method": method,
                "epsilon": float(epsilon),
                "delta": 1e-9,
                "rows": 3000,
            },
        )
        if resp.status_code != 202:
            fail(f"the request was refused: {resp.get_json()}")
        job_id = resp.get_json()["release"]["id"]
        click.echo(f"release {job_id} requested ({method}, epsilon {epsilon}); waiting for the worker", err=True)
        deadline = time.time() + timeout
        last = -1
        while True:
            release = client.get(f"/api/v1/releases/{job_id}", headers=st).get_json()["release"]
            pct = int(round(100 * release["progress"]))
            if pct != last:
                click.echo(f"  {pct:3d}%  {release['status']}  {release.get('message') or ''}", err=True)
                last = pct
            if release["status"] not in ("queued", "running"):
                break
            if worker.poll() is not None:
                fail("the demo worker stopped: " + (worker.stderr.read().decode()[-2000:] if worker.stderr else ""), 1)
            if time.time() > deadline:
                fail(f"the release did not finish within {timeout} s", 1)
            time.sleep(0.5)
        if release["status"] != "awaiting_approval":
            internal = release.get("internal") or {}
            fail(f"the release ended {release['status']}: {release.get('message')} {internal.get('error') or ''}", 1)
        click.echo(f"  gate: {(release.get('gate') or {}).get('overall')}", err=True)
        body = {"comment": "demo approval"}
        if (release.get("gate") or {}).get("overall") == "fail":
            body["override"] = "demo run on a small sample; reviewed by the demo script"
        resp = client.post(f"/api/v1/releases/{job_id}/approve", headers=st, json=body)
        if resp.status_code != 200:
            fail(f"approval failed: {resp.get_json()}", 1)
        resp = client.get(f"/api/v1/releases/{job_id}/bundle", headers=a)
        if resp.status_code != 200:
            fail(f"download failed: {resp.get_json()}", 1)
        path = Path(output) if output else settings.data_dir / f"synthgate-release-{job_id}.zip"
        path.write_bytes(resp.get_data())
        check = verify_bundle(path, public_key_pem(settings))
        if not check.ok:
            fail("the bundle failed verification: " + "; ".join(check.problems), 1)
        click.echo(f"bundle verified: signature and {len(check.manifest['files'])} file hashes match", err=True)
        return path.resolve()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()

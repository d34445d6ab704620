"""`synthgate demo`: one full release on the bundled demo data.

It runs the real path: the web app's API (in process), a Celery worker in its
own process on the embedded broker, the ledger, the steward's approval and the
signed bundle, then verifies the bundle's manifest and prints its path.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import click

from webapp.cli._common import fail


def run_demo(*, data_dir: str | None, method: str, epsilon: str, output: str | None, timeout: int) -> Path:
    from sqlalchemy import select

    from core.auth import create_token
    from core.bundle import public_key_pem, verify_bundle
    from core.db import write_session
    from core.migrate import upgrade
    from core.models import User
    from core.settings import Settings
    from webapp import create_app
    from webapp.cli.server import child_env, ensure_demo_setup, worker_command

    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="synthgate-demo-"))
    settings = Settings.from_env(data_dir=str(root), database_url="", broker_url="")
    settings.ensure_dirs()
    settings.get_secret_key()
    click.echo(f"demo data directory: {settings.data_dir}", err=True)
    upgrade(settings)
    ensure_demo_setup(settings)
    with write_session(settings) as s:
        analyst = s.execute(select(User).where(User.username == "analyst")).scalar_one()
        steward = s.execute(select(User).where(User.username == "steward")).scalar_one()
        analyst_token = create_token(s, analyst, label="demo")
        steward_token = create_token(s, steward, label="demo")

    worker = subprocess.Popen(worker_command(settings, 1, "demo-worker@%h"), env=child_env(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        app = create_app(settings)
        client = app.test_client()
        a = {"Authorization": f"Bearer {analyst_token}"}
        st = {"Authorization": f"Bearer {steward_token}"}
        resp = client.post("/api/v1/releases", headers=a, json={
            "dataset": "adult-demo", "method": method, "epsilon": float(epsilon), "delta": 1e-9, "rows": 3000,
        })
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

"""Commands that run on the service's machine: serve, worker, db, users, demo, audit verify."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import click

from webapp.cli._common import child_env, fail, handle_errors
from webapp.cli._demo import DEMO_DIR, DEMO_USERS, ensure_demo_setup, run_demo  # noqa: F401 - DEMO_DIR, DEMO_USERS re-exported
from workers.command import worker_command


def _settings(**overrides: Any):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings.from_env(**overrides)


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option("--workers", "n_workers", default=1, show_default=True, type=int, help="Celery worker processes.")
    @click.option("--web-workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where the database, storage and embedded broker live (SYNTHGATE_DATA_DIR).",
    )
    @click.option("--no-demo", is_flag=True, help="Do not create demo users and data on an empty database.")
    @handle_errors
    def serve(host: str, port: int, n_workers: int, web_workers: int, data_dir: str | None, no_demo: bool) -> None:
        """Run the web app and worker(s) with the embedded defaults (or SYNTHGATE_* settings)."""
        from core.migrate import upgrade

        settings = _settings(data_dir=data_dir)
        settings.ensure_dirs()
        settings.get_secret_key()
        upgrade(settings)
        logins = None if no_demo else ensure_demo_setup(settings)
        env = child_env(settings)
        procs: list[subprocess.Popen] = []
        for i in range(max(n_workers, 1)):
            procs.append(subprocess.Popen(worker_command(settings, 1, f"worker{i + 1}@%h"), env=env))
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(web_workers),
                "--threads",
                "4",
                "--bind",
                f"{host}:{port}",
                "--timeout",
                "300",
                "--access-logfile",
                "-",
                "webapp.wsgi:app",
            ],
            env=env,
        )
        procs.append(web)
        url = f"http://{host}:{port}/"
        click.echo(f"synthgate is running at {url}")
        click.echo(f"  data directory: {settings.data_dir}")
        click.echo(f"  database:       {_redact(settings.database_url)}")
        click.echo(f"  broker:         {_redact(settings.broker_url)}")
        if logins:
            click.echo(f"  demo logins (also in {settings.data_dir / 'demo-logins.json'}):")
            for name, login in logins.items():
                token = f"  API token {login['token']}" if login.get("token") else ""
                click.echo(f"    {login.get('role') or '':<8} {name:<9} password {login['password']}{token}")
        click.echo("Press Ctrl-C to stop.")
        _supervise(procs)

    @cli.command()
    @click.option("--concurrency", default=1, show_default=True, type=int)
    @click.option("--hostname", default=None, help="Celery node name, e.g. worker1@%h.")
    @click.option(
        "--queues",
        default=None,
        help="Comma-separated queues to serve: releases (quick methods), releases-heavy (GANs, VAEs, "
        "MWEM). Default: both.",
    )
    @handle_errors
    def worker(concurrency: int, hostname: str | None, queues: str | None) -> None:
        """Run one Celery worker (settings from SYNTHGATE_*)."""
        from workers.celery_app import QUEUES

        if queues is not None:
            unknown = sorted({q.strip() for q in queues.split(",")} - set(QUEUES))
            if unknown or not queues.strip():
                raise click.BadParameter(
                    f"unknown queue(s) {unknown}; use some of {', '.join(QUEUES)}", param_hint="--queues"
                )
        settings = _settings()
        settings.ensure_dirs()
        os.execvpe(sys.executable, worker_command(settings, concurrency, hostname, queues), child_env(settings))

    @cli.group()
    def db() -> None:
        """Database migrations."""

    @db.command("upgrade")
    @click.option("--revision", default="head", show_default=True)
    @handle_errors
    def db_upgrade(revision: str) -> None:
        """Apply migrations up to REVISION."""
        from core.migrate import current_revision, upgrade

        settings = _settings()
        upgrade(settings, revision)
        click.echo(f"database at revision {current_revision(settings)}")

    @cli.group()
    def users() -> None:
        """User accounts (runs against the database, on the server's machine)."""

    @users.command("create")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["steward", "analyst", "admin"]), required=True)
    @click.option("--password", default=None, help="Password for the web pages (asked if --prompt).")
    @click.option("--prompt", is_flag=True, help="Ask for the password.")
    @click.option("--email", default=None, help="Where notifications about the user's releases go.")
    @click.option("--json", "as_json", is_flag=True)
    @handle_errors
    def users_create(
        name: str, role: str, password: str | None, prompt: bool, as_json: bool, email: str | None
    ) -> None:
        """Create a user and print an API token (shown once).

        This is the bootstrap path: while the database has fewer than two active stewards, a steward
        or admin gets the role at once, and the API token is printed. After that the account is
        made as an admin makes one on the web: the role waits for a steward to confirm it (the user
        is an analyst with no grants until then), the password given here must be changed at first
        login, and no token is printed: the user creates their own once logged in.
        """
        from sqlalchemy import func, select

        from core import audit, confirmations
        from core.auth import create_token, create_user
        from core.db import write_session
        from core.migrate import upgrade
        from core.models import Role, User
        from core.notifications import check_email

        settings = _settings()
        upgrade(settings)
        if prompt:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        policy = {"min_length": settings.password_min_length, "min_score": settings.password_min_score}
        with write_session(settings) as s:
            stewards = s.execute(
                select(func.count()).select_from(User).where(User.role == Role.steward.value, User.active.is_(True))
            ).scalar_one()
            bootstrap = stewards < 2
            if not bootstrap and not password:
                fail(
                    "give --password or --prompt: the user logs in with it once, changes it, and then creates "
                    "their own API token"
                )
            start_role = role if bootstrap or role not in confirmations.ELEVATED_ROLES else Role.analyst.value
            user = create_user(s, name, start_role, password, policy=policy, must_change_password=not bootstrap)
            user.email = check_email(email)
            token = create_token(s, user, label="created with the user") if bootstrap else None
            audit.record(
                s,
                "users.create",
                actor="cli",
                object_type="user",
                object_id=user.id,
                detail={
                    "username": name,
                    "role": start_role,
                    "requested_role": role,
                    "bootstrap": bootstrap,
                    "must_change_password": not bootstrap,
                },
            )
            change = None
            if start_role != role:
                change = confirmations.request_change(
                    s,
                    "cli",
                    confirmations.ROLE,
                    "user",
                    user.id,
                    {"role": role, "username": name, "before": start_role},
                )
            change_id = change.id if change is not None else None
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "username": name,
                        "role": start_role,
                        "token": token,
                        "must_change_password": not bootstrap,
                        "awaiting_confirmation": change_id,
                    }
                )
            )
        else:
            click.echo(f"created {start_role} '{name}'")
            if change_id is not None:
                click.echo(
                    f"the {role} role takes effect when a steward confirms change {change_id} "
                    "(Confirmations page, or POST /api/v1/confirmations/{id}/confirm)"
                )
            if token is not None:
                click.echo(f"API token (shown once): {token}")
            else:
                click.echo(f"'{name}' must change this password at first login, then creates their own API token")

    @users.command("token")
    @click.argument("name")
    @click.option(
        "--break-glass",
        is_flag=True,
        help="Issue a token for an existing user although it lets whoever reads it act as them.",
    )
    @click.option("--reason", default=None, help="Why (required with --break-glass; kept in the audit log).")
    @handle_errors
    def users_token(name: str, break_glass: bool, reason: str | None) -> None:
        """Issue a new API token for an existing user: recovery only, with --break-glass and --reason.

        Users create their own tokens on the "API tokens" page. A token minted here for someone else
        would let the operator act as that user (and, for a steward, get around four eyes), so it is
        refused unless asked for explicitly; the event, the reason and the token's prefix are audited
        and the token is labelled as such, for the user and the admins to see.
        """
        from sqlalchemy import select

        from core import audit
        from core.auth import create_token_row
        from core.db import write_session
        from core.models import User

        if not break_glass:
            fail(
                "tokens are created by their user on the 'API tokens' page; to issue one for an existing user "
                "anyway (account recovery), run again with --break-glass --reason TEXT (audited)"
            )
        if not (reason or "").strip():
            fail("--break-glass needs --reason TEXT: say why, for the audit log")
        settings = _settings()
        with write_session(settings) as s:
            user = s.execute(select(User).where(User.username == name)).scalar_one_or_none()
            if user is None:
                fail(f"no user '{name}'")
            if not user.active:
                fail(f"user '{name}' is disabled; an admin must enable the account first")
            token, row = create_token_row(s, user, label=f"break-glass: {reason.strip()}"[:128])
            audit.record(
                s,
                "token.break_glass",
                actor="cli",
                object_type="token",
                object_id=row.id,
                detail={"user": name, "role": user.role, "reason": reason.strip(), "prefix": row.prefix},
            )
        click.echo("warning: this token acts as " + name + "; the issue is in the audit log", err=True)
        click.echo(token)

    @cli.group("audit")
    def audit_group() -> None:
        """The hash-chained audit log."""

    @audit_group.command("verify")
    @click.option("--json", "as_json", is_flag=True)
    @handle_errors
    def audit_verify(as_json: bool) -> None:
        """Recompute the audit chain and compare it with the signed checkpoints in storage.

        Exit 1 if an event was edited, removed or reordered, if the log was truncated (fewer events
        than a checkpoint counted) or rewritten (another hash at a checkpointed position), or if a
        checkpoint's signature does not verify.
        """
        from core.audit import verify_anchored
        from core.bundle import stored_public_key_pem
        from core.db import session_scope
        from core.storage import get_storage

        settings = _settings()
        pem = stored_public_key_pem(settings.data_dir) if (settings.data_dir / "signing_key.pem").exists() else None
        with session_scope(settings) as s:
            check = verify_anchored(s, get_storage(settings), pem)
        if as_json:
            click.echo(json.dumps(check.to_dict()))
        elif check.ok:
            anchored = (
                f", consistent with {check.checkpoints} signed checkpoints (the latest at "
                f"{check.latest_checkpoint} events)"
                if check.checkpoints
                else ", no signed checkpoints yet"
            )
            click.echo(f"audit chain intact: {check.events} events{anchored}")
        elif check.problem in ("edited", "removed"):
            click.echo(f"audit chain BROKEN at event {check.first_bad_id}: {check.reason}", err=True)
        elif check.problem == "rewritten":
            click.echo(f"audit chain REWRITTEN at event {check.first_bad_id}: {check.reason}", err=True)
        elif check.problem == "truncated":
            click.echo(f"audit chain TRUNCATED: {check.reason}", err=True)
        else:
            click.echo(f"audit checkpoint INVALID: {check.reason}", err=True)
        sys.exit(0 if check.ok else 1)

    @cli.command()
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where to keep the demo's database and storage (default: a new temporary directory).",
    )
    @click.option("--method", default="mst", show_default=True)
    @click.option("--epsilon", default="1.0", show_default=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Where to write the bundle.")
    @click.option("--timeout", default=900, show_default=True, type=int)
    @handle_errors
    def demo(data_dir: str | None, method: str, epsilon: str, output: str | None, timeout: int) -> None:
        """One full release on the bundled demo data; prints the bundle path."""
        path = run_demo(data_dir=data_dir, method=method, epsilon=epsilon, output=output, timeout=timeout)
        click.echo(str(path))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _supervise(procs: list[subprocess.Popen]) -> None:
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping:
            for p in procs:
                if p.poll() is not None:
                    click.echo(f"a child process exited with code {p.returncode}; stopping", err=True)
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()

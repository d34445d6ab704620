"""Notifications: what a message says (identifiers and a link, nothing else), the webhook signature,
when one is queued (after a commit, only when configured) and what a failed delivery leaves behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from core import notifications, releases
from core.auth import create_user
from core.db import dispose_engines, session_scope, write_session
from core.errors import InvalidRequest
from core.migrate import upgrade
from core.models import AuditEvent, ReleaseJob, User
from core.settings import Settings
from core.storage import get_storage

ROOT = Path(__file__).resolve().parents[2]
SECRET = "webhook-secret-for-tests"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings.from_env(environ={}, data_dir=str(tmp_path), **overrides)


@pytest.fixture
def db(tmp_path):
    """A release request on pums, with addresses for a steward and the analyst; yields (settings, job id)."""
    settings = _settings(tmp_path)
    upgrade(settings)
    with write_session(settings) as s:
        steward = create_user(s, "steward", "steward", "password-123")
        steward.email = "steward@example.org"
        create_user(s, "steward2", "steward", "password-123").email = "steward2@example.org"
        create_user(s, "steward3", "steward", "password-123")  # no address: no mail
        analyst = create_user(s, "analyst", "analyst", "password-123")
        analyst.email = "analyst@example.org"
        ds, _ = releases.register_dataset(
            s,
            get_storage(settings),
            steward,
            upload_path=ROOT / "tests/data/pums/PUMS.csv",
            filename="PUMS.csv",
            name="pums",
            schema_text=(ROOT / "tests/data/pums/schema.yaml").read_text(),
            epsilon_budget="1",
            delta_budget="1e-6",
            settings=settings,
        )
        releases.grant(s, steward, ds, analyst.username)
        req = releases.ReleaseRequest(dataset="pums", method="dp-marginals", epsilon=0.25, delta=0, rows=10)
        job_id = releases.request_release(s, analyst, req, settings).id
    yield settings, job_id
    dispose_engines()


@pytest.fixture
def queued(monkeypatch):
    """What would be delivered in the background: (event, release id) as queued after a commit."""
    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(notifications, "submit", lambda settings, event, release_id: seen.append((event, release_id)))
    return seen


# ------------------------------------------------------------------------------------------------
# message building
# ------------------------------------------------------------------------------------------------


def test_a_notice_carries_identifiers_and_a_link_only(tmp_path):
    settings = _settings(
        tmp_path, public_url="https://synthgate.example/", webhook_secret=SECRET, mail_from="noreply@synthgate.example"
    )
    notice = notifications.build_notice(settings, notifications.APPROVED, 42, "pums", now=1_900_000_000)
    assert notice.url == "https://synthgate.example/releases/42"

    body, headers = notifications.webhook_request(settings, notice)
    payload = json.loads(body)
    assert set(payload) == {"event", "release_id", "dataset", "status", "url", "sent_at"}
    assert payload == {
        "event": "release.approved",
        "release_id": 42,
        "dataset": "pums",
        "status": "approved",
        "url": "https://synthgate.example/releases/42",
        "sent_at": 1_900_000_000,
    }
    assert headers["X-Synthgate-Timestamp"] == "1900000000"

    mail = notifications.build_mail(settings, notice, "analyst@example.org")
    assert mail["To"] == "analyst@example.org" and mail["From"] == "noreply@synthgate.example"
    assert "42" in mail["Subject"] and "pums" in mail["Subject"]
    text = mail.get_content()
    assert "https://synthgate.example/releases/42" in text
    # every "label: value" line of the body gives one of the notice's facts, and nothing else
    facts = {"42", "pums", "approved", "https://synthgate.example/releases/42"}
    values = [line.split(": ", 1)[1] for line in text.splitlines() if ": " in line]
    assert set(values) == facts, values


@pytest.mark.parametrize("event", notifications.EVENTS)
def test_every_event_has_its_own_wording(tmp_path, event):
    settings = _settings(tmp_path)
    notice = notifications.build_notice(settings, event, 7, "adult")
    subjects = {
        notifications.build_mail(settings, notifications.build_notice(settings, e, 7, "adult"), "a@example.org")[
            "Subject"
        ]
        for e in notifications.EVENTS
    }
    assert len(subjects) == len(notifications.EVENTS)
    assert notice.url.endswith("/releases/7")
    assert (
        notice.status
        == {
            "release.ready": "awaiting_approval",
            "release.approved": "approved",
            "release.rejected": "rejected",
            "release.failed": "failed",
        }[event]
    )


def test_the_signature_verifies_and_a_change_or_replay_is_refused(tmp_path):
    settings = _settings(tmp_path, webhook_secret=SECRET)
    notice = notifications.build_notice(settings, notifications.READY, 3, "pums", now=1_900_000_000)
    body, headers = notifications.webhook_request(settings, notice)
    signature, stamp = headers["X-Synthgate-Signature"], headers["X-Synthgate-Timestamp"]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    payload = notifications.verify_webhook(SECRET, body, signature, stamp, now=1_900_000_010)
    assert payload["release_id"] == 3

    with pytest.raises(ValueError, match="signature"):
        notifications.verify_webhook("another secret", body, signature, stamp, now=1_900_000_010)
    with pytest.raises(ValueError, match="signature"):
        notifications.verify_webhook(
            SECRET, body.replace(b'"release_id":3', b'"release_id":4'), signature, stamp, now=1_900_000_010
        )
    with pytest.raises(ValueError, match="timestamp"):
        notifications.verify_webhook(SECRET, body, signature, "1900000900", now=1_900_000_900)
    with pytest.raises(ValueError, match="too old"):
        notifications.verify_webhook(SECRET, body, signature, stamp, now=1_900_000_000 + 3600)


def test_no_signature_header_without_a_secret(tmp_path):
    settings = _settings(tmp_path, webhook_url="http://127.0.0.1:1/hook")
    notice = notifications.build_notice(settings, notifications.FAILED, 1, "pums")
    _, headers = notifications.webhook_request(settings, notice)
    assert "X-Synthgate-Signature" not in headers


def test_smtp_urls():
    server = notifications.MailServer.from_url("smtp://mailer:p%40ss@mail.example:2525", starttls=True)
    assert (server.host, server.port, server.tls, server.starttls) == ("mail.example", 2525, False, True)
    assert (server.username, server.password) == ("mailer", "p@ss")
    server = notifications.MailServer.from_url("smtps://mail.example", starttls=True)
    assert (server.port, server.tls, server.starttls, server.username) == (465, True, False, None)
    assert notifications.MailServer.from_url("smtp://mail.example").port == 25
    with pytest.raises(ValueError):
        notifications.MailServer.from_url("http://mail.example")


def test_email_addresses_are_checked():
    assert notifications.check_email("  ada@example.org ") == "ada@example.org"
    assert notifications.check_email("") is None and notifications.check_email(None) is None
    for bad in ("ada", "ada@", "ada@example.org\r\nBcc: eve@example.org", "a b@example.org", 5):
        with pytest.raises(InvalidRequest):
            notifications.check_email(bad)


# ------------------------------------------------------------------------------------------------
# when a notification is queued
# ------------------------------------------------------------------------------------------------


def test_nothing_is_queued_when_nothing_is_configured(db, queued):
    settings, job_id = db
    from workers.jobs import fail_job

    assert not notifications.configured(settings)
    assert fail_job(settings, job_id, "internal_error", "stopped")
    assert queued == []
    assert notifications.deliver(settings, notifications.FAILED, job_id) == {}


def test_a_failed_job_is_announced_after_its_commit(db, queued, tmp_path):
    settings, job_id = db
    from workers.jobs import fail_job

    hooked = _settings(settings.data_dir, webhook_url="http://127.0.0.1:1/hook")
    assert fail_job(hooked, job_id, "internal_error", "stopped")
    assert queued == [(notifications.FAILED, job_id)]
    assert not fail_job(hooked, job_id, "internal_error", "stopped again")  # already failed: no second notice
    assert queued == [(notifications.FAILED, job_id)]


def test_a_rolled_back_change_is_not_announced(db, queued):
    settings, job_id = db
    hooked = _settings(settings.data_dir, webhook_url="http://127.0.0.1:1/hook")
    with pytest.raises(RuntimeError), write_session(hooked) as s:
        notifications.after_commit(s, hooked, notifications.READY, job_id)
        raise RuntimeError("the transaction fails")
    assert queued == []
    with write_session(hooked) as s:
        notifications.after_commit(s, hooked, notifications.READY, job_id)
        assert queued == []  # not before the commit
    assert queued == [(notifications.READY, job_id)]


def test_recipients(db):
    settings, job_id = db
    with session_scope(settings) as s:
        job = s.get(ReleaseJob, job_id)
        # ready: the stewards with an address (the requester is an analyst here)
        assert notifications._recipients(s, notifications.READY, job) == ["steward@example.org", "steward2@example.org"]
        for event in (notifications.APPROVED, notifications.REJECTED, notifications.FAILED):
            assert notifications._recipients(s, event, job) == ["analyst@example.org"]
        # a steward's own request is not announced to them for review
        steward = s.execute(select(User).where(User.username == "steward")).scalar_one()
        job.requester_id = steward.id
        assert notifications._recipients(s, notifications.READY, job) == ["steward2@example.org"]
        s.rollback()


def test_a_failed_delivery_is_audited_without_content(db, monkeypatch):
    settings, job_id = db
    monkeypatch.setattr(notifications, "RETRY_PAUSE", 0.0)
    port = _closed_port()
    broken = _settings(
        settings.data_dir,
        smtp_url=f"smtp://127.0.0.1:{port}",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
    )
    outcome = notifications.deliver(broken, notifications.READY, job_id)
    assert outcome == {"email": False, "webhook": False}
    with session_scope(settings) as s:
        events = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "notify.failed").order_by(AuditEvent.id))
            .scalars()
            .all()
        )
        assert [e.detail["channel"] for e in events] == ["email", "webhook"]
        for e in events:
            assert e.object_id == str(job_id) and e.detail["event"] == notifications.READY
            assert e.detail["error"]  # the error's type
            text = json.dumps(e.detail)
            assert "@example.org" not in text and "pums" not in text and "releases/" not in text


# ------------------------------------------------------------------------------------------------
# addresses of users
# ------------------------------------------------------------------------------------------------


def test_users_create_takes_an_email(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from webapp.cli import cli

    monkeypatch.setenv("SYNTHGATE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "users",
            "create",
            "ada",
            "--role",
            "steward",
            "--password",
            "correct horse battery",
            "--email",
            "ada@example.org",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli,
        [
            "users",
            "create",
            "bob",
            "--role",
            "analyst",
            "--password",
            "correct horse battery",
            "--email",
            "bob at example.org",
        ],
    )
    assert result.exit_code == 2 and "not an email address" in result.output
    settings = _settings(tmp_path)
    with session_scope(settings) as s:
        users = {u.username: u.email for u in s.execute(select(User)).scalars()}
    assert users == {"ada": "ada@example.org"}
    dispose_engines()


def test_an_admin_gives_a_new_account_an_address(db):
    from core import accounts

    settings, _ = db
    with write_session(settings) as s:
        admin = create_user(s, "admin", "admin", "password-123")
        user, _ = accounts.create_account(
            s, admin, "carol", "analyst", "correct horse battery", settings=settings, email="carol@example.org"
        )
        assert accounts.user_view(user)["email"] == "carol@example.org"
        with pytest.raises(InvalidRequest):
            accounts.create_account(
                s,
                admin,
                "dave",
                "analyst",
                "correct horse battery",
                settings=settings,
                email="dave@example.org\nBcc: eve@example.org",
            )

"""Notifications: mail and a signed webhook when a release is ready for review, approved, rejected or failed.

Rules kept here:

* A notification carries identifiers and a link, never data: the release id, the dataset's name, the
  release's status and `{SYNTHGATE_PUBLIC_URL}/releases/{id}`. No report figure, gate, comment, error
  text or anything else computed from rows is put in a message; whoever follows the link logs in and
  sees what their role allows.
* It is sent after the change it announces is committed, by the process that made the change (web for
  a decision, worker for ready and failed): `after_commit` queues it on the session and a rolled-back
  transaction sends nothing. Delivery runs on a background thread, so a slow or broken mail server or
  receiver never delays or fails a request or a job; a delivery that still fails after its retries is
  logged and recorded in the audit log as `notify.failed`, with the channel and the error's type only.
* Nothing configured (no SYNTHGATE_SMTP_URL, no SYNTHGATE_WEBHOOK_URL): nothing is queued.

Who gets mail: ready for review -> every active steward with an address except the requester (four
eyes: they cannot approve their own release); approved, rejected, failed -> the requester. Each
recipient gets their own message, so no one learns who else was told.

The webhook body is JSON `{event, release_id, dataset, status, url, sent_at}`, signed with
SYNTHGATE_WEBHOOK_SECRET: `X-Synthgate-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, and
`X-Synthgate-Timestamp` (Unix seconds) is the body's `sent_at`. A receiver checks the signature over
the exact bytes received, then that the timestamp header equals `sent_at` and is recent
(`verify_webhook` does both), which stops a captured delivery from being replayed later.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest
from core.settings import Settings

__all__ = [
    "APPROVED",
    "EVENTS",
    "FAILED",
    "READY",
    "REJECTED",
    "STATUS",
    "MailServer",
    "Notice",
    "after_commit",
    "build_mail",
    "build_notice",
    "check_email",
    "configured",
    "deliver",
    "flush",
    "post_webhook",
    "send_mail",
    "sign",
    "submit",
    "verify_webhook",
    "webhook_request",
]

log = logging.getLogger(__name__)

READY = "release.ready"
APPROVED = "release.approved"
REJECTED = "release.rejected"
FAILED = "release.failed"
EVENTS = (READY, APPROVED, REJECTED, FAILED)

_SUBJECTS = {
    READY: "Release {id} of {dataset} is ready for review",
    APPROVED: "Release {id} of {dataset} was approved",
    REJECTED: "Release {id} of {dataset} was rejected",
    FAILED: "Release {id} of {dataset} failed",
}
_LINES = {
    READY: "Release {id} of dataset {dataset} has been produced and awaits a steward's review.",
    APPROVED: "Your release {id} of dataset {dataset} was approved; its bundle can be downloaded.",
    REJECTED: "Your release {id} of dataset {dataset} was rejected; the reason is on the release's page.",
    FAILED: "Your release {id} of dataset {dataset} could not be produced; its page says what happened.",
}

#: the status a release has once the event happened (a later change does not alter what was announced)
STATUS = {READY: "awaiting_approval", APPROVED: "approved", REJECTED: "rejected", FAILED: "failed"}

ATTEMPTS = 3  # per channel and message
RETRY_PAUSE = 1.0  # seconds, doubled after each failed attempt
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def check_email(value: Any) -> str | None:
    """An address given for a user, normalised (stripped; empty: none); refused unless plainly an address."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("email must be text such as ada@example.org", field="email")
    value = value.strip()
    if not value:
        return None
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidRequest(f"{value[:80]!r} is not an email address such as ada@example.org", field="email")
    return value


# ------------------------------------------------------------------------------------------------
# what is said
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One event about one release: the only facts any message is built from."""

    event: str
    release_id: int
    dataset: str
    status: str
    url: str
    sent_at: int  # Unix seconds

    def payload(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "release_id": self.release_id,
            "dataset": self.dataset,
            "status": self.status,
            "url": self.url,
            "sent_at": self.sent_at,
        }


def release_url(settings: Settings, release_id: int) -> str:
    base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/releases/{int(release_id)}"


def build_notice(settings: Settings, event: str, release_id: int, dataset: str, now: float | None = None) -> Notice:
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    return Notice(
        event=event,
        release_id=int(release_id),
        dataset=str(dataset),
        status=STATUS[event],
        url=release_url(settings, release_id),
        sent_at=int(now if now is not None else time.time()),
    )


def build_mail(settings: Settings, notice: Notice, to: str) -> EmailMessage:
    """The mail for `notice` to one recipient (no one sees who else was told): subject and a
    plain-text body of identifiers and the link."""
    facts = {"id": notice.release_id, "dataset": notice.dataset}
    msg = EmailMessage()
    msg["Subject"] = "[synthgate] " + _SUBJECTS[notice.event].format(**facts)
    msg["From"] = _mail_from(settings)
    msg["To"] = to
    msg["Date"] = formatdate(notice.sent_at, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="synthgate")
    msg.set_content(
        _LINES[notice.event].format(**facts) + "\n\n"
        f"Release: {notice.release_id}\nDataset: {notice.dataset}\nStatus: {notice.status}\n"
        f"Open it: {notice.url}\n\n"
        "This message holds no data from the release; sign in to see what your role allows.\n"
    )
    return msg


def sign(secret: str, body: bytes) -> str:
    """The X-Synthgate-Signature value of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_request(settings: Settings, notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers POSTed to the webhook."""
    body = json.dumps(notice.payload(), sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "synthgate-notifier",
        "X-Synthgate-Event": notice.event,
        "X-Synthgate-Timestamp": str(notice.sent_at),
    }
    if settings.webhook_secret:
        headers["X-Synthgate-Signature"] = sign(settings.webhook_secret, body)
    return body, headers


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """What a receiver does: the signature over the raw body, then a recent timestamp that is the body's.

    Returns the payload; raises ValueError when any check fails.
    """
    expected = sign(secret, body)
    if not signature or not hmac.compare_digest(expected, signature):
        raise ValueError("bad signature")
    payload = json.loads(body)
    if timestamp is None or not timestamp.isdigit() or int(timestamp) != payload.get("sent_at"):
        raise ValueError("the timestamp header is missing or is not the body's sent_at")
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        raise ValueError("the delivery is too old (or from the future): a replay?")
    return payload


# ------------------------------------------------------------------------------------------------
# how it is sent
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the start
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str, starttls: bool = False) -> MailServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SYNTHGATE_SMTP_URL must look like smtp://user:password@host:port or smtps://...")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            tls=tls,
            starttls=starttls and not tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def _mail_from(settings: Settings) -> str:
    if settings.mail_from:
        return settings.mail_from
    host = urlsplit(settings.smtp_url).hostname if settings.smtp_url else None
    return f"synthgate@{host or 'localhost'}"


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_url or settings.webhook_url)


def send_mail(settings: Settings, outbox: list[EmailMessage]) -> None:
    """Send the messages over one connection; each one sent leaves `outbox`, so a retry sends the rest."""
    server = MailServer.from_url(settings.smtp_url, settings.smtp_starttls)
    timeout = settings.notify_timeout_seconds
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.tls:
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with smtp:
        if server.starttls:
            smtp.starttls(context=context)
        if server.username:
            smtp.login(server.username, server.password or "")
        while outbox:
            smtp.send_message(outbox[0])
            outbox.pop(0)


def post_webhook(settings: Settings, notice: Notice) -> None:
    import requests

    body, headers = webhook_request(settings, notice)
    resp = requests.post(
        settings.webhook_url, data=body, headers=headers, timeout=settings.notify_timeout_seconds, allow_redirects=False
    )
    if resp.status_code >= 300:
        raise RuntimeError(f"the webhook answered {resp.status_code}")


def _with_retries(action: Any) -> tuple[bool, str | None]:
    pause = RETRY_PAUSE
    error: str | None = None
    for attempt in range(ATTEMPTS):
        try:
            action()
            return True, None
        except Exception as exc:  # noqa: BLE001 - any failure of delivery is retried, then recorded
            error = type(exc).__name__
            log.warning("notification attempt %s of %s failed: %s", attempt + 1, ATTEMPTS, error)
            if attempt + 1 < ATTEMPTS:
                time.sleep(pause)
                pause *= 2
    return False, error


def _recipients(session: Session, event: str, job: Any) -> list[str]:
    from core.models import Role, User

    if event == READY:
        rows = session.execute(
            select(User.email)
            .where(
                User.role == Role.steward.value,
                User.active.is_(True),
                User.id != job.requester_id,
                User.email.is_not(None),
            )
            .order_by(User.id)
        ).scalars()
        return [e for e in rows if e]
    requester = session.get(User, job.requester_id)
    if requester is None or not requester.active or not requester.email:
        return []
    return [requester.email]


def deliver(settings: Settings, event: str, release_id: int) -> dict[str, bool]:
    """Build and send the notifications of one event (mail to each recipient, one webhook call).

    Returns {channel: delivered}; failures are logged and audited as `notify.failed`, never raised.
    """
    from core import audit
    from core.db import session_scope, write_session
    from core.models import Dataset, ReleaseJob

    with session_scope(settings) as s:
        job = s.get(ReleaseJob, release_id)
        if job is None:
            return {}
        ds = s.get(Dataset, job.dataset_id)
        notice = build_notice(settings, event, job.id, ds.name if ds else "")
        recipients = _recipients(s, event, job) if settings.smtp_url else []
    outcome: dict[str, bool] = {}
    failures: list[dict[str, Any]] = []
    if recipients:
        outbox = [build_mail(settings, notice, to) for to in recipients]
        ok, error = _with_retries(lambda: send_mail(settings, outbox))
        outcome["email"] = ok
        if not ok:
            failures.append(
                {
                    "channel": "email",
                    "event": event,
                    "error": error,
                    "recipients": len(recipients),
                    "undelivered": len(outbox),
                }
            )
    if settings.webhook_url:
        ok, error = _with_retries(lambda: post_webhook(settings, notice))
        outcome["webhook"] = ok
        if not ok:
            failures.append({"channel": "webhook", "event": event, "error": error})
    for detail in failures:
        log.error(
            "release %s: %s notification of %s not delivered (%s)",
            release_id,
            detail["channel"],
            event,
            detail["error"],
        )
        try:
            with write_session(settings) as s:
                audit.record(
                    s, "notify.failed", actor="notifier", object_type="release", object_id=release_id, detail=detail
                )
        except Exception:
            log.exception("release %s: could not record the failed notification", release_id)
    return outcome


# ------------------------------------------------------------------------------------------------
# after the commit, off the request's thread
# ------------------------------------------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_executor_lock = threading.Lock()
_pending: set[Any] = set()


def _pool() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():  # a forked child makes its own threads
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="synthgate-notify")
            _executor_pid = os.getpid()
            _pending.clear()
        return _executor


def _run(settings: Settings, event: str, release_id: int) -> None:
    try:
        deliver(settings, event, release_id)
    except Exception:
        log.exception("release %s: notification of %s failed", release_id, event)


def submit(settings: Settings, event: str, release_id: int) -> None:
    """Deliver in the background (the caller has committed)."""
    try:
        future = _pool().submit(_run, settings, event, release_id)
        _pending.add(future)
        future.add_done_callback(_pending.discard)
    except Exception:  # e.g. the interpreter is shutting down: log, never fail the caller
        log.exception("release %s: could not queue the notification of %s", release_id, event)


def flush(timeout: float = 60) -> None:
    """Wait for the notifications queued in this process (at exit, and in tests)."""
    deadline = time.monotonic() + timeout
    for future in list(_pending):
        future.result(timeout=max(0.0, deadline - time.monotonic()))


def _flush_at_exit() -> None:
    try:
        flush(timeout=30)
    except Exception:
        log.exception("notifications still pending at exit were not all delivered")


atexit.register(_flush_at_exit)


def after_commit(session: Session, settings: Settings, event: str, release_id: int) -> None:
    """Send `event` about the release once `session` commits; a rollback drops it."""
    if not configured(settings):
        return
    session.info.setdefault("notifications", []).append((settings, event, int(release_id)))
    if not session.info.get("notify_listening"):
        session.info["notify_listening"] = True
        sa_event.listen(session, "after_commit", _on_commit)
        sa_event.listen(session, "after_rollback", _on_rollback)


def _on_commit(session: Session) -> None:
    for settings, event, release_id in session.info.pop("notifications", []):
        submit(settings, event, release_id)


def _on_rollback(session: Session) -> None:
    session.info.pop("notifications", None)

"""Notifications on real components: a real SMTP server (aiosmtpd) and a real HTTP receiver on 127.0.0.1,
the web app under gunicorn and a Celery worker process.

Each release goes through the service and the people concerned get a mail, the receiver a signed
webhook call: ready for review (stewards other than the requester), approved, rejected and failed (the
requester). No message holds a row of the dataset, a figure of the report or the steward's comment.
"""

from __future__ import annotations

import http.server
import re
import secrets
import socket
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from core import notifications
from tests.integration.test_release_path import DEMO_CSV, register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PUBLIC_URL = "https://synthgate.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: every message accepted, kept as (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.messages.append(
                (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content, policy=policy.default))
            )
        return "250 Message accepted for delivery"


class Receiver(http.server.ThreadingHTTPServer):
    """An HTTP server that keeps every POST: (headers, raw body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Hook)


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.calls.append((dict(self.headers.items()), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _wait(condition, what: str, svc, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(
        f"no {what} within {timeout}s\n" + svc.worker_logs() + (svc.logs / "web.log").read_text()[-3000:]
    )


def _figures(value: Any) -> set[str]:
    """The report's numbers as they could be written: full and rounded to 2-4 decimals."""
    out: set[str] = set()
    if isinstance(value, dict):
        for v in value.values():
            out |= _figures(v)
    elif isinstance(value, list):
        for v in value:
            out |= _figures(v)
    elif isinstance(value, float) and value not in (0.0, 1.0) and value == value:
        out.add(repr(value))
        out |= {f"{value:.{d}f}" for d in (2, 3, 4)}
    return out


def test_mail_and_signed_webhook_for_ready_approved_rejected_and_failed(service_factory, smtp_server, receiver):
    controller, inbox = smtp_server
    secret = secrets.token_hex(16)
    svc = service_factory(
        "embedded",
        smtp_url=f"smtp://127.0.0.1:{controller.port}",
        mail_from="synthgate@synthgate.test",
        public_url=PUBLIC_URL,
        webhook_url=f"http://127.0.0.1:{receiver.server_address[1]}/hooks/synthgate",
        webhook_secret=secret,
    )
    from core.db import write_session
    from core.models import User

    addresses = {
        "steward": "steward@synthgate.test",
        "steward2": "steward2@synthgate.test",
        "analyst": "analyst@synthgate.test",
        "admin": "admin@synthgate.test",
    }
    with write_session(svc.settings) as s:
        for name, address in addresses.items():
            user = s.execute(select(User).where(User.username == svc.tokens[name + ":username"])).scalar_one()
            user.email = address
    svc.start_web()
    svc.start_worker()
    dataset = register_demo(svc)["name"]

    def request() -> int:
        resp = svc.api(
            "analyst",
            "POST",
            "/releases",
            json={"dataset": dataset, "method": "dp-marginals", "epsilon": 0.5, "rows": 500},
        )
        assert resp.status_code == 202, resp.text
        return resp.json()["release"]["id"]

    def mails_about(job_id: int, event: str) -> list[tuple[list[str], Any]]:
        subject = notifications._SUBJECTS[event].format(id=job_id, dataset=dataset)
        with inbox.lock:
            return [(to, m) for to, m in inbox.messages if m["Subject"] == f"[synthgate] {subject}"]

    def hooks_about(job_id: int, event: str) -> list[dict[str, Any]]:
        found = []
        for headers, body in list(receiver.calls):
            payload = notifications.verify_webhook(
                secret, body, headers.get("X-Synthgate-Signature"), headers.get("X-Synthgate-Timestamp")
            )
            if payload["release_id"] == job_id and payload["event"] == event:
                found.append(payload)
        return found

    def announced(job_id: int, event: str, mails: int = 1) -> bool:
        return len(mails_about(job_id, event)) >= mails and bool(hooks_about(job_id, event))

    # 1. ready for review -> the stewards (the requester is the analyst); approved -> the analyst
    first = request()
    assert svc.wait_for("analyst", first)["status"] == "awaiting_approval", svc.worker_logs()
    _wait(lambda: announced(first, notifications.READY, mails=2), "ready notification", svc)
    ready = mails_about(first, notifications.READY)
    # one message each, addressed to that steward alone
    assert sorted(to for to, _ in ready) == sorted([[addresses["steward"]], [addresses["steward2"]]])
    assert all(mail["To"] == to[0] for to, mail in ready)
    link = f"{PUBLIC_URL}/releases/{first}"
    assert all(link in mail.get_content() for _, mail in ready)
    assert hooks_about(first, notifications.READY) == [
        {
            "event": notifications.READY,
            "release_id": first,
            "dataset": dataset,
            "status": "awaiting_approval",
            "url": link,
            "sent_at": hooks_about(first, notifications.READY)[0]["sent_at"],
        }
    ]

    steward_view = svc.api("steward", "GET", f"/releases/{first}").json()["release"]
    figures = _figures(steward_view.get("summary")) | _figures(steward_view.get("gate"))
    assert figures, "the report has figures to look for"
    comment = f"approved-{secrets.token_hex(6)}"
    body = {"comment": comment}
    if steward_view["gate"]["overall"] == "fail":
        body["override"] = f"override-{secrets.token_hex(6)}"
    resp = svc.api("steward", "POST", f"/releases/{first}/approve", json=body)
    assert resp.status_code == 200, resp.text
    _wait(lambda: announced(first, notifications.APPROVED), "approved notification", svc)
    ((to, mail),) = mails_about(first, notifications.APPROVED)
    assert to == [addresses["analyst"]]
    assert f"{PUBLIC_URL}/releases/{first}" in mail.get_content()
    assert hooks_about(first, notifications.APPROVED)[0]["status"] == "approved"

    # 2. rejected -> the analyst
    second = request()
    assert svc.wait_for("analyst", second)["status"] == "awaiting_approval", svc.worker_logs()
    _wait(lambda: announced(second, notifications.READY, mails=2), "ready notification", svc)
    reason = f"rejected-{secrets.token_hex(6)}"
    resp = svc.api("steward2", "POST", f"/releases/{second}/reject", json={"comment": reason})
    assert resp.status_code == 200, resp.text
    _wait(lambda: announced(second, notifications.REJECTED), "rejected notification", svc)
    assert [to for to, _ in mails_about(second, notifications.REJECTED)] == [[addresses["analyst"]]]

    # 3. failed (its stored table is gone) -> the analyst
    for path in Path(svc.settings.storage_dir, "datasets").rglob("raw.*"):
        path.unlink()
    third = request()
    assert svc.wait_for("analyst", third)["status"] == "failed"
    _wait(lambda: announced(third, notifications.FAILED), "failed notification", svc)
    assert [to for to, _ in mails_about(third, notifications.FAILED)] == [[addresses["analyst"]]]

    # nothing of the data, the report or the stewards' words in any message
    table = pd.read_csv(DEMO_CSV)
    cells = {
        str(v) for col in table.columns if table[col].dtype == object for v in table[col].unique() if len(str(v)) >= 5
    }
    words = {comment, reason} | ({body["override"]} if "override" in body else set())
    with inbox.lock:
        texts = [m["Subject"] + "\n" + m.get_content() for _, m in inbox.messages]
    texts += [b.decode() for _, b in receiver.calls]
    assert len(texts) >= 7 + 5  # ready twice to two stewards, approved, rejected, failed; a webhook call each
    for text in texts:
        leaked = {x for x in cells | words | figures if x in text}
        assert not leaked, (leaked, text)
    # every webhook call verified (hooks_about raises otherwise), and nothing was recorded as undelivered
    audit = svc.api("steward", "GET", "/audit?limit=500").json()
    assert audit["chain"]["ok"] is True
    assert not [e for e in audit["events"] if e["action"] == "notify.failed"]


def test_an_admin_gives_new_users_an_address_on_the_page_and_the_api(service_factory):
    from tests.integration.live_support import login

    svc = service_factory("embedded")
    svc.start_web()
    admin = login(svc, "admin")
    page = admin.get(svc.url + "/admin", timeout=30)
    assert 'name="email"' in page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    resp = admin.post(
        svc.url + "/admin/users",
        data={
            "username": "page-user",
            "role": "analyst",
            "password": "admin chose this phrase",
            "email": "page-user@synthgate.test",
            "csrf_token": token,
        },
        timeout=60,
        allow_redirects=False,
    )
    assert resp.status_code in (302, 303), resp.text[:2000]
    resp = admin.post(
        svc.url + "/admin/users",
        data={
            "username": "bad-address",
            "role": "analyst",
            "password": "admin chose this phrase",
            "email": "not an address",
            "csrf_token": token,
        },
        timeout=60,
        allow_redirects=False,
    )
    assert resp.status_code == 400 and "not an email address" in resp.text
    resp = svc.api(
        "admin",
        "POST",
        "/users",
        json={
            "username": "api-user",
            "role": "analyst",
            "password": "admin chose this phrase",
            "email": "api-user@synthgate.test",
        },
    )
    assert resp.status_code == 201 and resp.json()["user"]["email"] == "api-user@synthgate.test", resp.text
    resp = svc.api(
        "admin",
        "POST",
        "/users",
        json={
            "username": "api-bad",
            "role": "analyst",
            "password": "admin chose this phrase",
            "email": "api-bad@synthgate.test\r\nBcc: x@evil.test",
        },
    )
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "email", resp.text
    listed = {u["username"]: u["email"] for u in svc.api("admin", "GET", "/users").json()["users"]}
    assert listed["page-user"] == "page-user@synthgate.test" and listed["api-user"] == "api-user@synthgate.test"
    assert "bad-address" not in listed and "api-bad" not in listed


# a test server on the loopback: AUTH without TLS is what is under test (smtp:// with credentials)
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")  # aiosmtpd 1.4's own
def test_mail_logs_in_with_the_credentials_of_the_smtp_url():
    """The user and password in SYNTHGATE_SMTP_URL (percent-encoded) log in to a real SMTP server that
    accepts mail only after a login with exactly those."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from core.settings import Settings

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"mailer", b"p@ss word"))

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:

        def settings(userinfo: str) -> Settings:
            return Settings(smtp_url=f"smtp://{userinfo}@127.0.0.1:{controller.port}", public_url=PUBLIC_URL)

        good = settings("mailer:p%40ss%20word")
        notice = notifications.build_notice(good, notifications.APPROVED, 9, "adult")
        outbox = [notifications.build_mail(good, notice, "ada@synthgate.test")]
        notifications.send_mail(good, outbox)
        assert outbox == [] and [to for to, _ in inbox.messages] == [["ada@synthgate.test"]]
    finally:
        controller.stop()

"""API tokens and accounts: wrong, revoked and disabled credentials stop working at once.

Tokens are created on the account page (shown once, stored only as a hash),
listed, and revoked there or through the API; the admin page creates and
disables users. Every failure is a 401 with a message that says what to do,
and is audited.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from core.db import dispose_engines, session_scope
from core.models import ApiToken, AuditEvent, User
from tests.browser.support import PASSWORD, PageClient, make_app_env

pytestmark = [pytest.mark.integration]

NORA_OWN = "quilt marmot ledger sunrise"
TOKEN = re.compile(r'id="new-token-value">(sg_[A-Za-z0-9_\-]+)<')


@pytest.fixture
def env(tmp_path):
    env = make_app_env(tmp_path)
    yield env
    dispose_engines()


def bearer(env, token: str, path: str = "/me"):
    return env.app.test_client().get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})


def audit_actions(env, action: str) -> list[tuple]:
    """(actor, object id, detail) of each audit event with this action, oldest first."""
    with session_scope(env.settings) as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).scalars()
        return [(e.actor, e.object_id, e.detail) for e in rows]


@pytest.mark.parametrize(
    "header", ["Bearer sg_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "sg_nobearer", "Bearer " + "x" * 5000]
)
def test_wrong_tokens_are_refused_and_audited(env, header):
    before = len(audit_actions(env, "auth.failed"))
    resp = env.app.test_client().get("/api/v1/datasets", headers={"Authorization": header})
    assert resp.status_code == 401
    err = resp.get_json()["error"]
    assert err["code"] == "unauthorized" and ("token" in err["message"].lower())
    if header.startswith("Bearer sg_") or header == "Bearer " + "x" * 5000:
        assert len(audit_actions(env, "auth.failed")) == before + 1


def test_token_created_on_the_account_page_is_shown_once_and_stored_hashed(env):
    analyst = env.pages("analyst")
    resp = analyst.post_form("/account", "/tokens", {"label": "laptop CLI", "back": "account"})
    assert resp.status_code == 201
    page = resp.get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    assert "not shown again" in page
    assert bearer(env, token).get_json()["username"] == env.users["analyst"]
    # never again: not on the account page, not in the session cookie, not in the database
    again = analyst.get("/account").get_data(as_text=True)
    assert token not in again and "laptop CLI" in again and token[:10] in again
    cookie = analyst.client.get_cookie("session")
    session = env.app.session_interface.get_signing_serializer(env.app).loads(cookie.value)
    assert token not in str(session)
    with session_scope(env.settings) as s:
        row = s.execute(select(ApiToken).where(ApiToken.label == "laptop CLI")).scalar_one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    raw = env.settings.data_dir.joinpath("synthgate.db").read_bytes()
    assert token.encode() not in raw


def test_revoked_tokens_stop_at_once_page_and_api(env):
    analyst = env.pages("analyst")
    page = analyst.post_form("/account", "/tokens", {"label": "one"}).get_data(as_text=True)
    first = TOKEN.search(page).group(1)
    page = analyst.post_form("/account", "/tokens", {"label": "two"}).get_data(as_text=True)
    second = TOKEN.search(page).group(1)
    with session_scope(env.settings) as s:
        ids = {t.label: t.id for t in s.execute(select(ApiToken).where(ApiToken.label.in_(("one", "two")))).scalars()}

    # revoke "one" with the page's form
    resp = analyst.post_form("/account", f"/tokens/{ids['one']}/revoke", {"back": "account"})
    assert resp.status_code == 302
    resp = bearer(env, first)
    assert resp.status_code == 401 and "revoked" in resp.get_json()["error"]["message"]
    assert bearer(env, second).status_code == 200  # only that one
    # revoke "two" through the API with itself
    resp = env.app.test_client().delete(f"/api/v1/tokens/{ids['two']}", headers={"Authorization": f"Bearer {second}"})
    assert resp.status_code == 200
    assert bearer(env, second).status_code == 401
    revoked = audit_actions(env, "token.revoke")
    assert [r[1] for r in revoked] == [str(ids["one"]), str(ids["two"])]
    failed = audit_actions(env, "auth.failed")
    assert sum("revoked" in str(d) or "invalid" in str(d) for _, _, d in failed) >= 2


def test_admin_lists_and_revokes_any_token_and_others_cannot(env):
    admin = env.pages("admin")
    page = admin.get("/admin").get_data(as_text=True)
    for who in ("steward", "analyst", "analyst2"):
        assert env.users[who] in page
    with session_scope(env.settings) as s:
        steward_id = s.execute(select(User.id).where(User.username == env.users["steward"])).scalar_one()
        steward_token = s.execute(select(ApiToken.id).where(ApiToken.user_id == steward_id)).scalar_one()
    # an analyst cannot revoke the steward's token (404, audited), an admin can
    analyst = env.pages("analyst")
    resp = analyst.post_raw(f"/tokens/{steward_token}/revoke", {"csrf_token": analyst.csrf()})
    assert resp.status_code == 404
    assert bearer(env, env.tokens["steward"]).status_code == 200
    resp = admin.post_form("/admin", f"/tokens/{steward_token}/revoke", {"back": "admin"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin")
    assert bearer(env, env.tokens["steward"]).status_code == 401
    # the admin's token form makes a token for the admin, not for someone else
    resp = admin.post_form("/admin", "/tokens", {"label": "admin laptop", "back": "admin"})
    made = TOKEN.search(resp.get_data(as_text=True)).group(1)
    assert bearer(env, made).get_json()["role"] == "admin"


def test_admin_creates_and_disables_users(env):
    admin = env.pages("admin")
    # validation errors are shown next to the field
    resp = admin.post_form(
        "/admin", "/admin/users", {"username": "new analyst!", "role": "analyst", "password": "long-enough-1"}
    )
    assert resp.status_code == 400
    assert "username must be" in resp.get_data(as_text=True)
    resp = admin.post_form("/admin", "/admin/users", {"username": "nora", "role": "analyst", "password": "short"})
    assert resp.status_code == 400 and "at least 8" in resp.get_data(as_text=True)
    resp = admin.post_form(
        "/admin", "/admin/users", {"username": "nora", "role": "analyst", "password": "long-enough-1"}
    )
    assert resp.status_code == 302
    nora = PageClient(env.app, "nora", "long-enough-1")
    # the admin chose the password: nora must choose her own before anything else
    assert nora.get("/").headers["Location"].endswith("/account/password")
    resp = nora.post_form(
        "/account/password",
        "/account/password",
        {"current_password": "long-enough-1", "new_password": NORA_OWN, "confirm": NORA_OWN},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert "nora" in nora.get("/").get_data(as_text=True)
    token = TOKEN.search(nora.post_form("/account", "/tokens", {}).get_data(as_text=True)).group(1)
    assert bearer(env, token).status_code == 200
    resp = admin.post_form(
        "/admin", "/admin/users", {"username": "nora", "role": "analyst", "password": "long-enough-1"}
    )
    assert resp.status_code == 409 and "already exists" in resp.get_data(as_text=True)

    with session_scope(env.settings) as s:
        nora_id = s.execute(select(User.id).where(User.username == "nora")).scalar_one()
    resp = admin.post_form("/admin", f"/admin/users/{nora_id}/disable")
    assert resp.status_code == 302
    # a disabled user's session, token and password stop working at once
    assert nora.get("/").status_code == 302
    resp = bearer(env, token)
    assert resp.status_code == 401 and "disabled" in resp.get_json()["error"]["message"]
    again = PageClient(env.app)
    assert again.login("nora", NORA_OWN).status_code == 401
    resp = admin.post_form("/admin", f"/admin/users/{nora_id}/enable")
    assert resp.status_code == 302 and bearer(env, token).status_code == 200
    # an admin cannot lock themselves out
    with session_scope(env.settings) as s:
        admin_id = s.execute(select(User.id).where(User.username == env.users["admin"])).scalar_one()
    resp = admin.post_raw(f"/admin/users/{admin_id}/disable", {"csrf_token": admin.csrf()})
    assert resp.status_code == 409 and "your own account" in resp.get_data(as_text=True)
    assert [e[0] for e in audit_actions(env, "user.create")] == [env.users["admin"]]
    assert len(audit_actions(env, "user.disable")) == 1 and len(audit_actions(env, "user.enable")) == 1


def test_login_failures_are_audited_and_say_nothing_about_which_part_was_wrong(env):
    client = PageClient(env.app)
    for username, password in ((env.users["analyst"], "wrong password"), ("nobody-here", PASSWORD)):
        resp = client.login(username, password)
        assert resp.status_code == 401
        assert "Wrong username or password" in resp.get_data(as_text=True)
    failed = audit_actions(env, "auth.login_failed")
    assert [f[0] for f in failed] == [env.users["analyst"], "nobody-here"]
    assert client.login(env.users["analyst"], PASSWORD).status_code == 302
    assert audit_actions(env, "auth.login")[-1][0] == env.users["analyst"]
    # an open redirect through ?next= is not followed
    fresh = PageClient(env.app)
    page = fresh.get("/login?next=//evil.example/").get_data(as_text=True)
    from tests.browser.support import csrf_token

    resp = fresh.client.post(
        "/login?next=//evil.example/",
        data={"username": env.users["analyst"], "password": PASSWORD, "csrf_token": csrf_token(page)},
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/"

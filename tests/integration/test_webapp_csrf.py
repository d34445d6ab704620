"""Every page form refuses a POST without a valid CSRF token, and changes nothing.

The app runs in process on a real SQLite file and storage directory. Each form
is first posted without a token, then with a token of another session: both
get 400 `csrf_failed` and leave the database as it was. The same form with its
own token is then accepted, so the refusal is the token's doing. A test also
checks that the list below covers every POST route of the pages.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from core.db import dispose_engines, session_scope
from core.models import (
    ApiToken,
    AuditEvent,
    Dataset,
    Grant,
    LedgerEntry,
    PendingChange,
    ReleaseCandidate,
    ReleaseJob,
    User,
)
from tests.browser.support import (
    DEMO_CSV,
    DEMO_SCHEMA,
    PageClient,
    csrf_token,
    finished_release,
    make_app_env,
    register_demo,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_app_env(tmp_path_factory.mktemp("csrf"))
    register_demo(env)
    register_demo(env, "proposed", schema=False)  # dataset 2: its schema awaits confirmation
    env.job_id = finished_release(env)  # type: ignore[attr-defined]
    env.job2_id = finished_release(env)  # type: ignore[attr-defined]
    gate = env.api("steward", "GET", f"/releases/{env.job2_id}").get_json()["release"]["gate"]
    env.approve_fields = {"comment": "fine"} | ({"override": "reviewed"} if gate["overall"] == "fail" else {})  # type: ignore[attr-defined]
    with session_scope(env.settings) as s:
        env.analyst_id = s.execute(select(User.id).where(User.username == env.users["analyst"])).scalar_one()  # type: ignore[attr-defined]
        env.token_id = s.execute(select(ApiToken.id).where(ApiToken.user_id == env.analyst_id)).scalars().first()  # type: ignore[attr-defined]
    yield env
    dispose_engines()


def state(env) -> tuple:
    """Everything a form could change (audit events of page views and logins excluded)."""
    with session_scope(env.settings) as s:
        counts = tuple(
            s.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (User, ApiToken, Dataset, Grant, ReleaseJob, LedgerEntry, ReleaseCandidate)
        )
        users = tuple(
            s.execute(select(User.username, User.active, User.role, User.password_hash).order_by(User.id)).all()
        )
        pending = tuple(s.execute(select(PendingChange.id, PendingChange.status).order_by(PendingChange.id)).all())
        tokens = tuple(s.execute(select(ApiToken.id, ApiToken.revoked_at).order_by(ApiToken.id)).all())
        datasets = tuple(
            (d.schema_confirmed, str(d.policy), d.epsilon_budget)
            for d in s.execute(select(Dataset).order_by(Dataset.id)).scalars()
        )
        jobs = tuple(s.execute(select(ReleaseJob.status, ReleaseJob.decision_comment).order_by(ReleaseJob.id)).all())
        changes = s.execute(
            select(func.count()).select_from(AuditEvent).where(~AuditEvent.action.like("auth.%"))
        ).scalar_one()
    files = sorted(str(p) for p in env.settings.storage_dir.rglob("*") if p.is_file())
    return counts, users, pending, tokens, datasets, jobs, changes, tuple(files)


def forms(env) -> list[tuple[str, str, str, dict]]:
    """(who, page that shows the form, action, fields) for every POST route of the pages."""
    job = env.job_id
    return [
        ("steward", "/", "/logout", {}),
        (
            "steward",
            "/datasets/new",
            "/datasets/new",
            {
                "name": "csrf-ds",
                "epsilon_budget": "1",
                "delta_budget": "1e-6",
                "schema_text": DEMO_SCHEMA.read_text(),
                "file": (io.BytesIO(DEMO_CSV.read_bytes()[:20000].rsplit(b"\n", 1)[0] + b"\n"), "t.csv"),
            },
        ),
        ("steward", "/datasets/1", "/datasets/1/grants", {"username": env.users["analyst2"]}),
        ("steward", "/datasets/1", "/datasets/1/policy", {"policy_text": "privacy: dp-only\nk: 7\n"}),
        # the per-column editor confirms the proposal (every row as stored), the YAML form then edits it
        ("steward", "/datasets/2", "/datasets/2/schema/columns", {"note": "as proposed"}),
        ("steward", "/datasets/2", "/datasets/2/schema", {"schema_text": DEMO_SCHEMA.read_text()}),
        ("steward", "/datasets/2", "/datasets/2/erase-raw", {"reason": "csrf test", "confirm_name": "proposed"}),
        (
            "analyst",
            "/datasets/1/request",
            "/datasets/1/request",
            {"method": "dp-marginals", "epsilon": "0.1", "delta": "0", "rows": "50"},
        ),
        # the request above is release 3, still queued (no worker here): its requester cancels it
        ("analyst", "/releases/3", "/releases/3/cancel", {}),
        ("steward", f"/releases/{job}", f"/releases/{job}/rerun", {"k": "3", "rows": "100"}),
        ("steward", f"/releases/{job}", f"/releases/{job}/reject", {"comment": "not needed"}),
        ("steward", f"/releases/{env.job2_id}", f"/releases/{env.job2_id}/approve", env.approve_fields),
        (
            "admin",
            "/admin",
            "/admin/users",
            {"username": "csrf-user", "role": "analyst", "password": "long-password-1"},
        ),
        ("analyst", "/account", "/tokens", {"label": "csrf"}),
        ("analyst", "/account", f"/tokens/{env.token_id}/revoke", {}),
        (
            "analyst2",
            "/account/password",
            "/account/password",
            {
                "current_password": "correct horse battery",
                "new_password": "plover canyon mosaic",
                "confirm": "plover canyon mosaic",
            },
        ),
        ("admin", "/admin", f"/admin/users/{env.analyst_id}/role", {"role": "steward"}),  # waits: change 1
        ("steward", "/confirmations", "/confirmations/1/reject", {}),
        # last: these take the analyst's access away
        ("steward", "/datasets/1", f"/datasets/1/grants/{env.users['analyst']}/revoke", {}),
        ("admin", "/admin", f"/admin/users/{env.analyst_id}/disable", {}),
    ]


def _fresh(data: dict) -> dict:
    """Form fields with file objects rewound (they are read by each post)."""
    out = {}
    for k, v in data.items():
        if isinstance(v, tuple):
            v[0].seek(0)
            out[k] = (io.BytesIO(v[0].read()), v[1])
        else:
            out[k] = v
    return out


def assert_csrf_refused(resp) -> None:
    assert resp.status_code == 400, resp.get_data(as_text=True)[:500]
    assert 'data-code="csrf_failed"' in resp.get_data(as_text=True)


def test_every_form_refuses_a_missing_or_foreign_csrf_token(env):
    other = PageClient(env.app, env.users["steward2"])
    foreign = csrf_token(other.get("/account").get_data(as_text=True))  # valid, but for another session
    for who, _page, action, data in forms(env):
        client = env.pages(who)
        before = state(env)
        assert_csrf_refused(client.post_raw(action, _fresh(data)))
        assert_csrf_refused(client.post_raw(action, {**_fresh(data), "csrf_token": foreign}))
        assert_csrf_refused(client.post_raw(action, {**_fresh(data), "csrf_token": "forged-token"}))
        assert state(env) == before, f"{action} changed state without a valid CSRF token"


def test_the_list_covers_every_post_route_of_the_pages(env):
    adapter = env.app.url_map.bind("localhost")
    covered = {adapter.match(action, method="POST")[0] for _, _, action, _ in forms(env)} | {"pages.login"}
    post_endpoints = {
        r.endpoint for r in env.app.url_map.iter_rules() if r.endpoint.startswith("pages.") and "POST" in r.methods
    }
    assert post_endpoints - covered == set(), "POST routes without a CSRF test"


def test_login_form_needs_its_token_too(env):
    client = PageClient(env.app)
    resp = client.post_raw("/login", {"username": env.users["analyst"], "password": "correct horse battery"})
    assert_csrf_refused(resp)
    assert client.get("/").status_code == 302  # still not logged in


def test_no_state_change_through_get(env):
    client = env.pages("admin")
    for _, _, action, _ in forms(env):
        if action in ("/datasets/new", "/datasets/1/request", "/account/password"):
            continue  # these paths also show their form on GET
        assert client.get(action).status_code == 405, action


def test_the_session_cookie_cannot_change_state_through_the_api(env):
    """A cross-site form could ride the cookie; the API takes state changes only with a bearer token."""
    client = env.pages("analyst")
    before = state(env)
    resp = client.client.post(
        "/api/v1/releases", json={"dataset": "adult", "method": "dp-marginals", "epsilon": 0.1, "delta": 0}
    )
    assert resp.status_code == 401 and "API token" in resp.get_json()["error"]["message"]
    resp = client.client.delete(f"/api/v1/tokens/{env.token_id}")
    assert resp.status_code == 401
    assert state(env) == before
    # reading with the cookie is fine (the pages poll progress that way)
    assert client.client.get(f"/api/v1/releases/{env.job_id}").status_code == 200


def test_session_cookie_flags(env, tmp_path):
    client = PageClient(env.app)
    page = client.get("/login").get_data(as_text=True)
    resp = client.client.post(
        "/login",
        data={"username": env.users["analyst"], "password": "correct horse battery", "csrf_token": csrf_token(page)},
    )
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    from dataclasses import replace

    from webapp import create_app

    secure_app = create_app(replace(env.settings, session_cookie_secure=True))
    sc = PageClient(secure_app)
    page = sc.get("/login").get_data(as_text=True)
    resp = sc.client.post(
        "/login",
        data={"username": env.users["analyst"], "password": "correct horse battery", "csrf_token": csrf_token(page)},
    )
    assert "Secure" in resp.headers["Set-Cookie"]


def test_pages_send_a_strict_content_security_policy(env):
    client = env.pages("steward")
    resp = client.get(f"/releases/{env.job_id}")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["Cache-Control"] == "no-store"
    # no inline script anywhere: everything is served from /static
    assert "<script>" not in resp.get_data(as_text=True)
    report = client.get(f"/releases/{env.job_id}/report")
    assert report.status_code == 200
    assert "sandbox" in report.headers["Content-Security-Policy"]
    assert "default-src 'none'" in report.headers["Content-Security-Policy"]


def test_the_same_forms_work_with_their_own_token(env):
    """Control: each form is accepted (no CSRF refusal, state changes) with its page's token."""
    for who, page, action, data in forms(env):
        client = env.pages(who)
        before = state(env)
        resp = client.post_form(page, action, _fresh(data))
        body = resp.get_data(as_text=True)
        assert 'data-code="csrf_failed"' not in body, action
        assert resp.status_code in (201, 302), (action, resp.status_code, body[:800])
        if action != "/logout":
            assert state(env) != before, f"{action} with a valid token changed nothing"

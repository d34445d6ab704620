"""Object-level access (IDOR) on every object route of the API and the pages.

`analyst2` holds a valid account and knows the ids, but none of the objects:
a dataset not granted to them, another analyst's releases (running and
approved), their reports and bundles, another user's API token. Every attempt
is a 404 that names no data, changes nothing, and is audited.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from core.db import dispose_engines, session_scope
from core.models import ApiToken, AuditEvent, Grant, LedgerEntry, ReleaseJob, User
from tests.browser.support import (
    PageClient,
    finished_release,
    make_app_env,
    register_demo,
    request_release,
)
from webapp.pages import download_link

pytestmark = [pytest.mark.integration]

SECRET_NAME = "payroll-2026"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_app_env(tmp_path_factory.mktemp("idor"))
    register_demo(env, SECRET_NAME)  # granted to analyst only
    env.approved = finished_release(env, dataset=SECRET_NAME, approve=True)  # type: ignore[attr-defined]
    env.waiting = finished_release(env, dataset=SECRET_NAME)  # type: ignore[attr-defined]
    env.queued = request_release(env, dataset=SECRET_NAME)  # type: ignore[attr-defined]
    with session_scope(env.settings) as s:
        analyst = s.execute(select(User).where(User.username == env.users["analyst"])).scalar_one()
        env.analyst_id = analyst.id  # type: ignore[attr-defined]
        env.token_id = s.execute(select(ApiToken.id).where(ApiToken.user_id == analyst.id)).scalar_one()  # type: ignore[attr-defined]
    yield env
    dispose_engines()


def snapshot(env) -> tuple:
    with session_scope(env.settings) as s:
        return (
            tuple(s.execute(select(ReleaseJob.id, ReleaseJob.status, ReleaseJob.bundle_key)).all()),
            tuple(s.execute(select(Grant.dataset_id, Grant.user_id)).all()),
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
            tuple(s.execute(select(ApiToken.id, ApiToken.revoked_at)).all()),
        )


def refusals(env, actor: str) -> int:
    with session_scope(env.settings) as s:
        return s.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.actor == actor, AuditEvent.action.in_(("auth.failed", "authz.denied")))
        ).scalar_one()


def assert_hidden(resp, *secrets: str) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code == 404, (resp.status_code, body[:400])
    for secret in secrets:
        assert secret not in body


def api_attempts(env) -> list[tuple[str, str, dict]]:
    ds = SECRET_NAME
    out: list[tuple[str, str, dict]] = []
    for ref in (ds, "1"):
        out += [
            ("GET", f"/datasets/{ref}", {}),
            ("GET", f"/datasets/{ref}/ledger", {}),
            ("GET", f"/releases?dataset={ref}", {}),
            ("PUT", f"/datasets/{ref}/schema", {"json": {"schema": "columns: {}"}}),
            ("PUT", f"/datasets/{ref}/policy", {"json": {"policy": {"privacy": "allow-non-dp"}}}),
            ("POST", f"/datasets/{ref}/grants", {"json": {"user": env.users["analyst2"]}}),
            ("DELETE", f"/datasets/{ref}/grants/{env.users['analyst']}", {}),
            ("POST", "/releases", {"json": {"dataset": ref, "method": "dp-marginals", "epsilon": 0.1, "delta": 0}}),
        ]
    for job in (env.approved, env.waiting, env.queued):
        out += [
            ("GET", f"/releases/{job}", {}),
            ("GET", f"/releases/{job}/report", {}),
            ("GET", f"/releases/{job}/report?format=json", {}),
            ("GET", f"/releases/{job}/bundle", {}),
            ("POST", f"/releases/{job}/approve", {"json": {"comment": "x", "override": "x"}}),
            ("POST", f"/releases/{job}/reject", {"json": {"comment": "x"}}),
        ]
    out.append(("DELETE", f"/tokens/{env.token_id}", {}))
    return out


def test_api_hides_every_object_of_others(env):
    before, logged = snapshot(env), refusals(env, env.users["analyst2"])
    attempts = api_attempts(env)
    for method, path, kw in attempts:
        resp = env.api("analyst2", method, path, **kw)
        asked = path + json.dumps(kw)  # a 404 may echo what was asked, nothing else
        assert_hidden(resp, *(s for s in (SECRET_NAME, "adult.csv", "income") if s not in asked))
        assert resp.get_json()["error"]["code"] == "not_found", (method, path)
    assert snapshot(env) == before
    # the id-guessing is in the audit log: every refusal of a dataset, release or token route
    audited = [a for a in attempts if not (a[0] == "POST" and a[1] == "/releases")]
    assert refusals(env, env.users["analyst2"]) - logged >= len(audited)
    # the owner does see them (the 404s are about who asks, not about the ids)
    assert env.api("analyst", "GET", f"/releases/{env.waiting}").status_code == 200
    assert env.api("analyst", "GET", f"/datasets/{SECRET_NAME}").status_code == 200


def test_pages_hide_every_object_of_others(env):
    intruder = env.pages("analyst2")
    before, logged = snapshot(env), refusals(env, env.users["analyst2"])
    gets = ["/datasets/1", "/datasets/1/request"]
    for job in (env.approved, env.waiting, env.queued):
        gets += [f"/releases/{job}", f"/releases/{job}/report", f"/releases/{job}/download"]
    for path in gets:
        assert_hidden(intruder.get(path), SECRET_NAME, "income")
    token = intruder.csrf()
    posts = [
        ("/datasets/1/grants", {"username": env.users["analyst2"]}),
        (f"/datasets/1/grants/{env.users['analyst']}/revoke", {}),
        ("/datasets/1/schema", {"schema_text": "columns: {}"}),
        ("/datasets/1/policy", {"policy_text": "privacy: allow-non-dp"}),
        ("/datasets/1/request", {"method": "dp-marginals", "epsilon": "0.1", "delta": "0"}),
        (f"/tokens/{env.token_id}/revoke", {}),
    ]
    for job in (env.approved, env.waiting, env.queued):
        posts += [
            (f"/releases/{job}/approve", {"comment": "x", "override": "x"}),
            (f"/releases/{job}/reject", {"comment": "x"}),
        ]
    for action, data in posts:
        assert_hidden(intruder.post_raw(action, {**data, "csrf_token": token}), SECRET_NAME)
    assert snapshot(env) == before
    assert refusals(env, env.users["analyst2"]) - logged >= len(gets) + len(posts)
    # nothing of theirs on the dashboard either
    home = intruder.get("/").get_data(as_text=True)
    assert SECRET_NAME not in home and f"#{env.waiting}" not in home


def test_a_grant_shows_approved_releases_but_never_others_unapproved_work(env):
    """With a grant, analyst2 sees the dataset and approved releases of it, not another analyst's
    running or waiting jobs; only the requester (or staff) downloads an approved bundle."""
    resp = env.api("steward", "POST", f"/datasets/{SECRET_NAME}/grants", json={"user": env.users["analyst2"]})
    assert resp.status_code == 201
    try:
        intruder = env.pages("analyst2")
        assert intruder.get("/datasets/1").status_code == 200
        assert intruder.get(f"/releases/{env.approved}").status_code == 200
        for job in (env.waiting, env.queued):
            assert_hidden(intruder.get(f"/releases/{job}"))
            assert_hidden(env.api("analyst2", "GET", f"/releases/{job}"))
        assert intruder.get(f"/releases/{env.approved}/download").status_code == 403
        assert intruder.get(f"/releases/{env.approved}/report").status_code == 403
        assert env.api("analyst2", "GET", f"/releases/{env.approved}/bundle").status_code == 403
        listed = {r["id"] for r in env.api("analyst2", "GET", "/releases").get_json()["releases"]}
        assert listed == {env.approved}
        # the internal gate and summary never reach an analyst, even on an approved release
        page = intruder.get(f"/releases/{env.approved}").get_data(as_text=True)
        assert 'id="gate"' not in page and "membership" not in page
    finally:
        env.api("steward", "DELETE", f"/datasets/{SECRET_NAME}/grants/{env.users['analyst2']}")


def test_signed_download_links_are_bound_to_one_release_and_expire(env):
    owner = env.pages("analyst")
    page = owner.get(f"/releases/{env.approved}").get_data(as_text=True)
    assert 'id="download"' in page
    with env.app.test_request_context():
        link = download_link(env.approved, env.analyst_id)
        other_job = download_link(env.waiting, env.analyst_id)
    anonymous = PageClient(env.app)
    with anonymous.get(link) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.data[:2] == b"PK"
    # the link of one release does not open another (the id in the path is checked)
    swapped = link.replace(f"/releases/{env.approved}/", f"/releases/{env.waiting}/")
    assert_hidden(anonymous.get(swapped))
    # a link for a release that is not approved yet downloads nothing
    assert anonymous.get(other_job).status_code == 409
    # a tampered signature is refused
    assert_hidden(anonymous.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")))
    # without a link or a session: the login page
    assert anonymous.get(f"/releases/{env.approved}/download").status_code == 302
    # links expire
    from webapp import create_app

    short = create_app(replace(env.settings, download_link_seconds=1))
    with short.test_request_context():
        quick = download_link(env.approved, env.analyst_id)
    time.sleep(2.2)
    resp = short.test_client().get(quick)
    assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    # every download is in the audit log, with how it was authorised
    events = env.api("steward", "GET", "/audit?action=release.download").get_json()["events"]
    assert any(e["detail"].get("via") == "signed link" and e["actor"] == env.users["analyst"] for e in events)


def test_staff_roles_are_checked_per_page(env):
    analyst = env.pages("analyst")
    for path in ("/audit", "/admin", "/datasets/new"):
        assert analyst.get(path).status_code == 403, path
    steward = env.pages("steward")
    assert steward.get("/admin").status_code == 403
    admin = env.pages("admin")
    # an admin manages users and grants but does not request or decide releases
    assert admin.get("/datasets/1/request").status_code == 403
    token = admin.csrf()
    resp = admin.post_raw(f"/releases/{env.waiting}/approve", {"csrf_token": token, "comment": "x", "override": "x"})
    assert resp.status_code == 403
    assert env.api("steward", "GET", f"/releases/{env.waiting}").get_json()["release"]["status"] == "awaiting_approval"
    upload = {
        "csrf_token": analyst.csrf(),
        "name": "nope",
        "epsilon_budget": "1",
        "delta_budget": "1e-6",
        "file": (io.BytesIO(b"a,b\n1,2\n"), "t.csv"),
    }
    assert analyst.post_raw("/datasets/new", upload).status_code == 403
    denied = env.api("steward", "GET", "/audit?action=authz.denied").get_json()["events"]
    assert any(e["actor"] == env.users["admin"] and json.dumps(e["detail"]).find("steward") >= 0 for e in denied)

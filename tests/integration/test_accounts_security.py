"""Sessions and accounts against the real service (gunicorn + its database, Redis when configured).

* a session ends on the server: a cookie copied before logout, a password
  change, a role change or disabling the account no longer works;
* ?next= after login goes only to a path on this host (tabs, spaces and
  backslashes cannot turn it into //elsewhere); CR/LF in it is a 400;
* failed logins and invalid tokens are limited per account and per client,
  with "try again in N s" and Retry-After;
* common, breached and username-based passwords are refused;
* an admin-created account must change its password first, and a steward or
  admin role (or a budget raise above the ceiling) takes effect only when a
  second steward confirms it; `synthgate users token` needs --break-glass.
"""

from __future__ import annotations

import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"  # the fixtures' password
ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests" / "data" / "penguins"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf(html: str) -> str:
    m = _CSRF.search(html)
    assert m, html[:500]
    return unescape(m.group(1))


def browser(svc) -> requests.Session:  # type: ignore[no-untyped-def]
    web = requests.Session()
    web.base = svc.url  # type: ignore[attr-defined]
    return web


def login(
    svc, user: str, password: str = PASSWORD, next_: str | None = None
) -> tuple[requests.Session, requests.Response]:  # type: ignore[no-untyped-def]
    web = browser(svc)
    page = web.get(svc.url + "/login", timeout=30)
    url = svc.url + "/login" + (f"?next={next_}" if next_ is not None else "")
    resp = web.post(
        url,
        data={"username": user, "password": password, "csrf_token": csrf(page.text)},
        allow_redirects=False,
        timeout=60,
    )
    return web, resp


def logged_in(svc, key: str) -> requests.Session:  # type: ignore[no-untyped-def]
    web, resp = login(svc, svc.tokens[key + ":username"])
    assert resp.status_code == 302, resp.text[:500]
    return web


def works(web: requests.Session, svc) -> bool:  # type: ignore[no-untyped-def]
    """Does this cookie jar still open the dashboard?"""
    resp = web.get(svc.url + "/", allow_redirects=False, timeout=30)
    assert resp.status_code in (200, 302), resp.status_code
    return resp.status_code == 200


def copy_of(web: requests.Session) -> requests.Session:
    other = requests.Session()
    other.cookies.update(web.cookies.get_dict())
    return other


def change_password(web: requests.Session, svc, current: str, new: str) -> requests.Response:  # type: ignore[no-untyped-def]
    page = web.get(svc.url + "/account/password", timeout=30)
    return web.post(
        svc.url + "/account/password",
        data={"current_password": current, "new_password": new, "confirm": new, "csrf_token": csrf(page.text)},
        allow_redirects=False,
        timeout=60,
    )


def audit_actions(svc) -> list[str]:  # type: ignore[no-untyped-def]
    from core.db import session_scope
    from core.models import AuditEvent

    with session_scope(svc.settings) as s:
        return [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)]


def user_id(svc, key: str) -> int:  # type: ignore[no-untyped-def]
    return svc.api(key, "GET", "/me").json()["id"]


# ------------------------------------------------------------------------------------------------
# item: sessions end on the server
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "redis-postgres"])
def test_a_copied_cookie_stops_working_after_logout(service_factory, backend):
    svc = service_factory(backend)
    svc.start_web()
    web = logged_in(svc, "steward")
    stolen = copy_of(web)
    assert works(stolen, svc)
    page = web.get(svc.url + "/", timeout=30)
    web.post(svc.url + "/logout", data={"csrf_token": csrf(page.text)}, timeout=30)
    assert not works(web, svc)
    assert not works(stolen, svc), "a cookie copied before logout still opens the pages"
    # nor does it read the API
    assert stolen.get(svc.url + "/api/v1/me", timeout=30).status_code == 401


def test_a_session_ends_after_its_maximum_age(service_factory):
    import datetime as dt

    from sqlalchemy import update

    from core.db import write_session
    from core.models import UserSession, utcnow

    svc = service_factory("redis-postgres", session_max_hours=1)
    svc.start_web()
    web = logged_in(svc, "analyst")
    assert works(web, svc)
    with write_session(svc.settings) as s:  # the login happened 61 minutes ago
        s.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id(svc, "analyst"))
            .values(created_at=utcnow() - dt.timedelta(minutes=61))
        )
    assert not works(web, svc)


def test_password_role_change_and_disable_end_other_sessions(service_factory):
    svc = service_factory("redis-postgres")
    svc.start_web()
    # password change: the other session ends, the one that changed it goes on
    here, there = logged_in(svc, "analyst"), logged_in(svc, "analyst")
    resp = change_password(here, svc, PASSWORD, "velvet harbour quinoa seventeen")
    assert resp.status_code == 302, resp.text[:1000]
    assert works(here, svc) and not works(there, svc)
    # role change (a demotion applies at once): the user's sessions end
    st2 = logged_in(svc, "steward2")
    resp = svc.api("admin", "PUT", f"/users/{user_id(svc, 'steward2')}/role", json={"role": "analyst"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["role"] == "analyst"
    assert not works(st2, svc)
    # disabling the account
    a2 = logged_in(svc, "analyst2")
    resp = svc.api("admin", "POST", f"/users/{user_id(svc, 'analyst2')}/disable")
    assert resp.status_code == 200, resp.text
    assert not works(a2, svc)
    actions = audit_actions(svc)
    assert "user.password_change" in actions and "user.role_change" in actions and "user.disable" in actions


# ------------------------------------------------------------------------------------------------
# item: open redirect after login
# ------------------------------------------------------------------------------------------------


def test_next_after_login_stays_on_this_host(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    user = svc.tokens["analyst:username"]
    for evil in (
        "/%09/evil.example",
        "/%20/evil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "https://evil.example/",
        "/%0B/evil.example",
        "javascript:alert(1)",
    ):
        _, resp = login(svc, user, next_=evil)
        assert resp.status_code == 302, (evil, resp.status_code)
        location = resp.headers["Location"]
        assert location == "/", (evil, location)
    _, resp = login(svc, user, next_="/account?tab=tokens")
    assert resp.status_code == 302 and resp.headers["Location"] == "/account?tab=tokens"
    for crlf in ("/%0d%0aSet-Cookie:%20x=y", "/%0aevil"):
        _, resp = login(svc, user, next_=crlf)
        assert resp.status_code == 400, (crlf, resp.status_code, resp.text[:300])
        assert "line breaks" in resp.text


# ------------------------------------------------------------------------------------------------
# item: brute force
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "redis-postgres"])
def test_wrong_passwords_lock_the_account_for_a_while(service_factory, backend):
    svc = service_factory(backend, login_fail_limit_account="5 per 15 minutes")
    svc.start_web()
    user = svc.tokens["analyst:username"]
    # embedded: counters live in each of the 2 gunicorn processes, so at most 2 x 5 failures get through
    allowed = 5 if backend == "redis-postgres" else 10
    statuses = []
    for _ in range(40):
        _, resp = login(svc, user, "not the password")
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            break
    assert 429 in statuses, f"no lockout after {len(statuses)} wrong passwords"
    assert statuses.count(401) <= allowed and statuses.count(401) >= 5, statuses
    assert int(resp.headers["Retry-After"]) > 0 and re.search(r"try again in \d+ s", resp.text)
    if backend == "redis-postgres":  # shared counters: locked for every web process, right password or not
        for _ in range(4):
            _, resp = login(svc, user, PASSWORD)
            assert resp.status_code == 429, resp.status_code
        assert int(resp.headers["Retry-After"]) > 0
        assert re.search(r"try again in \d+ s", resp.text)
    # another account is not locked by this one
    _, resp = login(svc, svc.tokens["steward:username"], PASSWORD)
    assert resp.status_code == 302
    assert "auth.login_throttled" in audit_actions(svc)


def test_limits_hold_when_their_redis_is_unreachable(service_factory):
    """Counters stored in a Redis nobody answers on: logins and API calls are still served (no 500),
    and a brute force is still stopped, counted in each web process's memory meanwhile."""
    svc = service_factory("embedded", broker_url="redis://127.0.0.1:1/0", login_fail_limit_account="3 per 15 minutes")
    svc.start_web()
    assert svc.api("analyst", "GET", "/me").status_code == 200
    user = svc.tokens["analyst:username"]
    statuses = []
    for _ in range(20):
        _, resp = login(svc, user, "not the password")
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            break
    assert 500 not in statuses and statuses[-1] == 429, statuses
    assert statuses.count(401) <= 2 * 3, statuses  # at most the limit in each of the 2 gunicorn processes
    _, resp = login(svc, svc.tokens["steward:username"], PASSWORD)
    assert resp.status_code == 302


def test_failed_logins_and_bad_tokens_are_limited_per_client(service_factory):
    svc = service_factory(
        "redis-postgres", login_fail_limit_client="6 per 15 minutes", token_fail_limit_client="4 per 15 minutes"
    )
    svc.start_web()
    statuses = [login(svc, f"nobody-{i}", "whatever-guess")[1].status_code for i in range(8)]
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429], statuses
    bad = [
        requests.get(svc.url + "/api/v1/me", headers={"Authorization": f"Bearer sg_guess{i}"}, timeout=30)
        for i in range(6)
    ]
    assert [r.status_code for r in bad] == [401] * 4 + [429] * 2
    assert bad[-1].json()["error"]["code"] == "rate_limited"
    assert "try again in" in bad[-1].json()["error"]["message"] and int(bad[-1].headers["Retry-After"]) > 0


def test_behind_a_proxy_each_client_has_its_own_login_limit(service_factory):
    """With SYNTHGATE_PROXY_HOPS=1 the client address comes from the proxy's X-Forwarded-For: one
    client's failures do not lock out the others behind the same proxy, and a client cannot reset
    its count by sending a forged header of its own in front of the proxy's."""
    svc = service_factory("redis-postgres", login_fail_limit_client="3 per 15 minutes", proxy_hops=1)
    svc.start_web()

    def attempt(client: str, forged: str | None = None) -> int:
        web = browser(svc)
        page = web.get(svc.url + "/login", timeout=30)
        chain = f"{forged}, {client}" if forged else client  # the proxy appends the address it saw
        resp = web.post(
            svc.url + "/login",
            data={"username": "nobody", "password": "whatever-guess", "csrf_token": csrf(page.text)},
            headers={"X-Forwarded-For": chain},
            allow_redirects=False,
            timeout=60,
        )
        return resp.status_code

    assert [attempt("198.51.100.7") for _ in range(4)] == [401, 401, 401, 429]
    assert attempt("198.51.100.7", forged="203.0.113.99") == 429  # the forged hop is not trusted
    assert attempt("198.51.100.8") == 401  # another client behind the same proxy is not locked out


# ------------------------------------------------------------------------------------------------
# item: password policy
# ------------------------------------------------------------------------------------------------


def test_common_and_weak_passwords_are_refused(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    # the admin page's form
    admin = logged_in(svc, "admin")
    page = admin.get(svc.url + "/admin", timeout=30)
    resp = admin.post(
        svc.url + "/admin/users",
        data={"username": "pat", "role": "analyst", "password": "password", "csrf_token": csrf(page.text)},
        allow_redirects=False,
        timeout=60,
    )
    assert resp.status_code == 400 and "most common" in resp.text, resp.status_code
    # and the API
    for weak, says in (
        ("password", "most common"),
        ("Password1", "most common"),
        ("qwertyuiop", "most common"),
        ("iloveyou2", "most common"),
        ("short", "at least 8"),
        ("dora-the-user-2024", "username"),
        ("aaaaaaaaaaaa", "weak"),
    ):
        resp = svc.api(
            "admin", "POST", "/users", json={"username": "dora-the-user", "role": "analyst", "password": weak}
        )
        assert resp.status_code == 400, (weak, resp.text)
        err = resp.json()["error"]
        assert err["field"] == "password" and says in err["message"], (weak, err)
    resp = svc.api(
        "admin",
        "POST",
        "/users",
        json={"username": "dora-the-user", "role": "analyst", "password": "lantern tundra okapi violet"},
    )
    assert resp.status_code == 201, resp.text
    # the same policy on a password change
    web = logged_in(svc, "analyst")
    resp = change_password(web, svc, PASSWORD, "password123")
    assert resp.status_code == 400 and "most common" in resp.text


# ------------------------------------------------------------------------------------------------
# item: four eyes on identities
# ------------------------------------------------------------------------------------------------


def test_a_new_steward_needs_a_second_steward_and_its_own_password(service_factory):
    svc = service_factory("redis-postgres")
    svc.start_web()
    name = "stew-" + svc.tokens["steward:username"].rsplit("-", 1)[-1]
    admin = logged_in(svc, "admin")
    page = admin.get(svc.url + "/admin", timeout=30)
    resp = admin.post(
        svc.url + "/admin/users",
        data={
            "username": name,
            "role": "steward",
            "password": "admin chose this phrase",
            "csrf_token": csrf(page.text),
        },
        timeout=60,
    )
    assert resp.status_code == 200 and "when another steward confirms it" in resp.text, resp.text[:2000]
    listed = svc.api("steward", "GET", "/confirmations").json()["confirmations"]
    assert [c["payload"]["username"] for c in listed] == [name] and listed[0]["payload"]["role"] == "steward"
    change_id = listed[0]["id"]
    # the API says the same
    resp = svc.api(
        "admin",
        "POST",
        "/users",
        json={"username": name + "-2", "role": "steward", "password": "admin chose this phrase"},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["user"]["role"] == "analyst" and body["user"]["must_change_password"]
    assert body["awaiting_confirmation"]["payload"]["role"] == "steward"

    # the admin's password lets in only to choose a new one
    web, resp = login(svc, name, "admin chose this phrase")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/password")
    assert web.get(svc.url + "/", allow_redirects=False, timeout=30).headers["Location"].endswith("/account/password")
    assert web.get(svc.url + "/api/v1/me", timeout=30).status_code == 401
    resp = change_password(web, svc, "admin chose this phrase", "my own secret walrus phrase")
    assert resp.status_code == 302, resp.text[:1000]
    assert web.get(svc.url + "/api/v1/me", timeout=30).json()["role"] == "analyst"

    # the admin cannot confirm; the steward-to-be cannot; another steward can
    resp = svc.api("admin", "POST", f"/confirmations/{change_id}/confirm")
    assert resp.status_code == 403, resp.text
    assert svc.api("analyst", "GET", "/confirmations").status_code == 403
    resp = svc.api("steward", "POST", f"/confirmations/{change_id}/confirm", json={"comment": "met her"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["change"]["status"] == "confirmed"
    # the role change ended the session made as an analyst; a new login is a steward
    assert not works(web, svc)
    web, resp = login(svc, name, "my own secret walrus phrase")
    assert resp.status_code == 302 and web.get(svc.url + "/api/v1/me", timeout=30).json()["role"] == "steward"
    resp = svc.api("steward2", "POST", f"/confirmations/{change_id}/confirm")
    assert resp.status_code == 409  # already confirmed

    # a role change to admin waits too; the target cannot confirm their own
    target = user_id(svc, "steward2")
    resp = svc.api("admin", "PUT", f"/users/{target}/role", json={"role": "admin"})
    assert resp.status_code == 202 and resp.json()["user"]["role"] == "steward"
    change2 = resp.json()["awaiting_confirmation"]["id"]
    assert svc.api("steward2", "POST", f"/confirmations/{change2}/confirm").status_code == 403
    assert svc.api("steward2", "GET", "/me").json()["role"] == "steward"
    assert svc.api("steward", "POST", f"/confirmations/{change2}/reject").status_code == 200
    assert svc.api("steward2", "GET", "/me").json()["role"] == "steward"

    actions = audit_actions(svc)
    for action in (
        "user.create",
        "confirmation.request",
        "confirmation.confirm",
        "user.role_change",
        "user.password_change",
        "confirmation.reject",
    ):
        assert action in actions, action


def _cli(svc, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-c", "from webapp.cli import main; main()", *args],
        env=svc.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_token_for_an_existing_user_needs_break_glass(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    name = svc.tokens["steward:username"]
    out = _cli(svc, "users", "token", name)
    assert out.returncode == 2 and "--break-glass" in out.stderr and "sg_" not in out.stdout
    out = _cli(svc, "users", "token", name, "--break-glass")
    assert out.returncode == 2 and "--reason" in out.stderr
    out = _cli(svc, "users", "token", name, "--break-glass", "--reason", "lost laptop, ticket 12")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    resp = requests.get(svc.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.json()["username"] == name
    assert "token.break_glass" in audit_actions(svc)
    # two stewards exist: a third one made on the command line waits for confirmation as well
    out = _cli(
        svc, "users", "create", "third-steward", "--role", "steward", "--password", "sturdy pelican orchard", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert '"role": "analyst"' in out.stdout and '"awaiting_confirmation": ' in out.stdout
    # and, made by the operator with a password the operator chose, it must change it first: no token
    assert '"token": null' in out.stdout and '"must_change_password": true' in out.stdout, out.stdout
    _web, resp = login(svc, "third-steward", "sturdy pelican orchard")
    assert resp.status_code == 302 and "password" in resp.headers["Location"], resp.headers
    out = _cli(svc, "users", "create", "fourth-user", "--role", "analyst")
    assert out.returncode == 2 and "--password" in out.stderr, out.stderr


# ------------------------------------------------------------------------------------------------
# item: budget raises need a second steward
# ------------------------------------------------------------------------------------------------


def _register(svc, name: str, epsilon_budget: str) -> requests.Response:  # type: ignore[no-untyped-def]
    with open(PENGUINS / "penguins.csv", "rb") as fh:
        return svc.api(
            "steward",
            "POST",
            "/datasets",
            files={"file": ("penguins.csv", fh)},
            data={
                "name": name,
                "schema": (PENGUINS / "schema.yaml").read_text(),
                "epsilon_budget": epsilon_budget,
                "delta_budget": "1e-6",
            },
        )


def test_budget_raises_above_the_ceiling_need_a_second_steward(service_factory):
    svc = service_factory("redis-postgres")
    svc.start_web()
    suffix = svc.tokens["steward:username"].rsplit("-", 1)[-1]
    resp = _register(svc, f"absurd-{suffix}", "1000")
    assert resp.status_code == 400 and "above the maximum" in resp.json()["error"]["message"], resp.text
    # registered above the ceiling: starts at the ceiling
    name = f"penguins-{suffix}"
    resp = _register(svc, name, "50")
    assert resp.status_code == 201, resp.text
    assert resp.json()["dataset"]["budget"]["epsilon"] == "10", resp.json()["dataset"]["budget"]
    assert any(i["code"] == "budget_awaits_confirmation" for i in resp.json()["issues"])
    first = svc.api("steward", "GET", "/confirmations").json()["confirmations"][-1]
    assert first["payload"]["epsilon_budget"] == "50"
    # a raise above the ceiling waits; the steward who asked cannot confirm it
    resp = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"epsilon_budget": 20})
    assert resp.status_code == 202, resp.text
    change = resp.json()["awaiting_confirmation"]["id"]
    assert resp.json()["dataset"]["budget"]["epsilon"] == "10"
    assert svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"epsilon_budget": 1e308}).status_code == 400
    resp = svc.api("steward", "POST", f"/confirmations/{change}/confirm")
    assert resp.status_code == 403 and "four eyes" in resp.json()["error"]["message"]
    # the 1e308 attempt was refused, so the raise to 20 is still the one pending (the first one, 50, was
    # superseded by it)
    resp = svc.api("steward2", "POST", f"/confirmations/{change}/confirm")
    assert resp.status_code == 200, resp.text
    ds = svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]
    assert ds["budget"]["epsilon"] == "20"
    assert svc.api("steward2", "POST", f"/confirmations/{first['id']}/confirm").status_code == 409
    # lowering applies at once
    resp = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"epsilon_budget": 5})
    assert resp.status_code == 200 and resp.json()["dataset"]["budget"]["epsilon"] == "5"
    assert "dataset.budget_confirmed" in audit_actions(svc)
    # delta the same way: above the maximum refused, above the ceiling (1e-5) waits for a second steward
    resp = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"delta_budget": 0.5})
    assert resp.status_code == 400 and "delta_budget" in resp.json()["error"]["message"], resp.text
    resp = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"delta_budget": 1e-4})
    assert resp.status_code == 202, resp.text
    assert resp.json()["dataset"]["budget"]["delta"] == "0.000001", resp.json()["dataset"]["budget"]
    change = resp.json()["awaiting_confirmation"]["id"]
    assert svc.api("steward", "POST", f"/confirmations/{change}/confirm").status_code == 403
    assert svc.api("steward2", "POST", f"/confirmations/{change}/confirm").status_code == 200
    ds = svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]
    assert ds["budget"]["delta"] == "0.0001", ds["budget"]

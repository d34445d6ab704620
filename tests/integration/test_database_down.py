"""PostgreSQL unreachable: the service answers 503 with Retry-After, and recovers by itself.

A real gunicorn server runs on its own PostgreSQL database. The test closes that
database to connections (ALTER DATABASE ... ALLOW_CONNECTIONS false, and ends
the server's open sessions), so every query fails as it would with the server
gone, without stopping the shared PostgreSQL server; then it opens it again.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest

from tests.integration.conftest import PG_ADMIN_DSN
from tests.integration.live_support import login

pytestmark = [pytest.mark.integration]


@pytest.fixture
def own_database():
    name = f"synthgate_down_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        user = conn.execute("SELECT current_user").fetchone()[0]
    parts = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    yield name, f"postgresql+psycopg://{user}@{parts.get('host', '127.0.0.1')}:{parts.get('port', '5432')}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def _open(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def _unavailable(r) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:500])
    assert r.headers.get("Retry-After", "").isdigit() and int(r.headers["Retry-After"]) > 0
    err = r.json()["error"]
    assert err["code"] == "database_unavailable"
    assert "unavailable" in err["message"] and "try again" in err["message"]


def test_database_down_gives_503_with_retry_after_then_recovers(service_factory, own_database):
    from core.db import dispose_engines

    name, url = own_database
    svc = service_factory("embedded", database_url=url)
    svc.start_web()
    dispose_engines()  # the test process's own pool must not hold the database open
    assert svc.api("analyst", "GET", "/datasets").status_code == 200
    assert svc.api("", "GET", "/health").status_code == 200
    browser = login(svc, "analyst")
    assert browser.get(f"{svc.url}/", timeout=60).status_code == 200

    _close(name)
    try:
        _unavailable(svc.api("analyst", "GET", "/datasets"))  # token lookup: a read
        _unavailable(svc.api("", "GET", "/health"))
        _unavailable(
            svc.api(
                "analyst", "POST", "/releases", json={"dataset": "any", "method": "mst", "epsilon": 0.5, "delta": 1e-9}
            )
        )
        _unavailable(svc.api("steward", "GET", "/audit", params={"limit": "5"}))
        page = browser.get(f"{svc.url}/", timeout=60)  # a page: the same status, as HTML
    finally:
        _open(name)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    assert int(page.headers["Retry-After"]) > 0 and "try again" in page.text

    # recovery: pooled connections were dropped; the next requests reconnect
    assert svc.api("", "GET", "/health").status_code == 200
    r = svc.api("analyst", "GET", "/datasets")
    assert r.status_code == 200 and r.json() == {"datasets": []}
    assert browser.get(f"{svc.url}/", timeout=60).status_code == 200


def test_job_queue_down_gives_503_with_retry_after_and_charges_nothing(service_factory):
    """The broker (a Redis port nobody listens on) refuses the job: 503 + Retry-After, the reservation
    is released and the job is marked failed, not left queued."""
    from tests.integration.live_support import register_penguins

    svc = service_factory("embedded", broker_url="redis://127.0.0.1:1/0")
    svc.start_web()
    register_penguins(svc, "penguins", epsilon_budget="3", delta_budget="1e-6")
    r = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "penguins", "method": "mst", "epsilon": 0.5, "delta": 1e-9, "rows": 20},
    )
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    err = r.json()["error"]
    assert err["code"] == "queue_unavailable" and "nothing was charged" in err["message"]
    assert "try again" in err["message"].lower()
    ledger = svc.api("analyst", "GET", "/datasets/penguins/ledger").json()["ledger"]
    assert ledger["reserved"]["epsilon"] == "0" and ledger["spent"]["epsilon"] == "0"
    jobs = svc.api("analyst", "GET", "/releases").json()["releases"]
    assert [j["status"] for j in jobs] == ["failed"] and jobs[0]["charge"] == "released"

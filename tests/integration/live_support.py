"""A live service for a whole test module: real gunicorn (and, when asked, a real Celery worker).

Built from the same pieces as `service_factory` (conftest), but module-scoped so
that many small checks share one server start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from tests.integration.conftest import Service, make_settings, setup_service

ROOT = Path(__file__).resolve().parents[2]
PENGUINS_CSV = (ROOT / "tests/data/penguins/penguins.csv").read_bytes()
PENGUINS_SCHEMA = (ROOT / "tests/data/penguins/schema.yaml").read_text()
PASSWORD = "correct horse battery"  # what setup_service gives every user


def start_live(tmp: Path, backend: str = "embedded", **overrides: Any) -> Service:
    """An embedded (SQLite + file broker) service with its web server started."""
    (tmp / "data").mkdir()
    (tmp / "logs").mkdir()
    svc = setup_service(make_settings(tmp / "data", backend, **overrides), tmp / "logs")
    svc.start_web()
    return svc


def register_penguins(svc: Service, name: str, *, grant: tuple[str, ...] = ("analyst",), **form: str) -> dict:
    """Register the penguins table with its public schema and grant it to the given users."""
    r = svc.api(
        "steward",
        "POST",
        "/datasets",
        data={"name": name, "schema": PENGUINS_SCHEMA, **form},
        files={"file": ("penguins.csv", PENGUINS_CSV)},
    )
    assert r.status_code == 201, r.text
    for user in grant:
        g = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens[user + ":username"]})
        assert g.status_code == 201, g.text
    return r.json()["dataset"]


def login(svc: Service, user: str) -> requests.Session:
    """A browser-like session logged in through the login form (CSRF token and cookie)."""
    assert svc.url is not None
    s = requests.Session()
    page = s.get(svc.url + "/login", timeout=60)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    if token is None:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert token, page.text[:2000]
    r = s.post(
        svc.url + "/login",
        data={"csrf_token": token.group(1), "username": svc.tokens[user + ":username"], "password": PASSWORD},
        timeout=60,
        allow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text[:2000]
    return s

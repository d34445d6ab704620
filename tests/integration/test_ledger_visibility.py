"""The ledger as each role sees it, through the real service (gunicorn, SQLite, CLI subprocess).

Every role sees the totals; an analyst sees only their own entries in the
history, stewards and admins see every entry. Checked on the ledger API, the
dataset API with its ledger, the dataset page and `synthgate ledger`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.db import dispose_engines
from tests.integration.live_support import ROOT, login, register_penguins, start_live

pytestmark = [pytest.mark.integration]

EXE = str(__import__("pathlib").Path(sys.executable).parent / "synthgate")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    svc = start_live(tmp_path_factory.mktemp("ledger-visibility"))
    ds = register_penguins(svc, "penguins", grant=("analyst", "analyst2"), epsilon_budget="3", delta_budget="1e-6")
    # one reservation each; no worker runs, so both stay reserved
    for user, method, eps in (("analyst", "mst", 0.5), ("analyst2", "aim", 0.25)):
        r = svc.api(
            user,
            "POST",
            "/releases",
            json={"dataset": "penguins", "method": method, "epsilon": eps, "delta": 1e-9, "rows": 20},
        )
        assert r.status_code == 202, r.text
    svc.dataset_id = ds["id"]  # type: ignore[attr-defined]
    yield svc
    svc.stop()
    dispose_engines()


def _names(svc) -> tuple[str, str]:
    return svc.tokens["analyst:username"], svc.tokens["analyst2:username"]


def _check_own_history(svc, ledger: dict) -> None:
    me, other = _names(svc)
    assert ledger["history_scope"] == "own"
    assert ledger["history"], "the analyst's own reservation is listed"
    assert {h["requester"] for h in ledger["history"]} == {me}
    assert {h["method"] for h in ledger["history"]} == {"mst"}
    assert other not in json.dumps(ledger) and "aim" not in {h["method"] for h in ledger["history"]}
    # totals still count every release: 0.5 + 0.25 reserved
    assert ledger["reserved"]["epsilon"] == "3/4"


def test_ledger_api_shows_an_analyst_only_their_own_entries(live):
    r = live.api("analyst", "GET", "/datasets/penguins/ledger")
    assert r.status_code == 200, r.text
    body = r.json()
    _check_own_history(live, body["ledger"])
    me, other = _names(live)
    assert other not in body["text"] and me in body["text"] and "your own entries only" in body["text"]


def test_dataset_api_with_ledger_shows_an_analyst_only_their_own_entries(live):
    r = live.api("analyst", "GET", "/datasets/penguins")
    assert r.status_code == 200, r.text
    _check_own_history(live, r.json()["dataset"]["ledger"])


@pytest.mark.parametrize("role", ["steward", "admin"])
def test_stewards_and_admins_see_every_entry(live, role):
    body = live.api(role, "GET", "/datasets/penguins/ledger").json()
    me, other = _names(live)
    assert body["ledger"]["history_scope"] == "all"
    assert {h["requester"] for h in body["ledger"]["history"]} == {me, other}
    assert other in body["text"] and me in body["text"]


def test_dataset_page_shows_an_analyst_only_their_own_entries(live):
    page = login(live, "analyst").get(f"{live.url}/datasets/{live.dataset_id}", timeout=60)
    assert page.status_code == 200
    me, other = _names(live)
    section = page.text.split('id="ledger"', 1)[1].split("</section>", 1)[0]
    assert me in section and "mst" in section
    assert other not in page.text and "aim" not in section
    assert "Your own entries only" in section

    staff = login(live, "steward").get(f"{live.url}/datasets/{live.dataset_id}", timeout=60).text
    staff_section = staff.split('id="ledger"', 1)[1].split("</section>", 1)[0]
    assert me in staff_section and other in staff_section


def test_cli_ledger_shows_an_analyst_only_their_own_entries(live):
    env = dict(os.environ, SYNTHGATE_URL=live.url, SYNTHGATE_TOKEN=live.tokens["analyst"])
    me, other = _names(live)
    text = subprocess.run([EXE, "ledger", "penguins"], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert text.returncode == 0, text.stderr
    assert me in text.stdout and other not in text.stdout and "your own entries only" in text.stdout
    as_json = subprocess.run(
        [EXE, "ledger", "penguins", "--json"], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )
    assert as_json.returncode == 0, as_json.stderr
    _check_own_history(live, json.loads(as_json.stdout))

"""Re-running a release's post-processing on its stored DP sample, on a real service.

gunicorn + a Celery worker on both backends: an analyst's MST release of the
penguins runs; a steward re-runs disclosure control, the checks, the report and
the gate with another k and fewer rows; the ledger (its rows and its totals) is
the same before and after; the re-run is audited; an analyst sees no candidate;
another steward approves candidate 1 and the analyst's bundle verifies and holds
that candidate's rows.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from typing import Any

import pandas as pd
import pytest

from core.bundle import verify_bundle
from core.db import session_scope
from core.models import Dataset, LedgerEntry
from core.storage import get_storage
from tests.integration.live_support import login, register_penguins
from tests.integration.test_artifact_scan import _bundle_texts, find_hits

pytestmark = [pytest.mark.integration]

NEW_K = 7
RERUN_ROWS = 150
SAMPLE_ROWS = 400


def _ledger(svc, name: str) -> tuple[list[tuple[Any, ...]], dict[str, Any], int]:
    """Every ledger row of the dataset, the steward's ledger view, and the dataset's ledger version."""
    with session_scope(svc.settings) as s:
        ds = s.query(Dataset).filter_by(name=name).one()
        rows = [
            (e.id, e.job_id, e.action, e.epsilon, e.delta, e.rho, e.note, e.created_at)
            for e in s.query(LedgerEntry).filter_by(dataset_id=ds.id).order_by(LedgerEntry.id)
        ]
        version = ds.ledger_version
    view = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()
    return rows, view, version


def _wait_candidate(svc, job_id: int, number: int, timeout: float = 600) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = svc.api("steward", "GET", f"/releases/{job_id}/candidates")
        assert r.status_code == 200, r.text
        cand = next(c for c in r.json()["candidates"] if c["number"] == number)
        if cand["status"] in ("ready", "failed"):
            return cand
        time.sleep(0.25)
    raise AssertionError(f"candidate {number} of release {job_id} did not finish\n{svc.worker_logs()}")


@pytest.mark.timeout(900)
def test_a_rerun_charges_nothing_and_its_approved_candidate_is_the_bundle(service_factory, backend):
    svc = service_factory(backend)
    svc.start_web()
    svc.start_worker()
    name = f"penguins-pp-{svc.tokens['steward:username'].rsplit('-', 1)[-1]}"
    register_penguins(svc, name)
    r = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "mst", "epsilon": 1.0, "delta": 1e-6, "rows": SAMPLE_ROWS},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["release"]["id"]
    assert svc.wait_for("analyst", job_id)["status"] == "awaiting_approval", svc.worker_logs()
    original = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
    before = _ledger(svc, name)
    assert before[0], "the release was charged"

    # only stewards: the requesting analyst may see the release (403), another analyst may not (404)
    body = {"policy": {"k": NEW_K}, "rows": RERUN_ROWS, "comment": "fewer rows, larger classes"}
    assert svc.api("analyst", "POST", f"/releases/{job_id}/rerun", json=body).status_code == 403
    assert svc.api("analyst2", "POST", f"/releases/{job_id}/rerun", json=body).status_code == 404
    assert svc.api("analyst", "GET", f"/releases/{job_id}/candidates").status_code == 403
    # settings are checked before anything is queued
    bad = svc.api("steward", "POST", f"/releases/{job_id}/rerun", json={"rows": SAMPLE_ROWS + 1})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "rows", bad.text
    bad = svc.api(
        "steward", "POST", f"/releases/{job_id}/rerun", json={"schema": {"columns": {"wingspan": {"top_code": 3}}}}
    )
    assert bad.status_code == 400 and "wingspan" in bad.json()["error"]["message"], bad.text
    bad = svc.api("steward", "POST", f"/releases/{job_id}/rerun", json={"policy": {"min_fidelity": 0.0}})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "policy", bad.text

    started = time.time()
    r = svc.api("steward", "POST", f"/releases/{job_id}/rerun", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["candidate"]["number"] == 1
    cand = _wait_candidate(svc, job_id, 1)
    rerun_seconds = time.time() - started
    assert cand["status"] == "ready", (cand, svc.worker_logs())
    assert _ledger(svc, name) == before  # no new row, the same totals, the same version

    listing = svc.api("steward", "GET", f"/releases/{job_id}/candidates").json()
    numbers = [c["number"] for c in listing["candidates"]]
    assert numbers == [0, 1] and listing["candidate"] is None
    zero = listing["candidates"][0]
    assert zero["settings"]["k"] == 5 and zero["gate"] == original["gate"]["overall"]
    assert cand["settings"]["k"] == NEW_K and cand["settings"]["rows"] == RERUN_ROWS
    assert cand["k_anonymity"]["k"] == NEW_K
    assert cand["k_anonymity"]["smallest_class"] is None or cand["k_anonymity"]["smallest_class"] >= NEW_K
    assert 0 < cand["rows_released"] <= RERUN_ROWS
    assert cand["rows_released"] != zero["rows_released"]
    report = svc.api("steward", "GET", f"/releases/{job_id}/candidates/1/report", params={"format": "json"})
    assert report.status_code == 200, report.text
    storage = get_storage(svc.settings)
    with session_scope(svc.settings) as s:
        from core.models import ReleaseCandidate

        row = s.query(ReleaseCandidate).filter_by(job_id=job_id, number=1).one()
        artifacts = dict(row.artifacts)
    assert set(artifacts) == set(original_artifacts(svc, job_id))
    disclosure = json.loads(storage.get_bytes(artifacts["disclosure.json"]))["disclosure"]
    assert disclosure["k"] == NEW_K and disclosure["rows_in"] == RERUN_ROWS
    assert "candidate 1 (re-run 1)" in storage.get_bytes(artifacts["privacy_draft.md"]).decode()

    events = svc.api("steward", "GET", "/audit", params={"action": "release.rerun"}).json()["events"]
    asked = [e for e in events if e["action"] == "release.rerun" and e["object_id"] == str(job_id)]
    assert len(asked) == 1 and asked[0]["actor"] == svc.tokens["steward:username"]
    assert asked[0]["detail"]["candidate"] == 1 and asked[0]["detail"]["settings"]["policy"] == {"k": NEW_K}

    # the analyst sees no candidate, setting or figure of one, in the API or on the page
    seen = svc.api("analyst", "GET", f"/releases/{job_id}")
    assert seen.status_code == 200 and "candidate" not in seen.text
    assert svc.api("analyst", "GET", f"/releases/{job_id}/candidates/1/report").status_code == 403
    page = login(svc, "analyst").get(f"{svc.url}/releases/{job_id}", timeout=60)
    assert page.status_code == 200 and "candidate" not in page.text and "rerun-form" not in page.text
    steward_web = login(svc, "steward")
    steward_page = steward_web.get(f"{svc.url}/releases/{job_id}", timeout=60).text
    assert 'id="candidate-1"' in steward_page and 'id="rerun-form"' in steward_page

    # the steward's page: the same re-run as a form (CSRF token), its errors shown next to the field
    form = {
        "csrf_token": _csrf(steward_page),
        "k": "6",
        "suppression": "suppress",
        "rows": str(SAMPLE_ROWS * 10),
        "policy_text": "",
        "schema_text": "",
        "comment": "",
    }
    refused = steward_web.post(f"{svc.url}/releases/{job_id}/rerun", data=form, timeout=60)
    assert refused.status_code == 400 and f"more than the {SAMPLE_ROWS} rows" in refused.text
    form["rows"] = "200"
    queued = steward_web.post(f"{svc.url}/releases/{job_id}/rerun", data=form, timeout=60, allow_redirects=False)
    assert queued.status_code in (302, 303), queued.text[:2000]
    second = _wait_candidate(svc, job_id, 2)
    assert second["status"] == "ready" and second["settings"]["k"] == 6, second
    assert second["settings"]["suppression"] == "suppress" and second["settings"]["rows"] == 200
    assert _ledger(svc, name) == before

    r = svc.api(
        "steward2",
        "POST",
        f"/releases/{job_id}/approve",
        json={"comment": "candidate 1", "candidate": 1, **({"override": "reviewed"} if cand["gate"] == "fail" else {})},
    )
    assert r.status_code == 200, r.text
    assert svc.api("steward", "POST", f"/releases/{job_id}/rerun", json=body).status_code == 409
    bundle = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
    assert bundle.status_code == 200, bundle.text
    pem = svc.api("analyst", "GET", "/signing-key").json()["public_key_pem"]
    check = verify_bundle(bundle.content, pem)
    assert check.ok, check.problems
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
        data = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
        manifest = json.loads(zf.read("manifest.json"))
        statement = zf.read("privacy.md").decode()
        names = zf.namelist()
    candidate_data = pd.read_parquet(io.BytesIO(storage.get_bytes(artifacts["data.parquet"])))
    assert len(data) == cand["rows_released"] == manifest["rows"]
    pd.testing.assert_frame_equal(data, candidate_data)
    assert manifest["candidate"] == 1
    assert "candidate 1 (re-run 1) of 3 candidates" in statement and f"- **k**: {NEW_K}" in statement
    assert not any("sample" in n for n in names)
    assert "candidates" not in svc.api("analyst", "GET", f"/releases/{job_id}").json()["release"]
    assert _ledger(svc, name) == before

    # what the analyst reaches once it is approved, scanned as test_artifact_scan does: no seed, no
    # training-row count, no key of the stored sample or of a candidate's files
    with session_scope(svc.settings) as s:
        from core.models import ReleaseJob

        job = s.get(ReleaseJob, job_id)
        seed, train_rows = int(job.seed), int(job.split["train_rows"])
    web = login(svc, "analyst")
    reached = {f"bundle/{n}": v for n, v in _bundle_texts(bundle.content).items()}
    reached["api: release"] = (svc.api("analyst", "GET", f"/releases/{job_id}").text, False)
    for fmt in ("json", "html"):
        reached[f"api: report {fmt}"] = (
            svc.api("analyst", "GET", f"/releases/{job_id}/report", params={"format": fmt}).text,
            False,
        )
    for path in (f"/releases/{job_id}", f"/releases/{job_id}/report"):
        reached[f"page: {path}"] = (web.get(svc.url + path, timeout=60).text, False)
    hits = [
        f"{hit} in {where}"
        for where, (text, table) in reached.items()
        for hit in find_hits(text, seed, train_rows, table=table, report="report" in where)
    ]
    assert not hits, hits
    print(
        f"\n[{backend}] original job {sum(original['internal']['timings'].values()):.2f} s of stages "
        f"{original['internal']['timings']}; re-run {sum(cand['timings'].values()):.2f} s of stages "
        f"{cand['timings']}, {rerun_seconds:.2f} s from request to ready"
    )


def _csrf(page: str) -> str:
    from html import unescape

    m = re.search(r'id="rerun-form".*?name="csrf_token"[^>]*value="([^"]+)"', page, re.S)
    assert m, "no re-run form with a CSRF token on the steward's page"
    return unescape(m.group(1))


def original_artifacts(svc, job_id: int) -> dict[str, str]:
    with session_scope(svc.settings) as s:
        from core.models import ReleaseJob

        return dict(s.get(ReleaseJob, job_id).artifacts)

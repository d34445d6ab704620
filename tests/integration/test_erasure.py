"""Erasing a dataset's raw data on a live service (gunicorn, a Celery worker, PostgreSQL, Redis): the raw
object leaves storage (a directory or an S3-compatible store), paths that need the rows refuse without
touching the ledger, the approved bundle still downloads and verifies, the audit chain holds the erasure."""

from __future__ import annotations

import time

import pytest

from core.bundle import verify_bundle
from tests.integration.release_support import approved_release, cli
from tests.integration.s3_support import bucket_keys, s3_endpoint  # noqa: F401 - the fixture
from tests.integration.test_release_path import DEMO_SCHEMA, ledger_rows, register_demo

pytestmark = [pytest.mark.integration]

REASON = "erasure request ER-2026-41 from the data protection officer"
QUICK = {"method": "dp-marginals", "epsilon": 0.1, "delta": 0, "rows": 200}


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_erasure_on_a_live_service(service_factory, tmp_path):
    svc = service_factory("redis-postgres", lease_seconds=6, heartbeat_seconds=1, reaper_seconds=2)
    svc.start_web()
    worker = svc.start_worker()
    view = register_demo(svc)
    name, ds_id = view["name"], view["id"]
    storage_root = svc.settings.storage_dir
    raw_files = _files(storage_root / "datasets" / str(ds_id))
    assert raw_files == ["raw.csv"]

    approved, bundle = approved_release(svc, name)
    pem = svc.api("analyst", "GET", "/signing-key").json()["public_key_pem"]
    assert verify_bundle(bundle, pem).ok
    svc.kill(worker)  # the next release stays queued until the erasure stops it
    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK})
    assert resp.status_code == 202, resp.text
    queued = resp.json()["release"]["id"]
    spent_before = svc.api("analyst", "GET", f"/datasets/{name}").json()["dataset"]["ledger"]

    # an analyst may not erase; a steward must give a reason
    resp = svc.api("analyst", "POST", f"/datasets/{name}/erase-raw", json={"reason": "mine"})
    assert resp.status_code == 403, resp.text
    resp = svc.api("steward", "POST", f"/datasets/{name}/erase-raw", json={})
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "reason"
    assert (storage_root / "datasets" / str(ds_id) / "raw.csv").exists()

    before = _files(storage_root / "jobs" / str(approved))
    assert "sample/sample.parquet" in before  # the DP sample kept for re-runs: unreleased

    resp = svc.api("steward", "POST", f"/datasets/{name}/erase-raw", json={"reason": REASON})
    assert resp.status_code == 200, resp.text
    done = resp.json()["erasure"]
    assert [c["id"] for c in done["cancelled_releases"]] == [queued]
    assert done["approved_releases_kept"] == [approved]

    # the raw object is gone from storage; the approved release keeps its bundle, not its sample
    assert not (storage_root / "datasets" / str(ds_id)).exists()
    kept = _files(storage_root / "jobs" / str(approved))
    assert f"bundle-{approved}.zip" in kept and not any(k.startswith("sample/") for k in kept)
    assert not (storage_root / "jobs" / str(queued)).exists()

    # the queued release was refunded; the approved one's charge stays
    view = svc.api("steward", "GET", f"/releases/{queued}").json()["release"]
    assert view["status"] == "failed" and view["error_code"] == "cancelled" and view["charge"] == "released"
    assert "erased" in view["message"]
    ledger_after = svc.api("analyst", "GET", f"/datasets/{name}").json()["dataset"]["ledger"]
    assert spent_before["reserved"]["epsilon"] == "1/10"
    assert ledger_after["reserved"]["epsilon"] == "0" and ledger_after["spent"] == spent_before["spent"]
    history = ledger_rows(svc, name)

    # a new release that reads the rows is refused with the erasure's message; the ledger is unchanged
    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK})
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "raw_erased" and "was erased on" in error["message"]
    assert REASON not in error["message"]
    assert ledger_rows(svc, name) == history
    assert svc.api("analyst", "GET", f"/datasets/{name}").json()["dataset"]["ledger"] == ledger_after
    resp = svc.api("steward", "PUT", f"/datasets/{name}/schema", json={"schema": DEMO_SCHEMA.read_text()})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "raw_erased"
    resp = svc.api("steward", "POST", f"/datasets/{name}/erase-raw", json={"reason": "again"})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "already_erased"

    # the approved bundle still downloads and verifies, its release page and report still read
    resp = svc.api("analyst", "GET", f"/releases/{approved}/bundle")
    assert resp.status_code == 200 and resp.content == bundle
    assert verify_bundle(resp.content, pem).ok
    assert svc.api("analyst", "GET", f"/releases/{approved}/report").status_code == 200
    assert svc.api("steward", "GET", f"/releases/{approved}/report").status_code == 200

    # the audit chain verifies and holds the erasure, with the file's hash and no data
    audit = svc.api("admin", "GET", "/audit", params={"action": "dataset.erase_raw"}).json()
    assert audit["chain"]["ok"] is True
    (event,) = [e for e in audit["events"] if e["object_id"] == str(ds_id)]  # the database is the session's
    assert event["actor"] == svc.tokens["steward:username"] and event["object_id"] == str(ds_id)
    assert (
        event["detail"]["sha256"]
        == svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]["internal"]["sha256"]
    )
    assert event["detail"]["reason"] == REASON
    assert svc.api("admin", "GET", "/audit/verify").json()["chain"]["ok"] is True

    # the analyst sees the date of the erasure, not who asked for it or why; the steward sees both
    analyst_view = svc.api("analyst", "GET", f"/datasets/{name}").json()["dataset"]
    assert analyst_view["raw_erased_at"] is not None
    assert "raw_erased_by" not in analyst_view and "raw_erasure_reason" not in analyst_view
    assert REASON not in str(analyst_view)
    steward_view = svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]
    assert steward_view["raw_erasure_reason"] == REASON
    assert steward_view["raw_erased_by"] == svc.tokens["steward:username"]

    # the CLI erases a second dataset
    other = register_demo(svc, name=f"{name}-cli")
    proc = cli(
        ["datasets", "erase-raw", other["name"], "--reason", "retention ended early", "--yes"],
        env={"SYNTHGATE_URL": svc.url or "", "SYNTHGATE_TOKEN": svc.tokens["steward"]},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"raw data of {other['name']} erased" in proc.stdout
    assert not (storage_root / "datasets" / str(other["id"])).exists()
    proc = cli(
        ["datasets", "erase-raw", other["name"], "--reason", "again", "--yes"],
        env={"SYNTHGATE_URL": svc.url or "", "SYNTHGATE_TOKEN": svc.tokens["steward"]},
    )
    assert proc.returncode == 5 and "already_erased" in proc.stderr  # a conflict with the current state


def test_erasure_removes_the_raw_object_from_an_object_store(service_factory, s3_endpoint):  # noqa: F811
    svc = service_factory("redis-postgres", storage_url="s3://synthgate/erasure", s3_endpoint_url=s3_endpoint)
    svc.start_web()
    view = register_demo(svc)
    name, ds_id = view["name"], view["id"]
    assert bucket_keys(s3_endpoint, f"erasure/datasets/{ds_id}/") == [f"erasure/datasets/{ds_id}/raw.csv"]
    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK})
    assert resp.status_code == 202, resp.text
    queued = resp.json()["release"]["id"]

    resp = svc.api("steward", "POST", f"/datasets/{name}/erase-raw", json={"reason": REASON})
    assert resp.status_code == 200, resp.text

    assert bucket_keys(s3_endpoint, f"erasure/datasets/{ds_id}/") == []
    assert svc.api("steward", "GET", f"/releases/{queued}").json()["release"]["charge"] == "released"
    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "raw_erased"


def test_pages_keep_working_after_an_erasure(tmp_path):
    """The dataset page, release pages, reports, downloads and the audit page after an erasure, for the
    steward and the analyst (the app in this process on a SQLite file, releases run by the real pipeline)."""
    from core.db import dispose_engines
    from tests.browser.support import finished_release, make_app_env
    from tests.browser.support import register_demo as register_here

    env = make_app_env(tmp_path)
    try:
        ds = register_here(env)
        approved = finished_release(env, approve=True)
        waiting = finished_release(env)
        resp = env.api("steward", "POST", "/datasets/adult/erase-raw", json={"reason": REASON})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["erasure"]["cancelled_releases"][0]["id"] == waiting

        steward, analyst = env.pages("steward"), env.pages("analyst")
        page = steward.get(f"/datasets/{ds['id']}").get_data(as_text=True)
        assert "Raw data erased on" in page and REASON in page and 'id="erase-raw"' not in page
        for path in (f"/releases/{approved}", f"/releases/{approved}/report", f"/releases/{waiting}", "/audit"):
            assert steward.get(path).status_code == 200, path
        assert "dataset.erase_raw" in steward.get("/audit").get_data(as_text=True)
        assert steward.get(f"/releases/{waiting}/report").status_code == 404  # its outputs were erased

        page = analyst.get(f"/datasets/{ds['id']}").get_data(as_text=True)
        assert "Raw data erased on" in page and REASON not in page and env.users["steward"] not in page
        for path in (f"/releases/{approved}", f"/releases/{approved}/report"):
            assert analyst.get(path).status_code == 200, path
        download = analyst.get(f"/releases/{approved}/download")
        data = download.data
        download.close()  # the bundle's file stream
        assert download.status_code == 200 and data[:2] == b"PK"
        pem = env.api("analyst", "GET", "/signing-key").get_json()["public_key_pem"]
        assert verify_bundle(data, pem).ok
    finally:
        dispose_engines()


def test_a_worker_erases_the_raw_data_when_the_retention_period_ends(service_factory):
    import datetime as dt

    from core.db import write_session
    from core.models import Dataset

    svc = service_factory("redis-postgres", reaper_seconds=1)
    svc.start_web()
    view = register_demo(svc)
    name, ds_id = view["name"], view["id"]
    resp = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": {"retention_days": 1}})
    assert resp.status_code == 200, resp.text
    with write_session(svc.settings) as s:  # registered two days ago
        s.get(Dataset, ds_id).created_at -= dt.timedelta(days=2)
    assert (svc.settings.storage_dir / "datasets" / str(ds_id) / "raw.csv").exists()

    svc.start_worker()  # its Reaper runs the retention sweep
    deadline = time.time() + 120
    while time.time() < deadline:
        shown = svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]
        if shown["raw_erased_at"]:
            break
        time.sleep(0.5)
    assert shown["raw_erased_at"], svc.worker_logs()
    assert shown["raw_erased_by"] == "system" and shown["raw_erasure_reason"] == "retention period of 1 day ended"
    assert not (svc.settings.storage_dir / "datasets" / str(ds_id)).exists()
    audit = svc.api("admin", "GET", "/audit", params={"action": "dataset.erase_raw"}).json()
    assert audit["chain"]["ok"] is True
    events = [e for e in audit["events"] if e["object_id"] == str(ds_id)]
    assert [(e["actor"], e["detail"]["retention_days"]) for e in events] == [("system", 1)]

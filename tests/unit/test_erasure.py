"""Erasing a dataset's raw data (core/erasure.py) on a real SQLite file and local storage: the ledger stays
consistent, unreleased files go, approved bundles stay, every path that needs the rows refuses, the
retention sweep erases what its policy says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from core import candidates, erasure, ledger, releases
from core.db import dispose_engines, session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.models import AuditEvent, Dataset, JobStatus, LedgerEntry, ReleaseJob, utcnow
from core.storage import get_storage
from privacy.budget import PrivacyCost
from privacy.errors import SchemaError
from privacy.policy import DatasetPolicy
from tests.unit.db_support import TABLES, release_db, user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "pums", "3")
    dispose_engines()


def _request(settings, epsilon=0.25, who="analyst", method="dp-marginals", options=None, dataset="pums"):
    with write_session(settings) as s:
        req = releases.ReleaseRequest(
            dataset=dataset, method=method, epsilon=epsilon, delta=0, rows=10, options=options or {}
        )
        return releases.request_release(s, user(s, who), req, settings).id


def _set_state(settings, job_id, status, *, read=False, files=None, bundle=None):
    """Move a job as a worker and an approval would: spend its charge once it read the data, store files."""
    storage = get_storage(settings)
    with write_session(settings) as s:
        job = s.get(ReleaseJob, job_id)
        if read:
            ledger.mark_spent(s, job)
            job.data_read = True
        job.status = status
        if files:
            for key, data in files.items():
                storage.put_bytes(key, data)
            job.artifacts = {Path(k).name: k for k in files if "/sample/" not in k}
        if bundle:
            storage.put_bytes(bundle, b"PK signed bundle")
            job.bundle_key = bundle


def _totals(settings):
    with session_scope(settings) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        spent, reserved = ledger.committed_costs(s, ds.id)
        total = sum((c for c in spent), PrivacyCost.zero())
        return total.epsilon, len(spent), len(reserved)


def _actions(settings, job_id):
    with session_scope(settings) as s:
        return [
            e.action
            for e in s.execute(
                select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
            ).scalars()
        ]


def _erase(settings, who="steward", reason="erasure request 2026-17 from the data subjects' representative"):
    with write_session(settings) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        return erasure.erase_raw_data(s, user(s, who), ds, reason, storage=get_storage(settings), settings=settings)


def test_erasure_refunds_queued_work_keeps_charges_and_removes_unreleased_files(env):
    storage = get_storage(env)
    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        raw_key, sha = ds.storage_key, ds.file_sha256
    assert storage.exists(raw_key)
    queued = _request(env, 0.25)
    running = _request(env, 0.25)
    _set_state(env, running, JobStatus.running.value, read=True)
    waiting = _request(env, 0.25)
    _set_state(
        env, waiting, JobStatus.awaiting_approval.value, read=True, files={f"jobs/{waiting}/data.csv": b"x\n1\n"}
    )
    approved = _request(env, 0.25)
    kept = {f"jobs/{approved}/data.csv": b"x\n2\n", f"jobs/{approved}/report_public.html": b"<p>report</p>"}
    sample = {f"jobs/{approved}/sample/sample.parquet": b"sample rows"}
    _set_state(
        env,
        approved,
        JobStatus.approved.value,
        read=True,
        files={**kept, **sample},
        bundle=f"jobs/{approved}/bundle-{approved}.zip",
    )
    with write_session(env) as s:
        s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one().schema_suggestions = {"AGEP": "qi"}
    spend_before = _totals(env)
    assert spend_before == (pytest.approx(0.75), 3, 1)

    done = _erase(env)

    # the queued job's reservation is given back; the charges of jobs that read the data stay
    assert {c["id"]: c["reservation_released"] for c in done["cancelled_releases"]} == {
        queued: True,
        running: False,
        waiting: False,
    }
    assert _actions(env, queued) == ["reserve", "release"]
    assert _actions(env, running) == ["reserve", "spend"]
    assert _actions(env, waiting) == ["reserve", "spend"]
    assert _actions(env, approved) == ["reserve", "spend"]
    assert _totals(env) == (spend_before[0], 3, 0)
    with session_scope(env) as s:
        for job_id in (queued, running, waiting):
            job = s.get(ReleaseJob, job_id)
            assert (job.status, job.error_code) == ("failed", "cancelled")
            assert "raw data of pums was erased" in job.message
        assert s.get(ReleaseJob, waiting).artifacts is None
        assert s.get(ReleaseJob, approved).status == "approved"
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        assert ds.raw_erased_by == "steward" and ds.raw_erased_at is not None
        assert ds.raw_erasure_reason.startswith("erasure request 2026-17")
        assert ds.schema_suggestions is None
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "dataset.erase_raw")).scalar_one()
        assert event.actor == "steward" and event.object_id == str(ds.id)
        assert event.detail["sha256"] == sha
        assert sorted(event.detail["cancelled_releases"]) == sorted([queued, running, waiting])
        assert set(event.detail) == {
            "name",
            "sha256",
            "storage_key",
            "reason",
            "cancelled_releases",
            "releases_erased",
            "approved_releases_kept",
        }
    # the raw table and the unreleased outputs are gone; the approved release keeps its bundle and files
    assert not storage.exists(raw_key)
    assert storage.list_keys(f"datasets/{ds.id}") == []
    assert storage.list_keys(f"jobs/{waiting}") == []
    assert storage.list_keys(f"jobs/{approved}") == sorted([*kept, f"jobs/{approved}/bundle-{approved}.zip"])
    assert storage.get_bytes(f"jobs/{approved}/bundle-{approved}.zip") == b"PK signed bundle"


def test_erasure_is_refused_twice_and_needs_a_reason(env):
    with pytest.raises(InvalidRequest) as err:
        _erase(env, reason="   ")
    assert err.value.field == "reason"
    with session_scope(env) as s:
        assert s.execute(select(Dataset.raw_erased_at)).scalar() is None
    assert get_storage(env).list_keys("datasets") != []
    _erase(env)
    with pytest.raises(Conflict) as again:
        _erase(env, who="steward2")
    assert again.value.code == "already_erased" and again.value.status == 409
    assert "already erased" in again.value.message and "by steward" in again.value.message
    with session_scope(env) as s:
        events = s.execute(select(AuditEvent.actor).where(AuditEvent.action == "dataset.erase_raw")).scalars().all()
        assert events == ["steward"]


def test_an_analyst_may_not_erase_and_one_without_a_grant_does_not_see_the_dataset(env):
    from core.auth import create_user

    job = _request(env)
    with pytest.raises(Forbidden):
        _erase(env, who="analyst")
    with write_session(env) as s:
        create_user(s, "outsider", "analyst", "password-123")
    with session_scope(env) as s, pytest.raises(NotFound):
        releases.get_dataset(s, user(s, "outsider"), "pums")
    with session_scope(env) as s:
        assert s.execute(select(Dataset.raw_erased_at)).scalar() is None
        assert s.get(ReleaseJob, job).status == "queued"
    assert _actions(env, job) == ["reserve"]
    assert get_storage(env).exists("datasets/1/raw.csv")


def test_an_admin_may_erase(env):
    from core.auth import create_user

    with write_session(env) as s:
        create_user(s, "admin", "admin", "password-123")
    assert _erase(env, who="admin")["raw_erased_by"] == "admin"


def test_after_erasure_every_path_that_needs_the_rows_refuses_before_any_reservation(env):
    approved = _request(env)
    _set_state(env, approved, JobStatus.approved.value, read=True)
    _erase(env)
    entries_before = _ledger_count(env)
    with pytest.raises(Conflict) as refused:
        _request(env, 0.1)
    assert refused.value.code == "raw_erased"
    assert "was erased on" in refused.value.message and "a release that reads the rows" in refused.value.message
    assert "erasure request" not in refused.value.message  # the reason is the steward's note
    with pytest.raises(Conflict) as steward_refused:
        _request(env, 0.1, who="steward")
    assert steward_refused.value.code == "raw_erased"
    assert _ledger_count(env) == entries_before
    with write_session(env) as s, pytest.raises(Conflict) as schema:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        releases.confirm_schema(s, user(s, "steward"), ds, TABLES["pums"][1].read_text(), get_storage(env))
    assert schema.value.code == "raw_erased"
    with write_session(env) as s, pytest.raises(Conflict) as rerun:
        candidates.request_rerun(s, get_storage(env), user(s, "steward"), s.get(ReleaseJob, approved), {})
    assert rerun.value.code == "raw_erased"
    # a data-free release reads no rows: it can still be requested
    spec = {"spec": {"columns": {"x": {"values": [1, 2]}}}}
    assert _request(env, 0, method="spec", options=spec) > approved


def _ledger_count(settings):
    with session_scope(settings) as s:
        return len(s.execute(select(LedgerEntry.id)).all())


def test_the_dataset_view_shows_analysts_the_date_and_stewards_who_and_why(env):
    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        before = releases.dataset_view(s, user(s, "analyst"), ds)
        assert before["raw_erased_at"] is None and before["retention_until"] is None
    _erase(env)
    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        analyst = releases.dataset_view(s, user(s, "analyst"), ds, with_ledger=True)
        steward = releases.dataset_view(s, user(s, "steward"), ds)
    assert analyst["raw_erased_at"][:10] == utcnow().date().isoformat()
    assert "raw_erased_by" not in analyst and "raw_erasure_reason" not in analyst
    assert "erasure request" not in str(analyst)
    assert steward["raw_erased_by"] == "steward" and steward["raw_erasure_reason"].startswith("erasure request")
    assert analyst["ledger"]["spent"] is not None  # the ledger still reads


def _register_penguins(settings, policy):
    csv, schema = TABLES["penguins"]
    with write_session(settings) as s:
        ds, _ = releases.register_dataset(
            s,
            get_storage(settings),
            user(s, "steward"),
            upload_path=csv,
            filename=csv.name,
            name="penguins",
            schema_text=schema.read_text(),
            policy_text=policy,
            settings=settings,
        )
        return ds.id


def test_the_retention_sweep_erases_datasets_whose_period_ended_as_the_system(env):
    queued = _request(env)
    with write_session(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        ds.policy = {**ds.policy, "retention_days": 30}
        ds.created_at = utcnow() - dt.timedelta(days=31)
        view = releases.dataset_view(s, user(s, "analyst"), ds)
    assert view["retention_until"][:10] == (utcnow() - dt.timedelta(days=1)).date().isoformat()
    young = _register_penguins(env, "retention_days: 30\n")
    storage = get_storage(env)

    assert erasure.erase_expired(env) == ["pums"]

    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        assert ds.raw_erased_by == "system"
        assert ds.raw_erasure_reason == "retention period of 30 days ended"
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "dataset.erase_raw")).scalar_one()
        assert event.actor == "system" and event.actor_id is None
        assert event.detail["retention_days"] == 30 and event.detail["cancelled_releases"] == [queued]
        cancel = s.execute(
            select(AuditEvent).where(AuditEvent.action == "release.cancel", AuditEvent.object_id == str(queued))
        ).scalar_one()
        assert cancel.actor == "system"
        assert s.get(Dataset, young).raw_erased_at is None
    assert _actions(env, queued) == ["reserve", "release"]
    assert not storage.exists(ds.storage_key)
    assert storage.exists(f"datasets/{young}/raw.csv")
    # the next sweep finds nothing to do; the young dataset's turn comes when its period ends
    assert erasure.erase_expired(env) == []
    assert erasure.erase_expired(env, now=utcnow() + dt.timedelta(days=31)) == ["penguins"]
    assert not storage.exists(f"datasets/{young}/raw.csv")


def test_the_retention_period_is_a_whole_number_of_days_of_at_least_one():
    assert DatasetPolicy.from_dict({"retention_days": 365}).retention_days == 365
    assert DatasetPolicy().retention_days is None
    for bad in (0, -3, "a year"):
        with pytest.raises(SchemaError) as err:
            DatasetPolicy.from_dict({"retention_days": bad})
        assert "retention_days" in err.value.message


def test_the_workers_sweep_runs_at_once_then_once_per_period(env, monkeypatch):
    from workers import retention

    calls = []
    monkeypatch.setattr(retention, "erase_expired", lambda settings: calls.append(settings) or ["x"])
    sweep = retention.retention_sweep(env, every=3600)
    assert sweep() == ["x"]
    assert sweep() == []
    assert len(calls) == 1
    assert retention.retention_sweep(env, every=0)() == ["x"]


def test_files_a_stopped_run_wrote_after_the_erasure_are_removed_while_it_could_still_run(env):
    running = _request(env)
    _set_state(env, running, JobStatus.running.value, read=True)
    approved = _request(env)
    _set_state(env, approved, JobStatus.approved.value, read=True, files={f"jobs/{approved}/data.csv": b"x\n2\n"})
    _erase(env)
    storage = get_storage(env)
    # the run wrote its outputs before its heartbeat saw the cancellation
    storage.put_bytes(f"jobs/{running}/report.html", b"<p>written late</p>")
    assert erasure.remove_leftovers(env, now=utcnow() + dt.timedelta(days=30)) == []  # long after any run
    assert storage.exists(f"jobs/{running}/report.html")
    assert erasure.remove_leftovers(env) == [running]
    assert storage.list_keys(f"jobs/{running}") == []
    assert storage.exists(f"jobs/{approved}/data.csv")  # an approved release's files stay
    assert erasure.remove_leftovers(env) == []


def test_the_workers_sweep_removes_register_form_uploads_kept_past_their_expiry(env, tmp_path, monkeypatch):
    import io
    import json
    import time

    from core import staging
    from workers import retention

    storage = get_storage(env)
    old = staging.stage(storage, 7, io.BytesIO(b"name,age\nJo,41\n"), "people.csv", tmp_path)
    fresh = staging.stage(storage, 8, io.BytesIO(b"name,age\nAl,33\n"), "people.csv", tmp_path)
    meta_key = old.key.rsplit("/", 1)[0] + "/meta.json"
    meta = {"filename": "people.csv", "key": old.key, "sha256": old.sha256, "created": time.time() - 7200}
    storage.put_bytes(meta_key, json.dumps(meta).encode())  # staged two hours ago
    retention.retention_sweep(env, every=0)()
    assert not storage.exists(old.key) and storage.list_keys(old.key.rsplit("/", 1)[0]) == []
    assert staging.find(storage, 8, fresh.token) is not None  # a fresh one stays for its steward

"""Versions of a dataset's public schema on a real SQLite file, in this process (core/schema_versions.py).

A confirmed schema is edited as the next version through the same checks as a first confirmation; an
edit that fails changes nothing; a release records the version it was requested under and the
pipeline runs it under that version even after an edit; the migration gives existing datasets their
current schema as version 1. The service-level tests are tests/integration/test_schema_versions_*.py.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from core import releases, schema_versions
from core.db import dispose_engines, session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest
from core.migrate import upgrade
from core.models import AuditEvent, Dataset, ReleaseJob, SchemaVersion, User
from core.settings import Settings
from core.storage import get_storage
from privacy.errors import SchemaError
from tests.unit.db_support import release_db, user
from workers.jobs import JobControl, claim
from workers.pipeline import load_spec, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "tests/data/penguins/penguins.csv"
SCHEMA_TEXT = (ROOT / "tests/data/penguins/schema.yaml").read_text()
ROWS = 200


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "penguins", "3")
    dispose_engines()


_user = user


def _dataset(s) -> Dataset:
    return s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one()


def _edited(**columns: dict) -> dict:
    """The penguins schema with some columns replaced."""
    doc = yaml.safe_load(SCHEMA_TEXT)
    doc["columns"].update(copy.deepcopy(columns))
    return doc


def _confirm(settings, schema, who: str = "steward", **kw) -> list[dict]:
    with write_session(settings) as s:
        return releases.confirm_schema(s, _user(s, who), _dataset(s), schema, get_storage(settings), **kw)


def _versions(settings) -> list[tuple[int, str, str | None]]:
    with session_scope(settings) as s:
        return [(v.version, v.confirmed_by_name, v.note) for v in schema_versions.history(s, _dataset(s).id)]


def _events(settings, action: str) -> list[dict]:
    with session_scope(settings) as s:
        return [
            e.detail
            for e in s.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).scalars()
        ]


def _request(settings, rows: int = ROWS) -> int:
    with write_session(settings) as s:
        req = releases.ReleaseRequest(dataset="penguins", method="dp-marginals", epsilon=0.5, delta=0, rows=rows)
        return releases.request_release(s, _user(s, "analyst"), req, settings).id


def _run(settings, job_id: int) -> None:
    assert claim(job_id, "test-worker", settings)
    with JobControl(job_id, "test-worker", settings) as control:
        run_pipeline(job_id, control, settings, get_storage(settings))


def test_registration_with_a_schema_is_version_1_and_each_edit_adds_the_next(env):
    assert _versions(env) == [(1, "steward", None)]
    doc = _edited(
        bill_depth_mm={
            "kind": "continuous",
            "min": 10,
            "max": 25,
            "nullable": True,
            "description": "culmen depth, from the field protocol",
        },
        island={
            "kind": "categorical",
            "values": ["Biscoe", "Dream", "Torgersen"],
            "hierarchy": {"groups": {"inner": ["Dream", "Torgersen"], "outer": ["Biscoe"]}},
        },
    )
    issues = _confirm(env, doc, who="steward2", note="documented bill depth; island groups for k-anonymity")
    assert not any(i["code"] == "schema_unchanged" for i in issues)
    assert _versions(env) == [
        (2, "steward2", "documented bill depth; island groups for k-anonymity"),
        (1, "steward", None),
    ]
    with session_scope(env) as s:
        ds = _dataset(s)
        current = schema_versions.current_version(s, ds.id)
        first = schema_versions.version_of(s, ds.id, 1)
        assert ds.public_schema == current.schema
        assert current.schema["columns"]["island"]["hierarchy"]["groups"]["inner"] == ["Dream", "Torgersen"]
        assert "hierarchy" not in first.schema["columns"]["island"]  # version 1 is kept as it was
        view = releases.dataset_view(s, _user(s, "analyst"), ds)
    assert view["schema_version"] == 2 and view["schema"] == current.schema
    # audited with both numbers and the names of what changed, never a value
    (event,) = _events(env, "dataset.schema_version")
    assert event["from_version"] == 1 and event["to_version"] == 2
    assert event["changes"] == {"added": [], "removed": [], "changed": ["island", "bill_depth_mm"], "other": []}
    assert "field protocol" not in json.dumps(event) and "Torgersen" not in json.dumps(event)

    # the same schema again records nothing and says so
    issues = _confirm(env, doc, note="no change")
    assert [i["code"] for i in issues if i["code"] == "schema_unchanged"] == ["schema_unchanged"]
    assert [v for v, *_ in _versions(env)] == [2, 1]
    # a role change: the next version, named in the summary
    _confirm(env, {**doc, "quasi_identifiers": ["island", "sex"]}, base_version=2)
    assert [v for v, *_ in _versions(env)] == [3, 2, 1]
    assert _events(env, "dataset.schema_version")[-1]["changes"]["other"] == ["quasi_identifiers"]


def test_an_edit_is_checked_like_a_first_confirmation_and_a_refused_one_changes_nothing(env):
    def unchanged() -> None:
        assert _versions(env) == [(1, "steward", None)]
        assert _events(env, "dataset.schema_version") == []
        with session_scope(env) as s:
            assert _dataset(s).public_schema == schema_versions.version_of(s, _dataset(s).id, 1).schema

    # the table does not fit: a column the table does not have
    with pytest.raises(SchemaError) as err:
        _confirm(env, _edited(tag_colour={"kind": "categorical", "values": ["red", "blue"]}))
    assert "'tag_colour' is declared in the schema but missing from the table" in err.value.message
    assert "version 1 stays in force" in err.value.message
    assert err.value.field == "schema"
    unchanged()
    # not a schema at all, and a schema the language does not accept
    with pytest.raises(SchemaError, match="not valid YAML"):
        _confirm(env, "columns: [\n")
    with pytest.raises(SchemaError, match="granularity"):
        _confirm(env, _edited(year={"kind": "ordinal", "min": 2007, "max": 2009, "hierarchy": {"granularity": "week"}}))
    unchanged()
    # edited from a version that is no longer the one in force
    _confirm(env, _edited(year={"kind": "ordinal", "min": 2006, "max": 2010}), base_version="1")
    with pytest.raises(Conflict) as err:
        _confirm(env, _edited(year={"kind": "ordinal", "min": 2000, "max": 2010}), base_version="1")
    assert err.value.code == "schema_version_conflict" and "version 2 was confirmed by steward" in err.value.message
    assert [v for v, *_ in _versions(env)] == [2, 1]
    with pytest.raises(InvalidRequest, match="base_version"):
        _confirm(env, _edited(), base_version="latest")
    with pytest.raises(InvalidRequest, match="note must be at most"):
        _confirm(env, _edited(), note="x" * (schema_versions.MAX_NOTE + 1))
    # an analyst may not edit the schema
    with pytest.raises(Forbidden):
        _confirm(env, _edited(), who="analyst")
    assert [v for v, *_ in _versions(env)] == [2, 1]


def test_a_release_runs_under_the_version_it_was_requested_under(env):
    before = _request(env)
    # version 2 stops releasing bill depth (a dropped column) and documents it
    _confirm(
        env,
        _edited(bill_depth_mm={"kind": "identifier", "description": "withheld from releases"}),
        note="bill depth is no longer released",
    )
    after = _request(env)
    with session_scope(env) as s:
        jobs = {j.id: j.schema_version for j in s.execute(select(ReleaseJob)).scalars()}
        assert releases.job_view(s, _user(s, "analyst"), s.get(ReleaseJob, before))["schema_version"] == 1
    assert jobs == {before: 1, after: 2}
    assert load_spec(before, env).schema.columns["bill_depth_mm"].kind == "continuous"
    assert load_spec(after, env).schema.columns["bill_depth_mm"].kind == "identifier"

    storage = get_storage(env)
    for job_id in (before, after):
        _run(env, job_id)
    with session_scope(env) as s:
        art = {j: s.get(ReleaseJob, j).artifacts for j in (before, after)}
    data = {j: pd.read_parquet(io.BytesIO(storage.get_bytes(art[j]["data.parquet"]))) for j in art}
    assert "bill_depth_mm" in data[before].columns and "bill_depth_mm" not in data[after].columns
    assert "**public schema version**: 1" in storage.get_bytes(art[before]["privacy_draft.md"]).decode()

    with write_session(env) as s:
        job = s.get(ReleaseJob, before)
        gate = (job.gate or {}).get("overall")
        releases.approve(
            s, _user(s, "steward"), job, comment="ok", override="reviewed for the test" if gate == "fail" else None
        )
        releases.make_bundle(s, storage, env, job)
        key = job.bundle_key
    with zipfile.ZipFile(io.BytesIO(storage.get_bytes(key))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        statement = zf.read("privacy.md").decode()
        released_schema = json.loads(zf.read("schema.json"))
    assert manifest["schema_version"] == 1
    assert "**public schema version**: 1" in statement
    assert released_schema["columns"]["bill_depth_mm"]["kind"] == "continuous"


def migrate_existing_data(settings) -> None:
    """Upgrade to 0004 (before versions), store what the old code stored, upgrade to the head and check
    the backfill: a confirmed dataset gets its current schema as version 1, credited to the steward who
    last confirmed it; releases requested after that confirmation are marked version 1, older ones not."""
    import datetime as dt

    import sqlalchemy as sa

    from core.db import get_engine

    upgrade(settings, "0004")
    t0 = dt.datetime(2026, 1, 5, 9, 0)
    schema = yaml.safe_load(SCHEMA_TEXT)
    with get_engine(settings).begin() as conn:
        meta = sa.MetaData()
        meta.reflect(conn, only=["users", "datasets", "audit_events", "release_jobs"])
        users, datasets, events, jobs = (meta.tables[n] for n in ("users", "datasets", "audit_events", "release_jobs"))
        for uid, name in ((1, "steward"), (2, "steward2")):
            conn.execute(users.insert().values(id=uid, username=name, role="steward", active=True, created_at=t0))
        common = {
            "owner_id": 1,
            "storage_key": "datasets/x/raw.csv",
            "original_filename": "penguins.csv",
            "file_sha256": "0" * 64,
            "n_rows": 344,
            "epsilon_budget": "3",
            "delta_budget": "1/1000000",
            "policy": {},
            "created_at": t0,
            "ledger_version": 0,
        }
        conn.execute(
            datasets.insert().values(id=1, name="penguins", public_schema=schema, schema_confirmed=True, **common)
        )
        conn.execute(
            datasets.insert().values(id=2, name="proposed", public_schema=schema, schema_confirmed=False, **common)
        )
        for i, (action, actor, minutes) in enumerate(
            (("dataset.register", (1, "steward"), 0), ("dataset.confirm_schema", (2, "steward2"), 30))
        ):
            conn.execute(
                events.insert().values(
                    id=i + 1,
                    created_at=t0 + dt.timedelta(minutes=minutes),
                    actor_id=actor[0],
                    actor=actor[1],
                    action=action,
                    object_type="dataset",
                    object_id="1",
                    detail={},
                    prev_hash=f"{i:064d}",
                    hash=f"{i + 1:064d}",
                )
            )
        for job_id, minutes in ((1, 10), (2, 40)):
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    dataset_id=1,
                    requester_id=1,
                    kind="dp-synthetic",
                    method="dp-marginals",
                    epsilon="1/2",
                    delta="0",
                    options={},
                    seed=7,
                    status="queued",
                    progress=0.0,
                    attempts=0,
                    data_read=False,
                    include_internal=False,
                    created_at=t0 + dt.timedelta(minutes=minutes),
                )
            )
    upgrade(settings)
    with session_scope(settings) as s:
        rows = s.execute(select(SchemaVersion)).scalars().all()
        assert [(r.dataset_id, r.version, r.confirmed_by, r.confirmed_by_name) for r in rows] == [(1, 1, 2, "steward2")]
        assert rows[0].schema == schema and rows[0].confirmed_at == t0 + dt.timedelta(minutes=30)
        assert rows[0].note
        assert s.get(ReleaseJob, 2).schema_version == 1
        assert s.get(ReleaseJob, 1).schema_version is None
        assert releases.dataset_view(s, s.get(User, 1), s.get(Dataset, 1))["schema_version"] == 1
        assert releases.dataset_view(s, s.get(User, 1), s.get(Dataset, 2))["schema_version"] is None
    assert load_spec(1, settings).schema_version is None
    assert load_spec(2, settings).schema_version == 1


def test_the_migration_gives_confirmed_datasets_their_schema_as_version_1(tmp_path):
    try:
        migrate_existing_data(Settings.from_env(environ={}, data_dir=str(tmp_path)))
    finally:
        dispose_engines()

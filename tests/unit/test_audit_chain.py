"""The audit log's hash chain detects edits, deletions and reordering."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update

from core import audit
from core.db import dispose_engines, session_scope, write_session
from core.migrate import upgrade
from core.models import AuditEvent
from core.settings import Settings


@pytest.fixture
def settings(tmp_path):
    s = Settings.from_env(environ={}, data_dir=str(tmp_path))
    upgrade(s)
    with write_session(s) as db:
        for i in range(6):
            audit.record(db, "test.event", actor=f"user{i}", object_type="thing", object_id=i, detail={"n": i})
    yield s
    dispose_engines()


def test_intact_chain_verifies(settings):
    with session_scope(settings) as s:
        check = audit.verify_chain(s)
    assert check.ok and check.events == 6


def test_edited_detail_is_detected(settings):
    with write_session(settings) as s:
        s.execute(text("UPDATE audit_events SET detail = :d WHERE id = 3"), {"d": '{"n": 99}'})
    with session_scope(settings) as s:
        check = audit.verify_chain(s)
    assert not check.ok and check.first_bad_id == 3 and "edited" in check.reason


def test_deleted_event_is_detected(settings):
    with write_session(settings) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == 4))
    with session_scope(settings) as s:
        check = audit.verify_chain(s)
    assert not check.ok and check.first_bad_id == 5


def test_rehashing_one_row_still_breaks_the_next_link(settings):
    with write_session(settings) as s:
        ev = s.get(AuditEvent, 2)
        ev.actor = "mallory"
        ev.hash = audit._hash(ev.prev_hash, ev)
    with session_scope(settings) as s:
        check = audit.verify_chain(s)
    assert not check.ok and check.first_bad_id == 3


def test_chain_cannot_fork(settings):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with write_session(settings) as s:
            s.execute(update(AuditEvent).where(AuditEvent.id == 6).values(prev_hash=s.get(AuditEvent, 5).prev_hash))

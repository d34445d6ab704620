"""The audit log's hash chain detects edits, deletions and reordering."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update

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

    with pytest.raises(IntegrityError), write_session(settings) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == 6).values(prev_hash=s.get(AuditEvent, 5).prev_hash))


# ------------------------------------------------------------------------- signed checkpoints


@pytest.fixture
def anchored(tmp_path):
    """A log whose commits sign checkpoints, permanent ones every 4 events: 10 events in 10 commits."""
    from dataclasses import replace

    s = replace(Settings.from_env(environ={}, data_dir=str(tmp_path)), audit_checkpoint_every=4)
    upgrade(s)
    audit.register_anchor(s)
    for i in range(10):
        with write_session(s) as db:
            audit.record(db, "test.event", actor=f"user{i}", detail={"n": i})
    yield s
    dispose_engines()


def _verify(settings):
    from core.bundle import public_key_pem
    from core.storage import get_storage

    with session_scope(settings) as s:
        return audit.verify_anchored(s, get_storage(settings), public_key_pem(settings))


def test_every_commit_signs_the_head_and_every_fourth_event_a_permanent_checkpoint(anchored):
    from core.storage import get_storage

    keys = get_storage(anchored).list_keys(audit.CHECKPOINT_PREFIX)
    assert keys == [audit.CHECKPOINT_PREFIX + name for name in ("000000000004.json", "000000000008.json", "head.json")]
    check = _verify(anchored)
    assert check.ok and check.events == 10 and check.checkpoints == 3 and check.latest_checkpoint == 10


@pytest.mark.parametrize("cut", [1, 3])
def test_cutting_the_end_is_a_truncation(anchored, cut):
    with write_session(anchored) as s:
        s.execute(text("DELETE FROM audit_events WHERE id > :n"), {"n": 10 - cut})
    with session_scope(anchored) as s:
        assert audit.verify_chain(s).ok  # the chain alone cannot tell
    check = _verify(anchored)
    assert not check.ok and check.problem == "truncated" and check.events == 10 - cut
    assert "TRUNCATED" in check.reason and "counted 10" in check.reason


def test_a_new_commit_after_a_cut_does_not_launder_it(anchored):
    with write_session(anchored) as s:
        s.execute(text("DELETE FROM audit_events WHERE id > 9"))
    with write_session(anchored) as s:  # the service carries on: the head is not re-signed over the cut
        audit.record(s, "test.after", actor="system")
    check = _verify(anchored)
    assert not check.ok and check.problem == "rewritten" and check.first_bad_id == 10  # SQLite reuses the id


def test_rewriting_every_later_hash_is_a_rewrite(anchored):
    with write_session(anchored) as s:
        events = list(s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())
        prev = audit.GENESIS
        for ev in events:  # edit event 6, then recompute every later link and hash
            if ev.id == 6:
                ev.actor = "mallory"
            ev.prev_hash = prev
            ev.hash = audit._hash(prev, ev)
            prev = ev.hash
            s.flush()
    with session_scope(anchored) as s:
        assert audit.verify_chain(s).ok
    check = _verify(anchored)
    assert not check.ok and check.problem == "rewritten" and check.first_bad_id == 8  # the checkpoint at 8


def test_an_edited_checkpoint_fails_its_signature(anchored):
    import json

    from core.storage import get_storage

    storage = get_storage(anchored)
    key = audit.CHECKPOINT_PREFIX + "000000000008.json"
    doc = json.loads(storage.get_bytes(key))
    doc["checkpoint"]["count"] = 3
    storage.put_bytes(key, json.dumps(doc).encode())
    check = _verify(anchored)
    assert not check.ok and check.problem == "bad_checkpoint" and "INVALID signature" in check.reason
    assert "000000000008.json" in check.reason

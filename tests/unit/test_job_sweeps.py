"""The sweep that re-sends unclaimed queued jobs, and cancel against the ledger (SQLite file)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from core import releases
from core.auth import create_user
from core.db import session_scope, write_session
from core.errors import Conflict, Forbidden
from core.models import AuditEvent, ReleaseJob
from tests.unit.test_ledger_db import _actions, _request, _user, env  # noqa: F401 - the fixture


def _age(settings, job_id: int, seconds: int) -> None:
    with write_session(settings) as s:
        past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
        s.execute(update(ReleaseJob).where(ReleaseJob.id == job_id).values(enqueued_at=past, created_at=past))


def test_an_unclaimed_queued_job_is_sent_again_once_per_period(env):  # noqa: F811
    from workers.jobs import claim, requeue_unclaimed

    settings = env
    fresh, lost, waiting = _request(settings), _request(settings), _request(settings)
    for job_id in (lost, waiting):
        _age(settings, job_id, settings.requeue_after_seconds + 5)
    sent: list[int] = []
    # `waiting` is still in the broker: left alone; `fresh` is too recent
    assert requeue_unclaimed(settings, sent.append, held=lambda: {waiting}) == [lost]
    # a second sweeper in the same period finds nothing to send
    assert requeue_unclaimed(settings, sent.append, held=lambda: {waiting}) == []
    assert sent == [lost]
    # a broker that cannot be inspected: time alone decides
    assert requeue_unclaimed(settings, sent.append, held=lambda: None) == [waiting]
    # a claimed job is never re-sent, and the duplicate delivery finds nothing to claim
    assert claim(lost, "w1", settings) and not claim(lost, "w2", settings)
    _age(settings, lost, settings.requeue_after_seconds + 5)
    assert requeue_unclaimed(settings, sent.append) == []
    assert fresh not in sent
    with session_scope(settings) as s:
        resends = s.execute(select(AuditEvent.object_id).where(AuditEvent.action == "release.resend")).scalars()
        assert sorted(resends) == sorted([str(lost), str(waiting)])


def test_cancel_rules_and_refunds(env):  # noqa: F811
    from workers.jobs import JobControl, LeaseLost, claim

    settings = env
    queued, running = _request(settings), _request(settings)
    with write_session(settings) as s:
        create_user(s, "admin", "admin", "password-123")
    with write_session(settings) as s, pytest.raises(Forbidden, match="requester or a steward"):
        releases.cancel_release(s, _user(s, "admin"), s.get(ReleaseJob, queued))
    with write_session(settings) as s:
        out = releases.cancel_release(s, _user(s, "analyst"), s.get(ReleaseJob, queued))
    assert out == {"id": queued, "was": "queued", "data_read": False, "reservation_released": True}
    assert _actions(settings, queued) == ["reserve", "release"]

    assert claim(running, "w1", settings)
    control = JobControl(running, "w1", settings)
    control.mark_data_read()
    with write_session(settings) as s:
        out = releases.cancel_release(s, _user(s, "steward"), s.get(ReleaseJob, running), reason="not needed")
    assert out["data_read"] and not out["reservation_released"]
    assert _actions(settings, running) == ["reserve", "spend"]
    # the worker no longer owns it: it writes nothing more
    assert control.finish(summary={}) is False
    with pytest.raises(LeaseLost, match="was stopped"):
        control.mark_data_read()
    with write_session(settings) as s, pytest.raises(Conflict, match="only a queued or running"):
        releases.cancel_release(s, _user(s, "analyst"), s.get(ReleaseJob, running))


def test_a_data_free_release_is_bounded_in_rows_times_columns(env):  # noqa: F811
    from core.errors import InvalidRequest

    with write_session(env) as s:
        req = releases.ReleaseRequest(
            dataset="pums", method="scenario", rows=200_000, options={"n_features": 1000, "n_informative": 3}
        )
        with pytest.raises(InvalidRequest, match="at most 100,000,000 are accepted"):
            releases.request_release(s, _user(s, "analyst"), req, env)
    with write_session(env) as s:
        ok = releases.ReleaseRequest(
            dataset="pums", method="scenario", rows=1000, options={"n_features": 1000, "n_informative": 3}
        )
        assert releases.request_release(s, _user(s, "analyst"), ok, env).status == "queued"


def test_the_reaper_runs_its_further_sweeps_and_survives_one_that_fails(env):  # noqa: F811
    import dataclasses
    import threading

    from workers.jobs import Reaper

    settings = dataclasses.replace(env, reaper_seconds=0)
    calls: list[str] = []
    done = threading.Event()

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("a broken sweep")

    def counting() -> None:
        calls.append("counting")
        if calls.count("counting") >= 2:
            done.set()

    reaper = Reaper(settings, lambda job_id: None, sweeps={"failing": failing, "counting": counting})
    reaper.start()
    try:
        assert done.wait(10), calls
    finally:
        reaper.stop()
        reaper.join(5)
    # each pass runs every sweep, in order; a failing one does not stop the next or the next pass
    assert calls[:4] == ["failing", "counting", "failing", "counting"]

"""`Release.wait`'s own logic, on a scripted sequence of API views (the live service is in
tests/integration/test_client_library.py): which changes are reported, when it stops, when it gives up."""

from __future__ import annotations

from typing import Any

import pytest

from synthgate_client import Progress, Release, WaitTimeout


class ScriptedClient:
    """Answers GET /releases/<id> with the next view of a script, repeating the last one."""

    def __init__(self, views: list[dict[str, Any]]) -> None:
        self.views = views
        self.calls = 0

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        assert path == "/releases/7"
        view = self.views[min(self.calls, len(self.views) - 1)]
        self.calls += 1
        return {"release": view}


def view(status: str, stage: str | None = None, progress: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "status": status,
        "stage": stage,
        "progress": progress,
        "message": stage,
        "method": "mst",
        "dataset": {"id": 1, "name": "penguins"},
        **extra,
    }


SCRIPT = [
    view("queued", "queued"),
    view("queued", "queued"),
    view("running", "load", 0.0),
    view("running", "fit", 0.3),
    view("running", "fit", 0.3),
    view("running", "evaluate", 0.8),
    view("awaiting_approval", "done", 1.0),
]


def test_each_change_is_reported_once_and_the_wait_stops_when_the_release_does() -> None:
    client = ScriptedClient(SCRIPT)
    release = Release(client, view("queued", "queued"))  # type: ignore[arg-type]
    events: list[Progress] = []
    assert release.wait(progress=events.append, interval=0) is release
    assert [(e.status, e.stage, e.fraction) for e in events] == [
        ("queued", "queued", 0.0),
        ("running", "load", 0.0),
        ("running", "fit", 0.3),
        ("running", "evaluate", 0.8),
        ("awaiting_approval", "done", 1.0),
    ]
    assert client.calls == len(SCRIPT)  # it stopped polling at the first view that is not running
    assert release.status == "awaiting_approval" and not release.running and not release.cancelled


def test_a_release_that_already_stopped_is_read_once() -> None:
    client = ScriptedClient([view("failed", None, error_code="cancelled")])
    release = Release(client, view("queued"))  # type: ignore[arg-type]
    assert release.wait(interval=0).cancelled
    assert client.calls == 1


def test_waiting_too_long_raises_and_says_the_release_keeps_running() -> None:
    client = ScriptedClient([view("running", "fit", 0.5)])
    release = Release(client, view("queued"))  # type: ignore[arg-type]
    with pytest.raises(WaitTimeout) as exc:
        release.wait(timeout=0.05, interval=0.01)
    assert exc.value.code == "wait_timeout" and "still running" in exc.value.message
    assert "keeps running" in exc.value.message and client.calls >= 2


def test_progress_true_draws_one_line_redrawn_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    Release(ScriptedClient(SCRIPT), view("queued")).wait(progress=True, interval=0)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    frames = err.split("\r")[1:]
    assert len(frames) == 5 and err.endswith("\n")
    assert frames[-1].strip() == "release 7 [#########################] 100%  awaiting_approval done"
    assert frames[2].startswith("release 7 [#######------------------]  30%  running")


def test_the_progress_line_is_also_printed_when_the_wait_gives_up(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WaitTimeout):
        Release(ScriptedClient([view("running", "fit", 0.5)]), view("queued")).wait(  # type: ignore[arg-type]
            progress=True, timeout=0.02, interval=0.01
        )
    err = capsys.readouterr().err
    assert "50%  running" in err and err.endswith("\n")  # the line is ended, not left for the next output


def test_a_long_stage_s_time_left_is_reported_and_printed() -> None:
    script = [
        view("running", "evaluate", 0.75),
        view("running", "evaluate", 0.75, eta_seconds=120),
        view("running", "evaluate", 0.9, eta_seconds=42),
        view("awaiting_approval", "done", 1.0),
    ]
    release = Release(ScriptedClient(script), view("running", "evaluate", 0.75))  # type: ignore[arg-type]
    events: list[Progress] = []
    release.wait(progress=events.append, interval=0)
    assert [e.eta_seconds for e in events] == [None, 120, 42, None]  # a new estimate alone is a change
    assert events[1].line().endswith("evaluate  ~2 min left")
    assert events[2].line().endswith("evaluate  ~42 s left")
    assert "left" not in events[0].line()

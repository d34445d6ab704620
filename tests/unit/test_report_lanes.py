"""The report's two lanes (evaluation/lanes.py): the same report as one section at a time, progress
only from the caller's thread and never backwards, warnings kept per thread, and a failed main lane
ending the second one; the second lane as a thread or as a forked process, which the report never
depends on (a child that dies, fails or stalls has its task run again by the caller) and which dies
with its parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import evaluation.lanes as lanes
from evaluation import EvaluationLimits, build_report, split_holdout
from evaluation._common import quiet_warnings
from evaluation.lanes import CoreSlot, ProcessLane, ProgressRelay, ReportAbandoned, SideLane, busy_core
from privacy.schema import conform_table, load_schema
from tests.conftest import DATA

LANES = ["thread", "process"]
ROOT = Path(__file__).resolve().parents[2]

SMALL = {"fidelity_rows": 3000, "model_train_rows": 3000, "dcr_synthetic_rows": 500, "sdmetrics_rows": 2000}


@pytest.fixture(autouse=True)
def own_core_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's count of busy cores, apart from any worker's on the machine."""
    monkeypatch.setenv("SYNTHGATE_CORE_SLOTS", str(tmp_path / "cores"))


@pytest.fixture(scope="module")
def tables(adult_df: pd.DataFrame) -> dict[str, object]:
    schema = load_schema(DATA / "adult" / "schema.yaml")
    df = conform_table(adult_df, schema)[0].sample(9_000, random_state=3).reset_index(drop=True)
    train, holdout, _ = split_holdout(df.iloc[:5000], schema, seed=0)
    return {"schema": schema, "train": train, "holdout": holdout, "other": df.iloc[5000:].reset_index(drop=True)}


def _report(tables: dict, parallel: bool, lane: str = "thread", **kwargs: object) -> dict:
    report = build_report(
        tables["train"],
        tables["holdout"],
        tables["other"],
        tables["schema"],
        seed=11,
        limits=EvaluationLimits(parallel_sections=parallel, second_lane=lane, **SMALL),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    d = report.to_dict(True)
    d["settings"]["limits"].pop("parallel_sections")
    d["settings"]["limits"].pop("second_lane")
    for section in d["sections"].values():
        section.pop("seconds", None)
    return d


def _children() -> list[int]:
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children", encoding="ascii") as fh:
        return [int(x) for x in fh.read().split()]


@pytest.mark.parametrize("lane", LANES)
def test_two_lanes_give_the_same_report_as_one_section_at_a_time(tables: dict, lane: str) -> None:
    one, two = _report(tables, False), _report(tables, True, lane)
    assert list(two["sections"]) == list(one["sections"]) == ["synthetic", "fidelity", "utility", "privacy"]
    assert all(s["status"] == "computed" for s in two["sections"].values())
    assert sum(len(s.get("figures", [])) for s in two["sections"].values()) >= 5  # figures compared too
    assert json.dumps(two, sort_keys=True, default=str) == json.dumps(one, sort_keys=True, default=str)


@pytest.mark.parametrize("lane", LANES)
def test_progress_comes_from_the_callers_thread_only_and_never_goes_back(tables: dict, lane: str) -> None:
    seen: list[tuple[float, str, tuple[int, int]]] = []
    _report(tables, True, lane, progress=lambda f, m: seen.append((f, m, (os.getpid(), threading.get_ident()))))
    assert {t for _, _, t in seen} == {(os.getpid(), threading.get_ident())}
    fractions = [f for f, _, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any("model" in m.lower() or "utility" in m.lower() for _, m, _ in seen)  # the second lane's reports


@pytest.mark.parametrize("lane", LANES)
def test_a_failing_main_lane_ends_the_second_one(tables: dict, lane: str) -> None:
    class Cancelled(Exception):
        pass

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.06:
            raise Cancelled

    before = _children()
    with pytest.raises(Cancelled):
        _report(tables, True, lane, progress=progress)
    assert not [t for t in threading.enumerate() if t.name.startswith("report-lane")]
    assert _children() == before  # the forked lane killed and reaped


def _in_parent(parent: int, value: object, in_child: object) -> object:
    if os.getpid() == parent:
        return value
    return in_child() if callable(in_child) else in_child


@pytest.mark.parametrize(
    "child",
    [
        pytest.param(lambda: os._exit(3), id="dies"),
        pytest.param(lambda: 1 / 0, id="raises"),
        pytest.param(lambda: time.sleep(60), id="stalls"),
        pytest.param(lambda: threading.Lock(), id="unpicklable-result"),
    ],
)
def test_a_task_the_forked_lane_cannot_finish_runs_on_the_callers_thread(
    child: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lanes, "STALL_SECONDS", 1.0)
    parent, before = os.getpid(), _children()
    started = time.monotonic()
    with ProcessLane(ProgressRelay(lambda f, m: None)) as lane:
        wait = lane.submit(lambda: _in_parent(parent, 42, child))
        assert wait() == 42
    assert time.monotonic() - started < 30
    assert _children() == before


def test_the_forked_lane_sends_its_result_and_progress_back() -> None:
    seen: list[tuple[float, str]] = []
    relay = ProgressRelay(lambda f, m: seen.append((f, m)))
    parent = os.getpid()

    def task() -> dict:
        relay(0.4, f"in {'parent' if os.getpid() == parent else 'child'}")
        return {"pid": os.getpid(), "rows": list(range(100_000))}  # more than a pipe holds at once

    with ProcessLane(relay) as lane:
        result = lane.submit(task)()
    assert result["pid"] != parent and result["rows"] == list(range(100_000))
    assert seen == [(0.4, "in child")]


def test_the_forked_lane_dies_with_its_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, time
        from evaluation.lanes import ProcessLane, ProgressRelay

        lane = ProcessLane(ProgressRelay(lambda f, m: None))
        lane.submit(lambda: (open({str(tmp_path / "child")!r}, "w").write(str(os.getpid())), time.sleep(120)))
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        child = int((tmp_path / "child").read_text())
        os.kill(child, 0)  # alive while its parent is
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
        assert time.monotonic() < deadline, "the forked lane outlived its parent"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_the_relay_holds_other_threads_reports_until_the_owner_reports() -> None:
    seen: list[tuple[float, str]] = []
    relay = ProgressRelay(lambda f, m: seen.append((f, m)))
    side = threading.Thread(target=relay, args=(0.5, "side"))
    side.start()
    side.join()
    assert seen == []
    relay(0.2, "main")
    assert seen == [(0.5, "side"), (0.5, "main")]
    relay.abandoned = True
    errors: list[BaseException] = []

    def late() -> None:
        try:
            relay(0.7, "late")
        except ReportAbandoned as exc:
            errors.append(exc)

    side = threading.Thread(target=late)
    side.start()
    side.join()
    assert len(errors) == 1 and seen[-1] == (0.5, "main")


def test_a_disabled_lane_runs_the_task_at_once_on_the_callers_thread() -> None:
    ran: list[int] = []
    with SideLane(ProgressRelay(lambda f, m: None), enabled=False) as lane:
        wait = lane.submit(lambda: ran.append(threading.get_ident()) or 42)
        assert ran == [threading.get_ident()]
        assert wait() == 42


def test_quiet_warnings_keeps_each_threads_warnings_and_restores_the_state() -> None:
    filters, show = list(warnings.filters), warnings.showwarning
    inside, leave = threading.Barrier(2), threading.Barrier(2)
    caught: dict[str, list[str]] = {}

    def run(name: str, first_out: bool) -> None:
        with quiet_warnings() as mine:
            inside.wait()
            warnings.warn(f"from {name}", UserWarning, stacklevel=1)
            warnings.warn(f"again from {name}", RuntimeWarning, stacklevel=1)
            if not first_out:
                leave.wait()
            caught[name] = [str(w.message) for w in mine]
        if first_out:
            leave.wait()

    threads = [threading.Thread(target=run, args=("a", True)), threading.Thread(target=run, args=("b", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caught == {"a": ["from a", "again from a"], "b": ["from b", "again from b"]}
    assert warnings.showwarning is show and list(warnings.filters) == filters
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        warnings.warn("after", UserWarning, stacklevel=1)
    assert [str(w.message) for w in outside] == ["after"]


def test_the_forked_lane_runs_beside_jax_without_a_warning() -> None:
    """A worker that ran a JAX-based method has JAX's threads; JAX warns at every fork (its own calls in the
    child could deadlock). The lane's child never calls JAX: the warning is not shown and the child runs."""
    jnp = pytest.importorskip("jax.numpy")
    float(jnp.ones(3).sum())  # JAX's threads started
    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ProcessLane(ProgressRelay(lambda f, m: None)) as lane:
            pid = lane.submit(os.getpid)()
    assert pid != parent


def _all_slots() -> list[CoreSlot]:
    slots = [CoreSlot.take() for _ in range(CoreSlot.cores())]
    assert all(slots), "every core's slot should have been free"
    return slots  # type: ignore[return-value]


def test_the_forked_lane_forks_only_beside_an_idle_core() -> None:
    """Every core held (release jobs running): the task runs at once on the caller's thread; a core
    free: it runs in a child, whose slot is given back when it ends."""
    parent = os.getpid()
    held = _all_slots()
    with ProcessLane(ProgressRelay(lambda f, m: None)) as lane:
        assert lane.submit(os.getpid)() == parent
    held[-1].release()
    with ProcessLane(ProgressRelay(lambda f, m: None)) as lane:
        assert lane.submit(os.getpid)() != parent
    last = CoreSlot.take()  # the child's slot is free again
    assert last is not None and CoreSlot.take() is None
    for slot in [*held[:-1], last]:
        slot.release()
    with busy_core() as slot:
        assert slot is not None
    for slot in _all_slots():
        slot.release()


def test_a_core_slot_is_freed_when_its_process_dies(tmp_path: Path) -> None:
    script = "from evaluation.lanes import busy_core\nimport time\nwith busy_core() as s:\n    print(s is not None, flush=True)\n    time.sleep(120)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
        held = [CoreSlot.take() for _ in range(CoreSlot.cores())]
        assert held.count(None) == 1  # the other process holds one
        for slot in held:
            if slot is not None:
                slot.release()
    finally:
        proc.kill()
        proc.communicate()
    for slot in _all_slots():
        slot.release()


def test_core_slots_are_not_counted_in_a_folder_that_is_not_this_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link planted where the slots' folder goes is refused: no slot, so no forked lane (one lane)."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "planted").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("SYNTHGATE_CORE_SLOTS", str(tmp_path / "planted"))
    assert CoreSlot.take() is None
    assert not list((tmp_path / "elsewhere").iterdir())
    parent = os.getpid()
    with ProcessLane(ProgressRelay(lambda f, m: None)) as lane:
        assert lane.submit(os.getpid)() == parent

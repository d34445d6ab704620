"""One torch thread for the heavy methods (privacy/synthesizers/_torch_threads.py): set in a fresh process,
safe to call again, and set by the workers that serve the heavy queue."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.unit.db_support import ROOT
from webapp.cli import cli
from workers import tasks
from workers.celery_app import HEAVY_QUEUE, QUEUE


def _in_fresh_process(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_one_thread_is_set_before_any_work_and_a_second_call_keeps_it():
    code = (
        "import torch\n"
        "from privacy.synthesizers._torch_threads import one_torch_thread\n"
        "before = (torch.get_num_threads(), torch.get_num_interop_threads())\n"
        "assert one_torch_thread()\n"
        "torch.ones(1000, 100).sum(dim=0)\n"
        "assert one_torch_thread()  # the inter-op pool can no longer be set: no error\n"
        "print(f'{before}|{torch.get_num_threads()},{torch.get_num_interop_threads()}'.replace(' ', ''))\n"
    )
    before, after = _in_fresh_process(code).split("|")
    assert after == "1,1", before


def test_only_workers_of_the_heavy_queue_set_it(monkeypatch):
    queues = tasks.celery_app.amqp.queues
    monkeypatch.setattr(queues, "_consume_from", None)  # restored after the test
    for consumed, heavy in (([QUEUE], False), ([HEAVY_QUEUE], True), ([QUEUE, HEAVY_QUEUE], True)):
        queues.select(consumed)  # what the worker's -Q does
        assert tasks.serves_heavy_methods() is heavy


@pytest.mark.parametrize(("method", "sets"), [("dpctgan", True), ("mst", False)])
def test_synth_sets_one_thread_before_fitting_a_heavy_method(monkeypatch, tmp_path, method, sets):
    from privacy.synthesizers import _torch_threads

    calls: list[bool] = []
    monkeypatch.setattr(_torch_threads, "one_torch_thread", lambda: calls.append(True) or True)
    # no data file: the command stops after the setting, before any fit
    args = ["synth", "--method", method, "--epsilon", "1", "--delta", "1e-6", "-o", str(tmp_path / "out.csv")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "needs a data FILE" in result.output, result.output
    assert calls == ([True] if sets else [])

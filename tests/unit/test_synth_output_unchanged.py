"""`synthgate synth --method mst` writes the same file for the same seed: the bytes of the CSV, on the
real tables in tests/data, match digests of the output written before reading, decoding and writing
were made cheaper (same rows, same number formatting, same quoting, empty cells for nulls)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import DATA
from webapp.cli import cli

EXPECTED = {  # sha256 of the CSV written for --rows 3000 --seed 7 at epsilon 1, delta 1e-9
    "adult/adult.csv": "98a5614bce0f06046d8e804d80a8b195795654e8a61db5ae59b4b4a5af8794ce",
    "penguins/penguins.csv": "4850629be2fcb8205830a3888eb48062c433c398282e98fe7380baa829964c01",
    "pums/PUMS.csv": "4a5b6f81d3e1c9469959a1b15e7af19322dce704f9a7ea8fe692b931bd550779",
}


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_mst_output_bytes_are_unchanged(table: str, tmp_path: Path) -> None:
    path = DATA / table
    out = tmp_path / "out.csv"
    argv = ["synth", str(path), "--schema", str(path.parent / "schema.yaml"), "-m", "mst", "--epsilon", "1"]
    argv += ["--delta", "1e-9", "--rows", "3000", "--seed", "7", "-q", "-o", str(out)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EXPECTED[table]


def test_a_real_process_ends_with_its_output_flushed_and_atexit_run(tmp_path: Path) -> None:
    """`synthgate synth` ends without the interpreter's teardown once it has written its file: the
    JSON summary on a pipe is whole, atexit handlers still run, and the exit code is 0."""
    path = DATA / "penguins/penguins.csv"
    out = tmp_path / "out.csv"
    code = "import atexit; atexit.register(print, 'atexit ran'); from webapp.cli import main; main()"
    argv = [sys.executable, "-c", code, "synth", str(path), "--schema", str(path.parent / "schema.yaml")]
    argv += ["-m", "mst", "--epsilon", "1", "--delta", "1e-9", "--rows", "3000", "--seed", "7", "-q", "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("PYTHONUNBUFFERED", None)  # stdout on a pipe is block-buffered, as it usually is
    proc = subprocess.run([*argv, "-o", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    summary, _, rest = proc.stdout.rpartition("}\n")
    assert json.loads(summary + "}")["rows"] == 3000
    assert rest == "atexit ran\n"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EXPECTED["penguins/penguins.csv"]
    refused = subprocess.run([*argv, "--rows", "0", "-o", str(out)], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--rows" in refused.stderr


def test_the_allocator_is_tuned_only_in_a_synthgate_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`keep_freed_memory` changes nothing in a process that hosts the CLI (this test runner, the web
    app); in a process `main` started it sets glibc's mmap threshold, trim threshold and top pad, and turns
    off numpy's advice of transparent huge pages."""
    import ctypes

    from webapp.cli import _common

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    advised: list[bool] = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    monkeypatch.setattr(np._core.multiarray, "_set_madvise_hugepage", advised.append)
    monkeypatch.setattr(_common, "_STARTED_BY_MAIN", False)
    _common.keep_freed_memory()
    assert calls == [] and advised == []
    monkeypatch.setattr(_common, "_STARTED_BY_MAIN", True)
    monkeypatch.setattr(sys, "platform", "linux")
    _common.keep_freed_memory()
    assert [p for p, _ in calls] == [-3, -1, -2] and all(v >= 1 << 26 for _, v in calls)
    assert advised == [False]  # numpy's large arrays: no transparent huge pages from now on


def test_under_a_profiler_the_process_ends_as_usual(tmp_path: Path) -> None:
    """cProfile writes its results after `main` returns: under it, synth keeps the usual exit."""
    path = DATA / "penguins/penguins.csv"
    script = tmp_path / "run.py"
    script.write_text("from webapp.cli import main\nmain()\n")
    profile = tmp_path / "synth.prof"
    argv = [sys.executable, "-m", "cProfile", "-o", str(profile), str(script), "synth", str(path), "--schema"]
    argv += [str(path.parent / "schema.yaml"), "-m", "mst", "--epsilon", "1", "--delta", "1e-9", "--rows", "100"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([*argv, "-q", "-o", str(tmp_path / "out.csv")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert profile.stat().st_size > 0

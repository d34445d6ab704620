"""Keys made once on first use: processes that start together all end up with the same, whole key."""

from __future__ import annotations

import multiprocessing as mp
import stat
from pathlib import Path

from core.settings import Settings, create_once


def _secret(data_dir: str, barrier, out) -> None:  # noqa: ANN001 - multiprocessing primitives
    barrier.wait()
    try:
        out.put(Settings(data_dir=Path(data_dir)).get_secret_key())
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(f"error: {exc!r}")


def test_processes_starting_together_share_one_secret_key(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    workers = 8
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_secret, args=(str(tmp_path), barrier, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    keys = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_create_once_keeps_the_first_content(tmp_path: Path) -> None:
    path = tmp_path / "key"
    create_once(path, b"first")
    create_once(path, b"second")
    assert path.read_bytes() == b"first"

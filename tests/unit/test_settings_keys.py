"""Keys made once on first use: processes that start together all end up with the same, whole key."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

from core.settings import create_once

ROOT = Path(__file__).resolve().parents[2]

# each process waits for the same start signal, then reads (or makes) the key, as gunicorn's workers do
CHILD = """
import sys, time
from pathlib import Path
from core.settings import Settings
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
print(Settings(data_dir=Path(sys.argv[1])).get_secret_key())
"""


def test_processes_starting_together_share_one_secret_key(tmp_path: Path) -> None:
    data, go = tmp_path / "data", tmp_path / "go"
    data.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), str(go)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    time.sleep(1.0)  # every interpreter is up and waiting
    go.touch()
    results = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in results]
    keys = [out.strip() for out, _ in results]
    assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
    path = data / "secret_key"
    assert path.read_text().strip() == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_create_once_keeps_the_first_content(tmp_path: Path) -> None:
    path = tmp_path / "key"
    create_once(path, b"first")
    create_once(path, b"second")
    assert path.read_bytes() == b"first"

"""Measuring wall time, CPU time and peak memory, stage by stage, in fresh processes.

Every measured workload runs in a child process, a fresh interpreter started
with `python -m bench.measure` (nothing imported, nothing cached), so the
peak memory of one case cannot leak into another. Inside the child a `Meter`
times named stages; before each stage it resets the kernel's high-water mark of
resident memory (`/proc/self/clear_refs`, value 5), so each stage reports its
own peak (the data already held counts, as it should). Where the reset is not
allowed, a stage reports the process's peak so far and says so.

Whole programs (`synthgate synth`, a bare-library script) are measured with
`os.wait4`, which gives the child's CPU time and peak resident memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ChildResult", "Meter", "peak_rss_mib", "process_cpu_s", "reset_peak_rss", "run_in_child", "run_program"]

_ROOT = Path(__file__).resolve().parents[1]


def _status_kib(key: str, pid: int | str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mib(pid: int | str = "self") -> float:
    """Peak resident memory of a process (VmHWM), in MiB; ru_maxrss for this process if /proc is missing."""
    kib = _status_kib("VmHWM", pid)
    if kib is None and pid == "self":
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round((kib or 0) / 1024, 1)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far, its reaped children included."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # fields after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def current_rss_mib() -> float:
    kib = _status_kib("VmRSS")
    return round((kib or 0) / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Meter:
    """Times named stages in the current process: wall and CPU seconds, peak RSS during the stage."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Measure the block as stage `name`; the yielded dict takes extra fields (e.g. rows)."""
        scoped = reset_peak_rss()
        extra: dict[str, Any] = {}
        rss_start = current_rss_mib()
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        try:
            yield extra
        finally:
            wall = time.perf_counter() - t0
            cpu = _cpu_seconds() - cpu0
            record = {
                "stage": name,
                "wall_s": round(wall, 4),
                "cpu_s": round(cpu, 4),
                "peak_rss_mib": peak_rss_mib(),
                "rss_start_mib": rss_start,
                "peak_scope": "stage" if scoped else "process",
            }
            record.update(extra)
            self.stages.append(record)

    def total(self, *names: str) -> dict[str, float]:
        """Wall and CPU seconds summed over the named stages, and the largest peak among them."""
        chosen = [s for s in self.stages if s["stage"] in names]
        missing = set(names) - {s["stage"] for s in chosen}
        if missing:
            raise KeyError(f"no stage named {sorted(missing)}")
        return {
            "wall_s": round(sum(s["wall_s"] for s in chosen), 4),
            "cpu_s": round(sum(s["cpu_s"] for s in chosen), 4),
            "peak_rss_mib": max(s["peak_rss_mib"] for s in chosen),
        }


@dataclass
class ChildResult:
    """What a workload run in a fresh process reported."""

    ok: bool
    stages: list[dict[str, Any]]
    info: dict[str, Any]
    process_wall_s: float  # spawn to exit, interpreter start included
    process_peak_rss_mib: float
    error: str | None = None

    def stage(self, name: str) -> dict[str, Any]:
        for s in self.stages:
            if s["stage"] == name:
                return s
        raise KeyError(f"stage {name!r} not measured (have: {[s['stage'] for s in self.stages]})")

    def to_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "stages": self.stages,
            "info": self.info,
            "process_wall_s": self.process_wall_s,
            "process_peak_rss_mib": self.process_peak_rss_mib,
        }
        if self.error:
            out["error"] = self.error
        return out


def child_main(argv: list[str] | None = None) -> None:
    """Entry point of a measured child: `python -m bench.measure TARGET KWARGS.json RESULT.json`."""
    import importlib

    target, kwargs_path, result_path = (argv if argv is not None else sys.argv[1:])[:3]
    with open(kwargs_path, encoding="utf-8") as fh:
        kwargs = json.load(fh)
    meter = Meter()
    payload: dict[str, Any]
    try:
        module_name, _, attr = target.partition(":")
        fn = getattr(importlib.import_module(module_name), attr)
        fn(meter, **kwargs)
        payload = {"ok": True}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"}
    # each stage reset the kernel's mark: the run's peak is the largest stage peak (or the mark since)
    whole = max([s["peak_rss_mib"] for s in meter.stages] + [peak_rss_mib()])
    payload.update(stages=meter.stages, info=meter.info, process_peak_rss_mib=whole)
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, default=str)


def run_in_child(target: str, timeout: float = 3600, **kwargs: Any) -> ChildResult:
    """Run `module:function(meter, **kwargs)` in a fresh interpreter and return its measured stages.

    The function receives a `Meter` and records its stages on it; `meter.info`
    carries anything else worth reporting (rows, options, figures). Arguments
    must be JSON values. A workload that raises, dies or overruns `timeout`
    returns `ok=False` with the reason, so one failing case does not stop a run.
    """
    with tempfile.TemporaryDirectory(prefix="synthgate-bench-") as tmp:
        kwargs_path = Path(tmp) / "kwargs.json"
        result_path = Path(tmp) / "result.json"
        kwargs_path.write_text(json.dumps(kwargs), encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        run = run_program(
            [sys.executable, "-m", "bench.measure", target, str(kwargs_path), str(result_path)],
            env=env,
            cwd=_ROOT,
            timeout=timeout,
        )
        if not result_path.exists():
            reason = "timed out" if run["timed_out"] else f"exited with code {run['returncode']} before reporting"
            return ChildResult(
                False, [], {}, run["wall_s"], run["peak_rss_mib"], error=f"{target}: {reason}\n{run['stderr'][-2000:]}"
            )
        payload = json.loads(result_path.read_text(encoding="utf-8"))
    return ChildResult(
        ok=payload["ok"],
        stages=payload["stages"],
        info=payload["info"],
        process_wall_s=run["wall_s"],
        process_peak_rss_mib=payload["process_peak_rss_mib"],
        error=payload.get("error"),
    )


def run_program(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 3600,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run a whole program; wall seconds, CPU seconds and peak RSS from the kernel's accounting (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    timed_out = wall > timeout
    if log and proc.returncode != 0:
        log(stderr[-2000:])
    return {
        "ok": proc.returncode == 0 and not timed_out,
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "stdout": stdout[-4000:],
        "stderr": stderr[-4000:] if proc.returncode != 0 else "",
        "argv": [os.path.basename(argv[0]) if argv[0] == sys.executable else argv[0], *argv[1:]],
    }


if __name__ == "__main__":
    child_main()

"""synthgate's benchmark harness: wall time, CPU time and peak memory per stage, and ratios to bare libraries.

    synthgate bench [--quick] [--json] [--cases mst,aim,...] [-o results.json] [--markdown results.md]
    python -m bench ...                       (the same command)

    from bench import run_bench, render_text
    results = run_bench(quick=True, cases=["mst"])

Every measured workload runs in a fresh interpreter (`bench.measure`), so the
peak memory of one case never leaks into another, and every comparison with a
bare library (smartnoise-synth) is taken in the same run on the same inputs.
The results are a JSON-able dict:

    {"harness", "mode", "started", "seconds", "host": {cpus, load average at start and end, ...},
     "versions": {...}, "cases": [
        {"id", "number", "title", "ok", "errors"?, "setup", "seconds",
         "lines": [{"run", "stage", "wall_s", "cpu_s", "peak_rss_mib", ...}],
         "ratio": {name: value},            # present wherever there is a comparison
         "targets": {name: {"target", "met"}}, "figures": {...}, "notes": [...]}]}

Nothing in the product imports this package; it imports the product.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CASE_IDS", "render_markdown", "render_text", "run_bench"]

CASE_IDS = ("mst", "aim", "service", "report", "throughput", "scale", "methods")

_VERSIONED = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "smartnoise-synth",
    "private-pgm",
    "jax",
    "sdv",
    "torch",
    "celery",
    "gunicorn",
)


def _versions() -> dict[str, str]:
    from importlib import metadata  # here: `synthgate`'s every command imports this package to register `bench`

    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_bench(
    *,
    quick: bool = False,
    cases: list[str] | None = None,
    epsilon: float = 1.0,
    delta: float = 1e-9,
    seed: int = 0,
    workdir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen cases (all by default; names or numbers 1-9) and return the results dict."""
    from bench.cases import BenchConfig, resolve_cases, run_case

    chosen = resolve_cases(cases)
    cfg = BenchConfig(quick=quick, epsilon=epsilon, delta=delta, seed=seed, workdir=workdir)
    if log is not None:
        cfg.log = log
    started = dt.datetime.now(dt.UTC)
    load_start = _load()
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    samples: list[float] = []
    stop = threading.Event()

    def sample_load() -> None:
        while True:
            samples.extend(_load()[:1])
            if stop.wait(15):
                return

    sampler = threading.Thread(target=sample_load, name="bench-load", daemon=True)
    sampler.start()
    try:
        for name in chosen:
            results.append(run_case(name, cfg))
            cfg.log(f"case {name}: {'ok' if results[-1]['ok'] else 'FAILED'} in {results[-1]['seconds']} s")
    finally:
        stop.set()
        sampler.join()
        cfg.close()
    return {
        "harness": "synthgate bench",
        "mode": "quick" if quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "host": {
            "cpus": os.cpu_count(),
            "load_average_start": load_start,
            "load_average_end": _load(),
            "load_average_1min_mean": round(sum(samples) / len(samples), 2) if samples else None,
            "load_average_1min_max": max(samples) if samples else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
        "epsilon": epsilon,
        "delta": delta,
        "cases": results,
    }


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _case_tables(case: dict[str, Any]) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of each table a case shows."""
    tables = []
    if case.get("table"):  # the per-method case
        header = ["method", "guarantee", "rows", "settings", "import s", "fit s", "sample s", "peak MiB"]
        rows = [
            [
                e["method"],
                e["guarantee"],
                _fmt(e["rows"]),
                e["settings"],
                _fmt(e.get("import_s")),
                _fmt(e.get("fit_s")),
                _fmt(e.get("sample_s")),
                _fmt(e.get("peak_rss_mib")) if e["ok"] else "failed",
            ]
            for e in case["table"]
        ]
        tables.append((header, rows))
    elif case.get("lines"):
        header = ["run", "stage", "wall s", "cpu s", "peak MiB"]
        rows = [
            [ln["run"], ln["stage"], _fmt(ln["wall_s"]), _fmt(ln["cpu_s"]), _fmt(ln["peak_rss_mib"])]
            for ln in case["lines"]
        ]
        tables.append((header, rows))
    if case.get("ratio") or case.get("targets"):
        header = ["ratio or figure", "value", "target", "met"]
        rows = []
        for name, value in case["ratio"].items():
            target = case.get("targets", {}).get(name, {})
            rows.append([name, _fmt(value), target.get("target", ""), _fmt(target.get("met")) if target else ""])
        for name, target in case.get("targets", {}).items():
            if name not in case["ratio"]:
                rows.append([name, _fmt(target.get("value")), target["target"], _fmt(target["met"])])
        tables.append((header, rows))
    return tables


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = [i > 0 and all(_looks_numeric(r[i]) for r in rows) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if num else str(c).ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths]), *[fmt(r) for r in rows]]


def _looks_numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit() or text in ("-", "")


def _summary_lines(results: dict[str, Any]) -> list[str]:
    host = results["host"]
    return [
        f"synthgate bench ({results['mode']} mode), {results['started']}, {results['seconds']} s; "
        f"{host['cpus']} CPUs, load average {host['load_average_start']} at start, "
        f"{host['load_average_end']} at end, 1-minute load {host.get('load_average_1min_mean')} on average "
        f"(max {host.get('load_average_1min_max')}) during the run"
    ]


def render_text(results: dict[str, Any]) -> str:
    """The results as plain-text tables, one block per case."""
    out = _summary_lines(results)
    for case in results["cases"]:
        out.append("")
        status = "ok" if case["ok"] else "FAILED"
        out.append(
            f"{case['number']}. {case['title']}  [{status}, {case['seconds']} s, 1-minute load "
            f"{case.get('load_average_1min')}]"
        )
        for header, rows in _case_tables(case):
            out.extend("  " + line for line in _text_table(header, rows))
            out.append("")
        for note in case.get("notes", []):
            out.append(f"  note: {note}")
        for error in case.get("errors", []):
            out.append(f"  error: {error.splitlines()[0] if error else ''}")
    return "\n".join(out).rstrip() + "\n"


def render_markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (kept in bench/results/ next to the JSON)."""
    out = [
        "# " + _summary_lines(results)[0],
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
    ]
    for case in results["cases"]:
        out += [
            "",
            f"## {case['number']}. {case['title']}",
            "",
            f"{'ok' if case['ok'] else 'FAILED'}, {case['seconds']} s, 1-minute load average at start and end "
            f"{case.get('load_average_1min')}",
            "",
        ]
        for header, rows in _case_tables(case):
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
            out.append("")
        figures = case.get("figures")
        if figures:
            out += [
                "<details><summary>figures</summary>",
                "",
                "```json",
                json.dumps(figures, indent=1, default=str),
                "```",
                "",
                "</details>",
                "",
            ]
        out += [f"- {note}" for note in case.get("notes", [])]
        out += [f"- **error**: `{(e.splitlines() or [''])[0]}`" for e in case.get("errors", [])]
    return "\n".join(out).rstrip() + "\n"

"""Time and peak memory of a full report on a large generated table.

    python -m evaluation._bench --rows 1000000 --columns 20

Generates a real table (correlated numeric, ordinal, datetime and categorical
columns from a latent-factor model, a binary target), splits it 80/20, makes a
synthetic table of the same size from a perturbed copy of the generator, and
builds the whole report with figures (HTML rendered too). Prints one JSON line:
seconds per section, total seconds, and the process's peak resident memory
(data included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time

import numpy as np
import pandas as pd

from privacy.schema import ColumnSpec, PublicSchema


def make_schema(columns: int) -> PublicSchema:
    """A schema of `columns` columns: ~40% continuous, ~15% ordinal, one datetime, the rest categorical."""
    cols: dict[str, ColumnSpec] = {}
    n_cont = max(1, int(columns * 0.4))
    n_ord = max(1, int(columns * 0.15))
    n_cat = max(1, columns - n_cont - n_ord - 2)
    for i in range(n_cont):
        cols[f"x{i}"] = ColumnSpec(kind="continuous", min=-10, max=10, nullable=(i % 3 == 0))
    for i in range(n_ord):
        cols[f"o{i}"] = ColumnSpec(kind="ordinal", min=0, max=90)
    cols["when"] = ColumnSpec(kind="datetime", min=dt.date(2000, 1, 1), max=dt.date(2024, 12, 31))
    for i in range(n_cat):
        k = [2, 5, 12, 40][i % 4]
        cols[f"c{i}"] = ColumnSpec(kind="categorical", values=[f"v{i}_{j}" for j in range(k)], nullable=(i % 2 == 1))
    cols["target"] = ColumnSpec(kind="categorical", values=["no", "yes"])
    names = list(cols)
    qis = [n for n in names if n.startswith(("o", "c"))][:4]
    return PublicSchema(
        columns=cols, quasi_identifiers=qis, sensitive=["c0" if "c0" not in qis else "x0"], target="target"
    )


def make_table(schema: PublicSchema, rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Rows from a latent-factor model on the schema; `shift` perturbs it (a stand-in synthesizer)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 3))
    out: dict[str, object] = {}
    for j, (name, spec) in enumerate(schema.columns.items()):
        w = np.array([np.sin(j + 1), np.cos(2 * j + 1), 0.5]) * (1 + shift)
        signal = z @ w + rng.normal(scale=1.0 + shift, size=rows)
        if name == "target":
            p = 1 / (1 + np.exp(-(signal - 1.0)))
            out[name] = pd.array(np.where(rng.random(rows) < p, "yes", "no"), dtype="string")
        elif spec.kind == "continuous":
            x = np.clip(signal * 2, -10, 10)
            if spec.nullable:
                x[rng.random(rows) < 0.05] = np.nan
            out[name] = x
        elif spec.kind == "ordinal":
            out[name] = pd.array(np.clip(np.rint(45 + signal * 12), 0, 90).astype(int), dtype="Int64")
        elif spec.kind == "datetime":
            days = np.clip(np.rint(9000 + signal * 1500), 10957, 20088).astype("int64")
            out[name] = pd.to_datetime(days, unit="D").astype("datetime64[ns]")
        else:
            values = np.array(spec.values, dtype=object)
            codes = np.clip(((signal + 3) / 6 * len(values)).astype(int), 0, len(values) - 1)
            arr = values[codes]
            if spec.nullable:
                arr[rng.random(rows) < 0.03] = None
            out[name] = pd.array(arr, dtype="string")
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from evaluation import build_report, split_holdout

    schema = make_schema(args.columns)
    started = time.perf_counter()
    real = make_table(schema, args.rows, args.seed)
    synthetic = make_table(schema, args.rows, args.seed + 1, shift=0.1)
    train, holdout, _ = split_holdout(real, schema, seed=args.seed)
    generated = time.perf_counter() - started
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    report = build_report(
        train,
        holdout,
        synthetic,
        schema,
        seed=args.seed,
        thresholds={
            "min_fidelity": 0.6,
            "min_utility_ratio": 0.7,
            "max_membership_auc": 0.6,
            "max_exact_match_rate": 0.0,
            "warn_margin": 0.1,
        },
        progress=lambda f, m: marks.append((time.perf_counter() - started, m)),
    )
    built = time.perf_counter() - started
    html_internal = report.to_html(True)
    html_public = report.to_html(False)
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": args.rows,
                "columns": len(schema.columns),
                "generate_seconds": round(generated, 1),
                "report_seconds": round(built, 1),
                "report_and_html_seconds": round(total, 1),
                "sections_seconds": {k: s.seconds for k, s in report.sections.items()},
                "figures_seconds": round(built - sum(s.seconds or 0 for s in report.sections.values()), 1),
                "peak_rss_mib_before_report": round(rss_before),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "html_kib": {"internal": len(html_internal) // 1024, "public": len(html_public) // 1024},
                "summary": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.summary.items()},
                "statuses": {k: s.status for k, s in report.sections.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

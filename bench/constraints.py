"""Constraint violations on compas: the real table, method outputs before and after enforcement.

    python -m bench.constraints [--rows 5000] [--seeds 1 2 3] [--out bench/results/constraints-DATE]

The real table is split as a release splits it (holdout 0.2); each method is fitted on the
training part, samples `--rows` rows, and `enforce_constraints` runs on them with the fitted
model as its resampler. Shares are of rows; `seconds` is the enforcement alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from fractions import Fraction
from pathlib import Path

from evaluation import split_holdout
from privacy.budget import PrivacyCost
from privacy.constraints import enforce_constraints, violation_counts
from privacy.schema import conform_table, load_schema, read_table
from privacy.synthesizers import create_synthesizer

COMPAS = Path(__file__).resolve().parents[1] / "tests" / "data" / "compas"
METHODS = {
    "mst": PrivacyCost(Fraction(1), Fraction(1, 10**9)),
    "dp-copula": PrivacyCost(Fraction(1), Fraction(0)),
    "gaussian-copula": PrivacyCost.non_dp(),
}


def _shares(df, schema) -> dict[str, float]:
    return {k: v / len(df) for k, v in violation_counts(df, schema).items()}


def run(rows: int, seeds: list[int]) -> dict:
    schema = load_schema(COMPAS / "schema.yaml")
    table, _ = conform_table(read_table(COMPAS / "compas.csv"), schema)
    train, test, _ = split_holdout(table, schema, holdout=0.2, seed=0)
    out: dict = {
        "rows": rows,
        "seeds": seeds,
        "real": {
            "full": _shares(table, schema),
            "holdout": _shares(test, schema),
            "full_rows": len(table),
            "holdout_rows": len(test),
        },
        "methods": {},
    }
    for method, cost in METHODS.items():
        runs = []
        for seed in seeds:
            synth = create_synthesizer(method, seed=seed)
            synth.fit(train, schema, cost)
            sampled = synth.sample(rows)
            t0 = time.perf_counter()
            enforced, report = enforce_constraints(sampled, schema, resample=synth.sample_more, seed=seed)
            seconds = time.perf_counter() - t0
            runs.append(
                {
                    "seed": seed,
                    "before": _shares(sampled, schema),
                    "after": _shares(enforced, schema),
                    "rows_violating": report.rows_violating,
                    "rows_resampled": report.rows_resampled,
                    "rows_drawn": report.rows_drawn,
                    "rounds": report.rounds,
                    "rows_repaired": report.rows_repaired,
                    "seconds": round(seconds, 3),
                }
            )
        out["methods"][method] = runs
    return out


def markdown(result: dict) -> str:
    names = list(result["real"]["full"])
    lines = [
        f"# Constraint violations on compas ({result['rows']} rows per output, seeds {result['seeds']})",
        "",
        "Share of rows violating each constraint. Real: the whole table and the holdout part (0.2); "
        "method outputs: fitted on the training part, before and after `enforce_constraints`.",
        "",
        "| table | " + " | ".join(names) + " | rows resampled | rows repaired | rounds | seconds |",
        "|---|" + "---|" * (len(names) + 4),
    ]
    for part in ("full", "holdout"):
        lines.append(
            f"| real ({part}, {result['real'][part + '_rows']} rows) | "
            + " | ".join(f"{result['real'][part][n]:.2%}" for n in names)
            + " | | | | |"
        )
    for method, runs in result["methods"].items():
        for when in ("before", "after"):
            share = {n: sum(r[when][n] for r in runs) / len(runs) for n in names}
            extra = (
                " | | | | |"
                if when == "before"
                else " | "
                + " | ".join(
                    f"{sum(r[k] for r in runs) / len(runs):.4g}"
                    for k in ("rows_resampled", "rows_repaired", "rounds", "seconds")
                )
                + " |"
            )
            lines.append(f"| {method} {when} | " + " | ".join(f"{share[n]:.2%}" for n in names) + extra)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", default=f"bench/results/constraints-{dt.date.today().isoformat()}")
    args = parser.parse_args()
    result = run(args.rows, args.seeds)
    Path(args.out + ".json").write_text(json.dumps(result, indent=2))
    Path(args.out + ".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

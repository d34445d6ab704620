"""Rebalanced releases judged the old way (marginal fidelity, primary-score ratio) and class by class.

    python -m bench.rebalance_gate [--tables adult compas] [--out bench/results/rebalance-gate-DATE]

Each table is split as a release splits it (holdout 0.2, stratified on the target); MST at epsilon 1 is
fitted on the training part and its sample rebalanced with SMOTE (`rebalance_output`), and the `smote`
method balances the training rows. Each output is evaluated with `build_report(..., rebalanced_target=)`
and judged by `evaluate_gate` under the default policy, without and with `class_aware`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from evaluation import build_report, split_holdout
from privacy.budget import PrivacyCost
from privacy.gate import evaluate_gate
from privacy.policy import DatasetPolicy
from privacy.schema import conform_table, load_schema, read_table
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers.rebalance import rebalance_output

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
FIGURES = (
    "fidelity_score",
    "classwise_fidelity_score",
    "classwise_fidelity_holdout_reference",
    "utility_ratio",
    "minority_f1_ratio",
    "minority_recall_ratio",
    "tstr_minority_f1",
    "trtr_minority_f1",
)


def _table(name: str):
    schema = load_schema(DATA / name / "schema.yaml")
    table, _ = conform_table(read_table(next((DATA / name).glob("*.csv"))), schema)
    return schema, table


def _judge(train, test, released, schema, target: str, policy: DatasetPolicy) -> dict[str, Any]:
    started = time.perf_counter()
    report = build_report(
        train, test, released, schema, target, seed=3, include={"fidelity", "utility"}, rebalanced_target=target
    )
    s = report.summary
    old = evaluate_gate(policy, disclosure=None, fidelity=s["fidelity_score"], utility_ratio=s["utility_ratio"])
    new = evaluate_gate(
        policy,
        disclosure=None,
        fidelity=s["fidelity_score"],
        utility_ratio=s["utility_ratio"],
        class_aware=report.class_aware,
    )
    return {
        **{k: s.get(k) for k in FIGURES},
        "minority_classes": s.get("minority_classes"),
        "released_shares": {
            str(k): round(float(v), 4) for k, v in released[target].value_counts(normalize=True).items()
        },
        "old": {c: old.check(c).status for c in ("fidelity", "utility_ratio")},
        "new": {c: new.check(c).status for c in ("fidelity", "utility_ratio")},
        "seconds": round(time.perf_counter() - started, 1),
    }


def run(tables: list[str]) -> dict[str, Any]:
    policy = DatasetPolicy()
    out: dict[str, Any] = {
        "policy": {
            "min_fidelity": policy.min_fidelity,
            "min_utility_ratio": policy.min_utility_ratio,
            "warn_margin": policy.warn_margin,
        },
        "tables": {},
    }
    for name in tables:
        schema, table = _table(name)
        target = schema.target
        train, test, _ = split_holdout(table, schema, target=target, seed=1)
        mst = create_synthesizer("mst", seed=2)
        mst.fit(train, schema, PrivacyCost(Fraction(1), Fraction(1, 10**6)))
        balanced = rebalance_output(mst.sample(len(train)), schema, target, "smote", seed=4)
        smote = create_synthesizer("smote", seed=5)
        smote.fit(train, schema, PrivacyCost.non_dp())
        out["tables"][name] = {
            "train_rows": len(train),
            "target": target,
            "real_shares": {str(k): round(float(v), 4) for k, v in train[target].value_counts(normalize=True).items()},
            "mst eps 1 + rebalance smote": _judge(train, test, balanced, schema, target, policy),
            "smote method": _judge(train, test, smote.balanced_table, schema, target, policy),
        }
    return out


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else ("" if x is None else str(x))


def markdown(result: dict[str, Any]) -> str:
    p = result["policy"]
    lines = [
        f"# Rebalanced releases: the old gate checks and the class-aware ones (default policy: "
        f"min_fidelity {p['min_fidelity']}, min_utility_ratio {p['min_utility_ratio']}, "
        f"warn_margin {p['warn_margin']})",
        "",
        "| table | release | marginal fidelity | class-wise fidelity (holdout ref.) | AUC (Gini) ratio | "
        "minority F1 ratio | minority recall ratio | minority F1 TSTR / TRTR | old: fidelity, utility | "
        "new: fidelity, utility |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in result["tables"].items():
        for release, r in t.items():
            if not isinstance(r, dict) or "old" not in r:
                continue
            lines.append(
                f"| {name} ({t['train_rows']} training rows) | {release} | {_fmt(r['fidelity_score'])} | "
                f"{_fmt(r['classwise_fidelity_score'])} ({_fmt(r['classwise_fidelity_holdout_reference'])}) | "
                f"{_fmt(r['utility_ratio'])} | {_fmt(r['minority_f1_ratio'])} | {_fmt(r['minority_recall_ratio'])} | "
                f"{_fmt(r['tstr_minority_f1'])} / {_fmt(r['trtr_minority_f1'])} | "
                f"{r['old']['fidelity']}, {r['old']['utility_ratio']} | {r['new']['fidelity']}, "
                f"{r['new']['utility_ratio']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["adult", "compas"])
    parser.add_argument("--out", default=f"bench/results/rebalance-gate-{dt.date.today().isoformat()}")
    args = parser.parse_args()
    result = run(args.tables)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2, default=str))
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

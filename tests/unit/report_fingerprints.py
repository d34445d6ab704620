"""Every numeric figure of the evaluation report on two fixed tables, flattened to paths, and where a figure's
standard error sits in the report.

Tables (fixed seeds): `adult`, 3,000 conformed adult rows split 80/20 against 3,000 other adult rows as the
synthetic table; `generated`, 20,000 rows of evaluation._bench's latent-factor table (12 columns) against
20,000 rows of its perturbed generator. `report_fingerprints.json` holds the figures the report gave before
it was made proportionate; regenerate it only from that implementation:

    PYTHONPATH=<checkout> python -m tests.unit.report_fingerprints OUT.json
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = Path(__file__).with_name("report_fingerprints.json")
NAMES = ("adult", "generated")
# not figures: timings, the settings (limits, versions) and the constant definitions
SKIPPED_TOP = {"settings", "definitions", "schema_version", "kind", "audience"}
SKIPPED_KEYS = {"seconds", "figures"}
# sample sizes the report now chooses differently (evaluation/README.md, "Scale"): not figures
SAMPLE_SIZES = {"sections/privacy/data/dcr/synthetic_rows_searched"}
THRESHOLDS = {
    "min_fidelity": 0.6,
    "min_utility_ratio": 0.7,
    "max_membership_auc": 0.6,
    "max_exact_match_rate": 0.0,
    "warn_margin": 0.1,
}


def tables(name: str) -> tuple[Any, Any, Any, Any, str]:
    """(train, holdout, synthetic, schema, target) of one fingerprinted table."""
    from evaluation import split_holdout
    from privacy.schema import conform_table, load_schema, read_table

    if name == "adult":
        schema = load_schema(DATA / "adult" / "schema.yaml")
        df = conform_table(read_table(DATA / "adult" / "adult.csv"), schema)[0]
        df = df.sample(6_000, random_state=0).reset_index(drop=True)
        real, synthetic = df.iloc[:3_000].reset_index(drop=True), df.iloc[3_000:].reset_index(drop=True)
        target = "income"
    elif name == "generated":
        from evaluation._bench import make_schema, make_table

        schema = make_schema(12)
        real = make_table(schema, 20_000, 0)
        synthetic = make_table(schema, 20_000, 1, shift=0.1)
        target = "target"
    else:
        raise KeyError(name)
    train, holdout, _ = split_holdout(real, schema, target=target, seed=0)
    return train, holdout, synthetic, schema, target


def report_dict(name: str) -> dict[str, Any]:
    """The internal JSON report of one table (every section, figures not drawn)."""
    from evaluation import build_report

    train, holdout, synthetic, schema, target = tables(name)
    report = build_report(
        train,
        holdout,
        synthetic,
        schema,
        target,
        thresholds=THRESHOLDS,
        seed=0,
        include={"fidelity", "utility", "privacy"},
    )
    return report.to_dict(include_internal=True)


def _leaves(obj: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in SKIPPED_KEYS or (not path and k in SKIPPED_TOP):
                continue
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, str(i)))
    else:
        yield path, obj


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    """Every numeric leaf (and every null one) of a JSON report, by its path; booleans as 0 / 1."""
    out: dict[str, float | None] = {}
    for path, value in _leaves(report, ()):
        if value is None:
            out["/".join(path)] = None
        elif isinstance(value, int | float) and math.isfinite(value):  # booleans included
            out["/".join(path)] = float(value)
    return out


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {k: s.get("status") for k, s in report["sections"].items()}


def _at(report: Any, parts: list[str]) -> Any:
    node = report
    for p in parts:
        if isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        elif isinstance(node, dict):
            node = node.get(p)
        else:
            return None
    return node


def standard_error(report: dict[str, Any], path: str) -> float | None:
    """The standard error the report states for the figure at `path`, if any.

    A figure `k` has its standard error in a sibling `k_se`, or in a sibling dict `standard_error`
    (or `standard_errors`) under `k`; a model's primary score under a setting
    (`models/<m>/<setting>/<score>`) in the model's `standard_error[<setting>]`; a check's value is the
    summary figure it judges; a figure repeated in the summary takes the one stated for the same name
    in its section.
    """
    parts = path.split("/")
    parent: Any = report
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent.get(p) if isinstance(parent, dict) else None
        if parent is None:
            return None
    key = parts[-1]
    if isinstance(parent, dict):
        se = parent.get(f"{key}_se")
        if isinstance(se, int | float):
            return float(se)
        for name in ("standard_error", "standard_errors"):
            block = parent.get(name)
            if isinstance(block, dict) and isinstance(block.get(key), int | float):
                return float(block[key])
    if len(parts) >= 3:  # a model's primary score under a setting: models/<m>/<setting>/<score>
        model = _at(report, parts[:-2])
        block = model.get("standard_error") if isinstance(model, dict) else None
        if isinstance(block, dict) and model.get("primary_score") == key:
            se = block.get(parts[-2])
            if isinstance(se, int | float):
                return float(se)
    if parts[0] == "checks" and key == "value":  # a check judges a summary figure
        from evaluation.report import CHECKS

        figure = {c[0]: c[2] for c in CHECKS}.get(report["checks"][int(parts[1])].get("name"))
        return standard_error(report, f"summary/{figure}") if figure else None
    if parts[0] == "summary":
        for p, value in _leaves(report.get("sections", {}), ()):
            if p[-1] == f"{key}_se" and isinstance(value, int | float):
                return float(value)
    return None


def compute(name: str) -> dict[str, Any]:
    report = report_dict(name)
    return {"statuses": statuses(report), "figures": figures(report)}


def main(argv: list[str]) -> None:
    out = {name: compute(name) for name in NAMES}
    Path(argv[0]).write_text(json.dumps(out, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Class by class: how a rebalanced release is compared with the real rows.

A release whose target classes were rebalanced (SMOTE and its kin, on a DP
output or on the training rows) differs from the real table by design: its
class shares are even where the real ones are not, and so is every column that
goes with the class. Its marginals are therefore compared within each class of
the target, and its use, a training set for the minority class(es), is scored
by the minority classes' F1 and recall:

* **Class-wise fidelity.** The report's fidelity score (one- and two-way TVD,
  `FIDELITY_SCORE_DEFINITION`) on the rows of one class, real training rows vs
  released rows, the target column left out (it is constant within a class).
  The class-wise score is the unweighted mean over the classes the real
  training rows hold: every class counts the same, because a rebalanced table
  is meant to serve the minority as much as the majority; weighted by the real
  shares, the majority class would all but decide it (that average is reported
  too). A class with real rows and no released row scores 0. The real holdout
  scored the same way is the sampling-noise reference of each class.
* **Class shares**, real training rows vs released rows: reported, not scored.
* **Minority-class utility.** The minority classes are every class of the real
  training rows but the most frequent one: the classes a rebalancing raises.
  With the utility section's models (the same fits, the same holdout), their
  F1 and recall (unweighted means over the minority classes) and the balanced
  accuracy, TSTR against TRTR. The judged ratio is F1's: recall alone rewards
  a model that calls every row minority, F1 also counts the precision it loses.
  Its standard error, and those of TSTR's and TRTR's minority F1, are the
  spread of a paired bootstrap of the holdout rows (`BOOTSTRAP` resamples,
  seeded): the rows both models are scored on, resampled together. Like the
  utility section's, they leave out the variation from the training rows.

Internal: every figure here reads real rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluation._common import EvaluationLimits, no_progress, sample_rows, section_rng
from evaluation._tables import ColumnView
from evaluation.kernels import NotScorable, fidelity_from_codes, sample_pairs
from privacy.schema import PublicSchema

__all__ = ["BOOTSTRAP", "WEIGHTING", "class_section", "minority_scores"]

#: resamples of the holdout rows for the standard errors of the minority-class F1 figures
BOOTSTRAP = 200

WEIGHTING = (
    "unweighted mean over the classes of the real training rows (each class counts the same); "
    "the mean weighted by the real class shares is given for information"
)


def _fidelity(
    real: dict[str, np.ndarray], released: dict[str, np.ndarray], sizes: dict[str, int], pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    fid = fidelity_from_codes(real, released, sizes, pairs)
    return {
        "fidelity_score": fid["score"],
        "mean_one_way_tvd": fid["mean_one_way_tvd"],
        "mean_two_way_tvd": fid["mean_two_way_tvd"],
    }


def _mean(values: list[float], weights: list[float] | None = None) -> float | None:
    if not values:
        return None
    return float(np.average(values, weights=weights))


def class_section(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    target: str,
    views: dict[str, ColumnView],
    limits: EvaluationLimits,
    seed: int,
    progress: Callable[[float, str], None] = no_progress,
    holdout: pd.DataFrame | None = None,
    utility: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Class shares, fidelity within each class of `target` and minority-class utility (see the module).

    `utility` is the data of the utility section (its models' holdout predictions are scored again
    for the minority classes); without it, or when it holds no predictions, utility is not scored.
    """
    if target not in views or target not in synthetic.columns:
        raise NotScorable(f"the target '{target}' is not a modelled column present in every table")
    tview = views[target]
    if tview.kind != "categorical" and schema.columns[target].values is None:
        raise NotScorable(f"the target '{target}' is not categorical: it has no classes to compare")
    rng = section_rng(seed, "classes")
    real_s = sample_rows(train, limits.fidelity_rows, rng)
    syn_s = sample_rows(synthetic, limits.fidelity_rows, rng)
    hold_s = sample_rows(holdout, limits.fidelity_rows, rng) if holdout is not None and len(holdout) else None
    labels = tview.labels()
    ry, sy = tview.codes(real_s[target]), tview.codes(syn_s[target])
    hy = tview.codes(hold_s[target]) if hold_s is not None else None
    notes: list[str] = []
    real_counts = np.bincount(ry[ry != tview.null_code], minlength=tview.size)
    syn_counts = np.bincount(sy[sy != tview.null_code], minlength=tview.size)
    if real_counts.sum() == 0:
        raise NotScorable(f"no real training row has a value of '{target}'")
    present = [int(c) for c in np.flatnonzero(real_counts)]
    majority = int(np.argmax(real_counts))
    minority = [c for c in present if c != majority]
    extra = [labels[c] for c in np.flatnonzero(syn_counts) if real_counts[c] == 0]
    if extra:
        notes.append(f"released classes with no real training row, not scored: {', '.join(extra)}")
    if (ry == tview.null_code).any() or (sy == tview.null_code).any():
        notes.append(f"rows with no value of '{target}' are left out of the class-wise comparison")

    names = [n for n in views if n != target and n in synthetic.columns]
    sizes = {n: views[n].size for n in names}
    pairs = sample_pairs(names, limits.max_pairs, seed)
    rc = {n: views[n].codes(real_s[n]) for n in names}
    sc = {n: views[n].codes(syn_s[n]) for n in names}
    hc = {n: views[n].codes(hold_s[n]) for n in names} if hold_s is not None else None

    classes: list[dict[str, Any]] = []
    for i, c in enumerate(present):
        entry: dict[str, Any] = {
            "class": labels[c],
            "minority": c in minority,
            "real_rows": int(real_counts[c]),
            "real_share": float(real_counts[c] / real_counts.sum()),
            "released_rows": int(syn_counts[c]),
            "released_share": float(syn_counts[c] / syn_counts.sum()) if syn_counts.sum() else None,
        }
        real_rows = {n: x[ry == c] for n, x in rc.items()}
        if syn_counts[c] == 0:
            entry.update({"fidelity_score": 0.0, "mean_one_way_tvd": None, "mean_two_way_tvd": None})
            notes.append(f"class '{labels[c]}' has real rows and no released row: it scores 0")
        elif names:
            entry.update(_fidelity(real_rows, {n: x[sy == c] for n, x in sc.items()}, sizes, pairs))
        else:
            entry.update({"fidelity_score": None, "mean_one_way_tvd": None, "mean_two_way_tvd": None})
        entry["holdout_reference"] = None
        if hc is not None and hy is not None and names and (hy == c).any():
            entry["holdout_reference"] = _fidelity(real_rows, {n: x[hy == c] for n, x in hc.items()}, sizes, pairs)[
                "fidelity_score"
            ]
        entry["holdout_rows"] = int((hy == c).sum()) if hy is not None else None
        classes.append(entry)
        progress(0.8 * (i + 1) / len(present), f"class {labels[c]} compared")

    scored = [e for e in classes if e["fidelity_score"] is not None]
    refs = [e["holdout_reference"] for e in classes if e["holdout_reference"] is not None]
    out: dict[str, Any] = {
        "target": target,
        "majority_class": labels[majority],
        "minority_classes": [labels[c] for c in minority],
        "classes": classes,
        "weighting": WEIGHTING,
        "classwise_fidelity_score": _mean([e["fidelity_score"] for e in scored]),
        "classwise_fidelity_score_real_weighted": _mean(
            [e["fidelity_score"] for e in scored], [e["real_share"] for e in scored]
        ),
        "classwise_fidelity_holdout_reference": _mean(refs) if len(refs) == len(classes) else None,
        "class_shares_note": "the class shares differ from the real ones by design of the rebalancing: "
        "reported, not scored",
        "rows_compared": {
            "real": len(real_s),
            "synthetic": len(syn_s),
            "holdout": len(hold_s) if hold_s is not None else 0,
        },
    }
    try:
        out["utility"] = minority_scores(utility, labels, minority, rng=rng)
    except NotScorable as exc:
        out["utility"] = {"not_scored": str(exc)}
    out["notes"] = notes + out["utility"].pop("notes", [])
    progress(1.0, "class-wise comparison done")
    return out


def _f1_bootstrap(
    y: np.ndarray, tstr: np.ndarray, trtr: np.ndarray, classes: list[int], rng: np.random.Generator
) -> dict[str, float | None]:
    """Paired bootstrap standard errors of TSTR's and TRTR's minority F1 (macro over `classes`, 0 where a
    class has no true or predicted row, as scikit-learn's zero_division=0) and of their ratio."""
    weights = rng.multinomial(y.size, np.full(y.size, 1.0 / y.size), size=BOOTSTRAP).astype(float)

    def f1(pred: np.ndarray) -> np.ndarray:
        per_class = []
        for c in classes:
            tp = weights @ ((y == c) & (pred == c))
            wrong = weights @ ((y == c) != (pred == c))  # false positives and false negatives
            denominator = 2 * tp + wrong
            per_class.append(np.divide(2 * tp, denominator, out=np.zeros(BOOTSTRAP), where=denominator > 0))
        return np.mean(per_class, axis=0)

    a, b = f1(np.asarray(tstr)), f1(np.asarray(trtr))
    ok = b > 0
    return {
        "tstr_minority_f1": float(np.std(a, ddof=1)),
        "trtr_minority_f1": float(np.std(b, ddof=1)),
        # resamples where TRTR's F1 is 0 have no ratio; None when most have none
        "minority_f1_ratio": float(np.std(a[ok] / b[ok], ddof=1)) if ok.sum() > BOOTSTRAP // 2 else None,
        "method": f"paired bootstrap of the holdout rows, {BOOTSTRAP} resamples",
    }


def minority_scores(
    utility: dict[str, Any] | None,
    labels: list[str],
    minority: list[int],
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """Minority-class F1, recall and balanced accuracy of the utility section's models, TSTR vs TRTR,
    with bootstrap standard errors of the primary model's F1 figures (seeded by `rng`)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

    from evaluation._common import quiet_warnings

    if not utility:
        raise NotScorable("the utility section was not computed")
    preds = utility.get("_predictions")
    if not preds or not preds.get("by_model"):
        raise NotScorable("the utility section holds no classification predictions")
    if not minority:
        raise NotScorable("the real training rows hold a single class: there is no minority class")
    y = np.asarray(preds["y_true"])
    in_holdout = [c for c in minority if (y == c).any()]
    if not in_holdout:
        raise NotScorable("no minority class occurs in the real holdout")
    if len(in_holdout) < len(minority):
        missing = [labels[c] for c in minority if c not in in_holdout]
        notes = [f"minority classes absent from the holdout, not scored: {', '.join(missing)}"]
    else:
        notes = []
    models: dict[str, Any] = {}
    for model, by_setting in preds["by_model"].items():
        scores: dict[str, Any] = {}
        for setting, pred in by_setting.items():
            pred = np.asarray(pred)
            with quiet_warnings():
                p, r, f, _ = precision_recall_fscore_support(y, pred, labels=in_holdout, zero_division=0.0)
                scores[setting] = {
                    "minority_f1": float(f1_score(y, pred, labels=in_holdout, average="macro", zero_division=0.0)),
                    "minority_recall": float(np.mean(r)),
                    "minority_precision": float(np.mean(p)),
                    "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
                    "by_class": {
                        labels[c]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i])}
                        for i, c in enumerate(in_holdout)
                    },
                }
        ratios = {}
        for name in ("minority_f1", "minority_recall", "balanced_accuracy"):
            trtr = scores["trtr"][name]
            ratios[name] = scores["tstr"][name] / trtr if trtr > 0 else None
        models[model] = {**scores, "ratio": ratios}
    primary = utility.get("primary_model")
    head = models.get(primary) or next(iter(models.values()))
    if head["ratio"]["minority_f1"] is None:
        notes.append(
            "the minority-class F1 ratio is undefined: the model trained on real rows never predicts a "
            "minority class correctly"
        )
    head_model = primary if primary in models else next(iter(models))
    by_setting = preds["by_model"][head_model]
    standard_error = _f1_bootstrap(
        y, by_setting["tstr"], by_setting["trtr"], in_holdout, rng if rng is not None else np.random.default_rng(0)
    )
    return {
        "minority_classes": [labels[c] for c in in_holdout],
        "primary_model": primary,
        "minority_f1_ratio_se": standard_error["minority_f1_ratio"],
        "standard_error": standard_error,
        "judged": "minority_f1",
        "minority_f1_ratio": head["ratio"]["minority_f1"],
        "minority_recall_ratio": head["ratio"]["minority_recall"],
        "balanced_accuracy_ratio": head["ratio"]["balanced_accuracy"],
        "tstr_minority_f1": head["tstr"]["minority_f1"],
        "trtr_minority_f1": head["trtr"]["minority_f1"],
        "tstr_minority_recall": head["tstr"]["minority_recall"],
        "trtr_minority_recall": head["trtr"]["minority_recall"],
        "models": models,
        "holdout_rows": int(y.size),
        "notes": notes,
    }

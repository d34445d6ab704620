"""Privacy risk of a synthetic table, measured against the real rows.

Internal, steward only: every figure here reads real rows.

* Exact matches: synthetic rows identical to a training row (and, for
  comparison, to a holdout row) on every modelled column, over all rows.
* Distance to closest record (DCR) on a mixed-type distance whose scaling comes
  from the public schema (`MixedDistanceEncoder`): for a sample of synthetic
  rows, the distance to the closest row of a training sample and of a holdout
  sample of the same size. The share of synthetic rows closer to training than
  to holdout is about 0.5 when the generator did not memorise its training
  rows (ties count half). Because the training sample has the holdout's size,
  a generator that copies its whole training table scores
  h/t + (1 - h/t)/2 (0.625 with a 20% holdout), not 1: the exact-match rate and
  the membership attacks are the figures that expose copying outright.
* Membership inference, two attacks, each scored by the AUC of telling
  training rows (members) from holdout rows (non-members):
  - distance: a real row closer to the synthetic rows is guessed a member;
  - classifier: a shadow model of the generator's density, a gradient-boosted
    classifier trained to tell synthetic rows from reference real rows (one
    half of the holdout); rows it finds synthetic-like are guessed members
    (the LOGAN / DOMIAS family of attacks on synthetic data). A full
    shadow-generator attack would have to retrain the synthesizer and is out of
    reach of an evaluation that only sees its output.
  `membership_auc` in the summary is the strongest of the two, folded around
  0.5 (an attack that is reliably wrong is as informative as one that is
  reliably right).
* Attribute inference: for each declared sensitive column, a model trained on
  the synthetic rows predicts it from the quasi-identifiers; its accuracy on
  training rows against holdout rows (the advantage) shows what the release
  reveals about the people in the training data beyond the population.

Nearest-neighbour search: a KD-tree (scikit-learn's) for low-dimensional rows;
for one-hot rows, brute force by a float32 matrix product whose candidates are
measured again in float64 (`nearest_sq_distances_brute`: the exact distance,
at about half the cost of scikit-learn's float64 brute force; a KD-tree or a
ball tree is slower still at 116 dimensions). Rows that differ in a category
are at least 1 apart, so a query first searches the rows of its own joint
category on a few columns (`category_groups`) and only a query left at 1 or
more searches them all (`nearest_sq_distances_grouped`). Every distance is the
float64 sum((q - r)^2) of the closest row: the speedups change no figure.
Sample sizes are capped by `EvaluationLimits` and shrunk so that one search
does at most `distance_work` row-pair-dimension steps; the report lists the
sizes used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluation._common import EvaluationLimits, no_progress, quiet_warnings, sample_rows, section_rng
from evaluation._tables import ColumnView, MixedDistanceEncoder, model_matrix, table_views
from evaluation.kernels import NotScorable
from evaluation.nearest import (
    category_groups,
    group_labels,
    nearest_distances,
    nearest_sq_distances_brute,
    nearest_sq_distances_grouped,
)
from evaluation.utility import is_classification
from privacy.schema import PublicSchema

__all__ = [
    "ANONYMETER_STATUS",
    "dcr_share_closer_to_train",
    "exact_match_rate",
    "membership_auc_classifier",
    "membership_auc_distance",
    "nearest_distances",
    "nearest_sq_distances_brute",
    "nearest_sq_distances_grouped",
    "privacy_section",
    "row_hashes",
]

logger = logging.getLogger(__name__)

ANONYMETER_STATUS = {
    "status": "skipped",
    "reason": "Anonymeter is not part of this service: anonymeter 1.1.0 on PyPI requires numpy < 2 and "
    "pyarrow < 22, which conflict with the service's pinned numpy 2.4.6 and pyarrow 26.0.1. Its "
    "singling-out, linkability and inference risks are not computed; the membership and "
    "attribute-inference attacks above cover the same questions.",
}

MIN_TARGETS = 10
ATTRIBUTE_STANDARD_ERRORS = (
    "of an advantage (accuracy on training rows minus accuracy on holdout rows), over the attacked rows: "
    "the two accuracies' standard errors (standard deviation of the hits / sqrt(rows)) added in quadrature, "
    "the model and the synthetic rows it learnt from held fixed; of the headline advantage, that of the "
    "column that gives it"
)


def row_hashes(df: pd.DataFrame, views: dict[str, ColumnView]) -> np.ndarray:
    """A 64-bit hash per row over every modelled column (exact values, not bins)."""
    h = np.zeros(len(df), dtype=np.uint64)
    for name, view in views.items():
        if view.kind == "categorical":
            col = view.codes(df[name]).astype(np.int64)
        else:
            x = view.numeric(df[name]) + 0.0  # -0.0 and 0.0 hash alike
            col = np.where(np.isnan(x), np.inf, x)
        h = (h * np.uint64(1_000_003)) ^ pd.util.hash_array(col)
    return h


def is_in(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """`np.isin(values, pool)` through a hash table (pandas): the same answer, without sorting both arrays
    (on 1,000,000 row hashes against 800,000, 0.05 s instead of 0.8 s)."""
    return pd.Series(values, copy=False).isin(pool).to_numpy(dtype=bool)


def _auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(member_scores.size), np.zeros(nonmember_scores.size)]
    return float(roc_auc_score(y, np.r_[member_scores, nonmember_scores]))


def auc_standard_error(auc: float, members: int, nonmembers: int) -> float | None:
    """Hanley and McNeil's (1982) standard error of an AUC from `members` and `nonmembers` scored rows:
    the sampling error of the attacked rows (the attack's own training rows held fixed)."""
    if members < 2 or nonmembers < 2 or not np.isfinite(auc):
        return None
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (members - 1) * (q1 - auc * auc) + (nonmembers - 1) * (q2 - auc * auc)) / (
        members * nonmembers
    )
    return float(np.sqrt(max(var, 0.0)))


def quantile_standard_error(sorted_values: np.ndarray, q: float) -> float | None:
    """A distribution-free standard error of the q-quantile of a sample: half the width of the order
    statistics' 95% interval (binomial ranks n q -/+ 1.96 sqrt(n q (1 - q))), divided by 1.96."""
    n = sorted_values.size
    if n < 2:
        return None
    half = 1.96 * np.sqrt(n * q * (1 - q))
    lo = int(np.clip(np.floor(n * q - half), 0, n - 1))
    hi = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    return float((sorted_values[hi] - sorted_values[lo]) / (2 * 1.96))


class _Context:
    """Samples, encodings and hashes shared by the attacks."""

    def __init__(
        self,
        train: pd.DataFrame,
        holdout: pd.DataFrame,
        synthetic: pd.DataFrame,
        views: dict[str, ColumnView],
        limits: EvaluationLimits,
        seed: int,
    ) -> None:
        if len(train) == 0 or len(holdout) == 0 or len(synthetic) == 0:
            raise NotScorable("the training, holdout and synthetic tables must all have rows")
        self.views = {n: v for n, v in views.items() if n in synthetic.columns}
        if not self.views:
            raise NotScorable("no modelled column is present in every table")
        self.limits = limits
        self.seed = seed
        self.rng = section_rng(seed, "privacy")
        self.encoder = MixedDistanceEncoder(self.views)
        self.dimensions = sum(1 if v.kind == "numeric" else v.size for v in self.views.values())
        self.train, self.holdout, self.synthetic = train, holdout, synthetic
        self._synthetic_hashes: np.ndarray | None = None
        order = self.rng.permutation(len(holdout))
        half = len(holdout) // 2
        self.holdout_reference = holdout.iloc[np.sort(order[:half])]
        self.holdout_targets = holdout.iloc[np.sort(order[half:])]
        n_targets = min(len(self.holdout_targets), len(train), limits.membership_targets)
        self.members = sample_rows(train, n_targets, self.rng)
        self.nonmembers = sample_rows(self.holdout_targets, n_targets, self.rng)

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.encoder.transform(df), row_hashes(df, self.views)

    @property
    def synthetic_hashes(self) -> np.ndarray:
        if self._synthetic_hashes is None:
            self._synthetic_hashes = row_hashes(self.synthetic, self.views)
        return self._synthetic_hashes

    def query_budget(self, n_queries: int, n_reference: int) -> int:
        """Shrink a query count so one search stays within the work cap."""
        cap = int(self.limits.distance_work / max(n_reference * max(self.dimensions, 1), 1))
        return max(min(n_queries, cap), min(n_queries, 500))


def _exact_matches(ctx: _Context) -> dict[str, Any]:
    syn = ctx.synthetic_hashes
    to_train = is_in(syn, row_hashes(ctx.train, ctx.views))
    to_holdout = is_in(syn, row_hashes(ctx.holdout, ctx.views))
    return {
        "rate_train": float(to_train.mean()),
        "rate_holdout": float(to_holdout.mean()),
        "synthetic_rows": int(syn.size),
        "note": "over all rows, on every modelled column",
    }


def _dcr(ctx: _Context) -> dict[str, Any]:
    n_ref = min(len(ctx.train), len(ctx.holdout), ctx.limits.dcr_reference_rows)
    train_ref = sample_rows(ctx.train, n_ref, ctx.rng)
    holdout_ref = sample_rows(ctx.holdout, n_ref, ctx.rng)
    n_q = ctx.query_budget(min(len(ctx.synthetic), ctx.limits.dcr_synthetic_rows), n_ref)
    queries = sample_rows(ctx.synthetic, n_q, ctx.rng)
    if len(queries) > ctx.limits.dcr_searched_rows:  # its own generator: the attacks' draws stay as they were
        queries = sample_rows(queries, ctx.limits.dcr_searched_rows, section_rng(ctx.seed, "dcr"))
        n_q = len(queries)
    Xq, hq = ctx.encode(queries)
    Xt, ht = ctx.encode(train_ref)
    Xh, hh = ctx.encode(holdout_ref)
    columns = category_groups(ctx.views, train_ref)
    gq = group_labels(ctx.views, columns, queries)
    d_train = nearest_distances(Xt, Xq, is_in(hq, ht), (group_labels(ctx.views, columns, train_ref), gq))
    d_holdout = nearest_distances(Xh, Xq, is_in(hq, hh), (group_labels(ctx.views, columns, holdout_ref), gq))
    closer = (d_train < d_holdout) + 0.5 * (d_train == d_holdout)
    share = float(np.mean(d_train < d_holdout) + 0.5 * np.mean(d_train == d_holdout))
    sorted_train, sorted_holdout = np.sort(d_train), np.sort(d_holdout)
    return {
        "share_closer_to_train": share,
        "share_closer_to_train_se": _mean_standard_error(closer),
        "ideal": 0.5,
        "p5_train": float(np.percentile(d_train, 5)),
        "p5_train_se": quantile_standard_error(sorted_train, 0.05),
        "p5_holdout": float(np.percentile(d_holdout, 5)),
        "p5_holdout_se": quantile_standard_error(sorted_holdout, 0.05),
        "median_train": float(np.median(d_train)),
        "median_train_se": quantile_standard_error(sorted_train, 0.5),
        "median_holdout": float(np.median(d_holdout)),
        "median_holdout_se": quantile_standard_error(sorted_holdout, 0.5),
        "zero_distance_share_train": float(np.mean(d_train == 0)),
        "zero_distance_share_train_se": _mean_standard_error(d_train == 0),
        "zero_distance_share_holdout": float(np.mean(d_holdout == 0)),
        "zero_distance_share_holdout_se": _mean_standard_error(d_holdout == 0),
        "standard_errors": "over the synthetic rows searched (the reference samples held fixed): of a share, "
        "the standard deviation of its rows' terms / sqrt(rows); of a percentile, from the binomial ranks "
        "of its order statistics",
        "synthetic_rows_searched": int(n_q),
        "reference_rows_each": int(n_ref),
        "dimensions": int(Xq.shape[1]),
        "_distances": (d_train, d_holdout),
    }


def _mean_standard_error(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size >= 2 else None


def _membership_distance(ctx: _Context) -> dict[str, Any]:
    if len(ctx.members) < MIN_TARGETS:
        raise NotScorable(f"fewer than {MIN_TARGETS} holdout rows to attack")
    n_syn = min(len(ctx.synthetic), ctx.limits.membership_synthetic_rows)
    n_syn = max(ctx.query_budget(n_syn, len(ctx.members) + len(ctx.nonmembers)), min(n_syn, 5_000))
    ref = sample_rows(ctx.synthetic, n_syn, ctx.rng)
    Xs = ctx.encoder.transform(ref)
    Xm, hm = ctx.encode(ctx.members)
    Xn, hn = ctx.encode(ctx.nonmembers)
    # a target with an identical synthetic row anywhere in the table is at distance 0, sampled or not;
    # members and non-members are searched together (one pass over the synthetic rows)
    columns = category_groups(ctx.views, ref)
    groups = (
        group_labels(ctx.views, columns, ref),
        np.r_[group_labels(ctx.views, columns, ctx.members), group_labels(ctx.views, columns, ctx.nonmembers)],
    )
    d = nearest_distances(Xs, np.vstack([Xm, Xn]), is_in(np.r_[hm, hn], ctx.synthetic_hashes), groups)
    dm, dn = d[: len(Xm)], d[len(Xm) :]
    auc = _auc(-dm, -dn)
    return {
        "auc": auc,
        "auc_se": auc_standard_error(auc, len(dm), len(dn)),
        "members": len(dm),
        "nonmembers": len(dn),
        "synthetic_rows_searched": n_syn,
    }


def _membership_classifier(ctx: _Context) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(ctx.members) < MIN_TARGETS or len(ctx.holdout_reference) < MIN_TARGETS:
        raise NotScorable(f"fewer than {MIN_TARGETS} holdout rows to attack")
    n_syn = min(len(ctx.synthetic), max(4 * len(ctx.holdout_reference), 2_000), 20_000)
    syn = sample_rows(ctx.synthetic, n_syn, ctx.rng)
    ref = sample_rows(ctx.holdout_reference, 20_000, ctx.rng)
    Xs, is_cat, n_cats = model_matrix(ctx.views, syn)
    Xr, _, _ = model_matrix(ctx.views, ref)
    native = [bool(c and n <= 250) for c, n in zip(is_cat, n_cats, strict=True)]
    model = HistGradientBoostingClassifier(
        max_iter=100,
        class_weight="balanced",
        random_state=ctx.seed % 2**32,
        categorical_features=native if any(native) else None,
    )
    with quiet_warnings():
        model.fit(np.vstack([Xs, Xr]), np.r_[np.ones(len(Xs)), np.zeros(len(Xr))])
    pm = model.predict_proba(model_matrix(ctx.views, ctx.members)[0])[:, 1]
    pn = model.predict_proba(model_matrix(ctx.views, ctx.nonmembers)[0])[:, 1]
    auc = _auc(pm, pn)
    return {
        "auc": auc,
        "auc_se": auc_standard_error(auc, len(pm), len(pn)),
        "members": len(pm),
        "nonmembers": len(pn),
        "synthetic_rows_trained": len(Xs),
        "reference_rows_trained": len(Xr),
    }


def _attribute_inference(ctx: _Context, schema: PublicSchema) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    qis = [q for q in schema.quasi_identifiers if q in ctx.views]
    sensitive = [s for s in schema.sensitive if s in ctx.views][: ctx.limits.max_sensitive]
    if not sensitive:
        raise NotScorable("the schema declares no sensitive column")
    out: dict[str, Any] = {}
    n_t = min(ctx.limits.attribute_targets, len(ctx.holdout), len(ctx.train))
    members = sample_rows(ctx.train, n_t, ctx.rng)
    nonmembers = sample_rows(ctx.holdout, n_t, ctx.rng)
    syn = sample_rows(ctx.synthetic, ctx.limits.attribute_train_rows, ctx.rng)
    for s in sensitive:
        feats = {q: ctx.views[q] for q in qis if q != s}
        if not feats:
            out[s] = {"value": None, "not_scored": "no quasi-identifier to infer it from"}
            continue
        if n_t < MIN_TARGETS:
            out[s] = {"value": None, "not_scored": f"fewer than {MIN_TARGETS} holdout rows to attack"}
            continue
        view = ctx.views[s]
        Xs, is_cat, n_cats = model_matrix(feats, syn)
        native = [bool(c and n <= 250) for c, n in zip(is_cat, n_cats, strict=True)]
        cats = native if any(native) else None
        Xm = model_matrix(feats, members)[0]
        Xn = model_matrix(feats, nonmembers)[0]
        if is_classification(view):
            ys, ym, yn = view.codes(syn[s]), view.codes(members[s]), view.codes(nonmembers[s])
            if np.unique(ys).size < 2:
                pm = np.full(len(ym), ys[0])
                pn = np.full(len(yn), ys[0])
            else:
                model = HistGradientBoostingClassifier(
                    max_iter=100, categorical_features=cats, random_state=ctx.seed % 2**32
                )
                with quiet_warnings():
                    model.fit(Xs, ys)
                pm, pn = model.predict(Xm), model.predict(Xn)
            hit_m, hit_n = pm == ym, pn == yn
            baseline = float(np.mean(yn == np.bincount(ys).argmax()))
            measure = "accuracy"
        else:
            ys, ym, yn = view.numeric(syn[s]), view.numeric(members[s]), view.numeric(nonmembers[s])
            ok = np.isfinite(ys)
            if ok.sum() < 2:
                out[s] = {"value": None, "not_scored": "the synthetic column has fewer than 2 values"}
                continue
            model = HistGradientBoostingRegressor(
                max_iter=100, categorical_features=cats, random_state=ctx.seed % 2**32
            )
            with quiet_warnings():
                model.fit(Xs[ok], ys[ok])
            tolerance = 0.05 * (view.hi - view.lo if view.hi > view.lo else 1.0)
            fm, fn = np.isfinite(ym), np.isfinite(yn)
            hit_m = np.abs(model.predict(Xm[fm]) - ym[fm]) <= tolerance
            hit_n = np.abs(model.predict(Xn[fn]) - yn[fn]) <= tolerance
            baseline = float(np.mean(np.abs(np.median(ys[ok]) - yn[fn]) <= tolerance)) if fn.any() else None
            measure = "share of predictions within 5% of the column's range"
        acc_m = float(np.mean(hit_m)) if hit_m.size else None
        acc_n = float(np.mean(hit_n)) if hit_n.size else None
        out[s] = {
            "value": acc_m - acc_n if acc_m is not None and acc_n is not None else None,
            # the difference of two independent accuracies: over the attacked rows, the model held fixed
            "value_se": _difference_standard_error(hit_m, hit_n),
            "measure": measure,
            "accuracy_members": acc_m,
            "accuracy_nonmembers": acc_n,
            "baseline_nonmembers": baseline,
            "from": list(feats),
            "targets_each": n_t,
        }
    return out


def _difference_standard_error(hit_m: np.ndarray, hit_n: np.ndarray) -> float | None:
    se_m, se_n = _mean_standard_error(hit_m), _mean_standard_error(hit_n)
    return float(np.hypot(se_m, se_n)) if se_m is not None and se_n is not None else None


def _run(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except NotScorable as exc:
        return {"not_scored": str(exc)}


def privacy_section(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    views: dict[str, ColumnView],
    limits: EvaluationLimits,
    seed: int,
    progress: Callable[[float, str], None] = no_progress,
) -> dict[str, Any]:
    """Every privacy-risk figure of the report."""
    ctx = _Context(train, holdout, synthetic, views, limits, seed)
    exact = _exact_matches(ctx)
    progress(0.15, "exact matches")
    dcr = _run("dcr", lambda: _dcr(ctx))
    progress(0.45, "distance to closest record")
    mia_distance = _run("membership_distance", lambda: _membership_distance(ctx))
    progress(0.6, "distance membership attack")
    mia_classifier = _run("membership_classifier", lambda: _membership_classifier(ctx))
    progress(0.8, "classifier membership attack")
    attribute = _run("attribute_inference", lambda: _attribute_inference(ctx, schema))
    progress(1.0, "privacy risk done")
    attacks = [r for r in (mia_distance, mia_classifier) if r.get("auc") is not None]
    strongest = max(attacks, key=lambda r: max(r["auc"], 1.0 - r["auc"]), default=None)
    folded = max(strongest["auc"], 1.0 - strongest["auc"]) if strongest else None
    advantages = (
        [
            (r["value"], r.get("value_se"))
            for r in attribute.values()
            if isinstance(r, dict) and r.get("value") is not None
        ]
        if "not_scored" not in attribute
        else []
    )
    strongest_column = max(advantages, key=lambda a: a[0], default=None)
    return {
        "exact_match": exact,
        "dcr": dcr,
        "membership_inference": {
            "distance": mia_distance,
            "classifier": mia_classifier,
            "membership_auc": folded,
            "membership_auc_se": strongest.get("auc_se") if strongest else None,
            "definition": "the strongest attack's AUC folded around 0.5: max(AUC, 1 - AUC)",
            "standard_errors": "Hanley and McNeil's, over the attacked rows (members and non-members); "
            "the attack's training rows held fixed",
        },
        "attribute_inference": attribute,
        "attribute_inference_advantage": strongest_column[0] if strongest_column else None,
        "attribute_inference_advantage_se": strongest_column[1] if strongest_column else None,
        "attribute_inference_standard_errors": ATTRIBUTE_STANDARD_ERRORS,
        "anonymeter": dict(ANONYMETER_STATUS),
    }


# ---------------------------------------------------------------------------------
# registry entry points: pure functions of (train, holdout, synthetic, schema)
# ---------------------------------------------------------------------------------


def _context(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, seed: int
) -> _Context:
    views = table_views(schema, train, holdout, synthetic)
    return _Context(train, holdout, synthetic, views, EvaluationLimits(), seed)


def _value(result: dict[str, Any], key: str) -> float:
    if result.get(key) is None:
        raise NotScorable(result.get("not_scored", "not computed"))
    return float(result[key])


def exact_match_rate(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, seed: int = 0
) -> float:
    """Share of synthetic rows identical to a training row."""
    return _exact_matches(_context(train, holdout, synthetic, schema, seed))["rate_train"]


def dcr_share_closer_to_train(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, seed: int = 0
) -> float:
    """Share of synthetic rows closer to a training row than to a holdout row (equal-size samples)."""
    return _value(_dcr(_context(train, holdout, synthetic, schema, seed)), "share_closer_to_train")


def membership_auc_distance(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, seed: int = 0
) -> float:
    """AUC of the distance-based membership attack."""
    return _value(_membership_distance(_context(train, holdout, synthetic, schema, seed)), "auc")


def membership_auc_classifier(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, seed: int = 0
) -> float:
    """AUC of the classifier (shadow density model) membership attack."""
    return _value(_membership_classifier(_context(train, holdout, synthetic, schema, seed)), "auc")

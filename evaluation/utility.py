"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

Internal: both are scored on the real holdout. Two models, each in a
scikit-learn pipeline: a linear one (logistic regression, or ridge for a
numeric target) and HistGradientBoosting. The headline is the ratio of the
primary score TSTR / TRTR for HistGradientBoosting; the primary score is the
Gini coefficient 2 * AUC - 1 for classification (skill above chance, so a
useless model scores 0 rather than 0.5) and R2 for regression.

Training rows. TSTR trains on the synthetic rows and TRTR on the real
training rows, each at most `model_train_rows` (`EvaluationLimits`, 50,000),
drawn with the section's seeded generator. Equal training sizes were tried
(the smaller of the two tables for both): on adult (MST, epsilon 1, 39,100
training rows, five draws per size) the spread of the HistGradientBoosting
ratio over the draws was 0.043 at 10,000 rows, 0.027 at 20,000 and 0.013 at
39,100, against a holdout standard error of about 0.010, so a lower cap would
save about 0.5 s of CPU of a report of about 12 s at the cost of a spread
larger than the error stated; the figures stay those of the full draw.

Standard errors (`standard_error` per model, `*_se` for the headline). Each
primary score, the gap and the ratio come with the standard error the holdout
rows give them: DeLong's for ROC AUC (and Gini = 2 AUC - 1), the delta method
for R2, and for the gap and the ratio the delta method with the covariance of
TSTR and TRTR, which are scored on the same rows. They do not include the
variation from the training rows drawn or from the model's own randomness
(HistGradientBoosting's early-stopping split): on adult, TSTR Gini moved with
the model's seed alone by a standard deviation of 0.02, twice its holdout
error, so a difference of up to about 3 holdout standard errors between two
seeds is expected.

Training draw (`training_draw_se`, `standard_error_total`, `*_se_total`). Only when a training table is
larger than the cap, so that its rows are a random subsample, the section refits each model on a second,
independent subsample of the same size of that table (drawn with its own generator, so the first draw and
every other figure stay as they were) and with another model seed, and scores it on the same holdout
rows. Two independent draws differ by twice the variance of one, so (s1 - s2)^2 / 2 estimates the
variance the draw adds to each figure (primary scores, gap, ratio; a table not subsampled keeps its first
fit in the second figure); the second seed makes the difference cover HistGradientBoosting's
early-stopping split as well. The total is sqrt(holdout SE^2 + that variance). It has one degree of
freedom: unbiased over reports but rough in any one (a same-size refit was chosen over two half-size fits
because the spread need not scale as 1 / rows). A table within the cap gets no such fields: its draw is
the whole table, and its seed sensitivity is left unstated. On adult resampled to 1,000,000 rows against
MST's output (epsilon 1), both tables over the cap, the HistGradientBoosting ratio spread over six report
seeds by a standard deviation of 0.019, against a holdout standard error of 0.004 and a root mean square
total of 0.015; the draw of the synthetic rows was most of it (TRTR's draw error was at most 0.002).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluation._common import EvaluationLimits, no_progress, quiet_warnings, sample_rows, section_rng
from evaluation._tables import ColumnView, model_matrix
from evaluation.importance import _importance, predict, predict_proba
from evaluation.kernels import NotScorable
from privacy.schema import PublicSchema

__all__ = ["is_classification", "utility_section"]

logger = logging.getLogger(__name__)

MODELS = ("linear", "hist_gradient_boosting")
STANDARD_ERROR_METHOD = (
    "standard errors from the holdout rows the models are scored on: DeLong's for ROC AUC (Gini = 2 AUC - 1, "
    "the one-vs-rest macro mean for several classes), the delta method for R^2, and for the gap and the "
    "ratio TSTR / TRTR the delta method with the covariance of the two scores on the same rows; the "
    "variation from which training rows are drawn is not included"
)
TRAINING_DRAW_METHOD = (
    "the training-draw part (training_draw_se) is half the squared difference of each figure between the "
    "fits on the first and a second independent subsample of the same size, with another model seed, of "
    "each training table over the cap ({tables}); one degree of freedom; the totals (*_se_total, "
    "standard_error_total) add it to the holdout variance"
)
PRIMARY_MODEL = "hist_gradient_boosting"


def is_classification(view: ColumnView) -> bool:
    """Categorical targets and ordinals with declared levels are classified; numbers are regressed."""
    return view.spec.kind == "categorical" or view.spec.values is not None


def _pipeline(task: str, model: str, is_cat: list[bool], n_cats: list[int], seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num_idx = [i for i, c in enumerate(is_cat) if not c]
    cat_idx = [i for i, c in enumerate(is_cat) if c]
    if model == "linear":
        parts = []
        if num_idx:
            parts.append(
                (
                    "numeric",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                            ("scale", StandardScaler()),
                        ]
                    ),
                    num_idx,
                )
            )
        if cat_idx:
            categories = [np.arange(-1, n_cats[i], dtype=float) for i in cat_idx]
            parts.append(
                (
                    "categorical",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True)),
                            ("onehot", OneHotEncoder(categories=categories, handle_unknown="ignore")),
                        ]
                    ),
                    cat_idx,
                )
            )
        estimator = LogisticRegression(max_iter=300) if task == "classification" else Ridge(alpha=1.0)
        return Pipeline([("prepare", ColumnTransformer(parts)), ("model", estimator)])
    native = [bool(c and n <= 250) for c, n in zip(is_cat, n_cats, strict=True)]
    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    estimator = cls(max_iter=100, categorical_features=native if any(native) else None, random_state=seed % 2**32)
    return Pipeline([("model", estimator)])


def _fit(
    task: str,
    model: str,
    X: np.ndarray,
    y: np.ndarray,
    is_cat: list[bool],
    n_cats: list[int],
    seed: int,
    notes: list[str],
    label: str,
):
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "classification" and np.unique(y).size < 2:
        notes.append(f"{label}: the training rows hold a single class; a constant model stands in")
        return DummyClassifier(strategy="prior").fit(X, y)
    if task == "regression" and np.unique(y).size < 2:
        notes.append(f"{label}: the training target is constant; a constant model stands in")
        return DummyRegressor().fit(X, y)
    pipe = _pipeline(task, model, is_cat, n_cats, seed)
    with quiet_warnings() as caught:
        pipe.fit(X, y)
    if any("converge" in str(w.message).lower() for w in caught):
        notes.append(f"{label}: the solver stopped at its iteration limit before converging")
    return pipe


def _aligned_proba(model, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    proba = predict_proba(model, X)
    out = np.zeros((X.shape[0], classes.size))
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes_):
        if c in index:
            out[:, index[c]] = proba[:, j]
    return out


def _auc_influence(positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each holdout row's term in DeLong's variance of the ROC AUC of `score` for the rows `positive`.

    With v10 (for a positive row, the share of negative rows it outscores, ties half) and v01 (for a
    negative row, the share of positive rows that outscore it), row i's term is (v_i - AUC) / sqrt(m (m - 1))
    over the m rows of its class. The sum of squares is DeLong's variance S10 / m + S01 / n; the sum of the
    products of two estimators' terms is their covariance (DeLong, DeLong and Clarke-Pearson 1988), which
    is what pairs TSTR and TRTR, both scored on the same holdout rows.
    """
    from scipy.stats import rankdata

    pos = np.asarray(positive, dtype=bool)
    m, n = int(pos.sum()), int((~pos).sum())
    psi = np.zeros(pos.size)
    if m < 2 or n < 2:
        return psi
    ranks = rankdata(score)
    v10 = (ranks[pos] - rankdata(score[pos])) / n
    v01 = 1.0 - (ranks[~pos] - rankdata(score[~pos])) / m
    auc = v10.mean()
    psi[pos] = (v10 - auc) / np.sqrt(m * (m - 1))
    psi[~pos] = (v01 - auc) / np.sqrt(n * (n - 1))
    return psi


def _r2_influence(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each holdout row's term in the delta-method variance of R^2 = 1 - mean(e) / mean(d), with
    e = (y - pred)^2 and d = (y - mean y)^2: -(1/n) ((e_i - mean e) / mean d - mean e (d_i - mean d) / mean d^2)."""
    e = (y - pred) ** 2
    d = (y - y.mean()) ** 2
    n, md = y.size, d.mean()
    if n < 2 or md <= 0:
        return np.zeros(y.size)
    me = e.mean()
    return -((e - me) / md - me * (d - md) / md**2) / np.sqrt(n * (n - 1))


def _se(psi: np.ndarray | None) -> float | None:
    if psi is None:
        return None
    v = float(np.sqrt(np.sum(psi**2)))
    return v if np.isfinite(v) else None


def _standard_errors(
    tstr: float | None, trtr: float | None, psi_tstr: np.ndarray | None, psi_trtr: np.ndarray | None
) -> dict[str, float | None]:
    """Holdout standard errors of the primary scores, of their gap and (delta method) of their ratio.

    The two scores are computed on the same holdout rows, so their errors are correlated: the gap's and
    the ratio's terms are formed row by row from both scores' terms, which keeps the covariance.
    """
    if psi_tstr is None or psi_trtr is None or tstr is None or trtr is None:
        return {"tstr": None, "trtr": None, "gap": None, "ratio": None}
    ratio = _se(psi_tstr / trtr - tstr * psi_trtr / trtr**2) if trtr > 0 else None
    return {"tstr": _se(psi_tstr), "trtr": _se(psi_trtr), "gap": _se(psi_trtr - psi_tstr), "ratio": ratio}


def _figures(tstr: float | None, trtr: float | None) -> dict[str, float | None]:
    if tstr is None or trtr is None:
        return {"tstr": tstr, "trtr": trtr, "gap": None, "ratio": None}
    return {"tstr": tstr, "trtr": trtr, "gap": trtr - tstr, "ratio": tstr / trtr if trtr > 0 else None}


def _training_draw(
    first: dict[str, float | None], second: dict[str, float | None], holdout_se: dict[str, float | None]
) -> dict[str, dict[str, float | None]]:
    """The training draw's standard error of each figure, |f1 - f2| / sqrt(2) from two independent draws, and
    the total sqrt(holdout SE^2 + f_draw^2)."""
    a, b = _figures(first["tstr"], first["trtr"]), _figures(second["tstr"], second["trtr"])
    draw: dict[str, float | None] = {}
    total: dict[str, float | None] = {}
    for name, f1 in a.items():
        f2 = b[name]
        ok = f1 is not None and f2 is not None and np.isfinite(f1) and np.isfinite(f2)
        draw[name] = abs(f1 - f2) / np.sqrt(2.0) if ok else None  # type: ignore[operator]
        h = holdout_se.get(name)
        total[name] = float(np.hypot(h, draw[name])) if h is not None and draw[name] is not None else None
    return {"training_draw_se": draw, "standard_error_total": total}


def _classification_scores(model, X: np.ndarray, y: np.ndarray, classes: np.ndarray, positive: int) -> dict[str, Any]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score, roc_curve

    proba = _aligned_proba(model, X, classes)
    present = np.unique(y)
    with quiet_warnings():
        keep = np.isin(classes, present)
        p = proba[:, keep]  # probabilities of the classes the holdout holds, renormalised
        sums = p.sum(axis=1, keepdims=True)
        p = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / max(int(keep.sum()), 1))
        psi = None
        if present.size < 2:
            auc = float("nan")
        elif present.size == 2:
            pos = positive if positive in present else present[1]
            column = p[:, list(classes[keep]).index(pos)]
            auc = roc_auc_score(y == pos, column)
            psi = _auc_influence(y == pos, column)
        else:
            auc = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=classes[keep])
            # the macro average of one-vs-rest AUCs: the mean of their terms
            psi = np.mean([_auc_influence(y == c, p[:, i]) for i, c in enumerate(classes[keep])], axis=0)
        pred = classes[np.argmax(proba, axis=1)]
        bacc = balanced_accuracy_score(y, pred)
        f1 = f1_score(y, pred, labels=[positive], average="macro", zero_division=0.0)
        fpr, tpr, _ = (
            roc_curve(y == positive, proba[:, list(classes).index(positive)])
            if present.size >= 2
            else (np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)
        )
    auc = float(auc)
    return {
        "roc_auc": auc,
        "gini": 2 * auc - 1 if np.isfinite(auc) else None,
        "balanced_accuracy": float(bacc),
        "minority_f1": float(f1),
        "_roc": (fpr, tpr),
        "_pred": pred,
        "_psi": None if psi is None or not np.isfinite(auc) else 2 * psi,  # Gini = 2 AUC - 1
    }


def _regression_scores(model, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, r2_score

    pred = predict(model, X)
    return {
        "r2": float(r2_score(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "_psi": _r2_influence(np.asarray(y, dtype=float), np.asarray(pred, dtype=float)),
    }


def _rank_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    with quiet_warnings():
        rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else None


def utility_section(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    target: str,
    views: dict[str, ColumnView],
    limits: EvaluationLimits,
    seed: int,
    progress: Callable[[float, str], None] = no_progress,
) -> dict[str, Any]:
    """TSTR and TRTR scores on the real holdout, their gap and ratio, and importance agreement."""
    if target not in views:
        raise NotScorable(f"the target '{target}' is not a modelled column present in every table")
    tview = views[target]
    task = "classification" if is_classification(tview) else "regression"
    features = {n: v for n, v in views.items() if n != target}
    if not features:
        raise NotScorable("the target is the only column: there is nothing to predict it from")
    rng = section_rng(seed, "utility")
    notes: list[str] = []

    def xy(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        X, _, _ = model_matrix(features, df)
        if task == "classification":
            y = tview.codes(df[target])
            keep = y != tview.null_code
        else:
            y = tview.numeric(df[target])
            keep = np.isfinite(y)
        return X[keep], y[keep]

    X_syn, y_syn = xy(sample_rows(synthetic, limits.model_train_rows, rng))
    X_real, y_real = xy(sample_rows(train, limits.model_train_rows, rng))
    X_test, y_test = xy(sample_rows(holdout, limits.model_test_rows, rng))
    if len(y_real) < 10 or len(y_test) < 10:
        raise NotScorable("fewer than 10 training or holdout rows with a target value")
    if len(y_syn) == 0:
        raise NotScorable("no synthetic row has a target value")
    _, is_cat, n_cats = model_matrix(features, synthetic.head(1))
    # a second, independent draw of each training table over the cap, with its own generator and model seed
    draw_rng = section_rng(seed, "utility training draw")
    redrawn = {
        setting: xy(sample_rows(table, limits.model_train_rows, draw_rng))
        for setting, table in (("tstr", synthetic), ("trtr", train))
        if len(table) > limits.model_train_rows
    }
    redraw_seed = int(draw_rng.integers(2**32))

    classes = positive = None
    if task == "classification":
        classes = np.unique(np.concatenate([y_real, y_test, y_syn]))
        counts = pd.Series(y_real).value_counts()
        in_test = counts[counts.index.isin(np.unique(y_test))]
        positive = int((in_test if len(in_test) else counts).idxmin())  # the minority class
    labels = tview.labels()

    imp_idx = rng.choice(len(y_test), size=min(len(y_test), limits.importance_rows), replace=False)
    results: dict[str, Any] = {}
    rocs: dict[str, Any] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    for k, model in enumerate(MODELS):
        scores: dict[str, Any] = {}
        influence: dict[str, np.ndarray | None] = {}
        fitted = {}
        for j, (setting, X, y) in enumerate((("tstr", X_syn, y_syn), ("trtr", X_real, y_real))):
            m = _fit(task, model, X, y, is_cat, n_cats, seed, notes, f"{model} {setting.upper()}")
            fitted[setting] = m
            s = (
                _classification_scores(m, X_test, y_test, classes, positive)
                if task == "classification"
                else _regression_scores(m, X_test, y_test)
            )
            if "_roc" in s:
                rocs[f"{model}_{setting}"] = s.pop("_roc")
            if "_pred" in s:
                predictions.setdefault(model, {})[setting] = s.pop("_pred")
            influence[setting] = s.pop("_psi", None)
            scores[setting] = s
            progress((2 * k + j + 1) / (2 * len(MODELS) + 1), f"{model} {setting.upper()} scored")
        primary = "gini" if task == "classification" else "r2"
        tstr_p, trtr_p = scores["tstr"][primary], scores["trtr"][primary]
        gaps = {
            name: (scores["trtr"][name] - scores["tstr"][name])
            if scores["trtr"][name] is not None and scores["tstr"][name] is not None
            else None
            for name in scores["trtr"]
        }
        ratio = tstr_p / trtr_p if tstr_p is not None and trtr_p is not None and trtr_p > 0 else None
        if ratio is None:
            notes.append(f"{model}: the ratio is undefined (TRTR {primary} is not positive)")
        training_draw: dict[str, Any] = {}
        if redrawn:
            again: dict[str, float | None] = {"tstr": tstr_p, "trtr": trtr_p}
            for setting, (X2, y2) in redrawn.items():
                m2 = _fit(task, model, X2, y2, is_cat, n_cats, redraw_seed, [], "")
                s2 = (
                    _classification_scores(m2, X_test, y_test, classes, positive)
                    if task == "classification"
                    else _regression_scores(m2, X_test, y_test)
                )
                again[setting] = s2[primary]
            holdout_se = _standard_errors(tstr_p, trtr_p, influence["tstr"], influence["trtr"])
            training_draw = _training_draw({"tstr": tstr_p, "trtr": trtr_p}, again, holdout_se)
        imp_tstr = _importance(fitted["tstr"], X_test[imp_idx], y_test[imp_idx], task, seed)
        imp_trtr = _importance(fitted["trtr"], X_test[imp_idx], y_test[imp_idx], task, seed)
        results[model] = {
            **scores,
            "gap": gaps,
            "primary_score": primary,
            "ratio": ratio,
            "standard_error": _standard_errors(tstr_p, trtr_p, influence["tstr"], influence["trtr"]),
            "importance_rank_agreement": _rank_agreement(imp_tstr, imp_trtr),
            "importance": {"features": list(features), "tstr": imp_tstr.tolist(), "trtr": imp_trtr.tolist()},
            **training_draw,
        }
    progress(1.0, "utility done")
    primary_result = results[PRIMARY_MODEL]
    leakage = _leakage(primary_result, task, features, tview, train, target, rng, limits)
    if leakage["suspected"]:
        notes.append("utility is not measured: " + leakage["reason"])
    return {
        "target": target,
        "task": task,
        "positive_class": labels[positive] if positive is not None else None,
        "primary_model": PRIMARY_MODEL,
        "primary_score": primary_result["primary_score"],
        "utility_ratio": primary_result["ratio"],
        "tstr_score": primary_result["tstr"][primary_result["primary_score"]],
        "trtr_score": primary_result["trtr"][primary_result["primary_score"]],
        "utility_ratio_se": primary_result["standard_error"]["ratio"],
        "tstr_score_se": primary_result["standard_error"]["tstr"],
        "trtr_score_se": primary_result["standard_error"]["trtr"],
        "standard_error_method": STANDARD_ERROR_METHOD,
        **(_training_draw_summary(primary_result, redrawn) if redrawn else {}),
        "models": results,
        "rows": {
            "synthetic_train": len(y_syn),
            "real_train": len(y_real),
            "holdout_test": len(y_test),
            "importance": len(imp_idx),
            "training_cap": limits.model_train_rows,
        },
        "notes": notes,
        "leakage": leakage,
        "_roc": rocs,
        # holdout labels and each model's predictions, for the class-aware section (evaluation.classwise)
        "_predictions": {"y_true": y_test, "y_train_real": y_real, "y_train_synthetic": y_syn, "by_model": predictions}
        if task == "classification"
        else None,
    }


def _training_draw_summary(primary: dict[str, Any], redrawn: dict[str, Any]) -> dict[str, Any]:
    total = primary["standard_error_total"]
    tables = " and ".join({"tstr": "synthetic", "trtr": "real training"}[s] for s in redrawn)
    return {
        "utility_ratio_se_total": total["ratio"],
        "tstr_score_se_total": total["tstr"],
        "trtr_score_se_total": total["trtr"],
        "training_draw_se": primary["training_draw_se"],
        "training_draw_method": TRAINING_DRAW_METHOD.format(tables=tables),
    }


def _dense_labels(codes: np.ndarray) -> np.ndarray:
    """`np.unique(codes, return_inverse=True)[1]`: each code's rank among the codes present, counted
    instead of sorted for small non-negative integer codes."""
    codes = np.asarray(codes)
    if codes.size and codes.dtype.kind in "iu" and codes.min() >= 0 and codes.max() < 4 * codes.size + 1024:
        present = np.bincount(codes) > 0
        return (np.cumsum(present) - 1)[codes]
    return np.unique(codes, return_inverse=True)[1]


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-learn's normalized_mutual_info_score (arithmetic mean of the entropies) of two code arrays,
    counted with bincount instead of a sparse contingency matrix."""
    a, b = _dense_labels(a), _dense_labels(b)
    na, nb = int(a.max(initial=-1)) + 1, int(b.max(initial=-1)) + 1
    if na == nb == 1 or na == nb == 0:
        return 1.0  # one cluster each, or none: a perfect match, as scikit-learn says
    n = a.size
    joint = np.bincount(a.astype(np.int64) * nb + b, minlength=na * nb)
    cells = np.flatnonzero(joint)
    p = joint[cells] / n
    pa, pb = np.bincount(a) / n, np.bincount(b) / n
    mi = max(float(np.sum(p * (np.log(p) - np.log(pa[cells // nb]) - np.log(pb[cells % nb])))), 0.0)
    if mi == 0.0:
        return 0.0
    h = (-float(np.sum(pa * np.log(pa))) - float(np.sum(pb * np.log(pb)))) / 2
    return mi / max(h, float(np.finfo("float64").eps))


NEAR_PERFECT_AUC = 0.99
DUPLICATE_NMI = 0.95


def _leakage(
    primary: dict[str, Any],
    task: str,
    features: dict[str, ColumnView],
    tview: ColumnView,
    train: pd.DataFrame,
    target: str,
    rng: np.random.Generator,
    limits: EvaluationLimits,
) -> dict[str, Any]:
    """Whether the target leaks from the features, so that TSTR / TRTR says nothing of the synthetic data.

    Two signs: the model trained on real rows is near perfect on the holdout (ROC AUC above
    NEAR_PERFECT_AUC, or R^2 above it), or one feature nearly duplicates the target (normalised mutual
    information of their codes above DUPLICATE_NMI on the real training rows). Internal: real rows.
    """
    trtr = primary.get("trtr", {})
    score = trtr.get("roc_auc") if task == "classification" else trtr.get("r2")
    near_perfect = score is not None and np.isfinite(score) and score > NEAR_PERFECT_AUC
    rows = sample_rows(train, limits.model_train_rows, rng)
    y = tview.codes(rows[target])
    duplicates = []
    for name, view in features.items():
        nmi = _nmi(y, view.codes(rows[name]))
        if nmi > DUPLICATE_NMI:
            duplicates.append({"feature": name, "nmi": round(nmi, 4)})
    reasons = []
    if near_perfect:
        reasons.append(
            f"the model trained on real rows is near perfect on the holdout "
            f"({'ROC AUC' if task == 'classification' else 'R^2'} {score:.4f} > {NEAR_PERFECT_AUC})"
        )
    if duplicates:
        reasons.append(
            "the target is nearly a copy of " + ", ".join(f"'{d['feature']}' (NMI {d['nmi']})" for d in duplicates)
        )
    return {
        "suspected": bool(reasons),
        "near_perfect_trtr": bool(near_perfect),
        "duplicates": duplicates,
        "reason": "; ".join(reasons) + ("; remove the leaking feature(s) or choose another target" if reasons else ""),
    }

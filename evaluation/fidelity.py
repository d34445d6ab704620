"""Fidelity: does the synthetic table look like the real training table?

Internal: every figure here compares with real rows.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluation._common import EvaluationLimits, no_progress, quiet_warnings, sample_rows, section_rng
from evaluation._tables import ColumnView
from evaluation.fidelity_se import (
    STANDARD_ERRORS,
    fpc,
    mean_tvd_standard_error,
    score_standard_errors,
    tvd_standard_error,
)
from evaluation.kernels import (
    FIDELITY_SCORE_DEFINITION,
    Contingency,
    NotScorable,
    average_ranks,
    category_coverage,
    chi2_homogeneity_pvalue,
    counted_densely,
    fidelity_from_codes,
    joint_cells,
    ks_statistic,
    pearson_correlation,
    range_coverage,
    sample_pairs,
    tv_distance_counts,
)
from privacy.schema import PublicSchema

__all__ = ["association_matrix", "correlation_matrix", "fidelity_section", "sdmetrics_quality"]

logger = logging.getLogger(__name__)


def _scored(fn: Callable[[], float]) -> dict[str, Any]:
    try:
        return {"value": float(fn())}
    except NotScorable as exc:
        return {"value": None, "not_scored": str(exc)}


def _column_metrics(
    view: ColumnView, real: pd.Series, syn: pd.Series, rc: np.ndarray, sc: np.ndarray
) -> dict[str, Any]:
    rcount = np.bincount(rc, minlength=view.size)
    scount = np.bincount(sc, minlength=view.size)
    out: dict[str, Any] = {"kind": view.kind, "schema_kind": view.spec.kind}
    metrics: dict[str, dict[str, Any]] = {
        "tv_distance": _scored(lambda: tv_distance_counts(rcount, scount)),
        "null_rate_error": _scored(lambda: abs(float(real.isna().mean()) - float(syn.isna().mean()))),
    }
    if view.kind == "numeric":
        xr, xs = view.numeric(real), view.numeric(syn)
        metrics["ks_distance"] = _scored(lambda: ks_statistic(xr, xs))
        metrics["range_coverage_score"] = _scored(lambda: range_coverage(xr, xs))
    else:
        metrics["chi2_homogeneity_score"] = _scored(lambda: chi2_homogeneity_pvalue(rcount, scount))
        metrics["category_coverage_score"] = _scored(lambda: category_coverage(rc, sc, view.null_code))
    out["metrics"] = metrics
    out["null_rate_real"] = float(real.isna().mean())
    out["null_rate_synthetic"] = float(syn.isna().mean())
    out["histogram"] = {
        "labels": view.labels(),
        "real": (rcount / max(rcount.sum(), 1)).tolist(),
        "synthetic": (scount / max(scount.sum(), 1)).tolist(),
    }
    return out


def _matrix(names: list[str], value: Callable[[str, str], float | None], diagonal: float | None) -> list[list]:
    out: list[list] = []
    for a in names:
        row: list = []
        for b in names:
            row.append(diagonal if a == b else value(a, b))
        out.append(row)
    return out


def association_matrix(
    views: dict[str, ColumnView], ranked: dict[str, np.ndarray], codes: dict[str, np.ndarray] | Contingency
) -> list[list[float | None]]:
    """Spearman correlation (Pearson on `ranked`) for two numeric columns, Cramer's V (on codes) otherwise."""
    names = list(views)
    cache: dict[tuple[str, str], float | None] = {}
    counts = codes if isinstance(codes, Contingency) else Contingency(codes, {n: v.size for n, v in views.items()})

    def value(a: str, b: str) -> float | None:
        key = (a, b) if a < b else (b, a)
        if key not in cache:
            try:
                if a in ranked and b in ranked:
                    cache[key] = pearson_correlation(ranked[a], ranked[b])
                else:
                    cache[key] = counts.cramers_v(a, b)
            except NotScorable:
                cache[key] = None
        return cache[key]

    return _matrix(names, value, 1.0)


def correlation_matrix(names: list[str], cols: dict[str, np.ndarray]) -> list[list[float | None]]:
    """Pairwise-complete Pearson correlations (None where undefined)."""

    def value(a: str, b: str) -> float | None:
        try:
            return pearson_correlation(cols[a], cols[b])
        except NotScorable:
            return None

    return _matrix(names, value, 1.0)


def _difference_summary(names: list[str], real: list[list], syn: list[list], scale: float = 1.0) -> dict[str, Any]:
    diffs: list[tuple[float, str, str]] = []
    for i, j in itertools.combinations(range(len(names)), 2):
        r, s = real[i][j], syn[i][j]
        if r is None or s is None:
            continue
        diffs.append((abs(r - s) / scale, names[i], names[j]))
    if not diffs:
        return {"pairs": 0, "mean_abs_difference": None, "max_abs_difference": None, "worst_pair": None}
    worst = max(diffs)
    return {
        "pairs": len(diffs),
        "mean_abs_difference": float(np.mean([d[0] for d in diffs])),
        "max_abs_difference": float(worst[0]),
        "worst_pair": [worst[1], worst[2]],
    }


def _correlations(names: list[str], real: dict[str, np.ndarray], syn: dict[str, np.ndarray]) -> dict[str, Any]:
    lr, ls = correlation_matrix(names, real), correlation_matrix(names, syn)
    return {"columns": names, "real": lr, "synthetic": ls, **_difference_summary(names, lr, ls)}


class _WithoutTorch:
    """An import finder that reports torch as not installed (used while SDMetrics is imported).

    SDMetrics imports torch, when it is installed, only for its Bayesian-network likelihood metrics,
    which the report does not use; importing torch costs about 1.5 s of CPU, most of the QualityReport's
    cost on a large table. Where torch is already loaded (a worker that ran a neural synthesizer) nothing
    changes.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return


def _quality_report_class() -> Any:
    import sys

    if "sdmetrics.reports" not in sys.modules and "torch" not in sys.modules:
        import scipy.stats  # noqa: F401 - loaded before the finder is in place, as everything but SDMetrics

        finder = _WithoutTorch()
        sys.meta_path.insert(0, finder)
        try:
            import sdmetrics.reports  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
    from sdmetrics.reports import QualityReport

    return QualityReport


def _category_codes(real: pd.Series, synthetic: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A categorical column of both tables as float codes, one per distinct text `str(value)`, NaN for null.

    SDMetrics compares categorical values only for equality (TVComplement, ContingencySimilarity count
    them), so codes shared by both tables give its scores exactly as the texts do, without building and
    hashing a Python string per cell."""
    both = pd.concat([real, synthetic], ignore_index=True)
    codes, uniques = pd.factorize(both, use_na_sentinel=True)
    # values with the same text are one category, as they were when compared as text
    merged, _ = pd.factorize(pd.Index([str(u) for u in uniques], dtype=object))
    out = np.full(len(both), np.nan)
    seen = codes >= 0
    out[seen] = merged[codes[seen]]
    return out[: len(real)], out[len(real) :]


def sdmetrics_quality(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, max_rows: int = 20_000, seed: int = 0
) -> dict[str, Any]:
    """SDMetrics' QualityReport on (samples of) both tables.

    Raises NotScorable with the reason when SDMetrics cannot score the tables.
    """
    QualityReport = _quality_report_class()

    names = [n for n in schema.synthesized_columns if n in real.columns and n in synthetic.columns]
    if not names or len(real) == 0 or len(synthetic) == 0:
        raise NotScorable("no modelled column is present in both tables")
    rng = section_rng(seed, "sdmetrics")
    columns: dict[str, dict[str, str]] = {}
    for n in names:
        spec = schema.columns[n]
        if spec.kind == "datetime":
            columns[n] = {"sdtype": "datetime"}
        elif spec.kind == "categorical" or spec.values is not None:
            columns[n] = {"sdtype": "categorical"}
        else:
            columns[n] = {"sdtype": "numerical"}

    def plain(df: pd.DataFrame, categorical: dict[str, np.ndarray]) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for n in names:
            s = df[n]
            if columns[n]["sdtype"] == "numerical":
                out[n] = pd.to_numeric(s, errors="coerce").astype("float64")
            elif columns[n]["sdtype"] == "datetime":
                out[n] = pd.to_datetime(s, errors="coerce")
            else:
                out[n] = pd.Series(categorical[n], index=s.index)
        return pd.DataFrame(out).reset_index(drop=True)

    real_rows = sample_rows(real, max_rows, rng)
    syn_rows = sample_rows(synthetic, max_rows, rng)
    codes = {n: _category_codes(real_rows[n], syn_rows[n]) for n in names if columns[n]["sdtype"] == "categorical"}
    real_s = plain(real_rows, {n: c[0] for n, c in codes.items()})
    syn_s = plain(syn_rows, {n: c[1] for n, c in codes.items()})
    metadata = {"tables": {"table": {"columns": columns}}}
    report = QualityReport()
    try:
        with quiet_warnings():
            report.generate({"table": real_s}, {"table": syn_s}, metadata, verbose=False)
            score = float(report.get_score())
            props = report.get_properties()
    except Exception as exc:  # SDMetrics raises many types on inputs it cannot score
        logger.warning("SDMetrics QualityReport failed: %s", exc)
        raise NotScorable(f"SDMetrics could not score the tables: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(score):
        raise NotScorable("SDMetrics returned no score")
    properties = {
        str(r["Property"]): (float(r["Score"]) if np.isfinite(r["Score"]) else None) for _, r in props.iterrows()
    }
    return {"score": score, "properties": properties, "rows_each": min(len(real), max_rows)}


def _code_shares(codes: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=size)
    return counts / max(int(counts.sum()), 1)


def _joint_tvd_standard_error(
    joint: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], fpcs: tuple[float, float], rng: np.random.Generator
) -> float:
    """The row sampling's standard error of the TVD of one joint distribution (`kernels.joint_cells`)."""
    return tvd_standard_error(joint[2], joint[3], *fpcs, rng)


def fidelity_section(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    views: dict[str, ColumnView],
    limits: EvaluationLimits,
    seed: int,
    progress: Callable[[float, str], None] = no_progress,
    holdout: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Per-column, pairwise and overall fidelity of `synthetic` to `train`.

    With `holdout`, the real holdout is scored the same way: the fidelity an
    independent sample of the population gets (the sampling-noise reference).
    """
    rng = section_rng(seed, "fidelity")
    real_s = sample_rows(train, limits.fidelity_rows, rng)
    syn_s = sample_rows(synthetic, limits.fidelity_rows, rng)
    names = [n for n in views if n in synthetic.columns]
    missing = [n for n in schema.synthesized_columns if n not in synthetic.columns]
    rc = {n: views[n].codes(real_s[n]) for n in names}
    sc = {n: views[n].codes(syn_s[n]) for n in names}
    sizes = {n: views[n].size for n in names}
    numeric = [n for n in names if views[n].kind == "numeric"]
    rnum = {n: views[n].numeric(real_s[n]) for n in numeric}
    snum = {n: views[n].numeric(syn_s[n]) for n in numeric}

    columns: dict[str, Any] = {}
    for i, n in enumerate(names):
        columns[n] = _column_metrics(views[n], real_s[n], syn_s[n], rc[n], sc[n])
        progress(0.4 * (i + 1) / max(len(names), 1), f"compared column {n}")
    for n in missing:
        columns[n] = {
            "kind": None,
            "schema_kind": schema.columns[n].kind,
            "not_scored": "the column is missing from the synthetic table",
            "metrics": {},
        }

    pairs = sample_pairs(names, limits.max_pairs, seed)
    # each two-way table of each sample is counted once, for the TVDs, the pair weights and the associations
    real_counts, syn_counts = Contingency(rc, sizes), Contingency(sc, sizes)
    fid = fidelity_from_codes(real_counts, syn_counts, sizes, pairs) if names else None
    reference = hold_s = hold_counts = None
    if holdout is not None and len(holdout) and names:
        hold_s = sample_rows(holdout, limits.fidelity_rows, rng)
        hc = {n: views[n].codes(hold_s[n]) for n in names}
        hold_counts = Contingency(hc, sizes)
        ref = fidelity_from_codes(real_counts, hold_counts, sizes, pairs)
        reference = {
            "fidelity_score": ref["score"],
            "mean_one_way_tvd": ref["mean_one_way_tvd"],
            "mean_two_way_tvd": ref["mean_two_way_tvd"],
            "holdout_rows": len(hold_s),
            "note": "the real holdout scored as if it were the synthetic table: what an independent "
            "sample of this size gets from sampling noise alone",
        }
    progress(0.6, "two-way marginals")
    worst_pairs = sorted(((v, a, b) for (a, b), v in (fid["two_way"].items() if fid else [])), reverse=True)[:10]
    # the sampling error of the samples' figures: the counts above, read again (evaluation.fidelity_se)
    se_rng, fpcs = (
        section_rng(seed, "fidelity standard errors"),
        (fpc(len(real_s), len(train)), fpc(len(syn_s), len(synthetic))),
    )
    shares = {
        n: (np.asarray(c["histogram"]["real"]), np.asarray(c["histogram"]["synthetic"]))
        for n, c in columns.items()
        if n in rc
    }
    for n, (p, q) in shares.items():
        tvd = columns[n]["metrics"]["tv_distance"]
        if tvd.get("value") is not None:
            tvd["value_se"] = tvd_standard_error(p * len(real_s), q * len(syn_s), *fpcs, se_rng)
    pair_se = {
        (a, b): tvd_standard_error(real_counts.table(a, b), syn_counts.table(a, b), *fpcs, se_rng)
        if counted_densely(sizes[a] * sizes[b])
        else None
        for _, a, b in worst_pairs
    }
    sparse_rng = section_rng(seed, "fidelity standard errors of sparse joint distributions")  # the others' stay put
    for (a, b), se in pair_se.items():
        if se is None:  # too many cells to count densely: the bootstrap over the cells present
            joint = joint_cells([rc[a], rc[b]], [sc[a], sc[b]], [sizes[a], sizes[b]])
            pair_se[(a, b)] = _joint_tvd_standard_error(joint, fpcs, sparse_rng)
    score_se = score_standard_errors(real_counts, syn_counts, sizes, pairs, shares, *fpcs, se_rng) if fid else {}
    if reference is not None and hold_s is not None and hold_counts is not None and holdout is not None:
        # the reference's own sampling error, the same way (drawn after the figures' above: they stay put)
        ref_se = score_standard_errors(
            real_counts,
            hold_counts,
            sizes,
            pairs,
            {n: (shares[n][0], _code_shares(hold_counts.codes[n], sizes[n])) for n in shares},
            fpcs[0],
            fpc(len(hold_s), len(holdout)),
            se_rng,
        )
        reference.update(
            fidelity_score_se=ref_se["score"],
            mean_one_way_tvd_se=ref_se["mean_one_way_tvd"],
            mean_two_way_tvd_se=ref_se["mean_two_way_tvd"] if reference["mean_two_way_tvd"] is not None else None,
        )

    qis = [q for q in schema.quasi_identifiers if q in rc]
    triples = list(itertools.combinations(qis, 3)) if len(qis) >= 3 else ([tuple(qis)] if len(qis) == 2 else [])
    if len(triples) > limits.max_qi_triples:
        keep = np.sort(rng.choice(len(triples), size=limits.max_qi_triples, replace=False))
        triples = [triples[i] for i in keep]
    qi_joint = {t: joint_cells([rc[c] for c in t], [sc[c] for c in t], [sizes[c] for c in t]) for t in triples}
    qi_tvd = {t: tv_distance_counts(joint[2], joint[3]) for t, joint in qi_joint.items()}
    worst_qi = max(((v, t) for t, v in qi_tvd.items()), default=None)
    worst_qi_se = _joint_tvd_standard_error(qi_joint[worst_qi[1]], fpcs, se_rng) if worst_qi else None
    mean_qi_se = mean_tvd_standard_error(list(qi_joint.values()), *fpcs, sparse_rng) if qi_joint else None

    progress(0.7, "correlations")
    rrank = {n: average_ranks(x) for n, x in rnum.items()}
    srank = {n: average_ranks(x) for n, x in snum.items()}
    pearson = _correlations(numeric, rnum, snum) if len(numeric) >= 2 else None
    spearman = _correlations(numeric, rrank, srank) if len(numeric) >= 2 else None
    assoc_real = association_matrix({n: views[n] for n in names}, rrank, real_counts)
    assoc_syn = association_matrix({n: views[n] for n in names}, srank, syn_counts)
    mixed = [n for n in names if views[n].kind == "categorical"]
    cv_pairs = [(a, b) for a, b in itertools.combinations(names, 2) if a in mixed or b in mixed]
    cv_diffs = []
    idx = {n: i for i, n in enumerate(names)}
    for a, b in cv_pairs:
        r, s = assoc_real[idx[a]][idx[b]], assoc_syn[idx[a]][idx[b]]
        if r is not None and s is not None:
            cv_diffs.append((abs(r - s), a, b))
    cramers = {
        "pairs": len(cv_diffs),
        "mean_abs_difference": float(np.mean([d[0] for d in cv_diffs])) if cv_diffs else None,
        "max_abs_difference": float(max(cv_diffs)[0]) if cv_diffs else None,
        "worst_pair": list(max(cv_diffs)[1:]) if cv_diffs else None,
    }

    progress(0.8, "SDMetrics quality report")
    try:
        sdm: dict[str, Any] = sdmetrics_quality(train, synthetic, schema, max_rows=limits.sdmetrics_rows, seed=seed)
    except NotScorable as exc:
        sdm = {"score": None, "not_scored": str(exc)}
    progress(1.0, "fidelity done")

    return {
        "fidelity_score": fid["score"] if fid else None,
        "fidelity_score_se": score_se.get("score"),
        "fidelity_score_definition": FIDELITY_SCORE_DEFINITION,
        "holdout_reference": reference,
        "mean_one_way_tvd": fid["mean_one_way_tvd"] if fid else None,
        "mean_one_way_tvd_se": score_se.get("mean_one_way_tvd"),
        "mean_two_way_tvd": fid["mean_two_way_tvd"] if fid else None,
        "mean_two_way_tvd_se": score_se.get("mean_two_way_tvd")
        if fid and fid["mean_two_way_tvd"] is not None
        else None,
        "weighted_two_way_tvd": fid["weighted_two_way_tvd"] if fid else None,
        "weighted_two_way_tvd_se": score_se.get("weighted_two_way_tvd")
        if fid and fid["weighted_two_way_tvd"] is not None
        else None,
        "worst_two_way_tvd": worst_pairs[0][0] if worst_pairs else None,
        "worst_two_way_tvd_se": pair_se[worst_pairs[0][1:]] if worst_pairs else None,
        "worst_two_way_pairs": [
            {"columns": [a, b], "tv_distance": v, "tv_distance_se": pair_se[(a, b)]} for v, a, b in worst_pairs
        ],
        "standard_errors": STANDARD_ERRORS,
        "pairs_scored": len(pairs),
        "pairs_total": len(names) * (len(names) - 1) // 2,
        "quasi_identifier_marginals": {
            "columns": qis,
            "order": len(triples[0]) if triples else None,
            "combinations": len(triples),
            "mean_tv_distance": float(np.mean(list(qi_tvd.values()))) if qi_tvd else None,
            "mean_tv_distance_se": mean_qi_se,
            "worst_tv_distance": worst_qi[0] if worst_qi else None,
            "worst_tv_distance_se": worst_qi_se,
            "worst_columns": list(worst_qi[1]) if worst_qi else None,
        },
        "pearson": pearson,
        "spearman": spearman,
        "cramers_v": cramers,
        "association": {"columns": names, "real": assoc_real, "synthetic": assoc_syn},
        "sdmetrics_quality": sdm,
        "columns": columns,
        "rows_compared": {"real": len(real_s), "synthetic": len(syn_s)},
    }

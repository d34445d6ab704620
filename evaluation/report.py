"""The evaluation report: its model, how it is built, and its JSON form.

A report holds sections, each marked `public` (computed from the synthetic
table and the public schema only) or `internal` (it read real rows). The
public rendering (`to_dict(include_internal=False)`, `to_html(False)`) carries
public sections only and names the withheld ones; it is identical whatever the
real tables were. `summary` holds every headline figure, internal ones
included: it is for the pipeline and the steward, not for analysts.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from evaluation._common import EvaluationLimits, jsonable, no_progress
from evaluation._tables import table_views, with_declared_categories
from evaluation.figures import draw_figures
from evaluation.lanes import ProcessLane, ProgressRelay, SideLane, can_fork
from evaluation.metrics import FIDELITY_SCORE_DEFINITION, METRICS, NotScorable
from evaluation.parts import Check, Figure, Section, Status
from evaluation.render import render_html
from privacy.schema import PublicSchema

__all__ = ["SCHEMA_VERSION", "SECTIONS", "Check", "Figure", "Report", "Section", "build_report", "judge"]

logger = logging.getLogger(__name__)

# 2: summary.utility_leakage; 3: the class-aware figures of a rebalanced release; 4: the standard errors
# (*_se) of the privacy figures estimated on samples; 5: summary.fidelity_score_se and
# summary.attribute_inference_advantage_se
SCHEMA_VERSION = "5"
SECTIONS = ("fidelity", "utility", "privacy", "plots")
# the internal sections in the report's order (classes: only for a rebalanced release)
INTERNAL_SECTIONS = (
    ("fidelity", "Fidelity: synthetic vs real training rows"),
    ("utility", "Utility: train on synthetic, test on real (TSTR) vs real (TRTR)"),
    ("classes", "Class by class: the release was rebalanced on '{target}'"),
    ("privacy", "Privacy risk against real rows"),
)


def judge(value: float | None, threshold: float | None, direction: Literal["min", "max"], margin: float) -> Status:
    """pass / warn / fail of a figure against a threshold (the release gate's rule).

    On the passing side, a figure closer to the threshold than `margin * |t|`
    warns (so a figure exactly at a non-zero threshold warns); with a threshold
    of 0 there is no warn zone. A figure not computed is `not_run`.
    """
    if threshold is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return "not_run"
    distance = value - threshold if direction == "min" else threshold - value
    if distance < 0:
        return "fail"
    if distance < margin * abs(threshold):
        return "warn"
    return "pass"


# name, label, summary figure, threshold key, direction
CHECKS: tuple[tuple[str, str, str, str, Literal["min", "max"]], ...] = (
    ("fidelity", "fidelity score", "fidelity_score", "min_fidelity", "min"),
    ("utility_ratio", "utility ratio (TSTR / TRTR)", "utility_ratio", "min_utility_ratio", "min"),
    ("membership_auc", "membership-inference AUC", "membership_auc", "max_membership_auc", "max"),
    ("exact_match_rate", "exact-match rate", "exact_match_rate", "max_exact_match_rate", "max"),
)
# a rebalanced release: the checks of the same names judge these figures instead (evaluation.classwise)
CLASS_AWARE = {
    "fidelity": ("classwise_fidelity_score", "class-wise fidelity score (mean over the classes of '{target}')"),
    "utility_ratio": ("minority_f1_ratio", "minority-class F1 ratio (TSTR / TRTR; {minority})"),
}
CLASS_AWARE_REPLACES = {"fidelity": "marginal fidelity score", "utility_ratio": "utility ratio of the primary score"}
THRESHOLD_KEYS = {c[3] for c in CHECKS} | {"warn_margin"}
PUBLIC_FIGURES = ("synthetic_rows", "synthetic_columns")


@dataclass
class Report:
    """A built report; render it with `to_dict` or `to_html`."""

    sections: dict[str, Section]
    headline: dict[str, Any]
    checks: list[Check]
    settings: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        """Every headline figure (internal ones included): for the pipeline and the steward."""
        return dict(self.headline)

    @property
    def public_summary(self) -> dict[str, Any]:
        return {k: self.headline[k] for k in PUBLIC_FIGURES if k in self.headline}

    @property
    def class_aware(self) -> dict[str, Any] | None:
        """For a rebalanced release, the class-aware figures the gate judges (`privacy.gate.evaluate_gate`)."""
        h = self.headline
        if h.get("rebalanced_target") is None:
            return None
        return {
            "target": h["rebalanced_target"],
            "minority_classes": h.get("minority_classes"),
            "fidelity": h.get("classwise_fidelity_score"),
            "utility_ratio": h.get("minority_f1_ratio"),
        }

    @property
    def overall_status(self) -> Status:
        statuses = {c.status for c in self.checks}
        for s in ("fail", "warn", "pass"):
            if s in statuses:
                return s
        return "not_run"

    def to_dict(self, include_internal: bool) -> dict[str, Any]:
        """The stable, versioned JSON form. Without internal sections, nothing computed from real rows."""
        shown = {k: s for k, s in self.sections.items() if include_internal or s.visibility == "public"}
        withheld = [k for k, s in self.sections.items() if k not in shown]
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "kind": "synthgate.evaluation_report",
            "audience": "internal" if include_internal else "public",
            "summary": jsonable(self.summary if include_internal else self.public_summary),
            "sections": {k: s.to_dict() for k, s in shown.items()},
            "withheld_sections": withheld,
            "settings": jsonable(self.settings),
            "definitions": {
                "fidelity_score": FIDELITY_SCORE_DEFINITION,
                "metrics": {m.name: m.info() for m in METRICS.values()},
            },
        }
        if include_internal:
            out["checks"] = [c.to_dict() for c in self.checks]
            out["overall_status"] = self.overall_status
        else:
            out["checks"] = [{"name": c.name, "label": c.label, "status": "withheld"} for c in self.checks]
        return out

    def to_html(self, include_internal: bool) -> str:
        """One self-contained HTML page (inline CSS and PNG images)."""
        return render_html(self, include_internal)


def _scaled(progress: Callable[[float, str], None], start: float, end: float) -> Callable[[float, str], None]:
    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def _run_section(section: Section, fn: Callable[[], dict[str, Any]]) -> Section:
    started = time.perf_counter()
    try:
        section.data = fn()
        section.notes.extend(section.data.pop("notes", []) if isinstance(section.data.get("notes"), list) else [])
    except NotScorable as exc:
        section.status, section.reason = "not_computed", str(exc)
    except Exception as exc:  # a report with one broken section is still worth reading
        logger.exception("evaluation section %s failed", section.key)
        section.status, section.reason = "failed", f"{type(exc).__name__}: {exc}"
    section.seconds = round(time.perf_counter() - started, 3)
    return section


def _thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    if thresholds is None:
        return {}
    unknown = set(thresholds) - THRESHOLD_KEYS
    if unknown:
        raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {sorted(THRESHOLD_KEYS)}")
    return {k: float(v) for k, v in thresholds.items() if v is not None}


def build_report(
    real_train: pd.DataFrame,
    real_holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    target: str | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    include: set[str] | None = None,
    limits: EvaluationLimits | None = None,
    rebalanced_target: str | None = None,
) -> Report:
    """Evaluate a synthetic table against the real training split and holdout.

    The tables are conformed to `schema`. `include` picks the sections
    (fidelity, utility, privacy, plots; all by default); the public synthetic
    summary is always there. `thresholds` are the dataset policy's
    (min_fidelity, min_utility_ratio, max_membership_auc, max_exact_match_rate,
    warn_margin); without them the checks are `not_run`. `seed` seeds the
    report's samples and models; it is not written into the report, so it may
    be derived from a secret, but it must not be the mechanism's noise seed.

    `rebalanced_target` names the target whose classes the release rebalanced
    (SMOTE and its kin, on a DP output or on the training rows). The report then
    adds the internal section `classes` (`evaluation.classwise`: class shares,
    fidelity within each class, minority-class F1 and recall), and its fidelity
    and utility checks judge the class-wise fidelity score and the minority-class
    F1 ratio instead of the marginal fidelity score and the primary-score ratio,
    which a rebalancing moves by design; those stay in the report for information.
    """
    from threadpoolctl import threadpool_limits

    include = set(SECTIONS) if include is None else set(include)
    unknown = include - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown report sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    limits = limits or EvaluationLimits()
    if include & {"utility", "privacy"}:
        import sklearn.ensemble  # noqa: F401 - load its OpenMP runtime now, so that the thread limit reaches it
    with threadpool_limits(limits=limits.threads):
        return _build(
            real_train,
            real_holdout,
            synthetic,
            schema,
            target,
            include,
            limits,
            _thresholds(thresholds),
            seed,
            progress or no_progress,
            rebalanced_target,
        )


def _build(
    real_train: pd.DataFrame,
    real_holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    target: str | None,
    include: set[str],
    limits: EvaluationLimits,
    th: dict[str, float],
    seed: int,
    progress: Callable[[float, str], None],
    rebalanced_target: str | None = None,
) -> Report:
    from evaluation.fidelity import fidelity_section
    from evaluation.privacy_risk import privacy_section
    from evaluation.public import synthetic_summary
    from evaluation.utility import utility_section

    target = target if target is not None else schema.target
    # text columns of declared categories as Categoricals, once: every section reads them many times
    real_train, real_holdout, synthetic = (
        with_declared_categories(t, schema) for t in (real_train, real_holdout, synthetic)
    )

    sections: dict[str, Section] = {}
    relay = ProgressRelay(progress)
    relay(0.0, "summarising the synthetic table")
    public_views = table_views(schema, synthetic)
    sections["synthetic"] = _run_section(
        Section("synthetic", "Synthetic table (public)", "public"),
        lambda: synthetic_summary(synthetic, schema, public_views, association_rows=limits.fidelity_rows, seed=seed),
    )
    # internal: open domains read from every table, numbers binned at the real training quantiles
    internal_views = table_views(schema, real_train, real_holdout, synthetic, quantiles_from=real_train)
    # the sections in the report's order; utility runs on the second lane while the main thread
    # computes fidelity, privacy and their figures (evaluation/lanes.py)
    wanted = include | ({"classes"} if rebalanced_target is not None and include & {"fidelity", "utility"} else set())
    for key, title in INTERNAL_SECTIONS:
        if key in wanted:
            sections[key] = Section(key, title.format(target=rebalanced_target), "internal")
    plots = "plots" in include

    def run_utility() -> None:
        if "utility" not in sections:
            return
        if target is None:
            sections["utility"].status, sections["utility"].reason = (
                "not_computed",
                ("no target column: declare `target` in the public schema or pass one to score utility"),
            )
            return
        _run_section(
            sections["utility"],
            lambda: utility_section(
                real_train,
                real_holdout,
                synthetic,
                schema,
                target,
                internal_views,
                limits,
                seed,
                _scaled(relay, 0.35, 0.65),
            ),
        )

    def utility_lane() -> Section | None:  # what a forked lane sends back: the section it computed
        run_utility()
        if forked and plots:  # a forked child has matplotlib to itself: its figure comes back drawn
            draw_figures(sections, limits, keys=("utility",))
        return sections.get("utility")

    parallel = limits.parallel_sections and "utility" in sections
    forked = parallel and limits.second_lane == "process" and can_fork()
    lanes = ProcessLane(relay, limits.threads) if forked else SideLane(relay, enabled=parallel, threads=limits.threads)
    with lanes as lane:
        # on two lanes, utility starts first, beside the others; on one, it runs in the report's order
        utility_done = lane.submit(utility_lane) if parallel else None
        if "fidelity" in sections:
            _run_section(
                sections["fidelity"],
                lambda: fidelity_section(
                    real_train,
                    synthetic,
                    schema,
                    internal_views,
                    limits,
                    seed,
                    _scaled(relay, 0.05, 0.35),
                    holdout=real_holdout,
                ),
            )
        if utility_done is None:
            run_utility()
        if "privacy" in sections:
            _run_section(
                sections["privacy"],
                lambda: privacy_section(
                    real_train, real_holdout, synthetic, schema, internal_views, limits, seed, _scaled(relay, 0.65, 0.9)
                ),
            )
        if plots:
            relay(0.9, "drawing figures")
            draw_figures(sections, limits, keys=("synthetic", "fidelity", "privacy"))
        if utility_done is not None:
            computed = utility_done()
            if computed is not None:  # a forked lane's copy (a thread's is the same object)
                sections["utility"] = computed
    if plots and not forked:
        draw_figures(sections, limits, keys=("utility",))
    if "classes" in sections and rebalanced_target is not None:
        from evaluation.classwise import class_section

        utility = (
            sections["utility"].data if "utility" in sections and sections["utility"].status == "computed" else None
        )
        _run_section(
            sections["classes"],
            lambda: class_section(
                real_train,
                synthetic,
                schema,
                rebalanced_target,
                internal_views,
                limits,
                seed,
                _scaled(relay, 0.65, 0.7),
                holdout=real_holdout,
                utility=utility,
            ),
        )

    headline = _headline(sections, rebalanced_target)
    margin = th.get("warn_margin", 0.0)
    checks = []
    for name, label, figure, key, direction in CHECKS:
        because = ""
        if rebalanced_target is not None and name in CLASS_AWARE:
            plain = headline.get(figure)
            figure, label = CLASS_AWARE[name]
            label = label.format(
                target=rebalanced_target, minority=", ".join(f"'{c}'" for c in headline.get("minority_classes") or [])
            )
            because = f"; the release was rebalanced, so this replaces the {CLASS_AWARE_REPLACES[name]}" + (
                f" ({plain:.4g}, for information)" if plain is not None else ""
            )
        value = headline.get(figure)
        t = th.get(key)
        status = judge(value, t, direction, margin)
        if t is None:
            message = f"{label}: no threshold given"
        elif value is None:
            message = f"{label}: not computed"
        else:
            message = f"{label} {value:.4g} against the {'minimum' if direction == 'min' else 'maximum'} {t:.4g}"
        message += because
        leak = (
            (sections["utility"].data or {}).get("leakage")
            if name == "utility_ratio" and "utility" in sections
            else None
        )
        if leak and leak.get("suspected") and status == "pass":
            # a near-perfect real model or a copied target makes any ratio look good: never show it green
            status, message = "warn", f"{label} not meaningful: {leak['reason']}"
        checks.append(Check(name, label, value, t, direction, status, message))

    relay(1.0, "report ready")
    # no seed here: the report may reach analysts, and its seed is the job's business only
    settings = {
        "target": target,
        "rebalanced_target": rebalanced_target,
        "include": sorted(include),
        "thresholds": th,
        "limits": limits.to_dict(),
        "versions": _versions(),
    }
    return Report(sections=sections, headline=headline, checks=checks, settings=settings)


def _get(data: dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(data, dict) or p not in data:
            return None
        data = data[p]
    return data


def _headline(sections: dict[str, Section], rebalanced_target: str | None = None) -> dict[str, Any]:
    syn = sections["synthetic"].data
    fid = sections["fidelity"].data if "fidelity" in sections else {}
    util = sections["utility"].data if "utility" in sections else {}
    priv = sections["privacy"].data if "privacy" in sections else {}
    cls = sections["classes"].data if "classes" in sections else {}
    minority = cls.get("utility") or {}
    return {
        "synthetic_rows": syn.get("rows"),
        "synthetic_columns": len(syn.get("columns", {})) if syn else None,
        "fidelity_score": fid.get("fidelity_score"),
        "fidelity_score_se": fid.get("fidelity_score_se"),
        "fidelity_score_holdout_reference": _get(fid, "holdout_reference", "fidelity_score"),
        "sdmetrics_quality": _get(fid, "sdmetrics_quality", "score"),
        "mean_one_way_tvd": fid.get("mean_one_way_tvd"),
        "mean_two_way_tvd": fid.get("mean_two_way_tvd"),
        "worst_two_way_tvd": fid.get("worst_two_way_tvd"),
        "utility_ratio": util.get("utility_ratio"),
        "utility_leakage": (util.get("leakage") or {}).get("reason") or None,
        "utility_primary_score": util.get("primary_score"),
        "tstr_score": util.get("tstr_score"),
        "trtr_score": util.get("trtr_score"),
        "exact_match_rate": _get(priv, "exact_match", "rate_train"),
        "exact_match_rate_holdout": _get(priv, "exact_match", "rate_holdout"),
        "dcr_share_closer_to_train": _get(priv, "dcr", "share_closer_to_train"),
        "dcr_share_closer_to_train_se": _get(priv, "dcr", "share_closer_to_train_se"),
        "dcr_p5_train": _get(priv, "dcr", "p5_train"),
        "dcr_p5_train_se": _get(priv, "dcr", "p5_train_se"),
        "dcr_p5_holdout": _get(priv, "dcr", "p5_holdout"),
        "dcr_p5_holdout_se": _get(priv, "dcr", "p5_holdout_se"),
        "membership_auc": _get(priv, "membership_inference", "membership_auc"),
        "membership_auc_se": _get(priv, "membership_inference", "membership_auc_se"),
        "membership_auc_distance": _get(priv, "membership_inference", "distance", "auc"),
        "membership_auc_distance_se": _get(priv, "membership_inference", "distance", "auc_se"),
        "membership_auc_classifier": _get(priv, "membership_inference", "classifier", "auc"),
        "membership_auc_classifier_se": _get(priv, "membership_inference", "classifier", "auc_se"),
        "attribute_inference_advantage": priv.get("attribute_inference_advantage"),
        "attribute_inference_advantage_se": priv.get("attribute_inference_advantage_se"),
        # a rebalanced release only (None otherwise): the figures its fidelity and utility checks judge
        "rebalanced_target": rebalanced_target,
        "minority_classes": cls.get("minority_classes"),
        "classwise_fidelity_score": cls.get("classwise_fidelity_score"),
        "classwise_fidelity_holdout_reference": cls.get("classwise_fidelity_holdout_reference"),
        "minority_f1_ratio": minority.get("minority_f1_ratio"),
        "minority_recall_ratio": minority.get("minority_recall_ratio"),
        "tstr_minority_f1": minority.get("tstr_minority_f1"),
        "trtr_minority_f1": minority.get("trtr_minority_f1"),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "pandas", "scipy", "scikit-learn", "sdmetrics", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out

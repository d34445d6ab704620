"""HTML rendering of a report, and the figures it inlines.

One self-contained page: inline CSS, PNG images as data URIs, no script and
no external resource. The public rendering shows public sections only.
"""

from __future__ import annotations

import base64
import html
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.compare import SCORES_EXPLAINED
from evaluation.kernels import FIDELITY_SCORE_DEFINITION
from evaluation.parts import Section

if TYPE_CHECKING:
    from evaluation.report import Report

__all__ = ["render_html"]

logger = logging.getLogger(__name__)

COLORS = {"pass": "#2e7d32", "warn": "#f0a500", "fail": "#c62828", "not_run": "#9e9e9e", "withheld": "#9e9e9e"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:1em 2em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;min-width:4.5em;text-align:center;color:#fff;border-radius:.3em;padding:.1em .5em;
font-weight:600}
.banner{padding:.6em 1em;border-radius:.3em;margin:.6em 0}
.banner.internal{background:#fdecea;border:1px solid #c62828}
.banner.public{background:#e8f5e9;border:1px solid #2e7d32}
.tag{font-size:.75em;padding:.1em .4em;border-radius:.3em;margin-left:.5em;vertical-align:middle}
.tag.internal{background:#c62828;color:#fff}.tag.public{background:#2e7d32;color:#fff}
.note{color:#555;font-size:.9em}.grid{display:flex;flex-wrap:wrap;gap:1.5em}
img{max-width:100%;border:1px solid #eee}figure{margin:.8em 0}figcaption{font-size:.85em;color:#555}
.summary{display:flex;flex-wrap:wrap;gap:2em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    if isinstance(x, float | np.floating):
        if not np.isfinite(x):
            return "—"
        return f"{float(x):.{digits}g}"
    if isinstance(x, list | tuple):
        return ", ".join(_fmt(v, digits) for v in x)
    return str(x)


def _table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, v in enumerate(row):
            cls = ' class="num"' if i >= numeric_from and not isinstance(v, str) else ""
            out.append(f"<td{cls}>{_e(_fmt(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv(pairs: list[tuple[str, Any]]) -> str:
    return _table(["figure", "value"], [[k, v] for k, v in pairs])


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{COLORS.get(status, "#9e9e9e")}">{_e(status)}</span>'


def _figures(section: Section) -> str:
    out = []
    for f in section.figures:
        data = base64.b64encode(f.png).decode("ascii")
        out.append(
            f'<figure><img alt="{_e(f.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(f.title)}{(' — ' + _e(f.caption)) if f.caption else ''}</figcaption></figure>"
        )
    return "".join(out)


def _metric(col: dict[str, Any], name: str) -> Any:
    m = col.get("metrics", {}).get(name)
    if m is None:
        return None
    return m.get("value") if m.get("value") is not None else "n/s"


# ----------------------------------------------------------------------------- sections


def _synthetic_html(d: dict[str, Any]) -> str:
    rows = []
    for name, c in d.get("columns", {}).items():
        if c.get("top") is not None:
            detail = "; ".join(f"{t['value']} {t['share']:.1%}" for t in c["top"][:5])
            rows.append([name, c["kind"], c.get("null_rate"), f"{c.get('categories_present')} categories: {detail}"])
        else:
            detail = (
                f"min {_fmt(c.get('min'))}, p5 {_fmt(c.get('p5'))}, median {_fmt(c.get('median'))}, "
                f"p95 {_fmt(c.get('p95'))}, max {_fmt(c.get('max'))}"
            )
            rows.append([name, c["kind"], c.get("null_rate"), detail])
    out = [
        f"<p>{_fmt(d.get('rows'))} synthetic rows, {len(d.get('columns', {}))} columns.</p>",
        _table(["column", "kind", "null rate", "values"], rows, numeric_from=2),
    ]
    if d.get("missing_columns"):
        out.append(
            f"<p class='note'>Columns of the schema missing from the synthetic table: "
            f"{_e(', '.join(d['missing_columns']))}</p>"
        )
    if d.get("learned_domains"):
        out.append(
            f"<p class='note'>Open domains read from the synthetic table itself: "
            f"{_e(', '.join(d['learned_domains']))}</p>"
        )
    return "".join(out)


def _pm(value: Any, se: Any) -> Any:
    """A figure with its standard error ("0.5117 ± 0.016"), or the figure alone when none is stated."""
    if value is None or se is None or isinstance(value, str):
        return value
    return f"{_fmt(value)} ± {_fmt(se, 2)}"


def _pm_sampled(value: Any, se: Any) -> Any:
    """`_pm` where a standard error of 0 (nothing sampled) is not shown."""
    return _pm(value, se or None)


def _fidelity_html(d: dict[str, Any]) -> str:
    sdm = d.get("sdmetrics_quality", {})
    qi = d.get("quasi_identifier_marginals", {})
    out = [
        _kv(
            [
                ("fidelity score (this report)", _pm_sampled(d.get("fidelity_score"), d.get("fidelity_score_se"))),
                (
                    "reference: the real holdout's own fidelity score",
                    _pm_sampled(
                        (d.get("holdout_reference") or {}).get("fidelity_score"),
                        (d.get("holdout_reference") or {}).get("fidelity_score_se"),
                    ),
                ),
                (
                    "SDMetrics quality score",
                    sdm.get("score") if sdm.get("score") is not None else sdm.get("not_scored"),
                ),
                ("mean one-way TVD", _pm_sampled(d.get("mean_one_way_tvd"), d.get("mean_one_way_tvd_se"))),
                ("mean two-way TVD", _pm_sampled(d.get("mean_two_way_tvd"), d.get("mean_two_way_tvd_se"))),
                (
                    "association-weighted mean two-way TVD (in the score)",
                    _pm_sampled(d.get("weighted_two_way_tvd"), d.get("weighted_two_way_tvd_se")),
                ),
                ("worst two-way TVD", _pm_sampled(d.get("worst_two_way_tvd"), d.get("worst_two_way_tvd_se"))),
                ("pairs scored / all pairs", f"{d.get('pairs_scored')} / {d.get('pairs_total')}"),
                ("Pearson: mean / max |difference|", _pair_summary(d.get("pearson"))),
                ("Spearman: mean / max |difference|", _pair_summary(d.get("spearman"))),
                ("Cramer's V: mean / max |difference|", _pair_summary(d.get("cramers_v"))),
                (
                    f"{qi.get('order') or ''}-way QI marginals: mean / worst TVD",
                    f"{_fmt(_pm_sampled(qi.get('mean_tv_distance'), qi.get('mean_tv_distance_se')))} / "
                    f"{_fmt(_pm_sampled(qi.get('worst_tv_distance'), qi.get('worst_tv_distance_se')))} "
                    f"({_fmt(qi.get('worst_columns'))})"
                    if qi.get("combinations")
                    else "no quasi-identifiers",
                ),
            ]
        ),
        f"<p class='note'>{_e(d.get('fidelity_score_definition', FIDELITY_SCORE_DEFINITION))}</p>",
        f"<p class='note' id='scores-explained'><strong>Two scores, two questions.</strong> {_e(SCORES_EXPLAINED)}</p>",
    ]
    rows = []
    for name, c in d.get("columns", {}).items():
        if c.get("not_scored"):
            rows.append([name, c.get("schema_kind"), "not scored: " + c["not_scored"], None, None, None, None])
            continue
        cover = _metric(c, "range_coverage_score") if c["kind"] == "numeric" else _metric(c, "category_coverage_score")
        rows.append(
            [
                name,
                c.get("schema_kind"),
                _metric(c, "ks_distance"),
                _pm_sampled(_metric(c, "tv_distance"), c.get("metrics", {}).get("tv_distance", {}).get("value_se")),
                _metric(c, "chi2_homogeneity_score"),
                _metric(c, "null_rate_error"),
                cover,
            ]
        )
    out.append(
        _table(["column", "kind", "KS", "TVD", "chi-square p", "null-rate diff", "coverage"], rows, numeric_from=2)
    )
    out.append(
        "<p class='note'>n/s: not scored (see the JSON for the reason). Coverage: share of the real range "
        "(numbers) or of the real categories spanned by the synthetic column.</p>"
    )
    worst = d.get("worst_two_way_pairs", [])[:5]
    if worst:
        rows = [[" x ".join(w["columns"]), _pm_sampled(w["tv_distance"], w.get("tv_distance_se"))] for w in worst]
        out.append(_table(["worst pairs", "TVD"], rows))
    if d.get("fidelity_score_se"):  # 0 or absent: no table was sampled
        out.append(f"<p class='note'>± a standard error, {_e(d.get('standard_errors', ''))}.</p>")
    return "".join(out)


def _pair_summary(p: dict[str, Any] | None) -> str:
    if not p or p.get("mean_abs_difference") is None:
        return "—"
    return f"{_fmt(p['mean_abs_difference'])} / {_fmt(p['max_abs_difference'])} ({_fmt(p.get('worst_pair'))})"


def _utility_html(d: dict[str, Any]) -> str:
    out = [
        _kv(
            [
                ("target", d.get("target")),
                ("task", d.get("task")),
                ("positive (minority) class", d.get("positive_class")),
                (
                    f"utility ratio ({d.get('primary_model')}, {d.get('primary_score')} TSTR / TRTR)",
                    d.get("utility_ratio"),
                ),
                ("standard error of the ratio", d.get("utility_ratio_se")),
                *([("... training draw included", d["utility_ratio_se_total"])] if "training_draw_se" in d else []),
                (
                    f"standard errors of TSTR and TRTR {d.get('primary_score')}",
                    f"{_fmt(d.get('tstr_score_se'))} and {_fmt(d.get('trtr_score_se'))}",
                ),
            ]
        )
    ]
    rows = []
    for model, r in d.get("models", {}).items():
        for name in r.get("trtr", {}):
            rows.append([model, name, r["tstr"].get(name), r["trtr"].get(name), r["gap"].get(name)])
        rows.append([model, "ratio of " + str(r.get("primary_score")), r.get("ratio"), None, None])
        rows.append([model, "importance rank agreement", r.get("importance_rank_agreement"), None, None])
    out.append(_table(["model", "score", "TSTR", "TRTR", "gap (TRTR - TSTR)"], rows, numeric_from=2))
    out.append(
        "<p class='note'>Gini = 2 AUC - 1 (0 is chance). Importance rank agreement: Spearman correlation "
        "of permutation importances of the model trained on synthetic rows and of the one trained on "
        "real rows.</p>"
    )
    if d.get("standard_error_method"):
        out.append(f"<p class='note'>Standard errors: {_e(d['standard_error_method'])}.</p>")
    if d.get("training_draw_method"):
        out.append(f"<p class='note'>Training draw: {_e(d['training_draw_method'])}.</p>")
    return "".join(out)


def _classes_html(d: dict[str, Any]) -> str:
    u = d.get("utility") or {}
    out = [
        _kv(
            [
                ("target", d.get("target")),
                (
                    "minority classes (every class but the most frequent in the real training rows)",
                    ", ".join(d.get("minority_classes") or []) or "none",
                ),
                ("class-wise fidelity score (judged)", d.get("classwise_fidelity_score")),
                ("reference: the real holdout's own class-wise score", d.get("classwise_fidelity_holdout_reference")),
                (
                    "class-wise fidelity weighted by the real class shares",
                    d.get("classwise_fidelity_score_real_weighted"),
                ),
                (
                    f"minority-class F1 ratio ({u.get('primary_model')}, TSTR / TRTR; judged)",
                    u.get("minority_f1_ratio") if "not_scored" not in u else "not scored: " + u["not_scored"],
                ),
                ("standard error of the minority-class F1 ratio (holdout bootstrap)", u.get("minority_f1_ratio_se")),
                ("minority-class recall ratio", u.get("minority_recall_ratio")),
                ("balanced accuracy ratio", u.get("balanced_accuracy_ratio")),
            ]
        )
    ]
    rows = [
        [
            c["class"],
            "yes" if c["minority"] else "no",
            c["real_rows"],
            c["real_share"],
            c["released_rows"],
            c["released_share"],
            c["fidelity_score"],
            c["holdout_reference"],
        ]
        for c in d.get("classes", [])
    ]
    out.append(
        _table(
            [
                "class",
                "minority",
                "real rows",
                "real share",
                "released rows",
                "released share",
                "fidelity within the class",
                "holdout reference",
            ],
            rows,
            numeric_from=2,
        )
    )
    rows = []
    for model, r in (u.get("models") or {}).items():
        for name in ("minority_f1", "minority_recall", "minority_precision", "balanced_accuracy"):
            rows.append([model, name, r["tstr"][name], r["trtr"][name], r["ratio"].get(name)])
    if rows:
        out.append(_table(["model", "score", "TSTR", "TRTR", "ratio"], rows, numeric_from=2))
    out.append(
        f"<p class='note'>{_e(d.get('class_shares_note', ''))}. Class-wise fidelity: the fidelity score "
        f"on the rows of each class, the target left out; {_e(d.get('weighting', ''))}. Minority-class "
        "scores: unweighted means over the minority classes, on the real holdout, with the models of the "
        "utility section.</p>"
    )
    return "".join(out)


def _privacy_html(d: dict[str, Any]) -> str:
    exact = d.get("exact_match", {})
    dcr = d.get("dcr", {})
    mia = d.get("membership_inference", {})
    out = [
        _kv(
            [
                ("exact-match rate: synthetic rows equal to a training row", exact.get("rate_train")),
                ("exact-match rate: synthetic rows equal to a holdout row", exact.get("rate_holdout")),
                (
                    "DCR: share closer to training than to holdout (ideal 0.5)",
                    _pm(dcr["share_closer_to_train"], dcr.get("share_closer_to_train_se"))
                    if "share_closer_to_train" in dcr
                    else dcr.get("not_scored"),
                ),
                (
                    "DCR: 5th percentile, to training / to holdout",
                    f"{_fmt(_pm(dcr.get('p5_train'), dcr.get('p5_train_se')))} / "
                    f"{_fmt(_pm(dcr.get('p5_holdout'), dcr.get('p5_holdout_se')))}",
                ),
                (
                    "DCR: median, to training / to holdout",
                    f"{_fmt(_pm(dcr.get('median_train'), dcr.get('median_train_se')))} / "
                    f"{_fmt(_pm(dcr.get('median_holdout'), dcr.get('median_holdout_se')))}",
                ),
                (
                    "DCR sample: synthetic rows / reference rows each",
                    f"{_fmt(dcr.get('synthetic_rows_searched'))} / {_fmt(dcr.get('reference_rows_each'))}",
                ),
                ("membership AUC, distance attack", _get_auc(mia.get("distance"))),
                ("membership AUC, classifier (shadow density model) attack", _get_auc(mia.get("classifier"))),
                (
                    "membership AUC used for the gate (strongest, folded)",
                    _pm(mia.get("membership_auc"), mia.get("membership_auc_se")),
                ),
            ]
        )
    ]
    explained = [x for x in (dcr.get("standard_errors"), mia.get("standard_errors")) if x]
    if explained:
        out.append(
            "<p class='note'>± a standard error. DCR: "
            + _e(dcr.get("standard_errors") or "none stated")
            + ". Membership AUCs: "
            + _e(mia.get("standard_errors") or "none stated")
            + ".</p>"
        )
    attr = d.get("attribute_inference", {})
    if "not_scored" in attr:
        out.append(f"<p>Attribute inference: not scored ({_e(attr['not_scored'])}).</p>")
    else:
        rows = []
        for name, r in attr.items():
            if r.get("value") is None and r.get("not_scored"):
                rows.append([name, "not scored: " + r["not_scored"], None, None, None])
            else:
                advantage = _pm(r.get("value"), r.get("value_se"))
                rows.append(
                    [name, r.get("measure"), r.get("accuracy_members"), r.get("accuracy_nonmembers"), advantage]
                )
        out.append(
            _table(["sensitive column", "measure", "training rows", "holdout rows", "advantage"], rows, numeric_from=2)
        )
        out.append(
            "<p class='note'>Attribute inference: a model trained on the synthetic rows predicts the "
            "sensitive column from the quasi-identifiers; the advantage is its accuracy on training rows "
            "minus that on holdout rows"
            + (
                f"; ± a standard error, {_e(d['attribute_inference_standard_errors'])}"
                if "attribute_inference_standard_errors" in d
                else ""
            )
            + ".</p>"
        )
    anon = d.get("anonymeter", {})
    out.append(f"<p class='note'>Anonymeter: {_e(anon.get('status'))}. {_e(anon.get('reason', ''))}</p>")
    return "".join(out)


def _get_auc(r: dict[str, Any] | None) -> Any:
    if not r:
        return None
    return _pm(r["auc"], r.get("auc_se")) if r.get("auc") is not None else "not scored: " + str(r.get("not_scored"))


RENDERERS = {
    "synthetic": _synthetic_html,
    "fidelity": _fidelity_html,
    "utility": _utility_html,
    "classes": _classes_html,
    "privacy": _privacy_html,
}


def _section_html(section: Section) -> str:
    head = (
        f'<h2 id="{_e(section.key)}">{_e(section.title)}'
        f'<span class="tag {section.visibility}">{section.visibility}</span></h2>'
    )
    if section.status != "computed":
        return head + f"<p><b>{_e(section.status.replace('_', ' '))}</b>: {_e(section.reason)}</p>"
    body = RENDERERS.get(section.key, lambda d: "")(section.data)
    notes = "".join(f"<li>{_e(n)}</li>" for n in section.notes)
    return head + body + (f"<ul class='note'>{notes}</ul>" if notes else "") + _figures(section)


def _summary_html(report: Report, include_internal: bool) -> str:
    if not include_internal:
        withheld = [k for k, s in report.sections.items() if s.visibility == "internal"]
        s = report.public_summary
        return (
            "<h2 id='summary'>Summary</h2>"
            + _kv([("synthetic rows", s.get("synthetic_rows")), ("columns", s.get("synthetic_columns"))])
            + (
                f"<p class='note'>Sections computed on real rows are withheld from this public report: "
                f"{_e(', '.join(withheld))}.</p>"
                if withheld
                else ""
            )
        )
    rows = []
    for c in report.checks:
        rows.append(
            f"<tr><td>{_e(c.label)}</td><td class='num'>{_e(_fmt(c.value))}</td>"
            f"<td class='num'>{_e(_fmt(c.threshold))}</td><td>{_badge(c.status)}</td></tr>"
        )
    checks = (
        "<table><thead><tr><th>check</th><th>value</th><th>threshold</th><th>status</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    h = report.summary
    figures = _kv(
        [
            (
                "fidelity score (real holdout's own: reference)",
                f"{_fmt(_pm_sampled(h.get('fidelity_score'), h.get('fidelity_score_se')))} "
                f"({_fmt(h.get('fidelity_score_holdout_reference'))})",
            ),
            ("SDMetrics quality score", h.get("sdmetrics_quality")),
            ("utility ratio", h.get("utility_ratio")),
            (
                f"TSTR / TRTR ({h.get('utility_primary_score') or 'primary score'})",
                f"{_fmt(h.get('tstr_score'))} / {_fmt(h.get('trtr_score'))}",
            ),
            *(
                [
                    ("rebalanced on", h.get("rebalanced_target")),
                    (
                        "class-wise fidelity score (real holdout's own: reference)",
                        f"{_fmt(h.get('classwise_fidelity_score'))} ({_fmt(h.get('classwise_fidelity_holdout_reference'))})",
                    ),
                    ("minority-class F1 ratio", h.get("minority_f1_ratio")),
                    (
                        "minority-class F1, TSTR / TRTR",
                        f"{_fmt(h.get('tstr_minority_f1'))} / {_fmt(h.get('trtr_minority_f1'))}",
                    ),
                ]
                if h.get("rebalanced_target") is not None
                else []
            ),
            ("membership AUC", _pm(h.get("membership_auc"), h.get("membership_auc_se"))),
            (
                "exact-match rate (train / holdout)",
                f"{_fmt(h.get('exact_match_rate'))} / {_fmt(h.get('exact_match_rate_holdout'))}",
            ),
            (
                "DCR share closer to train (ideal 0.5)",
                _pm(h.get("dcr_share_closer_to_train"), h.get("dcr_share_closer_to_train_se")),
            ),
            (
                "attribute-inference advantage",
                _pm(h.get("attribute_inference_advantage"), h.get("attribute_inference_advantage_se")),
            ),
        ]
    )
    return (
        f"<h2 id='summary'>Summary {_badge(report.overall_status)}</h2>"
        f"<div class='summary'><div>{checks}</div><div>{figures}</div></div>"
    )


def render_html(report: Report, include_internal: bool) -> str:
    """The report as one HTML page."""
    shown = [s for s in report.sections.values() if include_internal or s.visibility == "public"]
    if include_internal:
        banner = (
            "<div class='banner internal'><b>Internal report: steward only.</b> Sections tagged "
            "<i>internal</i> were computed on real rows and must not leave the service unless the steward "
            "includes them in a release.</div>"
        )
    else:
        banner = (
            "<div class='banner public'><b>Public report.</b> Every figure here was computed from the "
            "synthetic table and the public schema only.</div>"
        )
    settings = report.settings
    footer = _kv(
        [
            ("sections", ", ".join(settings.get("include", []))),
            *[(f"limit: {k}", v) for k, v in settings.get("limits", {}).items()],
            *[(f"version: {k}", v) for k, v in settings.get("versions", {}).items()],
        ]
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Synthetic data evaluation report ({'internal' if include_internal else 'public'})</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Synthetic data evaluation report</h1>",
        banner,
        _summary_html(report, include_internal),
        *(_section_html(s) for s in shown),
        "<h2 id='settings'>Settings and sampling</h2>",
        "<p class='note'>Large tables are read through seeded samples of at most the sizes below; each section "
        "lists the rows it used.</p>",
        footer,
        "</body></html>",
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- figures

"""The report's figures, drawn once per report (the HTML renderings only embed the PNGs)."""

from __future__ import annotations

import gc
import logging

from evaluation._common import EvaluationLimits
from evaluation.parts import Figure, Section

__all__ = ["draw_figures"]

logger = logging.getLogger(__name__)


def draw_figures(sections: dict[str, Section], limits: EvaluationLimits) -> None:
    """Add the figures of each computed section (a figure that fails to draw becomes a note).

    The garbage collector is paused while they are drawn: matplotlib makes thousands of small
    objects per figure, and each automatic collection would walk every object of the process
    (the report's tables and models too); the figures are young objects, which the next collections free."""
    paused = gc.isenabled()
    gc.disable()
    try:
        _draw_figures(sections, limits)
    finally:
        if paused:
            gc.enable()


def _draw_figures(sections: dict[str, Section], limits: EvaluationLimits) -> None:
    from evaluation import plots

    def add(section: Section, key: str, title: str, draw, caption: str = "") -> None:
        try:
            section.figures.append(Figure(key, title, draw(), caption))
        except Exception as exc:  # a figure is never worth failing the report for
            logger.exception("figure %s failed", key)
            section.notes.append(f"figure '{title}' could not be drawn: {type(exc).__name__}: {exc}")

    syn = sections.get("synthetic")
    if syn is not None and syn.status == "computed":
        hists = {n: c["histogram"] for n, c in syn.data["columns"].items()}
        if hists:
            add(
                syn,
                "synthetic_columns",
                "Synthetic columns",
                lambda: plots.column_overlays(
                    hists, "Synthetic columns (share of rows)", max_columns=limits.max_plot_columns
                ),
            )
        a = syn.data["association"]
        if len(a["columns"]) >= 2:
            add(
                syn,
                "synthetic_association",
                "Associations in the synthetic table",
                lambda: plots.association_heatmaps(
                    a["columns"], {"synthetic": a["synthetic"]}, "Spearman (numeric pairs) / Cramer's V (others)"
                ),
            )
    fid = sections.get("fidelity")
    if fid is not None and fid.status == "computed":
        hists = {
            n: {
                "labels": c["histogram"]["labels"],
                "real": c["histogram"]["real"],
                "synthetic": c["histogram"]["synthetic"],
            }
            for n, c in fid.data["columns"].items()
            if "histogram" in c
        }
        if hists:
            add(
                fid,
                "overlays",
                "Real (training) vs synthetic, per column",
                lambda: plots.column_overlays(
                    hists, "Real (blue) vs synthetic (orange), share of rows", max_columns=limits.max_plot_columns
                ),
            )
        a = fid.data["association"]
        if len(a["columns"]) >= 2:
            diff = [
                [None if r is None or s is None else s - r for r, s in zip(rr, sr, strict=True)]
                for rr, sr in zip(a["real"], a["synthetic"], strict=True)
            ]
            add(
                fid,
                "association",
                "Associations: real, synthetic, difference",
                lambda: plots.association_heatmaps(
                    a["columns"],
                    {"real": a["real"], "synthetic": a["synthetic"], "synthetic - real": diff},
                    "Spearman (numeric pairs) / Cramer's V (others)",
                    rank_by="synthetic - real",
                ),
            )
    util = sections.get("utility")
    if util is not None and util.status == "computed" and util.data.get("_roc"):
        add(
            util,
            "roc",
            "ROC curves, TSTR vs TRTR",
            lambda: plots.roc_curves(
                util.data["_roc"], f"{util.data['target']} = {util.data['positive_class']} vs rest, on the holdout"
            ),
        )
    priv = sections.get("privacy")
    if priv is not None and priv.status == "computed" and priv.data.get("dcr", {}).get("_distances") is not None:
        d_train, d_holdout = priv.data["dcr"]["_distances"]
        add(
            priv,
            "dcr",
            "Distance to closest record",
            lambda: plots.dcr_histogram(d_train, d_holdout, "Synthetic rows: distance to closest real row"),
        )

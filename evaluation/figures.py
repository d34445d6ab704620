"""The report's figures, drawn once per report (the HTML renderings only embed the PNGs)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from evaluation._common import EvaluationLimits
from evaluation.parts import Figure, Section

__all__ = ["draw_figures"]

logger = logging.getLogger(__name__)


def draw_figures(sections: dict[str, Section], limits: EvaluationLimits, keys: tuple[str, ...] | None = None) -> None:
    """Add the figures of each computed section (of those named in `keys`, all by default; a figure
    that fails to draw becomes a note). Call it from one thread only: matplotlib's state is shared.

    The garbage collector is paused while they are drawn: matplotlib makes thousands of small
    objects per figure, and each automatic collection would walk every object of the process
    (the report's tables and models too); the figures are young objects, which the next collections free."""
    paused = gc.isenabled()
    gc.disable()
    try:
        _draw_figures({k: v for k, v in sections.items() if keys is None or k in keys}, limits)
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
        sa = syn.data["association"]
        _columns_and_associations(
            add,
            syn,
            limits,
            {n: c["histogram"] for n, c in syn.data["columns"].items()},
            ("synthetic_columns", "Synthetic columns", "Synthetic columns (share of rows)"),
            ("synthetic_association", "Associations in the synthetic table"),
            sa["columns"],
            lambda: {"synthetic": sa["synthetic"]},
        )
    fid = sections.get("fidelity")
    if fid is not None and fid.status == "computed":
        fa = fid.data["association"]
        _columns_and_associations(
            add,
            fid,
            limits,
            {
                n: {
                    "labels": c["histogram"]["labels"],
                    "real": c["histogram"]["real"],
                    "synthetic": c["histogram"]["synthetic"],
                }
                for n, c in fid.data["columns"].items()
                if "histogram" in c
            },
            (
                "overlays",
                "Real (training) vs synthetic, per column",
                "Real (blue) vs synthetic (orange), share of rows",
            ),
            ("association", "Associations: real, synthetic, difference"),
            fa["columns"],
            lambda: {"real": fa["real"], "synthetic": fa["synthetic"], "synthetic - real": _difference(fa)},
            rank_by="synthetic - real",
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


def _columns_and_associations(
    add: Callable[..., None],
    section: Section,
    limits: EvaluationLimits,
    histograms: dict[str, dict[str, Any]],
    overlays: tuple[str, str, str],
    associations: tuple[str, str],
    columns: list[str],
    matrices: Callable[[], dict[str, Any]],
    rank_by: str | None = None,
) -> None:
    """A section's per-column panels (`overlays`: key, title, heading) when it has histograms, and its
    association heatmaps (`associations`: key, title; `matrices` read when drawn) when it has two
    columns or more."""
    from evaluation import plots

    if histograms:
        key, title, heading = overlays
        add(
            section,
            key,
            title,
            lambda: plots.column_overlays(histograms, heading, max_columns=limits.max_plot_columns),
        )
    if len(columns) >= 2:
        key, title = associations
        add(
            section,
            key,
            title,
            lambda: plots.association_heatmaps(
                columns, matrices(), "Spearman (numeric pairs) / Cramer's V (others)", rank_by=rank_by
            ),
        )


def _difference(association: dict[str, Any]) -> list[list[float | None]]:
    """Synthetic minus real association, cell by cell (None where either is None)."""
    return [
        [None if r is None or s is None else s - r for r, s in zip(rr, sr, strict=True)]
        for rr, sr in zip(association["real"], association["synthetic"], strict=True)
    ]

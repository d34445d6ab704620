"""Figures of the report, drawn with matplotlib's Agg backend into PNG bytes.

Each function takes already computed figures (never tables), so what a plot
can show is exactly what its section computed. Figures are built on
`matplotlib.figure.Figure` directly (no pyplot state), and saved without a
timestamp so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_HEATMAP_COLUMNS",
    "association_heatmaps",
    "column_overlays",
    "dcr_histogram",
    "focus_columns",
    "roc_curves",
    "to_png",
]

REAL_COLOR = "#1f5fa8"
SYNTHETIC_COLOR = "#e07b1a"
HOLDOUT_COLOR = "#6a8f3a"
MAX_BARS = 40


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(fig)
    return fig


def _margins(
    fig, *, left: float, right: float, top: float, bottom: float, wspace: float = 0.0, hspace: float = 0.0
) -> None:
    """Fixed margins in inches (room for titles and tick labels): the figure is laid out without
    measuring its text, so it is drawn once when saved (a tight layout and a tight bounding box drew
    every figure three times, most of a report's drawing time)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width,
        right=1.0 - right / width,
        top=1.0 - top / height,
        bottom=bottom / height,
        wspace=wspace,
        hspace=hspace,
    )


def to_png(fig) -> bytes:
    """The figure drawn once, as an RGB PNG: its background is opaque, so the alpha channel carries
    nothing, and zlib level 3 encodes it in half the time of the default level 6 into fewer bytes
    than RGBA at level 6. Text is drawn unhinted (a quarter of a panel figure's drawing time, and at
    80 dpi barely visible). No metadata: the same figure gives the same bytes."""
    import matplotlib
    from PIL import Image

    with matplotlib.rc_context({"text.hinting": "none"}):
        fig.canvas.draw()
    rgb = np.ascontiguousarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="png", compress_level=3)
    return buf.getvalue()


def _short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _bars(ax, x: np.ndarray, heights: np.ndarray, width: float, color: str, label: str) -> None:
    """Bars as one collection of rectangles: one artist, no per-bar patch or limit update."""
    from matplotlib.collections import PolyCollection

    left, right = x - width / 2, x + width / 2
    zero = np.zeros_like(heights)
    verts = np.stack(
        [
            np.column_stack([left, zero]),
            np.column_stack([left, heights]),
            np.column_stack([right, heights]),
            np.column_stack([right, zero]),
        ],
        axis=1,
    )
    ax.add_collection(
        PolyCollection(verts, facecolors=color, edgecolors="none", antialiaseds=False, label=label),
        autolim=False,
    )


def _axis_labels(ax, axis: str, positions: Sequence[float], labels: Sequence[str], *, rotation: float = 0.0) -> None:
    """Category names along an axis as plain text, in the place of tick labels: a tick carries two
    texts and three lines, most of the cost of drawing a small panel."""
    from matplotlib.transforms import ScaledTranslation

    pad = 3.5 / 72  # inches, matplotlib's tick-label pad
    if axis == "x":
        ax.set_xticks([])
        trans = ax.get_xaxis_transform() + ScaledTranslation(0.0, -pad, ax.figure.dpi_scale_trans)
        ha = "right" if 0 < rotation < 90 else "center"
        for x, label in zip(positions, labels, strict=True):
            ax.text(x, 0.0, label, transform=trans, rotation=rotation, ha=ha, va="top", fontsize=6)
    else:
        ax.set_yticks([])
        trans = ax.get_yaxis_transform() + ScaledTranslation(-pad, 0.0, ax.figure.dpi_scale_trans)
        for y, label in zip(positions, labels, strict=True):
            ax.text(0.0, y, label, transform=trans, rotation=rotation, ha="right", va="center", fontsize=6)


def _panel_title(ax, text: str) -> None:
    """A panel's title as plain text above it (an Axes title re-measures the axis to place itself)."""
    ax.text(0.5, 1.03, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=9)


def column_overlays(
    histograms: dict[str, dict[str, Any]], title: str, *, columns_per_row: int = 4, max_columns: int = 40
) -> bytes:
    """One small panel per column: bars of the synthetic shares, and the real ones when given.

    Each panel's y axis is labelled at 0 and at one or two round shares only, its x axis at
    most seven categories; the bars of a series are one collection."""
    from matplotlib.ticker import MaxNLocator

    names = list(histograms)[:max_columns]
    rows = max(1, math.ceil(len(names) / columns_per_row))
    fig = _figure(3.2 * columns_per_row, 2.4 * rows + 0.4)
    fig.suptitle(title)
    handles: list[Any] = []
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns_per_row, i + 1)
        h = histograms[name]
        labels = list(h["labels"])
        syn = np.asarray(h["synthetic"], dtype=float)
        real = np.asarray(h["real"], dtype=float) if h.get("real") is not None else None
        if labels and labels[-1] == "(null)" and syn[-1] == 0 and (real is None or real[-1] == 0):
            labels, syn = labels[:-1], syn[:-1]
            real = real[:-1] if real is not None else None
        if len(labels) > MAX_BARS:  # keep the largest cells
            weight = syn + (real if real is not None else 0)
            keep = np.sort(np.argsort(-weight, kind="stable")[:MAX_BARS])
            labels = [labels[k] for k in keep]
            syn = syn[keep]
            real = real[keep] if real is not None else None
        x = np.arange(len(labels), dtype=float)
        if real is not None:
            _bars(ax, x - 0.2, real, 0.4, REAL_COLOR, "real")
            _bars(ax, x + 0.2, syn, 0.4, SYNTHETIC_COLOR, "synthetic")
        else:
            _bars(ax, x, syn, 0.8, SYNTHETIC_COLOR, "synthetic")
        top = max(float(np.nanmax(syn, initial=0.0)), float(np.nanmax(real, initial=0.0)) if real is not None else 0.0)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ylim = top * 1.05 if top > 0 else 1.0
        ax.set_ylim(0.0, ylim)
        shares = [v for v in MaxNLocator(nbins=2).tick_values(0.0, ylim) if 0.0 <= v <= ylim]
        _axis_labels(ax, "y", shares, [f"{v:.3g}" for v in shares])
        _panel_title(ax, _short(name, 28))
        step = max(1, math.ceil(len(labels) / 7))
        _axis_labels(ax, "x", x[::step], [_short(lbl, 10) for lbl in labels[::step]], rotation=45)
        if i == 0:
            handles = list(ax.collections)
    if handles:
        fig.legend(handles=handles, loc="upper right", ncols=len(handles), fontsize=7, frameon=False)
    _margins(fig, left=0.4, right=0.15, top=0.55, bottom=0.6, wspace=0.25, hspace=0.6 / 1.8)
    return to_png(fig)


MAX_HEATMAP_COLUMNS = 24  # beyond this the labels of a 4-inch panel overlap


def focus_columns(
    names: Sequence[str], matrices: dict[str, list[list[float | None]]], rank_by: str, limit: int
) -> tuple[list[str], dict[str, list[list[float | None]]]]:
    """The `limit` columns whose associations in `matrices[rank_by]` are largest (mean absolute value over
    the other columns), in their original order, with every matrix cut to them; all of them when they fit."""
    if len(names) <= limit:
        return list(names), matrices
    arr = np.array([[np.nan if v is None else abs(v) for v in row] for row in matrices[rank_by]], dtype=float)
    np.fill_diagonal(arr, np.nan)
    with np.errstate(all="ignore"):
        score = np.nan_to_num(np.nanmean(arr, axis=1), nan=0.0)
    keep = np.sort(np.argsort(-score, kind="stable")[:limit])
    cut = {label: [[m[i][j] for j in keep] for i in keep] for label, m in matrices.items()}
    return [names[i] for i in keep], cut


def association_heatmaps(
    names: Sequence[str],
    matrices: dict[str, list[list[float | None]]],
    title: str,
    *,
    rank_by: str | None = None,
    max_columns: int = MAX_HEATMAP_COLUMNS,
) -> bytes:
    """Side-by-side heatmaps (e.g. real, synthetic, synthetic - real) of association matrices.

    With more than `max_columns` columns the panels show the columns with the largest associations in
    `matrices[rank_by]` (default: the last matrix), and the title says so."""
    total = len(names)
    names, matrices = focus_columns(names, matrices, rank_by or list(matrices)[-1], max_columns)
    if len(names) < total:
        title = f"{title}\nthe {len(names)} of {total} columns with the largest {rank_by or list(matrices)[-1]} associations"
    fig = _figure(4.4 * len(matrices) + 0.6, 4.6)
    fig.suptitle(title)
    short = [_short(n, 12) for n in names]
    ticks = list(range(len(names)))
    for i, (label, m) in enumerate(matrices.items()):
        ax = fig.add_subplot(1, len(matrices), i + 1)
        arr = np.array([[np.nan if v is None else v for v in row] for row in m], dtype=float)
        im = ax.imshow(arr, vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
        _panel_title(ax, label)
        _axis_labels(ax, "x", ticks, short, rotation=90)
        # the panels share their rows: the column names are written once, left of the first
        if i == 0:
            _axis_labels(ax, "y", ticks, short)
        else:
            ax.set_yticks([])
    top = 0.75 if "\n" in title else 0.55
    _margins(fig, left=0.75, right=0.75, top=top, bottom=0.75, wspace=0.2)
    # one colour scale for every panel (all are drawn on -1..1 with the same colour map), in the right margin
    width, height = fig.get_size_inches()
    cax = fig.add_axes((1.0 - 0.55 / width, 0.75 / height, 0.12 / width, 1.0 - (top + 0.75) / height))
    fig.colorbar(im, cax=cax, ticks=[-1, -0.5, 0, 0.5, 1])
    cax.tick_params(labelsize=7)
    return to_png(fig)


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """ROC curves, TSTR dashed and TRTR solid, one colour per model."""
    fig = _figure(5.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    colors = [REAL_COLOR, SYNTHETIC_COLOR, HOLDOUT_COLOR, "#8a3f9e"]
    models = sorted({k.rsplit("_", 1)[0] for k in curves})
    for i, model in enumerate(models):
        for setting, style in (("trtr", "-"), ("tstr", "--")):
            if f"{model}_{setting}" in curves:
                fpr, tpr = curves[f"{model}_{setting}"]
                ax.plot(fpr, tpr, style, color=colors[i % len(colors)], label=f"{model} {setting.upper()}")
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    _margins(fig, left=0.65, right=0.15, top=0.35, bottom=0.55)
    return to_png(fig)


def dcr_histogram(d_train: np.ndarray, d_holdout: np.ndarray, title: str) -> bytes:
    """Distances to the closest training row and to the closest holdout row."""
    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    top = float(np.percentile(np.r_[d_train, d_holdout], 99)) if d_train.size else 1.0
    bins = np.linspace(0.0, max(top, 1e-6), 41)
    ax.hist(
        np.clip(d_train, 0, bins[-1]), bins=bins, histtype="step", linewidth=1.6, color=REAL_COLOR, label="to training"
    )
    ax.hist(
        np.clip(d_holdout, 0, bins[-1]),
        bins=bins,
        histtype="step",
        linewidth=1.6,
        linestyle="--",
        color=SYNTHETIC_COLOR,
        label="to holdout",
    )
    ax.set_xlabel("distance to closest record (mixed-type, schema scaling)")
    ax.set_ylabel("synthetic rows")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _margins(fig, left=0.65, right=0.15, top=0.35, bottom=0.55)
    return to_png(fig)

"""The report's figures: what the bars show, the PNG they are saved as, and the drawing's side effects."""

from __future__ import annotations

import gc
import io

import numpy as np
import pytest
from PIL import Image

from evaluation import plots
from evaluation._common import EvaluationLimits
from evaluation.figures import draw_figures
from evaluation.parts import Section


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGB"
    return np.asarray(image)


def _bar_rows(pixels: np.ndarray, color: str) -> int:
    """How many pixel rows hold the exact colour (bars are drawn without antialiasing)."""
    rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    return int(np.all(pixels == rgb, axis=-1).any(axis=1).sum())


def test_column_overlays_draw_bars_as_tall_as_their_shares() -> None:
    histograms = {"colour": {"labels": ["red", "green", "blue"], "real": [0.8, 0.2, 0.0], "synthetic": [0.4, 0.1, 0.5]}}
    png = plots.column_overlays(histograms, "shares", columns_per_row=1)
    panel = _pixels(png)[int(0.55 * 80) :]  # below the top margin, which holds the title and the legend
    real, synthetic = _bar_rows(panel, plots.REAL_COLOR), _bar_rows(panel, plots.SYNTHETIC_COLOR)
    # the tallest real bar (0.8) against the tallest synthetic one (0.5)
    assert synthetic > 20
    assert real / synthetic == pytest.approx(0.8 / 0.5, rel=0.05)
    assert plots.column_overlays(histograms, "shares", columns_per_row=1) == png  # the same bytes each time


def test_a_panel_without_real_shares_draws_synthetic_bars_only() -> None:
    png = plots.column_overlays({"c": {"labels": ["a", "b"], "synthetic": [0.3, 0.7]}}, "synthetic")
    pixels = _pixels(png)
    assert _bar_rows(pixels, plots.SYNTHETIC_COLOR) > 0
    assert _bar_rows(pixels, plots.REAL_COLOR) == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_drawing_leaves_the_garbage_collector_as_it_found_it(monkeypatch, enabled: bool) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(plots, "column_overlays", fail)
    histogram = {"labels": ["a"], "synthetic": [1.0]}
    section = Section(
        "synthetic",
        "Synthetic",
        "public",
        data={"columns": {"c": {"histogram": histogram}}, "association": {"columns": ["c"]}},
    )
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        draw_figures({"synthetic": section}, EvaluationLimits())
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert any("could not be drawn" in note for note in section.notes)

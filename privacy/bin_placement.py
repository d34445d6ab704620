"""Bin edges where the data is, paid for: DP quantiles of each binned numeric column.

The equal-width bins of `DomainEncoder` come from the public schema alone. With
`adaptive_bins_share` > 0, a native marginal method first spends that share of
its rho on placing the bins of every binned numeric column (continuous, and
ordinal with more integers than codes; not categorical, datetime or integer-coded
columns, and never the declared special values, which keep their own codes):

1. per column, a histogram on a fine public grid (`cells` equal cells between
   the declared bounds) of the non-null values other than the special values,
   measured with the Gaussian mechanism (one row changes one cell by one: L2
   sensitivity 1 under add/remove), the share split equally over the columns;
2. post-processing of the noisy counts only: cells below `THRESHOLD` sigma are
   set to zero (the noise of empty cells would otherwise spread mass over the
   whole range), the counts' distribution is mixed half and half with the
   uniform one (so no bin is wider than twice an equal-width bin, and a few
   surviving cells cannot take every edge), and the `bins` - 1 inner edges are
   put at the quantiles k / bins of that mixture, interpolated inside a cell; an integer
   column's edges move to the nearest half-integer so every bin holds an
   integer; equal edges merge, so a column may get fewer bins; the declared
   bounds stay the outer edges. When nothing survives the threshold, the
   column keeps its equal-width bins.

The only cost is the histograms' rho, charged to the fit's `ZCDPLedger` as one
step per column, so the fit still spends exactly the rho of the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from privacy.encoding import ColumnEncoding, DomainEncoder, check_edges
from privacy.engine.accounting import ZCDPLedger
from privacy.engine.mechanisms import gaussian_measure
from privacy.schema import NUMERIC_KINDS

__all__ = [
    "GRID_CELLS",
    "THRESHOLD",
    "UNIFORM_WEIGHT",
    "BinPlacement",
    "edges_from_counts",
    "grid_counts",
    "place_bin_edges",
    "placeable_columns",
]

GRID_CELLS = 256
UNIFORM_WEIGHT = 0.5  # the placed mass is mixed with this much uniform mass: no bin is wider than 1 / (w bins)
THRESHOLD = 3.0  # noisy grid counts below this many sigma count as zero (as MST's compression)


@dataclass(frozen=True)
class BinPlacement:
    """What the placement did: the rho spent, the mechanism's parameters, the edges (a DP output)."""

    rho: Fraction
    cells: int
    sigma: float | None
    measured: tuple[str, ...]
    edges: dict[str, tuple[float, ...]]

    def to_dict(self) -> dict:
        return {
            "rho": str(self.rho),
            "rho_float": float(self.rho),
            "mechanism": (
                f"Gaussian histogram on {self.cells} equal cells between the declared bounds per column "
                "(L2 sensitivity 1), edges at the noisy quantiles (post-processing)"
            ),
            "cells": self.cells,
            "sigma": self.sigma,
            "columns": list(self.measured),
            "bins": {k: len(v) - 1 for k, v in self.edges.items()},
        }


def placeable_columns(encoder: DomainEncoder) -> list[ColumnEncoding]:
    """The binned numeric columns whose bins can be placed (more than one bin)."""
    return [
        e
        for e in encoder.encodings
        if e.mode == "bins" and e.spec.kind in NUMERIC_KINDS and e.n_bins > 1 and e.hi > e.lo
    ]


def grid_counts(values: pd.Series, enc: ColumnEncoding, cells: int) -> np.ndarray:
    """The exact histogram on `cells` equal cells between the bounds of the non-null values that are not
    special values (what the Gaussian mechanism is applied to)."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    x = x[~np.isnan(x)]
    if enc.specials:
        x = x[~np.isin(x, np.asarray(enc.specials))]
    x = np.clip(x, enc.lo, enc.hi)
    width = (enc.hi - enc.lo) / cells
    idx = np.minimum(((x - enc.lo) / width).astype(np.int64), cells - 1)
    return np.bincount(idx, minlength=cells).astype(float)


def edges_from_counts(
    counts: np.ndarray, lo: float, hi: float, bins: int, *, integer: bool = False, floor: float = 0.0
) -> tuple[float, ...] | None:
    """Edges putting about equal mass of the (noisy) grid `counts` in each of `bins` bins.

    Counts below `floor` are taken as zero. None when no mass is left (keep equal-width bins).
    """
    y = np.where(np.asarray(counts, dtype=float) >= max(floor, 0.0), counts, 0.0)
    y = np.clip(y, 0.0, None)
    total = float(y.sum())
    if not total > 0 or bins < 2:
        return None
    grid = np.linspace(lo, hi, len(y) + 1)
    cum = (1 - UNIFORM_WEIGHT) * np.concatenate([[0.0], np.cumsum(y)]) / total + UNIFORM_WEIGHT * np.linspace(
        0, 1, len(y) + 1
    )
    targets = np.arange(1, bins) / bins
    # the first grid edge where the cumulative mass reaches each target, interpolated inside its cell
    k = np.clip(np.searchsorted(cum, targets, side="left"), 1, len(y))
    span = cum[k] - cum[k - 1]
    frac = np.where(span > 0, (targets - cum[k - 1]) / np.where(span > 0, span, 1.0), 1.0)
    inner = grid[k - 1] + frac * (grid[k] - grid[k - 1])
    if integer:
        inner = np.floor(inner) + 0.5
    inner = np.unique(inner[(inner > lo) & (inner < hi)])
    if integer:
        # the first bin holds ceil(lo) .., the last .. floor(hi): drop an edge that would empty either
        inner = inner[(inner > math.ceil(lo)) & (inner < math.floor(hi))]
    return check_edges([lo, *inner.tolist(), hi], lo, hi, integer=integer)


def place_bin_edges(
    table: pd.DataFrame,
    encoder: DomainEncoder,
    ledger: ZCDPLedger,
    rho: Fraction,
    rng: np.random.Generator,
    *,
    cells: int = GRID_CELLS,
) -> BinPlacement:
    """Measure each placeable column's grid histogram at rho / columns, charge `ledger`, return the edges.

    Spends nothing when there is no column to place.
    """
    columns = placeable_columns(encoder)
    if not columns or rho <= 0:
        return BinPlacement(Fraction(0), cells, None, (), {})
    each = rho / len(columns)
    edges: dict[str, tuple[float, ...]] = {}
    sigma = None
    for enc in columns:
        sigma = ledger.gaussian(f"place bins of {enc.name}", each)
        noisy = gaussian_measure(grid_counts(table[enc.name], enc, cells), sigma, rng)
        placed = edges_from_counts(
            noisy, enc.lo, enc.hi, enc.n_bins, integer=enc.spec.is_integer, floor=THRESHOLD * sigma
        )
        if placed is not None:
            edges[enc.name] = placed
    return BinPlacement(each * len(columns), cells, sigma, tuple(e.name for e in columns), edges)

"""The optimal lattice search: the node of least information loss that reaches k.

Branch and bound over the nodes of the quasi-identifiers' hierarchies
(privacy.generalise.hierarchy), as documented in `privacy.generalise`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privacy._classes import combine_codes, sizes_from_ids
from privacy.generalise.hierarchy import (
    _TIE,
    _level_arrays,
    column_levels,
    describe_levels,
    describe_node,
)
from privacy.schema import ColumnSpec

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------
# the lattice search
# ----------------------------------------------------------------------------------


@dataclass
class LatticeResult:
    """The node chosen (a level per quasi-identifier) and what the search did to find it."""

    levels: tuple[int, ...]
    acceptable: bool
    rows_suppressed: int
    information_loss: float
    generalisation_loss: float
    nodes: int
    nodes_evaluated: int


def search_lattice(
    codes: Sequence[Sequence[np.ndarray]],
    losses: Sequence[Sequence[np.ndarray]],
    k: int,
    max_suppressed_rows: int,
    *,
    exhaustive: bool = False,
) -> LatticeResult:
    """The node of least LM whose classes below k hold at most `max_suppressed_rows` rows.

    `codes[q][l]` and `losses[q][l]` are the class codes and per-row LM of
    quasi-identifier q at level l. Ties go to fewer suppressed rows, then to the
    lower node. `exhaustive` evaluates every node (for tests); the answer is the
    same. When no node is acceptable (fewer than k rows), the top node is
    returned with `acceptable` False.
    """
    q = len(codes)
    n = len(codes[0][0]) if q else 0
    bounds = [[float(arr.mean()) if n else 0.0 for arr in per_q] for per_q in losses]
    nodes = list(itertools.product(*(range(len(per_q)) for per_q in codes)))

    def bound(node: tuple[int, ...]) -> float:
        return sum(bounds[i][lv] for i, lv in enumerate(node)) / q

    nodes.sort(key=lambda nd: (bound(nd), sum(nd), nd))
    best: tuple[float, int, int, tuple[int, ...]] | None = None
    best_extra: tuple[float, float] = (1.0, 1.0)
    evaluated = 0
    for node in nodes:
        lb = bound(node)
        if best is not None and not exhaustive and lb > best[0] + _TIE:
            break
        evaluated += 1
        ids = combine_codes([codes[i][lv] for i, lv in enumerate(node)], n)
        small = sizes_from_ids(ids) < k
        suppressed = int(small.sum())
        if suppressed > max_suppressed_rows:
            continue
        row = np.sum([losses[i][lv] for i, lv in enumerate(node)], axis=0) / q
        loss = (float(row[~small].sum()) + suppressed) / n if n else 0.0
        key = (round(loss, 12), suppressed, sum(node), node)
        if best is None or key < best:
            best = key
            kept = int(n - suppressed)
            best_extra = (loss, float(row[~small].sum()) / kept if kept else 0.0)
    if best is None:
        top = tuple(len(per_q) - 1 for per_q in codes)
        return LatticeResult(top, False, n, 1.0, 1.0, len(nodes), evaluated)
    return LatticeResult(best[3], True, best[1], best_extra[0], best_extra[1], len(nodes), evaluated)


@dataclass
class LatticeChoice:
    """What `choose_generalisation` decided: the recodings to apply and a public summary of the search."""

    recodings: dict[str, dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


def choose_generalisation(
    table: pd.DataFrame,
    specs: Mapping[str, ColumnSpec],
    quasi_identifiers: Sequence[str],
    k: int,
    max_suppression: float,
) -> LatticeChoice:
    """Pick the least-loss generalisation of the quasi-identifiers of a synthetic table (see the module doc)."""
    import time

    started = time.perf_counter()
    qis = list(quasi_identifiers)
    n = len(table)
    levels = {q: column_levels(q, specs[q], table[q]) for q in qis}
    arrays = {q: [_level_arrays(table[q], rec) for rec in levels[q]] for q in qis}
    allowed = int(math.floor(max_suppression * n + 1e-9))
    result = search_lattice(
        [[a[0] for a in arrays[q]] for q in qis], [[a[1] for a in arrays[q]] for q in qis], k, allowed
    )
    recodings: dict[str, dict[str, Any]] = {}
    chosen: dict[str, int] = {}
    for q, lv in zip(qis, result.levels, strict=True):
        chosen[q] = lv
        rec = levels[q][lv]
        if rec is not None:
            recodings[q] = {**rec, "information_loss": float(arrays[q][lv][1].mean()) if n else 0.0}
    labels = {q: describe_levels(levels[q]) for q in qis}
    summary = {
        "metric": "loss metric (Iyengar 2002): 0 = every value as synthesized, 1 = every value suppressed",
        "k": k,
        "max_suppression": max_suppression,
        "rows_allowed_suppressed": allowed,
        "levels": chosen,
        "level_labels": labels,
        "node": describe_node(chosen, labels),
        "acceptable": result.acceptable,
        "information_loss": result.information_loss,
        "generalisation_loss": result.generalisation_loss,
        "rows_suppressed": result.rows_suppressed,
        "nodes": result.nodes,
        "nodes_evaluated": result.nodes_evaluated,
    }
    logger.info(
        "lattice search: %d of %d nodes evaluated in %.3f s; chosen %s, loss %.4f, %d suppressed",
        result.nodes_evaluated,
        result.nodes,
        time.perf_counter() - started,
        summary["node"],
        result.information_loss,
        result.rows_suppressed,
    )
    return LatticeChoice(recodings, summary)

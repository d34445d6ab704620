"""Array helpers for factors over cliques (sorted attribute tuples).

A factor over clique C is an ndarray whose axes follow C's (sorted) attribute
order, so broadcasting to a superset is a reshape and marginalising is a sum
over the axes that are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privacy.engine.table import Clique

__all__ = ["broadcast_shape", "drop_axes", "expand", "logsumexp_to", "sum_to"]


def broadcast_shape(clique: Clique, target: Clique, sizes: Sequence[int]) -> tuple[int, ...]:
    """Shape that lays a factor over `clique` along the axes of `target` (a superset)."""
    members = set(clique)
    return tuple(int(sizes[a]) if a in members else 1 for a in target)


def expand(values: np.ndarray, clique: Clique, target: Clique, sizes: Sequence[int]) -> np.ndarray:
    """A view of `values` (over `clique`) broadcastable against a factor over `target`."""
    if clique == target:
        return values
    return values.reshape(broadcast_shape(clique, target, sizes))


def drop_axes(clique: Clique, keep: Clique) -> tuple[int, ...]:
    """Axes of a factor over `clique` that are not in `keep`."""
    kept = set(keep)
    return tuple(i for i, a in enumerate(clique) if a not in kept)


def sum_to(values: np.ndarray, clique: Clique, keep: Clique) -> np.ndarray:
    """Marginalise a factor over `clique` onto `keep` (a subset, sorted)."""
    axes = drop_axes(clique, keep)
    return values.sum(axis=axes) if axes else values


def logsumexp_to(values: np.ndarray, clique: Clique, keep: Clique) -> np.ndarray:
    """log(sum(exp(values))) over the axes of `clique` not in `keep`, stably."""
    axes = drop_axes(clique, keep)
    if not axes:
        return values
    top = values.max(axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.exp(values - top).sum(axis=axes))
    return out + top.reshape(out.shape)

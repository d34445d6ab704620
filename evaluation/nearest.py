"""Exact nearest-neighbour searches of the privacy section: squared distances from each query row to
its closest reference row (a KD tree in few dimensions; otherwise a float32 matrix product whose
candidates are measured again in float64, within a proven rounding margin, and each query's own
categorical group first). evaluation.privacy_risk's DCR and distance attack use them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation._tables import ColumnView
from evaluation.kernels import NotScorable

__all__ = [
    "KD_TREE_MAX_DIMENSIONS",
    "category_groups",
    "group_labels",
    "nearest_distances",
    "nearest_sq_distances_brute",
    "nearest_sq_distances_grouped",
]

KD_TREE_MAX_DIMENSIONS = 12


def nearest_distances(
    reference: np.ndarray,
    queries: np.ndarray,
    exact: np.ndarray | None = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Distance from each query row to its closest reference row.

    A KD-tree for low-dimensional rows, otherwise `nearest_sq_distances_brute`
    (a float32 matrix product that finds the candidates, every one rechecked in
    float64). `exact` marks queries known (by row hash) to have an identical row
    in the searched table: they get exactly 0 without a search, and the others at
    least 1e-12. `groups` (a label per reference row and per query row, see
    `category_groups`) may speed the search; the distances are the same.
    """
    if reference.shape[0] == 0:
        raise NotScorable("no reference rows to search")
    if exact is None:
        return _nearest(reference, queries, groups)
    d = np.zeros(len(queries))
    searched = ~np.asarray(exact, dtype=bool)  # the rows known to have an identical row are not searched
    if searched.any():
        sub = None if groups is None else (groups[0], groups[1][searched])
        d[searched] = np.maximum(_nearest(reference, queries[searched], sub), 1e-12)
    return d


def _nearest(reference: np.ndarray, queries: np.ndarray, groups: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if reference.shape[1] <= KD_TREE_MAX_DIMENSIONS:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(reference)
        return nn.kneighbors(queries, return_distance=True)[0][:, 0]
    if groups is None:
        return np.sqrt(nearest_sq_distances_brute(reference, queries))
    return np.sqrt(nearest_sq_distances_grouped(reference, queries, *groups))


# Rows that differ in a categorical column are at squared distance at least 1 (MixedDistanceEncoder: a
# mismatch adds two squared one-hot entries of 1/sqrt(2)); the margin covers the float64 rounding of 1/2.
GROUP_SEPARATION = 1.0 - 1e-9
MAX_SEARCH_GROUPS = 256


def category_groups(views: dict[str, ColumnView], reference: pd.DataFrame) -> list[str]:
    """Categorical columns whose joint category splits the reference rows into small groups.

    Chosen greedily (at most `MAX_SEARCH_GROUPS` groups, each column cutting the sum of squared group
    shares by a fifth at least): the search of a query reads its own group first, and only a query left
    at squared distance 1 or more searches every group. The choice changes the cost, not the distances.
    """
    candidates = {n: v for n, v in views.items() if v.kind == "categorical" and v.size > 1}
    codes = {n: v.codes(reference[n]).astype(np.int64) for n, v in candidates.items()}
    joint, cells, chosen, concentration = np.zeros(len(reference), dtype=np.int64), 1, [], 1.0
    while len(reference):
        best: tuple[float, str, np.ndarray] | None = None
        for name, view in candidates.items():
            if name in chosen or cells * view.size > 1_000_000:
                continue
            labels = joint * view.size + codes[name]
            counts = np.bincount(labels, minlength=cells * view.size)
            counts = counts[counts > 0]
            share = float(np.square(counts / len(labels)).sum())
            if counts.size <= MAX_SEARCH_GROUPS and (best is None or share < best[0]):
                best = (share, name, labels)
        if best is None or best[0] > 0.8 * concentration:
            break
        concentration, name, joint = best
        chosen.append(name)
        cells *= candidates[name].size
    return chosen


def group_labels(views: dict[str, ColumnView], columns: list[str], df: pd.DataFrame) -> np.ndarray:
    """The joint category of `columns` of each row, as one integer."""
    labels = np.zeros(len(df), dtype=np.int64)
    for name in columns:
        labels = labels * views[name].size + views[name].codes(df[name])
    return labels


def nearest_sq_distances_grouped(
    reference: np.ndarray, queries: np.ndarray, reference_groups: np.ndarray, query_groups: np.ndarray
) -> np.ndarray:
    """`nearest_sq_distances_brute`, reading first the reference rows of each query's own group.

    Rows of different groups are at squared distance at least `GROUP_SEPARATION`: a query whose
    closest row in its group is nearer than that has its answer; the others search every row.
    """
    best = np.full(len(queries), np.inf)
    for group in np.unique(query_groups):
        in_group = np.flatnonzero(query_groups == group)
        members = np.flatnonzero(reference_groups == group)
        if members.size:
            best[in_group] = nearest_sq_distances_brute(reference[members], queries[in_group])
    still_open = ~(best < GROUP_SEPARATION)
    if still_open.any():
        best[still_open] = nearest_sq_distances_brute(reference, queries[still_open])
    return best


FLOAT32_UNIT_ROUNDOFF = 2.0**-24
BRUTE_QUERY_BLOCK = 128  # queries per matrix product: a block's products stay small enough to scan fast
BRUTE_STRIKES = 4  # closest candidates measured one at a time before all the remaining ones at once
BRUTE_PAIR_CHUNK = 8_192  # candidate pairs measured together


def nearest_sq_distances_brute(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance from each query row to its closest reference row, exact in float64.

    One float32 matrix product per block of queries gives every |r|^2 - 2 q.r (half the cost of
    float64). Its rounding error is below (n + 3) u (|q|^2 + 2 |r|^2), n = dimensions + 1 terms and
    u the float32 unit round-off (the dot-product bound plus the rounding of the inputs to float32);
    `margin` is four times that, with the largest |r|^2. The reference with the
    smallest approximate value is measured exactly, as sum((q - r)^2) in float64, then struck out; the
    search of a query stops when no remaining approximate value is within the margin of the best
    exact distance found, so no reference that could be closer is left unmeasured (after
    `BRUTE_STRIKES` rounds, every remaining candidate is measured at once, so that many tied rows
    cost one pass). The result is the exact minimum: it does not depend on the float32 rounding
    (ties included).
    """
    reference = np.asarray(reference, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    n_ref, dims = reference.shape
    out = np.empty(len(queries))
    if len(queries) == 0:
        return out
    ref_norms = np.einsum("ij,ij->i", reference, reference)
    augmented = np.empty((dims + 1, n_ref), dtype=np.float32)  # [-2 r, |r|^2], transposed
    augmented[:dims] = -2.0 * reference.T
    augmented[dims] = ref_norms
    query_norms = np.einsum("ij,ij->i", queries, queries)
    margin = 4.0 * (dims + 5) * FLOAT32_UNIT_ROUNDOFF * (query_norms + 2.0 * ref_norms.max())
    block_q = np.empty((BRUTE_QUERY_BLOCK, dims + 1), dtype=np.float32)
    for start in range(0, len(queries), BRUTE_QUERY_BLOCK):
        block = queries[start : start + BRUTE_QUERY_BLOCK]
        nb = len(block)
        block_q[:nb, :dims] = block
        block_q[:nb, dims] = 1.0
        approx = block_q[:nb] @ augmented  # |r|^2 - 2 q.r, up to the margin
        norms, slack = query_norms[start : start + nb], margin[start : start + nb]
        best = np.full(nb, np.inf)
        rows = np.arange(nb)
        for _ in range(BRUTE_STRIKES):
            if not rows.size:
                break
            sub = approx if rows.size == nb else approx[rows]
            nearest = sub.argmin(axis=1)
            estimate = sub[np.arange(rows.size), nearest].astype(np.float64) + norms[rows]
            measured = np.square(block[rows] - reference[nearest]).sum(axis=1)
            best[rows] = np.minimum(best[rows], measured)
            still_open = estimate <= best[rows] + slack[rows]  # another reference may still be closer
            approx[rows[still_open], nearest[still_open]] = np.inf
            rows = rows[still_open]
        if rows.size:  # many near-ties (repeated rows): measure every remaining candidate at once
            bound = best[rows] - norms[rows] + slack[rows]
            pair_row, pair_ref = np.nonzero(approx[rows] <= bound[:, None])
            for at in range(0, pair_row.size, BRUTE_PAIR_CHUNK):
                q, r = rows[pair_row[at : at + BRUTE_PAIR_CHUNK]], pair_ref[at : at + BRUTE_PAIR_CHUNK]
                np.minimum.at(best, q, np.square(block[q] - reference[r]).sum(axis=1))
        out[start : start + nb] = best
    return out

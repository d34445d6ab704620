"""The privacy section's nearest-neighbour search returns the exact closest distance, whatever the float32
product it starts from rounds to."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.kernels import NotScorable
from evaluation.privacy_risk import (
    nearest_distances,
    nearest_sq_distances_brute,
    nearest_sq_distances_grouped,
)


def _direct(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Every pair measured in float64 as sum((q - r)^2): the definition."""
    return np.array([np.square(q - reference).sum(axis=1).min() for q in queries])


SIZES = (2, 5, 9, 16, 40)


def _mixed_rows(rng: np.random.Generator, n: int, numbers: float = 1.0) -> np.ndarray:
    """Rows like the distance encoder's: one-hot blocks scaled by 1/sqrt(2) beside numbers in [0, numbers]."""
    blocks = []
    for size in SIZES:
        onehot = np.zeros((n, size))
        onehot[np.arange(n), rng.integers(0, size, n)] = 1 / np.sqrt(2)
        blocks.append(onehot)
    blocks.append(rng.random((n, 6)) * numbers)
    return np.hstack(blocks)


def _labels(rows: np.ndarray) -> np.ndarray:
    """The joint category of the first three one-hot blocks."""
    return rows[:, :2].argmax(1) * 45 + rows[:, 2:7].argmax(1) * 9 + rows[:, 7:16].argmax(1)


def test_brute_search_equals_the_direct_float64_minimum() -> None:
    rng = np.random.default_rng(0)
    reference, queries = _mixed_rows(rng, 3_000), _mixed_rows(rng, 300)
    got = nearest_sq_distances_brute(reference, queries)
    np.testing.assert_allclose(got, _direct(reference, queries), rtol=1e-12, atol=0)


def test_brute_search_is_exact_where_float32_picks_the_wrong_row() -> None:
    """Rows far from the origin, closest references apart by less than float32 can resolve."""
    rng = np.random.default_rng(1)
    base = rng.random((1, 20)) * 100.0
    queries = base + rng.random((50, 20)) * 1e-3
    reference = np.vstack([base + rng.random((400, 20)) * 1e-3, base + 5.0])
    want = _direct(reference, queries)
    # the float32 product alone picks another row than the closest for some queries: the case is a real test
    r32, q32 = reference.astype(np.float32), queries.astype(np.float32)
    picked = ((r32 * r32).sum(axis=1)[None, :] - 2.0 * q32 @ r32.T).argmin(axis=1)
    assert np.any(np.square(queries - reference[picked]).sum(axis=1) > want)
    np.testing.assert_allclose(nearest_sq_distances_brute(reference, queries), want, rtol=1e-12, atol=0)


def test_brute_search_with_duplicates_and_ties() -> None:
    """Categorical rows only: many references at the same distance, identical rows at distance 0."""
    rng = np.random.default_rng(2)
    rows = _mixed_rows(rng, 200)[:, :72]  # the one-hot blocks only
    reference = np.vstack([rows, rows, rows])
    queries = np.vstack([rows[:50], _mixed_rows(rng, 50)[:, :72]])
    got = nearest_sq_distances_brute(reference, queries)
    np.testing.assert_array_equal(got, _direct(reference, queries))
    assert np.all(got[:50] == 0.0)


def test_brute_search_with_hundreds_of_tied_rows() -> None:
    """One row repeated 600 times and its neighbours: every query has hundreds of closest rows."""
    rng = np.random.default_rng(7)
    rows = _mixed_rows(rng, 30)[:, :72]
    reference = np.vstack([np.repeat(rows[:1], 600, axis=0), rows[1:]])
    queries = rows[:1] + np.zeros((10, 72))
    queries[:, :2] = queries[:, :2][:, ::-1]  # one category changed: 600 rows at squared distance 1
    got = nearest_sq_distances_brute(reference, queries)
    np.testing.assert_array_equal(got, _direct(reference, queries))
    assert np.all(np.abs(got - 1.0) < 1e-12)


def test_nearest_distances_agree_with_scikit_learn() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(3)
    for reference, queries in (
        (_mixed_rows(rng, 2_000), _mixed_rows(rng, 200)),
        (rng.random((500, 4)), rng.random((80, 4))),
    ):
        want = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(reference).kneighbors(queries)[0][:, 0]
        np.testing.assert_allclose(nearest_distances(reference, queries), want, rtol=1e-9, atol=1e-12)


def test_nearest_distances_marks_exact_matches_and_rejects_an_empty_reference() -> None:
    rng = np.random.default_rng(4)
    reference, queries = _mixed_rows(rng, 100), _mixed_rows(rng, 10)
    exact = np.zeros(10, dtype=bool)
    exact[3] = True
    d = nearest_distances(reference, queries, exact)
    assert d[3] == 0.0 and np.all(d[~exact] >= 1e-12)
    assert nearest_sq_distances_brute(reference, queries[:0]).shape == (0,)
    with pytest.raises(NotScorable):
        nearest_distances(reference[:0], queries)


@pytest.mark.parametrize("numbers", [0.1, 1.0])
def test_grouped_search_equals_the_direct_minimum(numbers: float) -> None:
    """Close rows (most queries answered in their own group) and far ones (most search everything)."""
    rng = np.random.default_rng(5)
    reference, queries = _mixed_rows(rng, 2_000, numbers), _mixed_rows(rng, 300, numbers)
    queries[:20] = reference[:20] + 1e-3  # a close row in their own group
    got = nearest_sq_distances_grouped(reference, queries, _labels(reference), _labels(queries))
    np.testing.assert_allclose(got, _direct(reference, queries), rtol=1e-12, atol=0)
    d = nearest_distances(reference, queries, groups=(_labels(reference), _labels(queries)))
    np.testing.assert_allclose(d, np.sqrt(_direct(reference, queries)), rtol=1e-12, atol=0)


def test_grouped_search_reads_other_groups_when_its_own_is_far_or_empty() -> None:
    rng = np.random.default_rng(6)
    reference = _mixed_rows(rng, 500)
    labels = _labels(reference)
    queries = reference[:40].copy()
    queries[:, 16:-6] = 0.0  # leave the grouped blocks alone, move the others: at least 1 from their group
    queries[:20, :2] = queries[:20, :2][:, ::-1]  # and half of them into a group of other rows
    want = _direct(reference, queries)
    got = nearest_sq_distances_grouped(reference, queries, labels, _labels(queries))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    # searching the own group only would have been wrong for some: the fallback is exercised
    own = np.array(
        [
            np.square(q - reference[labels == g]).sum(axis=1).min() if np.any(labels == g) else np.inf
            for q, g in zip(queries, _labels(queries), strict=True)
        ]
    )
    assert np.any(own > want)

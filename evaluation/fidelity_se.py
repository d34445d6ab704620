"""Standard errors of the fidelity figures that are computed on row samples of large tables.

Tables longer than `EvaluationLimits.fidelity_rows` are compared on a seeded sample of that many rows,
drawn without replacement; the figures then differ from those of the whole tables by the sampling
error estimated here. Nothing is counted again: both estimators read the tables already counted.

* One TVD (a column's, or a pair's): a parametric bootstrap over its counted cells. Each replicate adds
  to each sample's cell shares a Gaussian draw with the multinomial covariance (diag(p) - p p') / n,
  scaled by the finite-population correction 1 - n / N, and the TVD is taken again; the standard error
  is the replicates' standard deviation. The bootstrap follows the absolute values of the cell
  differences, which matter where a cell's difference is no larger than its sampling noise.
* The fidelity score and the mean TVDs: the delta method on the rows. Each is a sum of TVDs over
  overlapping histograms (one column is in every pair it belongs to), so their errors are correlated; a
  row's influence is the sum, over every histogram it is counted in, of the figure's derivative in the
  row's cell (sign(p - q) / 2 times the histogram's weight in the figure). The variance of the figure
  is (1 - n / N) times the variance of the influences over the rows divided by n, for the real and the
  synthetic sample, added. The influences' variance is read on at most `INFLUENCE_ROWS` rows of each
  sample. The pair weights (Cramer's V) are held fixed, and where cells differ by no more than their
  sampling noise the linearisation overstates the error (by up to about 1.6 where every cell does).

* The mean TVD of the quasi-identifier marginals: the same delta method over its joint distributions.

A table that is not sampled adds no error, so both are 0 when neither table is sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evaluation.kernels import (
    MIN_PAIR_WEIGHT,
    Contingency,
    NotScorable,
    counted_densely,
    joint_cells,
    sparse_pair_weight,
)

__all__ = [
    "INFLUENCE_ROWS",
    "STANDARD_ERRORS",
    "fpc",
    "mean_tvd_standard_error",
    "score_standard_errors",
    "tvd_standard_error",
]

INFLUENCE_ROWS = 10_000
BOOTSTRAP_REPLICATES = 100
BOOTSTRAP_DRAWS = 200_000  # cap on replicates x cells of one bootstrap (30 replicates at least)
STANDARD_ERRORS = (
    "of the row sampling when a table is longer than the rows compared (0 when neither is sampled; the "
    "finite-population correction 1 - n / N applied to each): of a TVD, a parametric bootstrap over its "
    "counted cells (multinomial covariance); of the fidelity score and the mean TVDs, the delta method on "
    "the rows (every histogram a row is counted in), the pair weights held fixed"
)


def fpc(sampled: int, total: int) -> float:
    """The finite-population correction of the variance of a sample of `sampled` rows of `total`."""
    return max(0.0, 1.0 - sampled / total) if total > 0 else 0.0


def _shares(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=float).ravel()
    if c.sum() <= 0:
        raise NotScorable("an empty table has no distribution")
    return c / c.sum()


def _noise(p: np.ndarray, n: int, correction: float, z: np.ndarray) -> np.ndarray:
    """Gaussian draws (rows of z) with covariance correction * (diag(p) - p p') / n."""
    root = np.sqrt(p)
    return np.sqrt(correction / n) * (z * root - np.outer(z @ root, p))


def tvd_standard_error(
    real_counts: np.ndarray,
    synthetic_counts: np.ndarray,
    real_fpc: float,
    synthetic_fpc: float,
    rng: np.random.Generator,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> float:
    """Standard error of the TVD of two sampled histograms, by a parametric bootstrap over the cells."""
    if real_fpc <= 0 and synthetic_fpc <= 0:
        return 0.0
    rc, sc = np.asarray(real_counts, dtype=float).ravel(), np.asarray(synthetic_counts, dtype=float).ravel()
    n_r, n_s = int(round(rc.sum())), int(round(sc.sum()))
    p, q = _shares(rc), _shares(sc)
    used = (p > 0) | (q > 0)  # an empty cell in both samples has no sampling noise
    p, q = p[used], q[used]
    b = int(np.clip(BOOTSTRAP_DRAWS // max(p.size, 1), 30, replicates))
    diff = np.broadcast_to(p - q, (b, p.size)).copy()
    if real_fpc > 0:
        diff += _noise(p, n_r, real_fpc, rng.standard_normal((b, p.size)))
    if synthetic_fpc > 0:
        diff -= _noise(q, n_s, synthetic_fpc, rng.standard_normal((b, q.size)))
    return float((0.5 * np.abs(diff).sum(axis=1)).std(ddof=1))


# a pair's two-way histogram: its signed half gradient over the cells, and each row's cell in the real and
# in the synthetic sample (None: the pair is counted densely, its cell is code a * size b + code b)
_TwoWay = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _influence_variance(
    codes: dict[str, np.ndarray],
    one_way: dict[str, np.ndarray],
    two_way: dict[tuple[str, str], _TwoWay],
    pair_weights: dict[tuple[str, str], float],
    sizes: dict[str, int],
    rows: np.ndarray,
    side: int,
) -> dict[str, float]:
    """Variance over `rows` of each figure's influence: gradients are the histograms' signed halves. `side`
    picks the rows' cells of a pair counted sparsely: 1 for the real sample, 2 for the synthetic one."""
    m = rows.size
    sub = {name: c[rows].astype(np.int64) for name, c in codes.items()}  # the rows' cells, read once
    one, two, weighted = np.zeros(m), np.zeros(m), np.zeros(m)
    for name, half_sign in one_way.items():
        one += half_sign[sub[name]]
    one /= max(len(one_way), 1)
    total_weight = sum(pair_weights.values())
    for (a, b), entry in two_way.items():
        half_sign, cells = entry[0], entry[side]
        g = half_sign.ravel()[sub[a] * sizes[b] + sub[b] if cells is None else cells[rows]]
        two += g
        weighted += g * (pair_weights[(a, b)] / total_weight)
    two /= max(len(two_way), 1)
    if not two_way:
        two, weighted = one, one  # the score falls back on the one-way TVDs (kernels.fidelity_from_codes)
    return {
        "score": float(np.var(0.5 * (one + weighted), ddof=1)),
        "mean_one_way_tvd": float(np.var(one, ddof=1)),
        "mean_two_way_tvd": float(np.var(two, ddof=1)),
        "weighted_two_way_tvd": float(np.var(weighted, ddof=1)),
    }


def _influence_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= INFLUENCE_ROWS else np.sort(rng.choice(n, INFLUENCE_ROWS, replace=False))


def score_standard_errors(
    real: Contingency,
    synthetic: Contingency,
    sizes: dict[str, int],
    pairs: Sequence[tuple[str, str]],
    shares: dict[str, tuple[np.ndarray, np.ndarray]],
    real_fpc: float,
    synthetic_fpc: float,
    rng: np.random.Generator,
) -> dict[str, float | None]:
    """Standard errors of the fidelity score and the mean one-way, two-way and weighted two-way TVDs.

    `real` and `synthetic` are the samples' counts the figures were computed from
    (`kernels.fidelity_from_codes`), `shares` each column's real and synthetic cell shares in them. A pair
    with too many cells to count densely is counted over the cells present in either sample, and weighs
    what it weighs in the score (Cramer's V from the codes).
    """
    keys = ("score", "mean_one_way_tvd", "mean_two_way_tvd", "weighted_two_way_tvd")
    if real_fpc <= 0 and synthetic_fpc <= 0:
        return dict.fromkeys(keys, 0.0)
    n_r, n_s = len(real), len(synthetic)
    if n_r < 2 or n_s < 2:
        return dict.fromkeys(keys, None)
    one_way = {name: 0.5 * np.sign(np.asarray(p) - np.asarray(q)) for name, (p, q) in shares.items()}
    two_way: dict[tuple[str, str], _TwoWay] = {}
    weights: dict[tuple[str, str], float] = {}
    rc, sc = real.codes, synthetic.codes
    for a, b in pairs:
        if counted_densely(sizes[a] * sizes[b]):
            tr, ts = real.table(a, b), synthetic.table(a, b)
            two_way[(a, b)] = (0.5 * np.sign(tr / n_r - ts / n_s), None, None)
            weights[(a, b)] = max(_association(real, a, b), _association(synthetic, a, b), MIN_PAIR_WEIGHT)
            continue
        jr, js, tr, ts = joint_cells([rc[a], rc[b]], [sc[a], sc[b]], [sizes[a], sizes[b]])
        two_way[(a, b)] = (0.5 * np.sign(tr / n_r - ts / n_s), jr, js)
        weights[(a, b)] = sparse_pair_weight(rc, sc, sizes, a, b)
    var = dict.fromkeys(keys, 0.0)
    for counts, n, correction, sign, side in (
        (real, n_r, real_fpc, 1.0, 1),
        (synthetic, n_s, synthetic_fpc, -1.0, 2),
    ):
        if correction <= 0:
            continue
        rows = _influence_rows(n, rng)
        signed_one = {k: sign * v for k, v in one_way.items()}
        signed_two = {k: (sign * v[0], v[1], v[2]) for k, v in two_way.items()}
        part = _influence_variance(counts.codes, signed_one, signed_two, weights, sizes, rows, side)
        for k in keys:
            var[k] += correction * part[k] / n
    return {k: float(np.sqrt(v)) for k, v in var.items()}


def mean_tvd_standard_error(
    joints: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    real_fpc: float,
    synthetic_fpc: float,
    rng: np.random.Generator,
) -> float | None:
    """Standard error of the mean TVD of several joint distributions (`kernels.joint_cells` of each), by
    the delta method on the rows, as the mean TVDs of the score: a row's influence is the mean over the
    distributions of sign(p - q) / 2 in its cell."""
    if real_fpc <= 0 and synthetic_fpc <= 0:
        return 0.0
    if not joints:
        return None
    n_r, n_s = joints[0][0].size, joints[0][1].size
    if n_r < 2 or n_s < 2:
        return None
    half_signs = [0.5 * np.sign(cr / n_r - cs / n_s) for _, _, cr, cs in joints]
    var = 0.0
    for side, n, correction in ((0, n_r, real_fpc), (1, n_s, synthetic_fpc)):
        if correction <= 0:
            continue
        rows = _influence_rows(n, rng)
        influence = np.zeros(rows.size)
        for joint, half_sign in zip(joints, half_signs, strict=True):
            influence += half_sign[joint[side][rows]]
        var += correction * float(np.var(influence / len(joints), ddof=1)) / n
    return float(np.sqrt(var))


def _association(counts: Contingency, a: str, b: str) -> float:
    try:
        return counts.cramers_v(a, b)
    except NotScorable:
        return 0.0

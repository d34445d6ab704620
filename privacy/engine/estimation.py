"""Estimation of a graphical model from noisy marginals (Private-PGM's approach).

Given Gaussian measurements y_m of marginals over cliques m, find the
distribution mu (scaled to the estimated total) that minimises

    L(mu) = sum_m 1/2 || (M_m mu - y_m) / sigma_m ||^2

over the marginal polytope of the cliques measured. As in Private-PGM
(McKenna, Sheldon, Miklau 2019), the search runs in the space of log-potentials
theta on the maximal measured cliques: mirror descent with the entropic mirror
map, theta <- theta - alpha * grad L(mu(theta)), where mu(theta) is computed
exactly by message passing on a junction tree, with an Armijo line search on
alpha. Everything is post-processing of the noisy measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from privacy.engine.factor import expand, sum_to
from privacy.engine.junction_tree import JunctionTree, build_junction_tree, clique_probabilities
from privacy.engine.model import GraphicalModel
from privacy.engine.table import Clique, clique_size

__all__ = [
    "MarginalEstimator",
    "Measurement",
    "estimate_total",
    "maximal_cliques",
    "project_to_simplex",
    "shrink_to_uniform",
]


@dataclass(frozen=True)
class Measurement:
    """A noisy marginal: counts over `clique` plus Gaussian noise of std `sigma` (per cell)."""

    clique: Clique
    values: np.ndarray
    sigma: float | np.ndarray
    label: str = ""

    @property
    def weights(self) -> float | np.ndarray:
        return 1.0 / np.square(self.sigma)

    @property
    def total_variance(self) -> float:
        """Variance of the sum of all cells (the measurement's estimate of the total)."""
        s = np.broadcast_to(np.asarray(self.sigma, dtype=float), self.values.shape)
        return float(np.square(s).sum())


def estimate_total(measurements: Sequence[Measurement]) -> float:
    """Minimum-variance unbiased combination of the measurements' totals (at least 1)."""
    estimates = np.array([float(m.values.sum()) for m in measurements])
    variances = np.array([m.total_variance for m in measurements])
    if len(estimates) == 0:
        return 1.0
    variance = 1.0 / np.sum(1.0 / variances)
    return max(1.0, float(variance * np.sum(estimates / variances)))


def shrink_to_uniform(m: Measurement, total: float) -> Measurement:
    """Positive-part James-Stein shrinkage of a noisy marginal towards the uniform table at `total`.

    y' = u + c (y - u) with c = max(0, 1 - (k - 2) sigma^2 / ||y - u||^2), for k >= 3
    cells of equal sigma (otherwise y is returned unchanged). Towards a fixed target
    this has lower expected squared error over the k cells than y itself, whatever
    the true counts (James and Stein 1961); here the total is itself estimated from
    the noisy one-way marginals, which leaves the dominance approximate (as in
    Lindley's variant, which shrinks towards the measurement's own mean). It matters
    where the noise swamps the counts: a marginal whose k cells hold a few hundred
    records measured at sigma in the hundreds is pulled nearly flat, where its raw
    values (or their projection onto the simplex) would pile the mass on whichever
    cells drew the largest noise.
    Where the counts stand well above the noise, c is close to 1. Post-processing
    of the noisy values and the public sigma: it costs no privacy.
    """
    sigma = np.asarray(m.sigma, dtype=np.float64)
    k = int(np.size(m.values))
    if k < 3 or sigma.size != 1:
        return m
    uniform = total / k
    d = np.asarray(m.values, dtype=np.float64) - uniform
    spread = float(np.vdot(d, d))
    if spread == 0.0:
        return m
    c = max(0.0, 1.0 - (k - 2) * float(sigma) ** 2 / spread)
    return Measurement(m.clique, uniform + c * d, m.sigma, m.label)


def maximal_cliques(cliques: Sequence[Clique]) -> list[Clique]:
    """The cliques not contained in another, in first-seen order."""
    unique: list[Clique] = []
    for c in cliques:
        c = tuple(sorted(set(c)))
        if c not in unique:
            unique.append(c)
    return [c for c in unique if not any(set(c) < set(o) for o in unique)]


def project_to_simplex(y: np.ndarray, variances: np.ndarray | float, total: float) -> np.ndarray:
    """argmin sum (x - y)^2 / v subject to x >= 0 and sum x = total (a weighted projection)."""
    y = np.asarray(y, dtype=np.float64)
    v = np.broadcast_to(np.asarray(variances, dtype=np.float64), y.shape)
    # x(lam) = max(0, y - lam * v) decreases in lam; bisect for sum x(lam) = total
    lo = (y.sum() - total) / v.sum()
    hi = max(float(np.max(y / v)), lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(y - mid * v, 0.0).sum() > total:
            lo = mid
        else:
            hi = mid
    x = np.maximum(y - hi * v, 0.0)
    s = x.sum()
    return x * (total / s) if s > 0 else np.full(y.shape, total / y.size)


class MarginalEstimator:
    """Mirror descent over log-potentials on the maximal measured cliques."""

    def __init__(
        self,
        sizes: Sequence[int],
        measurements: Sequence[Measurement],
        *,
        total: float | None = None,
        jt: JunctionTree | None = None,
    ) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.measurements = list(measurements)
        self.total = estimate_total(self.measurements) if total is None else float(total)
        self.cliques = maximal_cliques([m.clique for m in self.measurements])
        self.jt = jt or build_junction_tree(self.sizes, self.cliques)
        self.host = []
        for c in self.cliques:
            h = self.jt.containing(c)
            if h is None:
                raise ValueError(f"junction tree does not cover clique {c}")
            self.host.append(h)
        # measurements grouped by the maximal clique they are read from
        self.assigned: list[list[Measurement]] = [[] for _ in self.cliques]
        for m in self.measurements:
            owner = min(
                (i for i, c in enumerate(self.cliques) if set(m.clique) <= set(c)),
                key=lambda i: clique_size(self.sizes, self.cliques[i]),
            )
            self.assigned[owner].append(m)
        # Lipschitz constant of grad L: the all-ones direction is a top eigenvector of every block
        lips = []
        for c, ms in zip(self.cliques, self.assigned, strict=True):
            cells = clique_size(self.sizes, c)
            lips.append(sum(cells / clique_size(self.sizes, m.clique) * float(np.max(m.weights)) for m in ms))
        self.lipschitz = max(lips) if lips else 1.0
        self.alpha: float | None = None  # the last step size of `fit`, to warm-start the next
        self.final_loss: float | None = None

    # ----- the pieces of one step ---------------------------------------------------------------
    def zero_potentials(self) -> list[np.ndarray]:
        return [np.zeros(tuple(self.sizes[a] for a in c)) for c in self.cliques]

    def potentials_from(self, previous: Mapping[Clique, np.ndarray]) -> list[np.ndarray]:
        """Warm start: lay earlier potentials (keyed by clique) onto the current cliques."""
        theta = self.zero_potentials()
        for clique, values in previous.items():
            for i, c in enumerate(self.cliques):
                if set(clique) <= set(c):
                    theta[i] = theta[i] + expand(values, clique, c, self.sizes)
                    break
        return theta

    def bethe_start(self, *, floor: float = 1.0, ipf_iters: int = 30) -> list[np.ndarray]:
        """Potentials close to the measurements, to start mirror descent near the optimum.

        Each attribute's one-way estimate is its measurement projected onto the
        simplex at the estimated total; each clique's measurement is clipped
        to at least `floor` and fitted to those one-way estimates by iterative
        proportional fitting; the clique potentials are then the logs of these
        tables, divided by each attribute's marginal once per extra clique it
        is in. On a tree with single-attribute separators (MST) this is the
        exact factorisation of a distribution with those clique marginals.
        The floor is at most the measurement's noise scale, so nearly exact
        measurements give a nearly exact start.
        """
        one: dict[int, np.ndarray] = {}
        for m in self.measurements:
            if len(m.clique) == 1:
                p = project_to_simplex(m.values, np.square(np.broadcast_to(m.sigma, m.values.shape)), self.total)
                p = np.maximum(p, min(floor, float(np.min(m.sigma))))
                one[m.clique[0]] = p / p.sum()
        degree: dict[int, int] = {}
        for c in self.cliques:
            for a in c:
                degree[a] = degree.get(a, 0) + 1
        theta = []
        for c, ms in zip(self.cliques, self.assigned, strict=True):
            shape = tuple(self.sizes[a] for a in c)
            full = [m for m in ms if m.clique == c]
            if full:
                m_floor = min(floor, float(np.min(full[0].sigma)))
                p = np.maximum(np.asarray(full[0].values, dtype=np.float64), m_floor)
                p = p / p.sum()
            else:
                p = np.ones(shape) / math.prod(shape)
            targets = [(i, a) for i, a in enumerate(c) if a in one]
            if len(c) > 1 and targets:
                for _ in range(ipf_iters):
                    for i, a in targets:
                        axes = tuple(j for j in range(len(c)) if j != i)
                        current = p.sum(axis=axes)
                        ratio = np.divide(one[a], current, out=np.zeros_like(current), where=current > 0)
                        p = p * ratio.reshape([-1 if j == i else 1 for j in range(len(c))])
            lp = np.log(np.maximum(p, 1e-300))
            for a in c:
                if degree[a] > 1 and a in one:
                    lp = lp - (degree[a] - 1) / degree[a] * expand(np.log(one[a]), (a,), c, self.sizes)
            theta.append(lp)
        return theta

    def with_measurement_jump(
        self, theta: Sequence[np.ndarray], measurement: Measurement, current: np.ndarray, *, floor: float = 1.0
    ) -> list[np.ndarray]:
        """theta plus the log-ratio that makes the model's marginal on the measured clique equal
        the (clipped, normalised) measurement: one step of iterative proportional fitting."""
        y = np.maximum(np.asarray(measurement.values, dtype=np.float64), floor)
        target = y / y.sum()
        p = np.maximum(current / max(float(current.sum()), 1e-300), 1e-300)
        ratio = np.log(target) - np.log(p)
        out = [np.array(t) for t in theta]
        for i, c in enumerate(self.cliques):
            if set(measurement.clique) <= set(c):
                out[i] = out[i] + expand(ratio, measurement.clique, c, self.sizes)
                break
        return out

    def keyed(self, theta: Sequence[np.ndarray]) -> dict[Clique, np.ndarray]:
        return dict(zip(self.cliques, theta, strict=True))

    def clique_marginals(self, theta: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probabilities of every junction-tree clique under the potentials theta."""
        jt = self.jt
        logp = [np.zeros(tuple(self.sizes[a] for a in c)) for c in jt.cliques]
        for c, h, th in zip(self.cliques, self.host, theta, strict=True):
            logp[h] = logp[h] + expand(th, c, jt.cliques[h], self.sizes)
        return clique_probabilities(jt, logp)

    def measured_marginals(self, jt_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [
            sum_to(jt_probs[h], self.jt.cliques[h], c) * self.total
            for c, h in zip(self.cliques, self.host, strict=True)
        ]

    def loss_and_gradient(self, mu: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        loss = 0.0
        grads = []
        for c, m_c, ms in zip(self.cliques, mu, self.assigned, strict=True):
            g = np.zeros_like(m_c)
            for m in ms:
                resid = sum_to(m_c, c, m.clique) - m.values
                wr = m.weights * resid
                loss += 0.5 * float(np.vdot(wr, resid))
                g = g + expand(wr, m.clique, c, self.sizes)
            grads.append(g)
        return loss, grads

    def loss(self, theta: Sequence[np.ndarray]) -> float:
        return self.loss_and_gradient(self.measured_marginals(self.clique_marginals(theta)))[0]

    # ----- mirror descent -----------------------------------------------------------------------
    def fit(
        self,
        iters: int,
        theta: Sequence[np.ndarray] | None = None,
        *,
        tol: float = 0.0,
        alpha: float | None = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> list[np.ndarray]:
        """Run up to `iters` mirror-descent steps from theta (zeros by default).

        `alpha` is the first step size (default 2 / (L * total), the
        theoretical one; a warm start may pass the last one, `self.alpha`).
        Stops early when the loss has improved by less than `tol` (relative)
        over the last 50 accepted steps.
        """
        theta = [np.array(t, dtype=np.float64) for t in (theta or self.zero_potentials())]
        mu = self.measured_marginals(self.clique_marginals(theta))
        loss, grad = self.loss_and_gradient(mu)
        alpha = alpha or 2.0 / (self.lipschitz * self.total)
        history = [loss]
        for t in range(iters):
            cand = [th - alpha * g for th, g in zip(theta, grad, strict=True)]
            mu2 = self.measured_marginals(self.clique_marginals(cand))
            loss2, grad2 = self.loss_and_gradient(mu2)
            expected = sum(float(np.vdot(g, a - b)) for g, a, b in zip(grad, mu, mu2, strict=True))
            if math.isfinite(loss2) and loss - loss2 >= 0.5 * alpha * expected:
                theta, mu, loss, grad = cand, mu2, loss2, grad2
                alpha *= 1.01
                history.append(loss)
                if tol > 0 and len(history) > 50 and history[-51] - loss <= tol * max(abs(loss), 1e-12):
                    break
            else:
                alpha *= 0.5
            if callback is not None:
                callback(t, loss)
        self.alpha = alpha
        self.final_loss = loss
        return theta

    def model(self, theta: Sequence[np.ndarray]) -> GraphicalModel:
        return GraphicalModel(self.jt, self.clique_marginals(theta), self.total)

"""The two mechanisms that read data: Gaussian measurement and exponential-mechanism selection.

Their parameters (sigma, epsilon) come from `privacy.engine.accounting`; these
functions only apply them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exponential_select", "gaussian_measure", "selection_probabilities"]


def gaussian_measure(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """counts + N(0, sigma^2) on every cell."""
    return counts + rng.normal(0.0, sigma, size=counts.shape)


def selection_probabilities(scores: np.ndarray, epsilon: float, sensitivity: float) -> np.ndarray:
    """P(i) proportional to exp(epsilon * score_i / (2 * sensitivity))."""
    q = np.asarray(scores, dtype=np.float64)
    logits = 0.5 * epsilon / sensitivity * (q - q.max())
    p = np.exp(logits)
    return p / p.sum()


def exponential_select(scores: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator) -> int:
    """Index chosen by the exponential mechanism (epsilon-DP for scores of this sensitivity)."""
    p = selection_probabilities(scores, epsilon, sensitivity)
    return int(rng.choice(len(p), p=p))

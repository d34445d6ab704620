"""DPCTGAN's time model: the coefficients privacy/estimate.py predicts with and dpctgan_plan chooses by.

Here, below both, so the estimate and the synthesizer share one model without importing each other.
"""

from __future__ import annotations

__all__ = ["DPCTGAN_COEFFICIENTS", "dpctgan_epoch_seconds", "dpctgan_fixed_seconds"]

#: a + epochs * rows * (b + c / batch), CPU seconds (fitted as documented in privacy/estimate.py)
DPCTGAN_COEFFICIENTS: dict[str, float] = {"a": 3.01, "b": 2.87e-4, "c": 1.4e-3}


def dpctgan_fixed_seconds() -> float:
    """DPCTGAN's CPU seconds outside its epochs (imports, networks, sampling), in the time model."""
    return DPCTGAN_COEFFICIENTS["a"]


def dpctgan_epoch_seconds(rows: int, batch: int) -> float:
    """CPU seconds of one DPCTGAN epoch over `rows` rows in batches of `batch`, in the time model."""
    k = DPCTGAN_COEFFICIENTS
    return max(int(rows), 1) * (k["b"] + k["c"] / max(int(batch), 1))

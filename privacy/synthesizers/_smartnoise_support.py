"""What every smartnoise wrapper (privacy/synthesizers/smartnoise.py) shares.

The lock that serialises the patched GAN modules, the routing of smartnoise's
prints and internal warnings to the log, the import check, and the DP row
count (`dp_row_count`) bought with a share of a method's epsilon.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from privacy.errors import MissingDependency

# the messages keep the logger of privacy.synthesizers.smartnoise, whose wrappers they come from
log = logging.getLogger("privacy.synthesizers.smartnoise")

# smartnoise's GAN modules are patched while they run; one at a time per process
_GAN_LOCK = threading.Lock()


class _LogWriter(io.TextIOBase):
    """Sends smartnoise's print() output to the log instead of stdout."""

    def write(self, text: str) -> int:
        text = text.strip()
        if text:
            log.debug("smartnoise: %s", text)
        return len(text)


# warnings of the libraries about their own internals, which a user cannot act on
_LIBRARY_NOISE = (
    "Pandas dataframe inputs are deprecated",  # mbi, called by smartnoise's MST/AIM
    # opacus on fixed-size batches: the caveat is stated in dpctgan's description and this module's docstring
    "The sample rate will be defined from ``batch_size`` and ``sample_size``",
    # DP-SGD noise comes from torch's seeded generator, like every seeded method here (see the docstring)
    "Secure RNG turned off",
    # opacus 0.14 hooks Linear layers with register_backward_hook; per-sample gradients were checked
    # against single-sample backward passes under torch 2.13 (mean loss, as DPCTGAN uses): they agree
    "Using a non-full backward hook when the forward contains multiple autograd Nodes",
)


@contextlib.contextmanager
def _quiet() -> Any:
    """Route smartnoise's prints to the log and drop its internal deprecation noise."""
    with contextlib.redirect_stdout(_LogWriter()), warnings.catch_warnings():
        for message in _LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield


def _import_snsynth() -> None:
    try:
        import snsynth  # noqa: F401
    except ImportError as exc:  # pragma: no cover - installed with the product
        raise MissingDependency("smartnoise-synth is not installed; pip install smartnoise-synth==1.0.8") from exc


# ----------------------------------------------------------------------------------
# the row count, bought with a share of the method's epsilon
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DPRowCount:
    """A row count released with the two-sided geometric mechanism (epsilon-DP, add/remove one row).

    value: the noisy count (at least 0); lower: a lower bound that exceeds the
    true count with probability at most `failure`.
    """

    value: int
    lower: int
    epsilon: float
    failure: float


def dp_row_count(n: int, epsilon: float, failure: float, rng: np.random.Generator) -> DPRowCount:
    """The number of rows plus two-sided geometric noise, P(k) proportional to exp(-epsilon |k|).

    The lower bound subtracts the smallest k with P(noise > k) = a^(k+1) / (1 + a)
    <= failure (a = exp(-epsilon)), so it overshoots the true count with
    probability at most `failure`.
    """
    if not (epsilon > 0 and math.isfinite(epsilon)) or not 0 < failure < 1:
        raise ValueError(f"row count needs epsilon > 0 and failure in (0, 1), got {epsilon}, {failure}")
    alpha = math.exp(-epsilon)
    # the difference of two geometric variables on {0, 1, ...} is two-sided geometric
    noise = int(rng.geometric(1.0 - alpha)) - int(rng.geometric(1.0 - alpha))
    margin = max(math.ceil(math.log(failure * (1.0 + alpha)) / math.log(alpha)) - 1, 0)
    value = n + noise
    return DPRowCount(max(value, 0), max(value - margin, 0), float(epsilon), float(failure))

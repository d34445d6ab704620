"""Learning open numeric and datetime bounds by spending declared epsilon.

A public schema should declare every bound. Where the steward left a numeric or
datetime bound open, a DP method may learn it, but only by paying for it out of
the request: the caller names `bounds_epsilon`, the bounds are measured with it,
and the method runs on what is left, so that the total cost is exactly what was
asked.

The mechanism (after Desfontaines, "Lowering the cost of anonymization", 2020,
and smartnoise's `approx_bounds`) is a noisy histogram over a fixed geometric
grid that covers every float from -2**64 to 2**64:
bins [2**(k/4), 2**((k+1)/4)) on each side of a central bin [-1, 1). Each row
falls in one bin, so the histogram with Laplace(1/epsilon) noise per bin is
epsilon-DP (add/remove one row). The learned range runs from the lowest to the
highest bin whose noisy count clears a threshold set so that an empty bin
clears it with probability at most 1e-6 overall. The bounds are therefore grid
points (19% apart), never values of the data; values beyond them are clipped.
Columns share `bounds_epsilon` equally (basic composition).

Open categorical domains cannot be learned this way: the schema must declare
the values. Every refusal happens in `check_bounds_request`, before data is
read.

Splitting the request. For a method that runs a pure (or basic-composition)
mechanism the method gets `epsilon - bounds_epsilon` and the same delta. For a
zCDP method (delta > 0) the split is made in rho: the bounds are
epsilon_b-DP, hence (epsilon_b^2 / 2)-zCDP, and the method gets the rest of
the rho the request converts to; the whole run is then rho-zCDP, which gives
the requested (epsilon, delta).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost, format_value, to_fraction
from privacy.errors import InvalidPrivacyValue, PrivacyError, SchemaError
from privacy.schema import PublicSchema

if TYPE_CHECKING:
    from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = [
    "GRID_STEPS_PER_DOUBLING",
    "FAILURE_PROBABILITY",
    "BoundsNotFound",
    "LearnedBounds",
    "MethodBudget",
    "OpenBoundsSupport",
    "bounds_cost",
    "check_bounds_request",
    "dp_range",
    "learn_open_bounds",
    "split_request",
]

GRID_STEPS_PER_DOUBLING = 4
MAX_EXPONENT = 64
FAILURE_PROBABILITY = 1e-6
BOUNDS_OPTION_HELP = (
    "epsilon spent learning the numeric/datetime bounds the schema leaves open "
    "(taken out of the requested epsilon; 0 = every bound must be declared)"
)


class BoundsNotFound(PrivacyError):
    """The noisy histogram found no bin above the threshold (too few rows for the epsilon)."""

    code = "bounds_not_found"
    status = 422


@dataclass(frozen=True)
class LearnedBounds:
    """The schema with open bounds filled, what was learned, and what it cost."""

    schema: PublicSchema
    bounds: dict[str, tuple[Any, Any]]
    cost: PrivacyCost


@dataclass(frozen=True)
class MethodBudget:
    """What the method itself may spend once the bounds are paid for.

    epsilon/delta: the method's share under basic composition; rho: its share of
    the request's rho when the method runs zCDP (None otherwise).
    """

    epsilon: Fraction
    delta: Fraction
    rho: Fraction | None = None


def _grid() -> np.ndarray:
    mags = 2.0 ** (np.arange(0, MAX_EXPONENT * GRID_STEPS_PER_DOUBLING + 1) / GRID_STEPS_PER_DOUBLING)
    return np.concatenate([-mags[::-1], mags])


def dp_range(values: np.ndarray, epsilon: float, *, random_state: int | np.random.RandomState | None = None) -> tuple[float, float]:
    """An epsilon-DP range that covers most of `values` (nulls ignored), as grid points.

    Raises BoundsNotFound when no bin clears the threshold: the epsilon is spent
    all the same.
    """
    from diffprivlib.mechanisms import Laplace

    if not epsilon > 0:
        raise InvalidPrivacyValue("bounds epsilon must be > 0", field="bounds_epsilon")
    edges = _grid()
    n_bins = len(edges) - 1
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    x = np.clip(x, edges[0], np.nextafter(edges[-1], 0))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(float)
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    mech = Laplace(epsilon=float(epsilon), sensitivity=1.0, random_state=rng)
    noisy = np.array([mech.randomise(float(c)) for c in counts])
    threshold = math.log(n_bins / (2.0 * FAILURE_PROBABILITY)) / float(epsilon)
    above = np.flatnonzero(noisy > threshold)
    if above.size == 0:
        raise BoundsNotFound(
            f"could not learn bounds with epsilon {float(epsilon):.4g}: too few rows for that epsilon; "
            "declare min and max in the public schema, or give more bounds_epsilon",
            field="bounds_epsilon",
        )
    return float(edges[above[0]]), float(edges[above[-1] + 1])


def _nice_outward(lo: float, hi: float, integer: bool) -> tuple[float | int, float | int]:
    if integer:
        return int(math.floor(lo)), int(math.ceil(hi))

    def round_down(v: float) -> float:
        if v == 0:
            return 0.0
        step = 10 ** (math.floor(math.log10(abs(v))) - 1)
        return math.floor(v / step) * step

    def round_up(v: float) -> float:
        if v == 0:
            return 0.0
        step = 10 ** (math.floor(math.log10(abs(v))) - 1)
        return math.ceil(v / step) * step

    return float(round_down(lo)), float(round_up(hi))


def _open_numeric(schema: PublicSchema, columns: list[str] | None = None) -> list[str]:
    names = columns if columns is not None else schema.synthesized_columns
    return [n for n in names if schema.columns[n].is_open and schema.columns[n].kind != "categorical"]


def _open_categorical(schema: PublicSchema) -> list[str]:
    return [n for n in schema.open_columns if schema.columns[n].kind == "categorical"]


def bounds_cost(epsilon: Fraction) -> PrivacyCost:
    """The cost of learning bounds with `epsilon`: pure DP, hence (epsilon^2/2)-zCDP."""
    return PrivacyCost(epsilon, 0, epsilon * epsilon / 2)


def learn_open_bounds(
    table: pd.DataFrame,
    schema: PublicSchema,
    epsilon: Any,
    *,
    columns: list[str] | None = None,
    seed: int | None = None,
) -> LearnedBounds:
    """Fill the open numeric/datetime bounds of `schema` from `table`, spending `epsilon`.

    `epsilon` is shared equally by the open columns. The returned cost is exactly
    `epsilon` (zero when nothing is open: nothing is spent). Open categorical
    domains are refused.
    """
    open_cats = _open_categorical(schema)
    if open_cats:
        raise SchemaError(
            "category domains cannot be learned with epsilon; declare `values` for "
            + ", ".join(f"'{c}'" for c in open_cats),
            field="schema",
        )
    eps = to_fraction(epsilon, "bounds_epsilon")
    names = _open_numeric(schema, columns)
    if not names:
        return LearnedBounds(schema, {}, PrivacyCost.zero())
    if eps <= 0:
        raise SchemaError(
            f"open bounds on {', '.join(names)}: declare min and max in the public schema, or spend "
            "bounds_epsilon > 0 to learn them",
            field="schema",
        )
    per_column = eps / len(names)
    rng = np.random.RandomState(None if seed is None else seed % (2**32))
    learned: dict[str, tuple[Any, Any]] = {}
    for name in names:
        spec = schema.columns[name]
        s = table[name]
        if spec.kind == "datetime":
            t = pd.to_datetime(s, errors="coerce")
            values = ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
        else:
            values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        lo, hi = dp_range(values, float(per_column), random_state=rng)
        # a declared side is public: keep it, and learn only the missing one
        if spec.min is not None:
            lo = _as_days_or_number(spec.min)
        if spec.max is not None:
            hi = _as_days_or_number(spec.max)
        if spec.kind == "datetime":
            lo_d = dt.date(1970, 1, 1) + dt.timedelta(days=math.floor(lo))
            hi_d = dt.date(1970, 1, 1) + dt.timedelta(days=math.ceil(hi))
            if hi_d <= lo_d:
                hi_d = lo_d + dt.timedelta(days=1)
            learned[name] = (spec.min or lo_d, spec.max or hi_d)
        else:
            nlo, nhi = _nice_outward(lo, hi, spec.is_integer)
            if nhi <= nlo:
                nhi = nlo + 1
            learned[name] = (spec.min if spec.min is not None else nlo, spec.max if spec.max is not None else nhi)
    return LearnedBounds(schema.with_bounds(learned), learned, bounds_cost(eps))


def _as_days_or_number(v: Any) -> float:
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


def _runs_zcdp(synth: type[Synthesizer] | Synthesizer, requested: PrivacyCost) -> bool:
    return bool(synth.zcdp) and requested.delta > 0


def check_bounds_request(
    synth: type[Synthesizer] | Synthesizer, schema: PublicSchema, requested: PrivacyCost, bounds_epsilon: Any
) -> None:
    """Schema-only checks of a request that may learn open bounds; raise to refuse."""
    open_cats = _open_categorical(schema)
    if open_cats:
        raise SchemaError(
            f"{synth.name} needs the category domain of "
            + ", ".join(f"'{c}'" for c in open_cats)
            + " declared (`values` in the public schema); categories cannot be learned with epsilon",
            field="schema",
        )
    names = _open_numeric(schema)
    b = to_fraction(bounds_epsilon or 0, "bounds_epsilon")
    if b < 0:
        raise InvalidPrivacyValue("bounds_epsilon must be >= 0", field="bounds_epsilon")
    if not names:
        return
    if b == 0:
        raise SchemaError(
            f"{synth.name}: the public schema leaves the bounds of {', '.join(repr(n) for n in names)} open; "
            "declare min and max, or set the option bounds_epsilon (for example 0.1) to learn them "
            "out of the requested epsilon",
            field="schema",
        )
    if not requested.is_dp:
        raise InvalidPrivacyValue(f"{synth.name} is a DP method: give a finite epsilon", field="epsilon")
    if _runs_zcdp(synth, requested):
        rho = synth.planned_cost(requested).rho
        assert rho is not None
        max_b = math.sqrt(2 * float(rho))
        if b * b / 2 >= rho:
            raise InvalidPrivacyValue(
                f"bounds_epsilon {format_value(b)} would take the whole zCDP budget of this request "
                f"(rho {float(rho):.4g}); use less than {max_b:.4g}, ask for more epsilon, or declare the bounds",
                field="bounds_epsilon",
            )
    elif b >= requested.epsilon:
        raise InvalidPrivacyValue(
            f"bounds_epsilon {format_value(b)} must be below the requested epsilon {format_value(requested.epsilon)}",
            field="bounds_epsilon",
        )


def split_request(
    synth: type[Synthesizer] | Synthesizer, schema: PublicSchema, requested: PrivacyCost, bounds_epsilon: Any
) -> tuple[Fraction, MethodBudget]:
    """(epsilon spent on bounds, what the method may spend): they compose to the request exactly."""
    names = _open_numeric(schema)
    b = to_fraction(bounds_epsilon or 0, "bounds_epsilon") if names else Fraction(0)
    planned = synth.planned_cost(requested)
    if _runs_zcdp(synth, requested):
        assert planned.rho is not None
        return b, MethodBudget(requested.epsilon - b, requested.delta, planned.rho - b * b / 2)
    assert isinstance(requested.epsilon, Fraction)
    return b, MethodBudget(requested.epsilon - b, requested.delta, None)


class OpenBoundsSupport:
    """Mixin for DP synthesizers that can pay to learn open numeric/datetime bounds.

    The class adds `bounds_epsilon` to its `option_spec`; `_fit` calls
    `self._fill_bounds(...)` first and runs on the returned schema and budget.
    """

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        self._check_dp_request(requested)
        check_bounds_request(self, schema, requested, self.options.get("bounds_epsilon"))  # type: ignore[arg-type, attr-defined]

    def _check_dp_request(self, requested: PrivacyCost) -> None:
        if not requested.is_dp:
            raise InvalidPrivacyValue(f"{self.name} is a DP method: give a finite epsilon", field="epsilon")  # type: ignore[attr-defined]
        if requested.epsilon <= 0:
            raise InvalidPrivacyValue(f"{self.name} needs epsilon > 0", field="epsilon")  # type: ignore[attr-defined]
        if self.needs_delta and requested.delta <= 0:  # type: ignore[attr-defined]
            raise InvalidPrivacyValue(
                f"{self.name} needs a delta > 0 (for example 1e-9; well below 1/rows)", field="delta"  # type: ignore[attr-defined]
            )

    def _fill_bounds(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> tuple[PublicSchema, PrivacyCost, MethodBudget]:
        """Learn open bounds (if any); returns (filled schema, bounds cost, method budget)."""
        b, budget = split_request(self, schema, requested, self.options.get("bounds_epsilon"))  # type: ignore[arg-type, attr-defined]
        if b == 0:
            return schema, PrivacyCost.zero(), budget
        progress(0.0, "learning open bounds")
        learned = learn_open_bounds(table, schema, b, seed=self.seed)  # type: ignore[attr-defined]
        self.schema = learned.schema  # the output is clipped to the learned bounds
        self.learned_bounds = learned.bounds
        return learned.schema, learned.cost, budget

"""Learning open numeric and datetime bounds by spending declared epsilon.

A public schema should declare every bound. Where the steward left a numeric or
datetime bound open, a DP method may learn it, but only by paying for it out of
the request: the caller names `bounds_epsilon`, the bounds are measured with it,
and the method runs on what is left, so that the total cost is exactly what was
asked.

The mechanism is a private search on a logarithmic scale (the sparse vector
technique, "AboveThreshold"; Dwork and Roth 2014, section 3.6; Lyu, Su and Li,
"Understanding the Sparse Vector Technique", VLDB 2017). The candidates are a
fixed, public geometric grid that covers every float from -2**64 to 2**64:
0, and +-2**(k/4) for k = 0 .. 256 (neighbouring points 19% apart). For the
upper bound the candidates are visited from the lowest up; at each one the
number of values above it is compared, with fresh Laplace noise, to a noisy
threshold, and the first candidate whose noisy count falls below is the bound.
The lower bound is found the same way from the top down, counting the values
below. The threshold is `THRESHOLD_SCALES` noise scales, so the bound is the
point with a few dozen to a few hundred values beyond it (fewer the larger the
epsilon): it follows the bulk of a skewed column (a mass of zeros, or incomes
with a long right tail) instead of collapsing onto its mode, and it is not a
function of the extremes, since moving one value anywhere changes every count
by at most one.

Privacy: each count has sensitivity 1 under add/remove-one-row, and the counts
are monotonic (adding a row never decreases any of them), so a search with
threshold noise Lap(2/e) and query noise Lap(2/e) that stops at the first
candidate below the threshold is e-DP (Lyu et al.'s SVT with one positive
answer, the epsilon split equally between threshold and queries, and their
query noise for monotonic queries). The two searches of a column
share its epsilon equally (basic composition); when one side is declared the
other gets it all. The bounds are grid points, never values of the data;
values beyond them are clipped. Columns share `bounds_epsilon` equally (basic
composition), so the cost is exactly `bounds_epsilon`. A search that never
stops, or a lower bound that is not below the upper one (too few rows for the
epsilon), raises `BoundsNotFound`; the epsilon is spent all the same.

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

from privacy._random import full_seed_random_state
from privacy.budget import PrivacyCost, format_value, to_fraction
from privacy.errors import InvalidPrivacyValue, PrivacyError, SchemaError
from privacy.schema import ColumnSpec, PublicSchema

if TYPE_CHECKING:
    from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = [
    "GRID_STEPS_PER_DOUBLING",
    "THRESHOLD_SCALES",
    "BoundsNotFound",
    "LearnedBounds",
    "MethodBudget",
    "OpenBoundsSupport",
    "bounds_cost",
    "check_bounds_request",
    "dp_lower_bound",
    "dp_range",
    "dp_upper_bound",
    "learn_open_bounds",
    "split_request",
]

GRID_STEPS_PER_DOUBLING = 4
MAX_EXPONENT = 64
#: The search threshold in noise scales (2 / epsilon): the larger, the more values fall beyond a bound, and the
#: rarer a bound far beyond the data (a negative noisy threshold: probability exp(-THRESHOLD_SCALES) / 2).
THRESHOLD_SCALES = 3
BOUNDS_OPTION_HELP = (
    "epsilon spent learning the numeric/datetime bounds the schema leaves open "
    "(taken out of the requested epsilon; 0 = every bound must be declared)"
)


class BoundsNotFound(PrivacyError):
    """The private search found no usable bound (too few rows for the epsilon)."""

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
    """The public candidates, ascending: 0 and +-2**(k/GRID_STEPS_PER_DOUBLING) up to 2**MAX_EXPONENT."""
    mags = 2.0 ** (np.arange(0, MAX_EXPONENT * GRID_STEPS_PER_DOUBLING + 1) / GRID_STEPS_PER_DOUBLING)
    return np.concatenate([-mags[::-1], [0.0], mags])


def _finite(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return np.sort(x[np.isfinite(x)])


def _check_epsilon(epsilon: float) -> float:
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0):
        raise InvalidPrivacyValue("bounds epsilon must be a finite number > 0", field="bounds_epsilon")
    return eps


def _rng(random_state: int | np.random.RandomState | None) -> np.random.RandomState:
    return random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)


def _first_below_threshold(counts: np.ndarray, epsilon: float, rng: np.random.RandomState) -> int | None:
    """AboveThreshold on monotonic counts: the first index whose noisy count is below the noisy threshold.

    e-DP for counts of sensitivity 1 that all move the same way between neighbouring tables.
    """
    from diffprivlib.mechanisms import Laplace

    scale = 2.0 / epsilon  # half the epsilon to the threshold, half to the queries
    threshold = Laplace(epsilon=epsilon / 2, sensitivity=1.0, random_state=rng).randomise(THRESHOLD_SCALES * scale)
    query = Laplace(epsilon=epsilon / 2, sensitivity=1.0, random_state=rng)
    for i, c in enumerate(counts.tolist()):
        if query.randomise(float(c)) <= threshold:
            return i
    return None


def _not_found(epsilon: float) -> BoundsNotFound:
    return BoundsNotFound(
        f"could not learn bounds with epsilon {epsilon:.4g}: too few rows for that epsilon; "
        "declare min and max in the public schema, or give more bounds_epsilon",
        field="bounds_epsilon",
    )


def dp_upper_bound(
    values: np.ndarray, epsilon: float, *, random_state: int | np.random.RandomState | None = None
) -> float:
    """An epsilon-DP upper bound of `values` (non-finite values ignored): a grid point above the bulk."""
    eps = _check_epsilon(epsilon)
    x, grid = _finite(values), _grid()
    above = len(x) - np.searchsorted(x, grid, side="right")  # values above each candidate, lowest first
    i = _first_below_threshold(above, eps, _rng(random_state))
    if i is None:
        raise _not_found(eps)
    return float(grid[i])


def dp_lower_bound(
    values: np.ndarray, epsilon: float, *, random_state: int | np.random.RandomState | None = None
) -> float:
    """An epsilon-DP lower bound of `values` (non-finite values ignored): a grid point below the bulk."""
    eps = _check_epsilon(epsilon)
    x, grid = _finite(values), _grid()[::-1]
    below = np.searchsorted(x, grid, side="left")  # values below each candidate, highest first
    i = _first_below_threshold(below, eps, _rng(random_state))
    if i is None:
        raise _not_found(eps)
    return float(grid[i])


def dp_range(
    values: np.ndarray, epsilon: float, *, random_state: int | np.random.RandomState | None = None
) -> tuple[float, float]:
    """An epsilon-DP range that covers the bulk of `values` (nulls ignored), as grid points.

    The two bounds take epsilon/2 each. Raises BoundsNotFound when the lower
    bound is not below the upper one (too few rows for the epsilon): the
    epsilon is spent all the same.
    """
    eps = _check_epsilon(epsilon)
    rng = _rng(random_state)
    lo = dp_lower_bound(values, eps / 2, random_state=rng)
    hi = dp_upper_bound(values, eps / 2, random_state=rng)
    if not lo < hi:
        raise _not_found(eps)
    return lo, hi


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
    rng = full_seed_random_state(seed)
    learned: dict[str, tuple[Any, Any]] = {}
    for name in names:
        spec = schema.columns[name]
        s = table[name]
        if spec.kind == "datetime":
            t = pd.to_datetime(s, errors="coerce")
            values = ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
        else:
            values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        lo, hi = _learn_missing_sides(values, spec, float(per_column), rng)
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


def _learn_missing_sides(
    values: np.ndarray, spec: ColumnSpec, epsilon: float, rng: np.random.RandomState
) -> tuple[float, float]:
    """(lo, hi) of one column: a declared side is public and kept; the open sides share `epsilon`."""
    if spec.min is None and spec.max is None:
        return dp_range(values, epsilon, random_state=rng)
    if spec.min is None:
        hi = _as_days_or_number(spec.max)
        lo = dp_lower_bound(values, epsilon, random_state=rng)
    else:
        lo = _as_days_or_number(spec.min)
        hi = dp_upper_bound(values, epsilon, random_state=rng)
    if not lo < hi:
        raise _not_found(epsilon)
    return lo, hi


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
        return b, MethodBudget(requested.finite_epsilon - b, requested.delta, planned.rho - b * b / 2)
    assert isinstance(requested.epsilon, Fraction)
    return b, MethodBudget(requested.epsilon - b, requested.delta, None)


class OpenBoundsSupport:
    """Mixin for DP synthesizers that can pay to learn open numeric/datetime bounds.

    The class adds `bounds_epsilon` to its `option_spec`; `_fit` calls
    `self._fill_bounds(...)` first and runs on the returned schema and budget.
    """

    schema: PublicSchema | None  # the output's schema, with the learned bounds once they are filled

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
                f"{self.name} needs a delta > 0 (for example 1e-9; well below 1/rows)",  # type: ignore[attr-defined]
                field="delta",
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

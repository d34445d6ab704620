"""The one interface every synthesizer implements.

    synth = create_synthesizer("mst", seed=7, options={...})
    synth.preflight(schema, requested)        # schema only: refuse before any data is read
    cost = synth.fit(table, schema, requested, progress=cb)
    df = synth.sample(n)

`requested` is the PrivacyCost the caller asked for (epsilon, delta). `fit`
returns the cost actually incurred, preprocessing included; for every DP method
it equals the request (or is smaller), and the ledger charges exactly it.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, ClassVar, Literal

import pandas as pd

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers._checks import check_request

__all__ = ["Guarantee", "OptionSpec", "ProgressCallback", "Synthesizer", "no_progress", "option_bounds"]

ProgressCallback = Callable[[float, str], None]
Guarantee = Literal["dp", "non-dp", "data-free"]
# (type, default, help) or (type, default, help, (min, max)): every option whose value sets how much
# work a fit does (iterations, epochs, rounds, bins, sizes) declares inclusive bounds, checked at
# request time, so that no request can hold a worker for an unbounded time
OptionSpec = tuple[type, Any, str] | tuple[type, Any, str, tuple[float | None, float | None]]


def option_bounds(entry: OptionSpec) -> tuple[float | None, float | None]:
    """The declared (min, max) of an option-spec entry; (None, None) when it declares none."""
    return entry[3] if len(entry) > 3 else (None, None)


def no_progress(fraction: float, message: str) -> None:
    return None


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _coerce_option(typ: type, value: Any) -> Any:
    """`value` as an option of type `typ`, or TypeError/ValueError: nothing is guessed
    ("maybe" is not false, 2.7 rounds is not 2, True is not 1)."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return bool(value)
        raise ValueError(value)
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, typ):
        return value
    if typ in (list, dict):
        raise TypeError(value)
    if typ is int:
        if isinstance(value, str):
            return int(value.strip())
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(float(value))
        raise ValueError(value)
    return typ(value)


def _show(bound: float | None) -> str:
    return "any" if bound is None else f"{bound:,}"


class Synthesizer(abc.ABC):
    """Base of every method. Subclasses set the class attributes and implement
    `_fit` and `_sample`; they read bounds and domains from the schema only."""

    name: ClassVar[str]
    description: ClassVar[str]
    guarantee: ClassVar[Guarantee]
    # the kind of release the method makes (privacy/catalogue.py); None: the one its guarantee implies
    kind: ClassVar[str | None] = None
    zcdp: ClassVar[bool] = False
    needs_delta: ClassVar[bool] = False
    # option name -> (type, default, help[, (min, max)]); unknown options are refused, values
    # outside the declared bounds too
    option_spec: ClassVar[Mapping[str, OptionSpec]] = {}
    # what a released table contains, for the privacy statement
    releases_real_rows: ClassVar[bool] = False
    # whether the same seed gives the same output (False where the library draws unseedable noise)
    reproducible: ClassVar[bool] = True
    # minutes rather than seconds (neural networks, MWEM's query loop): the service runs these on a queue
    # of their own so that they never hold up the quick methods
    heavy: ClassVar[bool] = False
    # whether `fit` takes a conformed table whose declared text domains are categoricals
    # (`conform_table(categories=True)`) and fits exactly as on the "string" columns
    takes_categories: ClassVar[bool] = False
    # DP methods say how they treat the number of rows, which is not public: the share of epsilon (and
    # of delta) spent on a DP count, and what follows from it; None for methods that are not DP
    ROW_COUNT_SHARE: ClassVar[Fraction] = Fraction(0)
    ROW_COUNT_FAILURE_SHARE: ClassVar[Fraction] = Fraction(0)
    row_count_use: ClassVar[str | None] = None

    def __init__(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> None:
        self.seed = seed
        self.options = self.validate_options(options or {})
        self.schema: PublicSchema | None = None
        self.cost: PrivacyCost | None = None
        self._more_draws = 0

    def derived_seed(self, purpose: str) -> int | None:
        """The seed of one auxiliary draw (sampling, schema enforcement...), None when unseeded.

        Derived by HMAC from the noise seed, so that rows drawn from it say nothing of that seed.
        """
        if self.seed is None:
            return None
        from privacy._random import sub_seed

        return sub_seed(self.seed, purpose)

    # ----- options -------------------------------------------------------------
    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.option_spec))
        if unknown:
            known = ", ".join(sorted(cls.option_spec)) or "none"
            raise MethodOptionError(
                f"unknown option(s) for {cls.name}: {', '.join(unknown)}; known options: {known}", field="options"
            )
        out: dict[str, Any] = {}
        for key, entry in cls.option_spec.items():
            typ, default = entry[0], entry[1]
            value = options.get(key, default)
            if value is not None:
                try:
                    value = _coerce_option(typ, value)
                except (TypeError, ValueError) as exc:
                    expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(typ, typ.__name__)
                    raise MethodOptionError(
                        f"option {key} of {cls.name} must be {expected}, got {value!r}", field="options"
                    ) from exc
                if typ is float and not math.isfinite(value):
                    raise MethodOptionError(
                        f"option {key} of {cls.name} must be a finite number, got {value!r}", field="options"
                    )
                lo, hi = option_bounds(entry)
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise MethodOptionError(
                        f"option {key} of {cls.name} must be between {_show(lo)} and {_show(hi)}, got {value!r}",
                        field="options",
                    )
            out[key] = value
        return out

    # ----- the contract ----------------------------------------------------------
    @classmethod
    def planned_cost(cls, requested: PrivacyCost) -> PrivacyCost:
        """The cost a fit at `requested` will report, known before any data is read.

        The ledger reserves exactly this at request time. DP methods: the
        requested (epsilon, delta), with the rho they run at when they are zCDP;
        non-DP: infinity; data-free: zero. Methods that account differently
        override it, and `fit` must return this value.
        """
        if cls.guarantee == "non-dp":
            return PrivacyCost.non_dp()
        if cls.guarantee == "data-free":
            return PrivacyCost.zero()
        if cls.zcdp and requested.delta > 0:
            from privacy.accounting import zcdp_rho

            return PrivacyCost(requested.epsilon, requested.delta, zcdp_rho(requested.finite_epsilon, requested.delta))
        return PrivacyCost(requested.epsilon, requested.delta)

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        """Check schema and request without touching data; raise a PrivacyError to refuse.

        The default checks the guarantee against the request. Subclasses add
        domain-size and declared-domain checks.
        """
        check_request(self, schema, requested)

    def fit(
        self,
        table: pd.DataFrame,
        schema: PublicSchema,
        requested: PrivacyCost,
        progress: ProgressCallback | None = None,
    ) -> PrivacyCost:
        """Fit on a table already conformed to `schema`; return the cost incurred."""
        self.preflight(schema, requested)
        self.schema = schema
        cost = self._fit(table, schema, requested, progress or no_progress)
        self.cost = cost
        return cost

    def sample(self, n: int, progress: ProgressCallback | None = None, *, categories: bool = False) -> pd.DataFrame:
        """Sample n rows with the schema's columns, kinds, bounds and domains (declared text domains as
        categoricals with `categories`: see `enforce_schema`)."""
        if self.schema is None:
            raise RuntimeError(f"{self.name}: call fit() before sample()")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise MethodOptionError(f"rows must be a positive integer, got {n!r}", field="rows")
        from privacy.schema import enforce_schema

        raw = self._sample(n, progress or no_progress)
        return enforce_schema(raw, self.schema, seed=self.derived_seed("enforce schema"), categories=categories)

    def sample_more(self, n: int, progress: ProgressCallback | None = None) -> pd.DataFrame:
        """n further rows, independent of every earlier draw: for reject-and-resample.

        Most methods derive their sampling seed afresh from the noise seed on each `sample` call,
        so a second `sample(n)` would repeat the first rows. Each call here samples under a seed
        derived (by HMAC) for that call, and the same sequence of calls on the same seed gives the
        same rows.
        """
        self._more_draws += 1
        seed = self.seed
        if seed is not None:
            from privacy._random import sub_seed

            self.seed = sub_seed(seed, f"more rows {self._more_draws}")
        try:
            return self.sample(n, progress)
        finally:
            self.seed = seed

    @abc.abstractmethod
    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost: ...

    @abc.abstractmethod
    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame: ...

    def fit_info(self) -> dict[str, Any]:
        """`info()` plus what this fit decided that the privacy statement should say (after `fit`)."""
        return self.info()

    @classmethod
    def info(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "description": cls.description,
            "guarantee": cls.guarantee,
            "dp": cls.guarantee == "dp",
            "zcdp": cls.zcdp,
            "needs_delta": cls.needs_delta,
            "releases_real_rows": cls.releases_real_rows,
            "reproducible": cls.reproducible,
            "options": {
                k: {
                    "type": e[0].__name__,
                    "default": e[1],
                    "help": e[2],
                    **dict(zip(("min", "max"), option_bounds(e), strict=True)),
                }
                for k, e in cls.option_spec.items()
            },
            **(
                {}
                if cls.row_count_use is None
                else {
                    "row_count": {
                        "epsilon_share": float(cls.ROW_COUNT_SHARE),
                        "delta_share": float(cls.ROW_COUNT_FAILURE_SHARE),
                        "use": cls.row_count_use,
                    }
                }
            ),
        }

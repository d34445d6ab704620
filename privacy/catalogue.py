"""The method catalogue: every method a release can name, and the plan of a release request.

Each entry, whatever it makes (DP synthetic rows, DP statistics, synthetic rows
without a guarantee, a rebalanced table, data generated from options alone),
answers the same questions, before any data is read:

* `kind`: the kind of release it makes (one of `KINDS`);
* `guarantee`: "dp", "non-dp" or "data-free";
* `planned_cost(requested, options)`: what the ledger reserves for it;
* `preflight(schema, requested, options)`: refuse a request on the public schema alone;
* `info(options)`: what the privacy statement says of it.

`plan_release` asks them all at once and returns a `ReleasePlan`: the service
calls it when a release is requested (to check and reserve) and the worker again
when it runs (to check that the plan still holds before reading any row).

Pure: no web, database or queue code; importing it loads no method module.
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from privacy.budget import PrivacyCost, format_value, parse_number, to_fraction
from privacy.errors import PolicyViolation, PrivacyError, RequestRefused
from privacy.schema import PublicSchema

__all__ = [
    "DEFAULT_ROWS",
    "HEAVY",
    "KINDS",
    "MAX_GENERATED_CELLS",
    "QUICK",
    "ROW_LEVEL_KINDS",
    "SUGGESTED_METHODS",
    "DatasetLimits",
    "MethodEntry",
    "ReleasePlan",
    "catalogue_names",
    "method_entry",
    "methods_of_kind",
    "plan_release",
    "rebalancers",
]

#: every kind of release; a method makes exactly one
KINDS = ("dp-synthetic", "synthetic", "dp-statistics", "oversample", "scenario")
#: kinds whose rows pass through k-anonymity (privacy.disclosure.apply_disclosure_control) and whose
#: post-processing can be re-run on the stored sample
ROW_LEVEL_KINDS = ("dp-synthetic", "synthetic", "oversample")
_KIND_OF_GUARANTEE = {"dp": "dp-synthetic", "non-dp": "synthetic", "data-free": "scenario"}
DEFAULT_ROWS = 10_000
MAX_GENERATED_CELLS = 100_000_000  # rows x columns of one data-free release (about 800 MB of float64)
#: the methods a request form may preselect (the first of them it lists that is installed)
SUGGESTED_METHODS = ("mst", "aim", "dp-marginals")
#: the two lanes of work: quick releases, and those whose fit takes minutes (run by workers of their own)
QUICK = "quick"
HEAVY = "heavy"


def _number(value: Any, field: str) -> Fraction:
    """Numbers from JSON (int/float) or from a form/CLI (text), exactly."""
    if isinstance(value, str):
        return parse_number(value, field)
    return to_fraction(value, field)


class MethodEntry(abc.ABC):
    """One method of the catalogue."""

    name: str
    kind: str
    guarantee: str
    #: minutes rather than seconds: run on the heavy lane
    heavy: bool = False
    #: measures every row of the whole table (no holdout split, no report on rows)
    whole_table: bool = False

    @property
    def reads_rows(self) -> bool:
        """Whether a release reads the dataset's rows (data-free methods do not)."""
        return self.guarantee != "data-free"

    @property
    def row_level(self) -> bool:
        """Whether the release is a table of rows (k-anonymity applies, post-processing can be re-run)."""
        return self.kind in ROW_LEVEL_KINDS

    def requested_cost(self, epsilon: Any, delta: Any) -> PrivacyCost:
        """The cost asked for, from a request's epsilon and delta (JSON numbers, text or exact values)."""
        if self.guarantee == "dp":
            if epsilon is None:
                raise RequestRefused(
                    f"{self.name} is differentially private: give epsilon (for example 1.0)", field="epsilon"
                )
            requested = PrivacyCost(_number(epsilon, "epsilon"), _number(delta, "delta"))
            if requested.epsilon <= 0:
                raise RequestRefused("epsilon must be greater than 0", field="epsilon")
            return requested
        if epsilon is not None and not (isinstance(epsilon, int | float) and math.isinf(epsilon)):
            _number(epsilon, "epsilon")  # still refuse NaN and strings
        return PrivacyCost.non_dp() if self.guarantee == "non-dp" else PrivacyCost.zero()

    @abc.abstractmethod
    def planned_cost(self, requested: PrivacyCost, options: Mapping[str, Any] | None = None) -> PrivacyCost:
        """The cost a release at `requested` reports, known before any data is read."""

    @abc.abstractmethod
    def preflight(
        self, schema: PublicSchema | None, requested: PrivacyCost, options: Mapping[str, Any] | None = None
    ) -> int:
        """Refuse on the schema and request alone; returns the number of columns the method generates
        from its options (data-free methods), 0 for the others."""

    @abc.abstractmethod
    def info(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Name, description, guarantee and how the row count is treated, for the privacy statement."""


class SynthesizerEntry(MethodEntry):
    """A method of the synthesizer registry (`privacy.synthesizers`): it fits a model and samples rows."""

    def __init__(self, name: str) -> None:
        from privacy.synthesizers import synthesizer_class

        self.cls = synthesizer_class(name)
        self.name = name
        self.guarantee = self.cls.guarantee
        self.kind = self.cls.kind or _KIND_OF_GUARANTEE[self.guarantee]
        self.heavy = self.cls.heavy

    def create(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> Any:
        return self.cls(seed=seed, options=options)

    def planned_cost(self, requested: PrivacyCost, options: Mapping[str, Any] | None = None) -> PrivacyCost:
        return self.cls.planned_cost(requested)

    def preflight(
        self, schema: PublicSchema | None, requested: PrivacyCost, options: Mapping[str, Any] | None = None
    ) -> int:
        synth = self.create(options=options)
        synth.preflight(schema, requested)
        # a data-free generator's width comes from its options
        return len(synth.output_schema().columns) if hasattr(synth, "output_schema") else 0

    def info(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.cls.info()


class StatisticsEntry(MethodEntry):
    """`dp-statistics` (privacy/statistics.py): DP aggregates of the whole table, no rows released."""

    kind = "dp-statistics"
    guarantee = "dp"
    whole_table = True

    def __init__(self) -> None:
        from privacy.statistics import NAME

        self.name = NAME

    def requested_cost(self, epsilon: Any, delta: Any) -> PrivacyCost:
        # no default for a missing epsilon: the value object refuses it, and planned_cost a non-positive one
        return PrivacyCost(_number(epsilon, "epsilon"), _number(delta, "delta"))

    def planned_cost(self, requested: PrivacyCost, options: Mapping[str, Any] | None = None) -> PrivacyCost:
        from privacy.statistics import planned_cost

        return planned_cost(requested, options)

    def preflight(
        self, schema: PublicSchema | None, requested: PrivacyCost, options: Mapping[str, Any] | None = None
    ) -> int:
        from privacy.statistics import preflight_statistics

        assert schema is not None
        preflight_statistics(schema, requested, options)
        return 0

    def info(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from privacy.statistics import method_info

        return method_info(options)


# methods outside the synthesizer registry, by name
_OTHER_ENTRIES: dict[str, type[MethodEntry]] = {"dp-statistics": StatisticsEntry}


@functools.cache
def method_entry(name: str) -> MethodEntry:
    """The catalogue entry of a method; UnknownMethod when there is none."""
    other = _OTHER_ENTRIES.get(name)
    return other() if other is not None else SynthesizerEntry(name)


def catalogue_names() -> list[str]:
    """Every method of the catalogue, sorted: the synthesizer registry and the others."""
    from privacy.synthesizers import REGISTRY

    return sorted([*REGISTRY, *_OTHER_ENTRIES])


def rebalancers() -> tuple[str, ...]:
    """The methods that rebalance a table (kind oversample): also usable on a DP release's output."""
    return methods_of_kind("oversample")


def methods_of_kind(kind: str) -> tuple[str, ...]:
    """The methods making releases of `kind`, in the registry's order (imports their modules)."""
    from privacy.synthesizers import REGISTRY

    return tuple(n for n in [*REGISTRY, *_OTHER_ENTRIES] if method_entry(n).kind == kind)


@dataclass(frozen=True)
class DatasetLimits:
    """What the dataset a request names allows, from its policy and budget (public to the requester)."""

    name: str
    policy: Any  # privacy.policy.DatasetPolicy
    delta_budget: Fraction
    max_rows: int | None = None


@dataclass(frozen=True)
class ReleasePlan:
    """A checked release request: what it makes, under which guarantee, at which cost, on which lane."""

    method: str
    kind: str
    guarantee: str
    requested: PrivacyCost  # the cost asked for
    cost: PrivacyCost  # the cost the release will report: the ledger reserves exactly this
    options: Mapping[str, Any]  # the method's options, checked against the schema
    rows: int
    target: str | None
    rebalance: str | None
    queue: str  # QUICK or HEAVY
    reads_rows: bool
    row_level: bool
    whole_table: bool
    recorded: Mapping[str, Any] = field(default_factory=dict)  # the requested cost as stored (exact strings)


def plan_release(
    method: str,
    epsilon: Any,
    delta: Any,
    options: Mapping[str, Any] | None,
    schema: PublicSchema,
    *,
    kind: str | None = None,
    rows: int | None = None,
    target: str | None = None,
    rebalance: str | None = None,
    dataset: DatasetLimits | None = None,
) -> ReleasePlan:
    """Check a release request on the public schema alone and plan it; raise a PrivacyError to refuse.

    In this order: the method, the kind asked for, the request limits (and the dataset's delta limits),
    the cost, the target, the rows, the method's own schema checks, rebalancing, and, with a dataset,
    k-anonymity's preflight and the policy on non-DP releases.
    """
    options = dict(options or {})
    entry = method_entry(method)
    if kind is not None and kind != entry.kind:
        raise RequestRefused(f"method {method} makes a {entry.kind} release, not {kind}", field="kind")
    check_request_limits(epsilon, delta, dataset)
    requested = entry.requested_cost(epsilon, delta)
    cost = entry.planned_cost(requested, options)
    target = target or schema.target
    if target is not None and target not in schema.synthesized_columns:
        raise RequestRefused(f"target '{target}' is not a modelled column of the public schema", field="target")
    rows = rows or DEFAULT_ROWS
    if dataset is not None and dataset.max_rows is not None and rows > dataset.max_rows:
        raise RequestRefused(f"rows must be at most {dataset.max_rows}", field="rows")
    width = entry.preflight(schema, requested, options)
    if width * rows > MAX_GENERATED_CELLS:
        raise RequestRefused(
            f"{method} would generate {rows:,} rows x {width} columns = {width * rows:,} values; at most "
            f"{MAX_GENERATED_CELLS:,} are accepted: ask for fewer rows or columns",
            field="rows",
        )
    if rebalance is not None:
        allowed = rebalancers()
        if rebalance not in allowed:
            raise RequestRefused(f"rebalance must be one of {', '.join(allowed)}", field="rebalance")
        if target is None:
            raise RequestRefused("rebalancing needs a target column", field="target")
        from privacy.synthesizers.rebalance import check_rebalance_request

        # what the schema can tell (a categorical target, features smotenc can use) is refused now, not
        # after the fit has read the data and kept its charge
        check_rebalance_request(schema, target, rebalance)
    if dataset is not None:
        if entry.row_level:
            # k-anonymity on the public schema alone: a release it would empty is refused before any reservation
            from privacy.generalise import check_disclosure_request

            check_disclosure_request(schema, dataset.policy, rows, max_rows=dataset.max_rows)
        if not cost.is_dp and not dataset.policy.allows_non_dp:
            raise PolicyViolation(
                f"{method} is not differentially private and dataset '{dataset.name}' has policy "
                f"'{dataset.policy.privacy}'; choose a DP method (mst, aim, dp-copula, ...) or ask the steward "
                "to allow non-DP releases",
                field="method",
            )
    stored = requested.to_dict()
    return ReleasePlan(
        method=method,
        kind=entry.kind,
        guarantee=entry.guarantee,
        requested=requested,
        cost=cost,
        options=options,
        rows=rows,
        target=target,
        rebalance=rebalance,
        queue=HEAVY if entry.heavy else QUICK,
        reads_rows=entry.reads_rows,
        row_level=entry.row_level,
        whole_table=entry.whole_table,
        recorded={"epsilon": stored["epsilon"], "delta": stored["delta"]},
    )


def check_request_limits(epsilon: Any, delta: Any, dataset: DatasetLimits | None = None) -> None:
    """Refuse an epsilon beyond any meaningful guarantee and a delta above what the dataset allows.

    Runs before any accounting arithmetic, so that an absurd value gets a clear
    4xx instead of an overflow. NaN, strings and infinities are left to the
    value objects, which refuse them with their own message.
    """
    from privacy.policy import MAX_REQUEST_EPSILON, MIN_REQUEST_DELTA

    eps = _finite_or_none(epsilon, "epsilon")
    if eps is not None and eps > MAX_REQUEST_EPSILON:
        raise RequestRefused(
            f"epsilon {format_value(eps) if eps <= 10**6 else f'{float(eps):.3g}'} is far beyond any meaningful privacy guarantee: a request may ask "
            f"for at most epsilon {format_value(MAX_REQUEST_EPSILON)} (typical values are 0.1 to 10)",
            field="epsilon",
            code="epsilon_too_large",
        )
    dlt = _finite_or_none(delta, "delta")
    if dlt is not None and 0 < dlt < MIN_REQUEST_DELTA:
        raise RequestRefused(
            f"delta {float(dlt):.3g} is too small for the accounting to represent: give 0 "
            "(for a method that does not need a delta) or at least 1e-100, such as 1e-9",
            field="delta",
            code="delta_too_small",
        )
    if dlt is None or dataset is None or dlt == 0:
        return
    max_delta = dataset.policy.max_delta_exact
    budget_delta = Fraction(dataset.delta_budget)
    limit = min(max_delta, budget_delta)
    if dlt > limit:
        raise RequestRefused(
            f"delta {format_value(dlt)} is too large for dataset '{dataset.name}': a request may ask for at "
            f"most delta {format_value(limit)} (the policy's max_delta is {format_value(max_delta)}, the "
            f"dataset's whole delta budget {format_value(budget_delta)}). Ask for a smaller delta such as "
            f"{format_value(min(limit, Fraction(1, 10**9)))}, or 0 for a method that does not need one",
            field="delta",
            code="delta_too_large",
        )


def _finite_or_none(value: Any, field: str) -> Fraction | None:
    """The exact value of a finite number given as JSON or text; None when it is absent or not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return _number(value, field)
    except PrivacyError:
        return None

"""The release gate: pass / warn / fail for each rule of the dataset policy.

Each rule compares one figure with one threshold of the `DatasetPolicy`:

| check              | figure                                               | rule        | source   |
|--------------------|------------------------------------------------------|-------------|----------|
| k_anonymity        | smallest quasi-identifier class of the released table | >= k        | public   |
| l_diversity        | smallest distinct l over the sensitive columns        | >= l        | public   |
| exact_match_rate   | share of released rows equal to a real training row   | <= maximum  | internal |
| unique_match_rate  | share reproducing a QI combination unique in the real | <= maximum  | internal |
| membership_auc     | membership-inference attack AUC                       | <= maximum  | internal |
| utility_ratio      | TSTR / TRTR (rebalanced: of the minority-class F1)    | >= minimum  | internal |
| fidelity           | overall fidelity score (rebalanced: class-wise)       | >= minimum  | internal |
| small_cells        | smallest published aggregate cell                     | >= threshold| public   |

Warn margin (`policy.warn_margin`, a fraction of the threshold): a figure on
the passing side whose distance to the threshold is below `margin * threshold`
warns, so a figure exactly at a (non-zero) threshold warns; with a threshold of
0 (e.g. no exact copies allowed) there is no warn zone. For whole-number rules
(k, l, small cells) the margin is counted in whole units,
`floor(margin * threshold)`: with k = 5 and a margin of 0.1 there is no whole
class size between 5 and 5.5, so a smallest class of 5 passes; with k = 20 the
sizes 20 and 21 warn.

A release whose target classes were rebalanced (SMOTE and its kin) differs
from the real class shares by design, and so does every column that goes with
the class: its `fidelity` check judges the class-wise fidelity score (fidelity
within each class, averaged over the classes) and its `utility_ratio` check the
minority-class F1 ratio, TSTR / TRTR, under the same thresholds
(`min_fidelity`, `min_utility_ratio`); each check's message says so
(`evaluation.classwise` defines both figures).

A figure that was not computed (None, NaN) gives `not_run`. The overall
status is fail if any check fails, else warn if any warns, else pass; a fail
blocks approval unless the steward overrides it with a written reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from privacy.disclosure import DisclosureReport, RealMatchReport, SmallCellReport
from privacy.policy import DatasetPolicy

__all__ = ["CHECK_NAMES", "INTERNAL_CHECKS", "GateCheck", "GateResult", "evaluate_gate"]

Status = Literal["pass", "warn", "fail", "not_run"]
Direction = Literal["min", "max"]

CHECK_NAMES = (
    "k_anonymity",
    "l_diversity",
    "exact_match_rate",
    "unique_match_rate",
    "membership_auc",
    "utility_ratio",
    "fidelity",
    "small_cells",
)
# computed on real rows: their figures are for the steward only
INTERNAL_CHECKS = frozenset({"exact_match_rate", "unique_match_rate", "membership_auc", "utility_ratio", "fidelity"})


@dataclass(frozen=True)
class GateCheck:
    """One rule of the gate, with the figure, the threshold and the verdict."""

    name: str
    value: float | None
    threshold: float | None
    status: Status
    message: str
    direction: Direction = "min"
    internal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "status": self.status,
            "message": self.message,
            "direction": self.direction,
            "internal": self.internal,
        }

    def withheld(self) -> dict[str, Any]:
        """The public form of an internal check: its name only."""
        return {
            "name": self.name,
            "value": None,
            "threshold": None,
            "status": "withheld",
            "message": "computed on real rows: shown to the data steward only",
            "direction": self.direction,
            "internal": True,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateCheck:
        return cls(**{k: data[k] for k in ("name", "value", "threshold", "status", "message", "direction", "internal")})


@dataclass(frozen=True)
class GateResult:
    """Every check and the overall verdict."""

    checks: list[GateCheck] = field(default_factory=list)

    @property
    def overall(self) -> Status:
        return _overall(self.checks)

    @property
    def blocks_approval(self) -> bool:
        return self.overall == "fail"

    def check(self, name: str) -> GateCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status == "fail"]

    @property
    def warned(self) -> list[str]:
        return [c.name for c in self.checks if c.status == "warn"]

    def to_dict(self, include_internal: bool = True) -> dict[str, Any]:
        """JSON form. Without internal figures, internal checks are withheld and the
        overall verdict is that of the public checks (labelled as such)."""
        if include_internal:
            return {
                "overall": self.overall,
                "blocks_approval": self.blocks_approval,
                "checks": [c.to_dict() for c in self.checks],
                "internal_included": True,
            }
        public = [c for c in self.checks if not c.internal]
        return {
            "overall_public": _overall(public),
            "checks": [c.withheld() if c.internal else c.to_dict() for c in self.checks],
            "internal_included": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        if not data.get("internal_included", True):
            raise ValueError("a gate result without its internal checks cannot be rebuilt")
        return cls([GateCheck.from_dict(c) for c in data["checks"]])


def _overall(checks: list[GateCheck]) -> Status:
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _judge(
    name: str,
    value: Any,
    threshold: float | None,
    direction: Direction,
    margin: float,
    *,
    whole_units: bool = False,
    label: str,
    fmt: str = "{:.4g}",
    internal: bool = False,
    not_run: str = "not computed for this release",
    extra: str = "",
) -> GateCheck:
    x = _number(value)
    if threshold is None:
        return GateCheck(
            name, x, None, "not_run", f"{label}: no threshold set in the dataset policy", direction, internal
        )
    t = float(threshold)
    if x is None:
        return GateCheck(name, None, t, "not_run", f"{label}: {not_run}", direction, internal)
    slack = math.floor(margin * t) if whole_units else margin * abs(t)
    vs, ts = fmt.format(x), fmt.format(t)
    bound = "minimum" if direction == "min" else "maximum"
    distance = x - t if direction == "min" else t - x  # >= 0 on the passing side
    status: Status
    if distance < 0:
        status = "fail"
        text = f"{label} is {vs}, {'below' if direction == 'min' else 'above'} the {bound} {ts}"
    elif distance < slack:
        status = "warn"
        text = f"{label} is {vs}, within the warn margin of the {bound} {ts}"
    else:
        status = "pass"
        text = f"{label} is {vs} ({bound} {ts})"
    return GateCheck(name, x, t, status, text + extra, direction, internal)


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, DisclosureReport | RealMatchReport | SmallCellReport):
        return obj.to_dict()
    return dict(obj)


def evaluate_gate(
    policy: DatasetPolicy,
    *,
    disclosure: DisclosureReport | Mapping[str, Any] | None,
    real_checks: RealMatchReport | Mapping[str, Any] | None = None,
    membership_auc: float | None = None,
    utility_ratio: float | None = None,
    fidelity: float | None = None,
    small_cells: SmallCellReport | Mapping[str, Any] | None = None,
    unique_match_baseline: float | tuple[float, int] | None = None,
    exact_match_baseline: float | tuple[float, int] | None = None,
    utility_leakage: str | None = None,
    class_aware: Mapping[str, Any] | None = None,
) -> GateResult:
    """Judge a release against the dataset policy.

    `disclosure` is the report of `apply_disclosure_control` (None for
    aggregate releases); `real_checks` that of `real_row_checks`, whose
    figures on the released table take precedence for k and l when rows were
    removed; the three numbers come from the evaluation report; `small_cells`
    from `apply_small_cell_rules`. Anything not given is `not_run`.

    `utility_leakage`, when the report found the target leaking from the features
    (a near-perfect real model, or a feature that copies the target), turns a
    passing utility ratio into a warning that says why: the ratio then says
    nothing of the synthetic data.

    `unique_match_baseline` is the unique-match rate of real rows that were not
    in the training split (the holdout) against the training rows: the rate at
    which fresh people of the same population reproduce a unique training
    combination by chance. When given, the unique-match limit is the larger of
    the policy's maximum and this baseline: a release is not blamed for
    matches that any new sample of real people would make just as often.

    `exact_match_baseline` is the same for exact copies: the share of real rows
    outside the training split that equal a training row on every compared
    column. Where columns are coarse, most fresh people do (on the categorical
    columns of the test tables, 67% of adult's holdout and 93% of PUMS's, while
    MST, AIM and dp-copula at epsilon 1 release 29-86%); the limit rises the
    same way, so that a release matching training rows no more often than new
    people do passes, and a copy of the training rows (rate 1) fails.

    A baseline given as (rate, holdout rows) is measured on a sample: the limit
    is then its upper bound, the Wilson score bound at z = 2 (about 97.7%), so
    that a small holdout does not fail sound releases by chance (a holdout of 69
    penguins with no match bounds the rate at 5.5%, not 0). A plain number is
    taken as exact.

    `class_aware`, for a rebalanced release (`evaluation.Report.class_aware`):
    ``{"target", "minority_classes", "fidelity", "utility_ratio"}``, the
    class-wise fidelity score and the minority-class F1 ratio. The fidelity and
    utility checks then judge these instead of `fidelity` and `utility_ratio`,
    which are named in the messages for information.
    """
    m = policy.warn_margin
    dis = _as_dict(disclosure)
    real = _as_dict(real_checks)
    cells = _as_dict(small_cells)
    checks: list[GateCheck] = []

    # k-anonymity and l-diversity on the table actually released
    k_info = l_info = None
    if real is not None and real.get("filtering_applied"):
        k_info, l_info = real.get("k_anonymity"), real.get("l_diversity")
    elif dis is not None:
        k_info, l_info = dis.get("k_anonymity"), dis.get("l_diversity")
    checks.append(_k_check(policy, dis, k_info, m))
    checks.append(_l_check(policy, dis, l_info, m))

    # against real rows
    if real is None:
        exact = unique = None
        extra_e = extra_u = ""
    else:
        exact, unique = real.get("released_exact_match_rate"), real.get("released_unique_match_rate")
        extra_e = (
            f"; {real.get('removed_exact', 0)} exact copies removed by filtering"
            if real.get("filtering_applied")
            else ""
        )
        extra_u = (
            f"; {real.get('removed_unique', 0)} unique matches removed by filtering"
            if real.get("filtering_applied")
            else ""
        )
    exact_limit = policy.max_exact_match_rate
    upper, measured = _baseline_limit(exact_match_baseline)
    if upper is not None and upper > exact_limit:
        exact_limit = upper
        extra_e += (
            f"; limit raised from the policy's {policy.max_exact_match_rate:g} to {upper:.4g}, "
            f"{measured} (real rows outside the training split equal a training row that often)"
        )
    checks.append(
        _judge(
            "exact_match_rate",
            exact,
            exact_limit,
            "max",
            m,
            label="exact-match rate (released rows equal to a real training row)",
            internal=True,
            not_run="the check against real rows was not run",
            extra=extra_e,
        )
    )
    unique_not_run = (
        "no quasi-identifiers declared"
        if real is not None and real.get("unique_match_rate") is None
        else "the check against real rows was not run"
    )
    unique_limit = policy.max_unique_match_rate
    upper, measured = _baseline_limit(unique_match_baseline)
    if upper is not None and upper > unique_limit:
        unique_limit = upper
        extra_u += (
            f"; limit raised from the policy's {policy.max_unique_match_rate:g} to {upper:.4g}, {measured} "
            "(real rows outside the training split match that often)"
        )
    checks.append(
        _judge(
            "unique_match_rate",
            unique,
            unique_limit,
            "max",
            m,
            label="unique-match rate (released rows reproducing a unique real QI combination)",
            internal=True,
            not_run=unique_not_run,
            extra=extra_u,
        )
    )
    checks.append(
        _judge(
            "membership_auc",
            membership_auc,
            policy.max_membership_auc,
            "max",
            m,
            label="membership-inference AUC",
            internal=True,
        )
    )
    utility_label, fidelity_label, utility_extra, fidelity_extra = (
        "utility ratio (TSTR / TRTR)",
        "fidelity score",
        "",
        "",
    )
    if class_aware is not None:
        target = class_aware.get("target")
        minority = ", ".join(f"'{c}'" for c in class_aware.get("minority_classes") or [])
        utility_label = f"minority-class F1 ratio (TSTR / TRTR; {minority or 'minority classes'} of '{target}')"
        fidelity_label = f"class-wise fidelity score (mean over the classes of '{target}')"
        utility_extra = _replaces("utility ratio of the primary score", utility_ratio)
        fidelity_extra = _replaces("marginal fidelity score", fidelity)
        utility_ratio, fidelity = class_aware.get("utility_ratio"), class_aware.get("fidelity")
    utility = _judge(
        "utility_ratio",
        utility_ratio,
        policy.min_utility_ratio,
        "min",
        m,
        label=utility_label,
        internal=True,
        extra=utility_extra,
    )
    if utility_leakage and utility.status == "pass":
        utility = GateCheck(
            utility.name,
            utility.value,
            utility.threshold,
            "warn",
            f"{utility_label} not meaningful: {utility_leakage}",
            utility.direction,
            utility.internal,
        )
    checks.append(utility)
    checks.append(
        _judge(
            "fidelity",
            fidelity,
            policy.min_fidelity,
            "min",
            m,
            label=fidelity_label,
            internal=True,
            extra=fidelity_extra,
        )
    )
    checks.append(_small_cell_check(policy, cells, m))
    return GateResult(checks)


def _replaces(what: str, value: Any) -> str:
    x = _number(value)
    return f"; the release was rebalanced, so this replaces the {what}" + (
        f" ({x:.4g}, for information)" if x is not None else ""
    )


def _baseline_limit(baseline: float | tuple[float, int] | None) -> tuple[float | None, str]:
    """(limit, how it was found) from a holdout baseline: a plain rate, or the Wilson upper bound of (rate, rows)."""
    if baseline is None:
        return None, ""
    if not isinstance(baseline, tuple | list):
        rate = _number(baseline)
        return rate, f"the holdout baseline {rate:.4g}" if rate is not None else ""
    rate, rows = _number(baseline[0]), int(baseline[1] or 0)
    if rate is None or rows <= 0:
        return None, ""
    z = 2.0
    centre = rate + z * z / (2 * rows)
    spread = z * math.sqrt(rate * (1 - rate) / rows + z * z / (4 * rows * rows))
    upper = min(1.0, (centre + spread) / (1 + z * z / rows))
    return upper, f"the upper bound of the holdout baseline {rate:.4g} on {rows} rows"


def _k_check(
    policy: DatasetPolicy, dis: dict[str, Any] | None, k_info: Mapping[str, Any] | None, m: float
) -> GateCheck:
    label = "smallest quasi-identifier class"
    if dis is None or k_info is None:
        return GateCheck("k_anonymity", None, None, "not_run", "k-anonymity: no row-level disclosure report", "min")
    if not k_info.get("applicable", True) or not dis.get("quasi_identifiers"):
        return GateCheck(
            "k_anonymity",
            None,
            None,
            "not_run",
            "k-anonymity: no quasi-identifiers declared in the public schema",
            "min",
        )
    k = policy.effective_k(True)
    rows = k_info.get("rows", 0)
    if not rows:
        return GateCheck(
            "k_anonymity",
            None,
            float(k) if k else None,
            "fail",
            "every row was suppressed: nothing is left to release; lower k, declare hierarchies "
            "for the quasi-identifiers, or use fewer quasi-identifiers",
            "min",
        )
    suppressed = (dis.get("suppression") or {}).get("rows_suppressed", 0)
    extra = f"; {suppressed} of {dis.get('rows_in', 0)} rows suppressed" if suppressed else ""
    return _judge(
        "k_anonymity",
        k_info.get("smallest_class"),
        k,
        "min",
        m,
        whole_units=True,
        label=label,
        fmt="{:.0f}",
        extra=extra,
    )


def _l_check(
    policy: DatasetPolicy, dis: dict[str, Any] | None, l_info: Mapping[str, Any] | None, m: float
) -> GateCheck:
    if policy.l is None:
        return GateCheck("l_diversity", None, None, "not_run", "l-diversity: no l set in the dataset policy", "min")
    if dis is None or not l_info:
        reason = (
            "no row-level disclosure report" if dis is None else "no sensitive columns or no quasi-identifiers declared"
        )
        return GateCheck("l_diversity", None, float(policy.l), "not_run", f"l-diversity: {reason}", "min")
    worst_col, worst = None, None
    for col, entry in l_info.items():
        v = entry.get("smallest_l")
        if v is not None and (worst is None or v < worst):
            worst_col, worst = col, v
    if worst is None:
        return GateCheck(
            "l_diversity", None, float(policy.l), "not_run", "l-diversity: the released table is empty", "min"
        )
    assert worst_col is not None
    share = l_info[worst_col].get("share_classes_below_l", 0.0)
    extra = f"; {share:.1%} of the classes are below l" if share else ""
    return _judge(
        "l_diversity",
        worst,
        policy.l,
        "min",
        m,
        whole_units=True,
        label=f"smallest l-diversity ('{worst_col}')",
        fmt="{:.0f}",
        extra=extra,
    )


def _small_cell_check(policy: DatasetPolicy, cells: dict[str, Any] | None, m: float) -> GateCheck:
    if cells is None:
        return GateCheck(
            "small_cells",
            None,
            float(policy.small_cell_threshold),
            "not_run",
            "small cells: not an aggregate release",
            "min",
        )
    if cells.get("min_published") is None:
        return GateCheck(
            "small_cells",
            None,
            float(policy.small_cell_threshold),
            "warn",
            "small cells: every cell was suppressed; nothing is published",
            "min",
        )
    extra = f"; {cells.get('cells_suppressed', 0)} of {cells.get('cells', 0)} cells suppressed"
    return _judge(
        "small_cells",
        cells["min_published"],
        policy.small_cell_threshold,
        "min",
        m,
        whole_units=True,
        label="smallest published cell",
        fmt="{:.6g}",
        extra=extra,
    )

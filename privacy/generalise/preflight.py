"""Preflight of a disclosure request: what the public schema alone predicts.

Before any row is read, the schema, the policy and the requested row count
predict how many rows k-anonymity would suppress; a release expected to lose
its rows is refused (`check_disclosure_request`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privacy.generalise.hierarchy import column_levels, describe_levels, describe_node, label_losses
from privacy.schema import ColumnSpec

# ----------------------------------------------------------------------------------
# preflight: what the public schema alone predicts
# ----------------------------------------------------------------------------------

#: suppress mode refuses when even the finest quasi-identifier alone is expected to leave this share below k
REFUSE_SHARE = 0.5


def _domain_size(spec: ColumnSpec, rec: Mapping[str, Any] | None) -> float | None:
    """Classes a level can form, from the schema only (null counted as one); None when the schema leaves it open."""
    null = 1 if spec.nullable else 0
    if rec is not None:
        if rec["type"] == "suppressed":
            return 1.0
        if rec["type"] == "year":
            return float(rec["max"] - rec["min"] + 1 + null)
        return float(len(rec["labels"]) + null)
    if spec.kind == "categorical" or spec.values is not None:
        return float(len(spec.values) + null) if spec.values is not None else None
    if not spec.has_bounds:
        return None
    if spec.kind == "datetime":
        lo, hi = spec.numeric_bounds()
        return float(math.floor(hi) - math.ceil(lo) + 1 + null)
    if spec.is_integer:
        lo, hi = spec.numeric_bounds()
        return float(math.floor(hi) - math.ceil(lo) + 1 + null)
    return math.inf  # continuous values: every one its own class


def expected_share_below_k(rows: int, cells: float, k: int) -> float:
    """Expected share of rows in classes below k when `rows` fall uniformly over `cells` classes.

    A row's class holds it and Binomial(rows - 1, 1 / cells) others. Uniform
    spread is the pessimistic case when most rows would be lost (real and
    synthetic data concentrate), so it is a fair ground for a refusal only far
    above the limit.
    """
    if rows < k:
        return 1.0
    if k <= 1 or cells <= 1:
        return 0.0
    if math.isinf(cells):
        return 1.0
    return _binom_cdf(k - 2, rows - 1, 1.0 / cells)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), as scipy.stats.binom.cdf gives it.

    scipy.stats costs about a second of CPU to import, which a web process would pay on its first
    release request; the ufunc scipy.stats.binom calls is in scipy.special (a quarter of that). Where a
    scipy release no longer has it, scipy.stats answers.
    """
    from scipy.special import _ufuncs

    cdf = getattr(_ufuncs, "_binom_cdf", None)
    if cdf is None:  # pragma: no cover - depends on the scipy release
        from scipy.stats import binom

        return float(binom.cdf(k, n, p))
    return min(1.0, max(0.0, float(cdf(float(k), n, p))))


def _declarable(rec: Mapping[str, Any]) -> str | None:
    """How a steward would declare this level in the schema, when the schema language can say it."""
    if rec["type"] in ("month", "year"):
        return f"granularity: {rec['type']}"
    if rec["type"] == "intervals" and str(rec["how"]).startswith("bands of "):
        return f"band: {rec['how'].removeprefix('bands of ')}"
    return None


@dataclass
class DisclosurePreflight:
    """What k-anonymity is expected to do to a release of `rows` rows, from the public schema and policy alone."""

    rows: int
    k: int | None
    suppression: str
    max_suppression: float
    quasi_identifiers: list[str]
    expected_share: float | None = None  # QIs as declared, uniform over the product of their domains
    finest: str | None = None  # the QI that alone splits the rows most
    finest_share: float | None = None  # the expected share below k from that QI alone
    node: str | None = None  # generalise: the node the schema predicts
    node_share: float | None = None
    refused: bool = False
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _predict_node(
    qis: Sequence[str], specs: Mapping[str, ColumnSpec], levels: Mapping[str, list], rows: int, k: int, limit: float
) -> tuple[dict[str, int], float, float] | None:
    """The least expected-loss node whose expected share below k is within the limit (uniform spread)."""
    sizes = {q: [_domain_size(specs[q], rec) or 1.0 for rec in levels[q]] for q in qis}
    mean_loss = {
        q: [0.0 if rec is None else float(np.mean(list(label_losses(rec).values()))) for rec in levels[q]] for q in qis
    }
    best = None
    for node in itertools.product(*(range(len(levels[q])) for q in qis)):
        cells = math.prod(sizes[q][lv] for q, lv in zip(qis, node, strict=True))
        share = expected_share_below_k(rows, cells, k)
        if share > limit:
            continue
        g = sum(mean_loss[q][lv] for q, lv in zip(qis, node, strict=True)) / len(qis)
        loss = g * (1 - share) + share
        key = (round(loss, 12), sum(node), node)
        if best is None or key < best[0]:
            best = (key, share, loss)
    if best is None:
        return None
    return dict(zip(qis, best[0][2], strict=True)), best[1], best[2]


def preflight_disclosure(schema: Any, policy: Any, rows: int, *, max_rows: int | None = None) -> DisclosurePreflight:
    """Expected suppression of a release of `rows` rows, and whether to refuse it, before any data is read.

    `suppress`: the QI domains as declared, rows spread uniformly. Refused
    when fewer rows than k are asked for, or when even the finest
    quasi-identifier alone is expected to leave at least `REFUSE_SHARE` of the
    rows (and more than the policy's limit) in classes below k; a joint
    estimate over the limit is a warning (uniform spread overstates it on
    skewed data). `generalise`: the `*` level always puts every row in one
    class, so only fewer rows than k is refused; the node the schema predicts
    is reported, with a warning when it suppresses a quasi-identifier whole.
    """
    qis = list(schema.quasi_identifiers)
    k = policy.effective_k(bool(qis))
    out = DisclosurePreflight(
        rows=rows, k=k, suppression=policy.suppression, max_suppression=policy.max_suppression, quasi_identifiers=qis
    )
    if not qis or k is None:
        return out
    limit = policy.max_suppression
    names = ", ".join(qis)
    if rows < k:
        out.refused = True
        out.message = (
            f"{rows} row(s) cannot reach k = {k} on the quasi-identifiers ({names}): every row would "
            f"be suppressed. The privacy budget was not touched. Ask for at least {k} rows"
            + (f", or ask the steward for k = {rows}" if rows >= 1 else "")
        )
        return out
    specs = {q: schema.columns[q] for q in qis}
    levels = {q: column_levels(q, specs[q]) for q in qis}
    open_qis = [q for q in qis if _domain_size(specs[q], None) is None]
    sizes = {q: size for q in qis if (size := _domain_size(specs[q], None)) is not None}
    cells = math.prod(sizes.values()) if sizes else 1.0
    out.expected_share = expected_share_below_k(rows, cells, k)
    if sizes:
        out.finest = max(sizes, key=lambda q: (sizes[q], -qis.index(q)))
        out.finest_share = expected_share_below_k(rows, sizes[out.finest], k)
    predicted = _predict_node(qis, specs, levels, rows, k, limit)
    if predicted is not None:
        chosen, out.node_share, _ = predicted
        out.node = describe_node(chosen, {q: describe_levels(levels[q]) for q in qis})
    unknown = f" ({', '.join(open_qis)} left open in the schema and not counted)" if open_qis else ""

    if policy.suppression == "generalise":
        if predicted is not None and any(
            (rec := levels[q][lv]) is not None and rec["type"] == "suppressed" for q, lv in chosen.items()
        ):
            out.warnings.append(
                f"with {rows:,} rows, k = {k} and at most {limit:.0%} suppressed, the public schema predicts "
                f"{out.node}{unknown}: declare fewer quasi-identifiers, ask for more rows, or lower k to keep "
                "more detail (an estimate: the search on the synthetic output decides)"
            )
        return out

    share = out.finest_share or 0.0
    if out.expected_share <= limit:
        return out
    detail = (
        f"with suppression: suppress, k = {k} and {rows:,} rows spread over the declared domains of "
        f"{names}{unknown}, about {out.expected_share:.0%} of the rows are expected in classes below k "
        f"(the policy allows {limit:.0%})"
    )
    advice = ["use suppression: generalise" + (f" (expected: {out.node})" if out.node else "")]
    fin = out.finest
    if fin is not None:
        for rec in levels[fin][1:]:
            if rec is None or rec["type"] == "suppressed":
                continue
            how = _declarable(rec)
            if how and expected_share_below_k(rows, _domain_size(specs[fin], rec) or 1.0, k) <= limit:
                advice.append(f"declare a hierarchy for {fin} ({how}) and use suppression: generalise")
                break
    for smaller_k in range(k - 1, 1, -1):
        if expected_share_below_k(rows, cells, smaller_k) <= limit:
            advice.append(f"ask the steward for k = {smaller_k}")
            break
    need = _rows_needed(cells, k, limit, max_rows)
    if need is not None:
        advice.append(f"ask for at least {need:,} rows")
    if fin is not None and share >= max(REFUSE_SHARE, limit):
        out.refused = True
        out.message = (
            f"{detail}; {fin} alone has {sizes[fin]:,.0f} values, so about {share:.0%} of the rows "
            "would be suppressed whatever the other columns do. The privacy budget was not touched. "
            "To release, " + "; or ".join(advice)
        )
    else:
        out.warnings.append(
            f"{detail} (a pessimistic estimate on skewed data). To lose fewer rows, " + "; or ".join(advice)
        )
    return out


def _rows_needed(cells: float, k: int, limit: float, max_rows: int | None) -> int | None:
    """The fewest rows whose uniform estimate is within the limit, when that is at most max_rows."""
    if math.isinf(cells) or max_rows is None:
        return None
    if expected_share_below_k(max_rows, cells, k) > limit:
        return None
    lo, hi = k, max_rows
    while lo < hi:
        mid = (lo + hi) // 2
        if expected_share_below_k(mid, cells, k) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return lo


def check_disclosure_request(schema: Any, policy: Any, rows: int, *, max_rows: int | None = None) -> list[str]:
    """Refuse (DisclosureInfeasible) a release the preflight expects to lose its rows; else its warnings."""
    result = preflight_disclosure(schema, policy, rows, max_rows=max_rows)
    if result.refused:
        from privacy.errors import DisclosureInfeasible

        raise DisclosureInfeasible(result.message or "k-anonymity would suppress the release", field="rows")
    return list(result.warnings)

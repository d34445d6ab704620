"""Method advice for a release request, from public facts only.

`recommend_method(schema, public_rows, epsilon, policy)` names the method the
request form suggests and says why. It reads the public schema, the row count
the steward declared public (`DatasetPolicy.public_row_count`, or None), the
epsilon the analyst typed and the dataset's policy; never the table, nor the
row count read from it. The advice is therefore a function of public values,
and showing it to an analyst reveals nothing about any row.

The rules, in order (the first that applies decides):

1. `want="statistics"`: **dp-statistics**. Counts, means and quantiles are
   measured directly, which costs less than fitting a synthesizer to compute
   them afterwards.
2. `want="non-dp"`: **gaussian-copula** when the policy is `allow-non-dp`; under
   `dp-only` the advice falls through to the DP rules and says that non-DP
   methods are refused.
3. No epsilon yet: **mst**, a sound default at any budget.
4. A wide schema (more than `WIDE_COLUMNS` modelled columns) or a large one
   (the largest domain over `LARGE_DOMAIN` codes): **mst**. It measures one-way
   marginals and the pairs of a spanning tree, so its cost grows with the
   columns, while AIM's workload of pairs grows with their square.
5. Little signal, `epsilon < SMALL_EPSILON`, or `epsilon x public_rows` below
   `SMALL_SIGNAL` (a few rows, or a small budget): **mst**. Few measurements,
   each with most of the budget, keep the noise below the signal.
6. Otherwise (enough rows and budget): **aim**. Its adaptive choice of
   marginals keeps more of the joint structure when the budget allows many
   measurements. Without a declared row count, rule 5 looks at epsilon alone
   and the reason says that the table's size is not public.

A method not in `available` (not installed on the server) is replaced by the
next DP marginal method of `FALLBACK` that is.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

__all__ = [
    "FALLBACK",
    "LARGE_DOMAIN",
    "SMALL_EPSILON",
    "SMALL_SIGNAL",
    "WIDE_COLUMNS",
    "Recommendation",
    "allowed_by_policy",
    "recommend_method",
]

WIDE_COLUMNS = 20
LARGE_DOMAIN = 200
SMALL_EPSILON = 0.5
SMALL_SIGNAL = 2_000.0
FALLBACK = ("mst", "aim", "dp-marginals", "mst-smartnoise", "aim-smartnoise", "dp-copula")

Recommendation = tuple[str, str]


def allowed_by_policy(guarantee: str, policy: DatasetPolicy) -> bool:
    """Whether the dataset's policy lets a request use a method of this guarantee ("dp", "non-dp",
    "data-free"): non-DP methods only under `allow-non-dp` (the request is refused otherwise)."""
    return guarantee != "non-dp" or policy.allows_non_dp


def _fmt(x: float) -> str:
    return f"{x:g}"


def recommend_method(
    schema: PublicSchema,
    public_rows: int | None,
    epsilon: float | None,
    policy: DatasetPolicy,
    *,
    want: Literal["synthetic", "statistics", "non-dp"] = "synthetic",
    available: Collection[str] | None = None,
) -> Recommendation:
    """(method, reason) for a request on a dataset with this public schema and policy (rules above)."""
    if want == "statistics":
        return "dp-statistics", (
            "you asked for statistics: dp-statistics measures counts, means and quantiles directly, "
            "which costs less than computing them from synthetic rows"
        )
    refused_note = ""
    if want == "non-dp":
        if policy.allows_non_dp:
            return _installed("gaussian-copula", available), (
                "you asked for a method without a formal guarantee, and this dataset's policy allows one: "
                "gaussian-copula is the quickest; the release will say it has no privacy guarantee"
            )
        refused_note = "this dataset's policy (dp-only) refuses methods that are not differentially private; "
    method, reason = _dp_rule(schema, public_rows, epsilon)
    return _installed(method, available), refused_note + reason


def _dp_rule(schema: PublicSchema, public_rows: int | None, epsilon: float | None) -> Recommendation:
    if epsilon is None or not epsilon > 0:
        return "mst", "a sound default at any epsilon: give epsilon for advice fitted to your budget"
    modelled = [schema.columns[c] for c in schema.synthesized_columns]
    widest = max((c.domain_size() for c in modelled), default=0)
    if len(modelled) > WIDE_COLUMNS or widest > LARGE_DOMAIN:
        return "mst", (
            f"the public schema has {len(modelled)} modelled columns, the largest with {widest} codes: "
            "MST measures single columns and a tree of pairs, so its noise grows with the columns, "
            "where AIM's workload of pairs grows with their square"
        )
    if epsilon < SMALL_EPSILON:
        return "mst", (
            f"epsilon {_fmt(epsilon)} is small (below {_fmt(SMALL_EPSILON)}): MST spends it on few "
            "marginals, each measured with enough budget to stay above the noise"
        )
    if public_rows is None:
        return "aim", (
            f"epsilon {_fmt(epsilon)} leaves room for AIM's adaptive choice of marginals, which keeps more of "
            "the joint structure; the table's size is not public, so this advice looks at epsilon alone "
            "(at small tables, MST may do better)"
        )
    signal = epsilon * public_rows
    if signal < SMALL_SIGNAL:
        return "mst", (
            f"epsilon {_fmt(epsilon)} x {public_rows:,} rows (the declared public row count) is little signal: "
            "MST spends it on few marginals, each measured with enough budget to stay above the noise"
        )
    return "aim", (
        f"epsilon {_fmt(epsilon)} x {public_rows:,} rows (the declared public row count) leaves room for AIM's "
        "adaptive choice of marginals, which keeps more of the joint structure"
    )


def _installed(method: str, available: Collection[str] | None) -> str:
    if available is None or method in available:
        return method
    for other in FALLBACK:
        if other in available:
            return other
    return next(iter(available), method)


def advice_view(
    schema: PublicSchema, policy: DatasetPolicy, epsilon: Any, *, available: Collection[str] | None = None
) -> dict[str, Any]:
    """The advice as JSON for a form or an API view: `{"method", "reason", "epsilon", "public_rows"}`.
    `epsilon` may be text from a form; anything that is not a positive finite number counts as not given."""
    eps: float | None
    try:
        eps = float(epsilon) if epsilon not in (None, "") else None
    except (TypeError, ValueError):
        eps = None
    if eps is not None and not (0 < eps < float("inf")):
        eps = None
    method, reason = recommend_method(schema, policy.public_row_count, eps, policy, available=available)
    return {"method": method, "reason": reason, "epsilon": eps, "public_rows": policy.public_row_count}

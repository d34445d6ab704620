"""The method advice of the request form (privacy/advice.py): its rules, from public facts only."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from privacy import advice
from privacy.advice import advice_view, allowed_by_policy, recommend_method
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

PENGUINS = PublicSchema.from_text(
    (Path(__file__).resolve().parents[1] / "data" / "penguins" / "schema.yaml").read_text()
)
DP_ONLY = DatasetPolicy()
OPEN = DatasetPolicy(privacy="allow-non-dp")


def _wide(columns: int, values: int = 3) -> PublicSchema:
    return PublicSchema.from_dict(
        {
            "columns": {
                f"c{i}": {"kind": "categorical", "values": [f"v{j}" for j in range(values)]} for i in range(columns)
            }
        }
    )


def test_few_rows_or_a_small_epsilon_get_mst_and_many_rows_with_budget_get_aim() -> None:
    method, reason = recommend_method(PENGUINS, 300, 1.0, DP_ONLY)
    assert method == "mst" and "300 rows" in reason and "little signal" in reason
    method, reason = recommend_method(PENGUINS, 1_000_000, 0.1, DP_ONLY)
    assert method == "mst" and "epsilon 0.1 is small" in reason
    method, reason = recommend_method(PENGUINS, 50_000, 1.0, DP_ONLY)
    assert method == "aim" and "50,000 rows" in reason
    # the boundary of rule 5: epsilon x rows at SMALL_SIGNAL is enough
    assert recommend_method(PENGUINS, int(advice.SMALL_SIGNAL), 1.0, DP_ONLY)[0] == "aim"
    assert recommend_method(PENGUINS, int(advice.SMALL_SIGNAL) - 1, 1.0, DP_ONLY)[0] == "mst"


def test_many_columns_or_a_large_domain_get_mst_whatever_the_budget() -> None:
    method, reason = recommend_method(_wide(advice.WIDE_COLUMNS + 1), 10**6, 10.0, DP_ONLY)
    assert method == "mst" and f"{advice.WIDE_COLUMNS + 1} modelled columns" in reason
    method, reason = recommend_method(_wide(3, values=advice.LARGE_DOMAIN + 1), 10**6, 10.0, DP_ONLY)
    assert method == "mst" and f"{advice.LARGE_DOMAIN + 1} codes" in reason
    assert recommend_method(_wide(advice.WIDE_COLUMNS), 10**6, 10.0, DP_ONLY)[0] == "aim"


def test_without_a_declared_row_count_the_advice_looks_at_epsilon_alone_and_says_so() -> None:
    method, reason = recommend_method(PENGUINS, None, 2.0, DP_ONLY)
    assert method == "aim" and "not public" in reason
    assert recommend_method(PENGUINS, None, 0.2, DP_ONLY)[0] == "mst"
    method, reason = recommend_method(PENGUINS, None, None, DP_ONLY)
    assert method == "mst" and "give epsilon" in reason


def test_non_dp_only_when_asked_and_allowed_statistics_when_asked() -> None:
    assert recommend_method(PENGUINS, 50_000, 1.0, OPEN)[0] == "aim"  # allowed, not asked: still DP
    method, reason = recommend_method(PENGUINS, 50_000, 1.0, OPEN, want="non-dp")
    assert method == "gaussian-copula" and "no privacy guarantee" in reason
    method, reason = recommend_method(PENGUINS, 50_000, 1.0, DP_ONLY, want="non-dp")
    assert method == "aim" and reason.startswith("this dataset's policy (dp-only) refuses")
    assert recommend_method(PENGUINS, 50_000, 1.0, DP_ONLY, want="statistics")[0] == "dp-statistics"


def test_a_method_not_installed_is_replaced_by_the_next_marginal_method() -> None:
    assert recommend_method(PENGUINS, 50_000, 1.0, DP_ONLY, available={"mst", "dp-copula"})[0] == "mst"
    assert recommend_method(PENGUINS, 300, 1.0, DP_ONLY, available={"aim", "dp-copula"})[0] == "aim"


def test_the_policy_refuses_non_dp_methods_only_under_dp_only() -> None:
    assert not allowed_by_policy("non-dp", DP_ONLY)
    assert allowed_by_policy("non-dp", OPEN)
    assert allowed_by_policy("dp", DP_ONLY) and allowed_by_policy("data-free", DP_ONLY)


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "inf", "nan", None])
def test_the_view_takes_a_missing_or_bad_epsilon_as_not_given(text: object) -> None:
    view = advice_view(PENGUINS, DatasetPolicy(public_row_count=2_347), text)
    assert view["epsilon"] is None and view["method"] == "mst" and view["public_rows"] == 2_347


def test_the_advice_reads_no_private_row_count() -> None:
    """Public facts only: the functions take no dataset record, and their source never names n_rows."""
    assert list(inspect.signature(recommend_method).parameters)[:4] == ["schema", "public_rows", "epsilon", "policy"]
    assert "n_rows" not in inspect.getsource(advice)
    view = advice_view(PENGUINS, DatasetPolicy(public_row_count=50_000), "1.5")
    assert (
        view
        == {
            "method": "aim",
            "reason": view["reason"],
            "epsilon": 1.5,
            "public_rows": 50_000,
        }
        and "50,000 rows" in view["reason"]
    )

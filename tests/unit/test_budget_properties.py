"""Property tests of the privacy value objects and the accountants."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from privacy.accounting import budget_status, check_can_pay, zcdp_epsilon, zcdp_rho
from privacy.budget import PrivacyBudget, PrivacyCost, parse_number
from privacy.errors import BudgetExceeded, InvalidPrivacyValue, PolicyViolation

eps_values = st.fractions(min_value=Fraction(1, 1000), max_value=10, max_denominator=10_000)
delta_values = st.fractions(min_value=0, max_value=Fraction(1, 10_000), max_denominator=10**9)
rho_values = st.fractions(min_value=Fraction(1, 10**6), max_value=5, max_denominator=10**6)


@pytest.mark.parametrize(
    "bad",
    [-1, -0.0001, math.nan, math.inf, -math.inf, float("1e309"), "1", "0.5", True, None, b"1", Decimal("NaN"), [1]],
)
def test_cost_rejects_bad_epsilon(bad):
    with pytest.raises(InvalidPrivacyValue):
        PrivacyCost(bad)


@pytest.mark.parametrize("bad", [1, 1.0, 1.5, -1e-9, math.nan, "1e-6"])
def test_cost_rejects_bad_delta(bad):
    with pytest.raises(InvalidPrivacyValue):
        PrivacyCost(1, bad)


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "1"])
def test_budget_rejects_bad_values(bad):
    with pytest.raises(InvalidPrivacyValue):
        PrivacyBudget(bad)


def test_float_input_is_read_as_its_decimal():
    assert PrivacyCost(0.1).epsilon == Fraction(1, 10)
    assert PrivacyCost(1e-9, 1e-9).delta == Fraction(1, 10**9)


def test_parse_number_is_exact_and_strict():
    assert parse_number("0.1", "epsilon") == Fraction(1, 10)
    for bad in ("nan", "inf", "abc", "", "1e309x"):
        with pytest.raises(InvalidPrivacyValue):
            parse_number(bad, "epsilon")


def test_non_dp_is_explicit_and_absorbing():
    assert not PrivacyCost.non_dp().is_dp
    assert not (PrivacyCost(1) + PrivacyCost.non_dp()).is_dp
    with pytest.raises(InvalidPrivacyValue):
        PrivacyCost(math.inf)


@given(st.lists(st.tuples(eps_values, delta_values), min_size=1, max_size=30))
def test_composition_never_undercounts(parts):
    costs = [PrivacyCost(e, d) for e, d in parts]
    total = PrivacyCost.zero()
    for c in costs:
        total = total + c
    assert total.epsilon == sum(e for e, _ in parts)
    assert total.delta == sum(d for _, d in parts)
    assert all(total.epsilon >= c.epsilon for c in costs)


@given(eps_values, delta_values, st.integers(min_value=1, max_value=200))
def test_splitting_a_budget_n_ways_spends_it_exactly(eps, delta, n):
    budget = PrivacyBudget(eps, delta)
    parts = budget.split(n)
    status = budget_status(budget, parts, [])
    assert status.remaining_epsilon == 0
    assert status.remaining_delta == 0
    # and one more smallest charge does not fit
    with pytest.raises(BudgetExceeded):
        check_can_pay(budget, parts, PrivacyCost(Fraction(1, 10**9)))


@settings(max_examples=60, deadline=None)
@given(rho_values, rho_values, st.sampled_from([1e-9, 1e-6, 1e-3]))
def test_zcdp_epsilon_is_monotone_in_rho(r1, r2, delta):
    lo, hi = sorted((r1, r2))
    assert zcdp_epsilon(lo, delta) <= zcdp_epsilon(hi, delta)
    # never negative, and never above the Bun-Steinke bound (rounded up)
    assert zcdp_epsilon(lo, delta) >= 0
    assert float(zcdp_epsilon(lo, delta)) <= float(lo) + 2 * math.sqrt(float(lo) * math.log(1 / delta)) + 1e-9


@settings(max_examples=40, deadline=None)
@given(rho_values)
def test_zcdp_epsilon_decreases_as_delta_grows(rho):
    values = [zcdp_epsilon(rho, d) for d in (1e-12, 1e-9, 1e-6, 1e-3)]
    assert values == sorted(values, reverse=True)


@settings(max_examples=40, deadline=None)
@given(eps_values, eps_values, st.sampled_from([1e-9, 1e-6]))
def test_zcdp_rho_is_monotone_and_within_the_request(e1, e2, delta):
    lo, hi = sorted((e1, e2))
    assert zcdp_rho(lo, delta) <= zcdp_rho(hi, delta)
    # the rho a mechanism runs at converts back to no more than what was asked
    assert zcdp_epsilon(zcdp_rho(lo, delta), delta) <= lo


@settings(max_examples=60, deadline=None)
@given(st.lists(eps_values, min_size=0, max_size=20), eps_values, eps_values)
def test_gate_never_admits_beyond_the_budget_by_basic_composition(spent, new, budget_eps):
    budget = PrivacyBudget(budget_eps, 0)  # delta 0: only basic composition applies
    committed = [PrivacyCost(e) for e in spent]
    assume(sum(spent, Fraction(0)) <= budget_eps)
    try:
        check_can_pay(budget, committed, PrivacyCost(new))
    except BudgetExceeded:
        assert sum(spent, Fraction(0)) + new > budget_eps
    else:
        assert sum(spent, Fraction(0)) + new <= budget_eps


@settings(max_examples=40, deadline=None)
@given(st.lists(eps_values, min_size=1, max_size=15), eps_values)
def test_zcdp_gate_only_when_every_charge_is_zcdp(spent, new):
    delta = Fraction(1, 10**6)
    budget = PrivacyBudget(3, delta)
    zc = [PrivacyCost(e, Fraction(1, 10**9), zcdp_rho(e, 1e-9)) for e in spent]
    new_cost = PrivacyCost(new, Fraction(1, 10**9), zcdp_rho(new, 1e-9))
    try:
        accountant = check_can_pay(budget, zc, new_cost)
    except BudgetExceeded:
        return
    if accountant == "zcdp":
        total_rho = sum((c.rho for c in zc), Fraction(0)) + new_cost.rho
        assert zcdp_epsilon(total_rho, delta) <= 3
    # with one non-zCDP charge among them, only basic composition may admit
    mixed = [*zc, PrivacyCost(Fraction(1, 1000))]
    try:
        assert check_can_pay(budget, mixed, new_cost) == "basic"
    except BudgetExceeded:
        total = sum((c.epsilon for c in mixed), Fraction(0)) + new_cost.epsilon
        assert total > 3 or sum((c.delta for c in mixed), Fraction(0)) + new_cost.delta > delta


def test_non_dp_needs_the_policy():
    budget = PrivacyBudget(1, 1e-6)
    with pytest.raises(PolicyViolation):
        check_can_pay(budget, [], PrivacyCost.non_dp())
    assert check_can_pay(budget, [], PrivacyCost.non_dp(), "allow-non-dp") == "non-dp"
    status = budget_status(budget, [PrivacyCost.non_dp(), PrivacyCost(0.5)], [])
    assert not status.has_formal_guarantee
    assert "NO FORMAL GUARANTEE" in status.guarantee()
    assert status.remaining_epsilon == Fraction(1, 2)


def test_zcdp_lets_more_mst_releases_fit_than_basic_composition():
    """Ten MST-like charges at epsilon 0.3: 3.0 by basic composition, far less by zCDP."""
    budget = PrivacyBudget(1, 1e-6)
    per = PrivacyCost(Fraction(3, 10), Fraction(1, 10**9), zcdp_rho(0.3, 1e-9))
    committed: list[PrivacyCost] = []
    admitted = 0
    for _ in range(50):
        try:
            check_can_pay(budget, committed, per)
        except BudgetExceeded:
            break
        committed.append(per)
        admitted += 1
    assert admitted > 3  # basic composition alone would stop at 3
    status = budget_status(budget, committed, [])
    assert status.zcdp_epsilon_committed is not None and status.zcdp_epsilon_committed <= 1

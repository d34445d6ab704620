"""AIM's work budget (`max_work`): it bounds the estimation's cells x iterations, the ledger still spends
exactly rho, the same seed gives the same output, and a budget that does not bind changes nothing."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from privacy.accounting import zcdp_rho
from privacy.engine import estimation
from privacy.engine.accounting import AIMSchedule, ZCDPLedger
from privacy.engine.aim import WorkBudget, fit_aim
from privacy.engine.table import EncodedTable

SIZES = (8, 6, 7, 5, 6, 4)
ROUND_ITERS, FINAL_ITERS = 10, 40


def _table(rows: int = 20_000, seed: int = 0) -> EncodedTable:
    """Strongly linked columns: with many rows and a large epsilon, AIM keeps finding marginals to measure."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, SIZES[0], rows)
    cols = [first]
    for s in SIZES[1:]:
        cols.append((cols[-1] + rng.integers(0, 2, rows)) % s)
    return EncodedTable(np.stack(cols, axis=1), SIZES)


RHO = zcdp_rho(8, Fraction(1, 10**9))


def _fit(max_work: float, seed: int = 0, **kw: object) -> object:
    return fit_aim(
        _table(),
        RHO,
        np.random.default_rng(seed),
        round_iters=ROUND_ITERS,
        final_iters=FINAL_ITERS,
        max_work=max_work,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def work_used(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sum of junction-tree cells x iterations over every estimation the fits below run."""
    used = [0.0]
    original = estimation.MarginalEstimator.fit

    def counting(self, iters, theta=None, **kw):  # type: ignore[no-untyped-def]
        used[0] += iters * self.jt.cells
        return original(self, iters, theta, **kw)

    monkeypatch.setattr(estimation.MarginalEstimator, "fit", counting)
    return used


def test_a_binding_work_budget_bounds_the_work_and_still_spends_exactly_rho(work_used: list[float]) -> None:
    free = _fit(1e6)
    unbounded = work_used[0]
    work_used[0] = 0.0
    budget = unbounded / 4 / 1e6
    bound = _fit(budget)
    assert work_used[0] <= budget * 1e6
    assert unbounded > budget * 1e6
    assert bound.model.jt.cells < free.model.jt.cells
    for fit in (free, bound):
        assert fit.ledger.spent == RHO
        pairs = list(zip(fit.ledger.steps[len(SIZES) :: 2], fit.ledger.steps[len(SIZES) + 1 :: 2], strict=True))
        assert len(pairs) == len(fit.selected)
        assert all(s.kind == "select" and m.kind == "measure" and m.rho == 9 * s.rho for s, m in pairs)
    # the budget only moves rho to later rounds: the round shares never shrink before the last round
    shares = [s.rho + m.rho for s, m in zip(bound.ledger.steps[6::2], bound.ledger.steps[7::2], strict=True)]
    assert all(b >= a for a, b in itertools.pairwise(shares[:-1]))
    # the model it ends on stays under the budget's size limit
    assert bound.model.jt.cells <= WorkBudget(budget * 1e6, ROUND_ITERS, FINAL_ITERS).model_cells_limit


def test_the_same_seed_gives_the_same_fit_under_a_binding_budget() -> None:
    a, b = _fit(0.05, seed=5), _fit(0.05, seed=5)
    assert a.selected == b.selected
    assert [s.to_dict() for s in a.ledger.steps] == [s.to_dict() for s in b.ledger.steps]
    for p, q in zip(a.model.probabilities, b.model.probabilities, strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(
        a.sample_codes(500, np.random.default_rng(1)), b.sample_codes(500, np.random.default_rng(1))
    )
    other = _fit(0.05, seed=6)
    assert other.selected != a.selected or not np.array_equal(other.model.probabilities[0], a.model.probabilities[0])


def test_a_budget_that_does_not_bind_changes_nothing(work_used: list[float]) -> None:
    a = _fit(1e6, seed=2)
    needed = work_used[0]
    b = _fit(needed / 1e6 * 1.000001 + 1, seed=2)  # just enough for every round and the final estimation
    assert a.selected == b.selected
    for p, q in zip(a.model.probabilities, b.model.probabilities, strict=True):
        np.testing.assert_array_equal(p, q)


def test_a_budget_too_small_for_a_second_round_makes_the_first_round_the_last() -> None:
    fit = _fit(1e-6)
    assert fit.ledger.spent == RHO
    assert len(fit.selected) == 1
    assert fit.ledger.steps[-1].label.startswith("round 1")


def test_spread_over_raises_the_share_so_the_rest_is_spent_in_that_many_rounds() -> None:
    ledger = ZCDPLedger(Fraction(1))
    schedule = AIMSchedule(ledger, rounds=100)
    schedule.one_way(["x", "y"])
    before = schedule.round_measure
    schedule.spread_over(1000)  # more rounds than the budget has left at the current share: no change
    assert schedule.round_measure == before
    schedule.spread_over(3)
    rounds = 0
    while not schedule.finished:
        schedule.next_round(f"r{rounds}")
        rounds += 1
    assert rounds == 3
    assert ledger.spent == 1

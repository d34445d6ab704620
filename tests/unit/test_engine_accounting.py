"""Privacy accounting of the native engine: every step's rho, the splits, the total, the conversion."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from privacy.accounting import zcdp_epsilon, zcdp_rho
from privacy.budget import PrivacyCost
from privacy.engine.accounting import (
    AIMSchedule,
    ZCDPLedger,
    exponential_rho,
    gaussian_rho,
    mst_split,
    request_rho,
)
from privacy.engine.aim import fit_aim
from privacy.engine.mst import fit_mst
from privacy.engine.table import EncodedTable
from privacy.errors import InvalidPrivacyValue
from privacy.schema import conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from tests.conftest import PUMS


def _table(rows: int = 400, sizes: tuple[int, ...] = (3, 4, 2, 5), seed: int = 0) -> EncodedTable:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, sizes[0], rows)
    cols = [first] + [(first + rng.integers(0, 2, rows)) % s for s in sizes[1:]]
    return EncodedTable(np.stack(cols, axis=1), sizes)


@pytest.mark.parametrize("columns", [1, 2, 3, 15])
def test_mst_split_spends_exactly_rho(columns: int) -> None:
    rho = Fraction(7, 300)
    split = mst_split(rho, columns)
    assert split.total == rho
    assert split.one_way_each * columns == split.one_way
    if columns >= 3:
        # thirds, as smartnoise's MST: sigma = sqrt(3 / (2 rho)) over weights 1/sqrt(d)
        assert split.one_way == split.select == split.two_way == rho / 3
        assert split.select_each * (columns - 1) == rho / 3
        assert split.two_way_each * (columns - 1) == rho / 3
    elif columns == 2:
        assert split.select == 0 and split.one_way == split.two_way == rho / 2
    else:
        assert split.one_way == rho


def test_mst_ledger_has_each_step_with_its_share() -> None:
    rho = zcdp_rho(1, Fraction(1, 10**9))
    fit = fit_mst(_table(), rho, np.random.default_rng(1), iters=10)
    d = 4
    steps = fit.ledger.steps
    kinds = [s.kind for s in steps]
    assert kinds.count("measure") == d + (d - 1)
    assert kinds.count("select") == d - 1
    assert fit.ledger.spent == rho
    by_kind = fit.ledger.by_kind()
    assert by_kind["select"] == rho / 3
    assert by_kind["measure"] == 2 * rho / 3
    one_way = [s for s in steps if s.label.startswith("measure one-way")]
    two_way = [s for s in steps if s.label.startswith("measure two-way")]
    assert all(s.rho == rho / (3 * d) for s in one_way)
    assert all(s.rho == rho / (3 * (d - 1)) for s in two_way)
    # the float parameter each mechanism ran with costs at most its share, and not less by more than rounding
    for s in steps:
        actual = gaussian_rho(s.sigma) if s.kind == "measure" else exponential_rho(s.epsilon)
        assert actual <= s.rho
        assert float(actual) == pytest.approx(float(s.rho), rel=1e-12)
    # smartnoise's MST noise scales, for the same rho: sigma * sqrt(d) and sigma * sqrt(d - 1)
    sn_sigma = float(np.sqrt(3 / (2 * float(rho))))
    assert one_way[0].sigma == pytest.approx(sn_sigma * np.sqrt(d), rel=1e-12)
    assert two_way[0].sigma == pytest.approx(sn_sigma * np.sqrt(d - 1), rel=1e-12)
    # and its per-round selection epsilon sqrt(8 (rho/3) / (d-1))
    sel = [s for s in steps if s.kind == "select"]
    assert sel[0].epsilon == pytest.approx(np.sqrt(8 * float(rho) / 3 / (d - 1)), rel=1e-12)


def test_mst_with_one_or_two_columns_spends_everything_on_what_it_measures() -> None:
    rho = Fraction(1, 50)
    one = fit_mst(_table(sizes=(3,)), rho, np.random.default_rng(0), iters=5)
    assert one.ledger.spent == rho and [s.kind for s in one.ledger.steps] == ["measure"]
    two = fit_mst(_table(sizes=(3, 4)), rho, np.random.default_rng(0), iters=5)
    assert two.ledger.spent == rho
    assert [s.kind for s in two.ledger.steps] == ["measure"] * 3


def test_aim_ledger_rounds_anneal_and_spend_exactly_rho() -> None:
    rho = zcdp_rho(2, Fraction(1, 10**9))
    fit = fit_aim(
        _table(rows=2000, sizes=(3, 4, 2, 5, 3)), rho, np.random.default_rng(3), round_iters=20, final_iters=20
    )
    ledger = fit.ledger
    assert ledger.spent == rho
    d, rounds = 5, 16 * 5
    steps = ledger.steps
    assert all(s.rho == Fraction(9, 10) * rho / rounds for s in steps[:d])
    pairs = list(zip(steps[d::2], steps[d + 1 :: 2], strict=True))
    assert len(pairs) == len(fit.selected) >= 1
    for select, measure in pairs:
        assert select.kind == "select" and measure.kind == "measure"
        # every round: 0.9 of its budget measures, 0.1 selects
        assert measure.rho == 9 * select.rho
    # the per-round budget only grows, by factors of 4 (annealing), except the last round which takes the rest
    round_rhos = [s.rho + m.rho for s, m in pairs]
    for a, b in itertools.pairwise(round_rhos[:-1]):
        assert b in (a, 4 * a)


def test_aim_with_one_column_measures_it_with_all_of_rho() -> None:
    rho = Fraction(1, 100)
    fit = fit_aim(_table(sizes=(6,)), rho, np.random.default_rng(0), round_iters=5, final_iters=5)
    assert [s.kind for s in fit.ledger.steps] == ["measure"]
    assert fit.ledger.steps[0].rho == rho


def test_ledger_refuses_a_step_beyond_the_total() -> None:
    ledger = ZCDPLedger(Fraction(1, 10))
    ledger.gaussian("a", Fraction(1, 20))
    ledger.exponential("b", Fraction(1, 20))
    assert ledger.remaining == 0
    with pytest.raises(InvalidPrivacyValue):
        ledger.gaussian("c", Fraction(1, 10**9))
    with pytest.raises(InvalidPrivacyValue):
        ledger.exponential("d", Fraction(0))


def test_aim_schedule_last_round_takes_the_remainder() -> None:
    ledger = ZCDPLedger(Fraction(1))
    schedule = AIMSchedule(ledger, rounds=4)
    schedule.one_way(["x"])  # 0.9 / 4
    rounds = 0
    while not schedule.finished:
        schedule.next_round(f"r{rounds}")
        rounds += 1
    assert ledger.spent == 1
    # 0.225 for the one-way; rounds of 0.25 while at least two rounds' worth (0.5) remains: 0.775 -> 0.525
    # -> 0.275, which is then spent by one last round
    assert rounds == 3
    assert sum(s.rho for s in ledger.steps[-2:]) == Fraction(275, 1000)
    with pytest.raises(InvalidPrivacyValue):
        schedule.next_round("again")


EPSILONS = [0.01, 0.1, 0.3, 1.0, 3.0, 10.0]
DELTAS = [1e-5, 1e-9, 1e-12]


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("epsilon", EPSILONS)
def test_request_rho_converts_back_to_the_request_and_is_never_above_smartnoise(epsilon: float, delta: float) -> None:
    from snsynth.utils import cdp_rho

    rho = request_rho(PrivacyCost(epsilon, delta))
    assert rho > 0
    assert float(rho) <= cdp_rho(epsilon, delta)
    back = zcdp_epsilon(rho, delta)
    assert back <= PrivacyCost(epsilon, delta).epsilon
    assert float(back) == pytest.approx(epsilon, rel=1e-6)


@pytest.mark.parametrize("method", ["mst", "aim"])
@pytest.mark.parametrize("epsilon", [0.3, 1.0])
def test_fit_reports_the_request_with_the_rho_it_ran_at(method: str, epsilon: float, pums_df) -> None:
    from snsynth.utils import cdp_rho

    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    synth = create_synthesizer(method, seed=5, options={"iters": 50} if method == "mst" else {"final_iters": 50})
    requested = PrivacyCost(epsilon, Fraction(1, 10**9))
    cost = synth.fit(table, schema, requested)
    assert cost == synth.planned_cost(requested)
    assert (cost.epsilon, cost.delta) == (requested.epsilon, requested.delta)
    assert cost.rho == sum(s.rho for s in synth._result.ledger.steps)
    assert float(cost.rho) <= cdp_rho(epsilon, 1e-9)
    assert synth.privacy_steps() and all(s["rho_float"] > 0 for s in synth.privacy_steps())

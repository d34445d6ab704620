"""The smartnoise wrappers: fed only by the schema, with their privacy defects corrected."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.accounting import zcdp_rho
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import DomainTooLarge, MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers.smartnoise import (
    _codes_transformer,
    _GanCodec,
    _opacus_epsilon,
    dp_row_count,
    dpctgan_max_epochs,
    dpctgan_sample_rate,
    mwem_splits,
    pate_epsilon,
)
from tests.conftest import ADULT, PUMS

DELTA = Fraction(1, 10**9)


@pytest.fixture(scope="module")
def pums(pums_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    return table, schema


@pytest.fixture(scope="module")
def adult_small(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(adult_df.sample(1500, random_state=3), schema)
    return table, schema


def test_transformers_come_from_the_declared_domain_not_the_data(pums) -> None:
    _table, schema = pums
    # declare categories the data never shows: they must still be part of the domain smartnoise sees
    data = schema.to_dict()
    data["columns"]["race"]["values"] = [1, 2, 3, 4, 5, 6, 7, 8]
    wide = PublicSchema.from_dict(data)
    enc = DomainEncoder(wide)
    tt = _codes_transformer(enc)
    assert tt.fit_complete and not tt.needs_epsilon  # nothing to learn, no preprocessor epsilon
    assert tt.cardinality == enc.sizes
    assert tt.cardinality[wide.synthesized_columns.index("race")] == 8
    codec = _GanCodec(wide)
    gan_tt = codec.table_transformer()
    assert gan_tt.fit_complete and not gan_tt.needs_epsilon
    # race one-hot over its 8 declared values, income scaled from the declared [0, 500000]
    assert gan_tt.transformers[wide.synthesized_columns.index("race")].output_width == 8
    income = gan_tt.transformers[wide.synthesized_columns.index("income")]
    assert (income.lo, income.hi) == (0.0, 500000.0)


def test_mst_runs_at_the_rho_it_reports(pums, monkeypatch: pytest.MonkeyPatch) -> None:
    import snsynth.utils

    table, schema = pums
    seen: dict[str, float] = {}
    synth = create_synthesizer("mst-smartnoise", seed=1, options={"bins": 8})
    original_measure = None

    from privacy.synthesizers import smartnoise

    cls = smartnoise._noisy_total_mst_class()
    original_measure = cls.measure

    def spy_measure(self, data, cliques, sigma, weights=None):  # type: ignore[no-untyped-def]
        seen["sigma"] = sigma
        return original_measure(self, data, cliques, sigma, weights)

    monkeypatch.setattr(cls, "measure", spy_measure)
    monkeypatch.setattr(smartnoise, "_noisy_total_mst_class", lambda: cls)
    cost = synth.fit(table, schema, PrivacyCost(1, DELTA))
    rho = zcdp_rho(1, DELTA)
    assert cost == PrivacyCost(1, DELTA, rho)
    # MST spends rho in three equal thirds; each measurement round has sigma = sqrt(3 / (2 rho))
    assert seen["sigma"] == pytest.approx(np.sqrt(3 / (2 * float(rho))))
    # our rho never exceeds smartnoise's own conversion
    assert float(rho) <= snsynth.utils.cdp_rho(1.0, float(DELTA))


def test_aim_refuses_fewer_rounds_than_columns_before_reading_data(pums) -> None:
    _table, schema = pums
    synth = create_synthesizer("aim-smartnoise", options={"rounds": 6})
    with pytest.raises(MethodOptionError, match="rounds"):
        synth.preflight(schema, PrivacyCost(1, DELTA))  # 6 columns: 6 rounds would overspend


def test_mwem_splits_respect_max_cells() -> None:
    assert mwem_splits([10, 10, 10, 10], max_cells=1000) == [[0, 1, 2], [3]]
    assert mwem_splits([10, 10, 10, 10], max_cells=150) == [[0, 1], [2, 3]]
    assert mwem_splits([2, 3], max_cells=100, max_columns=1) == [[0], [1]]
    with pytest.raises(DomainTooLarge):
        mwem_splits([10, 5000], max_cells=1000)


def test_mwem_refuses_a_column_too_large_before_reading_data(adult_small) -> None:
    _table, schema = adult_small
    synth = create_synthesizer("mwem", options={"max_cells": 30})
    with pytest.raises(DomainTooLarge, match="column 'age' has 74 codes"):
        synth.preflight(schema, PrivacyCost(1))


def test_mwem_is_pure_dp_and_spends_exactly_epsilon(pums) -> None:
    table, schema = pums
    synth = create_synthesizer("mwem", seed=1, options={"iterations": 5, "mult_weights_iterations": 3})
    cost = synth.fit(table, schema, PrivacyCost(Fraction(1, 2), DELTA))
    assert cost == PrivacyCost(Fraction(1, 2), 0, Fraction(1, 8))
    # MWEM's own steps and the row count (its declared share) add up to the request
    assert synth.row_count.epsilon == pytest.approx(0.5 / 20)
    assert sum(synth._model.accountant) + synth.row_count.epsilon == pytest.approx(0.5)
    out = synth.sample(300)
    assert set(out["race"].dropna().astype(int)) <= {1, 2, 3, 4, 5, 6}


def test_dpctgan_epochs_stay_within_the_budget() -> None:
    rows, batch, sigma, eps = 2000, 64, 3.0, 1.0
    q = dpctgan_sample_rate(batch, rows)
    assert q == batch / (rows - 1)  # above the rate of the table and of its neighbour with a row fewer
    epochs = dpctgan_max_epochs(q, rows // batch, sigma, eps, 1e-9, limit=500)
    assert epochs >= 1
    steps = 2 * (rows // batch)
    assert _opacus_epsilon(q, sigma, steps * epochs, 1e-9) <= eps
    assert _opacus_epsilon(q, sigma, steps * (epochs + 1), 1e-9) > eps
    assert dpctgan_max_epochs(q, rows // batch, sigma, eps, 1e-9, limit=2) == min(2, epochs)
    assert dpctgan_sample_rate(64, 10) == 1.0  # capped


def test_dpctgan_never_uses_smartnoise_conditional_sampler(adult_small, monkeypatch: pytest.MonkeyPatch) -> None:
    """smartnoise's DataSampler draws conditional vectors from exact category frequencies: not private."""
    import snsynth.pytorch.nn.ctgan.data_sampler as data_sampler

    table, schema = adult_small
    built = []
    original_init = data_sampler.DataSampler.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(1)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(data_sampler.DataSampler, "__init__", spy)
    synth = create_synthesizer("dpctgan", seed=1, options={"epochs": 1, "batch_size": 64})
    cost = synth.fit(table, schema, PrivacyCost(3, DELTA))
    synth.sample(50)
    assert built == []
    assert cost == PrivacyCost(3, DELTA)
    assert synth.epochs_run == 1


def test_dpctgan_refuses_when_not_one_epoch_fits(pums) -> None:
    table, schema = pums
    synth = create_synthesizer("dpctgan", options={"batch_size": 400, "sigma": 0.8})
    with pytest.raises(Exception, match="cannot train one epoch"):
        synth.fit(table, schema, PrivacyCost(Fraction(1, 10), DELTA))


def test_pate_teachers_are_distinct_and_the_budget_fixes_the_iterations(pums, monkeypatch) -> None:
    import snsynth.pytorch.nn.privacy_utils as privacy_utils

    table, schema = pums
    calls: list[tuple[int, int]] = []
    original = privacy_utils.pate

    def spy(data, teachers, lap_scale, device="cpu"):  # type: ignore[no-untyped-def]
        calls.append((len(teachers), len({id(t) for t in teachers})))
        return original(data, teachers, lap_scale, device)

    monkeypatch.setattr(privacy_utils, "pate", spy)
    options = {
        "epochs": 1000,
        "sample_per_teacher": 200,
        "teacher_iters": 1,
        "student_iters": 2,
        "batch_size": 32,
        "generator_dim": 32,
        "discriminator_dim": 32,
        "embedding_dim": 16,
    }
    synth = create_synthesizer("patectgan", seed=2, options=options)
    cost = synth.fit(table, schema, PrivacyCost(Fraction(1, 2), DELTA))
    assert cost == PrivacyCost(Fraction(1, 2), DELTA)
    assert calls and all(n == distinct and n >= 2 for n, distinct in calls)
    per_iteration = 2 * 32  # student steps x generated samples: one PATE query each
    rest = 0.5 * 19 / 20  # what is left after the row count's declared share
    assert pate_epsilon(per_iteration * synth.iterations_run, 1e-3, 1e-9) <= rest
    assert pate_epsilon(per_iteration * (synth.iterations_run + 1), 1e-3, 1e-9) > rest
    assert len(calls) == 2 * synth.iterations_run  # one vote per student step, none beyond the budget


def test_open_bounds_with_bounds_epsilon_cost_exactly_the_request(adult_small) -> None:
    table, schema = adult_small
    data = schema.to_dict()
    data["columns"]["age"] = {"kind": "ordinal"}
    open_schema = PublicSchema.from_dict(data)
    with pytest.raises(SchemaError, match="bounds_epsilon"):
        create_synthesizer("pacsynth").preflight(open_schema, PrivacyCost(2, DELTA))
    synth = create_synthesizer("pacsynth", seed=1, options={"bounds_epsilon": 0.5})
    cost = synth.fit(table, open_schema, PrivacyCost(2, DELTA))
    assert cost == PrivacyCost(2, DELTA)
    age = synth.schema.columns["age"]
    assert age.has_bounds and age.min <= 17 and age.max >= 60
    out = synth.sample(200)["age"]
    assert out.min() >= age.min and out.max() <= age.max


def test_open_categorical_domain_is_refused_with_a_message(pums) -> None:
    _table, schema = pums
    data = schema.to_dict()
    data["columns"]["race"] = {"kind": "categorical"}
    with pytest.raises(SchemaError, match=r"declare|declared"):
        create_synthesizer("mst-smartnoise", options={"bounds_epsilon": 0.1}).preflight(
            PublicSchema.from_dict(data), PrivacyCost(1, DELTA)
        )


@pytest.mark.parametrize("method", ["mst-smartnoise", "aim-smartnoise", "pacsynth", "dpctgan", "patectgan"])
def test_methods_that_need_delta_refuse_zero_delta(pums, method: str) -> None:
    _table, schema = pums
    with pytest.raises(Exception, match="delta"):
        create_synthesizer(method).preflight(schema, PrivacyCost(1))


# ----- the row count is not public: what follows from it follows the noisy count -----------------

_SMALL_GAN = {"generator_dim": 16, "discriminator_dim": 16, "embedding_dim": 8}


def _fake_count(monkeypatch: pytest.MonkeyPatch, value: int, lower: int) -> list[int]:
    """Make the DP row count come out at (value, lower); return the true counts it was asked about."""
    from privacy.synthesizers import smartnoise

    asked: list[int] = []

    def fake(n: int, epsilon: float, failure: float, rng: np.random.Generator) -> smartnoise.DPRowCount:
        asked.append(n)
        return smartnoise.DPRowCount(value, lower, epsilon, failure)

    monkeypatch.setattr(smartnoise, "dp_row_count", fake)
    return asked


def test_dp_row_count_is_two_sided_geometric_and_its_lower_bound_rarely_overshoots() -> None:
    rng = np.random.default_rng(5)
    eps, failure, n = 0.5, 0.05, 1000
    draws = [dp_row_count(n, eps, failure, rng) for _ in range(20000)]
    noise = np.array([d.value - n for d in draws], dtype=float)
    alpha = np.exp(-eps)
    assert abs(noise.mean()) < 0.1
    assert noise.var() == pytest.approx(2 * alpha / (1 - alpha) ** 2, rel=0.05)
    overshoot = np.mean([d.lower > n for d in draws])
    assert overshoot <= failure
    # the margin is the smallest that keeps the overshoot below `failure`: not needlessly wide
    margin = draws[0].value - draws[0].lower
    assert alpha**margin / (1 + alpha) > failure
    with pytest.raises(ValueError):
        dp_row_count(n, 0.0, failure, rng)


def test_dpctgan_batch_steps_and_rate_follow_the_noisy_lower_bound(pums, monkeypatch: pytest.MonkeyPatch) -> None:
    import opacus

    table, schema = pums
    seen: list[int] = []
    original = opacus.PrivacyEngine.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["sample_size"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(opacus.PrivacyEngine, "__init__", spy)
    options = {"epochs": 1, "batch_size": 64, **_SMALL_GAN}
    plans = {}
    for lower in (2400, 300):
        asked = _fake_count(monkeypatch, lower + 200, lower)
        synth = create_synthesizer("dpctgan", seed=1, options=options)
        cost = synth.fit(table, schema, PrivacyCost(3, DELTA))
        assert cost == PrivacyCost(3, DELTA)
        assert asked == [len(table)]  # the count was taken of the real table
        assert synth.row_count.epsilon == pytest.approx(0.3)  # 10% of epsilon
        assert synth.row_count.failure == pytest.approx(float(DELTA) / 2)
        plans[lower] = synth.training_plan
    # the exact count (1000) appears nowhere: smartnoise's loop and opacus were given the lower bound
    assert seen == [2400, 300]
    assert plans[2400] == {
        "batch_size": 64,
        "sample_rate": 64 / 2399,
        "steps_per_epoch": 2400 // 64,
        "epochs": plans[2400]["epochs"],
    }
    assert plans[300]["sample_rate"] == 64 / 299 and plans[300]["steps_per_epoch"] == 300 // 64
    # a small count caps the batch at half of it
    _fake_count(monkeypatch, 100, 40)
    synth = create_synthesizer("dpctgan", seed=1, options={**options, "sigma": 20.0})
    synth.fit(table, schema, PrivacyCost(3, DELTA))
    assert synth.training_plan["batch_size"] == 20 and synth.training_plan["sample_rate"] == 20 / 39


def test_pate_teachers_and_batch_follow_the_noisy_count(pums, monkeypatch: pytest.MonkeyPatch) -> None:
    import snsynth.pytorch.nn.privacy_utils as privacy_utils

    table, schema = pums
    teachers: list[int] = []
    original = privacy_utils.pate

    def spy(data, teachers_, lap_scale, device="cpu"):  # type: ignore[no-untyped-def]
        teachers.append(len(teachers_))
        return original(data, teachers_, lap_scale, device)

    monkeypatch.setattr(privacy_utils, "pate", spy)
    options = {
        "epochs": 1,
        "sample_per_teacher": 250,
        "teacher_iters": 1,
        "student_iters": 1,
        "batch_size": 64,
        **_SMALL_GAN,
    }
    asked = _fake_count(monkeypatch, 2000, 2000)
    synth = create_synthesizer("patectgan", seed=2, options=options)
    synth.fit(table, schema, PrivacyCost(1, DELTA))
    assert asked == [len(table)]
    assert synth.row_count.epsilon == pytest.approx(0.05)  # 5% of epsilon
    # 2000 // 250 = 8 teachers; the exact 1000 rows would have made 4
    assert teachers and set(teachers) == {8} and synth.training_plan["teachers"] == 8
    _fake_count(monkeypatch, 40, 40)
    synth = create_synthesizer("patectgan", seed=2, options=options)
    synth.fit(table, schema, PrivacyCost(1, DELTA))
    assert synth.training_plan["batch_size"] == 20  # half the noisy count, not half the 1000 rows


def test_mwem_synthetic_total_follows_the_noisy_count(pums, monkeypatch: pytest.MonkeyPatch) -> None:
    table, schema = pums
    asked = _fake_count(monkeypatch, 4321, 4321)
    synth = create_synthesizer("mwem", seed=1, options={"iterations": 3, "mult_weights_iterations": 2})
    cost = synth.fit(table, schema, PrivacyCost(1))
    assert cost.epsilon == 1 and cost.delta == 0
    assert asked == [len(table)]
    # the multiplicative weights keep the total they start from: the noisy count, not the 1000 rows
    for fake, _hist, _split in synth._model.synthetic_histograms:
        assert float(np.sum(fake)) == pytest.approx(4321)


@pytest.mark.parametrize("method", ["mst-smartnoise", "aim-smartnoise", "pacsynth", "mwem", "dpctgan", "patectgan"])
def test_info_declares_how_the_row_count_is_handled(method: str) -> None:
    from privacy.synthesizers import synthesizer_class

    info = synthesizer_class(method).info()
    row_count = info["row_count"]
    assert row_count["use"]
    if method in ("mwem", "dpctgan", "patectgan"):
        share = f"{round(row_count['epsilon_share'] * 100)}% of epsilon"
        assert row_count["epsilon_share"] > 0 and share in info["description"]
    else:
        assert row_count["epsilon_share"] == 0


def test_patectgan_refuses_at_request_time_what_no_table_could_pay_for(pums) -> None:
    """A gamma of 0, or an epsilon that cannot buy one iteration even at the smallest batch, used to fail
    only inside the fit, after the table was read (and the job's charge kept)."""
    from privacy.errors import InvalidPrivacyValue

    _table, schema = pums
    with pytest.raises(MethodOptionError, match="noise_multiplier"):
        create_synthesizer("patectgan", options={"noise_multiplier": 0}).preflight(schema, PrivacyCost(1, DELTA))
    # 10 PATE queries at gamma 0.1 cost epsilon 3.5 under the moments bound: epsilon 1 cannot pay for one
    with pytest.raises(InvalidPrivacyValue, match="one iteration"):
        create_synthesizer("patectgan", options={"noise_multiplier": 0.1}).preflight(schema, PrivacyCost(1, DELTA))
    create_synthesizer("patectgan", options={"noise_multiplier": 0.1}).preflight(schema, PrivacyCost(5, DELTA))
    create_synthesizer("patectgan").preflight(schema, PrivacyCost(1, DELTA))

"""DPCTGAN's batch size and epochs when the analyst sets none (privacy/synthesizers/_smartnoise_gan.py):
chosen for the time target from the public row count and the options, within opacus's accounting."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest

from privacy.budget import PrivacyCost
from privacy.estimate import EstimateOverLimit, check_estimate, dpctgan_epoch_seconds, dpctgan_fixed_seconds
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers._smartnoise_gan import (
    DPCTGAN_EPOCHS,
    _opacus_epsilon,
    dpctgan_max_epochs,
    dpctgan_plan,
    dpctgan_sample_rate,
)
from tests.conftest import PUMS

DELTA = Fraction(1, 10**9)
ADULT = load_schema(PUMS.parents[1] / "adult" / "schema.yaml")


def _spent(rows: int, batch: int, epochs: int, sigma: float = 5.0, delta: float = 5e-10) -> float:
    return _opacus_epsilon(dpctgan_sample_rate(batch, rows), sigma, 2 * max(rows // batch, 1) * epochs, delta)


def _plan(rows: int, **kw):  # type: ignore[no-untyped-def]
    args = {"batch_size": None, "epochs": None, "minutes": 5.0, "sigma": 5.0, "epsilon": 0.9, "delta": 5e-10}
    return dpctgan_plan(rows, **{**args, **kw})


def test_a_small_table_trains_as_before_at_batch_128_up_to_the_budget() -> None:
    batch, epochs = _plan(1_000)
    assert batch == 128
    q = dpctgan_sample_rate(128, 1_000)
    assert epochs == dpctgan_max_epochs(q, 1_000 // 128, 5.0, 0.9, 5e-10, DPCTGAN_EPOCHS) >= 1


# tables whose ten epochs at batch 128 do not fit 5 CPU minutes in the time model (27,000 rows fit since one
# torch thread: about 1.6 minutes)
@pytest.mark.parametrize("rows", [200_000, 500_000])
def test_a_large_table_gets_a_larger_batch_and_the_epochs_that_fit_the_time(rows: int) -> None:
    batch, epochs = _plan(rows, minutes=5.0)
    assert batch > 128 and 1 <= epochs < DPCTGAN_EPOCHS
    seconds = dpctgan_fixed_seconds() + epochs * dpctgan_epoch_seconds(rows, batch)
    assert seconds <= 5 * 60 or epochs == 1
    # no other batch trains more epochs in the time
    for other in (128, 256, 512, 1024):
        fit = int((5 * 60 - dpctgan_fixed_seconds()) // dpctgan_epoch_seconds(rows, other))
        assert min(fit, DPCTGAN_EPOCHS) <= epochs
    # the accounting is opacus's at the chosen batch and epochs: within the budget
    assert _spent(rows, batch, epochs) <= 0.9


def test_more_minutes_train_more_and_the_analysts_choices_are_kept() -> None:
    assert _plan(200_000, minutes=30)[1] > _plan(200_000, minutes=5)[1]
    assert _plan(27_000, epochs=2) == (128, 2)
    assert _plan(27_000, batch_size=256, epochs=3) == (256, 3)
    batch, epochs = _plan(200_000, batch_size=256)
    assert batch == 256 and epochs == max(
        1, int((300 - dpctgan_fixed_seconds()) // dpctgan_epoch_seconds(200_000, 256))
    )


def test_the_budget_still_caps_the_epochs_whatever_the_time() -> None:
    batch, epochs = _plan(2_000, epsilon=0.05, minutes=600)
    q = dpctgan_sample_rate(batch, 2_000)
    assert epochs == dpctgan_max_epochs(q, 2_000 // batch, 5.0, 0.05, 5e-10, DPCTGAN_EPOCHS)
    assert _spent(2_000, batch, epochs) <= 0.05
    if epochs < DPCTGAN_EPOCHS:
        assert _spent(2_000, batch, epochs + 1) > 0.05


def test_a_table_too_large_for_one_epoch_in_the_limit_is_refused_up_front() -> None:
    batch, epochs = _plan(2_000_000)
    assert (batch, epochs) == (1024, 1)
    with pytest.raises(EstimateOverLimit, match="dpctgan is estimated"):
        check_estimate("dpctgan", ADULT, 2_000_000, {}, 5, epsilon=1.0, delta=1e-6)
    assert check_estimate("dpctgan", ADULT, 27_000, {}, 5, epsilon=1.0, delta=1e-6).fit_seconds <= 5 * 60


@pytest.fixture(scope="module")
def pums(pums_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    return table, schema


def test_the_fit_trains_the_plan_of_the_noisy_lower_bound_and_spends_what_was_asked(
    pums, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy.synthesizers import smartnoise

    table, schema = pums
    lower = 2_400
    monkeypatch.setattr(
        smartnoise,
        "dp_row_count",
        lambda n, epsilon, failure, rng: smartnoise.DPRowCount(lower + 100, lower, epsilon, failure),
    )
    options = {"minutes": 0.5, "generator_dim": 16, "discriminator_dim": 16, "embedding_dim": 8}
    synth = create_synthesizer("dpctgan", seed=1, options=options)
    cost = synth.fit(table, schema, PrivacyCost(3, DELTA))
    assert cost == PrivacyCost(3, DELTA)  # what was asked, as before
    rest_eps, rest_delta = 3 * 0.9, float(DELTA) / 2
    batch, epochs = dpctgan_plan(
        lower, batch_size=None, epochs=None, minutes=0.5, sigma=5.0, epsilon=rest_eps, delta=rest_delta
    )
    plan = synth.training_plan
    assert (plan["batch_size"], plan["epochs"]) == (batch, epochs)
    assert plan["sample_rate"] == batch / (lower - 1) and plan["steps_per_epoch"] == lower // batch
    assert len(synth._model.loss_d_list) == epochs
    assert _spent(lower, batch, epochs, delta=rest_delta) <= rest_eps

"""MWEM's vectorised query evaluation (privacy/synthesizers/_smartnoise_marginal.py): the same mechanism as
smartnoise-synth's MWEMSynthesizer, answered from marginals of the histogram."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import snsynth.mwem as sn_mwem

from privacy.budget import PrivacyCost
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers._smartnoise_marginal import _marginal, _vector_mwem_class, marginal_plan
from tests.conftest import PUMS


@pytest.fixture(scope="module")
def pums(pums_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    return table, schema


def _small_histogram(seed: int = 3) -> np.ndarray:
    rs = np.random.RandomState(seed)
    return rs.poisson(4.0, size=(5, 3, 4)).astype(float)


def test_the_vectorised_answers_equal_the_per_query_answers_of_the_library() -> None:
    hist = _small_histogram()
    synth = np.random.RandomState(1).uniform(0.5, 2.0, size=hist.shape)
    h = sn_mwem.Histogram(hist, list(hist.shape), [None] * 3, [0, 1, 2])
    h.add_cuboid_queries(3)
    plans = marginal_plan(h.queries, h.dimensions)
    assert plans is not None and len(plans) == 7  # every 1-, 2- and 3-way marginal
    assert sorted(axes for axes, _ in plans) == [(0,), (0, 1), (0, 1, 2), (0, 2), (1,), (1, 2), (2,)]
    for cuboid, (axes, index) in zip(h.queries, plans, strict=True):
        for array in (hist, synth):
            expected = [q.evaluate(array) for q in cuboid.queries]
            assert _marginal(array, axes)[index] == pytest.approx(expected, rel=1e-12)
        assert cuboid.error(hist, synth) == pytest.approx(
            np.abs(_marginal(hist, axes) - _marginal(synth, axes))[index].sum() / len(index), rel=1e-12
        )


def test_range_queries_are_left_to_the_library() -> None:
    h = sn_mwem.Histogram(_small_histogram(), [5, 3, 4], [None] * 3, [0, 1, 2])
    h.add_arbitrary_queries(4)
    assert marginal_plan(h.queries, h.dimensions) is None


def _fit(cls: type, data: pd.DataFrame, seed: int, monkeypatch: pytest.MonkeyPatch, **kwargs):  # type: ignore[no-untyped-def]
    """Fit `cls` with the Laplace noise, `random` and `numpy.random` drawn from `seed`."""
    noise = np.random.RandomState(seed)

    def laplace(scale: float, size: int | None = None):  # type: ignore[no-untyped-def]
        return noise.laplace(0, scale) if size is None else [noise.laplace(0, scale) for _ in range(size)]

    monkeypatch.setattr(sn_mwem, "laplace_noise", laplace)
    random.seed(seed)
    np.random.seed(seed)
    model = cls(epsilon=1.0, splits=[[0, 1, 2], [3]], marginal_width=2, **kwargs)
    model.fit(data.copy(), categorical_columns=list(data.columns), preprocessor_eps=0.0)
    return model


@pytest.mark.filterwarnings("ignore:Flattened dimensionality")
@pytest.mark.parametrize("iterations, mwi", [(15, 5), (4, 20)])
def test_the_whole_fit_matches_the_library_draw_for_draw(monkeypatch: pytest.MonkeyPatch, iterations, mwi) -> None:
    rs = np.random.RandomState(5)
    data = pd.DataFrame(
        {
            "a": rs.randint(0, 7, 2000),
            "b": rs.randint(0, 5, 2000),
            "c": rs.randint(0, 4, 2000),
            "d": rs.randint(0, 3, 2000),
        }
    )
    opts = {"iterations": iterations, "mult_weights_iterations": mwi}
    library = _fit(sn_mwem.MWEMSynthesizer, data, 7, monkeypatch, **opts)
    vectorised = _fit(_vector_mwem_class(), data, 7, monkeypatch, **opts)
    # the same epsilon per step (selection and measurement of every iteration) and in total
    assert vectorised.accountant == library.accountant
    assert len(vectorised.accountant) == 2 * 2 * iterations
    assert sum(vectorised.accountant) == pytest.approx(1.0)
    for (mine, real_mine, split_mine), (theirs, real_theirs, split_theirs) in zip(
        vectorised.synthetic_histograms, library.synthetic_histograms, strict=True
    ):
        assert list(split_mine) == list(split_theirs)
        np.testing.assert_array_equal(real_mine, real_theirs)
        np.testing.assert_allclose(mine, theirs, rtol=1e-9)


def test_mwem_spends_the_same_epsilon_per_iteration_and_in_total(pums) -> None:
    table, schema = pums
    synth = create_synthesizer("mwem", seed=1, options={"iterations": 4, "mult_weights_iterations": 2})
    cost = synth.fit(table, schema, PrivacyCost(Fraction(1, 2)))
    assert cost.epsilon == Fraction(1, 2) and cost.delta == 0
    model = synth._model
    histograms = len(model.histograms)
    # smartnoise's split: half of the rest for selections, half for measurements, evenly over histograms
    # and iterations
    per_step = float(Fraction(1, 2) - synth.row_count.epsilon) / 2 / histograms / 4
    assert len(model.accountant) == 2 * 4 * histograms
    assert model.accountant == pytest.approx([per_step] * len(model.accountant))
    assert sum(model.accountant) + synth.row_count.epsilon == pytest.approx(0.5)


def test_a_seeded_fit_is_reproducible_given_the_same_noise(pums, monkeypatch: pytest.MonkeyPatch) -> None:
    """The selection draws from the job's seed; the Laplace noise is OpenDP's (unseeded), fixed here."""
    table, schema = pums

    def fit(seed: int, library_seed: int) -> list[np.ndarray]:
        noise = np.random.RandomState(0)
        monkeypatch.setattr(
            sn_mwem,
            "laplace_noise",
            lambda scale, size=None: [noise.laplace(0, scale) for _ in range(size or 1)],
        )
        random.seed(library_seed)  # the library's own generators must not matter
        np.random.seed(library_seed)
        # 5 iterations: a pool of 10 queries drawn from 12 marginals of a 3-column histogram
        synth = create_synthesizer("mwem", seed=seed, options={"iterations": 5, "mult_weights_iterations": 3})
        synth.fit(table, schema, PrivacyCost(1))
        return [fake for fake, _h, _s in synth._model.synthetic_histograms]

    first, again, other = fit(11, 1), fit(11, 2), fit(12, 1)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other, strict=True))


@pytest.mark.filterwarnings("ignore:Flattened dimensionality")
def test_range_queries_run_the_librarys_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rs = np.random.RandomState(2)
    data = pd.DataFrame(
        {"a": rs.randint(0, 6, 500), "b": rs.randint(0, 4, 500), "c": rs.randint(0, 3, 500), "d": rs.randint(0, 2, 500)}
    )
    opts = {"iterations": 4, "mult_weights_iterations": 2, "add_ranges": True, "q_count": 30}
    library = _fit(sn_mwem.MWEMSynthesizer, data, 3, monkeypatch, **opts)
    vectorised = _fit(_vector_mwem_class(), data, 3, monkeypatch, **opts)
    assert vectorised._plans is None  # a range query is no marginal: the library's loop ran
    assert vectorised.accountant == library.accountant
    for (mine, _r, _s), (theirs, _r2, _s2) in zip(
        vectorised.synthetic_histograms, library.synthetic_histograms, strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)

"""The engine's building blocks against brute force: marginals, junction trees, message passing,
queries across cliques, sampling, estimation, and the two mechanisms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from privacy.engine.estimation import MarginalEstimator, Measurement, project_to_simplex, shrink_to_uniform
from privacy.engine.junction_tree import (
    build_junction_tree,
    calibrate,
    clique_probabilities,
    junction_tree_cells,
)
from privacy.engine.mechanisms import exponential_select, gaussian_measure, selection_probabilities
from privacy.engine.model import GraphicalModel, draw_conditional
from privacy.engine.result import DomainCompression
from privacy.engine.table import EncodedTable

SIZES = (3, 4, 2, 5, 3, 2)
CYCLE = [(0, 1), (1, 2), (2, 3), (3, 0), (3, 4), (4, 5), (1, 5)]


def _joint(sizes, cliques, potentials):
    full = np.zeros(sizes)
    for c, p in zip(cliques, potentials, strict=True):
        full = full + p.reshape([sizes[a] if a in c else 1 for a in range(len(sizes))])
    p = np.exp(full - full.max())
    return p / p.sum()


def _marg(p, keep):
    return p.sum(axis=tuple(a for a in range(p.ndim) if a not in keep))


def test_marginals_are_bincounts_over_combined_codes() -> None:
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, s, 500) for s in SIZES], axis=1)
    table = EncodedTable(codes, SIZES)
    for clique in [(0,), (1, 3), (0, 2, 5)]:
        expected = np.zeros([SIZES[a] for a in clique])
        np.add.at(expected, tuple(codes[:, a] for a in clique), 1)
        assert np.array_equal(table.marginal(clique), expected)
    assert table.columns[0].dtype == np.uint8
    with pytest.raises(ValueError):
        EncodedTable(codes, (2, *SIZES[1:]))  # a code outside the declared domain


def test_junction_tree_covers_cliques_and_has_running_intersection() -> None:
    jt = build_junction_tree(SIZES, CYCLE)
    for c in CYCLE:
        assert jt.containing(c) is not None
    # running intersection: the cliques holding an attribute form a connected subtree
    for a in range(len(SIZES)):
        holders = {i for i, c in enumerate(jt.cliques) if a in c}
        tops = [i for i in holders if jt.parent[i] not in holders]
        assert len(tops) == 1
    assert junction_tree_cells(SIZES, CYCLE) == jt.cells
    # a tree needs no fill-in: its junction tree is its edges
    tree = [(0, 1), (1, 2), (1, 3), (3, 4), (4, 5)]
    assert sorted(build_junction_tree(SIZES, tree).cliques) == sorted(tree)


@pytest.mark.parametrize("scale", [1.0, 400.0])
def test_message_passing_gives_exact_clique_marginals(scale: float) -> None:
    rng = np.random.default_rng(1)
    jt = build_junction_tree(SIZES, CYCLE)
    pots = [scale * rng.normal(size=[SIZES[a] for a in c]) for c in jt.cliques]
    joint = _joint(SIZES, jt.cliques, pots)
    beliefs, log_z = calibrate(jt, pots)
    probs = clique_probabilities(jt, pots)
    for c, b, p in zip(jt.cliques, beliefs, probs, strict=True):
        assert np.allclose(np.exp(b - log_z), _marg(joint, c), atol=1e-12)
        assert np.allclose(p, _marg(joint, c), atol=1e-12)


def test_queries_across_cliques_and_sampling_match_the_joint() -> None:
    rng = np.random.default_rng(2)
    jt = build_junction_tree(SIZES, CYCLE)
    pots = [rng.normal(size=[SIZES[a] for a in c]) for c in jt.cliques]
    joint = _joint(SIZES, jt.cliques, pots)
    model = GraphicalModel(jt, clique_probabilities(jt, pots), total=1000.0)
    for q in [(0, 4), (2, 5), (0, 2, 4), (0, 4, 5), (1,)]:
        assert np.allclose(model.probability(q), _marg(joint, q), atol=1e-12)
    assert model.project((0,)).sum() == pytest.approx(1000.0)
    codes = model.sample(200_000, np.random.default_rng(3))
    for q in itertools.combinations(range(len(SIZES)), 2):
        emp = np.zeros([SIZES[a] for a in q])
        np.add.at(emp, tuple(codes[:, a] for a in q), 1)
        assert 0.5 * np.abs(emp / len(codes) - _marg(joint, q)).sum() < 0.01


def test_stratified_draws_match_conditionals_without_linking_siblings() -> None:
    # b depends on a; c depends on a; given a, b and c are independent: the sampler must keep that
    sizes = (2, 3, 3)
    rng = np.random.default_rng(4)
    jt = build_junction_tree(sizes, [(0, 1), (0, 2)])
    pab = rng.dirichlet(np.ones(6)).reshape(2, 3)
    pa = pab.sum(axis=1)
    pc_given_a = rng.dirichlet(np.ones(3), size=2)
    pac = pa[:, None] * pc_given_a
    probs = [pab if c == (0, 1) else pac for c in jt.cliques]
    model = GraphicalModel(jt, probs, 1.0)
    n = 60_000
    codes = model.sample(n, np.random.default_rng(5))
    for a in range(2):
        rows = codes[codes[:, 0] == a]
        table = np.zeros((3, 3))
        np.add.at(table, (rows[:, 1], rows[:, 2]), 1)
        assert stats.chi2_contingency(table)[1] > 0.001


def test_draw_conditional_counts_are_within_one_of_expected() -> None:
    table = np.array([[0.2, 0.5, 0.3], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    groups = np.repeat([0, 1, 2], [1000, 10, 7])
    out = draw_conditional(table, groups, np.random.default_rng(0))
    counts = np.bincount(out[:1000], minlength=3)
    assert np.all(np.abs(counts - np.array([200, 500, 300])) <= 1)
    assert np.all(out[1010:] == 0)  # a row with all its weight on one value
    assert np.all((out >= 0) & (out < 3))  # an empty row falls back to the overall mix


def test_estimation_recovers_exact_measurements() -> None:
    rng = np.random.default_rng(6)
    tree = [(0, 1), (1, 2), (1, 3), (3, 4), (4, 5)]
    jt = build_junction_tree(SIZES, tree)
    pots = [rng.normal(size=[SIZES[a] for a in c]) for c in jt.cliques]
    joint = _joint(SIZES, jt.cliques, pots) * 5000
    ms = [Measurement((a,), _marg(joint, (a,)), 1.0) for a in range(len(SIZES))]
    ms += [Measurement(c, _marg(joint, c), 1.0) for c in tree]
    est = MarginalEstimator(SIZES, ms)
    assert est.total == pytest.approx(5000)
    theta = est.fit(300, est.bethe_start())
    model = est.model(theta)
    for c in tree:
        assert np.allclose(model.project(c), _marg(joint, c), atol=1e-6 * 5000)
    # a pair the tree does not hold comes out as the tree's conditional independence implies
    assert np.allclose(model.project((0, 5)), _marg(joint, (0, 5)), atol=1e-6 * 5000)


def test_estimation_from_zero_potentials_converges_and_respects_nonnegativity() -> None:
    y = np.array([30.0, -8.0, 10.0, 2.0])
    est = MarginalEstimator((4,), [Measurement((0,), y, 2.0)])
    theta = est.fit(2000)
    fitted = est.model(theta).project((0,))
    assert np.all(fitted >= 0)
    assert np.allclose(fitted, project_to_simplex(y, 4.0, est.total), atol=0.05)


def test_project_to_simplex_solves_the_weighted_projection() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        y = rng.normal(5, 10, size=8)
        v = rng.uniform(0.5, 4, size=8)
        x = project_to_simplex(y, v, 50.0)
        assert x.min() >= 0 and x.sum() == pytest.approx(50.0)
        # KKT: positive cells share one multiplier (y - x) / v; zero cells have y / v below it
        lam = ((y - x) / v)[x > 1e-9]
        assert np.allclose(lam, lam[0], atol=1e-6)
        assert np.all((y / v)[x <= 1e-9] <= lam[0] + 1e-6)


def test_exponential_mechanism_samples_its_stated_probabilities() -> None:
    scores = np.array([0.0, 1.0, 2.0, 4.0])
    eps, sens = 1.5, 1.0
    p = selection_probabilities(scores, eps, sens)
    expected = np.exp(eps * scores / (2 * sens))
    assert np.allclose(p, expected / expected.sum())
    rng = np.random.default_rng(8)
    draws = np.bincount([exponential_select(scores, eps, sens, rng) for _ in range(20_000)], minlength=4)
    assert stats.chisquare(draws, p * 20_000).pvalue > 0.001


def test_gaussian_measure_adds_noise_of_the_given_scale() -> None:
    counts = np.full((50, 40), 7.0)
    noisy = gaussian_measure(counts, 3.0, np.random.default_rng(9))
    assert stats.kstest(((noisy - counts) / 3.0).ravel(), "norm").pvalue > 0.001


def test_domain_compression_round_trip() -> None:
    supports = (np.array([True, False, True, False, False]), np.ones(3, dtype=bool))
    comp = DomainCompression(supports)
    assert comp.sizes == (3, 3)
    lookups = comp.lookups()
    assert list(lookups[0]) == [0, 2, 1, 2, 2]
    codes = np.array([[0, 0], [1, 1], [2, 2]] * 100)
    back = comp.decompress(codes, np.random.default_rng(0))
    assert set(back[codes[:, 0] == 0, 0]) == {0}
    assert set(back[codes[:, 0] == 1, 0]) == {2}
    assert set(back[codes[:, 0] == 2, 0]) == {1, 3, 4}  # the shared code spreads over the merged codes
    assert np.array_equal(back[:, 1], codes[:, 1])


def test_shrink_to_uniform_flattens_noise_and_keeps_signal() -> None:
    rng = np.random.default_rng(5)
    k, total = 33, 344.0
    truth = np.zeros(k)
    truth[10:20] = total / 10  # 344 records in 10 of 33 codes
    # sigma 220 (AIM's first round on penguins at epsilon 0.3): nearly flat
    noisy = Measurement((0,), truth + rng.normal(0, 220.0, k), 220.0)
    flat = shrink_to_uniform(noisy, total)
    u = total / k
    d = noisy.values - u
    c = 1 - (k - 2) * 220.0**2 / float(d @ d)
    assert np.allclose(flat.values, u + max(c, 0.0) * d)
    assert np.ptp(flat.values) < 0.25 * np.ptp(noisy.values)
    assert flat.sigma == noisy.sigma and flat.clique == noisy.clique
    # sigma 1 on the same counts: left as measured (c within 1% of 1)
    clear = Measurement((0,), truth + rng.normal(0, 1.0, k), 1.0)
    kept = shrink_to_uniform(clear, total)
    assert np.allclose(kept.values - total / k, (clear.values - total / k), rtol=0.01)
    # two cells, or a per-cell sigma (compressed domains): unchanged
    two = Measurement((0,), np.array([5.0, -3.0]), 10.0)
    assert shrink_to_uniform(two, 2.0) is two
    mixed = Measurement((0,), np.arange(4.0), np.array([1.0, 1.0, 1.0, 2.0]))
    assert shrink_to_uniform(mixed, 6.0) is mixed


@pytest.mark.parametrize("sigma", [5.0, 40.0, 260.0])
def test_shrink_to_uniform_lowers_the_squared_error(sigma: float) -> None:
    """James-Stein: over many draws the shrunk marginal is closer to the truth than the raw one."""
    rng = np.random.default_rng(11)
    k, total = 33, 344.0
    truth = rng.dirichlet(np.full(k, 0.3)) * total
    raw_err = shrunk_err = 0.0
    for _ in range(2000):
        m = Measurement((0,), truth + rng.normal(0, sigma, k), sigma)
        raw_err += float(np.square(m.values - truth).sum())
        shrunk_err += float(np.square(shrink_to_uniform(m, total).values - truth).sum())
    assert shrunk_err < raw_err

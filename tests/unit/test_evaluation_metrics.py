"""Contract tests run over every metric of the registry, and the kernels against references.

Fidelity metrics: a copy of the real table scores the metric's ideal, a table
whose columns were swapped (column scope) or shuffled independently (pair and
table scopes) scores strictly worse, and every value lies in the declared
range. Privacy metrics: a copy of the training rows scores strictly worse than
rows drawn independently from the same population, which score near the ideal.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation import METRICS, NotScorable, metrics_for
from evaluation._tables import column_view
from evaluation.metrics import (
    chi2_homogeneity_pvalue,
    cramers_v,
    joint_tv_distance,
    ks_statistic,
    pearson_correlation,
    tv_distance_counts,
)
from privacy.schema import ColumnSpec, PublicSchema

SCHEMA = PublicSchema(
    columns={
        "x": ColumnSpec(kind="continuous", min=-10, max=10, nullable=True),
        "y": ColumnSpec(kind="continuous", min=-10, max=10),
        "o1": ColumnSpec(kind="ordinal", min=0, max=10, nullable=True),
        "o2": ColumnSpec(kind="ordinal", min=0, max=10),
        "d1": ColumnSpec(kind="datetime", min=dt.date(2000, 1, 1), max=dt.date(2010, 12, 31), nullable=True),
        "d2": ColumnSpec(kind="datetime", min=dt.date(2000, 1, 1), max=dt.date(2010, 12, 31)),
        "c1": ColumnSpec(kind="categorical", values=["A", "B", "C", "D"], nullable=True),
        "c2": ColumnSpec(kind="categorical", values=["A", "B", "C", "D"]),
    },
    quasi_identifiers=["o1", "c1", "c2"],
    sensitive=["y"],
)
KIND = {n: ("categorical" if s.kind == "categorical" else "numeric") for n, s in SCHEMA.columns.items()}
# each column and its partner: different distributions, ranges, category sets and null rates
PARTNER = {"x": "y", "y": "x", "o1": "o2", "o2": "o1", "d1": "d2", "d2": "d1", "c1": "c2", "c2": "c1"}


def population(n: int, seed: int) -> pd.DataFrame:
    """Rows driven by one latent factor, so that every pair of columns is associated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)

    def noisy(scale: float = 0.5) -> np.ndarray:
        return z + rng.normal(scale=scale, size=n)

    x = np.clip(2 * noisy() - 3, -8, 2)
    x[rng.random(n) < 0.05] = np.nan
    y = np.clip(2 * noisy() + 3, -2, 8)
    o1 = pd.array(np.clip(np.rint(noisy() + 2), 0, 5).astype(int), dtype="Int64")
    o1[rng.random(n) < 0.05] = pd.NA
    o2 = pd.array(np.clip(np.rint(noisy() + 6), 3, 9).astype(int), dtype="Int64")
    d1 = pd.Series(pd.Timestamp("2002-06-01") + pd.to_timedelta(np.clip(noisy() * 200, -500, 500).round(), unit="D"))
    d1[rng.random(n) < 0.1] = pd.NaT
    d2 = pd.Series(pd.Timestamp("2006-01-01") + pd.to_timedelta(np.clip(noisy() * 400, -1000, 1000).round(), unit="D"))
    c1 = np.array(["A", "B", "C"], dtype=object)[np.digitize(noisy(), [-0.5, 0.5])]
    c1[rng.random(n) < 0.05] = None
    c2 = np.array(["B", "C", "D"], dtype=object)[np.digitize(noisy(), [-0.2, 0.9])]
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "o1": o1,
            "o2": o2,
            "d1": d1.astype("datetime64[ns]"),
            "d2": d2.astype("datetime64[ns]"),
            "c1": pd.array(c1, dtype="string"),
            "c2": pd.array(c2, dtype="string"),
        }
    )


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return population(3000, seed=1)


@pytest.fixture(scope="module")
def swapped(real: pd.DataFrame) -> pd.DataFrame:
    """Each column replaced by its partner's values (cast to the column's dtype)."""
    out = {}
    for name, partner in PARTNER.items():
        out[name] = real[partner].astype(real[name].dtype)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def shuffled(real: pd.DataFrame) -> pd.DataFrame:
    """Every column permuted independently: marginals kept, relationships destroyed."""
    rng = np.random.default_rng(7)
    return pd.DataFrame({n: real[n].to_numpy()[rng.permutation(len(real))] for n in real.columns}).astype(
        real.dtypes.to_dict()
    )


def in_range(metric, value: float) -> bool:
    lo, hi = metric.range
    return lo - 1e-12 <= value <= hi + 1e-12


# ------------------------------------------------------------------------------ registry shape


def test_every_metric_declares_goal_range_scope_and_ideal() -> None:
    assert METRICS, "the registry is empty"
    for m in METRICS.values():
        assert m.goal in ("max", "min")
        lo, hi = m.range
        assert lo < hi and lo <= m.ideal <= hi
        assert m.scope in ("column", "pair", "table", "privacy")
        assert m.description
        if m.name.endswith("_score"):
            assert m.goal == "max", m.name
        if m.name.endswith(("_distance", "_error", "_rate")):
            assert m.goal == "min", m.name


def test_each_scope_has_metrics() -> None:
    for scope in ("column", "pair", "table", "privacy"):
        assert metrics_for(scope), scope


# ------------------------------------------------------------------------------ column metrics

COLUMN_CASES = [(m.name, col) for m in metrics_for("column") for col in SCHEMA.columns if KIND[col] in m.kinds]


@pytest.mark.parametrize(("name", "column"), COLUMN_CASES)
def test_column_metric_identical_is_ideal_and_swapped_is_worse(
    name: str, column: str, real: pd.DataFrame, swapped: pd.DataFrame
) -> None:
    m = METRICS[name]
    spec = SCHEMA.columns[column]
    same = m(real[column], real[column].copy(), spec)
    worse = m(real[column], swapped[column], spec)
    assert in_range(m, same) and in_range(m, worse)
    assert same == pytest.approx(m.ideal, abs=1e-12)
    assert m.better(same, worse), f"{name} on {column}: identical {same} vs swapped {worse}"


@pytest.mark.parametrize("name", [m.name for m in metrics_for("column")])
def test_column_metric_refuses_the_wrong_kind_or_an_all_null_column(name: str, real: pd.DataFrame) -> None:
    m = METRICS[name]
    for column in ("x", "c1"):
        if KIND[column] not in m.kinds:
            with pytest.raises(NotScorable):
                m(real[column], real[column], SCHEMA.columns[column])
    if name in ("ks_distance", "range_coverage_score", "category_coverage_score"):
        column = "x" if "numeric" in m.kinds else "c1"
        empty = pd.Series([None] * len(real), dtype=real[column].dtype)
        with pytest.raises(NotScorable):
            m(empty, real[column], SCHEMA.columns[column])


# ------------------------------------------------------------------------------ pair metrics

PAIRS = [("x", "y"), ("o1", "d2"), ("x", "o2"), ("c1", "c2"), ("x", "c1"), ("d1", "c2")]
PAIR_CASES = [
    (m.name, a, b) for m in metrics_for("pair") for a, b in PAIRS if KIND[a] in m.kinds and KIND[b] in m.kinds
]


@pytest.mark.parametrize(("name", "a", "b"), PAIR_CASES)
def test_pair_metric_identical_is_ideal_and_shuffled_is_worse(
    name: str, a: str, b: str, real: pd.DataFrame, shuffled: pd.DataFrame
) -> None:
    m = METRICS[name]
    same = m(real[[a, b]], real[[a, b]].copy(), SCHEMA)
    worse = m(real[[a, b]], shuffled[[a, b]], SCHEMA)
    assert in_range(m, same) and in_range(m, worse)
    assert same == pytest.approx(m.ideal, abs=1e-12)
    assert m.better(same, worse), f"{name} on {a} x {b}: identical {same} vs shuffled {worse}"


def test_correlation_metrics_refuse_categorical_pairs(real: pd.DataFrame) -> None:
    for name in ("pearson_error", "spearman_error"):
        with pytest.raises(NotScorable):
            METRICS[name](real[["x", "c1"]], real[["x", "c1"]], SCHEMA)


# ------------------------------------------------------------------------------ table metrics


@pytest.mark.parametrize("name", [m.name for m in metrics_for("table")])
def test_table_metric_identical_is_ideal_and_degraded_is_worse(
    name: str, real: pd.DataFrame, swapped: pd.DataFrame, shuffled: pd.DataFrame
) -> None:
    m = METRICS[name]
    same = m(real, real.copy(), SCHEMA)
    assert in_range(m, same)
    assert same == pytest.approx(m.ideal, abs=1e-9)
    scores = {"shuffled": m(real, shuffled, SCHEMA), "swapped": m(real, swapped, SCHEMA)}
    for how, value in scores.items():
        assert in_range(m, value)
        assert m.better(same, value), f"{name}: identical {same} vs {how} {value}"
    # losing the relationships costs less than losing the columns themselves
    assert m.better(scores["shuffled"], scores["swapped"])


# ------------------------------------------------------------------------------ privacy metrics


@pytest.fixture(scope="module")
def privacy_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = population(6000, seed=3)
    return (
        rows.iloc[:2400].reset_index(drop=True),
        rows.iloc[2400:3000].reset_index(drop=True),
        rows.iloc[3000:5400].reset_index(drop=True),
    )


@pytest.mark.parametrize("name", [m.name for m in metrics_for("privacy")])
def test_privacy_metric_copy_of_training_rows_is_worse_than_independent_rows(
    name: str, privacy_tables: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    train, holdout, independent = privacy_tables
    m = METRICS[name]
    copy = m(train, holdout, train.copy(), SCHEMA, seed=0)
    fresh = m(train, holdout, independent, SCHEMA, seed=0)
    assert in_range(m, copy) and in_range(m, fresh)
    assert m.better(fresh, copy), f"{name}: independent {fresh} vs copy {copy}"
    assert fresh == pytest.approx(m.ideal, abs=0.08), f"{name}: independent rows scored {fresh}"


def test_privacy_metrics_are_seeded(privacy_tables: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout, independent = privacy_tables
    m = METRICS["dcr_share_closer_to_train"]
    assert m(train, holdout, independent, SCHEMA, seed=4) == m(train, holdout, independent, SCHEMA, seed=4)


# ------------------------------------------------------------------------------ kernels


def test_ks_statistic_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=700), rng.normal(0.3, 1.2, size=500)
    a[:10] = np.nan
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a[~np.isnan(a)], b).statistic, abs=1e-12)
    ties_a, ties_b = np.array([0, 0, 0, 1, 2.0]), np.array([0, 1, 1, 1, 2.0])
    assert ks_statistic(ties_a, ties_b) == pytest.approx(stats.ks_2samp(ties_a, ties_b).statistic)


def test_tv_distance_by_hand() -> None:
    assert tv_distance_counts(np.array([5, 5, 0]), np.array([0, 5, 5])) == pytest.approx(0.5)
    assert tv_distance_counts(np.array([1, 0]), np.array([0, 7])) == pytest.approx(1.0)
    with pytest.raises(NotScorable):
        tv_distance_counts(np.array([0, 0]), np.array([1, 1]))


def test_joint_tv_distance_large_domains_agree_with_small_ones() -> None:
    rng = np.random.default_rng(1)
    a = [rng.integers(0, 50, 4000), rng.integers(0, 40, 4000)]
    b = [rng.integers(0, 50, 3000), rng.integers(0, 40, 3000)]
    small = joint_tv_distance(a, b, [50, 40])
    # a third constant column with a huge declared domain forces the sparse path; the value must not change
    big = joint_tv_distance([*a, np.zeros(4000, int)], [*b, np.zeros(3000, int)], [50, 40, 10_000])
    assert big == pytest.approx(small)


def test_chi2_pvalue_matches_scipy_and_is_one_for_identical_counts() -> None:
    r, s = np.array([30, 50, 20, 0]), np.array([40, 40, 20, 0])
    expected = stats.chi2_contingency(np.array([[30, 50, 20], [40, 40, 20]]), correction=False)[1]
    assert chi2_homogeneity_pvalue(r, s) == pytest.approx(expected)
    assert chi2_homogeneity_pvalue(r, r) == pytest.approx(1.0)


def test_cramers_v_perfect_and_independent() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, 20_000)
    assert cramers_v(a, a, 4, 4) == pytest.approx(1.0)
    assert cramers_v(a, rng.integers(0, 3, 20_000), 4, 3) < 0.03
    with pytest.raises(NotScorable):
        cramers_v(a, np.zeros_like(a), 4, 2)


def test_pearson_correlation_ignores_rows_with_a_null() -> None:
    x = np.array([1.0, 2, 3, 4, np.nan, 100])
    y = np.array([2.0, 4, 6, 8, 5, np.nan])
    assert pearson_correlation(x, y) == pytest.approx(1.0)


def test_quantile_bins_give_a_point_mass_its_own_bin() -> None:
    """A column that is 0 for 90% of rows is still split into zero and non-zero."""
    rng = np.random.default_rng(3)
    gains = pd.Series(np.where(rng.random(5000) < 0.9, 0.0, rng.uniform(1, 90_000, 5000)))
    view = column_view("gain", ColumnSpec(kind="continuous", min=0, max=100_000), gains, quantiles_from=gains)
    codes = view.codes(gains)
    assert set(np.unique(codes[gains.to_numpy() == 0])) == {0}
    assert not set(np.unique(codes[gains.to_numpy() > 0])) & {0}
    assert view.labels()[:2] == ["0", ">0"]


def test_pairs_are_sampled_with_a_seed_when_there_are_many() -> None:
    from evaluation.metrics import sample_pairs

    names = [f"c{i}" for i in range(30)]
    assert len(sample_pairs(names, 1000, 0)) == 435
    picked = sample_pairs(names, 50, 0)
    assert len(picked) == 50 and len(set(picked)) == 50
    assert picked == sample_pairs(names, 50, 0) and picked != sample_pairs(names, 50, 1)
    assert all(p in set(itertools.combinations(names, 2)) for p in picked)

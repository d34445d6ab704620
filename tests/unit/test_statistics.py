"""dp-statistics: declared cells, accurate at large epsilon, an exact and documented budget."""

from __future__ import annotations

import json
from fractions import Fraction

import pandas as pd
import pytest

from privacy.budget import PrivacyCost
from privacy.disclosure import apply_small_cell_rules
from privacy.errors import DomainTooLarge, InvalidPrivacyValue, MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.statistics import dp_statistics, planned_cost, preflight_statistics
from tests.conftest import ADULT


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(adult_df, schema)
    return table, schema


def test_budget_split_is_exact_and_documented(adult) -> None:
    table, schema = adult
    release = dp_statistics(
        table,
        schema,
        PrivacyCost(1, Fraction(1, 10**6)),
        options={"columns": ["age", "workclass"], "by": ["sex"]},
        seed=1,
    )
    # per breakdown: cell counts; age: sum, sum of squares, quantiles, histogram; workclass: histogram
    assert release.budget["measurements"] == 2 * 6
    assert release.budget["epsilon_per_measurement"] == "1/12 (0.0833333)"
    assert release.cost == PrivacyCost(1, 0, Fraction(1, 2)) == planned_cost(PrivacyCost(1, Fraction(1, 10**6)))


def test_accurate_at_large_epsilon_overall_and_by_group(adult) -> None:
    table, schema = adult
    release = dp_statistics(
        table, schema, PrivacyCost(50), options={"columns": ["age", "hours-per-week"], "by": ["sex"]}, seed=2
    )
    counts = release.counts.set_index("group")["count"]
    assert abs(counts["all"] - len(table)) < 20
    assert abs(counts["sex=Female"] - (table["sex"] == "Female").sum()) < 20
    numeric = release.numeric.set_index(["group", "column"])
    for group, rows in (("all", table), ("sex=Male", table[table["sex"] == "Male"])):
        assert abs(numeric.loc[(group, "age"), "mean"] - rows["age"].mean()) < 0.3
        assert abs(numeric.loc[(group, "age"), "variance"] - rows["age"].var()) < 5
        assert abs(numeric.loc[(group, "age"), "q0.5"] - rows["age"].median()) <= 1
    hist = release.histograms[(release.histograms["group"] == "all") & (release.histograms["column"] == "age")]
    assert abs(hist["count"].sum() - len(table)) < 50


def test_cells_come_from_the_declared_domain(adult) -> None:
    table, schema = adult
    release = dp_statistics(
        table,
        schema,
        PrivacyCost(1),
        options={"columns": ["age"], "by": [["sex", "race"]], "statistics": ["count"]},
        seed=3,
    )
    groups = release.counts[release.counts["breakdown"] == "sex x race"]["group"]
    assert len(groups) == 2 * 5  # every declared combination, whether the data has it or not
    # a declared category absent from the data is still a cell, with its own (noisy) count
    data = schema.to_dict()
    data["columns"]["race"]["values"] = [*data["columns"]["race"]["values"], "Not-in-data"]
    wider = PublicSchema.from_dict(data)
    release = dp_statistics(
        table, wider, PrivacyCost(1), options={"by": ["race"], "statistics": ["count"], "columns": ["age"]}, seed=3
    )
    assert "race=Not-in-data" in set(release.counts["group"])
    # a nullable group column gets a null cell
    release = dp_statistics(
        table,
        schema,
        PrivacyCost(1),
        options={"by": ["workclass"], "statistics": ["count"], "columns": ["age"]},
        seed=3,
    )
    assert "workclass=(null)" in set(release.counts["group"])


def test_tables_are_plain_with_a_count_column_and_json_ready(adult) -> None:
    table, schema = adult
    release = dp_statistics(table, schema, PrivacyCost(1), options={"columns": ["age", "income"]}, seed=4)
    for name, df in release.tables().items():
        assert isinstance(df, pd.DataFrame) and "count" in df.columns, name
        assert (df["count"].dropna() >= 0).all()
    text = json.dumps(release.to_dict())
    assert '"method": "dp-statistics"' in text


def test_same_seed_same_release(adult) -> None:
    table, schema = adult
    a = dp_statistics(table, schema, PrivacyCost(1), options={"columns": ["age"]}, seed=9)
    b = dp_statistics(table, schema, PrivacyCost(1), options={"columns": ["age"]}, seed=9)
    pd.testing.assert_frame_equal(a.numeric, b.numeric)


def test_open_bounds_need_bounds_epsilon_which_is_included(adult) -> None:
    table, schema = adult
    data = schema.to_dict()
    data["columns"]["capital-loss"] = {"kind": "continuous", "integer": True}
    open_schema = PublicSchema.from_dict(data)
    with pytest.raises(SchemaError, match="bounds_epsilon"):
        preflight_statistics(open_schema, PrivacyCost(1), {"columns": ["capital-loss"]})
    release = dp_statistics(
        table, open_schema, PrivacyCost(1), options={"columns": ["capital-loss"], "bounds_epsilon": 0.2}, seed=5
    )
    assert release.cost == PrivacyCost(1, 0, Fraction(1, 2))
    assert release.budget["bounds_epsilon"] == "0.2"
    assert release.budget["epsilon_per_measurement"] == "0.16"  # (1 - 0.2) / 5 measurements


@pytest.mark.parametrize("statistics", [["quantiles"], ["mean", "variance", "quantiles"]])
def test_small_cells_are_suppressed_whole_in_the_numeric_table(adult, statistics: list[str]) -> None:
    table, schema = adult
    release = dp_statistics(
        table, schema, PrivacyCost(5), options={"columns": ["age"], "by": ["race"], "statistics": statistics}, seed=6
    )
    numeric = release.numeric
    assert numeric["count"].notna().all()  # every row names its cell's size, whatever was asked
    out, report = apply_small_cell_rules(numeric, ["count"], threshold=1000, rounding_base=5)
    small = set(table["race"].value_counts().loc[lambda v: v < 900].index)
    assert small == {"Amer-Indian-Eskimo", "Other"}
    for _, row in out.iterrows():
        withheld = row["group"].removeprefix("race=") in small
        stats = [c for c in out.columns if c not in ("breakdown", "group", "column") and not c.endswith("suppressed")]
        assert all(pd.isna(row[c]) for c in stats) == withheld, row.to_dict()
    assert report.cells_suppressed == 2


def test_small_cells_are_suppressed_whole_in_the_histograms(adult) -> None:
    table, schema = adult
    release = dp_statistics(
        table,
        schema,
        PrivacyCost(5),
        options={"columns": ["age", "sex"], "by": ["race"], "statistics": ["histogram"]},
        seed=7,
    )
    hist = release.histograms
    assert hist["cell_count"].notna().all()
    out, _ = apply_small_cell_rules(hist, ["count", "cell_count"], threshold=1000, rounding_base=5)
    small = out["group"].isin(["race=Amer-Indian-Eskimo", "race=Other"])
    assert out.loc[small, "count"].isna().all() and out.loc[small, "cell_count"].isna().all()
    assert out.loc[out["group"] == "race=White", "count"].notna().any()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"by": ["age", "fnlwgt"]}, SchemaError),  # a continuous column cannot be a group
        ({"by": [["native-country", "education", "occupation"]]}, DomainTooLarge),
        ({"statistics": ["median"]}, MethodOptionError),
        ({"columns": ["no-such-column"]}, SchemaError),
        ({"quantiles": [1.5]}, MethodOptionError),
        ({"colour": "blue"}, MethodOptionError),
    ],
)
def test_bad_requests_are_refused_before_reading_data(adult, options: dict, error: type) -> None:
    _table, schema = adult
    with pytest.raises(error):
        preflight_statistics(schema, PrivacyCost(1), options)


def test_open_category_domain_and_bad_epsilon_are_refused(adult) -> None:
    _table, schema = adult
    data = schema.to_dict()
    data["columns"]["race"] = {"kind": "categorical"}
    with pytest.raises(SchemaError, match="values"):
        preflight_statistics(PublicSchema.from_dict(data), PrivacyCost(1), {"columns": ["race"]})
    with pytest.raises(InvalidPrivacyValue):
        planned_cost(PrivacyCost(0))
    with pytest.raises(InvalidPrivacyValue):
        planned_cost(PrivacyCost.non_dp())


# ---------------------------------------------------------------------------------- Gaussian and intervals


def test_gaussian_mechanism_is_charged_in_zcdp_and_needs_a_delta() -> None:
    from privacy.accounting import zcdp_rho

    requested = PrivacyCost(1, Fraction(1, 10**9))
    cost = planned_cost(requested, {"mechanism": "gaussian"})
    # charged as the zCDP mechanism it is: rho composes with MST and AIM by adding up
    assert cost == PrivacyCost(1, Fraction(1, 10**9), zcdp_rho(1, Fraction(1, 10**9)))
    assert planned_cost(requested) == PrivacyCost(1, 0, Fraction(1, 2))  # Laplace: pure epsilon, delta unused
    with pytest.raises(InvalidPrivacyValue, match="needs a delta"):
        planned_cost(PrivacyCost(1), {"mechanism": "gaussian"})
    with pytest.raises(MethodOptionError, match="mechanism must be one of"):
        planned_cost(requested, {"mechanism": "cauchy"})


def test_gaussian_counts_have_the_documented_noise(adult) -> None:
    table, schema = adult
    small = table.head(3000)
    truth = int((small["sex"] == "Female").sum())
    draws = []
    for seed in range(200):
        release = dp_statistics(
            small,
            schema,
            PrivacyCost(1, Fraction(1, 10**9)),
            options={
                "mechanism": "gaussian",
                "columns": ["sex"],
                "statistics": ["count"],
                "by": ["sex"],
                "overall": False,
            },
            seed=seed,
        )
        draws.append(int(release.counts.set_index("group").loc["sex=Female", "count"]) - truth)
    sigma = float(release.budget["sigma_per_unit_sensitivity"])
    assert release.budget["mechanism"] == "gaussian" and "zCDP" in release.budget["composition"]
    assert abs(float(pd.Series(draws).mean())) < 4 * sigma / 200**0.5
    assert 0.8 * sigma < float(pd.Series(draws).std()) < 1.2 * sigma


def _cells(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Row masks of the release's cells: the whole table, and each sex."""
    sex = table["sex"].astype(str)
    return {"all": pd.Series(True, index=table.index), "sex=Female": sex == "Female", "sex=Male": sex == "Male"}


@pytest.mark.parametrize("mechanism,delta", [("laplace", 0), ("gaussian", Fraction(1, 10**9))])
def test_intervals_cover_the_tables_own_statistics(adult, mechanism: str, delta) -> None:
    """Over 200 releases at epsilon 0.5, each 95% interval holds the table's own value at least ~95% of the time."""
    table, schema = adult
    small = table.head(2000)
    cells = _cells(small)
    hours = small["hours-per-week"].astype(float).clip(1, 99)
    hits: dict[str, list[bool]] = {"count": [], "mean": [], "variance": [], "histogram": []}
    widths = []
    for seed in range(200):
        release = dp_statistics(
            small,
            schema,
            PrivacyCost(Fraction(1, 2), delta),
            options={
                "mechanism": mechanism,
                "columns": ["hours-per-week", "sex"],
                "statistics": ["count", "mean", "variance", "histogram"],
                "by": ["sex"],
            },
            seed=seed,
        )
        if seed == 0:
            assert set(release.counts["group"]) == set(cells), release.counts
        for _, row in release.counts.iterrows():
            hits["count"].append(abs(row["count"] - int(cells[row["group"]].sum())) <= row["count_moe"])
        for _, row in release.numeric.iterrows():
            x = hours[cells[row["group"]]]
            hits["mean"].append(row["mean_low"] <= x.mean() <= row["mean_high"])
            hits["variance"].append(row["variance_low"] <= x.var(ddof=0) <= row["variance_high"])
            widths.append(row["mean_high"] - row["mean_low"])
        for _, row in release.histograms[release.histograms["column"] == "sex"].iterrows():
            true = int((small["sex"].astype(str) == row["bin"]).sum())  # the overall breakdown's bins
            hits["histogram"].append(abs(row["count"] - true) <= row["count_moe"])
    coverage = {k: sum(v) / len(v) for k, v in hits.items()}
    print(mechanism, {k: round(v, 4) for k, v in coverage.items()}, "widest mean interval", round(max(widths), 2))
    assert all(c >= 0.93 for c in coverage.values()), coverage
    assert max(widths) < 0.25 * 98, max(widths)  # informative: a quarter of the 1-99 range at most


def test_quantiles_carry_a_rank_interval_that_holds(adult) -> None:
    """Over 200 releases of adult's quantiles at a small epsilon, the released value's rank among the real
    values is within `rank_moe` rows of the quantile's rank at least 95% of the time, for every level."""
    import numpy as np

    from privacy.statistics import grid_quantiles, quantile_grid

    table, schema = adult
    levels = (0.1, 0.5, 0.9)
    for column in ("age", "hours-per-week", "fnlwgt"):
        spec = schema.columns[column]
        lo, hi = (float(v) for v in spec.numeric_bounds())
        x = table[column].to_numpy(dtype=float)
        grid = quantile_grid(lo, hi, integer=spec.is_integer)
        snapped = np.sort(grid[np.searchsorted(grid, x, side="left").clip(0, len(grid) - 1)])
        n = len(snapped)
        held = np.zeros(len(levels))
        rng = np.random.RandomState(7)
        for _ in range(200):
            released, moe = grid_quantiles(x, levels, 0.05, lo, hi, integer=spec.is_integer, rng=rng)
            for i, q in enumerate(levels):
                below = np.searchsorted(snapped, released[i], side="left")
                at_most = np.searchsorted(snapped, released[i], side="right")
                miss = max(0.0, q * n - at_most, below - q * n)
                held[i] += miss <= moe
        assert (held / 200 >= 0.95).all(), (column, held)
        assert moe < 0.05 * n  # an interval narrow enough to mean something on 32k rows


def test_released_quantiles_come_with_their_rank_margin(adult) -> None:
    table, schema = adult
    release = dp_statistics(
        table, schema, PrivacyCost(1), options={"columns": ["age"], "statistics": ["quantiles"]}, seed=3
    )
    row = release.numeric.iloc[0]
    assert row["q0.5_rank_moe"] == row["q0.25_rank_moe"] > 0
    assert "q*_rank_moe" in release.budget["confidence"]

"""The shared encoding of the report's tables: declared text columns as Categoricals, and the distance
encoder's matrix, give the same values as the plain tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation._tables import MixedDistanceEncoder, table_views, with_declared_categories
from privacy.schema import ColumnSpec, PublicSchema


def _schema() -> PublicSchema:
    return PublicSchema(
        columns={
            "colour": ColumnSpec(kind="categorical", values=["red", "green", "blue"], nullable=True),
            "shape": ColumnSpec(kind="categorical", values=["square", "round"]),
            "size": ColumnSpec(kind="continuous", min=0, max=10, nullable=True),
            "level": ColumnSpec(kind="ordinal", min=1, max=5),
        }
    )


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = np.array(["red", "green", "blue"], dtype=object)[rng.integers(0, 3, n)]
    colour[rng.random(n) < 0.1] = None
    size = rng.uniform(0, 10, n)
    size[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "colour": pd.array(colour, dtype="string"),
            "shape": pd.array(np.array(["square", "round"], dtype=object)[rng.integers(0, 2, n)], dtype="string"),
            "size": size,
            "level": pd.array(rng.integers(1, 6, n), dtype="Int64"),
        },
        index=np.arange(n) * 3,
    )


def test_declared_text_columns_become_categoricals_of_the_same_values() -> None:
    df = _frame()
    before = df.copy()
    out = with_declared_categories(df, _schema())
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not touched
    for name in ("colour", "shape"):
        assert isinstance(out[name].dtype, pd.CategoricalDtype)
        assert list(out[name].cat.categories) == list(_schema().columns[name].values or [])
        assert out[name].isna().tolist() == df[name].isna().tolist()
        assert out[name].astype(object).where(out[name].notna(), None).tolist() == (
            df[name].astype(object).where(df[name].notna(), None).tolist()
        )
    assert out.index.equals(df.index)
    pd.testing.assert_series_equal(out["size"], df["size"])
    pd.testing.assert_series_equal(out["level"], df["level"])


def test_a_column_with_an_undeclared_value_is_left_as_text() -> None:
    df = _frame()
    df.loc[df.index[5], "shape"] = "triangle"
    out = with_declared_categories(df, _schema())
    assert not isinstance(out["shape"].dtype, pd.CategoricalDtype)
    assert out["shape"].iloc[5] == "triangle"
    assert isinstance(out["colour"].dtype, pd.CategoricalDtype)


def test_a_categorical_input_is_recoded_to_the_declared_order() -> None:
    df = _frame()
    given = df.assign(colour=df["colour"].astype("category"))  # categories in another order (sorted)
    assert list(given["colour"].cat.categories) != ["red", "green", "blue"]
    out = with_declared_categories(given, _schema())
    assert list(out["colour"].cat.categories) == ["red", "green", "blue"]
    assert out["colour"].astype(object).where(out["colour"].notna(), None).tolist() == (
        df["colour"].astype(object).where(df["colour"].notna(), None).tolist()
    )


def test_views_read_the_same_codes_and_numbers_from_either_form() -> None:
    df, schema = _frame(), _schema()
    out = with_declared_categories(df, schema)
    views = table_views(schema, df, quantiles_from=df)
    for name, view in views.items():
        np.testing.assert_array_equal(view.codes(out[name]), view.codes(df[name]))
        if view.kind == "numeric":
            np.testing.assert_array_equal(view.numeric(out[name]), view.numeric(df[name]))


def _reference_transform(views: dict, df: pd.DataFrame) -> np.ndarray:
    """The encoder as one block per column, stacked."""
    blocks = []
    n = len(df)
    for name, view in views.items():
        if view.kind == "categorical":
            onehot = np.zeros((n, view.size))
            onehot[np.arange(n), view.codes(df[name])] = 1.0 / math.sqrt(2.0)
            blocks.append(onehot)
            continue
        x = view.numeric(df[name])
        null = np.isnan(x)
        span = view.hi - view.lo if view.hi > view.lo else 1.0
        blocks.append(np.clip((np.nan_to_num(x, nan=view.lo) - view.lo) / span, 0.0, 1.0)[:, None])
        if view.spec.nullable or null.any():
            blocks.append(null.astype(float)[:, None])
    return np.hstack(blocks)


def test_the_distance_encoder_writes_the_blocks_of_every_column() -> None:
    df, schema = _frame(), _schema()
    views = table_views(schema, df)
    got = MixedDistanceEncoder(views).transform(with_declared_categories(df, schema))
    want = _reference_transform(views, df)
    assert (
        got.shape == want.shape == (len(df), 4 + 3 + 2 + 1)
    )  # one-hot colour and shape (null included), size and its null flag, level
    np.testing.assert_array_equal(got, want)


def test_average_ranks_by_counting_equal_the_sorted_ranks() -> None:
    from evaluation.kernels import average_ranks

    rng = np.random.default_rng(3)
    ages = rng.integers(17, 91, 5_000).astype(float)
    ages[rng.random(5_000) < 0.05] = np.nan
    cases = {
        "whole numbers with ties and nulls": ages,
        "negative whole numbers and signed zeros": np.array([-3.0, 0.0, -0.0, 2.0, -3.0, np.nan, 0.0, 1.0]),
        "a wide range (ranked by pandas)": np.array([0.0, 1e6, 5.0, 5.0, np.nan]),
        "fractions": rng.normal(size=300).round(1),
        "infinities": np.array([1.0, np.inf, -np.inf, 1.0, np.nan]),
        "all null": np.full(4, np.nan),
        "empty": np.array([]),
        "one value": np.array([7.0]),
    }
    for label, x in cases.items():
        want = pd.Series(x).rank().to_numpy()
        np.testing.assert_array_equal(average_ranks(x), want, err_msg=label)


def test_ks_statistic_by_counting_equals_the_sorted_statistic() -> None:
    from evaluation.kernels import ks_statistic

    def sorted_ks(real: np.ndarray, synthetic: np.ndarray) -> float:
        a, b = np.sort(real[np.isfinite(real)]), np.sort(synthetic[np.isfinite(synthetic)])
        grid = np.concatenate([a, b])
        return float(
            np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size - np.searchsorted(b, grid, "right") / b.size))
        )

    rng = np.random.default_rng(5)
    hours = rng.integers(1, 100, 3_000).astype(float)
    hours[rng.random(3_000) < 0.05] = np.nan
    cases = {
        "whole numbers with nulls": (hours, rng.integers(10, 80, 2_000).astype(float)),
        "negative whole numbers": (np.array([-5.0, -1.0, 0.0, 3.0, -0.0]), np.array([-2.0, 0.0, 0.0, 4.0])),
        "a wide range (sorted)": (np.array([0.0, 1e6, 3.0]), np.array([1.0, 2.0, 5e5])),
        "fractions (sorted)": (rng.normal(size=500), rng.normal(0.1, 1, size=400)),
        "one value each": (np.array([2.0]), np.array([2.0])),
    }
    for label, (real, synthetic) in cases.items():
        assert ks_statistic(real, synthetic) == sorted_ks(real, synthetic), label

"""safe_csv_bytes writes each distinct value once (pyarrow joins the rows): the bytes are those of pandas
writing every cell after neutralising it, on the tables where pandas' grouping of values could mislead it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.safe_csv import _csv_by_distinct_values, _neutralise, safe_csv_bytes, write_safe_csv


def per_cell(df: pd.DataFrame) -> bytes:
    """The per-cell writer safe_csv_bytes replaces."""
    out = df.copy()
    for name in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[name]) or pd.api.types.is_datetime64_any_dtype(out[name])):
            out[name] = out[name].map(_neutralise)
    out.columns = [_neutralise(str(c)) for c in out.columns]
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


N = 50


def frame(column: pd.Series | list[object]) -> pd.DataFrame:
    values = list(column) * (N // max(len(column), 1) + 1)
    s = pd.Series(values[:N], dtype=getattr(column, "dtype", object))
    return pd.DataFrame({"=first": s, "n": np.arange(N) - 3, "label": ["=x", "-1", "a", None, "b"] * (N // 5)})


CASES = {
    "true and 1": [True, 1, None, 1.0],
    "1 and 1.0": [1, 1.0, 2, None],
    "ints and null (pandas writes them as floats)": [1, None, 3],
    "zero and minus zero": pd.Series([0.0, -0.0, np.nan, 1.5]),
    "Float64 minus zero": pd.Series([0.0, -0.0, None, 2.0], dtype="Float64"),
    "floats": pd.Series([0.1, 1e-5, 1e16, 10000000.0, np.nan, -2.5]),
    "Int64": pd.Series([1, None, -7], dtype="Int64"),
    "boolean": pd.Series([True, None, False], dtype="boolean"),
    "int64 extremes": pd.Series([2**63 - 1, -(2**63), 0], dtype="int64"),
    "uint64 beyond int64": pd.Series([2**64 - 1, 3], dtype="uint64"),
    "UInt8 and null": pd.Series([255, None, 0], dtype="UInt8"),
    "negative ints of a narrow range": pd.Series([-5, 7, -5, 0, 3], dtype="int64"),
    "Int64 of a narrow range with nulls": pd.Series([40, None, 17, 90, None, 40], dtype="Int64"),
    "ints just inside the counted range": pd.Series([-1, (1 << 22) - 2, 5], dtype="int64"),
    "ints just past the counted range": pd.Series([-1, (1 << 22) - 1, 5], dtype="int64"),
    "strings with the cut": pd.Series(["a,0\r\nb", "x", None], dtype="string"),
    "quotes, commas, line ends": ['say "hi"', "a,b", "two\nlines", "\r=1", "", " lead"],
    "formulas": ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "|x", "%0A", "-", "+", "-0.5"],
    "empty strings and nulls": pd.Series(["", None, ""], dtype="string"),
    "dates only": pd.Series(pd.to_datetime(["2020-01-01", None, "1999-12-31"])),
    "dates and times": pd.Series(pd.to_datetime(["2020-01-01 10:00:01", None, "1999-12-31 00:00:00"])),
    "categorical": pd.Series(["=a", "b", None], dtype="category"),
    "all null": pd.Series([None, None], dtype="string"),
    "mixed text and numbers": ["a", 1, 2.5, "=b", None],
}


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_are_the_per_cell_writers(case: str) -> None:
    df = frame(CASES[case])
    assert safe_csv_bytes(df) == per_cell(df)


def test_datetime_columns_of_one_block_and_a_shuffled_index() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "d": pd.to_datetime(["2020-01-01", "2021-02-03"] * 10),
            "t": pd.to_datetime(["2020-01-01 10:00", "2021-02-03"] * 10, format="ISO8601"),
            "s": pd.Series(["=x", "y"] * 10, dtype="string"),
        },
        index=rng.permutation(20),
    )
    assert _csv_by_distinct_values(df, pd.Index(["d", "t", "s"])) is not None  # written by distinct values
    assert safe_csv_bytes(df) == per_cell(df)


def test_many_integers_and_the_file_written(tmp_path) -> None:
    """Integer columns of few and of many distinct values (an arrow cast instead of distinct texts), in
    blocks of rows: the bytes pandas writes, also when written to a file a block at a time."""
    rng = np.random.default_rng(5)
    n = 70_000
    df = pd.DataFrame(
        {
            "age": rng.integers(17, 91, n),
            "weight": rng.integers(0, 1_500_001, n),
            "gain": pd.array(np.where(rng.random(n) < 0.1, 99_999, 0)).astype("Int64"),
            "label": pd.Series(rng.choice(["=a", "b", "c"], n)).astype("category"),
        }
    )
    df.loc[rng.random(n) < 0.05, "gain"] = None
    expected = per_cell(df)
    assert safe_csv_bytes(df) == expected
    write_safe_csv(df, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == expected


@pytest.mark.parametrize("shape", ["one column", "no rows"])
def test_small_shapes(shape: str) -> None:
    df = pd.DataFrame({"a": ["", "=x", None]}) if shape == "one column" else pd.DataFrame({"a": [], "b": []})
    assert safe_csv_bytes(df) == per_cell(df)

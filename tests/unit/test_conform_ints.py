"""conform_table takes a numpy integer column of an integer spec as integers (no detour through floats): the
same column, clip counts and row drops as the float path, which is kept for values or bounds past 2**53."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import privacy.schema.conform as conform
from privacy.schema import PublicSchema, conform_table


def _schema(columns: dict[str, Any]) -> PublicSchema:
    return PublicSchema.model_validate({"columns": columns})


def _both(raw: pd.DataFrame, schema: PublicSchema, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = conform_table(raw, schema)
    with monkeypatch.context() as m:
        m.setattr(conform, "_conformed_ints", lambda s, spec: None)
        floats = conform_table(raw, schema)
    pd.testing.assert_frame_equal(fast[0], floats[0])
    assert fast[1].to_dict() == floats[1].to_dict()
    return fast


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "uint64"])
def test_clipped_and_rounded_as_the_float_path(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _schema(
        {
            "a": {"kind": "continuous", "min": 2, "max": 200, "integer": True},
            "b": {"kind": "continuous", "min": 0.5, "max": 7.5, "integer": True},  # bounds round half to even
            "c": {"kind": "continuous", "min": 3, "max": 9, "integer": True, "nullable": False},
            "d": {"kind": "continuous", "integer": True},  # open bounds
            "e": {"kind": "continuous", "min": 0, "max": 10},  # not an integer spec: floats
        }
    )
    rng = np.random.default_rng(0)
    n = 5_000
    raw = pd.DataFrame({c: rng.integers(0, 250, n).astype(dtype) for c in "abcde"})
    assert all(conform._conformed_ints(raw[c], schema.columns[c]) is not None for c in "abcd")
    table, report = _both(raw, schema, monkeypatch)
    assert all(str(table[c].dtype) == "Int64" for c in "abcd")
    assert report.clipped["a"] and report.clipped["b"] and report.clipped["c"]
    assert table["b"].min() == 0 and table["b"].max() == 8  # np.round(0.5) and np.round(7.5)


def test_past_2_53_and_nulls_take_the_float_path(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _schema(
        {
            "big": {"kind": "continuous", "integer": True},
            "big_bounds": {"kind": "continuous", "min": 0, "max": 2.0**60, "integer": True},
            "nullable": {"kind": "continuous", "min": 0, "max": 5, "integer": True, "nullable": True},
            "required": {"kind": "continuous", "min": 0, "max": 5, "integer": True, "nullable": False},
        }
    )
    raw = pd.DataFrame(
        {
            "big": np.array([2**53 + 1, 3, -(2**60), 7], dtype=np.int64),
            "big_bounds": np.array([1, 2, 3, 4], dtype=np.int64),
            "nullable": [1.0, None, 3.0, 9.0],
            "required": [None, 2.0, 7.0, 1.0],
        }
    )
    table, report = _both(raw, schema, monkeypatch)
    assert report.dropped_rows == 1 and len(table) == 3
    assert conform._conformed_ints(raw["big"], schema.columns["big"]) is None
    assert conform._conformed_ints(raw["big_bounds"], schema.columns["big_bounds"]) is None
    assert conform._conformed_ints(raw["nullable"], schema.columns["nullable"]) is None


@pytest.mark.parametrize(
    "values",
    [
        [1.4, 2.6, np.nan, -3.5],
        [0.5, 1.5, 2.5, -0.5, -0.0],
        [np.nan, np.nan],
        [],
        [2.0**62, np.nan],
        [1e19, 1.0],
        [np.inf, 1.0],
        [-(2.0**63), 3.0],
    ],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_rounded_int64_is_pandas_round_then_int64(values: list[float]) -> None:
    s = pd.Series(values, dtype="float64", name="x")
    try:
        expected = s.round().astype("Int64")
    except (TypeError, ValueError, OverflowError) as exc:  # too large or infinite: refused alike
        with pytest.raises(type(exc)):
            conform._rounded_int64(s)
        return
    got = conform._rounded_int64(s)
    assert got.dtype == "Int64" and got.name == "x"
    pd.testing.assert_series_equal(got, expected)


@pytest.mark.parametrize(("values", "inside"), [([1.0, np.nan, 5.0], True), ([0.0, 5.5], False), ([np.nan], True)])
def test_clipping_is_skipped_only_when_it_changes_nothing(values: list[float], inside: bool) -> None:
    x = np.array(values)
    assert conform._within(x, 0.0, 5.0) is inside
    if inside:
        pd.testing.assert_series_equal(pd.Series(x).clip(0.0, 5.0), pd.Series(x))

"""data.csv is safe to open in a spreadsheet and reads back as data.parquet does."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

from core.bundle import safe_csv_bytes

FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "|x", "%0A", "-", "+"]
PLAIN = ["-1", "+3", "-0.5", "1e-3", "-2.5E+4", ".5", "a-b", "x=1", "", "Adelie"]


def test_formula_cells_get_an_apostrophe_and_plain_labels_do_not() -> None:
    df = pd.DataFrame({"label": FORMULAS + PLAIN})
    rows = list(csv.reader(io.StringIO(safe_csv_bytes(df).decode(), newline="")))
    assert rows[0] == ["label"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in FORMULAS] + PLAIN


def test_a_released_table_reads_back_from_csv_as_from_parquet() -> None:
    """A class labelled -1 (as make_classification labels can be) stays the class -1."""
    df = pd.DataFrame(
        {
            "target": pd.Series(["-1", "1", "-1", "1"], dtype=object),
            "x": [-0.25, 1.5, np.nan, 3.0],
            "n": pd.array([-3, 4, None, 0], dtype="Int64"),
            "when": pd.to_datetime(["2020-01-01", "2021-06-30", None, "1999-12-31"]),
            "note": ["a,b", 'say "hi"', "two\nlines", "\r=1"],
        }
    )
    buf = io.BytesIO()
    df.to_parquet(buf)
    parquet = pd.read_parquet(io.BytesIO(buf.getvalue()))
    back = pd.read_csv(io.BytesIO(safe_csv_bytes(df)), dtype={"target": str}, parse_dates=["when"])
    assert back.pop("note").tolist() == ["a,b", 'say "hi"', "two\nlines", "'\r=1"]  # quoted, and neutralised
    pd.testing.assert_frame_equal(back, parquet.drop(columns="note"), check_dtype=False)

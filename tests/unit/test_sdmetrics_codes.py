"""SDMetrics' QualityReport is given categorical columns as codes shared by both tables: its scores are the
ones it gives on the columns as text, nulls and categories found in one table only included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation._common import quiet_warnings, sample_rows, section_rng
from evaluation.fidelity import _category_codes, _quality_report_class, sdmetrics_quality
from privacy.schema import conform_table, load_schema, read_table
from tests.conftest import DATA


def _as_text(real: pd.DataFrame, synthetic: pd.DataFrame, schema, max_rows: int, seed: int) -> dict:
    """The QualityReport on the same samples, categorical columns as text with None for null (as before)."""
    names = [n for n in schema.synthesized_columns if n in real.columns and n in synthetic.columns]
    columns = {
        n: {
            "sdtype": "categorical"
            if schema.columns[n].kind == "categorical" or schema.columns[n].values
            else "numerical"
        }
        for n in names
    }
    rng = section_rng(seed, "sdmetrics")

    def plain(df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for n in names:
            s = df[n]
            if columns[n]["sdtype"] == "numerical":
                out[n] = pd.to_numeric(s, errors="coerce").astype("float64")
            else:
                out[n] = s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else str(v))
        return pd.DataFrame(out).reset_index(drop=True)

    real_s, syn_s = plain(sample_rows(real, max_rows, rng)), plain(sample_rows(synthetic, max_rows, rng))
    report = _quality_report_class()()
    with quiet_warnings():
        report.generate({"table": real_s}, {"table": syn_s}, {"tables": {"table": {"columns": columns}}}, verbose=False)
    props = report.get_properties()
    return {"score": float(report.get_score()), **{str(r["Property"]): float(r["Score"]) for _, r in props.iterrows()}}


def test_codes_give_the_scores_of_the_text() -> None:
    schema = load_schema(DATA / "adult" / "schema.yaml")
    df = conform_table(read_table(DATA / "adult" / "adult.csv"), schema)[0].sample(4_000, random_state=1)
    real, synthetic = df.iloc[:2_000].copy(), df.iloc[2_000:].copy()
    categorical = [n for n in schema.synthesized_columns if schema.columns[n].kind == "categorical"]
    assert categorical
    # nulls in both tables, and a category the real table does not hold
    real.loc[real.index[:50], categorical[0]] = None
    synthetic.loc[synthetic.index[:80], categorical[1]] = None
    synthetic[categorical[0]] = synthetic[categorical[0]].astype(object)
    synthetic.loc[synthetic.index[100:140], categorical[0]] = "only in the synthetic table"
    got = sdmetrics_quality(real, synthetic, schema, max_rows=1_500, seed=3)
    want = _as_text(real, synthetic, schema, max_rows=1_500, seed=3)
    assert np.isclose(got["score"], want["score"], rtol=1e-12, atol=0)
    for name, value in got["properties"].items():
        assert np.isclose(value, want[name], rtol=1e-12, atol=0), name
    assert got["score"] < 1.0  # the tables differ: the comparison is not of two perfect scores


def test_codes_are_shared_by_both_tables_and_nulls_stay_null() -> None:
    real = pd.Series(["a", "b", None, "c"], dtype=object)
    synthetic = pd.Series(["c", None, "d", "a"], dtype=object)
    r, s = _category_codes(real, synthetic)
    assert np.isnan(r[2]) and np.isnan(s[1])
    assert r[0] == s[3] and r[3] == s[0]  # "a" and "c" get one code in both tables
    assert len({r[0], r[1], r[3], s[2]}) == 4  # a, b, c, d are four categories
    # values with the same text are one category, as when they were compared as text
    r, s = _category_codes(pd.Series([1, "1"], dtype=object), pd.Series(["1"], dtype=object))
    assert r[0] == r[1] == s[0]

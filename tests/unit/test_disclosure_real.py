"""Checks of a released table against real rows: exact copies and unique matches, exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from privacy.disclosure import apply_disclosure_control, real_row_checks, recode_like
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

SCHEMA = PublicSchema.from_dict(
    {
        "columns": {
            "sex": {"kind": "categorical", "values": ["F", "M"]},
            "age": {"kind": "ordinal", "min": 17, "max": 90, "hierarchy": {"band": 5}},
            "income": {"kind": "continuous", "min": 0, "max": 100000},
            "id": {"kind": "identifier", "identifier": "fake"},
        },
        "quasi_identifiers": ["sex", "age"],
    }
)

REAL = pd.DataFrame(
    {
        "sex": ["F", "F", "M", "M", "M", "F"],
        "age": [30, 30, 41, 52, 60, 77],
        "income": [1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0],
    }
)
# real QI combinations: (F,30) twice; (M,41), (M,52), (M,60), (F,77) unique


def synthetic() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": ["M", "M", "F", "F", "M"],
            "age": pd.array([41, 52, 30, 25, 60], dtype="Int64"),
            "income": [3000.0, 9999.0, 1000.0, 1000.0, 5000.5],
            "id": ["SYN-1", "SYN-2", "SYN-3", "SYN-4", "SYN-5"],
        }
    )
    # row 0: exact copy of real row 2 (and its QIs (M,41) are unique in the real data)
    # row 1: (M,52) unique in the real data, income differs -> unique match, not a copy
    # row 2: exact copy of real row 0, but (F,30) occurs twice in the real data -> copy, not unique
    # row 3: (F,25) not in the real data
    # row 4: (M,60) unique in the real data, income differs slightly -> unique match


def test_exact_copies_and_unique_matches_are_counted_exactly():
    out, report = real_row_checks(synthetic(), REAL, SCHEMA, DatasetPolicy(k=1))
    assert report.compared_columns == ["sex", "age", "income"]  # the fake id is not compared
    assert report.exact_matches == 2
    assert report.exact_match_rate == pytest.approx(2 / 5)
    assert report.unique_matches == 3
    assert report.unique_match_rate == pytest.approx(3 / 5)
    assert report.real_unique_combinations == 4
    assert not report.filtering_applied and report.removed_rows == 0
    assert len(out) == 5  # nothing removed without the policy asking for it
    assert report.released_exact_match_rate == report.exact_match_rate
    assert report.to_dict()["internal"] is True
    json.dumps(report.to_dict())


def test_matches_are_found_across_dtypes():
    real = REAL.assign(age=REAL["age"].astype("float64"), sex=REAL["sex"].astype("string"))
    _, report = real_row_checks(synthetic(), real, SCHEMA, DatasetPolicy(k=1))
    assert (report.exact_matches, report.unique_matches) == (2, 3)


def test_removal_when_the_policy_asks_for_it():
    out, report = real_row_checks(synthetic(), REAL, SCHEMA, DatasetPolicy(k=1, remove_real_matches=True))
    assert out["id"].tolist() == ["SYN-4"]  # rows 0, 1, 2 and 4 removed
    assert report.filtering_applied
    assert (report.removed_exact, report.removed_unique, report.removed_rows) == (2, 3, 4)
    assert report.resuppressed_rows == 0 and report.rows_out == 1
    assert report.released_exact_match_rate == 0.0 and report.released_unique_match_rate == 0.0
    # the rates before removal are still reported
    assert report.exact_match_rate == pytest.approx(0.4)


def test_removal_that_breaks_k_anonymity_suppresses_again():
    synth = pd.DataFrame(
        {
            "sex": ["F"] * 5 + ["M"] * 5,
            "age": [30] * 5 + [41] * 5,
            "income": [1000.0, 1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0, 15.0],
            "id": [f"S{i}" for i in range(10)],
        }
    )
    # row 0 is an exact copy of real row 0; (M,41) is unique in the real data: all five M rows match it
    out, report = real_row_checks(synth, REAL, SCHEMA, DatasetPolicy(k=5, remove_real_matches=True))
    assert report.removed_exact == 1 and report.removed_unique == 5 and report.removed_rows == 6
    assert report.resuppressed_rows == 4  # the (F,30) class fell from 5 to 4 < k
    assert len(out) == 0 and report.rows_out == 0

    out3, report3 = real_row_checks(synth, REAL, SCHEMA, DatasetPolicy(k=3, remove_real_matches=True))
    assert report3.resuppressed_rows == 0 and out3["id"].tolist() == ["S1", "S2", "S3", "S4"]
    assert report3.k_anonymity["smallest_class"] == 4


def test_no_quasi_identifiers_only_exact_copies():
    schema = PublicSchema.from_dict({"columns": dict(SCHEMA.to_dict()["columns"].items())})
    _, report = real_row_checks(synthetic(), REAL, schema, DatasetPolicy())
    assert report.exact_matches == 2
    assert report.unique_matches is None and report.unique_match_rate is None


def test_comparison_in_the_released_representation():
    """Real rows are recoded like the released table: a real 37-year-old unique in 35-39 is matched by a
    released '35-39' row even though no synthetic row was 37."""
    real = pd.DataFrame({"sex": ["F"] * 4 + ["M"], "age": [20, 21, 22, 23, 37], "income": [1.0, 2.0, 3.0, 4.0, 5.0]})
    synth = pd.DataFrame(
        {
            "sex": ["M"] * 5 + ["F"] * 5,
            "age": [35, 36, 38, 39, 35, 50, 51, 52, 53, 54],
            "income": [9.0] * 10,
            "id": [f"S{i}" for i in range(10)],
        }
    )
    released, _, dis = apply_disclosure_control(synth, SCHEMA, DatasetPolicy(k=5))
    assert released["age"].tolist() == ["35-39"] * 5 + ["50-54"] * 5
    assert recode_like(real, dis)["age"].tolist() == ["20-24"] * 4 + ["35-39"]
    _, raw = real_row_checks(synth, real, SCHEMA, DatasetPolicy(k=5))
    assert raw.unique_matches == 0  # no synthetic row is a real (sex, age) combination
    _, report = real_row_checks(released, real, SCHEMA, DatasetPolicy(k=5), disclosure=dis.to_dict())
    assert report.recoded
    assert report.unique_matches == 5  # every (M, 35-39) row reproduces the one real (M, 35-39)


def _reference_joint_ids(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The joint class ids as first written: both tables normalised, concatenated, classed."""
    from privacy.disclosure.public import _class_ids
    from privacy.disclosure.real_rows import _normalised, _text_keys

    na, nb = _normalised(a, columns), _normalised(b, columns)
    for c in columns:
        if na[c].dtype != nb[c].dtype:
            na[c], nb[c] = _text_keys(na[c]), _text_keys(nb[c])
    ids = _class_ids(pd.concat([na, nb], ignore_index=True), columns)
    return ids[: len(a)], ids[len(a) :]


def _same_partition(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether two id arrays group the rows alike (ids may be numbered differently)."""
    pairs = set(zip(x.tolist(), y.tolist(), strict=True))
    return len(pairs) == len(set(x.tolist())) == len(set(y.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_joint_codes_group_rows_as_the_first_implementation(seed: int) -> None:
    from privacy.disclosure.real_rows import _joint_codes, _joint_ids

    rng = np.random.default_rng(seed)

    def table(n: int, text_number: bool) -> pd.DataFrame:
        words = np.array(["a", "b", "1", "2.0", "c"], dtype=object)
        text = pd.Series(words[rng.integers(0, 5, n)], dtype=object)
        text[rng.random(n) < 0.1] = None
        number = pd.Series(rng.integers(0, 4, n).astype(float))
        number[rng.random(n) < 0.1] = np.nan
        return pd.DataFrame(
            {
                "text": text,
                "string": text.astype("string"),
                "category": text.astype("category"),
                "number": number,
                "ints": pd.array(rng.integers(0, 3, n), dtype="Int64"),
                "flag": rng.random(n) < 0.5,
                "when": pd.to_datetime(rng.integers(0, 3, n) * 86_400, unit="s"),
                # a column of numbers on one side and of text on the other: compared as text
                "mixed": pd.Series(rng.integers(1, 3, n)).astype(str if text_number else float),
            }
        )

    a, b = table(400, True), table(300, False)
    columns = list(a.columns)
    codes = _joint_codes(a, b, columns)
    for chosen in (columns, ["text", "mixed"], ["category", "when"], ["string"], ["ints", "flag"]):
        got, want = _joint_ids(codes, chosen, len(a)), _reference_joint_ids(a, b, chosen)
        assert _same_partition(np.concatenate(got), np.concatenate(want)), chosen
        assert np.isin(got[0], got[1]).sum() == np.isin(want[0], want[1]).sum()

"""Reading a table in batches gives what reading it whole gives: rows, proposal checks and issue counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privacy.errors import SchemaError
from privacy.schema import PublicSchema, load_schema, propose_schema, read_table, validate_table
from privacy.table_scan import scan_table
from tests.conftest import ADULT

SCHEMA = PublicSchema.from_dict(
    {
        "columns": {
            "age": {"kind": "ordinal", "min": 18, "max": 90},
            "colour": {"kind": "categorical", "values": ["red", "green"], "nullable": False},
            "income": {"kind": "continuous", "min": 0, "max": 1000},
            "visit": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31"},
            "id": {"kind": "identifier", "identifier": "fake"},
        }
    }
)


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(10, 100, n),
            "colour": rng.choice(["red", "green", "blue", None], n),
            "income": rng.uniform(-100, 1100, n).round(2),
            "visit": rng.choice(["2020-03-01", "2019-01-01", "2021-06-30", "2020-12-31"], n),
            "id": [f"p{i}" for i in range(n)],
        }
    )


def _as_dicts(issues) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted((i.column, i.code, i.severity, i.count, i.message.split("(e.g.")[0]) for i in issues)


def test_issue_counts_over_many_batches_equal_those_of_the_whole_table(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _table(20_000).to_csv(path, index=False)
    scan = scan_table(path, SCHEMA, batch_bytes=16 << 10)  # about 40 batches
    whole = validate_table(read_table(path), SCHEMA)
    assert scan.n_rows == 20_000
    assert {i.code for i in whole} >= {"out_of_bounds", "undeclared_category", "unexpected_null"}
    assert _as_dicts(scan.issues) == _as_dicts(whole)


def test_parquet_in_batches_matches_the_whole_table(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    _table(20_000, seed=1).to_parquet(path, row_group_size=3_000)
    scan = scan_table(path, SCHEMA, batch_bytes=16 << 10)
    assert scan.n_rows == 20_000
    assert _as_dicts(scan.issues) == _as_dicts(validate_table(read_table(path), SCHEMA))


def test_adult_read_in_batches_validates_as_when_read_whole() -> None:
    schema = load_schema(ADULT.parent / "schema.yaml")
    scan = scan_table(ADULT, schema, batch_bytes=256 << 10)
    table = read_table(ADULT)
    assert scan.n_rows == len(table)
    assert _as_dicts(scan.issues) == _as_dicts(validate_table(table, schema))


def test_without_a_schema_the_proposal_comes_from_the_first_batch_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    table = pd.DataFrame({"x": np.arange(10_000), "c": ["a", "b"] * 5_000})
    table.to_csv(path, index=False)
    scan = scan_table(path, batch_bytes=8 << 10)
    assert scan.n_rows == 10_000 and scan.proposed_from_rows is not None and scan.proposed_from_rows < 10_000
    assert scan.schema == propose_schema(read_table(path).head(scan.proposed_from_rows))
    codes = {i.code for i in scan.issues}
    assert "proposed_from_first_rows" in codes and "out_of_bounds" in codes  # x grows past the first batch's max
    small = scan_table(path)  # one batch: the proposal is the whole table's
    assert small.proposed_from_rows == 10_000 and small.schema == propose_schema(read_table(path))
    assert "proposed_from_first_rows" not in {i.code for i in small.issues}


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"a,b\n", "no data rows"),
        (b"a,,c\n1,2,3\n", "without a header name"),
        (b"a,a\n1,2\n", "duplicate column names"),
        (b"a,b\n1,\xff\n", "not UTF-8"),
        (b"a,b\n1,2\n3,inf\n", r"infinite values in numeric columns: b \(first at data row 2\)"),
    ],
)
def test_unusable_files_are_refused_as_read_table_refuses_them(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(content)
    with pytest.raises(SchemaError, match=message):
        read_table(p)
    with pytest.raises(SchemaError, match=message):
        scan_table(p)


def test_an_infinite_value_in_a_later_batch_is_located_in_the_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n" + "1,2.5\n" * 5_000 + "1,-inf\n")
    with pytest.raises(SchemaError, match=r"b \(first at data row 5001\)"):
        scan_table(p, batch_bytes=4 << 10)


def test_text_in_a_later_batch_of_a_numeric_column_is_refused_naming_the_value(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("age,colour,income,visit,id\n" + "30,red,5.5,2020-03-01,a\n" * 5_000 + "thirty,red,5,2020-03-01,b\n")
    with pytest.raises(SchemaError, match=r"could not read t.csv as CSV: .*thirty"):
        scan_table(p, SCHEMA, batch_bytes=4 << 10)

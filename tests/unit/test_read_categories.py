"""`read_table(categories=True)` reads a CSV's text columns as categoricals, and validation,
conformance, encoding and the written CSV are what they are from the plain read: on every real table
in tests/data and a dirtied copy of each (undeclared, formula-like, out-of-bounds, unparseable and null
values), and on tables with null tokens, mixed kinds and malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privacy.encoding import DomainEncoder
from privacy.errors import SchemaError
from privacy.schema import PublicSchema, conform_table, enforce_schema, load_schema, read_table, validate_table
from tests.unit.io_fingerprints import DATA, NAMES, TABLES, dirty, frame_fingerprint


def _csv(name: str, folder: Path) -> Path:
    path = DATA / TABLES[name.removesuffix("-dirty")]
    if not name.endswith("-dirty"):
        return path
    out = folder / f"{name}.csv"
    dirty(read_table(path)).to_csv(out, index=False)
    return out


def _issues(df: pd.DataFrame, schema: PublicSchema) -> list[list[object]]:
    return [[i.column, i.code, i.message, i.severity, i.count] for i in validate_table(df, schema)]


def _same_values(plain: pd.DataFrame, cats: pd.DataFrame) -> None:
    assert list(plain.columns) == list(cats.columns)
    for c in plain.columns:
        if isinstance(cats[c].dtype, pd.CategoricalDtype):
            assert plain[c].dtype == object
            values = cats[c].astype(object)
            assert values.where(values.notna(), None).tolist() == plain[c].where(plain[c].notna(), None).tolist()
        else:
            pd.testing.assert_series_equal(plain[c], cats[c])


@pytest.mark.parametrize("name", NAMES)
def test_categories_read_conforms_as_the_plain_read(name: str, tmp_path: Path) -> None:
    schema = load_schema(DATA / TABLES[name.removesuffix("-dirty")].split("/")[0] / "schema.yaml")
    path = _csv(name, tmp_path)
    plain, cats = read_table(path), read_table(path, categories=True)
    text = [c for c in plain.columns if pd.api.types.infer_dtype(plain[c], skipna=True) == "string"]
    assert all(isinstance(cats[c].dtype, pd.CategoricalDtype) for c in text)
    _same_values(plain, cats)
    assert _issues(cats, schema) == _issues(plain, schema)
    conformed, report = conform_table(plain, schema, strict=False)
    conformed_c, report_c = conform_table(cats, schema, strict=False)
    assert frame_fingerprint(conformed_c) == frame_fingerprint(conformed)
    assert report_c.to_dict() == report.to_dict()
    encoder = DomainEncoder(schema)
    assert np.array_equal(encoder.encode(conformed_c), encoder.encode(conformed))


def _schema(columns: dict[str, dict[str, object]], **extra: object) -> PublicSchema:
    return PublicSchema.model_validate({"columns": columns, **extra})


def test_null_tokens_numbers_and_dates_in_text_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "colour,size,when,note,grade,id\n"
        "red,3,2020-01-02,x,A,1\n"
        "blue,missing,02/03/2021,y,unknown,2\n"
        "green,7,bad date,,B,3\n"
        "purple,-,2022-05-06,z,C,4\n"
        ",5,,w,A,5\n"
    )
    schema = _schema(
        {
            "colour": {"kind": "categorical", "values": ["red", "blue", "green"], "nullable": True},
            "size": {"kind": "ordinal", "min": 0, "max": 6, "nullable": True, "null_tokens": ["missing", "-"]},
            "when": {"kind": "datetime", "min": "2019-01-01", "max": "2021-12-31", "nullable": True},
            "note": {"kind": "categorical", "nullable": True},
            "grade": {"kind": "categorical", "values": ["A", "B"], "nullable": True, "null_tokens": ["unknown"]},
            "id": {"kind": "identifier"},
        }
    )
    plain, cats = read_table(path), read_table(path, categories=True)
    assert isinstance(cats["colour"].dtype, pd.CategoricalDtype)
    _same_values(plain, cats)
    assert _issues(cats, schema) == _issues(plain, schema)
    conformed, report = conform_table(plain, schema, strict=False)
    conformed_c, report_c = conform_table(cats, schema, strict=False)
    assert frame_fingerprint(conformed_c) == frame_fingerprint(conformed)
    assert report_c.to_dict() == report.to_dict()
    assert conformed_c["colour"].tolist()[:3] == ["red", "blue", "green"]
    assert conformed_c["size"].isna().tolist() == [False, True, False, True, False]


def test_text_in_a_number_column_is_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("n,c\n1,a\ntwo,b\n3,a\n")
    schema = _schema({"n": {"kind": "continuous", "min": 0, "max": 9}, "c": {"kind": "categorical", "values": ["a"]}})
    messages = []
    for cats in (False, True):
        with pytest.raises(SchemaError) as err:
            conform_table(read_table(path, categories=cats), schema)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "'two'" in messages[1]


def test_category_labels_that_look_like_numbers_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,True,x\nz,False,y\n2,True,x\n1.0,,\n")
    schema = _schema(
        {
            "a": {"kind": "categorical", "values": [1, 2, "z"], "nullable": True},
            "b": {"kind": "categorical", "values": [True, False], "nullable": True},
            "c": {"kind": "categorical", "values": ["x"], "nullable": True},
        }
    )
    plain, cats = read_table(path), read_table(path, categories=True)
    _same_values(plain, cats)
    assert _issues(cats, schema) == _issues(plain, schema)
    conformed, report = conform_table(plain, schema, strict=False)
    conformed_c, report_c = conform_table(cats, schema, strict=False)
    assert frame_fingerprint(conformed_c) == frame_fingerprint(conformed)
    assert report_c.to_dict() == report.to_dict()


def test_many_distinct_texts_come_as_categories_too(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    n = 70_000  # more distinct values than arrow encodes while parsing
    pd.DataFrame({"k": [f"id-{i}" for i in range(n)], "v": ["a", "b"] * (n // 2)}).to_csv(path, index=False)
    plain, cats = read_table(path), read_table(path, categories=True)
    assert isinstance(cats["k"].dtype, pd.CategoricalDtype)
    _same_values(plain, cats)


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3\n",  # a short row
        "a,a\n1,2\n",  # duplicate names
        "a,\n1,2\n",  # a column without a name
        "a,b\n",  # no rows
        "x,y\n1,inf\n",  # an infinite number
        "\ufeffa,b\nx,1\n",  # a byte-order mark is not part of the first name
    ],
)
def test_malformed_input_same_outcome(text: str, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    outcomes = []
    for cats in (False, True):
        try:
            df = read_table(path, categories=cats)
            outcomes.append(("ok", list(df.columns), df.astype(object).where(df.notna(), None).values.tolist()))
        except SchemaError as exc:
            outcomes.append(("error", str(exc), exc.field))
    assert outcomes[0] == outcomes[1]


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("a,b\ncaf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(SchemaError, match="not UTF-8"):
        read_table(path, categories=True)


def test_decoded_categories_enforce_as_before() -> None:
    schema = _schema(
        {
            "c": {"kind": "categorical", "values": ["x", "y", "z"], "nullable": False},
            "n": {"kind": "categorical", "values": [1, 2, 3], "nullable": True},
            "b": {"kind": "categorical", "values": [True, False], "nullable": False},
        }
    )
    encoder = DomainEncoder(schema)
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, size, 500) for size in encoder.sizes], axis=1)
    decoded = encoder.decode(codes, np.random.default_rng(1))
    plain = decoded.astype(object).where(decoded.notna(), None)
    a, b = enforce_schema(decoded, schema, seed=3), enforce_schema(plain, schema, seed=3)
    assert frame_fingerprint(a) == frame_fingerprint(b)
    assert np.array_equal(encoder.encode(decoded), encoder.encode(plain))


def _block_crossing_table(kind: str, rows: int = 150_000) -> pd.DataFrame:
    """More than one of arrow's 1 MiB blocks, with what the first block's types cannot tell."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"id": np.arange(rows), "word": rng.choice(["a", "b", "c"], rows)})
    late = np.arange(rows) > rows - 100  # only in the last block
    if kind == "decimal after integers":
        df["x"] = np.where(late, 0.5, 1.0).astype(object)
        df.loc[~late, "x"] = 1
    elif kind == "values after nulls":
        df["x"] = pd.Series(np.where(late, "7", None), dtype=object)
    elif kind == "text after numbers":
        df["x"] = np.where(late, "seven", "7")
    elif kind == "many distinct texts":
        df["x"] = [f"t{i}" for i in rng.permutation(rows)]
        df["y"] = [f"u{i % 70_000}" for i in range(rows)]
    elif kind == "dates then a non-date":
        df["x"] = np.where(late, "soon", "2020-01-02")
    return df


@pytest.mark.parametrize(
    "kind",
    [
        "decimal after integers",
        "values after nulls",
        "text after numbers",
        "many distinct texts",
        "dates then a non-date",
    ],
)
def test_the_first_blocks_types_never_change_what_is_read(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _block_crossing_table(kind).to_csv(path, index=False)
    assert path.stat().st_size > 1 << 20
    plain, cats = read_table(path), read_table(path, categories=True)  # pandas' read infers over the whole file
    _same_values(plain, cats)
    for c in cats.columns:
        if isinstance(cats[c].dtype, pd.CategoricalDtype):  # categories in order of first appearance
            seen = plain[c].dropna().drop_duplicates().tolist()
            assert cats[c].cat.categories.tolist() == seen, c

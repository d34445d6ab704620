"""`enforce_schema(..., categories=True)` and `conform_table(..., categories=True)`: declared text domains as
categoricals of the declared values, the same cells (drawn with the same random numbers) as the default
"string" columns, the same CSV bytes and codes, and the same fit of the methods that take them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.bundle import safe_csv_bytes
from privacy.encoding import DomainEncoder
from privacy.schema import PublicSchema, conform_table, enforce_schema, load_schema, read_table
from tests.unit.io_fingerprints import DATA, EXPECTED, NAMES, TABLES, _sha, dirty


def _schema(columns: dict[str, Any]) -> PublicSchema:
    return PublicSchema.model_validate({"columns": columns})


def _same_cells(plain: pd.DataFrame, cats: pd.DataFrame) -> list[str]:
    """The columns `cats` holds as categoricals; every other column is identical to `plain`'s."""
    assert list(plain.columns) == list(cats.columns)
    categorical = []
    for c in plain.columns:
        if isinstance(cats[c].dtype, pd.CategoricalDtype):
            categorical.append(str(c))
            assert str(plain[c].dtype) == "string"
            pd.testing.assert_series_equal(cats[c].astype("string"), plain[c])
        else:
            pd.testing.assert_series_equal(cats[c], plain[c])
    return categorical


def _text_domains(df: pd.DataFrame, schema: PublicSchema) -> list[str]:
    texts = [n for n, s in schema.columns.items() if s.values and all(isinstance(v, str) for v in s.values)]
    return [str(n) for n in df.columns if n in texts]


@pytest.mark.parametrize("name", list(TABLES))
def test_the_tables_enforce_and_write_as_before(name: str) -> None:
    schema = load_schema(DATA / name / "schema.yaml")
    encoder = DomainEncoder(schema)
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, size, 2_000) for size in encoder.sizes], axis=1)
    decoded = encoder.decode(codes, np.random.default_rng(1))
    plain = enforce_schema(decoded, schema, seed=2)
    cats = enforce_schema(decoded, schema, seed=2, categories=True)
    categorical = _same_cells(plain, cats)
    assert categorical == _text_domains(plain, schema)
    for c in categorical:
        assert list(cats[c].cat.categories) == schema.columns[c].values
    assert safe_csv_bytes(cats) == safe_csv_bytes(plain)


@pytest.mark.parametrize("name", list(TABLES))
def test_the_pinned_enforced_csv(name: str) -> None:
    """The fingerprinted sample of tests/unit/io_fingerprints.py, enforced with categories: the pinned CSV."""
    schema = load_schema(DATA / name / "schema.yaml")
    conformed, _ = conform_table(read_table(DATA / TABLES[name]), schema, strict=False)
    encoder = DomainEncoder(schema)
    codes = encoder.encode(conformed)
    decoded = encoder.decode(codes[np.random.default_rng(0).permutation(len(codes))], np.random.default_rng(1))
    enforced = enforce_schema(decoded, schema, seed=2, categories=True)
    assert _sha(safe_csv_bytes(enforced)) == json.loads(EXPECTED.read_text())[name]["enforced_csv"]


def test_fills_nulls_and_awkward_labels_as_before() -> None:
    schema = _schema(
        {
            "required": {
                "kind": "categorical",
                "values": ["=x", "a,b", 'q"q', "two\nlines", "", "-1"],
                "nullable": False,
            },
            "optional": {"kind": "categorical", "values": ["@y", "plain", "unused"], "nullable": True},
            "numbers": {"kind": "categorical", "values": [1, 2, 3], "nullable": False},
            "mixed": {"kind": "categorical", "values": ["a", 2, "b"], "nullable": True},
            "empty": {"kind": "categorical", "values": ["p", "q"], "nullable": False},
            "n": {"kind": "continuous", "min": 0, "max": 9},
        }
    )
    n = 3_000
    rng = np.random.default_rng(4)
    required = np.array([*schema.columns["required"].values, "undeclared", None], dtype=object)
    raw = pd.DataFrame(
        {
            "required": required[rng.integers(0, len(required), n)],
            "optional": np.array(["@y", "plain", None, "nope"], dtype=object)[rng.integers(0, 4, n)],
            "numbers": np.array([1, 2, None], dtype=object)[rng.integers(0, 3, n)],
            "mixed": np.array(["a", 2, "b", None], dtype=object)[rng.integers(0, 4, n)],
            "empty": [None] * n,  # nothing to draw from: the declared domain
            "n": rng.integers(0, 10, n),
        }
    )
    plain = enforce_schema(raw, schema, seed=9)
    cats = enforce_schema(raw, schema, seed=9, categories=True)
    assert _same_cells(plain, cats) == ["required", "optional"]
    assert not cats["required"].isna().any()
    assert cats["optional"].isna().any()
    assert safe_csv_bytes(cats) == safe_csv_bytes(plain)


@pytest.mark.parametrize("name", NAMES)
def test_conform_with_categories_as_before(name: str, tmp_path: Path) -> None:
    """`conform_table(categories=True)`: the same cells, report and codes as the default."""
    folder = DATA / TABLES[name.removesuffix("-dirty")].split("/")[0]
    schema = load_schema(folder / "schema.yaml")
    raw = read_table(DATA / TABLES[name.removesuffix("-dirty")])
    if name.endswith("-dirty"):
        path = tmp_path / "dirty.csv"
        dirty(raw).to_csv(path, index=False)
        raw = read_table(path, categories=True)
    plain, plain_report = conform_table(raw, schema, strict=False)
    cats, cats_report = conform_table(raw, schema, strict=False, categories=True)
    assert _same_cells(plain, cats) == _text_domains(plain, schema)
    assert cats_report.to_dict() == plain_report.to_dict()
    encoder = DomainEncoder(schema)
    assert np.array_equal(encoder.encode(cats), encoder.encode(plain))


@pytest.mark.parametrize("method", ["mst", "aim"])
def test_native_methods_fit_categories_as_before(method: str) -> None:
    from privacy.budget import PrivacyCost, to_fraction
    from privacy.synthesizers import create_synthesizer, synthesizer_class

    assert synthesizer_class(method).takes_categories
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    raw = read_table(DATA / TABLES["penguins"], categories=True)
    samples = []
    for categories in (False, True):
        table, _ = conform_table(raw, schema, categories=categories)
        synthesizer = create_synthesizer(method, seed=7)
        synthesizer.fit(table, schema, PrivacyCost(to_fraction(1.0), to_fraction(1e-9)))
        samples.append(synthesizer.sample(300))
    pd.testing.assert_frame_equal(samples[0], samples[1])


@pytest.mark.parametrize(
    "column",
    [
        "declared",  # already the declared categorical: kept as it is
        "declared with nulls",  # nullable: kept as it is
        "nulls, not nullable",  # filled from the output's values
        "other order",
        "ordered",
        "undeclared category",
    ],
)
def test_a_column_already_declared_is_kept_and_others_conformed(column: str) -> None:
    values = ["=a", "b", "c"]
    nullable = column == "declared with nulls"
    schema = _schema({"x": {"kind": "categorical", "values": values, "nullable": nullable}})
    codes = np.random.default_rng(4).integers(0, 3, 200)
    if column in ("declared with nulls", "nulls, not nullable"):
        codes[::7] = -1
    categories = {"other order": ["c", "b", "=a"], "undeclared category": ["=a", "b", "z"]}.get(column, values)
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype=object), ordered=column == "ordered")
    df = pd.DataFrame({"x": pd.Categorical.from_codes(codes, dtype=dtype)})
    cats = enforce_schema(df, schema, seed=5, categories=True)
    plain = enforce_schema(df.astype({"x": object}), schema, seed=5)
    assert _same_cells(plain, cats) == ["x"]
    assert list(cats["x"].cat.categories) == values and not cats["x"].cat.ordered

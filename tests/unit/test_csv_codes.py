"""safe_csv_bytes writes a categorical column from its codes, formatting and neutralising each category
once: a table of categoricals is written byte for byte as the same table of plain object columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.safe_csv import _csv_by_distinct_values, safe_csv_bytes
from tests.unit.test_csv_distinct import per_cell

# categories a spreadsheet would run (neutralised), plain numbers as text (kept), and what CSV quotes
TEXTS = ["=1+2", "@x", "-3", "+4.5", "-x", "|cmd", "%0A", "\t=1", "plain", 'say "hi"', "a,b", "two\nlines", "", " "]
UNUSED = ["=never", "never,seen"]


def tables(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(categoricals, objects): the same cells, as categorical columns (with unused categories) and as
    plain object columns, next to an integer column, a nullable integer column and a float column."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(np.array([*TEXTS, None], dtype=object), size=(n, 3))
    objects = pd.DataFrame(
        {
            "=label": cells[:, 0],
            "n": rng.integers(-5, 5, n),
            "kind": cells[:, 1],
            "m": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 40, n)), dtype="Int64"),
            "x": rng.normal(size=n),
            "last": cells[:, 2],
        }
    )
    categoricals = objects.copy()
    for name in ("=label", "kind", "last"):
        categories = [*rng.permutation(np.array(TEXTS, dtype=object)).tolist(), *UNUSED]
        categoricals[name] = pd.Categorical(objects[name], categories=categories)
    return categoricals, objects


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (7, 1), (500, 2), (3000, 3)])
def test_categorical_and_object_columns_write_the_same_bytes(n: int, seed: int) -> None:
    categoricals, objects = tables(n, seed)
    names = pd.Index(["'=label", "n", "kind", "m", "x", "last"], dtype=object)
    if n > 1:  # written from the codes, not by pandas cell by cell
        assert _csv_by_distinct_values(categoricals, names) is not None
    written = safe_csv_bytes(categoricals)
    assert written == safe_csv_bytes(objects)
    assert written == per_cell(objects)  # pandas writing every neutralised cell


@pytest.mark.parametrize("block", [1, 7, 64])
def test_the_rows_written_block_by_block_are_the_whole_tables(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    categoricals, objects = tables(300, 4)
    whole = safe_csv_bytes(categoricals)
    monkeypatch.setattr("core.safe_csv._BLOCK_ROWS", block)
    assert safe_csv_bytes(categoricals) == whole
    assert safe_csv_bytes(objects) == whole
    many = objects.assign(n=np.arange(300) * 7919)  # integers with more distinct values than joined texts
    monkeypatch.setattr("core.safe_csv._JOINED_TEXTS", 16)
    assert safe_csv_bytes(many) == per_cell(many)
    assert safe_csv_bytes(many[["kind", "n"]]) == per_cell(many[["kind", "n"]])


def test_neutralised_categories_and_nulls_are_written_as_text() -> None:
    df = pd.DataFrame(
        {
            "a": pd.Categorical(["=1+2", None, "@x", "-3", "a,b"], categories=["-3", "@x", "=1+2", "a,b", "=unused"]),
            "b": pd.Categorical(['q"', "x", None, "x", "two\nlines"]),
        }
    )
    assert safe_csv_bytes(df) == b'a,b\r\n\'=1+2,"q"""\r\n,x\r\n\'@x,\r\n-3,x\r\n"a,b","two\nlines"\r\n'


def test_an_all_null_categorical_and_one_of_numbers_write_as_their_object_columns() -> None:
    n = 20
    categoricals = pd.DataFrame(
        {
            "none": pd.Categorical([None] * n, categories=["=a", "b"]),
            "ints": pd.Categorical(np.arange(n) % 3 - 1),
            "text": pd.Categorical(["=z", "y"] * (n // 2)),
        }
    )
    objects = categoricals.astype(object)
    assert safe_csv_bytes(categoricals) == safe_csv_bytes(objects)


def test_a_table_of_few_texts_is_written_as_one_joined_field() -> None:
    df = pd.DataFrame({"a": ["=x", "y", None, "q,r"] * 25, "b": pd.Categorical(["-1", "@z", "w", None] * 25)})
    assert safe_csv_bytes(df) == per_cell(df)
    assert safe_csv_bytes(df).splitlines()[1:5] == [b"'=x,-1", b"y,'@z", b",w", b'"q,r",']

"""Spreadsheet-safe CSV: the bytes of a table whose text cells cannot start a formula (OWASP CSV
injection), written by pandas' rules (number formatting, quoting, empty cells for nulls, CRLF line
ends) but each distinct value of a column formatted once and the rows joined by pyarrow.

Apart from the bundle (`core.bundle`, which signs and re-exports these), so that writing a CSV loads no
cryptography.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privacy._values import factorize

__all__ = ["safe_csv_bytes", "write_safe_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; any other is kept.

    A label such as `-1` or `+3.5` is a plain number to a spreadsheet, not a formula: it stays as it
    is, so that the CSV reads back as the Parquet file does.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _neutralised(s: pd.Series) -> pd.Series:
    """`_neutralise` of every cell; for a column of text (and nulls), once per distinct text."""
    if pd.api.types.infer_dtype(s, skipna=True) != "string":  # mixed kinds: as `map` types its result
        return s.map(_neutralise)
    codes, uniques = factorize(s)
    fixed = [_neutralise(u) for u in uniques]
    changed = np.flatnonzero([f is not u for f, u in zip(fixed, uniques, strict=True)])
    if not changed.size:
        return s
    rows = np.isin(codes, changed)
    out = s.copy() if s.dtype != object else s.astype(object)
    out[rows] = np.array(fixed, dtype=object)[codes[rows]]
    return out


def safe_csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV whose text cells cannot start a spreadsheet formula (OWASP CSV injection).

    Text cells beginning with = + - @ tab CR | % get a leading apostrophe, unless the whole cell
    is a plain number (a category labelled `-1`). Numeric columns are untouched, so negative
    numbers stay numbers.
    """
    return b"".join(_safe_csv_chunks(df))


def write_safe_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write `safe_csv_bytes(df)` to the file at `path`, a block of rows at a time (the whole text is
    never held in memory at once)."""
    with open(path, "wb") as fh:
        for chunk in _safe_csv_chunks(df):
            fh.write(chunk)


def _safe_csv_chunks(df: pd.DataFrame) -> Iterator[bytes | memoryview]:
    """The bytes of `safe_csv_bytes(df)`, in pieces."""
    names = pd.Index([_neutralise(str(c)) for c in df.columns], dtype=object)
    fast = _csv_chunks_by_distinct_values(df, names)
    if fast is not None:
        yield from fast
        return
    columns: dict[int, pd.Series] = {}
    for j in range(len(df.columns)):
        s = df.iloc[:, j]
        columns[j] = s if _is_number_or_date(s) else _neutralised(s)
    out = pd.DataFrame(columns, index=df.index)
    out.columns = names
    # CRLF line ends (RFC 4180): a cell holding a carriage return or a line feed is then quoted
    yield out.to_csv(**_CSV_OPTIONS).encode("utf-8")


_CSV_OPTIONS: dict[str, Any] = {"index": False, "lineterminator": "\r\n"}


def _is_number_or_date(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s))


def _csv_by_distinct_values(df: pd.DataFrame, names: pd.Index) -> bytes | None:
    """`_csv_chunks_by_distinct_values` joined."""
    chunks = _csv_chunks_by_distinct_values(df, names)
    return None if chunks is None else b"".join(chunks)


def _csv_chunks_by_distinct_values(df: pd.DataFrame, names: pd.Index) -> Iterator[bytes | memoryview] | None:
    """What `safe_csv_bytes` writes, formatting and neutralising each distinct value of a column once.

    Each column's distinct values (a categorical column's categories, read from its codes) are
    neutralised and written by pandas itself (next to a constant second column, so that a row of one
    empty cell is not quoted) and the fields are cut out of those lines; runs of neighbouring columns
    with few distinct values are joined into one field per combination of their values, and pyarrow
    spreads the fields to the rows and joins them. None when that could differ from pandas writing the
    whole table: fewer than two columns, no rows, values pandas takes as one but writes apart
    (`_one_text_per_value`), a text column holding other values than text, or a field holding the
    line end cut at.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(df.columns) < 2 or len(df) == 0:
        return None
    fields: list[_Field | Any] = []
    for j in range(len(df.columns)):
        field = _field(df.iloc[:, j])
        if field is None:
            return None
        fields.append(field)
    parts = _joined_runs(fields, min(_JOINED_TEXTS, len(df)))
    last = parts[-1]
    if isinstance(last, _Field):  # the line end goes into the last field's texts
        parts[-1] = _Field(last.codes, [t + "\r\n" for t in last.texts])
    else:
        parts[-1] = pc.binary_join_element_wise(last, _text("\r\n"), _text(""))
    dictionaries = [pa.array(p.texts, type=pa.large_string()) if isinstance(p, _Field) else None for p in parts]
    header = df.iloc[:0].set_axis(names, axis=1).to_csv(**_CSV_OPTIONS).encode("utf-8")
    return _csv_blocks(header, parts, dictionaries, len(df))


def _csv_blocks(header: bytes, parts: list[_Field | Any], dictionaries: list[Any], rows: int) -> Iterator[memoryview]:
    """The header, then the lines of a block of rows at a time: its fields and lines are small and their
    memory reused. Each piece is a view of the block's arrow buffer (which it keeps alive)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    yield memoryview(header)
    for start in range(0, rows, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, rows)
        arrays = [
            pa.DictionaryArray.from_arrays(pa.array(p.codes[start:stop]), d).dictionary_decode()
            if isinstance(p, _Field)
            else p.slice(start, stop - start)
            for p, d in zip(parts, dictionaries, strict=True)
        ]
        lines = pc.binary_join_element_wise(*arrays, _text(",")) if len(arrays) > 1 else arrays[0]
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
        yield memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


_CUT = ",0\r\n"
_JOINED_TEXTS = 1 << 14  # at most this many combinations of values in a field of joined columns
_BLOCK_ROWS = 1 << 15


def _text(value: str) -> Any:
    import pyarrow as pa

    return pa.scalar(value, pa.large_string())


class _Field:
    """A column's (or a run of columns') CSV text: each row's index into `texts`."""

    __slots__ = ("codes", "texts")

    def __init__(self, codes: np.ndarray, texts: list[str]) -> None:
        self.codes = codes
        self.texts = texts


def _field(column: pd.Series) -> _Field | Any | None:
    """The column's CSV text: a `_Field` of its distinct values, a pyarrow array of its cells (integers
    with many distinct values), or None when pandas could write it otherwise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if _fits_int64(column.dtype):  # pandas writes str(int): arrow's cast, nulls empty
        null = column.isna().to_numpy()
        ints = column.to_numpy(dtype=np.int64, na_value=0)
        codes, uniques = _int_codes(ints)
        if len(uniques) > _JOINED_TEXTS:
            return pc.fill_null(pc.cast(pa.array(ints, mask=null), pa.large_string()), _text(""))
        texts = pc.cast(pa.array(uniques), pa.large_string()).to_pylist()
        return _Field(np.where(null, len(uniques), codes).astype(np.int64), [*texts, ""])
    if isinstance(column.dtype, pd.CategoricalDtype):
        # the categories are the distinct values, read once; unused ones are written and never taken
        categories = column.cat.categories
        if pd.api.types.infer_dtype(categories, skipna=True) != "string":
            return None
        codes = column.cat.codes.to_numpy()
        distinct = pd.Series(np.asarray(categories, dtype=object)).map(_neutralise)
        return _cut_field(codes, distinct)
    text = not _is_number_or_date(column)
    if text and pd.api.types.infer_dtype(column, skipna=True) != "string":
        return None
    if not _one_text_per_value(column):
        return None
    codes, uniques = factorize(column)
    distinct = column.iloc[_first_rows(codes, len(uniques))].reset_index(drop=True)
    if text:
        distinct = distinct.map(_neutralise)
    return _cut_field(codes, distinct)


def _int_codes(ints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each integer's index into the distinct integers (as `pd.factorize`, in ascending order): counted
    over their range when it is narrow, no hashing."""
    if not ints.size:
        return pd.factorize(ints)
    lo, hi = int(ints.min()), int(ints.max())
    if hi - lo >= _DENSE_INTS:
        return pd.factorize(ints)
    offsets = ints - lo
    present = np.flatnonzero(np.bincount(offsets, minlength=hi - lo + 1))
    lookup = np.zeros(hi - lo + 1, dtype=np.int64)
    lookup[present] = np.arange(present.size)
    return lookup[offsets], present + lo


_DENSE_INTS = 1 << 22  # integers spanning fewer values than this are coded by counting (a count of each)


def _cut_field(codes: np.ndarray, distinct: pd.Series) -> _Field | None:
    """The field of a column whose cells are `distinct.take(codes)` (-1 for a null)."""
    lines = pd.DataFrame({"v": distinct, "z": 0}).to_csv(header=False, **_CSV_OPTIONS)
    cut = lines.split(_CUT)
    if len(cut) != len(distinct) + 1 or cut[-1] != "":
        return None
    texts = [*cut[:-1], ""]  # "": how pandas writes a null
    return _Field(np.where(codes < 0, len(distinct), codes).astype(np.int64), texts)


def _joined_runs(fields: list[_Field | Any], most: int) -> list[_Field | Any]:
    """Neighbouring fields joined (with commas) into one field per combination of their texts, while
    there are at most `most` combinations."""
    out: list[_Field | Any] = []
    for field in fields:
        prev = out[-1] if out else None
        if isinstance(field, _Field) and isinstance(prev, _Field) and len(prev.texts) * len(field.texts) <= most:
            k = len(field.texts)
            texts = [f"{a},{b}" for a in prev.texts for b in field.texts]
            out[-1] = _Field(prev.codes * k + field.codes, texts)
        else:
            out.append(field)
    return out


def _fits_int64(dtype: Any) -> bool:
    if not pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    return not (
        pd.api.types.is_unsigned_integer_dtype(dtype) and np.dtype(getattr(dtype, "numpy_dtype", dtype)).itemsize == 8
    )


def _one_text_per_value(column: pd.Series) -> bool:
    """Whether values pandas takes as one (True and 1, 1 and 1.0, 0.0 and -0.0) are also written alike."""
    if column.dtype == object:
        return pd.api.types.infer_dtype(column, skipna=True) in ("string", "boolean", "integer", "empty")
    if pd.api.types.is_float_dtype(column.dtype):
        x = column.to_numpy(dtype=float, na_value=np.nan)
        return not bool(np.any((x == 0) & np.signbit(x)))
    return True


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each of the n distinct values of a factorization."""
    first = np.full(n, -1, dtype=np.int64)
    seen = codes >= 0
    rows = np.flatnonzero(seen)[::-1]
    first[codes[rows]] = rows
    return first

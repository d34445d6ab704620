"""Reading a registered table from CSV or Parquet, with the checks an upload must pass.

UTF-8 text, usable column names, no infinite numbers; `NA_VALUES` are the
spellings of a missing cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import SchemaError

# ----------------------------------------------------------------------------------
# reading tables
# ----------------------------------------------------------------------------------

NA_VALUES = ["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


def read_table(path: str | Path, *, max_rows: int | None = None, categories: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame with a clear error on bad input.

    CSV is parsed with pyarrow; "?" and the usual NA spellings are nulls. Refused
    with a SchemaError that says what to change: an empty file, text that is not
    UTF-8, duplicate or missing column names, list/struct/binary columns
    (Parquet), and infinite values in a numeric column.

    With `categories`, a CSV's text columns come as pandas categoricals of the same
    strings (arrow's dictionary encoding: each distinct text is made a Python string
    once, not once per cell); everything else is as without. `conform_table` and
    `validate_table` take such a frame as they take the plain one.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    parquet = suffix in (".parquet", ".pq")
    if p.exists() and p.stat().st_size == 0:
        raise SchemaError(
            f"{p.name} has no data rows (the file is empty); upload a table with a header and rows", field="file"
        )
    try:
        if parquet:
            df = _read_parquet(p)
        else:
            _check_utf8(p)
            df = (
                _read_csv_categories(p)
                if categories
                else pd.read_csv(p, na_values=NA_VALUES, keep_default_na=True, engine="pyarrow")
            )
    except FileNotFoundError as exc:
        raise SchemaError(f"file not found: {p}", field="file") from exc
    except SchemaError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for malformed input
        raise SchemaError(
            f"could not read {p.name} as {'Parquet' if parquet else 'CSV'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
            "Upload a UTF-8 CSV with a header row, or a Parquet file.",
            field="file",
        ) from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise SchemaError(
            f"{p.name} has no data rows (shape {df.shape[0]} x {df.shape[1]}); upload a table with a header and rows",
            field="file",
        )
    _check_column_names(p.name, [str(c) for c in df.columns])
    _check_finite(p.name, df)
    if max_rows is not None:
        df = df.head(max_rows)
    return df


def _read_csv_categories(p: Path) -> pd.DataFrame:
    """`pd.read_csv(p, na_values=NA_VALUES, keep_default_na=True, engine="pyarrow")` (the same parser
    options, nulls and types), with the text columns dictionary-encoded: pandas categoricals."""
    import pyarrow as pa
    import pyarrow.csv as pv
    from pandas._libs.parsers import STR_NA_VALUES

    nulls = sorted(set(NA_VALUES) | STR_NA_VALUES)
    read_options = pv.ReadOptions(autogenerate_column_names=False, skip_rows=0, encoding="utf-8")
    parse_options = pv.ParseOptions(delimiter=",", quote_char='"', ignore_empty_lines=True)

    def convert_options(types: dict[str, Any] | None = None) -> Any:
        return pv.ConvertOptions(
            column_types=types,
            null_values=nulls,
            strings_can_be_null=True,
            auto_dict_encode=True,
            auto_dict_max_cardinality=_MAX_DICTIONARY,
        )

    try:
        # the types arrow infers from the file's first block (a column with nulls only there is left to
        # infer), then the whole file read with them: less CPU than inferring block by block. A later
        # value they cannot hold (a decimal in a column of integers) fails that read, and the file is
        # read again inferring as it goes, as before
        with pv.open_csv(
            p, read_options=read_options, parse_options=parse_options, convert_options=convert_options()
        ) as r:
            names = r.schema.names
            first = {f.name: f.type for f in r.schema if not pa.types.is_null(f.type)}
        table = None
        if len(set(names)) == len(names):  # types are given by column name
            try:
                table = pv.read_csv(
                    p, read_options=read_options, parse_options=parse_options, convert_options=convert_options(first)
                )
            except pa.ArrowInvalid:
                table = None
        if table is None:
            table = pv.read_csv(
                p, read_options=read_options, parse_options=parse_options, convert_options=convert_options()
            )
    except pa.ArrowInvalid as exc:
        raise pd.errors.ParserError(exc) from exc
    # as pandas: an all-null column is float64; a text column arrow left plain (too many distinct
    # values) is encoded here, so that every text column comes the same way
    fields = []
    for f in table.schema:
        if pa.types.is_null(f.type):
            f = f.with_type(pa.float64())
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            f = f.with_type(pa.dictionary(pa.int32(), f.type))
        fields.append(f)
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    # a block per column, numbers without nulls taken as they are (not copied into 2-D blocks), and
    # each column's arrow memory freed once converted
    return table.to_pandas(split_blocks=True, self_destruct=True)


_MAX_DICTIONARY = 1 << 16  # distinct texts per column (per block) arrow encodes while parsing


def _check_utf8(p: Path, chunk_size: int = 1 << 20) -> None:
    """Refuse a text file that is not UTF-8, naming the line and byte of the first bad byte.

    The whole file is validated by arrow (its cast of bytes to text checks them as Python's UTF-8
    decoder does: no overlong forms, surrogates or code points past U+10FFFF), block by block; only
    a file that fails is decoded again, chunk by chunk, to find where."""
    if _valid_utf8(p):
        return
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes of the file read before this chunk
    lines = 0  # newlines in them
    with p.open("rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                pos = max(offset - pending + exc.start, 0)
                line = lines + chunk[: max(pos - offset, 0)].count(b"\n") + 1
                raise SchemaError(
                    f"could not read {p.name} as CSV: it is not UTF-8 text (byte {pos}, on line {line}, "
                    "is not valid UTF-8). "
                    "Save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8') and upload it again.",
                    field="file",
                ) from exc
            if not chunk:
                return
            offset += len(chunk)
            lines += chunk.count(b"\n")


def _valid_utf8(p: Path, block_size: int = 16 << 20) -> bool:
    """Whether the file is UTF-8, validated by arrow a block at a time.

    Read into memory block by block rather than mapped: the pages of a mapped file count in the
    process's resident memory, so a 1 GB upload would raise the web process's peak by 1 GB. The blocks
    are read into one buffer, reused (no fresh memory, no copy per block). A block ends before the
    lead byte of its last (possibly unfinished) character, which is moved to the buffer's start to
    begin the next one."""
    import pyarrow as pa

    buf = bytearray(block_size + 4)  # a block and the at most 4 bytes carried over
    view = memoryview(buf)
    carry = 0
    with p.open("rb", buffering=0) as fh:
        while True:
            n = fh.readinto(view[carry : carry + block_size])
            end = carry + (n or 0)
            if not n:
                return end == 0 or _arrow_utf8(pa, view[:end])
            cut = end
            for i in range(end - 1, max(end - 5, -1), -1):
                if buf[i] & 0xC0 != 0x80:  # the lead byte (or an ASCII byte) of the last character
                    cut = i
                    break
            if not _arrow_utf8(pa, view[:cut]):
                return False
            carry = end - cut
            buf[:carry] = buf[cut:end]


def _arrow_utf8(pa: Any, data: bytes | memoryview) -> bool:
    """Whether `data` is whole UTF-8 text: arrow's cast of bytes to text checks them as Python's decoder
    does (no overlong forms, surrogates or code points past U+10FFFF, nothing cut short)."""
    if not data:
        return True
    buf = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    whole = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, offsets, buf])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _read_parquet(p: Path) -> pd.DataFrame:
    """Read Parquet, refusing columns that are not one plain value per cell."""
    _check_parquet_columns(p)
    return pd.read_parquet(p)


def _check_parquet_columns(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pq.read_schema(p)
    _check_column_names(p.name, list(arrow.names))
    nested = [f"{f.name} ({f.type})" for f in arrow if pa.types.is_nested(f.type)]
    if nested:
        raise SchemaError(
            f"{p.name} has list, struct or map columns: {', '.join(nested)}. A column must hold one plain "
            "value (number, text, date) per cell: flatten them into separate columns and upload again.",
            field="file",
        )
    binary = [
        f.name
        for f in arrow
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) or pa.types.is_fixed_size_binary(f.type)
    ]
    if binary:
        raise SchemaError(
            f"{p.name} has columns of raw bytes: {', '.join(binary)}. Store them as text (UTF-8 strings) "
            "or drop them, and upload again.",
            field="file",
        )


def _check_column_names(filename: str, names: list[str]) -> None:
    unnamed = [c for c in names if c.startswith("Unnamed:") or c.strip() == ""]
    if unnamed:
        raise SchemaError(f"{filename} has columns without a header name: {unnamed}", field="file")
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        raise SchemaError(
            f"{filename} has duplicate column names: {', '.join(repr(d) for d in duplicates)}. "
            "Give every column a distinct name in the header and upload again.",
            field="file",
        )


def _check_finite(filename: str, df: pd.DataFrame, first_row: int = 0) -> None:
    """Refuse infinite values: no bound, mean or synthesizer can use them (`first_row`: rows before `df`)."""
    bad: list[str] = []
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_float_dtype(col.dtype):
            inf = np.isinf(col.to_numpy(dtype=float, na_value=np.nan))
            if inf.any():
                bad.append(f"{name} (first at data row {first_row + int(np.argmax(inf)) + 1})")
    if bad:
        raise SchemaError(
            f"{filename} has infinite values in numeric columns: {', '.join(bad)}. Replace them with "
            "a finite number or leave the cell empty (a null), and upload again.",
            field="file",
        )

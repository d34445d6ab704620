"""Read a large table in batches: row count, schema proposal and validation in bounded memory.

`read_table` holds the whole table as a DataFrame, which is fine for the tables most stewards
upload and not for a file of gigabytes. `scan_table` reads a CSV (pyarrow's streaming reader)
or a Parquet file (by record batches) one batch at a time and keeps only the counts, so memory
grows with the batch size, not with the file.

What it gives up, and why:

- Without a schema, the proposal is read from the first batch only (the whole table never
  fits in memory at once); the whole file is then validated against that proposal, so values
  outside its bounds or categories are counted in the warnings, and a warning says the proposal
  came from the first rows. The steward confirms or edits it as for any proposal.
- A CSV reader fixes each column's type on the first batch. Columns declared numeric are read
  as numbers and declared dates and dropped columns as text, so later batches cannot contradict
  them (text in a numeric column is refused with the reader's message rather than counted);
  another column whose later rows do not fit the type read from the first batch is refused
  with the reader's message (which names the column and the value), and the steward can declare it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from privacy.errors import SchemaError
from privacy.schema import (
    NA_VALUES,
    NUMERIC_KINDS,
    PublicSchema,
    SchemaIssue,
    _check_column_names,
    _check_finite,
    _check_parquet_columns,
    _check_utf8,
    propose_schema,
    suggest_roles,
    validate_table,
)

__all__ = ["DEFAULT_BATCH_BYTES", "TableScan", "scan_table"]

#: bytes of CSV (or about as many of Parquet) read at a time
DEFAULT_BATCH_BYTES = 1 << 20


@dataclass
class TableScan:
    """What registration needs from a table: its rows, its schema (given or proposed) and the issues."""

    n_rows: int
    schema: PublicSchema
    issues: list[SchemaIssue] = field(default_factory=list)
    proposed_from_rows: int | None = None  # set when the schema was proposed from the first rows
    # the roles, hierarchies and flags suggested with a proposed schema, from the same first rows
    suggestions: dict[str, Any] | None = None


def _merge(merged: dict[tuple[str | None, str], SchemaIssue], issues: list[SchemaIssue]) -> None:
    """Fold one batch's issues into the running ones: counts add up, the first example stays."""
    for issue in issues:
        key = (issue.column, issue.code)
        seen = merged.get(key)
        if seen is None:
            merged[key] = issue
        elif seen.count is not None and issue.count is not None:
            total = seen.count + issue.count
            merged[key] = replace(
                seen, count=total, message=seen.message.replace(f"{seen.count} value(s)", f"{total} value(s)", 1)
            )


def _fail(p: Path, kind: str, exc: Exception) -> SchemaError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SchemaError(
        f"could not read {p.name} as {kind}: {first}. Upload a UTF-8 CSV with a header row, or a Parquet file.",
        field="file",
    )


def _csv_batches(p: Path, schema: PublicSchema | None, batch_bytes: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from pandas._libs.parsers import STR_NA_VALUES

    types: dict[str, pa.DataType] = {}
    for name, spec in schema.columns.items() if schema is not None else ():
        if spec.is_dropped or spec.kind == "datetime":
            types[name] = pa.string()
        elif spec.kind in NUMERIC_KINDS and spec.values is None:
            types[name] = pa.float64()
    convert = pacsv.ConvertOptions(
        null_values=sorted(set(NA_VALUES) | set(STR_NA_VALUES)), strings_can_be_null=True, column_types=types
    )
    try:
        with pa.OSFile(str(p)) as source:  # read, not memory-mapped: pages of the file do not count as ours
            reader = pacsv.open_csv(
                source, read_options=pacsv.ReadOptions(block_size=batch_bytes), convert_options=convert
            )
            for batch in reader:
                if batch.num_rows:
                    # text as categories: a batch's strings are held once, and checking them maps each distinct value
                    yield batch.to_pandas(strings_to_categorical=True)
    except (pa.ArrowException, ValueError) as exc:
        raise _fail(p, "CSV", exc) from exc


def _parquet_batches(p: Path, batch_bytes: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_parquet_columns(p)
    try:
        pf = pq.ParquetFile(p)
        meta = pf.metadata
        total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))  # uncompressed
        rows = max(1024, batch_bytes * max(meta.num_rows, 1) // max(total, 1))
        for batch in pf.iter_batches(batch_size=rows):
            if batch.num_rows:
                yield batch.to_pandas(strings_to_categorical=True)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(p, "Parquet", exc) from exc


def _batches(p: Path, schema: PublicSchema | None, batch_bytes: int) -> Iterator[pd.DataFrame]:
    if p.suffix.lower() in (".parquet", ".pq"):
        return _parquet_batches(p, batch_bytes)
    return _csv_batches(p, schema, batch_bytes)


def scan_table(
    path: str | Path, schema: PublicSchema | None = None, *, batch_bytes: int = DEFAULT_BATCH_BYTES
) -> TableScan:
    """Count, check and validate a table batch by batch; propose a schema from the first batch when none is given.

    Refuses what `read_table` refuses (an empty file, text that is not UTF-8, missing or duplicate
    column names, infinite numbers, nested Parquet columns) with the same messages, and returns the
    issues of `validate_table` over the whole table, their counts summed over the batches.
    """
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"file not found: {p}", field="file")
    if p.stat().st_size == 0:
        raise SchemaError(
            f"{p.name} has no data rows (the file is empty); upload a table with a header and rows", field="file"
        )
    parquet = p.suffix.lower() in (".parquet", ".pq")
    if not parquet:
        _check_utf8(p)
    proposed_from: int | None = None
    suggestions: dict[str, Any] | None = None
    if schema is None:
        first = next(_batches(p, None, batch_bytes), None)
        if first is not None:
            _check_column_names(p.name, [str(c) for c in first.columns])
            _check_finite(p.name, first)
            schema = propose_schema(first)
            suggestions = suggest_roles(first, schema)
            proposed_from = len(first)
    merged: dict[tuple[str | None, str], SchemaIssue] = {}
    n_rows = 0
    columns: list[str] | None = None
    for df in _batches(p, schema, batch_bytes) if schema is not None else ():
        assert schema is not None
        if columns is None:
            columns = [str(c) for c in df.columns]
            _check_column_names(p.name, columns)
        _check_finite(p.name, df, first_row=n_rows)
        _merge(merged, validate_table(df, schema))
        n_rows += len(df)
    if schema is None or n_rows == 0:
        raise SchemaError(f"{p.name} has no data rows; upload a table with a header and rows", field="file")
    issues = list(merged.values())
    if proposed_from is not None and proposed_from < n_rows:
        issues.append(
            SchemaIssue(
                None,
                "proposed_from_first_rows",
                f"the table is large: the schema was proposed from its first {proposed_from} of "
                f"{n_rows} rows and the whole table checked against it; review the bounds and "
                "categories (the warnings count values outside them) before confirming",
                "warning",
            )
        )
    return TableScan(
        n_rows=n_rows, schema=schema, issues=issues, proposed_from_rows=proposed_from, suggestions=suggestions
    )

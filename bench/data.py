"""Benchmark inputs: the real adult table (UCI, 48,842 x 15) and its public schema.

`adult_table` subsamples, resamples with replacement (to reach 1M rows) or
keeps a subset of columns, always conformed to the public schema exactly as the
release pipeline conforms an upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from privacy.schema import PublicSchema

__all__ = [
    "ADULT_CSV",
    "ADULT_SCHEMA",
    "AIM_COLUMNS",
    "QUICK_COLUMNS",
    "ROOT",
    "adult_table",
    "subset_schema",
    "write_adult_resample",
    "write_adult_subset",
]

ROOT = Path(__file__).resolve().parents[1]
ADULT_CSV = ROOT / "tests" / "data" / "adult" / "adult.csv"
ADULT_SCHEMA = ROOT / "tests" / "data" / "adult" / "schema.yaml"

# the 10-column subset of adult for the AIM case: every categorical column, age, hours and the target
AIM_COLUMNS = [
    "age",
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "hours-per-week",
    "income",
]
# quick mode: a narrow table, enough to exercise every code path in seconds
QUICK_COLUMNS = ["age", "workclass", "education", "marital-status", "sex", "income"]


def subset_schema(schema: PublicSchema, columns: list[str] | None) -> PublicSchema:
    """The public schema restricted to `columns` (roles of dropped columns dropped with them)."""
    from privacy.schema import PublicSchema

    if not columns:
        return schema
    unknown = [c for c in columns if c not in schema.columns]
    if unknown:
        raise ValueError(f"columns not in the schema: {unknown}")
    data = schema.to_dict()
    data["columns"] = {c: data["columns"][c] for c in columns}
    data["quasi_identifiers"] = [c for c in data.get("quasi_identifiers") or [] if c in columns]
    data["sensitive"] = [c for c in data.get("sensitive") or [] if c in columns]
    if data.get("target") not in columns:
        data["target"] = None
    return PublicSchema.from_dict(data)


def adult_table(
    rows: int | None = None, columns: list[str] | None = None, seed: int = 0, replace: bool = False
) -> tuple[pd.DataFrame, PublicSchema]:
    """(conformed table, schema) of adult: all rows, `rows` of them, or `rows` drawn with replacement."""
    import numpy as np

    from privacy.schema import conform_table, load_schema, read_table

    schema = subset_schema(load_schema(ADULT_SCHEMA), columns)
    raw = read_table(ADULT_CSV)
    if columns:
        raw = raw[columns]
    if rows is not None and (replace or rows != len(raw)):
        rng = np.random.default_rng(seed)
        if replace or rows > len(raw):
            idx = rng.integers(0, len(raw), rows)
        else:
            idx = np.sort(rng.choice(len(raw), rows, replace=False))
        raw = raw.iloc[idx].reset_index(drop=True)
    table, _report = conform_table(raw, schema)
    return table, schema


def write_adult_subset(folder: Path, rows: int | None, columns: list[str] | None, seed: int = 0) -> tuple[Path, Path]:
    """Write a CSV of adult rows (raw, not conformed) and its schema YAML; returns both paths."""
    import numpy as np

    from privacy.schema import load_schema, read_table

    folder.mkdir(parents=True, exist_ok=True)
    schema = subset_schema(load_schema(ADULT_SCHEMA), columns)
    raw = read_table(ADULT_CSV)
    if columns:
        raw = raw[columns]
    if rows is not None and rows < len(raw):
        rng = np.random.default_rng(seed)
        raw = raw.iloc[np.sort(rng.choice(len(raw), rows, replace=False))]
    csv_path = folder / f"adult-{len(raw)}x{len(raw.columns)}.csv"
    raw.to_csv(csv_path, index=False)
    schema_path = folder / f"adult-{len(raw.columns)}-schema.yaml"
    schema_path.write_text(schema.to_yaml(), encoding="utf-8")
    return csv_path, schema_path


def write_adult_resample(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """Write a CSV of `rows` raw adult rows drawn with replacement (all 15 columns) and its schema YAML."""
    import shutil

    import numpy as np

    from privacy.schema import read_table

    folder.mkdir(parents=True, exist_ok=True)
    raw = read_table(ADULT_CSV)
    raw = raw.iloc[np.random.default_rng(seed).integers(0, len(raw), rows)]
    csv_path = folder / f"adult-resampled-{rows}.csv"
    raw.to_csv(csv_path, index=False)
    schema_path = folder / "adult-schema.yaml"
    shutil.copyfile(ADULT_SCHEMA, schema_path)
    return csv_path, schema_path

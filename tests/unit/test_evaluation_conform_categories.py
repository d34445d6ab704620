"""`synthgate evaluate` conforms its tables with `categories=True`: the report built from those tables is
the report built from the plain conform (declared text domains as "string" columns), figure for figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evaluation import build_report, split_holdout
from privacy.schema import PublicSchema, conform_table, load_schema, read_table

DATA = Path(__file__).resolve().parents[1] / "data"
TABLES = {
    "adult": ("adult/adult.csv", "adult/schema.yaml", 1_500),
    "penguins": ("penguins/penguins.csv", "penguins/schema.yaml", None),
    "compas": ("compas/compas.csv", "compas/schema.yaml", 1_500),
    "pums": ("pums/PUMS.csv", "pums/schema.yaml", None),
}


def _declared_texts(schema: PublicSchema) -> list[str]:
    return [
        n
        for n, s in schema.columns.items()
        if not s.is_dropped and s.values is not None and all(isinstance(v, str) for v in s.values)
    ]


def _files(name: str, root: Path) -> tuple[Path, Path, PublicSchema]:
    """REAL and SYNTH files cut from one table (disjoint rows); SYNTH holds an undeclared value and nulls
    in its declared text columns, which conform maps to null or drops."""
    csv, schema_file, rows = TABLES[name]
    schema = load_schema(DATA / schema_file)
    raw = pd.read_csv(DATA / csv, dtype=str, keep_default_na=False).sample(frac=1.0, random_state=0)
    if rows is not None:
        raw = raw.iloc[: 2 * rows]
    half = len(raw) // 2
    real, synth = raw.iloc[:half].copy(), raw.iloc[half:].copy()
    for i, column in enumerate(_declared_texts(schema)):
        synth.iloc[i::17, synth.columns.get_loc(column)] = "undeclared value"
        synth.iloc[i + 5 :: 23, synth.columns.get_loc(column)] = ""
    paths = (root / f"{name}-real.csv", root / f"{name}-synth.csv")
    real.to_csv(paths[0], index=False)
    synth.to_csv(paths[1], index=False)
    return paths[0], paths[1], schema


def _report(real_csv: Path, synth_csv: Path, schema: PublicSchema, *, categories: bool) -> Any:
    real = conform_table(read_table(real_csv, categories=True), schema, strict=True, categories=categories)[0]
    synth = conform_table(read_table(synth_csv, categories=True), schema, strict=False, categories=categories)[0]
    # the two conforms do differ where the schema declares text values: the test compares two storages
    stored = {n for n in real.columns if isinstance(real[n].dtype, pd.CategoricalDtype)}
    assert stored == (set(_declared_texts(schema)) if categories else set())
    train, holdout, _ = split_holdout(real, schema, seed=0)
    return build_report(train, holdout, synth, schema, seed=0, include={"fidelity", "utility", "privacy"})


def _without_seconds(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_without_seconds(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_report_from_categorical_tables_is_the_report_from_plain_ones(name: str, tmp_path: Path) -> None:
    real_csv, synth_csv, schema = _files(name, tmp_path)
    plain = _report(real_csv, synth_csv, schema, categories=False)
    categorical = _report(real_csv, synth_csv, schema, categories=True)
    for audience in (True, False):
        assert json.dumps(_without_seconds(categorical.to_dict(audience)), sort_keys=True) == json.dumps(
            _without_seconds(plain.to_dict(audience)), sort_keys=True
        )
    assert {k: s.status for k, s in plain.sections.items()} == {k: s.status for k, s in categorical.sections.items()}
    assert plain.sections["fidelity"].status == "computed"

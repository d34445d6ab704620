"""Fingerprints of the I/O path on the real tables in tests/data: the validation issues, the conformed table, its codes, the
CSV written from it, and the CSV of a decoded, schema-enforced sample (fixed seeds)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "data"
TABLES = {
    "adult": "adult/adult.csv",
    "compas": "compas/compas.csv",
    "penguins": "penguins/penguins.csv",
    "pums": "pums/PUMS.csv",
}

NAMES = [*TABLES, *(f"{n}-dirty" for n in TABLES)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def frame_fingerprint(df: pd.DataFrame) -> str:
    """Columns, dtypes, and every cell with its type (NA kinds apart)."""
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(df[c].dtype)] for c in df.columns]).encode())
    for c in df.columns:
        cells = [repr(v) if not (v is pd.NA or v is None) else type(v).__name__ for v in df[c].tolist()]
        h.update(json.dumps(cells).encode())
    return h.hexdigest()[:16]


def dirty(raw: pd.DataFrame) -> pd.DataFrame:
    """Values conformance must change: undeclared or formula-like labels, numbers out of bounds, text in a
    number column, nulls in a column that may not have them."""
    df = raw.copy()
    rows = np.arange(len(df))
    for j, col in enumerate(df.columns):
        s = df[col].astype(object)
        s[rows % (7 + j) == 0] = ["=HYPERLINK(1)", "-1", "+3.5", "@x", " -y", "\tz", 12, True, 2.0][j % 9]
        s[rows % (11 + j) == 0] = None
        if pd.api.types.is_numeric_dtype(df[col]):
            s[rows % (13 + j) == 0] = 10**7 if j % 2 else -(10**7)
        df[col] = s
    return df


def fingerprints(name: str) -> dict[str, Any]:
    from core.bundle import safe_csv_bytes
    from privacy.encoding import DomainEncoder
    from privacy.schema import conform_table, enforce_schema, load_schema, read_table, validate_table

    folder = DATA / TABLES[name.removesuffix("-dirty")].split("/")[0]
    schema = load_schema(folder / "schema.yaml")
    raw = read_table(DATA / TABLES[name.removesuffix("-dirty")])
    if name.endswith("-dirty"):
        raw = dirty(raw)
    issues = [[i.column, i.code, i.message, i.severity, i.count] for i in validate_table(raw, schema)]
    conformed, report = conform_table(raw, schema, strict=False)
    out: dict[str, Any] = {
        "raw": frame_fingerprint(raw),
        "raw_csv": _sha(safe_csv_bytes(raw)),
        "issues": issues,
        "conformed": frame_fingerprint(conformed),
        "report": report.to_dict(),
        "csv": _sha(safe_csv_bytes(conformed)),
    }
    encoder = DomainEncoder(schema)
    codes = encoder.encode(conformed)
    out["codes"] = _sha(codes.tobytes()) + str(codes.dtype)
    decoded = encoder.decode(codes[np.random.default_rng(0).permutation(len(codes))], np.random.default_rng(1))
    enforced = enforce_schema(decoded, schema, seed=2)
    out["enforced"] = frame_fingerprint(enforced)
    out["enforced_csv"] = _sha(safe_csv_bytes(enforced))
    return out


EXPECTED = Path(__file__).resolve().parent / "io_fingerprints.json"

if __name__ == "__main__":  # written once from the implementation the fast path must match
    EXPECTED.write_text(json.dumps({n: fingerprints(n) for n in NAMES}, indent=1, sort_keys=True) + "\n")

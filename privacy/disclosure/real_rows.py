"""Disclosure checks that read the real training rows (internal).

`real_row_checks` compares the output with the real training rows (exact
copies, reproductions of real unique quasi-identifier combinations). Its
figures are internal, and removing rows because of them is a decision that
depends on real data: the privacy statement must say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privacy._classes import codes_of, combine_codes
from privacy.disclosure.public import (
    DisclosureReport,
    class_sizes,
    k_anonymity,
    l_diversity,
    recode_like,
)
from privacy.errors import SchemaError
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema, _key

__all__ = ["RealMatchReport", "real_row_checks"]


@dataclass
class RealMatchReport:
    """Checks of the output against real training rows. INTERNAL: every figure comes from real rows."""

    compared_columns: list[str]
    quasi_identifiers: list[str]
    rows_checked: int
    real_rows: int
    exact_matches: int
    exact_match_rate: float | None
    unique_matches: int | None
    unique_match_rate: float | None
    real_unique_combinations: int | None
    filtering_applied: bool
    removed_exact: int = 0
    removed_unique: int = 0
    removed_rows: int = 0
    resuppressed_rows: int = 0
    rows_out: int = 0
    released_exact_match_rate: float | None = None
    released_unique_match_rate: float | None = None
    k_anonymity: dict[str, Any] = field(default_factory=dict)
    l_diversity: dict[str, dict[str, Any]] = field(default_factory=dict)
    recoded: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["internal"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RealMatchReport:
        return cls(**{k: v for k, v in data.items() if k != "internal"})


# ----------------------------------------------------------------------------------
# checks against real rows (internal)
# ----------------------------------------------------------------------------------


def _text_keys(s: pd.Series) -> pd.Series:
    """Each value as its schema key (1, 1.0 and "1" alike), null as None; one call per distinct value."""
    codes, keys = _distinct_keys(s)
    return pd.Series(np.array([*keys, None], dtype=object)[codes], index=s.index, dtype="object")


def _normalised(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Comparable representation: numbers as float, dates as int64 ns, everything else as text keys."""
    out = {}
    for c in columns:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s):
            out[c] = _text_keys(s)
        elif pd.api.types.is_numeric_dtype(s):
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            t = pd.to_datetime(s)
            ns = pd.Series(t.to_numpy(dtype="datetime64[ns]").view("int64"), dtype="object")
            ns[t.isna().to_numpy()] = None
            out[c] = ns
        else:
            out[c] = _text_keys(s)
    return pd.DataFrame(out)


def _as_text(s: pd.Series) -> bool:
    """Whether `_normalised` compares the column by its text keys."""
    return bool(
        pd.api.types.is_bool_dtype(s)
        or not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s))
    )


def _joint_codes(a: pd.DataFrame, b: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Per column, codes of the rows of a then b, equal where `_normalised` makes the values equal (a
    column numeric on one side and text on the other is compared as text; a null equals a null).

    A column of text on both sides is keyed once per distinct value of each side, its keys matched
    between the sides, without a key object per cell."""
    out: dict[str, np.ndarray] = {}
    for c in columns:
        x, y = a[c], b[c]
        if _as_text(x) and _as_text(y):
            (cx, kx), (cy, ky) = _distinct_keys(x), _distinct_keys(y)
            ids = {k: i for i, k in enumerate(dict.fromkeys([*kx, *ky]))}
            null = len(ids)  # a null's code: index -1 of each lookup
            lx = np.array([*(ids[k] for k in kx), null], dtype=np.int64)
            ly = np.array([*(ids[k] for k in ky), null], dtype=np.int64)
            out[c] = np.concatenate([lx[cx], ly[cy]])
            continue
        nx, ny = _normalised(a, [c])[c], _normalised(b, [c])[c]
        if nx.dtype != ny.dtype:
            nx, ny = _text_keys(nx), _text_keys(ny)
        out[c] = codes_of(pd.concat([nx, ny], ignore_index=True))
    return out


def _distinct_keys(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes, keys): `_text_keys`' values as each cell's index into the keys of the distinct values (-1:
    a null)."""
    codes, uniques = pd.factorize(s)
    return codes, [_key(v) for v in uniques]


def _joint_ids(codes: Mapping[str, np.ndarray], columns: Sequence[str], n_a: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ids of the rows of a and of b (`_joint_codes`' tables, a with n_a rows) over the columns."""
    total = len(next(iter(codes.values())))
    ids = combine_codes([codes[c] for c in columns], total)
    return ids[:n_a], ids[n_a:]


def real_row_checks(
    synthetic: pd.DataFrame,
    real_train: pd.DataFrame,
    schema: PublicSchema,
    policy: DatasetPolicy,
    *,
    disclosure: DisclosureReport | Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, RealMatchReport]:
    """INTERNAL checks of the output against the real training rows.

    Counts exact copies (a synthetic row equal to a real row on every modelled
    column) and unique matches (a synthetic row whose quasi-identifier
    combination belongs to exactly one real row). `schema` is the public schema
    the real rows conform to; when `disclosure` is given, the real rows are first
    recoded like the released table (same coding and generalisation) so the
    comparison is made in the released representation.

    With `policy.remove_real_matches`, matching rows are removed, and then any
    class that fell below k is suppressed again; the report records that
    real-data-dependent filtering was applied (it weakens the formal guarantee).
    """
    rep = None
    if disclosure is not None:
        rep = disclosure if isinstance(disclosure, DisclosureReport) else DisclosureReport.from_dict(disclosure)
        real = recode_like(real_train, rep)
    else:
        real = real_train.reset_index(drop=True)
    synth = synthetic.reset_index(drop=True)
    compared = [c for c in schema.synthesized_columns if c in synth.columns and c in real.columns]
    if not compared:
        raise SchemaError("the synthetic and real tables share no modelled column", field="schema")
    qis = [q for q in schema.quasi_identifiers if q in compared]
    n = len(synth)

    codes = _joint_codes(synth, real, compared)  # the quasi-identifiers are compared columns
    s_ids, r_ids = _joint_ids(codes, compared, n)
    exact = np.isin(s_ids, r_ids)
    unique = np.zeros(n, dtype=bool)
    real_unique = None
    if qis:
        sq, rq = _joint_ids(codes, qis, n)
        counts = np.bincount(rq, minlength=int(max(sq.max(initial=-1), rq.max(initial=-1))) + 1)
        unique_ids = np.flatnonzero(counts == 1)
        real_unique = int(len(unique_ids))
        unique = np.isin(sq, unique_ids)
    report = RealMatchReport(
        compared_columns=compared,
        quasi_identifiers=qis,
        rows_checked=n,
        real_rows=len(real),
        exact_matches=int(exact.sum()),
        exact_match_rate=(float(exact.mean()) if n else 0.0),
        unique_matches=int(unique.sum()) if qis else None,
        unique_match_rate=(float(unique.mean()) if n else 0.0) if qis else None,
        real_unique_combinations=real_unique,
        filtering_applied=bool(policy.remove_real_matches),
        recoded=rep is not None,
    )
    out = synth
    if policy.remove_real_matches:
        remove = exact | unique
        report.removed_exact = int(exact.sum())
        report.removed_unique = int(unique.sum())
        report.removed_rows = int(remove.sum())
        out = synth.loc[~remove].reset_index(drop=True)
        k = policy.effective_k(bool(schema.quasi_identifiers))
        if qis and k is not None and len(out):
            drop = class_sizes(out, qis) < k
            report.resuppressed_rows = int(drop.sum())
            out = out.loc[~drop].reset_index(drop=True)
        report.released_exact_match_rate = 0.0
        report.released_unique_match_rate = 0.0 if qis else None
    else:
        report.released_exact_match_rate = report.exact_match_rate
        report.released_unique_match_rate = report.unique_match_rate
    report.rows_out = len(out)
    k = policy.effective_k(bool(schema.quasi_identifiers))
    report.k_anonymity = k_anonymity(out, qis, k)
    report.l_diversity = l_diversity(out, qis, [s for s in schema.sensitive if s in out.columns], policy.l)
    return out, report

"""A schema proposed from the data (`propose_schema`), every value it read marked `learned`.

The steward edits and confirms the proposal; the privacy statement names
whatever learned facts they keep.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import SchemaError
from privacy.schema.model import (
    MAX_EXACT_ORDINAL,
    MAX_SPECIAL_VALUES,
    SPECIAL_VALUE_SHARE,
    ColumnKind,
    ColumnSpec,
    PublicSchema,
)

# ----------------------------------------------------------------------------------
# proposal
# ----------------------------------------------------------------------------------

_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|ssn|key|number|no)$|^id[_\s-]|identifier", re.IGNORECASE)
_TEXT_NAME = re.compile(r"comment|note|description|remark|free.?text|narrative", re.IGNORECASE)


def _round_out(lo: float, hi: float) -> tuple[float, float]:
    """Round bounds outward to a 'nice' step so the exact extremes are not published."""
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
    step = 10 ** math.floor(math.log10(span)) / 2 if span > 0 else 1.0
    step = max(step, 1.0) if float(lo).is_integer() and float(hi).is_integer() else step
    new_lo = math.floor(lo / step) * step
    new_hi = math.ceil(hi / step) * step
    if new_lo == lo and lo != 0:
        new_lo -= step
    if new_hi == hi:
        new_hi += step
    if lo >= 0 and new_lo < 0:
        new_lo = 0.0
    return new_lo, new_hi


def _clean_number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(round(x, 10))


#: Order of the fields in a proposal's `learned` list (the privacy statement lists them in this order).
_LEARNED_ORDER = ("kind", "values", "min", "max", "integer", "nullable", "special_values", "identifier", "null_tokens")

# a short spelling of "missing" that a numeric column may use instead of an empty cell (census files write N)
_NULL_TOKEN = re.compile(r"^(?:[A-Za-z]|[-.*/]+|\(?[Xx]\)?)$")


def _null_token(nonnull: pd.Series) -> str | None:
    """The one short token in an otherwise numeric text column (`N`, `-`, `.`, `*`), or None."""
    if nonnull.empty or pd.api.types.is_numeric_dtype(nonnull):
        return None
    text = nonnull.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    others = text[numbers.isna()].unique()
    if len(others) != 1 or numbers.notna().mean() < 0.5 or not _NULL_TOKEN.match(str(others[0])):
        return None
    return str(others[0])


def apply_null_tokens(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """`df` with the schema's null tokens read as missing (numbers written as text then read as numbers)."""
    out = None
    for name in schema.columns:
        tokens = schema.null_tokens_of(name)
        if not tokens or name not in df.columns:
            continue
        s = df[name]
        hit = s.notna() & s.astype(str).str.strip().isin(tokens)
        if not hit.any():
            continue
        out = df.copy() if out is None else out
        rest = s.where(~hit)
        numbers = pd.to_numeric(rest, errors="coerce")
        if int(numbers.notna().sum()) == int(rest.notna().sum()):  # every other value is a number
            rest = numbers
        out[name] = rest
    return df if out is None else out


def _point_masses(nonnull: pd.Series) -> list[float | int]:
    """Values holding at least `SPECIAL_VALUE_SHARE` of a numeric column's rows, ascending (at most
    `MAX_SPECIAL_VALUES`, the most frequent): a binned column would spread each of them over its bin."""
    shares = nonnull.value_counts(normalize=True, sort=True)
    kept = shares[shares >= SPECIAL_VALUE_SHARE].head(MAX_SPECIAL_VALUES)
    return sorted(_clean_number(float(v)) for v in kept.index)


def _proposed(learned: tuple[str, ...], **fields: Any) -> ColumnSpec:
    """A proposed column whose `learned` names every field in `learned` (each read from the data)."""
    return ColumnSpec(**fields, learned=[f for f in _LEARNED_ORDER if f in learned])


def propose_schema(
    df: pd.DataFrame,
    *,
    max_categories: int = 100,
    quasi_identifiers: list[str] | None = None,
    sensitive: list[str] | None = None,
    target: str | None = None,
) -> PublicSchema:
    """Propose a public schema from the data, for the steward to edit and confirm.

    Every fact read from the data is listed in the column's `learned` field, so
    that the privacy statement names whatever the steward keeps: the kind (chosen
    from the values: few distinct integers, their range, uniqueness, string
    lengths, dates), category domains, bounds, `integer`, nullability, special
    values (a value holding `SPECIAL_VALUE_SHARE` or more of a binned numeric
    column's rows), and how an identifier is replaced. Numeric bounds are
    rounded outward (a datetime column whose values carry times of day keeps them:
    its bounds are datetimes); identifiers (unique values, id-like names) and free
    text (long values with many distinct ones, whatever the column's name, or a
    text-like name) are detected. A column empty in every row has nothing to model
    and no domain to declare: it is proposed as `text` (dropped, nullable) for the
    steward to declare if later data fill it. No text derived from the data (counts
    of values, examples) is written into the schema.
    """
    cols: dict[str, ColumnSpec] = {}
    n = len(df)
    tokens: dict[str, str] = {}
    for name in df.columns:
        token = _null_token(df[name].dropna())
        if token is not None:
            tokens[str(name)] = token
    if tokens:
        df = apply_null_tokens(
            df,
            PublicSchema(
                columns={name: ColumnSpec(kind="continuous", null_tokens=[tok]) for name, tok in tokens.items()}
            ),
        )
    for name in df.columns:
        s = df[name]
        nullable = bool(s.isna().any())
        nonnull = s.dropna()
        nunique = int(nonnull.nunique())
        sname = str(name)
        if nonnull.empty:
            # nothing to model and no domain to declare: dropped like free text until the steward declares it
            cols[sname] = _proposed(("kind", "nullable"), kind="text", nullable=True)
            continue
        if pd.api.types.is_bool_dtype(s):
            # [False, True] is the whole domain of the type; that the column has the type was read from the data
            cols[sname] = _proposed(("kind", "nullable"), kind="categorical", values=[False, True], nullable=nullable)
            continue
        if pd.api.types.is_datetime64_any_dtype(s) or (s.dtype == object and _looks_like_dates(nonnull)):
            values = pd.to_datetime(nonnull, errors="coerce")
            lo, hi = values.min(), values.max()
            start, end = _year_bounds(values, lo.year, hi.year)
            cols[sname] = _proposed(
                ("kind", "min", "max", "nullable"), kind="datetime", min=start, max=end, nullable=nullable
            )
            continue
        if pd.api.types.is_numeric_dtype(s):
            is_int = bool(np.all(np.mod(nonnull.to_numpy(dtype=float), 1) == 0))
            if is_int and nunique == n and n > 20 and _ID_NAME.search(sname):
                cols[sname] = _proposed(("kind",), kind="identifier", identifier="fake")
                continue
            lo, hi = float(nonnull.min()), float(nonnull.max())
            if is_int and nunique <= 12 and (hi - lo) < 20:
                cols[sname] = _proposed(
                    ("kind", "values", "nullable"),
                    kind="categorical",
                    values=sorted(int(v) for v in nonnull.unique()),
                    nullable=nullable,
                )
                continue
            rlo, rhi = _round_out(lo, hi)
            kind: ColumnKind = "ordinal" if is_int and (rhi - rlo) <= 200 else "continuous"
            # point masses only where the column is binned (an ordinal with a code per integer keeps them)
            binned = kind == "continuous" or rhi - rlo + 1 > MAX_EXACT_ORDINAL
            special = _point_masses(nonnull) if binned else []
            learned = ("kind", "min", "max", "integer", "nullable", *(("special_values",) if special else ()))
            cols[sname] = _proposed(
                learned,
                kind=kind,
                min=_clean_number(rlo),
                max=_clean_number(rhi),
                integer=is_int,
                nullable=nullable,
                special_values=special or None,
            )
            continue
        # strings
        as_str = nonnull.astype(str)
        long_text = _long_text(as_str)
        if nunique == len(nonnull) and len(nonnull) > 20 and (not long_text or _ID_NAME.search(sname)):
            # whether ids are regenerated or dropped depends on the column having nulls: learned as well
            cols[sname] = _proposed(
                ("kind", "identifier"), kind="identifier", identifier="fake" if not nullable else "drop"
            )
            continue
        if _ID_NAME.search(sname) and nunique > 0.3 * len(nonnull) and len(nonnull) > 20:
            cols[sname] = _proposed(("kind",), kind="identifier")
            continue
        if _TEXT_NAME.search(sname) or (long_text and _many_values(nunique, len(nonnull), max_categories)):
            cols[sname] = _proposed(("kind", "nullable"), kind="text", nullable=nullable)
            continue
        cats = sorted(as_str.unique().tolist())
        if len(cats) > max_categories:
            # keep the column, but the steward must declare a domain (or coarsen) before any release; the
            # description says so without repeating anything read from the data (such as how many values)
            cols[sname] = _proposed(
                ("kind", "nullable"),
                kind="categorical",
                values=None,
                nullable=nullable,
                description=OPEN_DOMAIN_DESCRIPTION,
            )
            continue
        cols[sname] = _proposed(("kind", "values", "nullable"), kind="categorical", values=cats, nullable=nullable)
    for name, token in tokens.items():  # the spelling of "missing" was read from the data too
        spec = cols[name]
        cols[name] = spec.model_copy(
            update={
                "null_tokens": [token],
                "learned": [f for f in _LEARNED_ORDER if f in {*spec.learned, "null_tokens"}],
            }
        )
    if cols and all(spec.is_dropped for spec in cols.values()):
        raise SchemaError(
            "every column of the table looks like an identifier, free text or is empty, so nothing could be "
            "synthesized from it; give a schema that declares the columns to release (their kind, bounds or "
            "values), or check that the file holds the intended table",
            field="schema",
        )
    return PublicSchema(
        columns=cols,
        quasi_identifiers=[q for q in (quasi_identifiers or []) if q in cols],
        sensitive=[q for q in (sensitive or []) if q in cols],
        target=target if target in cols else None,
    )


OPEN_DOMAIN_DESCRIPTION = (
    "no category domain proposed: declare `values` (or coarsen the column), or drop it with kind: identifier"
)


#: free text: values this long on average (characters), or half as long and mostly made of several words
TEXT_LENGTH = 40
#: free text: at least this many distinct values, making up at least `TEXT_DISTINCT_SHARE` of the values
TEXT_MIN_DISTINCT = 20
TEXT_DISTINCT_SHARE = 0.2


def _long_text(as_str: pd.Series) -> bool:
    """Values long enough to be sentences: `TEXT_LENGTH` characters on average, or half that in several words."""
    mean_len = float(as_str.str.len().mean())
    if mean_len >= TEXT_LENGTH:
        return True
    return mean_len >= TEXT_LENGTH / 2 and float(as_str.str.strip().str.contains(r"\s").mean()) >= 0.5


def _many_values(nunique: int, n: int, max_categories: int) -> bool:
    """Too many distinct values for a category domain: above `max_categories`, or a large share of the rows."""
    return nunique > max_categories or (nunique >= TEXT_MIN_DISTINCT and nunique >= TEXT_DISTINCT_SHARE * n)


def _year_bounds(values: pd.Series, first: int, last: int) -> tuple[dt.date, dt.date] | tuple[dt.datetime, dt.datetime]:
    """Whole years around the dates; with times of day, the last year ends at its last second (or instant),
    so that conformance keeps the times of its last day rather than clipping them to midnight."""
    valid = values.dropna()
    if valid.dt.tz is not None:
        valid = valid.dt.tz_convert(None)
    if not bool((valid != valid.dt.normalize()).any()):
        return dt.date(first, 1, 1), dt.date(last, 12, 31)
    fraction = bool((valid.dt.microsecond != 0).any() or (valid.dt.nanosecond != 0).any())
    return dt.datetime(first, 1, 1), dt.datetime(last, 12, 31, 23, 59, 59, 999_999 if fraction else 0)


def _looks_like_dates(nonnull: pd.Series) -> bool:
    sample = nonnull.astype(str).head(200)
    if not sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(pd.to_datetime(sample, errors="coerce").notna().all())

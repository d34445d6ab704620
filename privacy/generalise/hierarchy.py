"""Hierarchies of quasi-identifiers from the public schema, and their information loss.

The nested levels of each quasi-identifier (declared bands, edges and groups,
derived bands, month/year/decade, then `*`), how a level recodes a column and
its declared spec, and Iyengar's Loss Metric of each recoded label. The
levels and the metric are documented in `privacy.generalise`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from privacy._classes import codes_of
from privacy.errors import SchemaError
from privacy.schema import NUMERIC_KINDS, ColumnSpec, _key

MAX_INTERVALS = 10_000
#: derived bands: the first has at most this many intervals between the bounds
MAX_FIRST_BANDS = 50
#: derived band levels per numeric column (the declared band counts as one)
MAX_BAND_LEVELS = 4
SUPPRESSED_LABEL = "*"
_TIE = 1e-12


# ----------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------


def _decimals(step: float) -> int:
    text = repr(float(step))
    if "e-" in text:
        return min(int(text.split("e-")[1]) + 6, 15)
    return len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0


def _fmt(x: float) -> str:
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return f"{x:.10g}"


def _nice_widths(lo: float, hi: float) -> list[float]:
    """1, 2, 5 x 10^j from below lo to above hi."""
    out = []
    for j in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2):
        for m in (1, 2, 5):
            out.append(float(f"{m}e{j}"))
    return sorted(out)


def _is_multiple(a: float, b: float) -> bool:
    q = a / b
    return abs(q - round(q)) < 1e-9 and round(q) >= 2


def _next_width(w: float) -> float:
    """The smallest 1, 2, 5 x 10^j that is a multiple of w (at least twice it); else 2 w."""
    for c in _nice_widths(w, 10 * w):
        if c > w and _is_multiple(c, w):
            return c
    return 2 * w


def _first_width(lo: float, hi: float, integer: bool) -> float | None:
    span = hi - lo
    if span <= 0:
        return None
    for c in _nice_widths(span / MAX_FIRST_BANDS, span):
        if c >= span / MAX_FIRST_BANDS and (not integer or c >= 2):
            return c
    return None


def _band_count(lo: float, hi: float, w: float) -> int:
    first = math.floor(round(lo / w, 9)) * w
    return max(1, int(math.ceil(round((hi - first) / w, 9))))


# ----------------------------------------------------------------------------------
# recodings (one level of one column)
# ----------------------------------------------------------------------------------


def _numeric_bounds(spec: ColumnSpec, s: pd.Series | None) -> tuple[float, float] | None:
    """Declared bounds; open ones from the synthetic output (never from real rows)."""
    present = np.zeros(0)
    if spec.min is None or spec.max is None:
        if s is None:
            return None
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = x[~np.isnan(x)]
    # a numeric column's bounds are numbers
    lo = float(cast(float, spec.min)) if spec.min is not None else (float(present.min()) if len(present) else 0.0)
    hi = float(cast(float, spec.max)) if spec.max is not None else (float(present.max()) if len(present) else lo)
    return lo, hi


def _interval_recoding(
    name: str,
    spec: ColumnSpec,
    bounds: tuple[float, float],
    *,
    band: float | None = None,
    edges: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Bands or edges: intervals [e_i, e_{i+1}), the last closed, clipped to the bounds."""
    lo, hi = bounds
    if band is not None:
        b = float(band)
        first = round(math.floor(round(lo / b, 9)) * b, _decimals(b))
        count = int(math.ceil((hi - first) / b))
        if count > MAX_INTERVALS:
            raise SchemaError(
                f"column '{name}': a band of {_fmt(b)} makes {count} intervals between the bounds; "
                "declare a wider band",
                field="schema",
            )
        places = _decimals(b)
        cuts = [c for c in (round(first + i * b, places) for i in range(1, count + 1)) if lo < c < hi]
        how = f"bands of {_fmt(b)}"
    else:
        cuts = sorted({float(e) for e in (edges or []) if lo < float(e) < hi})
        how = "intervals cut at " + ", ".join(_fmt(e) for e in cuts) if cuts else "one interval"
    all_edges = [lo, *cuts, hi]
    if spec.is_integer:
        intervals: list[list[int]] = []
        for i in range(len(all_edges) - 1):
            a, b2 = all_edges[i], all_edges[i + 1]
            last = i == len(all_edges) - 2
            ia, ib = math.ceil(a), (math.floor(b2) if last else math.ceil(b2) - 1)
            if ib >= ia:
                intervals.append([ia, ib])
            elif last and intervals:  # an empty last interval: the previous one runs to the bound
                intervals[-1][1] = max(intervals[-1][1], math.floor(b2))
        if not intervals:
            intervals = [[math.ceil(lo), max(math.ceil(lo), math.floor(hi))]]
        labels = [str(a) if a == b2 else f"{a}-{b2}" for a, b2 in intervals]
        cut_points: list[float] = [float(a) for a, _ in intervals] + [float(intervals[-1][1])]
    else:
        labels = [
            f"[{_fmt(all_edges[i])}, {_fmt(all_edges[i + 1])}{']' if i == len(all_edges) - 2 else ')'}"
            for i in range(len(all_edges) - 1)
        ]
        cut_points = all_edges
    return {"type": "intervals", "how": how, "edges": cut_points, "labels": labels, "integer": spec.is_integer}


def _date_bounds(spec: ColumnSpec, s: pd.Series | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    present = pd.Series([], dtype="datetime64[ns]")
    if s is not None and (spec.min is None or spec.max is None):
        present = pd.to_datetime(s, errors="coerce").dropna()
    if (spec.min is None or spec.max is None) and s is None:
        return None
    lo = (
        pd.Timestamp(spec.min)
        if spec.min is not None
        else (present.min() if len(present) else pd.Timestamp(1970, 1, 1))
    )
    hi = pd.Timestamp(spec.max) if spec.max is not None else (present.max() if len(present) else lo)
    return lo.normalize(), hi.normalize()


def _date_recoding(level: str, lo: pd.Timestamp, hi: pd.Timestamp) -> dict[str, Any]:
    span = {"first": lo.date().isoformat(), "last": hi.date().isoformat()}
    if level == "year":
        return {"type": "year", "how": "year", "min": int(lo.year), "max": int(hi.year), **span}
    if level == "decade":
        labels = [f"{max(d, lo.year)}-{min(d + 9, hi.year)}" for d in range(lo.year // 10 * 10, hi.year + 1, 10)]
        return {"type": "decade", "how": "decade", "min": int(lo.year), "max": int(hi.year), "labels": labels, **span}
    months = pd.period_range(lo.to_period("M"), hi.to_period("M"), freq="M").strftime("%Y-%m").tolist()
    return {"type": "month", "how": "month (YYYY-MM)", "labels": months, **span}


def _group_recoding(name: str, spec: ColumnSpec, s: pd.Series | None) -> dict[str, Any]:
    assert spec.hierarchy is not None and spec.hierarchy.groups is not None
    mapping: dict[str, str] = {}
    for group, members in spec.hierarchy.groups.items():
        for m in members:
            k = _key(m)
            if k in mapping and mapping[k] != group:
                raise SchemaError(
                    f"column '{name}': value {m!r} is in two hierarchy groups ({mapping[k]}, {group}); put it in one",
                    field="schema",
                )
            mapping[k] = str(group)
    if spec.values is not None:
        declared = [_key(v) for v in spec.values]
    else:
        declared = sorted({_key(v) for v in (s.dropna().tolist() if s is not None else [])})
    labels = [str(g) for g in spec.hierarchy.groups]
    for v in declared:
        if v not in mapping:
            if v in labels:
                raise SchemaError(
                    f"column '{name}': group name {v!r} is also an ungrouped value; rename the group or "
                    "put the value in it",
                    field="schema",
                )
            labels.append(v)
    return {
        "type": "groups",
        "how": "groups " + ", ".join(str(g) for g in spec.hierarchy.groups),
        "mapping": mapping,
        "labels": labels,
    }


def _suppressed_recoding() -> dict[str, Any]:
    return {"type": "suppressed", "how": "suppressed (every value replaced by *)", "labels": [SUPPRESSED_LABEL]}


def _check_declared(name: str, spec: ColumnSpec) -> None:
    """A declared hierarchy of the wrong kind for its column is refused with what to use instead."""
    h = spec.hierarchy
    if h is None:
        return
    numeric = spec.kind in NUMERIC_KINDS and spec.values is None
    if h.band is not None or h.edges is not None:
        if not numeric:
            raise SchemaError(
                f"column '{name}' is {spec.kind}: band/edges hierarchies apply to numeric columns; use groups",
                field="schema",
            )
    elif h.granularity is not None:
        if spec.kind != "datetime":
            raise SchemaError(
                f"column '{name}' is {spec.kind}: granularity applies to datetime columns", field="schema"
            )
    elif h.groups is not None:
        if numeric or spec.kind == "datetime":
            raise SchemaError(
                f"column '{name}' is {spec.kind}: groups apply to categorical columns; use band or edges",
                field="schema",
            )
    else:
        raise SchemaError(
            f"column '{name}' declares an empty hierarchy; give band, edges, granularity or groups", field="schema"
        )


def _numeric_levels(name: str, spec: ColumnSpec, s: pd.Series | None) -> list[dict[str, Any]]:
    bounds = _numeric_bounds(spec, s)
    if bounds is None:
        return []
    lo, hi = bounds
    h = spec.hierarchy
    if h is not None and h.edges is not None:
        return [{**_interval_recoding(name, spec, bounds, edges=h.edges), "declared": True}]
    out: list[dict[str, Any]] = []
    if h is not None and h.band is not None:
        out.append({**_interval_recoding(name, spec, bounds, band=h.band), "declared": True})
        width: float | None = _next_width(float(h.band))
    else:
        width = _first_width(lo, hi, spec.is_integer)
    while width is not None and len(out) < MAX_BAND_LEVELS and _band_count(lo, hi, width) > 1:
        out.append(_interval_recoding(name, spec, bounds, band=width))
        width = _next_width(width)
    return out


def _datetime_levels(spec: ColumnSpec, s: pd.Series | None) -> list[dict[str, Any]]:
    bounds = _date_bounds(spec, s)
    if bounds is None:
        return []
    lo, hi = bounds
    steps = ["month", "year", "decade"]
    if spec.hierarchy is not None and spec.hierarchy.granularity is not None:
        steps = steps[steps.index(spec.hierarchy.granularity) :]
    out = []
    for i, step in enumerate(steps):
        rec = _date_recoding(step, lo, hi)
        classes = rec["max"] - rec["min"] + 1 if step == "year" else len(rec["labels"])
        if classes > 1 or (i == 0 and spec.hierarchy is not None):
            if i == 0 and spec.hierarchy is not None:
                rec["declared"] = True
            out.append(rec)
    return out


def column_levels(name: str, spec: ColumnSpec, s: pd.Series | None = None) -> list[dict[str, Any] | None]:
    """The nested generalisation levels of one quasi-identifier; level 0 (None) keeps the value.

    `s` is the synthetic column, read only for bounds or categories the schema
    leaves open; without it such a column has only its value and `*`.
    """
    _check_declared(name, spec)
    numeric = spec.kind in NUMERIC_KINDS and spec.values is None
    if numeric:
        middle = _numeric_levels(name, spec, s)
    elif spec.kind == "datetime":
        middle = _datetime_levels(spec, s)
    elif spec.hierarchy is not None and spec.hierarchy.groups is not None:
        middle = [{**_group_recoding(name, spec, s), "declared": True}]
    else:
        middle = []
    levels: list[dict[str, Any] | None] = [None]
    for i, rec in enumerate([*middle, _suppressed_recoding()], start=1):
        levels.append({**rec, "column": name, "level": i})
    return levels


def describe_levels(levels: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """Words for each level: "value", "bands of 10", "year", ..., "*"."""
    out = []
    for rec in levels:
        if rec is None:
            out.append("value")
        elif rec["type"] == "suppressed":
            out.append(SUPPRESSED_LABEL)
        else:
            out.append(str(rec["how"]))
    return out


def apply_recoding(s: pd.Series, rec: Mapping[str, Any]) -> pd.Series:
    """One column recoded to a level. Nulls stay null except under `*`."""
    kind = rec["type"]
    if kind == "intervals":
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        edges = np.asarray(rec["edges"], dtype=float)
        labels = np.asarray(rec["labels"], dtype=object)
        idx = np.searchsorted(edges, x, side="right") - 1
        idx = np.clip(idx, 0, len(labels) - 1)
        out = cast(np.ndarray, np.where(np.isnan(x), None, labels[idx]))
        return pd.Series(pd.array(out.tolist(), dtype="string"), index=s.index)
    if kind == "year":
        t = pd.to_datetime(s, errors="coerce")
        return t.dt.year.astype("Int64").clip(rec["min"], rec["max"])
    if kind == "decade":
        t = pd.to_datetime(s, errors="coerce")
        years = t.dt.year.to_numpy(dtype=float, na_value=np.nan)
        first = rec["min"] // 10
        idx = np.clip(
            np.nan_to_num(np.floor(np.clip(years, rec["min"], rec["max"]) / 10), nan=first) - first,
            0,
            len(rec["labels"]) - 1,
        ).astype(np.int64)
        out = cast(np.ndarray, np.where(np.isnan(years), None, np.asarray(rec["labels"], dtype=object)[idx]))
        return pd.Series(pd.array(out.tolist(), dtype="string"), index=s.index)
    if kind == "month":
        t = pd.to_datetime(s, errors="coerce")
        labels = rec["labels"]
        first = int(labels[0][:4]) * 12 + int(labels[0][5:7]) - 1
        months = (t.dt.year * 12 + t.dt.month - 1).to_numpy(dtype=float, na_value=np.nan)
        idx = np.clip(np.nan_to_num(months, nan=first) - first, 0, len(labels) - 1).astype(np.int64)
        out = cast(np.ndarray, np.where(np.isnan(months), None, np.asarray(labels, dtype=object)[idx]))
        return pd.Series(pd.array(out.tolist(), dtype="string"), index=s.index)
    if kind == "groups":
        mapping = rec["mapping"]
        codes, uniques = pd.factorize(s)
        labels = np.array([mapping.get(_key(v), _key(v)) for v in uniques] + [None], dtype=object)
        return pd.Series(pd.array(labels[codes].tolist(), dtype="string"), index=s.index)
    if kind == "suppressed":
        return pd.Series(pd.array([SUPPRESSED_LABEL] * len(s), dtype="string"), index=s.index)
    raise ValueError(f"unknown recoding {kind!r}")


def generalised_spec(spec: ColumnSpec, rec: Mapping[str, Any]) -> ColumnSpec:
    """The public description of a column released at a level: exactly the labels it can take."""
    common: dict[str, Any] = {"learned": list(spec.learned), "description": f"generalised: {rec['how']}"}
    if rec["type"] == "suppressed":
        return ColumnSpec(
            kind="categorical",
            values=[SUPPRESSED_LABEL],
            learned=list(spec.learned),
            description="suppressed: every value, null included, replaced by *",
        )
    if rec["type"] == "year":
        return ColumnSpec(
            kind="ordinal", min=rec["min"], max=rec["max"], integer=True, nullable=spec.nullable, **common
        )
    kind: Literal["categorical", "ordinal"] = "categorical" if rec["type"] == "groups" else "ordinal"
    return ColumnSpec(kind=kind, values=list(rec["labels"]), nullable=spec.nullable, **common)


# ----------------------------------------------------------------------------------
# information loss (Iyengar's Loss Metric)
# ----------------------------------------------------------------------------------


def _days(a: dt.date, b: dt.date) -> int:
    return (b - a).days + 1


def label_losses(rec: Mapping[str, Any]) -> dict[Any, float]:
    """LM of each label of a level: (m - 1) / (M - 1) of the declared domain (a share of the range when continuous)."""
    kind = rec["type"]
    if kind == "intervals":
        e = [float(x) for x in rec["edges"]]
        labels = rec["labels"]
        if rec["integer"]:
            sizes = [e[i + 1] - e[i] for i in range(len(labels) - 1)] + [e[-1] - e[-2] + 1]
            total = e[-1] - e[0] + 1
            return {lab: ((m - 1) / (total - 1) if total > 1 else 1.0) for lab, m in zip(labels, sizes, strict=True)}
        total = e[-1] - e[0]
        return {lab: ((e[i + 1] - e[i]) / total if total > 0 else 1.0) for i, lab in enumerate(labels)}
    if kind in ("month", "year", "decade"):
        first, last = dt.date.fromisoformat(rec["first"]), dt.date.fromisoformat(rec["last"])
        total = _days(first, last)
        out: dict[Any, float] = {}

        def share(a: dt.date, b: dt.date) -> float:
            m = _days(max(a, first), min(b, last))
            return (m - 1) / (total - 1) if total > 1 else 1.0

        if kind == "month":
            for lab in rec["labels"]:
                y, mo = int(lab[:4]), int(lab[5:7])
                end = dt.date(y + (mo == 12), mo % 12 + 1, 1) - dt.timedelta(days=1)
                out[lab] = share(dt.date(y, mo, 1), end)
        elif kind == "year":
            for y in range(rec["min"], rec["max"] + 1):
                out[y] = share(dt.date(y, 1, 1), dt.date(y, 12, 31))
        else:
            for lab in rec["labels"]:
                a, b = (int(p) for p in lab.split("-"))
                out[lab] = share(dt.date(a, 1, 1), dt.date(b, 12, 31))
        return out
    if kind == "groups":
        members = Counter(rec["mapping"].values())
        group_sizes = {lab: members.get(lab, 1) for lab in rec["labels"]}
        total = sum(group_sizes.values())
        return {lab: ((m - 1) / (total - 1) if total > 1 else 1.0) for lab, m in group_sizes.items()}
    if kind == "suppressed":
        return {SUPPRESSED_LABEL: 1.0}
    raise ValueError(f"unknown recoding {kind!r}")


def _level_arrays(s: pd.Series, rec: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Class codes and per-row LM of one column at one level."""
    if rec is None:
        return codes_of(s), np.zeros(len(s))
    recoded = apply_recoding(s, rec)
    codes, uniques = pd.factorize(recoded, use_na_sentinel=False)
    table = label_losses(rec)
    per_unique = np.array([0.0 if pd.isna(u) else table.get(u, table.get(_key(u), 1.0)) for u in uniques])
    return np.asarray(codes, dtype=np.int64), per_unique[codes] if len(codes) else np.zeros(0)


def describe_node(levels: Mapping[str, int], labels: Mapping[str, Sequence[str]]) -> str:
    """ "dob generalised to year, age to bands of 10; sex, race kept" in a steward's words."""
    changed = [(q, labels[q][lv]) for q, lv in levels.items() if lv > 0]
    kept = [q for q, lv in levels.items() if lv == 0]
    parts = []
    for i, (q, how) in enumerate(changed):
        words = "suppressed (*)" if how == SUPPRESSED_LABEL else f"to {how}"
        parts.append(f"{q} {'generalised ' if i == 0 and how != SUPPRESSED_LABEL else ''}{words}")
    text = ", ".join(parts) if parts else "no quasi-identifier generalised"
    if kept and changed:
        text += "; " + ", ".join(kept) + " kept"
    return text

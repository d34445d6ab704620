"""Generalisation of quasi-identifiers: hierarchies from the public schema and an optimal lattice search.

Everything here reads only the public schema and the synthetic output (or, for
`preflight_disclosure`, the schema, the policy and the requested row count), so
it is post-processing and costs no privacy budget.

**Hierarchies.** Each quasi-identifier gets a list of nested levels, level 0
being the value as synthesized and the last `*` (the value suppressed: every
row, null included, in one class):

* numeric: the declared `band` or `edges` first, when given; then bands of
  growing width, each a multiple of the one before (so every band lies inside
  one band of the next level), chosen among 1, 2, 5 x 10^j and anchored at
  multiples of the width inside the declared bounds (age 17..90: 2, 10, 20);
* datetime: day -> month -> year -> decade (from the declared granularity on);
* categorical: the declared `groups`, when given.

A null stays null (a class of its own) at every level but `*`.

**Information loss.** Iyengar's Loss Metric (LM, "Transforming data to satisfy
privacy constraints", KDD 2002): a value generalised to a set of m of the M
values of its declared domain loses (m - 1) / (M - 1) (an interval of a
continuous column: its width over the declared range; dates counted in days,
each interval clipped to the bounds); a value kept loses 0, `*` loses 1. A
node's loss is the mean over rows and quasi-identifiers, a suppressed row
counting 1 for every quasi-identifier. LM is used because it weighs how much
each released value says rather than how high in a hierarchy it sits, is
comparable across columns of different kinds, and prices suppression and
generalisation on one scale, which is what choosing between them needs.

**Search.** A node (one level per quasi-identifier) is acceptable when at most
`max_suppression` of the rows fall in classes below k. Acceptability is
monotone (a generalisation of an acceptable node is acceptable), but LM with
suppression is not (generalising can lower the loss by sparing rows), so
pruning the successors of acceptable nodes would not be optimal. Instead every
node has a lower bound on its loss that needs no class computation: the LM of
its generalisation alone, averaged over all rows (a suppressed row counts 1,
never less than its generalised loss). Nodes are visited in order of that
bound and the search stops when the bound exceeds the best acceptable loss
found: branch and bound, exact, and it evaluates a few nodes of a lattice of
hundreds. The top node (every quasi-identifier `*`) puts all rows in one
class, so a table of at least k rows always has an acceptable node.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privacy._classes import codes_of, combine_codes, sizes_from_ids
from privacy.errors import SchemaError
from privacy.schema import NUMERIC_KINDS, ColumnSpec, _key

__all__ = [
    "LatticeChoice",
    "column_levels",
    "apply_recoding",
    "generalised_spec",
    "choose_generalisation",
    "search_lattice",
    "describe_levels",
    "DisclosurePreflight",
    "preflight_disclosure",
    "expected_share_below_k",
    "check_disclosure_request",
]

logger = logging.getLogger(__name__)

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
    lo = float(spec.min) if spec.min is not None else (float(present.min()) if len(present) else 0.0)
    hi = float(spec.max) if spec.max is not None else (float(present.max()) if len(present) else lo)
    return lo, hi


def _interval_recoding(name: str, spec: ColumnSpec, bounds: tuple[float, float], *, band: float | None = None,
                       edges: Sequence[float] | None = None) -> dict[str, Any]:
    """Bands or edges: intervals [e_i, e_{i+1}), the last closed, clipped to the bounds."""
    lo, hi = bounds
    if band is not None:
        b = float(band)
        first = round(math.floor(round(lo / b, 9)) * b, _decimals(b))
        count = int(math.ceil((hi - first) / b))
        if count > MAX_INTERVALS:
            raise SchemaError(f"column '{name}': a band of {_fmt(b)} makes {count} intervals between the bounds; "
                              "declare a wider band", field="schema")
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
    lo = pd.Timestamp(spec.min) if spec.min is not None else (present.min() if len(present) else pd.Timestamp(1970, 1, 1))
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
                    f"column '{name}': value {m!r} is in two hierarchy groups ({mapping[k]}, {group}); "
                    "put it in one", field="schema")
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
                    "put the value in it", field="schema")
            labels.append(v)
    return {"type": "groups", "how": "groups " + ", ".join(str(g) for g in spec.hierarchy.groups),
            "mapping": mapping, "labels": labels}


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
            raise SchemaError(f"column '{name}' is {spec.kind}: band/edges hierarchies apply to numeric "
                              "columns; use groups", field="schema")
    elif h.granularity is not None:
        if spec.kind != "datetime":
            raise SchemaError(f"column '{name}' is {spec.kind}: granularity applies to datetime columns",
                              field="schema")
    elif h.groups is not None:
        if numeric or spec.kind == "datetime":
            raise SchemaError(f"column '{name}' is {spec.kind}: groups apply to categorical columns; "
                              "use band or edges", field="schema")
    else:
        raise SchemaError(f"column '{name}' declares an empty hierarchy; give band, edges, granularity "
                          "or groups", field="schema")


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
        steps = steps[steps.index(spec.hierarchy.granularity):]
    out = []
    for i, step in enumerate(steps):
        rec = _date_recoding(step, lo, hi)
        classes = rec["max"] - rec["min"] + 1 if step == "year" else len(rec["labels"])
        if classes > 1 or i == 0 and spec.hierarchy is not None:
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
        out = np.where(np.isnan(x), None, labels[idx])
        return pd.Series(pd.array(out.tolist(), dtype="string"), index=s.index)
    if kind == "year":
        t = pd.to_datetime(s, errors="coerce")
        return t.dt.year.astype("Int64").clip(rec["min"], rec["max"])
    if kind == "decade":
        t = pd.to_datetime(s, errors="coerce")
        years = t.dt.year.to_numpy(dtype=float, na_value=np.nan)
        first = rec["min"] // 10
        idx = np.clip(np.nan_to_num(np.floor(np.clip(years, rec["min"], rec["max"]) / 10), nan=first) - first,
                      0, len(rec["labels"]) - 1).astype(np.int64)
        out = np.where(np.isnan(years), None, np.asarray(rec["labels"], dtype=object)[idx])
        return pd.Series(pd.array(out.tolist(), dtype="string"), index=s.index)
    if kind == "month":
        t = pd.to_datetime(s, errors="coerce")
        labels = rec["labels"]
        first = int(labels[0][:4]) * 12 + int(labels[0][5:7]) - 1
        months = (t.dt.year * 12 + t.dt.month - 1).to_numpy(dtype=float, na_value=np.nan)
        idx = np.clip(np.nan_to_num(months, nan=first) - first, 0, len(labels) - 1).astype(np.int64)
        out = np.where(np.isnan(months), None, np.asarray(labels, dtype=object)[idx])
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
    common = {"learned": list(spec.learned), "description": f"generalised: {rec['how']}"}
    if rec["type"] == "suppressed":
        return ColumnSpec(kind="categorical", values=[SUPPRESSED_LABEL], learned=list(spec.learned),
                          description="suppressed: every value, null included, replaced by *")
    if rec["type"] == "year":
        return ColumnSpec(kind="ordinal", min=rec["min"], max=rec["max"], integer=True, nullable=spec.nullable,
                          **common)
    kind = "categorical" if rec["type"] == "groups" else "ordinal"
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
        sizes = {lab: members.get(lab, 1) for lab in rec["labels"]}
        total = sum(sizes.values())
        return {lab: ((m - 1) / (total - 1) if total > 1 else 1.0) for lab, m in sizes.items()}
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


# ----------------------------------------------------------------------------------
# the lattice search
# ----------------------------------------------------------------------------------


@dataclass
class LatticeResult:
    """The node chosen (a level per quasi-identifier) and what the search did to find it."""

    levels: tuple[int, ...]
    acceptable: bool
    rows_suppressed: int
    information_loss: float
    generalisation_loss: float
    nodes: int
    nodes_evaluated: int


def search_lattice(
    codes: Sequence[Sequence[np.ndarray]],
    losses: Sequence[Sequence[np.ndarray]],
    k: int,
    max_suppressed_rows: int,
    *,
    exhaustive: bool = False,
) -> LatticeResult:
    """The node of least LM whose classes below k hold at most `max_suppressed_rows` rows.

    `codes[q][l]` and `losses[q][l]` are the class codes and per-row LM of
    quasi-identifier q at level l. Ties go to fewer suppressed rows, then to the
    lower node. `exhaustive` evaluates every node (for tests); the answer is the
    same. When no node is acceptable (fewer than k rows), the top node is
    returned with `acceptable` False.
    """
    q = len(codes)
    n = len(codes[0][0]) if q else 0
    bounds = [[float(arr.mean()) if n else 0.0 for arr in per_q] for per_q in losses]
    nodes = list(itertools.product(*(range(len(per_q)) for per_q in codes)))

    def bound(node: tuple[int, ...]) -> float:
        return sum(bounds[i][lv] for i, lv in enumerate(node)) / q

    nodes.sort(key=lambda nd: (bound(nd), sum(nd), nd))
    best: tuple[float, int, int, tuple[int, ...]] | None = None
    best_extra: tuple[float, float] = (1.0, 1.0)
    evaluated = 0
    for node in nodes:
        lb = bound(node)
        if best is not None and not exhaustive and lb > best[0] + _TIE:
            break
        evaluated += 1
        ids = combine_codes([codes[i][lv] for i, lv in enumerate(node)], n)
        small = sizes_from_ids(ids) < k
        suppressed = int(small.sum())
        if suppressed > max_suppressed_rows:
            continue
        row = np.sum([losses[i][lv] for i, lv in enumerate(node)], axis=0) / q
        loss = (float(row[~small].sum()) + suppressed) / n if n else 0.0
        key = (round(loss, 12), suppressed, sum(node), node)
        if best is None or key < best:
            best = key
            kept = int(n - suppressed)
            best_extra = (loss, float(row[~small].sum()) / kept if kept else 0.0)
    if best is None:
        top = tuple(len(per_q) - 1 for per_q in codes)
        return LatticeResult(top, False, n, 1.0, 1.0, len(nodes), evaluated)
    return LatticeResult(best[3], True, best[1], best_extra[0], best_extra[1], len(nodes), evaluated)


@dataclass
class LatticeChoice:
    """What `choose_generalisation` decided: the recodings to apply and a public summary of the search."""

    recodings: dict[str, dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


def choose_generalisation(
    table: pd.DataFrame,
    specs: Mapping[str, ColumnSpec],
    quasi_identifiers: Sequence[str],
    k: int,
    max_suppression: float,
) -> LatticeChoice:
    """Pick the least-loss generalisation of the quasi-identifiers of a synthetic table (see the module doc)."""
    import time

    started = time.perf_counter()
    qis = list(quasi_identifiers)
    n = len(table)
    levels = {q: column_levels(q, specs[q], table[q]) for q in qis}
    arrays = {q: [_level_arrays(table[q], rec) for rec in levels[q]] for q in qis}
    allowed = int(math.floor(max_suppression * n + 1e-9))
    result = search_lattice([[a[0] for a in arrays[q]] for q in qis], [[a[1] for a in arrays[q]] for q in qis],
                            k, allowed)
    recodings: dict[str, dict[str, Any]] = {}
    chosen: dict[str, int] = {}
    for q, lv in zip(qis, result.levels, strict=True):
        chosen[q] = lv
        rec = levels[q][lv]
        if rec is not None:
            recodings[q] = {**rec, "information_loss": float(arrays[q][lv][1].mean()) if n else 0.0}
    labels = {q: describe_levels(levels[q]) for q in qis}
    summary = {
        "metric": "loss metric (Iyengar 2002): 0 = every value as synthesized, 1 = every value suppressed",
        "k": k,
        "max_suppression": max_suppression,
        "rows_allowed_suppressed": allowed,
        "levels": chosen,
        "level_labels": labels,
        "node": describe_node(chosen, labels),
        "acceptable": result.acceptable,
        "information_loss": result.information_loss,
        "generalisation_loss": result.generalisation_loss,
        "rows_suppressed": result.rows_suppressed,
        "nodes": result.nodes,
        "nodes_evaluated": result.nodes_evaluated,
    }
    logger.info("lattice search: %d of %d nodes evaluated in %.3f s; chosen %s, loss %.4f, %d suppressed",
                result.nodes_evaluated, result.nodes, time.perf_counter() - started, summary["node"],
                result.information_loss, result.rows_suppressed)
    return LatticeChoice(recodings, summary)


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


# ----------------------------------------------------------------------------------
# preflight: what the public schema alone predicts
# ----------------------------------------------------------------------------------

#: suppress mode refuses when even the finest quasi-identifier alone is expected to leave this share below k
REFUSE_SHARE = 0.5


def _domain_size(spec: ColumnSpec, rec: Mapping[str, Any] | None) -> float | None:
    """Classes a level can form, from the schema only (null counted as one); None when the schema leaves it open."""
    null = 1 if spec.nullable else 0
    if rec is not None:
        if rec["type"] == "suppressed":
            return 1.0
        if rec["type"] == "year":
            return float(rec["max"] - rec["min"] + 1 + null)
        return float(len(rec["labels"]) + null)
    if spec.kind == "categorical" or spec.values is not None:
        return float(len(spec.values) + null) if spec.values is not None else None
    if not spec.has_bounds:
        return None
    if spec.kind == "datetime":
        lo, hi = spec.numeric_bounds()
        return float(math.floor(hi) - math.ceil(lo) + 1 + null)
    if spec.is_integer:
        lo, hi = spec.numeric_bounds()
        return float(math.floor(hi) - math.ceil(lo) + 1 + null)
    return math.inf  # continuous values: every one its own class


def expected_share_below_k(rows: int, cells: float, k: int) -> float:
    """Expected share of rows in classes below k when `rows` fall uniformly over `cells` classes.

    A row's class holds it and Binomial(rows - 1, 1 / cells) others. Uniform
    spread is the pessimistic case when most rows would be lost (real and
    synthetic data concentrate), so it is a fair ground for a refusal only far
    above the limit.
    """
    from scipy.stats import binom

    if rows < k:
        return 1.0
    if k <= 1 or cells <= 1:
        return 0.0
    if math.isinf(cells):
        return 1.0
    return float(binom.cdf(k - 2, rows - 1, 1.0 / cells))


def _declarable(rec: Mapping[str, Any]) -> str | None:
    """How a steward would declare this level in the schema, when the schema language can say it."""
    if rec["type"] in ("month", "year"):
        return f"granularity: {rec['type']}"
    if rec["type"] == "intervals" and str(rec["how"]).startswith("bands of "):
        return f"band: {rec['how'].removeprefix('bands of ')}"
    return None


@dataclass
class DisclosurePreflight:
    """What k-anonymity is expected to do to a release of `rows` rows, from the public schema and policy alone."""

    rows: int
    k: int | None
    suppression: str
    max_suppression: float
    quasi_identifiers: list[str]
    expected_share: float | None = None      # QIs as declared, uniform over the product of their domains
    finest: str | None = None                # the QI that alone splits the rows most
    finest_share: float | None = None        # the expected share below k from that QI alone
    node: str | None = None                  # generalise: the node the schema predicts
    node_share: float | None = None
    refused: bool = False
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _predict_node(qis: Sequence[str], specs: Mapping[str, ColumnSpec], levels: Mapping[str, list],
                  rows: int, k: int, limit: float) -> tuple[dict[str, int], float, float] | None:
    """The least expected-loss node whose expected share below k is within the limit (uniform spread)."""
    sizes = {q: [_domain_size(specs[q], rec) or 1.0 for rec in levels[q]] for q in qis}
    mean_loss = {q: [0.0 if rec is None else float(np.mean(list(label_losses(rec).values()))) for rec in levels[q]]
                 for q in qis}
    best = None
    for node in itertools.product(*(range(len(levels[q])) for q in qis)):
        cells = math.prod(sizes[q][lv] for q, lv in zip(qis, node, strict=True))
        share = expected_share_below_k(rows, cells, k)
        if share > limit:
            continue
        g = sum(mean_loss[q][lv] for q, lv in zip(qis, node, strict=True)) / len(qis)
        loss = g * (1 - share) + share
        key = (round(loss, 12), sum(node), node)
        if best is None or key < best[0]:
            best = (key, share, loss)
    if best is None:
        return None
    return dict(zip(qis, best[0][2], strict=True)), best[1], best[2]


def preflight_disclosure(schema: Any, policy: Any, rows: int, *, max_rows: int | None = None) -> DisclosurePreflight:
    """Expected suppression of a release of `rows` rows, and whether to refuse it, before any data is read.

    `suppress`: the QI domains as declared, rows spread uniformly. Refused
    when fewer rows than k are asked for, or when even the finest
    quasi-identifier alone is expected to leave at least `REFUSE_SHARE` of the
    rows (and more than the policy's limit) in classes below k; a joint
    estimate over the limit is a warning (uniform spread overstates it on
    skewed data). `generalise`: the `*` level always puts every row in one
    class, so only fewer rows than k is refused; the node the schema predicts
    is reported, with a warning when it suppresses a quasi-identifier whole.
    """
    qis = list(schema.quasi_identifiers)
    k = policy.effective_k(bool(qis))
    out = DisclosurePreflight(rows=rows, k=k, suppression=policy.suppression, max_suppression=policy.max_suppression,
                              quasi_identifiers=qis)
    if not qis or k is None:
        return out
    limit = policy.max_suppression
    names = ", ".join(qis)
    if rows < k:
        out.refused = True
        out.message = (f"{rows} row(s) cannot reach k = {k} on the quasi-identifiers ({names}): every row would "
                       f"be suppressed. The privacy budget was not touched. Ask for at least {k} rows"
                       + (f", or ask the steward for k = {rows}" if rows >= 1 else ""))
        return out
    specs = {q: schema.columns[q] for q in qis}
    levels = {q: column_levels(q, specs[q]) for q in qis}
    open_qis = [q for q in qis if _domain_size(specs[q], None) is None]
    sizes = {q: _domain_size(specs[q], None) for q in qis if q not in open_qis}
    cells = math.prod(sizes.values()) if sizes else 1.0
    out.expected_share = expected_share_below_k(rows, cells, k)
    if sizes:
        out.finest = max(sizes, key=lambda q: (sizes[q], -qis.index(q)))
        out.finest_share = expected_share_below_k(rows, sizes[out.finest], k)
    predicted = _predict_node(qis, specs, levels, rows, k, limit)
    if predicted is not None:
        chosen, out.node_share, _ = predicted
        out.node = describe_node(chosen, {q: describe_levels(levels[q]) for q in qis})
    unknown = (f" ({', '.join(open_qis)} left open in the schema and not counted)" if open_qis else "")

    if policy.suppression == "generalise":
        if predicted is not None and any(levels[q][lv] is not None and levels[q][lv]["type"] == "suppressed"
                                         for q, lv in chosen.items()):
            out.warnings.append(
                f"with {rows:,} rows, k = {k} and at most {limit:.0%} suppressed, the public schema predicts "
                f"{out.node}{unknown}: declare fewer quasi-identifiers, ask for more rows, or lower k to keep "
                "more detail (an estimate: the search on the synthetic output decides)")
        return out

    share = out.finest_share or 0.0
    if out.expected_share <= limit:
        return out
    detail = (f"with suppression: suppress, k = {k} and {rows:,} rows spread over the declared domains of "
              f"{names}{unknown}, about {out.expected_share:.0%} of the rows are expected in classes below k "
              f"(the policy allows {limit:.0%})")
    advice = ["use suppression: generalise" + (f" (expected: {out.node})" if out.node else "")]
    fin = out.finest
    if fin is not None:
        for rec in levels[fin][1:]:
            if rec is None or rec["type"] == "suppressed":
                continue
            how = _declarable(rec)
            if how and expected_share_below_k(rows, _domain_size(specs[fin], rec) or 1.0, k) <= limit:
                advice.append(f"declare a hierarchy for {fin} ({how}) and use suppression: generalise")
                break
    for smaller_k in range(k - 1, 1, -1):
        if expected_share_below_k(rows, cells, smaller_k) <= limit:
            advice.append(f"ask the steward for k = {smaller_k}")
            break
    need = _rows_needed(cells, k, limit, max_rows)
    if need is not None:
        advice.append(f"ask for at least {need:,} rows")
    if fin is not None and share >= max(REFUSE_SHARE, limit):
        out.refused = True
        out.message = (f"{detail}; {fin} alone has {sizes[fin]:,.0f} values, so about {share:.0%} of the rows "
                       "would be suppressed whatever the other columns do. The privacy budget was not touched. "
                       "To release, " + "; or ".join(advice))
    else:
        out.warnings.append(f"{detail} (a pessimistic estimate on skewed data). To lose fewer rows, "
                            + "; or ".join(advice))
    return out


def _rows_needed(cells: float, k: int, limit: float, max_rows: int | None) -> int | None:
    """The fewest rows whose uniform estimate is within the limit, when that is at most max_rows."""
    if math.isinf(cells) or max_rows is None:
        return None
    if expected_share_below_k(max_rows, cells, k) > limit:
        return None
    lo, hi = k, max_rows
    while lo < hi:
        mid = (lo + hi) // 2
        if expected_share_below_k(mid, cells, k) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return lo


def check_disclosure_request(schema: Any, policy: Any, rows: int, *, max_rows: int | None = None) -> list[str]:
    """Refuse (DisclosureInfeasible) a release the preflight expects to lose its rows; else its warnings."""
    result = preflight_disclosure(schema, policy, rows, max_rows=max_rows)
    if result.refused:
        from privacy.errors import DisclosureInfeasible

        raise DisclosureInfeasible(result.message or "k-anonymity would suppress the release", field="rows")
    return list(result.warnings)

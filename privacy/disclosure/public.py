"""Disclosure control that is post-processing: it reads only the synthetic output and the public schema.

Top/bottom coding, rounding, generalisation and suppression of rare
quasi-identifier combinations (`apply_disclosure_control`), the class-size
measures it reports (k-anonymity, l-diversity), and the small-cell rules of
aggregate releases (`apply_small_cell_rules`). Every report here counts
synthetic rows or published cells and may be published.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privacy._classes import codes_of, combine_codes, sizes_from_ids
from privacy.errors import SchemaError
from privacy.generalise import _decimals, apply_recoding, choose_generalisation, generalised_spec
from privacy.policy import DatasetPolicy
from privacy.schema import NUMERIC_KINDS, ColumnSpec, PublicSchema

__all__ = [
    "CELL_LABEL_COLUMNS",
    "DisclosureReport",
    "SmallCellReport",
    "apply_disclosure_control",
    "apply_small_cell_rules",
    "class_sizes",
    "k_anonymity",
    "l_diversity",
    "recode_like",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------
# reports
# ----------------------------------------------------------------------------------


@dataclass
class DisclosureReport:
    """What post-processing did to the synthetic output. Public: it counts only synthetic rows."""

    k: int | None
    l: int | None  # noqa: E741 - the name of the property
    quasi_identifiers: list[str]
    sensitive: list[str]
    suppression_mode: str
    rows_in: int
    rows_out: int
    coding: dict[str, dict[str, Any]] = field(default_factory=dict)
    generalisation: dict[str, dict[str, Any]] = field(default_factory=dict)
    generalisation_trace: list[dict[str, Any]] = field(default_factory=list)
    lattice: dict[str, Any] = field(default_factory=dict)
    suppression: dict[str, Any] = field(default_factory=dict)
    k_anonymity_before: dict[str, Any] = field(default_factory=dict)
    k_anonymity: dict[str, Any] = field(default_factory=dict)
    l_diversity: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_suppressed(self) -> int:
        return int(self.suppression.get("rows_suppressed", 0))

    @property
    def generalised_columns(self) -> list[str]:
        return list(self.generalisation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "public": True,
            "k": self.k,
            "l": self.l,
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": list(self.sensitive),
            "suppression_mode": self.suppression_mode,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "coding": self.coding,
            "generalisation": self.generalisation,
            "generalisation_trace": self.generalisation_trace,
            "lattice": self.lattice,
            "suppression": self.suppression,
            "k_anonymity_before": self.k_anonymity_before,
            "k_anonymity": self.k_anonymity,
            "l_diversity": self.l_diversity,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DisclosureReport:
        fields = {k: v for k, v in data.items() if k != "public"}
        return cls(**fields)


@dataclass
class SmallCellReport:
    """What the small-cell rules did to an aggregate table (counts of cells, not of people)."""

    threshold: int | float
    rounding_base: int | float
    count_columns: list[str]
    cells: int
    suppressed: dict[str, int]
    suppressed_after_rounding: dict[str, int]
    rounded: dict[str, int]
    min_published: float | None
    suppressed_with_cell: dict[str, int] = field(default_factory=dict)

    @property
    def cells_suppressed(self) -> int:
        return (
            sum(self.suppressed.values())
            + sum(self.suppressed_after_rounding.values())
            + sum(self.suppressed_with_cell.values())
        )

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["cells_suppressed"] = self.cells_suppressed
        out["public"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmallCellReport:
        return cls(**{k: v for k, v in data.items() if k not in ("public", "cells_suppressed")})


# ----------------------------------------------------------------------------------
# class sizes, k-anonymity, l-diversity
# ----------------------------------------------------------------------------------


_codes = codes_of
_combine = combine_codes
_sizes_from_ids = sizes_from_ids


def _class_ids(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    return _combine([_codes(table[c]) for c in columns], len(table))


def class_sizes(table: pd.DataFrame, quasi_identifiers: Sequence[str]) -> np.ndarray:
    """For each row, the number of rows sharing its quasi-identifier combination."""
    return _sizes_from_ids(_class_ids(table, quasi_identifiers))


def k_anonymity(table: pd.DataFrame, quasi_identifiers: Sequence[str], k: int | None) -> dict[str, Any]:
    """Smallest class size, number of classes, and the rows and classes below k."""
    if not quasi_identifiers:
        return {"applicable": False, "reason": "no quasi-identifiers declared"}
    ids = _class_ids(table, quasi_identifiers)
    counts = np.bincount(ids) if len(ids) else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {
        "applicable": True,
        "k": k,
        "rows": int(len(table)),
        "classes": int(len(counts)),
        "smallest_class": int(counts.min()) if len(counts) else None,
        "median_class": float(np.median(counts)) if len(counts) else None,
    }
    if k is not None:
        small = counts < k
        rows_below = int(counts[small].sum())
        out.update(
            classes_below_k=int(small.sum()),
            rows_in_classes_below_k=rows_below,
            share_rows_below_k=(rows_below / len(table)) if len(table) else 0.0,
        )
    return out


def l_diversity(
    table: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str],
    l: int | None,  # noqa: E741
) -> dict[str, dict[str, Any]]:
    """Distinct l-diversity of each sensitive column within the quasi-identifier classes.

    l of a class is the number of distinct non-null sensitive values in it.
    """
    out: dict[str, dict[str, Any]] = {}
    if not quasi_identifiers or not sensitive:
        return out
    ids = _class_ids(table, quasi_identifiers)
    n_classes = int(ids.max()) + 1 if len(ids) else 0
    for col in sensitive:
        frame = pd.DataFrame({"cls": ids, "s": _codes(table[col])})
        frame.loc[table[col].isna().to_numpy(), "s"] = -1
        frame = frame[frame["s"] >= 0]
        distinct = frame.groupby("cls")["s"].nunique().reindex(range(n_classes), fill_value=0).to_numpy()
        entry: dict[str, Any] = {
            "l": l,
            "classes": n_classes,
            "smallest_l": int(distinct.min()) if n_classes else None,
        }
        if l is not None:
            below = distinct < l
            sizes = np.bincount(ids, minlength=n_classes) if n_classes else np.zeros(0, dtype=np.int64)
            rows_below = int(sizes[below].sum())
            entry.update(
                classes_below_l=int(below.sum()),
                share_classes_below_l=(float(below.mean()) if n_classes else 0.0),
                rows_in_classes_below_l=rows_below,
                share_rows_below_l=(rows_below / len(table)) if len(table) else 0.0,
            )
        out[col] = entry
    return out


# ----------------------------------------------------------------------------------
# coding and rounding
# ----------------------------------------------------------------------------------


def _round_to(x: np.ndarray, step: float) -> np.ndarray:
    """Nearest multiple of step, halves up, without float dust (0.1 * 3 -> 0.3)."""
    # the quotient is rounded first so that 0.15 / 0.1 = 1.4999999999999998 counts as a half
    out = np.floor(np.round(x / step, 9) + 0.5) * step
    return np.round(out, _decimals(step))


def _coding_params(spec: ColumnSpec) -> tuple[float | None, float | None, float | None, bool]:
    """Effective top code, bottom code, rounding step, and whether the result stays integer."""
    top, bottom, step = spec.top_code, spec.bottom_code, spec.round_to
    integer = spec.is_integer
    if integer:
        top = None if top is None else float(math.floor(top))
        bottom = None if bottom is None else float(math.ceil(bottom))
        if step is not None and not float(step).is_integer():
            integer = False
    return top, bottom, step, integer


def _code_values(x: np.ndarray, top: float | None, bottom: float | None, step: float | None) -> np.ndarray:
    if step is not None:
        x = _round_to(x, step)
    if top is not None or bottom is not None:
        x = np.clip(x, -np.inf if bottom is None else bottom, np.inf if top is None else top)
    return x


def _coding_spec(name: str, spec: ColumnSpec) -> dict[str, Any] | None:
    if spec.top_code is None and spec.bottom_code is None and spec.round_to is None:
        return None
    if spec.kind not in NUMERIC_KINDS or spec.values is not None:
        raise SchemaError(
            f"column '{name}' declares top_code/bottom_code/round_to, which apply to numeric columns only "
            f"(it is {spec.kind}{' with values' if spec.values is not None else ''}); remove them",
            field="schema",
        )
    top, bottom, step, integer = _coding_params(spec)
    if top is not None and bottom is not None and bottom > top:
        raise SchemaError(f"column '{name}': bottom_code ({bottom}) is above top_code ({top})", field="schema")
    return {"top_code": top, "bottom_code": bottom, "round_to": step, "integer": integer}


def _apply_coding(s: pd.Series, params: Mapping[str, Any]) -> tuple[pd.Series, dict[str, int]]:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(x)
    step, top, bottom = params["round_to"], params["top_code"], params["bottom_code"]
    rounded = _round_to(x, step) if step is not None else x
    counts = {
        "rounded": int(np.sum(present & (rounded != x))) if step is not None else 0,
        "top_coded": int(np.sum(present & (rounded > top))) if top is not None else 0,
        "bottom_coded": int(np.sum(present & (rounded < bottom))) if bottom is not None else 0,
    }
    coded = _code_values(x, top, bottom, step)
    if params["integer"]:
        out = pd.Series(pd.array(np.where(present, np.round(coded), np.nan), dtype="Float64")).round().astype("Int64")
    else:
        out = pd.Series(coded, dtype="float64")
    out.index = s.index
    return out, counts


def _coded_spec(spec: ColumnSpec, params: Mapping[str, Any]) -> ColumnSpec:
    update: dict[str, Any] = {}
    for bound in ("min", "max"):
        v = getattr(spec, bound)
        if v is not None:
            new = float(
                _code_values(np.array([float(v)]), params["top_code"], params["bottom_code"], params["round_to"])[0]
            )
            update[bound] = int(new) if params["integer"] or new.is_integer() else new
    if spec.is_integer and not params["integer"]:
        update["integer"] = False
        if spec.kind == "ordinal":
            update["kind"] = "continuous"
    return spec.model_copy(update=update)


# ----------------------------------------------------------------------------------
# generalisation
# ----------------------------------------------------------------------------------


def recode_like(table: pd.DataFrame, report: DisclosureReport | Mapping[str, Any]) -> pd.DataFrame:
    """Apply a report's coding and generalisation (not its suppression) to another table.

    Used to compare real rows with a released table in the released
    representation. The recodings are the ones the report chose from the
    synthetic output; nothing about `table` influences them.
    """
    rep = report if isinstance(report, DisclosureReport) else DisclosureReport.from_dict(report)
    out = table.copy()
    for name, params in rep.coding.items():
        if name in out.columns:
            out[name], _ = _apply_coding(out[name], params)
    for name, rec in rep.generalisation.items():
        if name in out.columns:
            out[name] = apply_recoding(out[name], rec)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------------
# the post-processing pipeline
# ----------------------------------------------------------------------------------


def apply_disclosure_control(
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    policy: DatasetPolicy,
) -> tuple[pd.DataFrame, PublicSchema, DisclosureReport]:
    """Post-process a synthetic table with the schema's and policy's disclosure rules.

    Steps: top/bottom coding and rounding where the schema declares them;
    when the policy says `suppression: generalise`, generalisation of the
    quasi-identifiers at the node of least information loss that leaves at
    most `max_suppression` of the rows in classes below k
    (`privacy.generalise.choose_generalisation`); then removal of rows whose
    quasi-identifier combination occurs fewer than k times. Reads only `synthetic` and `schema`, so the DP guarantee holds.

    Returns the released table, the public schema that describes it exactly
    (generalised columns change kind) and a public report.
    """
    missing = [c for c in schema.output_columns if c not in synthetic.columns]
    if missing:
        raise SchemaError(f"the table lacks declared column(s) {missing}", field="schema")
    qis = list(schema.quasi_identifiers)
    k = policy.effective_k(bool(qis))
    table = synthetic[schema.output_columns].reset_index(drop=True).copy()  # exactly the declared columns
    columns = dict(schema.columns)
    report = DisclosureReport(
        k=k if qis else None,
        l=policy.l,
        quasi_identifiers=qis,
        sensitive=list(schema.sensitive),
        suppression_mode=policy.suppression,
        rows_in=len(table),
        rows_out=len(table),
    )
    if qis:
        report.k_anonymity_before = k_anonymity(table, qis, k)

    # 1. top/bottom coding and rounding
    for name, spec in schema.columns.items():
        if spec.is_dropped:
            continue
        params = _coding_spec(name, spec)
        if params is None:
            continue
        table[name], counts = _apply_coding(table[name], params)
        columns[name] = _coded_spec(spec, params)
        report.coding[name] = {**params, **counts}

    # 2. generalisation of quasi-identifiers, chosen on the synthetic output
    if qis and k is not None and policy.suppression == "generalise" and len(table):
        choice = choose_generalisation(table, columns, qis, k, policy.max_suppression)
        for name, rec in choice.recodings.items():
            rows = int(len(table)) if rec["type"] == "suppressed" else int(table[name].notna().sum())
            table[name] = apply_recoding(table[name], rec)
            columns[name] = generalised_spec(columns[name], rec)
            report.generalisation[name] = {**rec, "rows_generalised": rows}
        report.lattice = choice.summary
        if not choice.summary["acceptable"]:
            report.notes.append(f"fewer than k = {k} rows: no generalisation reaches k, every row is suppressed")
    elif qis and policy.suppression == "generalise" and not len(table):
        report.notes.append("empty table: nothing to generalise")

    # 3. suppression of rare quasi-identifier combinations
    if qis and k is not None:
        sizes = class_sizes(table, qis)
        drop = sizes < k
        report.suppression = {
            "k": k,
            "rows_suppressed": int(drop.sum()),
            "classes_suppressed": int(len(np.unique(_class_ids(table, qis)[drop]))) if drop.any() else 0,
            "share_rows_suppressed": float(drop.mean()) if len(table) else 0.0,
        }
        table = table.loc[~drop].reset_index(drop=True)
        report.k_anonymity = k_anonymity(table, qis, k)
        report.l_diversity = l_diversity(table, qis, schema.sensitive, policy.l)
    else:
        report.suppression = {"k": None, "rows_suppressed": 0, "classes_suppressed": 0, "share_rows_suppressed": 0.0}
        report.k_anonymity = k_anonymity(table, qis, k)
        if not qis:
            report.notes.append("no quasi-identifiers declared: no suppression, k-anonymity not applicable")
    report.rows_out = len(table)
    from privacy.constraints import constraints_valid_for

    released_schema = schema.model_copy(
        update={"columns": columns, "constraints": constraints_valid_for(schema.constraints, columns)}
    )
    released_schema = PublicSchema.model_validate(released_schema.model_dump())
    logger.info(
        "disclosure control: %d rows in, %d generalised column(s), %d row(s) suppressed, %d out",
        report.rows_in,
        len(report.generalisation),
        report.rows_suppressed,
        report.rows_out,
    )
    return table, released_schema, report


# ----------------------------------------------------------------------------------
# aggregate releases
# ----------------------------------------------------------------------------------


#: Columns of an aggregate table that name a cell rather than measure it; kept when the cell is suppressed.
CELL_LABEL_COLUMNS = ("table", "breakdown", "group", "column", "bin")


def apply_small_cell_rules(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int | float,
    rounding_base: int | float,
    *,
    label_columns: Sequence[str] = (),
) -> tuple[pd.DataFrame, SmallCellReport]:
    """Small-cell rules for an aggregate table (counts, histogram bins, totals).

    Every count below `threshold` is suppressed (published as null, with a
    `<column>_suppressed` flag column); every other count, totals included, is
    rounded to the nearest multiple of `rounding_base` (halves up); a count
    that rounding brings below the threshold is suppressed too.

    A suppressed cell is suppressed whole. Every other statistic of its row
    (mean, variance, quantiles, ...) is nulled as well, and so is every
    statistic of a row whose count is missing. The row's cell size is its
    `cell_count` column (a histogram bin's group), or else its `count`; when
    that is withheld, the row's other counts (bins, non-null counts) are
    withheld with it (`suppressed_with_cell` in the report). Other count
    columns are cells of their own and are kept. Label columns
    (`CELL_LABEL_COLUMNS` and `label_columns`), which name the cell, are kept.
    The rules read only the (already DP) aggregate table.
    """
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    if rounding_base <= 0:
        raise ValueError("rounding_base must be > 0")
    missing = [c for c in count_columns if c not in table.columns]
    if missing:
        raise SchemaError(f"count column(s) {missing} are not in the table", field="count_columns")
    out = table.reset_index(drop=True).copy()
    labels = set(CELL_LABEL_COLUMNS) | set(label_columns)
    statistic_columns = [c for c in out.columns if c not in labels and c not in count_columns]
    size_column = next((c for c in ("cell_count", "count") if c in count_columns), None)
    raw = {c: pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for c in count_columns}
    rounded_values = {c: _round_to(x, float(rounding_base)) for c, x in raw.items()}

    def passes(c: str) -> np.ndarray:
        x = raw[c]
        return ~np.isnan(x) & (x >= threshold) & (rounded_values[c] >= threshold)

    cell_withheld = ~passes(size_column) if size_column is not None else np.zeros(len(out), dtype=bool)
    suppressed: dict[str, int] = {}
    after: dict[str, int] = {}
    with_cell: dict[str, int] = {}
    rounded: dict[str, int] = {}
    published: list[float] = []
    withheld_rows = np.zeros(len(out), dtype=bool)
    integer_base = float(rounding_base).is_integer()
    for c in count_columns:
        x, r = raw[c], rounded_values[c]
        present = ~np.isnan(x)
        small = present & (x < threshold)
        small_after = present & ~small & (r < threshold)
        keep = present & ~small & ~small_after
        by_cell = keep & cell_withheld
        keep &= ~by_cell
        withheld_rows |= ~keep
        suppressed[c] = int(small.sum())
        after[c] = int(small_after.sum())
        if by_cell.any():
            with_cell[c] = int(by_cell.sum())
        rounded[c] = int(np.sum(keep & (r != x)))
        values = np.where(keep, r, np.nan)
        if integer_base:
            out[c] = pd.Series(pd.array(values, dtype="Float64")).round().astype("Int64")
        else:
            out[c] = values
        out[f"{c}_suppressed"] = small | small_after | by_cell
        published.extend(values[keep].tolist())
    for c in statistic_columns:
        out[c] = out[c].mask(withheld_rows)
    report = SmallCellReport(
        threshold=threshold,
        rounding_base=rounding_base,
        count_columns=list(count_columns),
        cells=int(len(out) * len(count_columns)),
        suppressed=suppressed,
        suppressed_after_rounding=after,
        rounded=rounded,
        min_published=float(min(published)) if published else None,
        suppressed_with_cell=with_cell,
    )
    return out, report

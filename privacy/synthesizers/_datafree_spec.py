"""The spec of the data-free `spec` method (privacy/synthesizers/datafree.py): reading it, and one column's
distribution, formula or draw."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from privacy.errors import MethodOptionError
from privacy.schema import ColumnSpec

# ----------------------------------------------------------------------------------
# spec
# ----------------------------------------------------------------------------------

_RESERVED = {
    "distribution",
    "kind",
    "min",
    "max",
    "integer",
    "null_rate",
    "values",
    "probabilities",
    "description",
    "formula",
    "draw",
}


# a spec is sent as content: its YAML/JSON text (or the mapping) is at most this long
MAX_SPEC_CHARS = 64 * 1024
MAX_SPEC_COLUMNS = 200


def parse_spec(spec: Any) -> dict[str, Any]:
    """A spec from a mapping or its YAML/JSON text, size-limited. Never a file path.

    Options come from requesters, and the generator runs on the server: a path
    would make the server read its own files, so text that names a path is
    refused with a message that says to send the content instead.
    """
    if spec is None:
        raise MethodOptionError(
            "the spec method needs the option `spec`: the spec itself, as a mapping or "
            "YAML/JSON text (the CLI reads a local file with --spec FILE)",
            field="options",
        )
    if isinstance(spec, Mapping):
        data: Any = dict(spec)
        size = len(json.dumps(data, default=str))
    elif isinstance(spec, str):
        size = len(spec)
        if size <= MAX_SPEC_CHARS:
            try:
                data = yaml.safe_load(spec)
            except yaml.YAMLError as exc:
                raise MethodOptionError(f"the spec is not valid YAML: {exc}", field="options") from exc
    else:
        raise MethodOptionError("spec must be a mapping or YAML/JSON text", field="options")
    if size > MAX_SPEC_CHARS:
        raise MethodOptionError(
            f"the spec is {size:,} characters long; at most {MAX_SPEC_CHARS:,} are accepted", field="options"
        )
    if isinstance(data, str) and _looks_like_path(data):
        raise MethodOptionError(
            "the spec option names a file path; options never refer to files on the server. Send the spec's "
            "content instead (a mapping or YAML/JSON text; the CLI reads a local file with --spec FILE)",
            field="options",
        )
    if not isinstance(data, Mapping) or not isinstance(data.get("columns"), Mapping) or not data["columns"]:
        raise MethodOptionError("the spec needs a non-empty `columns` mapping", field="options")
    if len(data["columns"]) > MAX_SPEC_COLUMNS:
        raise MethodOptionError(
            f"the spec has {len(data['columns'])} columns; at most {MAX_SPEC_COLUMNS} are accepted", field="options"
        )
    return dict(data)


def _looks_like_path(text: str) -> bool:
    text = text.strip()
    return "\n" not in text and (
        "/" in text
        or "\\" in text
        or text.startswith("~")
        or Path(text).suffix.lower() in (".yaml", ".yml", ".json", ".txt")
    )


def _as_days(v: Any) -> float:
    if isinstance(v, str):
        v = dt.date.fromisoformat(v)
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


def _bound(name: str, raw: Mapping[str, Any], key: str, *, days: bool = False) -> float | None:
    """The spec column's `min` or `max` as a finite number (days for dates), None when left out."""
    value = raw.get(key)
    if value is None:
        return None
    try:
        out = _as_days(value) if days else float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        what = "an ISO date" if days else "a finite number"
        raise MethodOptionError(
            f"spec column '{name}': {key} must be {what} (leave it out for an open bound), got {value!r}",
            field="options",
        )
    return out


def _probabilities(name: str, probs: Any, n: int) -> list[float]:
    """`probabilities` as finite non-negative weights, one per value, with a positive sum."""
    if probs is None:
        return [1.0] * n
    try:
        out = [float(p) for p in probs]
    except (TypeError, ValueError):
        out = []
    if (
        not n
        or len(out) != n
        or not all(math.isfinite(p) and p >= 0 for p in out)
        or not math.isfinite(sum(out))
        or sum(out) <= 0
    ):
        raise MethodOptionError(
            f"spec column '{name}': give `values` and as many non-negative, finite `probabilities`",
            field="options",
        )
    return out


def _round_outward(lo: float, hi: float) -> tuple[float, float]:
    span = max(hi - lo, 1e-12)
    step = 10 ** math.floor(math.log10(span)) / 10
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


class _Column:
    """One spec column: its public spec and how to turn uniforms into values."""

    def __init__(self, name: str, raw: Any) -> None:
        from scipy import stats

        if not isinstance(raw, Mapping):
            raise MethodOptionError(f"spec column '{name}' must be a mapping", field="options")
        self.name = name
        try:
            self.null_rate = float(raw.get("null_rate", 0.0) or 0.0)
        except (TypeError, ValueError):
            self.null_rate = math.nan
        if not 0 <= self.null_rate < 1:
            raise MethodOptionError(f"spec column '{name}': null_rate must lie in [0, 1)", field="options")
        self.values: list[Any] | None = None
        self.lo: float | None = None
        self.hi: float | None = None
        self.kind = raw.get("kind")
        self.formula: str | None = None
        self.draw: str | None = None
        self.nullable_inputs = False
        if "formula" in raw:
            self._formula_column(raw)
            return
        if "values" in raw:
            values = list(raw["values"] or [])
            probs = _probabilities(name, raw.get("probabilities"), len(values))
            self.values = values
            p = np.array(probs) / sum(probs)
            self.cdf = np.cumsum(p)
            self.cdf[-1] = 1.0
            self.kind = "categorical"
            return
        self.kind = self.kind or "continuous"
        if self.kind not in ("continuous", "ordinal", "datetime"):
            raise MethodOptionError(
                f"spec column '{name}': kind must be continuous, ordinal or datetime", field="options"
            )
        lo = _bound(name, raw, "min", days=self.kind == "datetime")
        hi = _bound(name, raw, "max", days=self.kind == "datetime")
        params = {k: v for k, v in raw.items() if k not in _RESERVED}
        dist_name = raw.get("distribution")
        if dist_name is None:
            if self.kind == "datetime" and lo is not None and hi is not None:
                dist_name, params = "uniform", {"loc": lo, "scale": hi - lo}
            else:
                raise MethodOptionError(
                    f"spec column '{name}' needs a `distribution` (a scipy.stats name such as "
                    "norm, lognorm, gamma, poisson)",
                    field="options",
                )
        dist = getattr(stats, str(dist_name), None)
        if not isinstance(dist, stats.rv_continuous | stats.rv_discrete):
            raise MethodOptionError(
                f"spec column '{name}': '{dist_name}' is not a scipy.stats distribution", field="options"
            )
        try:
            self.dist = dist(**params)
            median = float(self.dist.ppf(0.5))
        except (TypeError, ValueError) as exc:
            raise MethodOptionError(
                f"spec column '{name}': bad parameters for {dist_name}: {exc}", field="options"
            ) from exc
        self.integer = bool(raw.get("integer", self.kind == "ordinal" or isinstance(dist, stats.rv_discrete)))
        if not math.isfinite(median):
            raise MethodOptionError(
                f"spec column '{name}': {dist_name} with {params} has no finite median", field="options"
            )
        if lo is None or hi is None:
            s_lo, s_hi = (float(v) for v in self.dist.support())
            q_lo = s_lo if math.isfinite(s_lo) else float(self.dist.ppf(1e-9))
            q_hi = s_hi if math.isfinite(s_hi) else float(self.dist.ppf(1 - 1e-9))
            r_lo, r_hi = _round_outward(q_lo, q_hi)
            lo = r_lo if lo is None else lo
            hi = r_hi if hi is None else hi
        if lo > hi:
            raise MethodOptionError(f"spec column '{name}': min is above max", field="options")
        self.lo, self.hi = lo, hi
        if isinstance(dist, stats.rv_discrete):
            # the mass strictly below min, and up to max: ppf maps (F(min - 1), F(max)] onto min..max.
            # F(min) here would drop min itself (poisson(mu=2) would never give 0)
            self.f_lo = float(self.dist.cdf(math.ceil(lo) - 1)) if math.isfinite(lo) else 0.0
            self.f_hi = float(self.dist.cdf(math.floor(hi))) if math.isfinite(hi) else 1.0
        else:
            self.f_lo = float(self.dist.cdf(lo)) if math.isfinite(lo) else 0.0
            self.f_hi = float(self.dist.cdf(hi)) if math.isfinite(hi) else 1.0
        if self.f_hi - self.f_lo <= 1e-12:
            raise MethodOptionError(
                f"spec column '{name}': the distribution puts no mass between min and max", field="options"
            )

    def _formula_column(self, raw: Mapping[str, Any]) -> None:
        name = self.name
        self.formula = str(raw["formula"])
        self.draw = raw.get("draw")
        extra = sorted(set(raw) - {"formula", "draw", "values", "min", "max", "integer", "kind", "description"})
        if extra:
            raise MethodOptionError(
                f"spec column '{name}' is computed by its formula and does not take {extra}", field="options"
            )
        if self.draw == "bernoulli":
            self.values = list(raw.get("values") or [0, 1])
            if len(self.values) != 2:
                raise MethodOptionError(
                    f"spec column '{name}': a Bernoulli draw needs two `values` (the first when "
                    "the draw fails, the second when it succeeds)",
                    field="options",
                )
            self.kind = "categorical"
            return
        if self.draw is not None:
            raise MethodOptionError(
                f"spec column '{name}': draw must be bernoulli (or left out for the formula's value itself)",
                field="options",
            )
        if "values" in raw:
            raise MethodOptionError(
                f"spec column '{name}': a formula without a draw computes a number; give min/max, not values",
                field="options",
            )
        self.kind = self.kind or "continuous"
        if self.kind not in ("continuous", "ordinal"):
            raise MethodOptionError(
                f"spec column '{name}': a formula computes a continuous or ordinal column", field="options"
            )
        self.integer = bool(raw.get("integer", self.kind == "ordinal"))
        self.lo = _bound(name, raw, "min")
        self.hi = _bound(name, raw, "max")
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise MethodOptionError(f"spec column '{name}': min is above max", field="options")

    def formula_spec(self) -> ColumnSpec:
        nullable = self.nullable_inputs
        if self.draw == "bernoulli":
            return ColumnSpec(
                kind="categorical",
                values=self.values,
                nullable=nullable,
                description=f"drawn: Bernoulli(p = {self.formula})",
            )
        lo = self.lo if self.lo is None or not self.integer else math.ceil(self.lo)
        hi = self.hi if self.hi is None or not self.integer else math.floor(self.hi)
        return ColumnSpec(
            kind="ordinal" if self.kind == "ordinal" else "continuous",
            min=lo,
            max=hi,
            integer=self.integer,
            nullable=nullable,
        )

    def formula_values(self, expr: Any, frame: pd.DataFrame, rng: np.random.Generator) -> Any:
        """The column from the columns before it: the formula's value, or a draw from it."""
        from privacy.constraints import _expression_inputs

        x = expr.evaluate(_expression_inputs(frame, expr.columns), len(frame))
        nulls = np.zeros(len(frame), dtype=bool)
        for col in expr.columns:
            nulls |= frame[col].isna().to_numpy()
        if self.draw == "bernoulli":
            p = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
            hit = rng.random(len(frame)) < p
            assert self.values is not None
            out = np.where(hit, np.array(self.values[1], dtype=object), np.array(self.values[0], dtype=object))
            return pd.Series(out, dtype=object).where(~nulls, None)
        x = np.where(nulls, np.nan, x)
        x = np.clip(x, -np.inf if self.lo is None else self.lo, np.inf if self.hi is None else self.hi)
        return np.round(x) if self.integer else x

    def column_spec(self) -> ColumnSpec:
        if self.formula is not None:
            return self.formula_spec()
        nullable = self.null_rate > 0
        if self.values is not None:
            return ColumnSpec(kind="categorical", values=self.values, nullable=nullable)
        assert self.lo is not None and self.hi is not None  # a drawn column's range is always known
        if self.kind == "datetime":
            to_date = lambda d: dt.date(1970, 1, 1) + dt.timedelta(days=int(math.floor(d)))  # noqa: E731
            return ColumnSpec(kind="datetime", min=to_date(self.lo), max=to_date(math.ceil(self.hi)), nullable=nullable)
        lo, hi = self.lo, self.hi
        if self.integer:
            lo, hi = math.ceil(lo), math.floor(hi)
        kind: Literal["ordinal", "continuous"] = "ordinal" if self.kind == "ordinal" else "continuous"
        return ColumnSpec(kind=kind, min=lo, max=hi, integer=self.integer, nullable=nullable)

    def values_from(self, u: np.ndarray, rng: np.random.Generator) -> Any:
        u = np.clip(u, 1e-12, 1 - 1e-12)
        if self.values is not None:
            idx = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.values) - 1)
            out: Any = np.array(self.values, dtype=object)[idx]
        else:
            x = self.dist.ppf(self.f_lo + u * (self.f_hi - self.f_lo))
            x = np.clip(np.asarray(x, dtype=float), self.lo, self.hi)
            if self.kind == "datetime":
                out = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(x), unit="D")
                out = pd.Series(out)
            else:
                out = np.rint(x) if self.integer else x
        if self.null_rate > 0:
            blank = rng.random(len(u)) < self.null_rate
            out = pd.Series(out).astype(object).where(~blank, None)
        return out

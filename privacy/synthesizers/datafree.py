"""Data-free generators: `scenario` and `spec`. They never read real data (cost zero).

Both ignore the table and schema given to `fit` (it may be called with none)
and describe their own output with `output_schema()`, a `PublicSchema` built
from their options alone.

* `scenario`: scikit-learn's `make_classification` / `make_regression`, with
  their controls as options (n_features, n_informative, n_redundant,
  n_repeated, n_classes, n_clusters_per_class, weights, flip_y, class_sep,
  noise, bias, effective_rank, ...). Features are named x1..xN and declared in
  [-feature_bound, feature_bound] (values beyond are clipped); the target is
  `target` (classes 0..n_classes-1, or a number whose bounds are declared only
  if `target_bound` is given).
* `spec`: columns drawn from named scipy.stats distributions (or declared
  categories with probabilities), tied by a correlation matrix imposed on
  their normal scores through a Cholesky factor (a Gaussian copula)::

      columns:
        age:    {distribution: norm, loc: 40, scale: 12, min: 17, max: 90, integer: true}
        income: {distribution: lognorm, s: 0.8, scale: 30000, min: 0, max: 500000, null_rate: 0.02}
        region: {values: [north, south, east], probabilities: [0.5, 0.3, 0.2]}
        joined: {kind: datetime, min: 2000-01-01, max: 2020-12-31}
      correlation:
        columns: [age, income]
        matrix: [[1.0, 0.4], [0.4, 1.0]]

  A numeric column with min/max follows its distribution truncated to them
  (the copula's uniform is mapped into [F(min), F(max)]); without them its
  bounds are the distribution's support, or its 1e-9 and 1 - 1e-9 quantiles
  rounded outward. Dates are numbers of days since 1970-01-01 (uniform between
  min and max unless a distribution is named). `null_rate` blanks a share of
  the values at random.

  A column may instead be computed from the columns listed before it, by a
  formula (parsed by `privacy._expression`: arithmetic, comparisons and named
  functions such as exp, log, logistic, clip and where; never eval)::

        tenure:  {distribution: gamma, a: 2, scale: 12, min: 0, max: 72, integer: true}
        charges: {distribution: norm, loc: 70, scale: 20, min: 18, max: 120}
        total:   {formula: "tenure * charges", min: 0, max: 9000}
        churn:   {formula: "logistic(1.0 - 0.08 * tenure + 0.02 * charges)", draw: bernoulli}

  Without `draw`, the column is the formula's value (clipped to min/max, rounded
  when `integer`), and the output schema declares it as a formula constraint.
  With `draw: bernoulli`, the formula is a probability (clipped to [0, 1]) and
  each row draws its value from it, with a seed derived from the job's seed:
  the second of `values` (default [0, 1]) with that probability, else the first.
  Formula columns take no part in the correlation. A top-level `constraints`
  list (the public schema's, see `privacy.constraints`) is declared in the
  output schema and enforced on the output like any method's.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import yaml

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import ColumnSpec, PublicSchema
from privacy.synthesizers.base import ProgressCallback, Synthesizer, no_progress

__all__ = ["ScenarioSynthesizer", "SpecSynthesizer", "parse_spec"]


class _DataFreeBase(Synthesizer):
    guarantee = "data-free"

    def output_schema(self) -> PublicSchema:
        """The public schema of what this generator outputs (from its options alone)."""
        raise NotImplementedError

    def preflight(self, schema: PublicSchema | None = None, requested: PrivacyCost | None = None) -> None:
        """Checks the options; the dataset's schema and the request play no part."""
        self.output_schema()

    def fit(
        self,
        table: pd.DataFrame | None = None,
        schema: PublicSchema | None = None,
        requested: PrivacyCost | None = None,
        progress: ProgressCallback | None = None,
    ) -> PrivacyCost:
        """Prepare the generator; reads no data (table and schema are ignored). Cost: zero."""
        self.schema = self.output_schema()
        self.cost = PrivacyCost.zero()
        (progress or no_progress)(1.0, "ready (no data read)")
        return self.cost

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:  # pragma: no cover - fit() is overridden
        return PrivacyCost.zero()


def _number_list(value: Any, name: str) -> list[float] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise MethodOptionError(f"{name} must be a list of numbers such as 0.9,0.1", field="options")
    try:
        return [float(p) for p in parts]
    except (TypeError, ValueError) as exc:
        raise MethodOptionError(
            f"{name} must be a list of numbers such as 0.9,0.1, got {value!r}", field="options"
        ) from exc


class ScenarioSynthesizer(_DataFreeBase):
    name = "scenario"
    description = (
        "Data-free scenario data from scikit-learn's make_classification / make_regression, with their "
        "controls as options. Reads no real data."
    )
    option_spec = {
        "task": (str, "classification", "classification or regression"),
        "n_features": (int, 5, "number of features", (1, 1000)),
        "n_informative": (int, 3, "informative features", (0, 1000)),
        "n_redundant": (int, 1, "classification: linear combinations of the informative features", (0, 1000)),
        "n_repeated": (int, 0, "classification: duplicated features", (0, 1000)),
        "n_classes": (int, 2, "classification: number of classes", (2, 100)),
        "n_clusters_per_class": (int, 1, "classification: clusters per class", (1, 100)),
        "weights": (object, None, "classification: class proportions, e.g. 0.9,0.1"),
        "flip_y": (float, 0.01, "classification: share of labels flipped at random"),
        "class_sep": (float, 1.0, "classification: separation of the classes"),
        "noise": (float, 0.0, "regression: standard deviation of the noise on the target"),
        "bias": (float, 0.0, "regression: intercept"),
        "effective_rank": (
            int,
            None,
            "regression: approximate rank of the features (None: well conditioned)",
            (1, 1000),
        ),
        "feature_bound": (float, 10.0, "declared bound of every feature: values lie in [-bound, bound]"),
        "target_bound": (float, None, "regression: declared bound of the target (None: left open)"),
    }

    def _validated(self) -> dict[str, Any]:
        o = dict(self.options)
        if o["task"] not in ("classification", "regression"):
            raise MethodOptionError("task must be classification or regression", field="options")
        if (o["n_features"] or 0) < 1:
            raise MethodOptionError("n_features must be at least 1", field="options")
        if not (o["feature_bound"] or 0) > 0:
            raise MethodOptionError("feature_bound must be positive", field="options")
        if o["task"] == "classification":
            used = o["n_informative"] + o["n_redundant"] + o["n_repeated"]
            if used > o["n_features"]:
                raise MethodOptionError(
                    f"n_informative + n_redundant + n_repeated ({used}) exceeds n_features ({o['n_features']})",
                    field="options",
                )
            if o["n_classes"] < 2:
                raise MethodOptionError("n_classes must be at least 2", field="options")
            if o["n_classes"] * o["n_clusters_per_class"] > 2 ** o["n_informative"]:
                raise MethodOptionError(
                    "n_classes * n_clusters_per_class must be at most 2 ** n_informative", field="options"
                )
            weights = _number_list(o["weights"], "weights")
            if weights is not None and (
                len(weights) not in (o["n_classes"], o["n_classes"] - 1) or any(w < 0 for w in weights)
            ):
                raise MethodOptionError(f"weights must give {o['n_classes']} non-negative proportions", field="options")
            o["weights"] = weights
            if not 0 <= o["flip_y"] <= 1:
                raise MethodOptionError("flip_y must lie in [0, 1]", field="options")
        else:
            if o["n_informative"] > o["n_features"]:
                raise MethodOptionError("n_informative exceeds n_features", field="options")
            if o["noise"] < 0:
                raise MethodOptionError("noise must be >= 0", field="options")
            if o["target_bound"] is not None and o["target_bound"] <= 0:
                raise MethodOptionError("target_bound must be positive", field="options")
        return o

    def output_schema(self) -> PublicSchema:
        o = self._validated()
        b = float(o["feature_bound"])
        cols = {f"x{i + 1}": ColumnSpec(kind="continuous", min=-b, max=b) for i in range(o["n_features"])}
        if o["task"] == "classification":
            cols["target"] = ColumnSpec(kind="categorical", values=list(range(o["n_classes"])))
        else:
            tb = o["target_bound"]
            cols["target"] = ColumnSpec(
                kind="continuous", min=None if tb is None else -tb, max=None if tb is None else tb
            )
        return PublicSchema(columns=cols, target="target")

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        from sklearn.datasets import make_classification, make_regression

        o = self._validated()
        seed = None if self.seed is None else self.seed % (2**32)
        if o["task"] == "classification":
            x, y = make_classification(
                n_samples=n,
                n_features=o["n_features"],
                n_informative=o["n_informative"],
                n_redundant=o["n_redundant"],
                n_repeated=o["n_repeated"],
                n_classes=o["n_classes"],
                n_clusters_per_class=o["n_clusters_per_class"],
                weights=o["weights"],
                flip_y=o["flip_y"],
                class_sep=o["class_sep"],
                random_state=seed,
            )
        else:
            x, y = make_regression(
                n_samples=n,
                n_features=o["n_features"],
                n_informative=o["n_informative"],
                bias=o["bias"],
                noise=o["noise"],
                effective_rank=o["effective_rank"],
                random_state=seed,
            )
        b = float(o["feature_bound"])
        out = pd.DataFrame(np.clip(x, -b, b), columns=[f"x{i + 1}" for i in range(x.shape[1])])
        out["target"] = y
        progress(1.0, "generated")
        return out


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
        self.null_rate = float(raw.get("null_rate", 0.0) or 0.0)
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
            probs = raw.get("probabilities")
            probs = [1.0] * len(values) if probs is None else [float(p) for p in probs]
            if not values or len(probs) != len(values) or any(p < 0 for p in probs) or sum(probs) <= 0:
                raise MethodOptionError(
                    f"spec column '{name}': give `values` and as many non-negative `probabilities`", field="options"
                )
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
        lo = None if raw.get("min") is None else _as_days(raw["min"]) if self.kind == "datetime" else float(raw["min"])
        hi = None if raw.get("max") is None else _as_days(raw["max"]) if self.kind == "datetime" else float(raw["max"])
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
        self.lo = None if raw.get("min") is None else float(raw["min"])
        self.hi = None if raw.get("max") is None else float(raw["max"])
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


class SpecSynthesizer(_DataFreeBase):
    name = "spec"
    description = (
        "Data-free data from a spec: named scipy distributions per column and a correlation matrix "
        "imposed on their normal scores (Gaussian copula). Reads no real data."
    )
    option_spec = {
        "spec": (object, None, "the spec itself: a mapping or YAML/JSON text, at most 64 KiB (never a file path)"),
    }

    def _parsed(self) -> tuple[list[_Column], np.ndarray]:
        spec = parse_spec(self.options["spec"])
        every = [_Column(str(name), raw) for name, raw in spec["columns"].items()]
        self._formulas = self._formula_expressions(every)
        columns = [c for c in every if c.formula is None]
        if not columns:
            raise MethodOptionError(
                "the spec needs at least one column drawn from a distribution (formulas compute from other columns)",
                field="options",
            )
        self._all_columns = every
        names = [c.name for c in columns]
        corr = np.eye(len(columns))
        raw_corr = spec.get("correlation")
        if raw_corr:
            if not isinstance(raw_corr, Mapping) or "matrix" not in raw_corr:
                raise MethodOptionError(
                    "correlation needs `matrix` (and `columns`, by default all columns in order)", field="options"
                )
            cols = list(raw_corr.get("columns") or names)
            computed = [c for c in cols if c in self._formulas]
            if computed:
                raise MethodOptionError(
                    f"correlation names formula column(s) {computed}; they follow from their formulas", field="options"
                )
            unknown = [c for c in cols if c not in names]
            if unknown:
                raise MethodOptionError(f"correlation names unknown column(s): {unknown}", field="options")
            m = np.asarray(raw_corr["matrix"], dtype=float)
            if (
                m.shape != (len(cols), len(cols))
                or not np.allclose(m, m.T)
                or not np.allclose(np.diag(m), 1.0)
                or np.any(np.abs(m) > 1)
            ):
                raise MethodOptionError(
                    f"the correlation matrix must be symmetric, {len(cols)} x {len(cols)}, with ones on the "
                    "diagonal and entries in [-1, 1]",
                    field="options",
                )
            if np.linalg.eigvalsh(m).min() < -1e-10:
                raise MethodOptionError(
                    "the correlation matrix is not positive semi-definite: no joint "
                    "distribution has these correlations",
                    field="options",
                )
            idx = [names.index(c) for c in cols]
            corr[np.ix_(idx, idx)] = m
        return columns, corr

    @staticmethod
    def _formula_expressions(columns: list[_Column]) -> dict[str, Any]:
        """Each formula column's checked expression; it may read only the columns listed before it."""
        from privacy._expression import ExpressionError, parse_expression

        out: dict[str, Any] = {}
        nullable: dict[str, bool] = {}
        for i, c in enumerate(columns):
            if c.formula is not None:
                before = [p.name for p in columns[:i]]
                try:
                    out[c.name] = parse_expression(c.formula, before)
                except ExpressionError as exc:
                    raise MethodOptionError(
                        f"spec column '{c.name}': {exc} (a formula reads the columns listed before it)", field="options"
                    ) from exc
                c.nullable_inputs = any(nullable[n] for n in out[c.name].columns)
                nullable[c.name] = c.nullable_inputs
            else:
                nullable[c.name] = c.null_rate > 0
        return out

    def output_schema(self) -> PublicSchema:
        self._parsed()
        spec = parse_spec(self.options["spec"])
        exact = [
            {"formula": {"column": c.name, "expression": c.formula}}
            for c in self._all_columns
            if c.formula is not None and c.draw is None
        ]
        try:
            return PublicSchema(
                columns={c.name: c.column_spec() for c in self._all_columns},
                constraints=cast(Any, [*exact, *(spec.get("constraints") or [])]),
            )
        except (ValueError, SchemaError) as exc:
            raise MethodOptionError(f"the spec does not make a valid schema: {exc}", field="options") from exc

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        from scipy.stats import norm

        columns, corr = self._parsed()
        rng = np.random.default_rng(self.seed)
        # Cholesky of the (semi-definite) matrix; a tiny ridge lets a singular matrix through
        chol = np.linalg.cholesky(corr + 1e-12 * np.eye(len(columns)))
        z = rng.standard_normal((n, len(columns))) @ chol.T
        u = norm.cdf(z)
        frame = pd.DataFrame({c.name: c.values_from(u[:, j], rng) for j, c in enumerate(columns)})
        if self._formulas:
            draws = np.random.default_rng(self.derived_seed("formulas"))
            for c in self._all_columns:
                if c.formula is not None:
                    frame[c.name] = c.formula_values(self._formulas[c.name], frame, draws)
        progress(1.0, "generated")
        return frame[[c.name for c in self._all_columns]]

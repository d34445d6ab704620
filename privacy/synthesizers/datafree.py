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

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import ColumnSpec, PublicSchema
from privacy.synthesizers._datafree_spec import MAX_SPEC_CHARS, _Column, parse_spec
from privacy.synthesizers.base import ProgressCallback, Synthesizer, no_progress

__all__ = ["MAX_SPEC_CHARS", "ScenarioSynthesizer", "SpecSynthesizer", "parse_spec"]


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

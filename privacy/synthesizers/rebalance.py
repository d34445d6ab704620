"""Rebalancing a table's target classes with imbalanced-learn.

Two uses, with different guarantees:

* As a method (`smote`, `borderline-smote`, `adasyn`, `smotenc`) on real rows:
  the fit table (the worker passes the training split only, never the whole
  table, so the holdout stays untouched) is oversampled, and the release
  contains the real training rows plus new minority rows interpolated between
  real neighbours. Not DP (epsilon = infinity), `releases_real_rows = True`.
* `rebalance_output(df, schema, target, method, seed)` on the output of a DP
  method: post-processing of DP data with public knowledge only, so the DP
  guarantee of that output holds unchanged. New rows that break a constraint
  of the schema are repaired.

Encoding (from the schema): numbers and dates are scaled to [0, 1] by their
declared bounds (by the table's own range where the schema leaves them open,
which only happens on DP output); a nullable number gets a 0/1 null indicator;
categoricals are one-hot (SMOTE, Borderline-SMOTE, ADASYN) or passed as
categorical features (SMOTE-NC, which also treats null indicators as
categorical). Rows whose target is null are kept as they are and not
resampled; classes with a single row are left alone (no neighbour to
interpolate with).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError, SchemaError, UnknownMethod
from privacy.schema import PublicSchema, _category_keys, _key, enforce_schema
from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = [
    "REBALANCE_METHODS",
    "ADASYNSynthesizer",
    "BorderlineSMOTESynthesizer",
    "SMOTENCSynthesizer",
    "SMOTESynthesizer",
    "rebalance_output",
    "rebalance_table",
    "resolve_target",
]

REBALANCE_METHODS = ("smote", "borderline-smote", "adasyn", "smotenc")


def resolve_target(schema: PublicSchema, target: str | None) -> str:
    """The target column to balance: given, or the schema's; it must be a declared categorical."""
    name = target or schema.target
    if name is None:
        raise SchemaError(
            "rebalancing needs a target column: set `target` in the public schema or the option target", field="target"
        )
    if name not in schema.synthesized_columns:
        raise SchemaError(f"target '{name}' is not a modelled column of the public schema", field="target")
    if schema.columns[name].values is None:
        raise SchemaError(
            f"target '{name}' must be a categorical column with declared values to be rebalanced", field="target"
        )
    return name


def _feature_columns(schema: PublicSchema, target: str) -> list[str]:
    return [n for n in schema.synthesized_columns if n != target]


def check_rebalance_request(schema: PublicSchema, target: str | None, method: str) -> str:
    """Schema-only checks; returns the resolved target."""
    if method not in REBALANCE_METHODS:
        raise UnknownMethod(
            f"unknown rebalancing method '{method}'; choose one of {', '.join(REBALANCE_METHODS)}", field="rebalance"
        )
    name = resolve_target(schema, target)
    features = _feature_columns(schema, name)
    if not features:
        raise SchemaError("rebalancing needs at least one column besides the target", field="schema")
    if method == "smotenc" and all(schema.columns[f].values is not None for f in features):
        raise MethodOptionError(
            "smotenc needs at least one numeric or date column besides the target; "
            "use smote for purely categorical tables",
            field="method",
        )
    if method == "smotenc" and all(schema.columns[f].values is None for f in features):
        raise MethodOptionError(
            "smotenc needs at least one categorical column besides the target; use smote for purely numeric tables",
            field="method",
        )
    return name


class _Encoding:
    """Numeric matrix for imbalanced-learn, built from the schema (and, for open bounds, the table's range)."""

    def __init__(self, df: pd.DataFrame, schema: PublicSchema, features: list[str], nominal_as_codes: bool) -> None:
        self.schema = schema
        self.features = features
        self.nominal_as_codes = nominal_as_codes
        self.blocks: list[tuple[str, str, int, Any]] = []  # (column, kind, width, info)
        for name in features:
            spec = schema.columns[name]
            if spec.values is not None:
                width = 1 if nominal_as_codes else len(spec.values) + 1
                self.blocks.append((name, "category", width, list(spec.values)))
            else:
                x = self._numbers(df[name], spec.kind == "datetime")
                if spec.has_bounds:
                    lo, hi = spec.numeric_bounds()
                else:
                    finite = x[np.isfinite(x)]
                    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
                self.blocks.append((name, "number", 2 if spec.nullable else 1, (lo, hi, spec.nullable)))

    @staticmethod
    def _numbers(s: pd.Series, is_date: bool) -> np.ndarray:
        if is_date:
            t = pd.to_datetime(s, errors="coerce")
            return ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def categorical_indices(self) -> list[int]:
        """Columns of the matrix SMOTE-NC treats as categorical."""
        out, pos = [], 0
        for _name, kind, width, info in self.blocks:
            if kind == "category":
                out.append(pos)
            elif info[2]:  # null indicator
                out.append(pos + 1)
            pos += width
        return out

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for name, kind, width, info in self.blocks:
            s = df[name]
            if kind == "category":
                keys = {k: i for i, k in enumerate(_category_keys(info))}
                codes = np.array([len(info) if pd.isna(v) else keys.get(_key(v), len(info)) for v in s], dtype=float)
                if self.nominal_as_codes:
                    parts.append(codes[:, None])
                else:
                    onehot = np.zeros((len(s), width))
                    onehot[np.arange(len(s)), codes.astype(int)] = 1.0
                    parts.append(onehot)
            else:
                lo, hi, nullable = info
                x = self._numbers(s, self.schema.columns[name].kind == "datetime")
                isnull = np.isnan(x)
                scaled = (
                    (np.clip(np.nan_to_num(x, nan=(lo + hi) / 2), lo, hi) - lo) / (hi - lo)
                    if hi > lo
                    else np.zeros(len(x))
                )
                parts.append(scaled[:, None])
                if nullable:
                    parts.append(isnull.astype(float)[:, None])
        return np.hstack(parts) if parts else np.empty((len(df), 0))

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        out: dict[str, Any] = {}
        pos = 0
        for name, kind, width, info in self.blocks:
            block = matrix[:, pos : pos + width]
            pos += width
            if kind == "category":
                values = [*list(info), None]
                idx = np.rint(block[:, 0]).astype(int) if self.nominal_as_codes else np.argmax(block, axis=1)
                out[name] = [values[i] for i in np.clip(idx, 0, len(values) - 1)]
            else:
                lo, hi, nullable = info
                x = lo + np.clip(block[:, 0], 0.0, 1.0) * (hi - lo)
                if nullable:
                    x = np.where(block[:, 1] > 0.5, np.nan, x)
                if self.schema.columns[name].kind == "datetime":
                    days = pd.Series(x)
                    out[name] = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
                else:
                    out[name] = x
        return pd.DataFrame(out)


def rebalance_table(
    df: pd.DataFrame,
    schema: PublicSchema,
    target: str | None,
    method: str,
    *,
    seed: int | None = None,
    k_neighbors: int = 5,
) -> pd.DataFrame:
    """The rows of `df` plus new minority rows, so that every class with 2+ rows reaches the majority's count.

    Not private by itself: on real rows the result contains them. Columns and
    types follow the schema (`enforce_schema`).
    """
    from imblearn.over_sampling import SMOTE, SMOTENC, BorderlineSMOTE

    target = check_rebalance_request(schema, target, method)
    features = _feature_columns(schema, target)
    df = df.reset_index(drop=True)
    keys = _category_keys(schema.columns[target].values or [])
    y_all = np.array([None if pd.isna(v) else _key(v) for v in df[target]], dtype=object)
    known = np.array([v is not None and v in keys for v in y_all])
    rows, y = df.loc[known].reset_index(drop=True), y_all[known].astype(str)
    kept = df.loc[~known]
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise MethodOptionError(
            f"the target '{target}' has fewer than two classes in this table: nothing to balance", field="target"
        )
    majority = int(counts.max())
    strategy = {c: majority for c, k in zip(classes, counts, strict=True) if 2 <= k < majority}
    if not strategy:
        return enforce_schema(df, schema, seed=seed)
    k = max(1, min(int(k_neighbors), min(int(counts[classes == c][0]) for c in strategy) - 1))
    encoding = _Encoding(rows, schema, features, nominal_as_codes=(method == "smotenc"))
    x = encoding.encode(rows)
    random_state = None if seed is None else seed % (2**32)
    if method == "smote":
        sampler: Any = SMOTE(sampling_strategy=strategy, random_state=random_state, k_neighbors=k)
    elif method == "borderline-smote":
        sampler = BorderlineSMOTE(
            sampling_strategy=strategy, random_state=random_state, k_neighbors=k, m_neighbors=max(k, 2 * k)
        )
    elif method == "adasyn":
        sampler = None  # one ADASYN per class: see _adasyn_per_class
    else:
        sampler = SMOTENC(
            encoding.categorical_indices(), sampling_strategy=strategy, random_state=random_state, k_neighbors=k
        )
    try:
        if method == "adasyn":
            x_add, y_add = _adasyn_per_class(x, y, strategy, random_state, k)
        else:
            x_new, y_new = sampler.fit_resample(x, y)
            x_add, y_add = x_new[len(x) :], y_new[len(x) :]
    except (ValueError, RuntimeError) as exc:
        raise MethodOptionError(
            f"{method} could not rebalance '{target}': {str(exc).splitlines()[0]}", field="method"
        ) from exc
    added = encoding.decode(x_add)
    added[target] = list(y_add)
    result = pd.concat([rows, added, kept], ignore_index=True)
    return enforce_schema(result[[c for c in df.columns if c in result.columns]], schema, seed=seed)


def _adasyn_per_class(
    x: np.ndarray, y: np.ndarray, strategy: dict[str, int], random_state: int | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """ADASYN's new rows, one class at a time.

    ADASYN weights each minority row by the share of its k neighbours from other
    classes. Where no row of a class has such a neighbour (a class that lies apart
    from the rest, as Gentoo penguins do), the weights are all zero and ADASYN is
    undefined; that class gets uniform weights, which is SMOTE, instead of failing
    the whole release.
    """
    from imblearn.over_sampling import ADASYN, SMOTE

    xs, ys = [], []
    for cls, target_count in strategy.items():
        one = {cls: target_count}
        try:
            x_new, y_new = ADASYN(sampling_strategy=one, random_state=random_state, n_neighbors=k).fit_resample(x, y)
        except RuntimeError:  # no neighbour of another class: ADASYN's weights are undefined
            x_new, y_new = SMOTE(sampling_strategy=one, random_state=random_state, k_neighbors=k).fit_resample(x, y)
        xs.append(x_new[len(x) :])
        ys.append(y_new[len(x) :])
    return np.vstack(xs), np.concatenate(ys)


def rebalance_output(
    df: pd.DataFrame, schema: PublicSchema, target: str | None, method: str, seed: int | None = None
) -> pd.DataFrame:
    """Rebalance the output of a (DP) synthesizer: post-processing, so its guarantee holds.

    Reads only `df` and the public schema. Returns `df`'s rows plus new minority rows. A new row
    interpolated between two rows that satisfy the schema's constraints can break one (a value
    near a band's edge, a null indicator rounded the other way): such rows are repaired as
    `privacy.constraints.repair_constraints` describes, so the rebalanced table satisfies them too.
    """
    from privacy.constraints import repair_constraints

    balanced = rebalance_table(df, schema, target, method, seed=seed)
    repaired, _counts = repair_constraints(balanced, schema, seed=seed)
    return repaired


class _RebalanceBase(Synthesizer):
    guarantee = "non-dp"
    kind = "oversample"
    releases_real_rows = True
    method: str = ""
    option_spec = {
        "target": (str, None, "column to balance (default: the schema's target)"),
        "k_neighbors": (int, 5, "neighbours to interpolate between (lowered for tiny classes)", (1, 100)),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if self.options["k_neighbors"] is None or self.options["k_neighbors"] < 1:
            raise MethodOptionError("k_neighbors must be a positive integer", field="options")
        check_rebalance_request(schema, self.options["target"], self.method)

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        progress(0.05, f"{self.method} on {len(table)} rows")
        self._balanced = rebalance_table(
            table, schema, self.options["target"], self.method, seed=self.seed, k_neighbors=self.options["k_neighbors"]
        )
        progress(1.0, f"balanced table of {len(self._balanced)} rows")
        return PrivacyCost.non_dp()

    @property
    def balanced_table(self) -> pd.DataFrame:
        """The whole rebalanced table: the fit rows plus the new minority rows."""
        return self._balanced.copy()

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        """n rows of the balanced table: a random subset, or all of it and random repeats beyond its size."""
        rng = np.random.default_rng(self.derived_seed("sample"))
        size = len(self._balanced)
        if n <= size:
            idx = rng.choice(size, size=n, replace=False)
        else:
            idx = np.concatenate([rng.permutation(size), rng.integers(0, size, n - size)])
        progress(1.0, "sampled")
        return self._balanced.iloc[idx].reset_index(drop=True)


class SMOTESynthesizer(_RebalanceBase):
    name = "smote"
    method = "smote"
    description = (
        "SMOTE on the training rows: real rows plus minority rows interpolated between real neighbours. "
        "Not DP; the release contains real records."
    )


class BorderlineSMOTESynthesizer(_RebalanceBase):
    name = "borderline-smote"
    method = "borderline-smote"
    description = (
        "Borderline-SMOTE on the training rows (new rows near the class border). Not DP; the release "
        "contains real records."
    )


class ADASYNSynthesizer(_RebalanceBase):
    name = "adasyn"
    method = "adasyn"
    description = (
        "ADASYN on the training rows (more new rows where the minority is hard to learn; a class with "
        "no neighbour of another class gets SMOTE's uniform weights). Not DP; the release contains real "
        "records."
    )


class SMOTENCSynthesizer(_RebalanceBase):
    name = "smotenc"
    method = "smotenc"
    description = (
        "SMOTE-NC on the training rows (mixed numeric and categorical columns). Not DP; the release "
        "contains real records."
    )

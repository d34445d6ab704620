"""Non-DP synthesizers from SDV 2.x: `gaussian-copula`, `ctgan`, `tvae`, `copulagan`.

They give no formal guarantee (cost: epsilon = infinity) and are allowed only
where the dataset's policy is allow-non-dp. Still, what they may take from the
public schema they take from it:

* the SDV metadata is built from the schema (never `detect_from_dataframes`):
  declared categoricals are `categorical`, numbers `numerical`, dates are
  modelled as numbers (days since 1970-01-01) and turned back into dates;
* `enforce_min_max_values` and `enforce_rounding` are off, because SDV would
  learn the minimum, maximum and decimal places of each column from the data;
  the output is instead clipped to the declared bounds and integer columns are
  rounded by the schema (`enforce_schema`), and values outside a declared
  domain become null (or the first declared value when not nullable).

What they still learn from the data, by design of a non-DP model: the
distribution of every column (category frequencies included) and their
relationships; categories absent from the training rows are not generated.

Point masses. Real numeric columns often hold one value in a large share of
their rows (0 in capital-gain; the floor of a standardised measurement in 30-76%
of the rows of mammography). A continuous marginal (beta, a GAN's mode-specific
normalisation) cannot give a value exactly, so the output would have almost no
rows at it and every quantile-based comparison would fail. A numeric column whose
most frequent value holds at least `POINT_MASS_SHARE` of the training rows, and at
least `POINT_MASS_MIN_ROWS` rows, is therefore modelled as a hurdle: a categorical
indicator "at the point mass" joins the model (so its relationships with the other
columns are learned like any category's), the column's value in those rows is
replaced for the fit by a draw from the tenth of the column's other training
values nearest to the point mass (so a floor stays the lowest rank), and
sampled rows whose indicator is set get the point-mass value exactly. Only values
shared by many rows are reproduced this way, never a rare one; the fit logs the
columns it treated so.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError, MissingDependency
from privacy.schema import NUMERIC_KINDS, PublicSchema, _key
from privacy.synthesizers.base import OptionSpec, ProgressCallback, Synthesizer

__all__ = [
    "CTGANSynthesizer",
    "CopulaGANSynthesizer",
    "GaussianCopulaSynthesizer",
    "TVAESynthesizer",
    "sdv_metadata",
]

logger = logging.getLogger(__name__)

TABLE = "table"
POINT_MASS_SHARE = 0.05
POINT_MASS_MIN_ROWS = 30
NEAR_SHARE = 0.1
STRATUM_MIN_ROWS = 30  # gaussian-copula: a class of the target gets its own copula from this many rows
MAX_STRATA = 20
_INDICATOR = "{}#at_point_mass"
_LOCK = threading.Lock()  # the epoch-progress hook is a module-level patch of ctgan's tqdm


def sdv_metadata(schema: PublicSchema, indicators: Iterable[str] = ()) -> Any:
    """SDV metadata for the modelled columns, from the public schema only (plus point-mass indicators)."""
    try:
        from sdv.metadata import Metadata
    except ImportError as exc:  # pragma: no cover - installed with the product
        raise MissingDependency("SDV is not installed; pip install sdv==2.0.0") from exc
    columns: dict[str, dict[str, Any]] = {}
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        if spec.values is not None:
            columns[name] = {"sdtype": "categorical"}
        else:
            columns[name] = {"sdtype": "numerical"}
    for name in indicators:
        columns[_INDICATOR.format(name)] = {"sdtype": "categorical"}
    return Metadata.load_from_dict({"tables": {TABLE: {"columns": columns}}})


def _to_sdv_frame(table: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """Plain dtypes SDV handles: category keys as strings, numbers and dates as floats."""
    out: dict[str, Any] = {}
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        s = table[name]
        if spec.values is not None:
            out[name] = pd.Series([None if pd.isna(v) else _key(v) for v in s], dtype=object)
        elif spec.kind == "datetime":
            t = pd.to_datetime(s, errors="coerce")
            out[name] = ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).astype("float64")
        else:
            out[name] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.DataFrame(out).reset_index(drop=True)


def find_point_masses(frame: pd.DataFrame, schema: PublicSchema) -> dict[str, float]:
    """Numeric columns whose most frequent value holds a large share of the rows: column -> value."""
    masses: dict[str, float] = {}
    n = len(frame)
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        if spec.values is not None or spec.kind not in NUMERIC_KINDS or not n:
            continue
        counts = frame[name].value_counts(dropna=True)
        if counts.empty or len(counts) < 2:
            continue
        top, rows = float(counts.index[0]), int(counts.iloc[0])
        if rows >= POINT_MASS_MIN_ROWS and rows / n >= POINT_MASS_SHARE:
            masses[name] = top
    return masses


def _with_indicators(frame: pd.DataFrame, masses: dict[str, float], seed: int | None) -> pd.DataFrame:
    """The hurdle encoding of each point-mass column (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name, value in masses.items():
        x = out[name].to_numpy(dtype=float, copy=True)
        at = x == value
        rest = x[~at & ~np.isnan(x)]
        # the other values nearest to the point mass keep its rank among the column's values, so that the
        # copula still sees rows at a floor as the lowest (a random stand-in would blur every relationship)
        near = rest[np.argsort(np.abs(rest - value), kind="stable")[: max(1, math.ceil(NEAR_SHARE * len(rest)))]]
        x[at] = rng.choice(near, size=int(at.sum()), replace=True)
        out[name] = x
        out[_INDICATOR.format(name)] = np.where(at, "1", "0").astype(object)
    return out


def _apply_indicators(df: pd.DataFrame, masses: dict[str, float]) -> pd.DataFrame:
    out = df.copy()
    for name, value in masses.items():
        flag = out.pop(_INDICATOR.format(name)).astype(str) == "1"
        values = pd.to_numeric(out[name], errors="coerce").astype("float64")
        values[flag.to_numpy()] = value
        out[name] = values
    return out


def _from_sdv_frame(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        s = df[name]
        if spec.kind == "datetime":
            days = pd.to_numeric(s, errors="coerce")
            out[name] = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
        elif spec.kind in NUMERIC_KINDS and spec.values is None:
            out[name] = pd.to_numeric(s, errors="coerce")
        else:
            out[name] = s
    return pd.DataFrame(out)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed numpy's and torch's global generators for the block, then restore them."""
    import torch

    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            np.random.seed(seed % (2**32))
            torch.manual_seed(seed)
        else:
            torch.seed()
        try:
            yield
        finally:
            np.random.set_state(np_state)


class _EpochProgress:
    """Stands in for ctgan's tqdm: reports each finished epoch to a progress callback."""

    callback: ClassVar[ProgressCallback | None] = None

    def __init__(self, iterable: Iterable[Any], *args: Any, **kwargs: Any) -> None:
        self._items = list(iterable)

    def __iter__(self) -> Iterator[Any]:
        total = len(self._items)
        for k, item in enumerate(self._items):
            yield item
            if _EpochProgress.callback is not None:
                _EpochProgress.callback(0.1 + 0.85 * (k + 1) / total, f"epoch {k + 1} of {total}")

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def _epoch_progress(progress: ProgressCallback) -> Iterator[None]:
    import ctgan.synthesizers.ctgan as ctgan_module
    import ctgan.synthesizers.tvae as tvae_module

    originals = (ctgan_module.tqdm, tvae_module.tqdm)
    _EpochProgress.callback = progress
    ctgan_module.tqdm = _EpochProgress
    tvae_module.tqdm = _EpochProgress
    try:
        yield
    finally:
        ctgan_module.tqdm, tvae_module.tqdm = originals
        _EpochProgress.callback = None


class _SDVBase(Synthesizer):
    guarantee = "non-dp"
    sdv_class: ClassVar[str] = ""
    option_spec: ClassVar[dict[str, OptionSpec]] = {}

    def _model_kwargs(self) -> dict[str, Any]:
        return {}

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        self._model_kwargs()  # refuses bad options before any data is read

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        import sdv.single_table as single_table
        from sdv.logging.utils import disable_single_table_logger

        if len(table) < 2:
            raise MethodOptionError(f"{self.name} needs at least 2 rows to fit", field="rows")
        progress(0.02, "building SDV metadata from the public schema")
        frame = _to_sdv_frame(table, schema)
        self._point_masses = find_point_masses(frame, schema)
        frame = _with_indicators(frame, self._point_masses, self.derived_seed("point masses"))
        metadata = sdv_metadata(schema, self._point_masses)
        if self._point_masses:
            logger.info("%s: point masses modelled as hurdles in %s", self.name, ", ".join(self._point_masses))
        cls = getattr(single_table, self.sdv_class)
        self._strata = self._strata_of(frame, schema)
        progress(0.1, "fitting")
        with _LOCK, disable_single_table_logger(), _seeded(self.seed), _epoch_progress(progress):
            if self._strata is None:
                self._model = cls(
                    metadata, enforce_min_max_values=False, enforce_rounding=False, **self._model_kwargs()
                )
                self._model.fit({TABLE: frame})
            else:
                target = schema.target
                assert target is not None
                inner = sdv_metadata(
                    schema.subset([c for c in schema.synthesized_columns if c != target]), self._point_masses
                )
                self._models = {}
                for key in self._strata:
                    model = cls(inner, enforce_min_max_values=False, enforce_rounding=False, **self._model_kwargs())
                    model.fit({TABLE: frame.loc[frame[target] == key].drop(columns=[target])})
                    self._models[key] = model
        progress(1.0, "fitted")
        return PrivacyCost.non_dp()

    def _strata_of(self, frame: pd.DataFrame, schema: PublicSchema) -> dict[str, float] | None:
        """Class shares of a categorical target when each class gets a model of its own (see the subclass)."""
        return None

    def fitted_models(self) -> list[Any]:
        """The SDV model(s) of the last fit: one, or one per class of the target."""
        if getattr(self, "_strata", None) is not None:
            return list(self._models.values())
        return [self._model] if hasattr(self, "_model") else []

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        from sdv.logging.utils import disable_single_table_logger

        seed = self.derived_seed("sample")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        with _LOCK, disable_single_table_logger(), _seeded(seed):
            if getattr(self, "_strata", None) is None:
                self._model._set_random_state(seed % (2**32))
                sampled = self._model.sample(n)
                table = sampled[TABLE] if isinstance(sampled, dict) else sampled
            else:
                table = self._sample_strata(n, seed)
        table = _apply_indicators(table, getattr(self, "_point_masses", {}))
        progress(1.0, "sampled")
        assert self.schema is not None
        return _from_sdv_frame(table.reset_index(drop=True), self.schema)

    def _sample_strata(self, n: int, seed: int) -> pd.DataFrame:
        assert self._strata is not None and self.schema is not None and self.schema.target is not None
        rng = np.random.default_rng(seed)
        keys = list(self._strata)
        counts = rng.multinomial(n, [self._strata[k] for k in keys])
        parts = []
        for i, (key, count) in enumerate(zip(keys, counts, strict=True)):
            if not count:
                continue
            model = self._models[key]
            model._set_random_state((seed + i) % (2**32))
            sampled = model.sample(int(count))
            part = (sampled[TABLE] if isinstance(sampled, dict) else sampled).reset_index(drop=True)
            part[self.schema.target] = key
            parts.append(part)
        table = pd.concat(parts, ignore_index=True)
        return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


class GaussianCopulaSynthesizer(_SDVBase):
    name = "gaussian-copula"
    description = (
        "SDV GaussianCopula: per-column distributions joined by a Gaussian copula; a value held by "
        "many rows of a numeric column (a point mass such as 0) is modelled apart and kept exact; with a "
        "categorical target whose classes have at least 30 training rows each, one copula per class. "
        "Monotone relationships only: a poor fit where the columns interact in thresholds "
        "(check the utility ratio). Not DP."
    )
    sdv_class = "GaussianCopulaSynthesizer"
    option_spec = {
        "default_distribution": (
            str,
            "beta",
            "SDV's distribution for numerical columns (beta, norm, truncnorm, uniform, gamma, gaussian_kde)",
        ),
    }

    def _strata_of(self, frame: pd.DataFrame, schema: PublicSchema) -> dict[str, float] | None:
        """One copula per class of a categorical target, when every class has enough rows.

        A copula encodes a category as a random position inside its share of (0, 1), so a rare class's
        normal scores are mostly jitter and its relationships with the features vanish (on mammography,
        2.3% positives, the Spearman correlations with the class fell from 0.13-0.24 to under 0.05 and
        a model trained on the output ranked no better than chance). A copula per class keeps them.
        """
        target = schema.target
        if target is None or schema.columns[target].values is None or target not in frame.columns:
            return None
        counts = frame[target].value_counts(dropna=False)
        if counts.index.isna().any() or not 2 <= len(counts) <= MAX_STRATA or int(counts.min()) < STRATUM_MIN_ROWS:
            return None
        return {str(k): float(v) / float(counts.sum()) for k, v in counts.items()}

    def _model_kwargs(self) -> dict[str, Any]:
        allowed = ("beta", "norm", "truncnorm", "uniform", "gamma", "gaussian_kde")
        if self.options["default_distribution"] not in allowed:
            raise MethodOptionError(f"default_distribution must be one of {', '.join(allowed)}", field="options")
        return {"default_distribution": self.options["default_distribution"]}


_GAN_OPTIONS: dict[str, OptionSpec] = {
    "epochs": (int, 100, "training epochs", (1, 1000)),
    "batch_size": (int, 500, "batch size (a multiple of 10)", (10, 10_000)),
}


def _gan_kwargs(options: dict[str, Any], name: str) -> dict[str, Any]:
    epochs, batch = options["epochs"], options["batch_size"]
    if epochs is None or epochs < 1:
        raise MethodOptionError(f"{name}: epochs must be a positive integer", field="options")
    if batch is None or batch < 10 or batch % 10:
        raise MethodOptionError(f"{name}: batch_size must be a positive multiple of 10", field="options")
    return {"epochs": epochs, "batch_size": batch, "verbose": True, "enable_gpu": False}


class CTGANSynthesizer(_SDVBase):
    heavy = True
    name = "ctgan"
    description = "SDV CTGAN: a conditional GAN for mixed-type tables. Not DP."
    sdv_class = "CTGANSynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        return _gan_kwargs(self.options, self.name)


class CopulaGANSynthesizer(_SDVBase):
    heavy = True
    name = "copulagan"
    description = "SDV CopulaGAN: CTGAN on Gaussian-copula-normalised columns. Not DP."
    sdv_class = "CopulaGANSynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        return _gan_kwargs(self.options, self.name)


class TVAESynthesizer(_SDVBase):
    heavy = True
    name = "tvae"
    description = "SDV TVAE: a variational autoencoder for mixed-type tables. Not DP."
    sdv_class = "TVAESynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        kwargs = _gan_kwargs(self.options, self.name)
        return {"epochs": kwargs["epochs"], "batch_size": kwargs["batch_size"], "verbose": True, "enable_gpu": False}

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
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError, MissingDependency
from privacy.schema import NUMERIC_KINDS, PublicSchema, _key
from privacy.synthesizers.base import OptionSpec, ProgressCallback, Synthesizer

__all__ = ["GaussianCopulaSynthesizer", "CTGANSynthesizer", "TVAESynthesizer", "CopulaGANSynthesizer",
           "sdv_metadata"]

TABLE = "table"
_LOCK = threading.Lock()  # the epoch-progress hook is a module-level patch of ctgan's tqdm


def sdv_metadata(schema: PublicSchema) -> Any:
    """SDV metadata for the modelled columns, from the public schema only."""
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
        metadata = sdv_metadata(schema)
        frame = _to_sdv_frame(table, schema)
        cls = getattr(single_table, self.sdv_class)
        self._model = cls(metadata, enforce_min_max_values=False, enforce_rounding=False, **self._model_kwargs())
        progress(0.1, "fitting")
        with _LOCK, disable_single_table_logger(), _seeded(self.seed), _epoch_progress(progress):
            self._model.fit({TABLE: frame})
        progress(1.0, "fitted")
        return PrivacyCost.non_dp()

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        from sdv.logging.utils import disable_single_table_logger

        seed = self.derived_seed("sample")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        with _LOCK, disable_single_table_logger(), _seeded(seed):
            self._model._set_random_state(seed % (2**32))
            sampled = self._model.sample(n)
        table = sampled[TABLE] if isinstance(sampled, dict) else sampled
        progress(1.0, "sampled")
        assert self.schema is not None
        return _from_sdv_frame(table.reset_index(drop=True), self.schema)


class GaussianCopulaSynthesizer(_SDVBase):
    name = "gaussian-copula"
    description = "SDV GaussianCopula: per-column distributions joined by a Gaussian copula. Not DP."
    sdv_class = "GaussianCopulaSynthesizer"
    option_spec = {
        "default_distribution": (str, "beta", "SDV's distribution for numerical columns (beta, norm, truncnorm, "
                                              "uniform, gamma, gaussian_kde)"),
    }

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
    name = "ctgan"
    description = "SDV CTGAN: a conditional GAN for mixed-type tables. Not DP."
    sdv_class = "CTGANSynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        return _gan_kwargs(self.options, self.name)


class CopulaGANSynthesizer(_SDVBase):
    name = "copulagan"
    description = "SDV CopulaGAN: CTGAN on Gaussian-copula-normalised columns. Not DP."
    sdv_class = "CopulaGANSynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        return _gan_kwargs(self.options, self.name)


class TVAESynthesizer(_SDVBase):
    name = "tvae"
    description = "SDV TVAE: a variational autoencoder for mixed-type tables. Not DP."
    sdv_class = "TVAESynthesizer"
    option_spec = dict(_GAN_OPTIONS)

    def _model_kwargs(self) -> dict[str, Any]:
        kwargs = _gan_kwargs(self.options, self.name)
        return {"epochs": kwargs["epochs"], "batch_size": kwargs["batch_size"], "verbose": True, "enable_gpu": False}

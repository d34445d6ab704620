"""The dataset policy: what the steward allows and the thresholds of the release gate.

A YAML document (`synthgate datasets register ... --policy POLICY.yaml`)::

    privacy: dp-only            # or allow-non-dp
    k: 5                        # k-anonymity on the quasi-identifiers (default 5 when QIs are declared)
    l: 2                        # l-diversity of the sensitive columns (null: not checked)
    suppression: generalise     # or suppress: remove rare quasi-identifier combinations without generalising
    max_suppression: 0.1        # at most this share of the sampled rows may be suppressed (generalise chooses
                                # the least-loss generalisation that meets it; a request expected to exceed it
                                # is refused before any budget is reserved)
    max_exact_match_rate: 0.0   # share of synthetic rows equal to a real training row
    max_unique_match_rate: 0.01 # share reproducing a QI combination unique in the real data
    remove_real_matches: false  # filter those rows out (touches real rows: the statement says so)
    max_membership_auc: 0.6
    min_utility_ratio: 0.7      # TSTR / TRTR of the primary utility score
    min_fidelity: 0.6
    small_cell_threshold: 10    # dp-statistics: no cell below this
    rounding_base: 5            # dp-statistics: totals rounded to a multiple of this
    warn_margin: 0.1            # within this fraction of a threshold: warn instead of pass
    max_delta: 1.0e-6           # the largest delta one request may ask for (also capped by the delta budget)
    public_row_count: 50000     # a row count the steward declares public (the request form's default rows)
    max_estimated_minutes: 60   # refuse a request whose time estimate (privacy/estimate.py) is longer; null: none

`max_delta` bounds each request's delta. A delta is the chance that the
guarantee fails outright, so it must stay well under 1/rows; the number of rows
is not public to analysts, so the default is a fixed small number (1e-6, fit for
tables of up to about a hundred thousand rows with room to spare). A steward
with a larger table lowers it. Each request's epsilon is at most
`MAX_REQUEST_EPSILON`: beyond that there is no meaningful guarantee and the
accounting arithmetic loses its precision; a positive delta is at least
`MIN_REQUEST_DELTA` (1e-100), for the same arithmetic.

`public_row_count` is a figure the steward chooses to publish (rounded, or
from a public source), never read from the file: analysts see it, the request
form defaults `rows` to it and the method advice (`privacy/advice.py`) uses it.
Left out, analysts learn no row count at all.

`max_estimated_minutes` caps the predicted time of one release (fit and
report, `privacy/estimate.py`, docs/time-estimates.md): a request whose
estimate is longer is refused before any budget is reserved, with the option
changes that would bring it under. The default, 60, stops only runaway
requests (a GAN at thousands of epochs, MWEM at hundreds of iterations on a
wide table); a steward lowers it (5 is right for an interactive service on a
small machine) or sets it to null for no limit.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy.accounting import POLICY_ALLOW_NON_DP, POLICY_DP_ONLY
from privacy.errors import SchemaError

__all__ = [
    "DEFAULT_MAX_DELTA",
    "DEFAULT_MAX_ESTIMATED_MINUTES",
    "MAX_REQUEST_EPSILON",
    "MIN_REQUEST_DELTA",
    "DatasetPolicy",
    "load_policy",
]

DEFAULT_MAX_DELTA = 1e-6
DEFAULT_MAX_ESTIMATED_MINUTES = 60.0
MAX_REQUEST_EPSILON = Fraction(100)
MIN_REQUEST_DELTA = Fraction(1, 10**100)  # a positive delta below this underflows the accounting's floats


class DatasetPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    privacy: Literal["dp-only", "allow-non-dp"] = POLICY_DP_ONLY
    k: int | None = Field(default=None, ge=1, description="None means 5 when quasi-identifiers are declared")
    l: int | None = Field(default=None, ge=1)  # noqa: E741 - the name of the property
    suppression: Literal["suppress", "generalise"] = "generalise"
    max_exact_match_rate: float = Field(default=0.0, ge=0, le=1)
    max_unique_match_rate: float = Field(default=0.01, ge=0, le=1)
    remove_real_matches: bool = False
    max_membership_auc: float = Field(default=0.6, ge=0.5, le=1)
    min_utility_ratio: float = Field(default=0.7, ge=0, le=1)
    min_fidelity: float = Field(default=0.6, ge=0, le=1)
    small_cell_threshold: int = Field(default=10, ge=0)
    rounding_base: int = Field(default=5, ge=1)
    warn_margin: float = Field(default=0.1, ge=0, le=1)
    max_suppression: float = Field(
        default=0.1, ge=0, le=1, description="the largest share of sampled rows k-anonymity may suppress"
    )
    max_delta: float = Field(
        default=DEFAULT_MAX_DELTA, ge=0, lt=1, description="the largest delta one request may ask for"
    )
    public_row_count: int | None = Field(
        default=None, ge=1, description="a row count the steward declares public; None: analysts learn none"
    )
    max_estimated_minutes: float | None = Field(
        default=DEFAULT_MAX_ESTIMATED_MINUTES,
        gt=0,
        allow_inf_nan=False,
        description="the longest time estimate a request may have, in minutes; None: no limit",
    )
    retention_days: int | None = Field(
        default=None, ge=1, description="days after registration when the raw data is erased; None keeps it"
    )

    def effective_k(self, has_quasi_identifiers: bool) -> int | None:
        if self.k is not None:
            return self.k
        return 5 if has_quasi_identifiers else None

    @property
    def max_delta_exact(self) -> Fraction:
        """`max_delta` as the exact decimal the steward wrote (1e-6 is exactly 1/10**6)."""
        from privacy.budget import to_fraction

        return to_fraction(self.max_delta, "max_delta")

    @property
    def allows_non_dp(self) -> bool:
        return self.privacy == POLICY_ALLOW_NON_DP

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DatasetPolicy:
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SchemaError(f"invalid dataset policy: {msgs}", field="policy") from exc

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_policy(source: str | Path | dict[str, Any] | None) -> DatasetPolicy:
    """A policy from YAML text, a mapping, or a file given as a `Path`.

    A string is always YAML text, never a file name: text comes from users, and
    a server must not read files they name.
    """
    if source is None:
        return DatasetPolicy()
    if isinstance(source, dict):
        return DatasetPolicy.from_dict(source)
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"cannot read the policy file {source}: {exc}", field="policy") from exc
    else:
        text = str(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"the policy is not valid YAML: {exc}", field="policy") from exc
    except RecursionError as exc:
        raise SchemaError("the policy is nested too deeply: it is a flat mapping of settings", field="policy") from exc
    if data is not None and not isinstance(data, dict):
        raise SchemaError("the policy must be a mapping of settings", field="policy")
    return DatasetPolicy.from_dict(data)

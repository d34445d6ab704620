"""Settings of a re-run of post-processing on a stored DP sample.

A release's sample (the synthesizer's output, after any rebalancing) can be
post-processed again with other settings: disclosure control (k, l,
suppression mode and limit, real-match removal), the disclosure-control fields
of the public schema (hierarchies, top/bottom coding, rounding) and the number
of rows to release from the sample. None of these reads the mechanism again,
so none costs privacy budget. Settings that would change what was sampled (a
column's kind, domain or bounds, the quasi-identifiers) or how the release is
judged (the gate's thresholds) are refused: they belong to the dataset's policy
and schema, and a new release.

`apply_settings` is the one place that turns a request into the schema, the
policy and the row count a re-run uses; the web layer calls it to refuse a bad
request before anything is queued, the worker to run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import PostprocessSettingError, PrivacyError
from privacy.policy import DatasetPolicy
from privacy.schema import ColumnSpec, PublicSchema

__all__ = ["POLICY_FIELDS", "SCHEMA_FIELDS", "RerunSettings", "apply_settings", "rows_subset"]

#: policy fields a re-run may change: disclosure control only (those the policy model has)
_POLICY_CANDIDATES = ("k", "l", "suppression", "max_suppression", "remove_real_matches")
#: public-schema column fields a re-run may change: coding and generalisation of the released values
SCHEMA_FIELDS = ("hierarchy", "top_code", "bottom_code", "round_to")
_KEYS = ("policy", "schema", "rows")


def _policy_fields() -> tuple[str, ...]:
    return tuple(f for f in _POLICY_CANDIDATES if f in DatasetPolicy.model_fields)


POLICY_FIELDS = _policy_fields()


@dataclass(frozen=True)
class RerunSettings:
    """What a re-run uses: the schema and policy for post-processing, and the rows taken from the sample."""

    schema: PublicSchema
    policy: DatasetPolicy
    rows: int
    requested: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """The effective settings, as recorded with a candidate and in its privacy statement."""
        out: dict[str, Any] = {name: getattr(self.policy, name) for name in POLICY_FIELDS}
        out["k"] = self.policy.effective_k(bool(self.schema.quasi_identifiers))
        out["rows"] = self.rows
        coding = {}
        for name in self.schema.synthesized_columns:
            spec = self.schema.columns[name]
            fields = {f: _plain(getattr(spec, f)) for f in SCHEMA_FIELDS if getattr(spec, f) is not None}
            if fields:
                coding[name] = fields
        out["columns"] = coding
        return out


def _message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg'].removeprefix('Value error, ')}" for e in errors()
        )
    return str(exc)


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value


def apply_settings(
    schema: PublicSchema, policy: DatasetPolicy, requested: Mapping[str, Any] | None, sample_rows: int
) -> RerunSettings:
    """The schema, policy and row count of a re-run: `schema` and `policy` as the sample was post-processed
    the first time, changed by `requested`::

        {"policy": {"k": 10, "suppression": "suppress"},
         "schema": {"columns": {"age": {"hierarchy": {"band": 10}, "top_code": 80}}},
         "rows": 500}

    A field set to null in `schema.columns` removes it. `rows` is at most the rows of the sample.
    Raises PostprocessSettingError with the field concerned.
    """
    req = dict(requested or {})
    unknown = [k for k in req if k not in _KEYS]
    if unknown:
        raise PostprocessSettingError(
            f"unknown setting(s) {unknown}: a re-run takes {', '.join(_KEYS)}", field=unknown[0]
        )
    new_policy = _policy(policy, req.get("policy"))
    new_schema = _schema(schema, req.get("schema"))
    rows = req.get("rows")
    if rows is None:
        rows = sample_rows
    elif isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise PostprocessSettingError(f"rows must be a whole number of at least 1, got {rows!r}", field="rows")
    elif rows > sample_rows:
        raise PostprocessSettingError(
            f"rows {rows} is more than the {sample_rows} rows the mechanism sampled: a "
            "re-run releases some or all of the sample, never more",
            field="rows",
        )
    return RerunSettings(schema=new_schema, policy=new_policy, rows=int(rows), requested=req)


def _policy(policy: DatasetPolicy, changes: Any) -> DatasetPolicy:
    if changes is None:
        return policy
    if not isinstance(changes, Mapping):
        raise PostprocessSettingError('policy must be a mapping of settings such as {"k": 10}', field="policy")
    refused = [k for k in changes if k not in POLICY_FIELDS]
    if refused:
        raise PostprocessSettingError(
            f"policy setting(s) {refused} cannot change in a re-run: it may change {', '.join(POLICY_FIELDS)} "
            "(disclosure control); other settings belong to the dataset's policy",
            field="policy",
        )
    try:
        return DatasetPolicy.from_dict({**policy.to_dict(), **dict(changes)})
    except PrivacyError as exc:
        raise PostprocessSettingError(exc.message, field="policy") from exc


def _schema(schema: PublicSchema, changes: Any) -> PublicSchema:
    if changes is None:
        return schema
    if (
        not isinstance(changes, Mapping)
        or set(changes) - {"columns"}
        or not isinstance(changes.get("columns"), Mapping)
    ):
        raise PostprocessSettingError(
            'schema must be {"columns": {COLUMN: {FIELD: VALUE}}} with fields among ' + ", ".join(SCHEMA_FIELDS),
            field="schema",
        )
    columns = dict(schema.columns)
    for name, fields in changes["columns"].items():
        if name not in columns or columns[name].is_dropped:
            raise PostprocessSettingError(
                f"unknown column '{name}': the released columns are " + ", ".join(schema.synthesized_columns),
                field="schema",
            )
        if not isinstance(fields, Mapping):
            raise PostprocessSettingError(f"schema.columns.{name} must be a mapping of fields", field="schema")
        refused = [f for f in fields if f not in SCHEMA_FIELDS]
        if refused:
            raise PostprocessSettingError(
                f"column '{name}': field(s) {refused} cannot change in a re-run (they describe what was "
                f"sampled); it may change {', '.join(SCHEMA_FIELDS)}",
                field="schema",
            )
        data = columns[name].model_dump(mode="python")
        data.update(dict(fields))
        try:
            columns[name] = ColumnSpec.model_validate(data)
        except ValueError as exc:
            raise PostprocessSettingError(f"column '{name}': {_message(exc)}", field="schema") from exc
    try:
        return PublicSchema.model_validate({**schema.model_dump(mode="python"), "columns": columns})
    except ValueError as exc:
        raise PostprocessSettingError(f"schema: {_message(exc)}", field="schema") from exc


def rows_subset(sample: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` rows of the sample, drawn without replacement by `seed` (in the sample's order); all of it
    when `rows` is its length. Reads only the sample: post-processing."""
    if rows >= len(sample):
        return sample.reset_index(drop=True)
    keep = np.sort(np.random.default_rng(seed).choice(len(sample), size=rows, replace=False))
    return sample.iloc[keep].reset_index(drop=True)

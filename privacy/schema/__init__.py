"""The public schema: what the steward declares public about a table.

Every bound and category domain in a confirmed `PublicSchema` is treated as
public knowledge: synthesizers build their encodings from it, never from the
data. A proposal made from the data (`propose_schema`) marks every value it read
as `learned`; the steward edits and confirms it, and the privacy statement lists
whatever they kept.

The schema is a small YAML/JSON document::

    columns:
      age:       {kind: ordinal, min: 17, max: 90}
      workclass: {kind: categorical, values: [Private, ...], nullable: true}
      fnlwgt:    {kind: continuous, min: 0, max: 1500000, integer: true}
      gain:      {kind: continuous, min: 0, max: 100000, integer: true, special_values: [0]}
      dob:       {kind: datetime, min: 1920-01-01, max: 2005-12-31}
      id:        {kind: identifier}
    quasi_identifiers: [age, sex, race]
    sensitive: [income]
    target: income
    constraints:                    # between columns: see privacy/constraints/
      - c_jail_in <= c_jail_out

`special_values` are point masses of a numeric column (a 0 most rows hold, a
-1 meaning "not applicable", a top code): public values, each of which every
marginal method gives a code of its own, so that it comes back exactly instead
of being spread over an equal-width bin (privacy/encoding.py). They lie within
the declared bounds, are distinct, integers in an integer column, and at most
`MAX_SPECIAL_VALUES`. A proposal suggests the values that hold a large share
of a binned column's rows, marked `learned` like every fact read from the data.

The models live in `privacy.schema.model`, reading tables in `tables`, the
proposal in `proposal`, the suggested roles (quasi-identifiers, sensitive
columns, target, hierarchies, flags: `suggest_roles`) in `suggest`, validation,
conformance and enforcement in `conform`; the names are re-exported here.
"""

from __future__ import annotations

from privacy.schema.conform import (
    ConformReport,
    SchemaIssue,
    conform_table,
    enforce_schema,
    fake_ids,
    validate_table,
)
from privacy.schema.conform import _category_keys as _category_keys
from privacy.schema.conform import _key as _key
from privacy.schema.model import DROPPED_KINDS as DROPPED_KINDS
from privacy.schema.model import (
    MAX_EXACT_ORDINAL,
    MAX_SPECIAL_VALUES,
    ColumnKind,
    ColumnSpec,
    Hierarchy,
    PublicSchema,
    load_schema,
)
from privacy.schema.model import NUMERIC_KINDS as NUMERIC_KINDS
from privacy.schema.model import SPECIAL_VALUE_SHARE as SPECIAL_VALUE_SHARE
from privacy.schema.model import Scalar as Scalar
from privacy.schema.model import _as_number as _as_number
from privacy.schema.proposal import OPEN_DOMAIN_DESCRIPTION as OPEN_DOMAIN_DESCRIPTION
from privacy.schema.proposal import apply_null_tokens as apply_null_tokens
from privacy.schema.proposal import propose_schema
from privacy.schema.suggest import apply_suggestions, suggest_roles
from privacy.schema.suggest import describe_hierarchy as describe_hierarchy
from privacy.schema.tables import NA_VALUES, read_table
from privacy.schema.tables import _check_column_names as _check_column_names
from privacy.schema.tables import _check_finite as _check_finite
from privacy.schema.tables import _check_parquet_columns as _check_parquet_columns
from privacy.schema.tables import _check_utf8 as _check_utf8

__all__ = [
    "MAX_EXACT_ORDINAL",
    "MAX_SPECIAL_VALUES",
    "ColumnKind",
    "ColumnSpec",
    "ConformReport",
    "Hierarchy",
    "PublicSchema",
    "SchemaIssue",
    "apply_suggestions",
    "conform_table",
    "load_schema",
    "propose_schema",
    "read_table",
    "suggest_roles",
    "validate_table",
]

__all__ += ["NA_VALUES", "enforce_schema", "fake_ids"]

"""Constraints between columns, declared in the public schema and enforced on every method's output.

The steward declares them under `constraints:`, as public knowledge about the
table (never learned from its rows)::

    constraints:
      - c_jail_in <= c_jail_out                        # short form of an inequality
      - inequality: {low: c_jail_in, high: c_jail_out, strict: false}
      - determined:                                     # a column fixed by another, by bands ...
          column: age_cat
          by: age
          bands: {Less than 25: [18, 24], 25 - 45: [25, 45], Greater than 45: [46, 100]}
      - determined: {column: region, by: state, mapping: {CA: west, NY: east}}   # ... or a mapping
      - combinations:                                   # the only allowed combinations of categories
          columns: [pregnant, sex]
          allowed: [[yes, Female], [no, Female], [no, Male]]
      - formula: {column: bmi, expression: "weight / (height / 100) ** 2"}

Meaning, row by row; a null in any column a constraint reads never violates it:

* inequality: `low <= high` (`<` when strict), between two numeric or two datetime columns;
* determined: the `column`'s value is the band that holds `by` (bands are inclusive
  `[min, max]`, the first that holds a value wins), or `mapping[by]` (values of `by`
  that the mapping does not list are not constrained);
* combinations: the tuple of the listed columns is one of `allowed`;
* formula: the numeric `column` equals the expression, clipped to its bounds and
  rounded if it is an integer. Expressions are parsed by `privacy._expression`
  (arithmetic, comparisons and a few named functions, never `eval`).

Enforcement (`enforce_constraints`), on the synthetic output only, in this order:

1. **Reject and resample.** Rows violating an inequality, a determination or a
   combination are replaced by fresh rows drawn from the fitted synthesizer (the
   caller's `resample`), keeping only draws that satisfy every such constraint, for at
   most `max_rounds` rounds. The output keeps its requested row count, and the kept
   rows follow the model conditioned on the constraints.
2. **Repair what is left**, in a fixed order so that no repair undoes another:
   inequalities (swap the two values, then clip each to its declared bounds; repeated
   until chains such as a <= b <= c settle), combinations (the allowed combination
   sharing most values with the row, ties broken by a seeded draw), then determined
   columns and formulas in the order they are listed (the determined column is
   recomputed from its source; a source outside every band is first moved to the
   nearest band). Repaired values stay inside the declared bounds and domains and
   keep their dtypes.
3. **Check.** No row violates a constraint afterwards; anything else is a bug and raises.

Formulas are definitions rather than checks: they are not grounds for rejection, the
column is recomputed on every row. Everything here reads only the synthetic rows and
the public schema, so it is post-processing and costs no privacy budget; the counts in
`ConstraintReport` are counts of synthetic rows. `violation_counts` measures any table
(for example a real one, for the steward) and is not used by a release.

The rules and their validation live in `privacy.constraints.rules`, the row
checks in `checks`, the repair in `repair` and the enforcement in `enforce`;
the names are re-exported here.
"""

from __future__ import annotations

from privacy.constraints.checks import _expression_inputs as _expression_inputs
from privacy.constraints.checks import violation_counts
from privacy.constraints.enforce import DEFAULT_ROUNDS as DEFAULT_ROUNDS
from privacy.constraints.enforce import MAX_DRAW_FACTOR as MAX_DRAW_FACTOR
from privacy.constraints.enforce import ConstraintReport, enforce_constraints
from privacy.constraints.repair import repair_constraints
from privacy.constraints.rules import (
    Combinations,
    Constraint,
    Determined,
    Formula,
    Inequality,
    check_constraints,
    constraints_valid_for,
)
from privacy.constraints.rules import Scalar as Scalar

__all__ = [
    "Combinations",
    "Constraint",
    "ConstraintReport",
    "Determined",
    "Formula",
    "Inequality",
    "check_constraints",
    "constraints_valid_for",
    "enforce_constraints",
    "repair_constraints",
    "violation_counts",
]

"""Statistical disclosure control of a released table.

Two kinds of work live here, and the difference between them is the point:

* `apply_disclosure_control` is post-processing. It reads only the synthetic
  output and the public schema (top/bottom coding, rounding, generalisation of
  quasi-identifiers by the schema's hierarchies, suppression of rare
  quasi-identifier combinations), so the release keeps whatever DP guarantee
  the synthesizer gave. Its report counts things in the synthetic output and
  may be published.
* `real_row_checks` compares the output with the real training rows (exact
  copies, reproductions of real unique quasi-identifier combinations). Its
  figures are internal, and removing rows because of them is a decision that
  depends on real data: the privacy statement must say so.

`apply_small_cell_rules` is the aggregate-release counterpart: no published
cell below a threshold, counts rounded to a base, and a suppressed cell
suppressed whole (its mean, variance, quantiles and bins with its count).

The work is split along that line: `privacy.disclosure.public` holds the
post-processing and the aggregate rules, `privacy.disclosure.real_rows` the
checks against real rows; both are re-exported here.

Conventions, all public and documented in the reports:

* a null is a value of its own when forming quasi-identifier classes;
* rounding is to the nearest multiple of `round_to`, halves up; top and bottom
  coding then replace values above (below) the code by the code;
* numeric bands are anchored at multiples of the band width and clipped to the
  declared bounds (age 17..90 in bands of 5: "17-19", "20-24", ..., "85-90");
  the last interval is closed;
* with `suppression: generalise`, each quasi-identifier is generalised along
  nested levels from the public schema (declared hierarchies, then derived
  bands, month/year/decade, groups, then `*`), at the node of least
  information loss that reaches k with at most the policy's `max_suppression`
  of the rows suppressed (`privacy.generalise`, which documents the levels, the
  loss metric and the search).
"""

from __future__ import annotations

from privacy.disclosure.public import (
    CELL_LABEL_COLUMNS,
    DisclosureReport,
    SmallCellReport,
    apply_disclosure_control,
    apply_small_cell_rules,
    class_sizes,
    k_anonymity,
    l_diversity,
    recode_like,
)
from privacy.disclosure.real_rows import RealMatchReport, real_row_checks

__all__ = [
    "CELL_LABEL_COLUMNS",
    "DisclosureReport",
    "RealMatchReport",
    "SmallCellReport",
    "apply_disclosure_control",
    "apply_small_cell_rules",
    "class_sizes",
    "k_anonymity",
    "l_diversity",
    "real_row_checks",
    "recode_like",
]

"""Generalisation of quasi-identifiers: hierarchies from the public schema and an optimal lattice search.

Everything here reads only the public schema and the synthetic output (or, for
`preflight_disclosure`, the schema, the policy and the requested row count), so
it is post-processing and costs no privacy budget.

**Hierarchies.** Each quasi-identifier gets a list of nested levels, level 0
being the value as synthesized and the last `*` (the value suppressed: every
row, null included, in one class):

* numeric: the declared `band` or `edges` first, when given; then bands of
  growing width, each a multiple of the one before (so every band lies inside
  one band of the next level), chosen among 1, 2, 5 x 10^j and anchored at
  multiples of the width inside the declared bounds (age 17..90: 2, 10, 20);
* datetime: day -> month -> year -> decade (from the declared granularity on);
* categorical: the declared `groups`, when given.

A null stays null (a class of its own) at every level but `*`.

**Information loss.** Iyengar's Loss Metric (LM, "Transforming data to satisfy
privacy constraints", KDD 2002): a value generalised to a set of m of the M
values of its declared domain loses (m - 1) / (M - 1) (an interval of a
continuous column: its width over the declared range; dates counted in days,
each interval clipped to the bounds); a value kept loses 0, `*` loses 1. A
node's loss is the mean over rows and quasi-identifiers, a suppressed row
counting 1 for every quasi-identifier. LM is used because it weighs how much
each released value says rather than how high in a hierarchy it sits, is
comparable across columns of different kinds, and prices suppression and
generalisation on one scale, which is what choosing between them needs.

**Search.** A node (one level per quasi-identifier) is acceptable when at most
`max_suppression` of the rows fall in classes below k. Acceptability is
monotone (a generalisation of an acceptable node is acceptable), but LM with
suppression is not (generalising can lower the loss by sparing rows), so
pruning the successors of acceptable nodes would not be optimal. Instead every
node has a lower bound on its loss that needs no class computation: the LM of
its generalisation alone, averaged over all rows (a suppressed row counts 1,
never less than its generalised loss). Nodes are visited in order of that
bound and the search stops when the bound exceeds the best acceptable loss
found: branch and bound, exact, and it evaluates a few nodes of a lattice of
hundreds. The top node (every quasi-identifier `*`) puts all rows in one
class, so a table of at least k rows always has an acceptable node.

The hierarchies and the loss metric live in `privacy.generalise.hierarchy`,
the search in `privacy.generalise.lattice` and the preflight in
`privacy.generalise.preflight`; the names are re-exported here.
"""

from __future__ import annotations

from privacy.generalise.hierarchy import MAX_BAND_LEVELS as MAX_BAND_LEVELS
from privacy.generalise.hierarchy import MAX_FIRST_BANDS as MAX_FIRST_BANDS
from privacy.generalise.hierarchy import MAX_INTERVALS as MAX_INTERVALS
from privacy.generalise.hierarchy import SUPPRESSED_LABEL as SUPPRESSED_LABEL
from privacy.generalise.hierarchy import _decimals as _decimals
from privacy.generalise.hierarchy import _level_arrays as _level_arrays
from privacy.generalise.hierarchy import apply_recoding, column_levels, describe_levels, generalised_spec
from privacy.generalise.hierarchy import describe_node as describe_node
from privacy.generalise.hierarchy import label_losses as label_losses
from privacy.generalise.lattice import LatticeChoice, choose_generalisation, search_lattice
from privacy.generalise.lattice import LatticeResult as LatticeResult
from privacy.generalise.preflight import REFUSE_SHARE as REFUSE_SHARE
from privacy.generalise.preflight import (
    DisclosurePreflight,
    check_disclosure_request,
    expected_share_below_k,
    preflight_disclosure,
)

__all__ = [
    "DisclosurePreflight",
    "LatticeChoice",
    "apply_recoding",
    "check_disclosure_request",
    "choose_generalisation",
    "column_levels",
    "describe_levels",
    "expected_share_below_k",
    "generalised_spec",
    "preflight_disclosure",
    "search_lattice",
]

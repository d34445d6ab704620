"""Enforcement of the constraints on a synthetic table: reject and resample, repair what is left, check.

`enforce_constraints` runs the three steps documented in `privacy.constraints`
and reports them in a `ConstraintReport` (counts of synthetic rows).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy._values import fake_ids
from privacy.constraints.checks import _any_violation, _row_checked, _violations
from privacy.constraints.repair import _repair

if TYPE_CHECKING:
    from privacy.schema import PublicSchema

log = logging.getLogger(__name__)

DEFAULT_ROUNDS = 5
# a round draws at most this many times the output's rows (a model that almost never satisfies the
# constraints is repaired rather than sampled without end)
MAX_DRAW_FACTOR = 4


# ----------------------------------------------------------------------------------
# enforcement
# ----------------------------------------------------------------------------------


@dataclass
class ConstraintReport:
    """What enforcement did to one output. Counts of synthetic rows only: public."""

    rows: int
    constraints: list[dict[str, Any]] = field(default_factory=list)
    rows_violating: int = 0
    rows_resampled: int = 0
    rows_drawn: int = 0
    rounds: int = 0
    rows_repaired: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "constraints": self.constraints,
            "rows_violating": self.rows_violating,
            "rows_resampled": self.rows_resampled,
            "rows_drawn": self.rows_drawn,
            "rounds": self.rounds,
            "rows_repaired": self.rows_repaired,
            "seconds": self.seconds,
        }


Resample = Callable[[int], pd.DataFrame]


def enforce_constraints(
    df: pd.DataFrame,
    schema: PublicSchema,
    *,
    resample: Resample | None = None,
    seed: int | None = None,
    max_rounds: int = DEFAULT_ROUNDS,
) -> tuple[pd.DataFrame, ConstraintReport]:
    """`df` with every constraint of `schema` satisfied, and what it took (see the module docstring).

    `resample(m)` returns m fresh rows of the same synthesizer, already fitted to the schema
    (`Synthesizer.sample_more`); without it, violations are repaired only. Reads only `df`, the
    rows `resample` draws and the public schema: post-processing, no privacy cost.
    """
    t0 = time.perf_counter()
    report = ConstraintReport(rows=len(df))
    if not schema.constraints:
        return df, report
    out = df.reset_index(drop=True).copy()
    before = {c.describe(): _violations(c, out, schema) for c in schema.constraints}
    bad = np.zeros(len(out), dtype=bool)
    for c in _row_checked(schema):
        bad |= before[c.describe()]
    report.rows_violating = int(bad.sum())
    if resample is not None and bad.any():
        out, report.rows_resampled, report.rows_drawn, report.rounds = _reject_and_resample(
            out, bad, schema, resample, max_rounds
        )
    out, changed = _repair(out, schema, seed)
    if report.rows_resampled:
        out = _fresh_fake_ids(out, schema, seed)
    touched = np.zeros(len(out), dtype=bool)
    for c in schema.constraints:
        key = c.describe()
        touched |= changed[key]
        report.constraints.append(
            {
                "constraint": key,
                "kind": c.kind,
                "violations_before": int(before[key].sum()),
                "repaired": int(changed[key].sum()),
            }
        )
    report.rows_repaired = int(touched.sum())
    report.seconds = round(time.perf_counter() - t0, 4)
    log.info(
        "constraints: %d of %d rows violated; %d resampled in %d round(s), %d repaired",
        report.rows_violating,
        report.rows,
        report.rows_resampled,
        report.rounds,
        report.rows_repaired,
    )
    return out, report


def _reject_and_resample(
    df: pd.DataFrame, bad: np.ndarray, schema: PublicSchema, resample: Resample, max_rounds: int
) -> tuple[pd.DataFrame, int, int, int]:
    """Replace violating rows by fresh draws that satisfy every row-checked constraint.

    Returns the frame, the rows replaced, the rows drawn and the rounds run. Rows that no round
    could replace stay as they are (for repair).
    """
    positions = np.flatnonzero(bad)
    need = len(positions)
    rate = max(1.0 - float(bad.mean()), 0.05)
    found: list[pd.DataFrame] = []
    drawn = rounds = 0
    for _ in range(max_rounds):
        if need <= 0:
            break
        m = int(min(math.ceil(1.2 * need / rate) + 16, MAX_DRAW_FACTOR * len(df)))
        extra = resample(m).reset_index(drop=True)
        drawn += len(extra)
        rounds += 1
        if not len(extra):
            break
        ok = ~_any_violation(extra, schema)
        rate = max(float(ok.mean()), 0.05)
        take = extra.loc[ok].head(need)
        found.append(take)
        need -= len(take)
    if not found:
        return df, 0, drawn, rounds
    replacements = pd.concat(found, ignore_index=True)
    replacements = replacements[list(df.columns)]
    targets = positions[: len(replacements)]
    out = df.copy()
    for name in out.columns:
        col = out[name].copy()
        col.iloc[targets] = replacements[name].astype(col.dtype).to_numpy()
        out[name] = col
    return out, len(targets), drawn, rounds


def _fresh_fake_ids(df: pd.DataFrame, schema: PublicSchema, seed: int | None) -> pd.DataFrame:
    """Regenerated `identifier: fake` columns: replacement rows would otherwise repeat ids."""
    fakes = [n for n, s in schema.columns.items() if s.kind == "identifier" and s.identifier == "fake" and n in df]
    if not fakes:
        return df
    rng = np.random.default_rng(seed)
    for name in fakes:
        df[name] = fake_ids(len(df), rng)
    return df

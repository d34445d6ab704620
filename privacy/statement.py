"""The privacy statement of a release: the `privacy.md` of its bundle.

`privacy_statement(...)` takes plain values and dicts (what the worker stores
in its job record) and returns Markdown. It says, in this order: what the
release is and which mechanism made it; the privacy parameters; what the
guarantee covers and what it does not (public schema values, in particular
any the steward kept as learned from the data; group privacy; auxiliary
information); the dataset-level guarantee from the ledger; warnings for
non-DP methods; the post-processing applied; the checks that touched real
rows and what they removed; and the gate.

Audience. Figures computed on real rows (exact-match and unique-match counts,
membership AUC, utility, fidelity) are not DP. By default
(`include_internal=False`) the statement names those checks and says whether
filtering was applied, but withholds their figures; the steward's copy
(`include_internal=True`) has them. One exception: when filtering removed
rows, the total removed is stated, because the released table's size (with
the public suppression counts and the requested row count) reveals it anyway.
Counts computed on the synthetic output (suppressed rows, generalised columns,
coded values) are always shown. The gate's overall verdict and a steward's
override reason rest on the internal checks: only the steward's copy has them.

Neighbours. The guarantee is stated for add/remove-one-row neighbours of the
whole registered table. A release fitted on a training part says how that part
was drawn (each row held out on its own, by an independent draw), which is
what makes the fit's guarantee hold for the whole table; the sizes of the parts
are data-derived and never stated.

Escaping. Everything user-written (dataset names, column names and values,
notes, reasons) is escaped, so it renders as the text it is, never as Markdown
or HTML.

The section builders and the escaping live in privacy/_statement_sections.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privacy._statement_sections import (
    _bin_placement_text,
    _candidates,
    _constraints,
    _cost_dict,
    _covers,
    _gate,
    _md,
    _neighbours,
    _not_covered,
    _parameters,
    _plain,
    _post_processing,
    _real_checks,
    _rebalancing,
)
from privacy.budget import PrivacyCost
from privacy.disclosure import DisclosureReport, RealMatchReport, SmallCellReport
from privacy.gate import GateResult
from privacy.schema import PublicSchema

__all__ = ["privacy_statement"]

_REBALANCING_NOTE = (
    "This method builds its output from the real rows themselves: it contains real records, and new "
    "records interpolated between real neighbours. Treat the released table as you would the real data."
)


def privacy_statement(
    *,
    method: Mapping[str, Any],
    cost: PrivacyCost | Mapping[str, Any] | None,
    schema: PublicSchema | Mapping[str, Any],
    dataset_guarantee: str | None = None,
    release: Mapping[str, Any] | None = None,
    disclosure: DisclosureReport | Mapping[str, Any] | None = None,
    real_checks: RealMatchReport | Mapping[str, Any] | None = None,
    small_cells: SmallCellReport | Mapping[str, Any] | None = None,
    gate: GateResult | Mapping[str, Any] | None = None,
    override_reason: str | None = None,
    include_internal: bool = False,
) -> str:
    """The Markdown privacy statement of one release.

    Parameters (all plain values, as stored in a job record):

    - `method`: the method's `Synthesizer.info()` dict, or at least
      `{"name", "guarantee": "dp"|"non-dp"|"data-free"}`, optionally
      `"description"`, `"zcdp"`, `"releases_real_rows"`.
    - `cost`: the `PrivacyCost` charged (or its `to_dict()`); None for a data-free release.
    - `schema`: the dataset's confirmed public schema (object or dict); its
      `learned` entries are listed as not covered by the guarantee.
    - `dataset_guarantee`: the ledger's text for the dataset so far
      (`BudgetStatus.guarantee()`), charges of this release included.
    - `release`: optional facts such as `{"id", "dataset", "kind", "rows", "created"}`,
      `"approved_at"` and `"approval_comment"` (the steward's public comment), and
      `"holdout"`: the fraction with which each row was held out of the fit by an
      independent draw (0 when every row was measured; absent when not known), and
      `"schema_version"`: the version of the dataset's public schema the release ran under.
    - `disclosure`, `real_checks`, `small_cells`: the reports of
      `privacy.disclosure` (objects or their `to_dict()`).
    - `gate`: the `GateResult` (or its `to_dict(include_internal=True)`).
    - `override_reason`: the steward's written reason when a failing gate was overridden;
      stated in the steward's copy only (it speaks of the internal checks).
    - `include_internal`: also give the figures computed on real rows, the gate's
      overall verdict and the override (steward's copy).
    """
    info = dict(method)
    name = str(info.get("name", "unknown"))
    guarantee = str(info.get("guarantee", "dp"))
    sch = schema if isinstance(schema, PublicSchema) else PublicSchema.from_dict(schema)
    c = _cost_dict(cost)
    if guarantee == "dp" and c is not None and not c.is_dp:
        guarantee = "non-dp"
    rel = dict(release or {})
    dis, real, cells = _plain(disclosure), _plain(real_checks), _plain(small_cells)

    lines: list[str] = []
    title = "# Privacy statement"
    if rel.get("id") is not None:
        title += f" — release {_md(rel['id'])}"
    if rel.get("dataset"):
        title += f" of {_md(rel['dataset'])}"
    lines += [title, ""]
    if not include_internal:
        lines += ["_Public version: figures computed on real rows are withheld; the data steward has them._", ""]
    else:
        lines += [
            "_This copy includes, at the data steward's choice, the internal checks: figures computed on "
            "real rows, the gate's verdict and any override reason. No privacy guarantee covers them; "
            "whoever holds this copy learns them as they are._",
            "",
        ]

    # --- what and how --------------------------------------------------------------
    lines += ["## Release and mechanism", ""]
    facts = [("method", name)]
    for key in ("kind", "rows", "created"):
        if rel.get(key) is not None:
            facts.append((key, str(rel[key])))
    if rel.get("schema_version") is not None:
        facts.append(("public schema version", str(rel["schema_version"])))
    if info.get("description"):
        facts.append(("description", str(info["description"])))
    kind_text = {
        "dp": "differentially private",
        "non-dp": "NOT differentially private",
        "data-free": "data-free (reads no real rows)",
    }.get(guarantee, guarantee)
    facts.append(("guarantee", kind_text))
    placement = info.get("bin_placement")
    if placement:
        facts.append(("bin placement", _bin_placement_text(placement)))
    lines += [f"- **{k}**: {_md(v)}" for k, v in facts] + [""]

    # --- parameters ------------------------------------------------------------------
    lines += ["## Privacy parameters", ""]
    lines += _parameters(guarantee, c, bool(info.get("zcdp")))
    lines.append("")

    # --- coverage ----------------------------------------------------------------------
    lines += ["## What the guarantee covers", ""]
    lines += _covers(guarantee, c)
    lines += _neighbours(guarantee, rel.get("holdout"))
    lines += ["", "## What it does not cover", ""]
    lines += _not_covered(sch, guarantee)
    lines.append("")

    if guarantee == "non-dp" or info.get("releases_real_rows"):
        lines += ["## Warning: no formal guarantee", ""]
        if guarantee == "non-dp":
            lines.append(
                "This release was made with a method that is not differentially private (epsilon = infinity), "
                "which the dataset's policy allows. No mathematical bound limits what it reveals about any "
                "individual; the checks below reduce some risks but do not replace a guarantee."
            )
        if info.get("releases_real_rows"):
            lines += ["", _REBALANCING_NOTE]
        lines.append("")

    # --- dataset level --------------------------------------------------------------
    lines += ["## The dataset's guarantee so far", ""]
    lines.append(_md(dataset_guarantee) if dataset_guarantee else "Not given with this statement.")
    lines.append("")

    # --- post-processing ---------------------------------------------------------------
    lines += ["## Post-processing applied", ""]
    lines += _post_processing(dis, cells) if dis or cells or not _constraints(rel.get("constraints")) else []
    lines += _constraints(rel.get("constraints"))
    lines += _rebalancing(rel.get("rebalanced"), guarantee)
    lines += _candidates(rel.get("postprocessing"))
    lines.append("")

    # --- real rows ----------------------------------------------------------------------
    lines += ["## Checks that used real rows", ""]
    lines += _real_checks(real, include_internal, guarantee)
    lines.append("")

    # --- gate ---------------------------------------------------------------------------
    lines += ["## Release gate", ""]
    lines += _gate(gate, include_internal, override_reason)
    lines.append("")

    # --- files ----------------------------------------------------------------------------
    lines += ["## Files", "", CSV_NOTE, ""]

    # --- decision -----------------------------------------------------------------------
    if rel.get("approved_at"):
        lines += ["## Approval", "", f"Approved by the data steward on {_md(rel['approved_at'])} (UTC)."]
        if rel.get("approval_comment"):
            lines += ["", f"The steward's comment: {_md(rel['approval_comment'])}"]
        lines.append("")
    return "\n".join(lines)


CSV_NOTE = (
    "`data.parquet` holds the released values as they are. In `data.csv`, a text cell that a spreadsheet "
    "would run as a formula (it begins with `=`, `+`, `-`, `@`, `|`, `%`, a tab or a carriage return, and is "
    "not a plain number such as `-1`) starts with an added apostrophe (`'`); every other cell is written as it "
    "is, so the two files read back the same."
)

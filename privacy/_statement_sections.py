"""The pieces of the privacy statement (privacy/statement.py): escaping, figures, and its sections.

`_md` and `_code` escape everything user-written (dataset names, column names
and values, notes, reasons), so it renders as the text it is, never as
Markdown or HTML. Each section builder returns the Markdown lines of one part
of the statement; `privacy_statement` puts them in order.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from privacy.budget import PrivacyCost, format_value
from privacy.disclosure import DisclosureReport, RealMatchReport, SmallCellReport
from privacy.gate import GateResult
from privacy.schema import PublicSchema


def _cost_dict(cost: PrivacyCost | Mapping[str, Any] | None) -> PrivacyCost | None:
    if cost is None:
        return None
    if isinstance(cost, PrivacyCost):
        return cost
    return PrivacyCost.from_dict(dict(cost))


def _plain(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, DisclosureReport | RealMatchReport | SmallCellReport):
        return obj.to_dict()
    return dict(obj)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * float(x):.2f}%"


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{float(x):.3f}"


def _count(n: Any, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# characters with a meaning in (GitHub-flavoured) Markdown or HTML wherever they stand in a line
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!])")
# what would start an automatic link ("http://", "www.")
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<=\bwww)(\.)")


def _md(text: Any) -> str:
    """User-written or data-derived text as inert Markdown: on one line, every character that could
    make emphasis, a link, a table cell, raw HTML or an entity backslash-escaped."""
    one_line = " ".join(str(text).split())
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0), _MD_SPECIAL.sub(r"\\\1", one_line))


def _code(text: Any) -> str:
    """A name as an inline code span that no character of the name can end early."""
    one_line = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def _bin_placement_text(p: Mapping[str, Any]) -> str:
    columns = list(p.get("columns") or [])
    if not columns:
        return (
            f"a share of {_num(p.get('share'))} of rho was set aside for placing bins, but no column "
            "is a binned numeric column: nothing was spent on it and the bins are equal-width"
        )
    return (
        f"a share of {_num(p.get('share'))} of rho (rho = {_num(p.get('rho_float'))}, part of the rho below) "
        f"placed the bins of {', '.join(columns)}: a {p.get('mechanism')}, sigma = {_num(p.get('sigma'))} "
        "per column. The rest of rho went to the method"
    )


def _num(x: Any) -> str:
    return "-" if x is None else f"{float(x):.6g}"


def _candidates(post: Mapping[str, Any] | None) -> list[str]:
    """Which post-processing of the sample this release is, when the steward re-ran it."""
    if not post:
        return []
    number = int(post.get("candidate") or 0)
    total = post.get("candidates")
    which = "the original run" if number == 0 else f"re-run {number}"
    text = (
        f"This release is candidate {number} ({which})"
        + (f" of {int(total)} candidates" if total is not None else "")
        + " made from one sample of the mechanism. The data steward can re-run the post-processing above "
        "(disclosure control, the checks and the report) on that one stored sample with other settings; "
        "each re-run works on the stored output and never runs the mechanism again, so it adds no privacy "
        "cost: "
        "the parameters above are the whole charge. The steward chose which candidate to release after "
        "reading the candidates' reports, whose internal checks use real rows, as for any approval."
    )
    out = ["", text]
    settings = post.get("settings") or {}
    if settings:
        out += ["", "Post-processing settings of this candidate:"]
        for key in ("k", "l", "suppression", "max_suppression", "remove_real_matches", "rows"):
            if key in settings:
                out.append(f"- **{key}**: {_md(settings[key])}")
        for col, fields in (settings.get("columns") or {}).items():
            described = ", ".join(f"{name} {_md(json.dumps(value, sort_keys=True))}" for name, value in fields.items())
            out.append(f"- **{_md(col)}**: {described}")
    return out


def _parameters(guarantee: str, c: PrivacyCost | None, zcdp: bool) -> list[str]:
    if guarantee == "data-free":
        return ["- epsilon = 0, delta = 0: no real row was read."]
    if c is None:
        return ["- The privacy cost of this release was not given."]
    if not c.is_dp:
        return ["- epsilon = infinity (no differential privacy)."]
    out = [f"- **epsilon** = {format_value(c.epsilon)}", f"- **delta** = {format_value(c.delta)}"]
    if c.rho is not None:
        out.append(
            f"- **rho** = {format_value(c.rho)} (zero-concentrated DP). The mechanism is rho-zCDP; the (epsilon, "
            "delta) above is its conversion, and zCDP charges of the same dataset compose by adding rho."
        )
    elif zcdp:
        out.append("- The method is zCDP, but no rho was recorded for this run; basic composition applies.")
    if c.delta == 0 and c.is_dp:
        out.append("- delta = 0: pure epsilon-differential privacy.")
    return out


def _covers(guarantee: str, c: PrivacyCost | None) -> list[str]:
    if guarantee == "data-free":
        return [
            "This release read no real rows, so it reveals nothing about the individuals in the dataset "
            "beyond what the public schema or the scenario specification already states."
        ]
    if guarantee != "dp" or c is None or not c.is_dp:
        return [
            "Nothing: without differential privacy there is no formal guarantee for the individuals of the dataset."
        ]
    eps = float(c.epsilon)
    factor = math.exp(eps) if eps < 700 else math.inf
    text = (
        "The individuals whose rows are in the dataset. The guarantee is stated for neighbouring datasets that "
        "differ by adding or removing one row: whatever one row contains, every possible output of this release "
        f"is at most e^epsilon = {factor:.4g} times more (or less) likely with that row than without it"
    )
    if c.delta > 0:
        text += f", except with probability at most delta = {format_value(c.delta)}"
    text += (
        ". This holds against any attacker, whatever else they know, and it is kept by any further "
        "processing of the released data that does not go back to the real rows."
    )
    return [text]


def _neighbours(guarantee: str, holdout: Any) -> list[str]:
    """What the neighbouring relation is, and how the rows the mechanism read were chosen."""
    if guarantee == "data-free":
        return []
    if guarantee == "non-dp":
        # no guarantee to state a relation for; only how the rows the method read were chosen
        if holdout is None or float(holdout) <= 0:
            return []
        return [
            "",
            f"Before the fit, each row was held out (kept from the method, and used only for the data "
            f"steward's internal checks) by an independent random draw with probability "
            f"{float(holdout):.4g}. The rows the method read are not protected by this: the split is no "
            "privacy guarantee.",
        ]
    text = "Neighbouring datasets here are the whole registered table and that table with any one row added or removed."
    if holdout is None:
        return ["", text]
    fraction = float(holdout)
    if fraction <= 0:
        text += " Every row of the registered table was measured; none was held out."
    else:
        text += (
            f" Before the fit, each row was held out (kept from the mechanism, and used only for the data "
            f"steward's internal checks) on its own, by an independent random draw with probability "
            f"{fraction:.4g}, whatever the other rows are. Adding or removing one row therefore changes the rows "
            "the mechanism read by at most that row, so the guarantee holds for the whole registered table. The "
            "sizes of the training part and of the holdout depend on the data and are not published."
        )
    return ["", text]


def _hierarchy_text(h: dict[str, Any]) -> str:
    """A declared hierarchy in words: "bands of 10", "edges 0, 18, 65", "by month", "3 groups"."""
    parts = []
    if "band" in h:
        parts.append(f"bands of {h['band']:g}")
    if "edges" in h:
        parts.append("edges " + ", ".join(f"{e:g}" for e in h["edges"]))
    if "granularity" in h:
        parts.append(f"by {h['granularity']}")
    if "groups" in h:
        groups = h["groups"]
        shown = "; ".join(f"{k}: {', '.join(str(x) for x in v)}" for k, v in list(groups.items())[:10])
        parts.append(f"groups {shown}" + (f"; ... ({len(groups)} groups)" if len(groups) > 10 else ""))
    rest = {k: v for k, v in h.items() if k not in ("band", "edges", "granularity", "groups")}
    parts += [f"{k} {v}" for k, v in rest.items()]
    return ", ".join(parts)


def _not_covered(sch: PublicSchema, guarantee: str) -> list[str]:
    out = [
        "- **The public schema.** Column names, kinds, category domains, numeric bounds and special values, "
        "hierarchies and coding thresholds are declared public by the data steward and are released as they "
        "are, without noise.",
    ]
    learned = sch.learned_columns
    if learned:
        out.append(
            "- **Schema values taken from the data.** The steward kept these values as read from the real data "
            "when the dataset was registered; they were not protected by any noise, and this release repeats them:"
        )
        for col, fields in learned.items():
            spec = sch.columns[col]
            shown = []
            for f in fields:
                v = getattr(spec, f, None)
                if f == "values" and isinstance(v, list):
                    text = ", ".join(_md(x) for x in v[:20]) + (f", ... ({len(v)} values)" if len(v) > 20 else "")
                    shown.append(f"values [{text}]")
                elif f == "hierarchy" and v is not None:
                    shown.append(f"hierarchy {_md(_hierarchy_text(v.model_dump(mode='json', exclude_none=True)))}")
                else:
                    shown.append(f"{_md(f)} = {_md(v)}")
            out.append(f"  - {_code(col)}: {'; '.join(shown)}")
    if guarantee == "dp":
        out += [
            "- **Groups of rows.** The bound is for one row. Several rows of the same person or household are "
            "protected only with epsilon multiplied by their number (group privacy).",
            "- **Auxiliary information and population facts.** The release may reveal patterns of the "
            "population (for example, that a trait is common in an age group); combined with what someone "
            "already knows, such patterns may support inferences about a person, whether or not their row was "
            "used. Differential privacy limits only what their participation adds.",
        ]
    out.append(
        "- **Internal reports.** Fidelity, utility and risk figures computed on real rows are not "
        "differentially private; they stay with the data steward unless the steward includes them."
    )
    return out


def _constraints(report: Mapping[str, Any] | None) -> list[str]:
    """The public schema's constraints and what enforcing them changed (counts of synthetic rows)."""
    if not report or not report.get("constraints"):
        return []
    rows = report.get("rows", 0)
    out = [
        "",
        f"- constraints of the public schema, enforced on the {_count(rows, 'row')} the method produced, "
        "before any step below (reading only those rows, rows drawn from the fitted model and the schema, "
        "so it adds no privacy cost):",
    ]
    for c in report["constraints"]:
        before, repaired = c.get("violations_before", 0), c.get("repaired", 0)
        if c.get("kind") == "formula":
            text = f"{_count(before, 'row')} differed from the formula as sampled and were recomputed"
        else:
            text = f"{_count(before, 'row')} violated it as sampled; {_count(repaired, 'row')} repaired"
        out.append(f"  - {_code(c.get('constraint'))}: {text}")
    resampled = int(report.get("rows_resampled") or 0)
    if resampled:
        out.append(
            f"  - {_count(resampled, 'row')} violating a constraint replaced by fresh rows from the fitted "
            f"model that satisfy them all ({_count(report.get('rows_drawn', 0), 'row')} drawn in "
            f"{_count(report.get('rounds', 0), 'round')})"
        )
    out.append(
        f"  - {_count(report.get('rows_repaired', 0), 'row')} repaired (inequalities: values swapped, then "
        "clipped to the declared bounds; combinations: the nearest allowed one; determined columns and "
        "formulas: recomputed from their source)"
    )
    out.append(
        "  - afterwards no row violated a constraint; later steps (coding, generalisation) change values "
        "as described there"
    )
    return out


def _rebalancing(rebalanced: Mapping[str, Any] | None, guarantee: str) -> list[str]:
    """A rebalancing (SMOTE family) applied to the synthesizer's output, not to real rows."""
    if not rebalanced:
        return []
    keeps = (
        "so the guarantee above is unchanged by it"
        if guarantee == "dp"
        else "which adds no real rows beyond what the method already released"
    )
    return [
        "",
        f"- class rebalancing with {_code(rebalanced.get('method'))} on the synthetic output: "
        f"{_count(rebalanced.get('rows_added', 0), 'row')} interpolated between synthetic rows of the "
        f"minority class(es); it reads only the synthetic output, {keeps}.",
    ]


def _post_processing(dis: dict[str, Any] | None, cells: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    if dis is None and cells is None:
        return ["None."]
    if dis is not None:
        out.append(
            "Applied to the synthetic output using only that output and the public schema, so the guarantee "
            "above is unchanged by it. Counts below are of synthetic rows."
        )
        out.append("")
        out.append(f"- rows produced: {dis.get('rows_in', 0)}; rows after post-processing: {dis.get('rows_out', 0)}")
        for col, c in (dis.get("coding") or {}).items():
            parts = []
            if c.get("round_to") is not None:
                parts.append(
                    f"rounded to multiples of {c['round_to']:g} ({_count(c.get('rounded', 0), 'value')} changed)"
                )
            if c.get("top_code") is not None:
                parts.append(f"top-coded at {c['top_code']:g} ({_count(c.get('top_coded', 0), 'value')})")
            if c.get("bottom_code") is not None:
                parts.append(f"bottom-coded at {c['bottom_code']:g} ({_count(c.get('bottom_coded', 0), 'value')})")
            out.append(f"- {_code(col)}: " + "; ".join(parts))
        gen = dis.get("generalisation") or {}
        lattice = dis.get("lattice") or {}
        if lattice:
            out.append(
                f"- generalisation chosen on the synthetic output: {_md(lattice.get('node', ''))} (the least "
                f"information loss, {_loss(lattice.get('information_loss'))} on a scale where 0 keeps every value "
                "as synthesized and 1 suppresses every value (Iyengar's loss metric), among "
                f"{lattice.get('nodes', 0)} combinations of levels, that reaches k = {lattice.get('k')} with at most "
                f"{_pct(lattice.get('max_suppression'))} of the rows suppressed; {lattice.get('nodes_evaluated', 0)} "
                "evaluated)"
            )
        for col, g in gen.items():
            text = (
                f"- {_code(col)} generalised ({_md(g.get('how', g.get('type')))}): "
                f"{g.get('rows_generalised', 0)} values recoded"
            )
            if g.get("rows_spared") is not None:
                text += f", sparing {g.get('rows_spared', 0)} rows from suppression"
            if g.get("information_loss") is not None:
                text += f"; information loss {_loss(g['information_loss'])}"
            out.append(text)
        k = dis.get("k")
        if k is not None:
            qis = ", ".join(_code(q) for q in dis.get("quasi_identifiers", []))
            sup = dis.get("suppression") or {}
            out.append(
                f"- rare-combination suppression at k = {k} on {qis}: {sup.get('rows_suppressed', 0)} rows "
                f"({_pct(sup.get('share_rows_suppressed'))}) in {sup.get('classes_suppressed', 0)} classes removed"
            )
            ka = dis.get("k_anonymity") or {}
            if ka.get("applicable"):
                out.append(
                    f"- k-anonymity of the released table: smallest class {ka.get('smallest_class')}, "
                    f"{ka.get('classes', 0)} classes"
                )
            for col, ld in (dis.get("l_diversity") or {}).items():
                text = f"- l-diversity of {_code(col)}: smallest l = {ld.get('smallest_l')}"
                if ld.get("l") is not None:
                    text += f" (l = {ld['l']}: {_pct(ld.get('share_classes_below_l'))} of classes below)"
                out.append(text)
        else:
            out.append("- no quasi-identifiers declared: no rare-combination suppression")
        for note in dis.get("notes") or []:
            out.append(f"- note: {_md(note)}")
    if cells is not None:
        out.append(
            f"- small-cell rules on the aggregate table: cells below {cells.get('threshold')} suppressed "
            f"({cells.get('cells_suppressed', 0)} of {cells.get('cells', 0)} cells), counts rounded to multiples "
            f"of {cells.get('rounding_base')}"
        )
    return out


def _real_checks(real: dict[str, Any] | None, include_internal: bool, guarantee: str) -> list[str]:
    if real is None:
        return ["None: no check compared this release with real rows, and nothing was removed because of real rows."]
    out = [
        "The released rows were compared with the real training rows (internal checks, run for the steward):",
        "",
        "- exact copies: released rows equal to a real row on every modelled column "
        f"({', '.join(_code(c) for c in real.get('compared_columns', []))})",
    ]
    if real.get("quasi_identifiers"):
        out.append(
            "- unique matches: released rows reproducing a combination of quasi-identifiers that belongs to "
            "exactly one real row"
        )
    if real.get("recoded"):
        out.append("- the real rows were first recoded like the released table (same coding and generalisation)")
    out.append("")
    if real.get("filtering_applied"):
        removed = "Matching rows were **removed** from the release (policy `remove_real_matches`)"
        if real.get("quasi_identifiers"):
            removed += ", and any quasi-identifier class that fell below k was suppressed again"
        out.append(removed + ".")
        if guarantee == "dp":
            out.append(
                "**This filtering looked at real rows, so it is not post-processing:** which rows were removed "
                "depends on the real data, and that dependence is not counted in epsilon. The formal "
                "differential-privacy guarantee above applies to the synthesizer's output before this filtering, "
                "not strictly to the released table: in particular it does not cover the number of released "
                "rows, nor the count of removed rows below, which both depend on the real rows."
            )
        else:
            out.append("This filtering looked at real rows.")
    else:
        out.append("Nothing was removed because of these checks; the released table does not depend on them.")
    if include_internal:
        out += [
            "",
            "Internal figures (computed on real rows, not differentially private):",
            "",
            f"- rows checked: {real.get('rows_checked')}; real training rows: {real.get('real_rows')}",
            f"- exact copies: {real.get('exact_matches')} ({_pct(real.get('exact_match_rate'))})",
        ]
        if real.get("unique_matches") is not None:
            out.append(
                f"- unique matches: {real.get('unique_matches')} ({_pct(real.get('unique_match_rate'))}); "
                f"real unique combinations: {real.get('real_unique_combinations')}"
            )
        if real.get("filtering_applied"):
            out.append(
                f"- removed: {real.get('removed_rows')} rows ({real.get('removed_exact')} exact copies, "
                f"{real.get('removed_unique')} unique matches; a row can be both), then "
                f"{real.get('resuppressed_rows')} rows suppressed again for k; {real.get('rows_out')} rows released"
            )
    elif real.get("filtering_applied"):
        total = int(real.get("removed_rows") or 0) + int(real.get("resuppressed_rows") or 0)
        out.append(
            f"{total} rows were removed because of these checks (matches, and rows whose class then fell below "
            "k). This count depends on real rows; it is given because the size of the released table reveals "
            "it anyway. The match rates themselves are withheld."
        )
    return out


def _fmt_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float | int | Fraction):
        return f"{float(v):.4g}"
    return str(v)


def _gate(
    gate: GateResult | Mapping[str, Any] | None, include_internal: bool, override_reason: str | None
) -> list[str]:
    if gate is None:
        return ["Not evaluated."]
    if not isinstance(gate, GateResult) and gate.get("internal_included", True):
        gate = GateResult.from_dict(gate)
    if isinstance(gate, GateResult):
        data = gate.to_dict(include_internal=include_internal)
    else:  # already the public form: render what it holds
        data = dict(gate)
        include_internal = False
    out = ["| check | status | value | threshold | note |", "|---|---|---|---|---|"]
    for c in data["checks"]:
        out.append(
            f"| {c['name']} | {c['status']} | {_fmt_value(c['value'])} | {_fmt_value(c['threshold'])} | "
            f"{_md(c['message'])} |"
        )
    out.append("")
    if include_internal:
        out.append(f"Overall: **{data['overall']}**.")
    else:
        out.append(
            f"Overall on the public checks: **{data['overall_public']}**. The checks computed on real rows "
            "are for the data steward, who decides on approval."
        )
    if override_reason and include_internal:
        out.append(f"The steward approved the release over a failing gate, with this reason: {_md(override_reason)}")
    return out

"""The privacy statement (`privacy.md`) says what a release's guarantee is and is not."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from privacy.accounting import budget_status
from privacy.budget import PrivacyBudget, PrivacyCost
from privacy.disclosure import apply_disclosure_control, apply_small_cell_rules, real_row_checks
from privacy.gate import evaluate_gate
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema
from privacy.statement import privacy_statement

SCHEMA = PublicSchema.from_dict(
    {
        "columns": {
            "region": {"kind": "categorical", "values": ["north", "south", "Zanzibar-Canary"], "learned": ["values"]},
            "age": {"kind": "ordinal", "min": 17, "max": 93, "learned": ["min", "max"], "hierarchy": {"band": 5}},
            "income": {"kind": "continuous", "min": 0, "max": 100000, "top_code": 50000},
            "s": {"kind": "categorical", "values": ["x", "y"]},
        },
        "quasi_identifiers": ["region", "age"],
        "sensitive": ["s"],
    }
)

DP_METHOD = {"name": "mst", "guarantee": "dp", "zcdp": True, "description": "maximum spanning tree of 2-way marginals"}
SMOTE = {"name": "smote", "guarantee": "non-dp", "releases_real_rows": True}


def synthetic() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["north"] * 6 + ["south"] * 6 + ["Zanzibar-Canary"],
            "age": [20, 21, 22, 23, 24, 30, 40, 41, 42, 43, 44, 70, 50],
            "income": [1000.0] * 5 + [60000.0] * 8,
            "s": ["x", "y"] * 6 + ["x"],
        }
    )


def reports(remove: bool):
    # 3 of the 13 rows may be suppressed: age is then banded, not suppressed whole
    policy = DatasetPolicy(k=5, l=2, remove_real_matches=remove, max_suppression=0.25)
    released, _, dis = apply_disclosure_control(synthetic(), SCHEMA, policy)
    real = synthetic().iloc[[0, 1, 7]].assign(income=[1000.0, 1000.0, 123.0])
    _out, rc = real_row_checks(released, real, SCHEMA, policy, disclosure=dis)
    gate = evaluate_gate(
        policy, disclosure=dis, real_checks=rc, membership_auc=0.5731, utility_ratio=0.8123, fidelity=0.7777
    )
    return dis, rc, gate


def test_dp_statement_states_mechanism_parameters_and_coverage():
    dis, rc, gate = reports(remove=False)
    ledger = budget_status(PrivacyBudget(3, 1e-5), [PrivacyCost(1, 1e-6, 0.0123)], [])
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1, 1e-6, 0.0123),
        schema=SCHEMA,
        dataset_guarantee=ledger.guarantee(),
        release={"id": 7, "dataset": "census", "kind": "dp-synthetic"},
        disclosure=dis,
        real_checks=rc,
        gate=gate,
    )
    assert "release 7 of census" in text
    assert "mst" in text and "differentially private" in text and "NOT differentially" not in text
    assert "**epsilon** = 1" in text and "**delta** = 0.000001" in text and "**rho** = 0.0123" in text
    assert "adding or removing one row" in text
    # values the steward kept as learned from the data are named, with their values
    assert "`region`: values [north, south, Zanzibar-Canary]" in text
    assert "`age`: min = 17; max = 93" in text
    assert "group privacy" in text and "Auxiliary information" in text
    assert ledger.guarantee() in text.replace("\\", "")
    assert "Warning: no formal guarantee" not in text
    # post-processing counts from the synthetic output
    assert "top-coded at 50000 (8 values)" in text
    assert "`age` generalised (bands of 5)" in text
    assert "rare-combination suppression at k = 5" in text and "3 rows" in text
    assert "Nothing was removed because of these checks" in text


def test_public_statement_withholds_real_row_figures_and_the_steward_copy_has_them():
    dis, rc, gate = reports(remove=False)
    kwargs = {
        "method": DP_METHOD,
        "cost": PrivacyCost(1, 1e-6),
        "schema": SCHEMA,
        "disclosure": dis,
        "real_checks": rc,
        "gate": gate,
    }
    public = privacy_statement(**kwargs)
    steward = privacy_statement(**kwargs, include_internal=True)
    for canary in ("0.5731", "0.8123", "0.7777", f"{100 * rc.exact_match_rate:.2f}%"):
        assert canary not in public
        assert canary in steward
    assert "withheld" in public and "Public version" in public
    assert "Overall: **fail**" in steward  # l-diversity fails on the released table
    # a copy with the internal sections says that no guarantee covers them
    assert "No privacy guarantee covers them" in steward and "No privacy guarantee covers them" not in public
    assert "exact copies" in public and "unique matches" in public  # which checks ran is always said


def test_filtering_against_real_rows_is_declared_as_weakening_the_guarantee():
    dis, rc, gate = reports(remove=True)
    assert rc.removed_rows > 0
    text = privacy_statement(
        method=DP_METHOD, cost=PrivacyCost(1, 1e-6), schema=SCHEMA, disclosure=dis, real_checks=rc, gate=gate
    )
    assert "**removed**" in text and "not post-processing" in text
    assert "not strictly to the released table" in text
    total = rc.removed_rows + rc.resuppressed_rows
    assert f"{total} rows were removed because of these checks" in text
    steward = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1, 1e-6),
        schema=SCHEMA,
        disclosure=dis,
        real_checks=rc,
        gate=gate,
        include_internal=True,
    )
    assert f"removed: {rc.removed_rows} rows ({rc.removed_exact} exact copies" in steward


def test_non_dp_rebalancing_method_warns_plainly():
    text = privacy_statement(
        method=SMOTE,
        cost=PrivacyCost.non_dp(),
        schema=SCHEMA,
        dataset_guarantee="NO FORMAL GUARANTEE: 1 non-differentially-private release(s)",
    )
    assert "NOT differentially private" in text
    assert "epsilon = infinity" in text
    assert "Warning: no formal guarantee" in text
    assert "contains real records" in text and "interpolated" in text
    assert "adding or removing one row" not in text


def test_a_dp_method_charged_infinity_is_described_as_non_dp():
    text = privacy_statement(method={"name": "x", "guarantee": "dp"}, cost=PrivacyCost.non_dp(), schema=SCHEMA)
    assert "NOT differentially private" in text


def test_data_free_release():
    text = privacy_statement(
        method={"name": "scenario", "guarantee": "data-free"}, cost=PrivacyCost.zero(), schema=SCHEMA
    )
    assert "read no real rows" in text and "epsilon = 0" in text
    assert "None: no check compared this release with real rows" in text


def test_aggregate_release_reports_small_cells():
    _, cells = apply_small_cell_rules(pd.DataFrame({"n": [3, 12, 40]}), ["n"], 10, 5)
    policy = DatasetPolicy()
    gate = evaluate_gate(policy, disclosure=None, small_cells=cells)
    text = privacy_statement(
        method={"name": "dp-statistics", "guarantee": "dp"},
        cost=PrivacyCost(0.5),
        schema=SCHEMA,
        small_cells=cells,
        gate=gate,
    )
    assert "cells below 10 suppressed (1 of 3 cells)" in text and "multiples of 5" in text
    assert "pure epsilon-differential privacy" in text
    assert "| small_cells | warn | 10 | 10 |" in text  # 12 is published as 10: at the threshold


def test_plain_dicts_from_a_job_record_give_the_same_statement():
    dis, rc, gate = reports(remove=True)
    objects = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1, 1e-6, 0.0123),
        schema=SCHEMA,
        disclosure=dis,
        real_checks=rc,
        gate=gate,
        override_reason="pilot release",
    )
    stored = json.loads(
        json.dumps(
            {
                "cost": PrivacyCost(1, 1e-6, 0.0123).to_dict(),
                "schema": SCHEMA.to_dict(),
                "disclosure": dis.to_dict(),
                "real_checks": rc.to_dict(),
                "gate": gate.to_dict(),
            }
        )
    )
    plain = privacy_statement(method=DP_METHOD, override_reason="pilot release", **stored)
    assert plain == objects
    steward = privacy_statement(method=DP_METHOD, override_reason="pilot release", include_internal=True, **stored)
    assert "pilot release" in steward and "over a failing gate" in steward


@pytest.mark.parametrize("include_internal", [False, True])
def test_public_gate_dict_renders_without_internal_figures(include_internal):
    _, _, gate = reports(remove=False)
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1),
        schema=SCHEMA,
        gate=gate.to_dict(include_internal=False),
        include_internal=include_internal,
    )
    assert "0.5731" not in text and "withheld" in text


def test_public_statement_says_nothing_of_the_override_or_the_overall_verdict():
    """The override reason and "approved over a failing gate" rest on the internal checks."""
    dis, rc, gate = reports(remove=False)
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1),
        schema=SCHEMA,
        disclosure=dis,
        real_checks=rc,
        gate=gate,
        override_reason="membership AUC 0.93 is fine for us",
    )
    assert "0.93" not in text and "membership AUC 0.93" not in text
    assert "over a failing gate" not in text and "Overall: **" not in text


def test_statement_states_the_neighbouring_relation_and_the_split():
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1),
        schema=SCHEMA,
        release={"id": 3, "dataset": "census", "kind": "dp-synthetic", "holdout": 0.2},
    )
    assert "the whole registered table and that table with any one row added or removed" in text
    assert "independent random draw with probability 0.2" in text
    assert "at most that row" in text and "are not published" in text
    stats = privacy_statement(
        method={"name": "dp-statistics", "guarantee": "dp"},
        cost=PrivacyCost(1),
        schema=SCHEMA,
        release={"holdout": 0.0},
    )
    assert "Every row of the registered table was measured; none was held out." in stats
    free = privacy_statement(
        method={"name": "scenario", "guarantee": "data-free"},
        cost=PrivacyCost.zero(),
        schema=SCHEMA,
        release={"holdout": 0.0},
    )
    assert "Neighbouring datasets" not in free
    open_ = privacy_statement(
        method={"name": "ctgan", "guarantee": "non-dp"},
        cost=PrivacyCost.non_dp(),
        schema=SCHEMA,
        release={"holdout": 0.2},
    )
    # no guarantee is claimed for a non-DP release, not even "for the whole registered table"
    assert "the guarantee holds" not in open_ and "Neighbouring datasets" not in open_
    assert "independent random draw with probability 0.2" in open_ and "no privacy guarantee" in open_


def test_filtering_on_real_rows_says_the_row_count_is_not_covered():
    dis, rc, gate = reports(remove=True)
    text = privacy_statement(
        method=DP_METHOD, cost=PrivacyCost(1), schema=SCHEMA, disclosure=dis, real_checks=rc, gate=gate
    )
    assert "does not cover the number of released rows" in text


HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://evil.example) | cell `code`\n# heading"


def test_user_written_text_is_escaped_in_the_statement():
    """Dataset names, column names, values, reasons: shown as text, never as Markdown or HTML.

    (CommonMark: a backslash before ASCII punctuation makes it a literal character; a code span
    is ended only by a backtick run of its own length.)"""
    import re

    schema = PublicSchema.from_dict(
        {
            "columns": {
                "x`y <b>": {
                    "kind": "categorical",
                    "values": ["<script>alert(1)</script>", "a|b"],
                    "learned": ["values"],
                },
            }
        }
    )
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1),
        schema=schema,
        dataset_guarantee=HOSTILE,
        release={"id": 1, "dataset": HOSTILE, "kind": "dp-synthetic"},
        gate=reports(remove=False)[2],
        override_reason=HOSTILE,
        include_internal=True,
    )
    hostile_lines = [line for line in text.splitlines() if "onerror" in line]
    assert len(hostile_lines) == 3  # title, dataset guarantee, override: the newline did not start a heading
    for line in hostile_lines:
        for ch in "<>*[]|`":
            # outside our own markup, every special character of the user's text is escaped
            user_part = line[line.index("\\<img") :]
            assert not re.search(rf"(?<!\\){re.escape(ch)}", user_part), (ch, line)
        assert "http\\://" in line  # no automatic link
    assert not any(line.lstrip().startswith("# heading") for line in text.splitlines())
    assert "\\<script\\>alert(1)\\</script\\>" in text and "a\\|b" in text
    assert "`` x`y <b> ``" in text  # a backtick in a column name does not end its code span


def test_the_approval_and_the_stewards_public_comment_are_stated():
    text = privacy_statement(
        method=DP_METHOD,
        cost=PrivacyCost(1),
        schema=SCHEMA,
        release={"approved_at": "2026-12-07T10:31", "approval_comment": "fine for the <b>pilot</b>"},
    )
    assert "Approved by the data steward on 2026-12-07T10:31 (UTC)." in text
    line = next(ln for ln in text.splitlines() if ln.startswith("The steward's comment: "))
    assert "<b>" not in line and "pilot" in line
    assert "## Approval" not in privacy_statement(method=DP_METHOD, cost=PrivacyCost(1), schema=SCHEMA)

"""Hierarchies from the public schema, the loss metric, the lattice search and the schema-only preflight."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privacy.disclosure import apply_disclosure_control, class_sizes, recode_like
from privacy.errors import DisclosureInfeasible
from privacy.generalise import _level_arrays as level_arrays
from privacy.generalise import (
    apply_recoding,
    check_disclosure_request,
    column_levels,
    describe_levels,
    expected_share_below_k,
    label_losses,
    preflight_disclosure,
    search_lattice,
)
from privacy.policy import DatasetPolicy
from privacy.schema import ColumnSpec, PublicSchema, conform_table, load_schema, read_table, validate_table

DATA = Path(__file__).resolve().parents[1] / "data"


def spec(**kw) -> ColumnSpec:
    return ColumnSpec(**kw)


# ----------------------------------------------------------------------------------
# hierarchies
# ----------------------------------------------------------------------------------


def test_levels_derived_from_the_declared_domains_only():
    compas = load_schema(DATA / "compas" / "schema.yaml")
    assert describe_levels(column_levels("dob", compas.columns["dob"])) == [
        "value",
        "month (YYYY-MM)",
        "year",
        "decade",
        "*",
    ]
    assert describe_levels(column_levels("age", compas.columns["age"])) == [
        "value",
        "bands of 2",
        "bands of 10",
        "bands of 20",
        "*",
    ]
    assert describe_levels(column_levels("sex", compas.columns["sex"])) == ["value", "*"]
    adult = load_schema(DATA / "adult" / "schema.yaml")
    # a declared band comes first, then multiples of it
    assert describe_levels(column_levels("age", adult.columns["age"])) == [
        "value",
        "bands of 5",
        "bands of 10",
        "bands of 20",
        "*",
    ]
    edu = column_levels("education", adult.columns["education"])
    assert [r and r["type"] for r in edu] == [None, "groups", "suppressed"]
    # a declared granularity starts the date levels there
    year = spec(kind="datetime", min=dt.date(1950, 1, 1), max=dt.date(1999, 12, 31), hierarchy={"granularity": "year"})
    assert describe_levels(column_levels("d", year)) == ["value", "year", "decade", "*"]


def test_levels_are_nested_so_the_lattice_is_monotone():
    rng = np.random.default_rng(0)
    cases = {
        "age": (spec(kind="ordinal", min=17, max=90), pd.Series(rng.integers(17, 91, 3000))),
        "income": (
            spec(kind="continuous", min=0, max=250000),
            pd.Series(rng.uniform(0, 250000, 3000)).where(rng.random(3000) > 0.05),
        ),
        "dob": (
            spec(kind="datetime", min=dt.date(1910, 1, 1), max=dt.date(1998, 12, 31), nullable=True),
            pd.Series(pd.to_datetime("1910-01-01") + pd.to_timedelta(rng.integers(0, 32500, 3000), unit="D")),
        ),
        "band": (spec(kind="ordinal", min=0, max=1, hierarchy={"band": 0.1}), pd.Series(rng.uniform(0, 1, 3000))),
    }
    for name, (sp, s) in cases.items():
        recoded = [s if rec is None else apply_recoding(s, rec) for rec in column_levels(name, sp, s)]
        assert len(recoded) >= 4, name
        for finer, coarser in itertools.pairwise(recoded):
            pairs = pd.DataFrame({"f": finer.astype("object"), "c": coarser.astype("object")}).drop_duplicates()
            # every class of a level lies inside one class of the next
            assert not pairs["f"].duplicated().any(), (name, pairs[pairs["f"].duplicated(keep=False)].head())
        assert set(recoded[-1]) == {"*"}


def test_loss_metric_values():
    age = column_levels("age", spec(kind="ordinal", min=17, max=90, hierarchy={"band": 5}))
    losses = label_losses(age[1])
    assert losses["17-19"] == pytest.approx(2 / 73) and losses["20-24"] == pytest.approx(4 / 73)
    assert losses["85-90"] == pytest.approx(5 / 73)
    assert label_losses(age[-1]) == {"*": 1.0}
    adult = load_schema(DATA / "adult" / "schema.yaml")
    groups = label_losses(column_levels("m", adult.columns["marital-status"])[1])
    assert groups == {"Married": pytest.approx(2 / 6), "Previously-married": pytest.approx(2 / 6), "Never-married": 0.0}
    year = column_levels("d", spec(kind="datetime", min=dt.date(2000, 1, 1), max=dt.date(2001, 12, 31)))[2]
    assert label_losses(year)[2000] == pytest.approx(365 / 730)  # 366 days of 731


# ----------------------------------------------------------------------------------
# the search
# ----------------------------------------------------------------------------------


def small_case(seed: int):
    rng = np.random.default_rng(seed)
    n = 300
    table = pd.DataFrame(
        {
            "age": rng.integers(17, 91, n),
            "g": rng.choice(list("abcdef"), n, p=[0.4, 0.3, 0.1, 0.1, 0.05, 0.05]),
            "d": pd.to_datetime("1990-01-01") + pd.to_timedelta(rng.integers(0, 3650, n), unit="D"),
        }
    )
    specs = {
        "age": spec(kind="ordinal", min=17, max=90),
        "g": spec(
            kind="categorical", values=list("abcdef"), hierarchy={"groups": {"ab": ["a", "b"], "cd": ["c", "d"]}}
        ),
        "d": spec(kind="datetime", min=dt.date(1990, 1, 1), max=dt.date(1999, 12, 31)),
    }
    levels = {q: column_levels(q, specs[q], table[q]) for q in specs}
    return table, specs, levels


def brute_force(table, levels, k, allowed):
    """Every node recoded with pandas and scored from scratch."""
    qis = list(levels)
    out = []
    for node in itertools.product(*(range(len(levels[q])) for q in qis)):
        view = pd.DataFrame(
            {
                q: (table[q] if levels[q][lv] is None else apply_recoding(table[q], levels[q][lv]))
                for q, lv in zip(qis, node, strict=True)
            }
        )
        sizes = view.groupby(qis, dropna=False)[qis[0]].transform("size").to_numpy()
        small = sizes < k
        loss_rows = np.zeros(len(table))
        for q, lv in zip(qis, node, strict=True):
            if levels[q][lv] is not None:
                table_loss = label_losses(levels[q][lv])
                loss_rows += view[q].map(lambda v, t=table_loss: t[v]).to_numpy(dtype=float)
        loss = (loss_rows[~small].sum() / len(qis) + small.sum()) / len(table)
        out.append((round(loss, 12), int(small.sum()), sum(node), node))
    return out


@pytest.mark.parametrize("seed,k,share", [(0, 5, 0.1), (1, 3, 0.02), (2, 10, 0.3), (3, 2, 0.0)])
def test_the_search_finds_the_brute_force_optimum(seed, k, share):
    table, _specs, levels = small_case(seed)
    qis = list(levels)
    arrays = {q: [level_arrays(table[q], rec) for rec in levels[q]] for q in qis}
    allowed = int(share * len(table))
    result = search_lattice(
        [[a[0] for a in arrays[q]] for q in qis], [[a[1] for a in arrays[q]] for q in qis], k, allowed
    )
    every = brute_force(table, levels, k, allowed)
    acceptable = [e for e in every if e[1] <= allowed]
    best = min(acceptable)
    assert result.levels == best[3]
    assert result.information_loss == pytest.approx(best[0], abs=1e-9)
    assert result.rows_suppressed == best[1]
    assert result.nodes == len(every) and result.nodes_evaluated <= result.nodes
    # monotone: every generalisation of an acceptable node is acceptable
    ok = {e[3] for e in acceptable}
    for a in ok:
        for b in (e[3] for e in every):
            if all(x <= y for x, y in zip(a, b, strict=True)):
                assert b in ok


def test_the_bound_prunes_most_of_the_lattice():
    table, _, levels = small_case(0)
    qis = list(levels)
    arrays = {q: [level_arrays(table[q], rec) for rec in levels[q]] for q in qis}
    args = ([[a[0] for a in arrays[q]] for q in qis], [[a[1] for a in arrays[q]] for q in qis], 5, 30)
    pruned, full = search_lattice(*args), search_lattice(*args, exhaustive=True)
    assert (pruned.levels, pruned.information_loss) == (full.levels, full.information_loss)
    assert pruned.nodes_evaluated < full.nodes_evaluated == full.nodes


# ----------------------------------------------------------------------------------
# on a real table with dates (compas): releases >= 90% at k = 5
# ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compas():
    schema = load_schema(DATA / "compas" / "schema.yaml")
    table, _ = conform_table(read_table(DATA / "compas" / "compas.csv"), schema)
    return schema, table.sample(5000, random_state=1).reset_index(drop=True)


def test_compas_generalised_keeps_90_percent_where_suppression_keeps_almost_nothing(compas):
    schema, table = compas
    only, _, _rep_only = apply_disclosure_control(table, schema, DatasetPolicy(suppression="suppress"))
    assert len(only) < 0.1 * len(table)  # a day-level dob makes nearly every row unique
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy())
    assert len(out) >= 0.9 * len(table)
    assert class_sizes(out, schema.quasi_identifiers).min() >= 5
    assert "dob" in report.generalisation and report.lattice["acceptable"]
    assert report.lattice["rows_suppressed"] == report.rows_suppressed
    assert 0 < report.lattice["information_loss"] < 1
    assert [i for i in validate_table(out, released) if i.column != "id"] == []  # id: dropped identifier
    # the real rows recoded like the release land in the released labels
    real = recode_like(table, report)
    for q in report.generalisation:
        assert set(real[q].dropna()) <= set(
            released.columns[q].values or range(released.columns[q].min, released.columns[q].max + 1)
        )


# ----------------------------------------------------------------------------------
# preflight
# ----------------------------------------------------------------------------------


def test_occupancy_estimate():
    assert expected_share_below_k(4, 10, 5) == 1.0
    assert expected_share_below_k(1000, 1, 5) == 0.0
    assert expected_share_below_k(100, float("inf"), 2) == 1.0
    # 1000 rows in 10 cells: each class about 100, none below 5
    assert expected_share_below_k(1000, 10, 5) < 1e-12
    assert expected_share_below_k(1000, 10_000, 5) > 0.99


def test_occupancy_estimate_is_scipy_stats_binomial_cdf():
    # the estimate calls the ufunc behind scipy.stats.binom without importing scipy.stats (about a
    # second of a web process's first release request): the same value, bit for bit
    from scipy.stats import binom

    rng = np.random.default_rng(3)
    for _ in range(3000):
        rows = int(rng.integers(2, 2_000_000))
        k = int(rng.integers(2, 60))
        cells = float(rng.choice([rng.uniform(1.001, 1e7), rng.uniform(1.001, 100), rows / rng.uniform(0.5, 60)]))
        want = 1.0 if rows < k else float(binom.cdf(k - 2, rows - 1, 1.0 / cells))
        assert expected_share_below_k(rows, cells, k) == want, (rows, cells, k)


def test_disclosure_preflight_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = (
        "import sys; from privacy.generalise.preflight import expected_share_below_k; "
        "expected_share_below_k(50_000, 3_000.0, 5); print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=DATA.parents[1])
    assert out.stdout.strip() == "False", out


def test_preflight_refuses_day_level_dob_under_suppress_and_says_what_works():
    schema = load_schema(DATA / "compas" / "schema.yaml")
    result = preflight_disclosure(schema, DatasetPolicy(suppression="suppress"), 5000, max_rows=1_000_000)
    assert result.refused and result.finest == "dob"
    assert "dob" in result.message and "use suppression: generalise" in result.message
    assert "declare a hierarchy for dob (granularity: year)" in result.message
    with pytest.raises(DisclosureInfeasible, match="suppression: generalise") as info:
        check_disclosure_request(schema, DatasetPolicy(suppression="suppress"), 5000)
    assert info.value.status == 422 and info.value.field == "rows"
    # the advice works: generalise is not refused
    assert check_disclosure_request(schema, DatasetPolicy(), 5000) is not None


def test_preflight_refuses_fewer_rows_than_k_in_either_mode():
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    for mode in ("suppress", "generalise"):
        result = preflight_disclosure(schema, DatasetPolicy(suppression=mode, k=5), 4)
        assert result.refused and "at least 5 rows" in result.message and "k = 4" in result.message
    # with generalise, k rows are enough: '*' puts them in one class
    assert not preflight_disclosure(schema, DatasetPolicy(k=5), 5).refused


def test_preflight_warns_without_refusing_when_only_the_joint_estimate_is_high():
    schema = load_schema(DATA / "adult" / "schema.yaml")
    result = preflight_disclosure(schema, DatasetPolicy(suppression="suppress"), 5000)
    assert not result.refused and result.expected_share > 0.1
    assert result.warnings and "use suppression: generalise" in result.warnings[0]
    assert "age" in result.warnings[0]
    none = PublicSchema.from_dict({"columns": {"x": {"kind": "categorical", "values": ["a"]}}})
    assert preflight_disclosure(none, DatasetPolicy(), 3).k is None

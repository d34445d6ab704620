"""The synthesizer contract, run once over every method of the registry on real tables.

Each method is fitted on the penguins raw table (dates, nulls, an identifier to
regenerate, free text to drop, integers) and on a second real table (a 2,000-row
sample of adult, or PUMS, with point masses declared as `special_values`), each
with a canary row carrying out-of-bounds numbers and undeclared categories. The output must match the public schema: columns,
kinds, nullability, bounds and domains; the canary's values never appear; the
reported cost is the planned one (equal to what was asked for DP methods,
infinity for non-DP, zero for data-free); integers stay integers; a seed
reproduces the output where the method claims it. GANs and slow methods run
with few epochs/rounds so that the whole suite stays within a few minutes.

The number of rows is not public either: every DP method is fitted a second time
on a smaller table with the same schema, and what its progress callback received
(fractions and messages, which the requester sees before approval) must be the
same on both. Every DP method's catalogue entry says how it treats the row count.
"""

from __future__ import annotations

import datetime as dt
import importlib
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.budget import INFINITE, PrivacyCost
from privacy.catalogue import KINDS, ROW_LEVEL_KINDS, catalogue_names, method_entry, plan_release
from privacy.schema import PublicSchema, _key, conform_table, load_schema, read_table
from privacy.synthesizers import REGISTRY, create_synthesizer, synthesizer_class
from tests.conftest import ADULT, PENGUINS_RAW, PUMS

DELTA = Fraction(1, 10**9)
ROWS = 120

# options that keep the slow methods quick; they do not change what the contract checks
FAST_OPTIONS: dict[str, dict] = {
    "aim": {"rounds": 16},
    "aim-smartnoise": {"rounds": 16, "bins": 8},
    "mst-smartnoise": {"bins": 8, "iters": 500},
    "mwem": {"iterations": 8, "mult_weights_iterations": 5, "bins": 10, "max_cells": 2000},
    # sigma 8: on 345 rows the row count's lower bound (about 140) leaves room for one epoch at epsilon 1
    "dpctgan": {"epochs": 1, "batch_size": 32, "sigma": 8.0},
    "patectgan": {"epochs": 3},
    "ctgan": {"epochs": 1},
    "copulagan": {"epochs": 1},
    "tvae": {"epochs": 1},
    "spec": {
        "spec": {
            "columns": {
                "age": {"distribution": "norm", "loc": 40, "scale": 12, "min": 17, "max": 90, "integer": True},
                "income": {
                    "distribution": "lognorm",
                    "s": 0.8,
                    "scale": 30000,
                    "min": 0,
                    "max": 500000,
                    "null_rate": 0.05,
                },
                "region": {"values": ["north", "south", "east"], "probabilities": [0.5, 0.3, 0.2]},
                "joined": {"kind": "datetime", "min": "2000-01-01", "max": "2020-12-31"},
                "visits": {"distribution": "poisson", "mu": 3},
            },
            "correlation": {"columns": ["age", "income"], "matrix": [[1.0, 0.5], [0.5, 1.0]]},
        }
    },
}

PENGUINS_RAW_SCHEMA = {
    "columns": {
        "studyName": {"kind": "categorical", "values": ["PAL0708", "PAL0809", "PAL0910"]},
        "Sample Number": {"kind": "ordinal", "min": 1, "max": 200},
        "Species": {
            "kind": "categorical",
            "values": [
                "Adelie Penguin (Pygoscelis adeliae)",
                "Chinstrap penguin (Pygoscelis antarctica)",
                "Gentoo penguin (Pygoscelis papua)",
            ],
        },
        "Region": {"kind": "categorical", "values": ["Anvers"]},
        "Island": {"kind": "categorical", "values": ["Biscoe", "Dream", "Torgersen"]},
        "Stage": {"kind": "categorical", "values": ["Adult, 1 Egg Stage"]},
        "Individual ID": {"kind": "identifier", "identifier": "fake"},
        "Clutch Completion": {"kind": "categorical", "values": ["Yes", "No"]},
        "Date Egg": {"kind": "datetime", "min": "2007-01-01", "max": "2009-12-31"},
        "Culmen Length (mm)": {"kind": "continuous", "min": 25, "max": 65, "nullable": True},
        "Culmen Depth (mm)": {"kind": "continuous", "min": 10, "max": 25, "nullable": True},
        "Flipper Length (mm)": {"kind": "continuous", "min": 150, "max": 250, "integer": True, "nullable": True},
        "Body Mass (g)": {"kind": "continuous", "min": 2000, "max": 7000, "integer": True, "nullable": True},
        "Sex": {"kind": "categorical", "values": ["MALE", "FEMALE"], "nullable": True},
        "Delta 15 N (o/oo)": {"kind": "continuous", "min": 7, "max": 11, "nullable": True},
        "Delta 13 C (o/oo)": {"kind": "continuous", "min": -28, "max": -23, "nullable": True},
        "Comments": {"kind": "text", "nullable": True},
    },
    "quasi_identifiers": ["Island", "Sex"],
    "target": "Species",
}

# per table: canary values (column -> value); numbers lie outside the declared bounds,
# strings outside the declared domain
CANARIES = {
    "penguins-raw": {
        "Body Mass (g)": 99999,
        "Flipper Length (mm)": -5,
        "Sex": "CANARY-SEX",
        "Date Egg": "2031-06-15",
        "Delta 15 N (o/oo)": 123.25,
    },
    "adult": {
        "age": 999,
        "capital-gain": 9999999,
        "workclass": "Canary-workclass",
        "native-country": "Atlantis-canary",
        "hours-per-week": 555,
    },
    # PUMS has no nullable categorical: an undeclared category there would drop the row, so numbers only
    "pums": {"age": 999, "income": 99999999},
}

# point masses declared on the second tables (most rows of these columns are 0), so that every method meets them
SPECIAL_VALUES = {"adult": {"capital-gain": [0], "capital-loss": [0]}, "pums": {"income": [0]}}

SLOW = {"aim", "aim-smartnoise", "mwem", "mst-smartnoise", "pacsynth"}


def _second_table(method: str) -> str:
    return "pums" if method in SLOW else "adult"


def _load(name: str) -> tuple[pd.DataFrame, PublicSchema, pd.DataFrame]:
    """(raw table with canary, schema, conformed table)."""
    if name == "penguins-raw":
        raw = read_table(PENGUINS_RAW)
        schema = PublicSchema.from_dict(PENGUINS_RAW_SCHEMA)
    elif name == "adult":
        raw = read_table(ADULT).sample(2000, random_state=7).reset_index(drop=True)
        schema = load_schema(ADULT.parent / "schema.yaml").with_special_values(SPECIAL_VALUES[name])
    else:
        raw = read_table(PUMS)
        schema = load_schema(PUMS.parent / "schema.yaml").with_special_values(SPECIAL_VALUES[name])
    canary = raw.iloc[[0]].copy()
    for col, value in CANARIES[name].items():
        canary[col] = pd.Series([value], index=canary.index, dtype=object)
    raw = pd.concat([raw.astype(object), canary], ignore_index=True)
    table, _report = conform_table(raw, schema)
    return raw, schema, table


_TABLES: dict[str, tuple[pd.DataFrame, PublicSchema, pd.DataFrame]] = {}


def table(name: str) -> tuple[pd.DataFrame, PublicSchema, pd.DataFrame]:
    if name not in _TABLES:
        _TABLES[name] = _load(name)
    return _TABLES[name]


def _available(method: str) -> bool:
    module = REGISTRY[method].partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return False
        raise
    return True


def _requested(method: str) -> PrivacyCost:
    cls = synthesizer_class(method)
    if cls.guarantee == "dp":
        return PrivacyCost(1, DELTA)
    if cls.guarantee == "non-dp":
        return PrivacyCost.non_dp()
    return PrivacyCost.zero()


_FITS: dict[tuple[str, str, int], tuple[object, PrivacyCost, pd.DataFrame, list[tuple[float, str]]]] = {}


def fitted(method: str, table_name: str, seed: int = 11, cache: bool = True):
    key = (method, table_name, seed)
    if key not in _FITS or not cache:
        synth = create_synthesizer(method, seed=seed, options=FAST_OPTIONS.get(method))
        calls: list[tuple[float, str]] = []
        progress = lambda f, m: calls.append((f, m))  # noqa: E731
        if synth.guarantee == "data-free":
            cost = synth.fit(progress=progress)
        else:
            _raw, schema, conformed = table(table_name)
            cost = synth.fit(conformed, schema, _requested(method), progress=progress)
        out = synth.sample(ROWS)
        if not cache:
            return synth, cost, out, calls
        _FITS[key] = (synth, cost, out, calls)
    return _FITS[key]


def _cases() -> list:
    cases = []
    for method in sorted(REGISTRY):
        if not _available(method):
            cases.append(
                pytest.param(
                    method, "penguins-raw", marks=pytest.mark.skip(reason=f"{REGISTRY[method]} is not importable yet")
                )
            )
            continue
        if synthesizer_class(method).guarantee == "data-free":
            cases.append(pytest.param(method, "none", id=f"{method}-none"))
            continue
        for name in ("penguins-raw", _second_table(method)):
            cases.append(pytest.param(method, name, id=f"{method}-{name}"))
    return cases


def _is_null(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def check_against_schema(out: pd.DataFrame, schema: PublicSchema) -> None:
    """Columns, kinds, nullability, bounds and domains of an output table."""
    assert list(out.columns) == schema.output_columns
    assert len(out) == ROWS
    for name in schema.output_columns:
        spec = schema.columns[name]
        s = out[name]
        if not spec.nullable:
            assert not s.isna().any(), f"{name} is not nullable but has nulls"
        nonnull = s.dropna()
        if spec.kind == "identifier":
            assert s.is_unique, f"regenerated ids of {name} are not unique"
            continue
        if spec.values is not None:
            allowed = {_key(v) for v in spec.values}
            seen = {_key(v) for v in nonnull}
            assert seen <= allowed, f"{name} has undeclared values {sorted(seen - allowed)[:5]}"
            continue
        if spec.kind == "datetime":
            assert pd.api.types.is_datetime64_any_dtype(s), f"{name} is declared datetime, got {s.dtype}"
            if spec.has_bounds:
                assert nonnull.min() >= pd.Timestamp(spec.min) and nonnull.max() <= pd.Timestamp(spec.max)
            continue
        assert pd.api.types.is_numeric_dtype(s), f"{name} is declared {spec.kind}, got {s.dtype}"
        if spec.is_integer:
            assert str(s.dtype) == "Int64", f"{name} is an integer column, got {s.dtype}"
            assert np.all(np.mod(nonnull.to_numpy(dtype=float), 1) == 0)
        if spec.has_bounds and len(nonnull):
            lo, hi = spec.numeric_bounds()
            values = nonnull.to_numpy(dtype=float)
            assert values.min() >= lo and values.max() <= hi, f"{name} leaves [{lo}, {hi}]"


def check_no_canary(out: pd.DataFrame, table_name: str) -> None:
    for col, value in CANARIES[table_name].items():
        if col not in out.columns:
            continue
        s = out[col].dropna()
        if isinstance(value, str) and pd.api.types.is_datetime64_any_dtype(s):
            assert (s != pd.Timestamp(value)).all(), f"canary date of {col} in the output"
        else:
            assert not any(_key(v) == _key(value) for v in s), f"canary value {value!r} of {col} in the output"


@pytest.mark.parametrize(("method", "table_name"), _cases())
def test_contract(method: str, table_name: str) -> None:
    cls = synthesizer_class(method)
    synth, cost, out, calls = fitted(method, table_name)
    # the schema the output follows: the dataset's, or the generator's own
    schema = synth.output_schema() if cls.guarantee == "data-free" else table(table_name)[1]
    check_against_schema(out, schema)
    if cls.guarantee != "data-free":
        check_no_canary(out, table_name)
    # the cost: what was planned before data was read, and what was asked
    requested = _requested(method)
    assert cost == cls.planned_cost(requested)
    if cls.guarantee == "dp":
        assert cost.is_dp and cost.epsilon == requested.epsilon
        assert cost.delta <= requested.delta
        if cls.needs_delta:
            assert cost.delta == requested.delta
        if cls.zcdp:
            assert cost.rho is not None and cost.rho > 0
    elif cls.guarantee == "non-dp":
        assert cost.epsilon is INFINITE and not cost.is_dp
    else:
        assert cost.is_zero
    # progress was reported, within [0, 1]
    assert calls, f"{method} reported no progress during fit"
    assert all(0.0 <= f <= 1.0 for f, _m in calls)


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_seed_reproduces_output_where_claimed(method: str) -> None:
    if not _available(method):
        pytest.skip(f"{REGISTRY[method]} is not importable yet")
    cls = synthesizer_class(method)
    if not cls.reproducible:
        pytest.skip(f"{method} draws noise the library does not let us seed (declared reproducible = False)")
    name = "none" if cls.guarantee == "data-free" else "penguins-raw"
    _s1, _c1, first, _ = fitted(method, name, seed=11)  # the contract test's fit, when it ran first
    _s2, _c2, second, _ = fitted(method, name, seed=11, cache=False)
    id_cols = [c for c in first.columns if c in ("Individual ID",)]
    pd.testing.assert_frame_equal(first.drop(columns=id_cols), second.drop(columns=id_cols))
    _s3, _c3, other, _ = fitted(method, name, seed=12, cache=False)
    assert not first.drop(columns=id_cols).equals(other.drop(columns=id_cols)), "another seed gave the same output"


def test_canary_rows_really_were_in_the_input() -> None:
    """The canary test above would be empty if conformance had silently dropped the canary rows."""
    raw, _schema, conformed = table("penguins-raw")
    assert (raw["Sex"] == "CANARY-SEX").sum() == 1
    # the canary row survives conformance, clipped and with its undeclared category as null
    assert len(conformed) == len(raw)
    assert conformed["Body Mass (g)"].max() == 7000 and conformed["Flipper Length (mm)"].min() == 150
    assert conformed["Date Egg"].max() == pd.Timestamp("2009-12-31")
    raw, _schema, conformed = table("adult")
    assert len(conformed) == len(raw)
    assert conformed["age"].max() == 90 and conformed["capital-gain"].max() == 100000
    raw, _schema, conformed = table("pums")
    assert len(conformed) == len(raw) and conformed["income"].max() == 500000


def test_every_method_is_in_the_catalogue_with_a_guarantee() -> None:
    assert set(REGISTRY) < set(catalogue_names()) and "dp-statistics" in catalogue_names()
    # every kind of release is made by some method of the catalogue
    assert {method_entry(m).kind for m in catalogue_names() if m not in REGISTRY or _available(m)} == set(KINDS)
    for method in catalogue_names():
        if method in REGISTRY and not _available(method):
            continue
        info = method_entry(method).info()
        assert info["name"] == method
        assert info["guarantee"] in ("dp", "non-dp", "data-free")
        assert info["description"]
        if info["guarantee"] == "dp":
            # how the row count is treated: unused, or bought with a declared share of the request
            row_count = info["row_count"]
            assert row_count["use"] and 0 <= row_count["epsilon_share"] < 1 and 0 <= row_count["delta_share"] < 1
            if row_count["epsilon_share"] > 0:
                assert f"{round(row_count['epsilon_share'] * 100)}% of epsilon" in info["description"]


SMALLER_ROWS = 260
# below twice patectgan's batch: smartnoise's batch (and so the number of PATE queries) followed the rows
SMALLER_ROWS_FOR = {"patectgan": 100}
_SMALL_NETS = {"generator_dim": 32, "discriminator_dim": 32, "embedding_dim": 16}
# options under which the budget, not a limit, sets how long the GANs train: an epoch or iteration
# count that followed the rows would then differ between the two tables
PROGRESS_OPTIONS: dict[str, dict] = {
    "dpctgan": {"epochs": 30, "batch_size": 32, "sigma": 8.0, **_SMALL_NETS},
    "patectgan": {"epochs": 200, "teacher_iters": 1, **_SMALL_NETS},
}


def _dp_methods() -> list:
    out = []
    for method in sorted(REGISTRY):
        if not _available(method):
            out.append(pytest.param(method, marks=pytest.mark.skip(reason=f"{REGISTRY[method]} is not importable")))
        elif synthesizer_class(method).guarantee == "dp":
            out.append(method)
    return out


def _progress_calls(method: str, rows: int | None) -> list[tuple[float, str]]:
    if rows is None and method not in PROGRESS_OPTIONS:
        return fitted(method, "penguins-raw")[3]  # the contract's own fit
    _raw, schema, conformed = table("penguins-raw")
    data = conformed if rows is None else conformed.iloc[:rows].reset_index(drop=True)
    synth = create_synthesizer(method, seed=11, options=PROGRESS_OPTIONS.get(method, FAST_OPTIONS.get(method)))
    calls: list[tuple[float, str]] = []
    synth.fit(data, schema, _requested(method), progress=lambda f, m: calls.append((f, m)))
    return calls


@pytest.mark.parametrize("method", _dp_methods())
def test_progress_shows_nothing_that_follows_from_the_rows(method: str) -> None:
    """The requester follows the fit before any approval: the same calls on 345 rows and on fewer."""
    rows = SMALLER_ROWS_FOR.get(method, SMALLER_ROWS)
    calls = _progress_calls(method, None)
    small_calls = _progress_calls(method, rows)
    assert len(table("penguins-raw")[2]) > rows
    assert small_calls == calls
    for _f, message in calls:
        assert str(len(table("penguins-raw")[2])) not in message and str(rows) not in message


def test_datetimes_come_back_as_dates_within_bounds() -> None:
    """A method on the penguins raw table keeps `Date Egg` a date column in its declared years."""
    _s, _c, out, _ = fitted("dp-copula", "penguins-raw")
    dates = out["Date Egg"].dropna()
    assert len(dates) == ROWS
    assert dates.min() >= pd.Timestamp(dt.date(2007, 1, 1)) and dates.max() <= pd.Timestamp(dt.date(2009, 12, 31))


def test_milestones_do_not_show_how_long_the_loop_was() -> None:
    from privacy.synthesizers._progress import Milestones

    def run(steps: int, stop: int | None = None) -> list[tuple[float, str]]:
        calls: list[tuple[float, str]] = []
        m = Milestones(lambda f, msg: calls.append((f, msg)), "working", public={"fixed step"})
        for i in range(stop or steps):
            m((i + 1) / steps, f"step {i + 1} of {steps}")
            if i == 1:
                m((i + 1) / steps, "fixed step")
        m.finish()
        return calls

    three, thousand = run(3), run(1000)
    assert [c for c in three if c[1] == "working"] == [c for c in thousand if c[1] == "working"]
    assert len([c for c in three if c[1] == "working"]) == 9
    # an early stop changes nothing either
    assert [c for c in run(1000, stop=17) if c[1] == "working"] == [c for c in thousand if c[1] == "working"]
    assert not any("of" in msg for _f, msg in thousand)
    fractions = [f for f, _m in thousand]
    assert fractions == sorted(fractions) and all(0 < f < 1 for f in fractions)


# options that change what a method reads from the data: the contract again with each of them on
OPTION_VARIANTS: dict[str, dict] = {
    "dp-marginals": {"adaptive_bins_share": 0.2},
    "mst": {"adaptive_bins_share": 0.2},
    "aim": {"adaptive_bins_share": 0.2},
}


def _variant_fit(method: str, data: pd.DataFrame, schema: PublicSchema):
    synth = create_synthesizer(method, seed=11, options={**FAST_OPTIONS.get(method, {}), **OPTION_VARIANTS[method]})
    calls: list[tuple[float, str]] = []
    cost = synth.fit(data, schema, _requested(method), progress=lambda f, m: calls.append((f, m)))
    return synth, cost, calls


@pytest.mark.parametrize(
    ("method", "table_name"),
    [
        pytest.param(m, name, id=f"{m}-{name}-variant")
        for m in sorted(OPTION_VARIANTS)
        for name in ("penguins-raw", _second_table(m))
    ],
)
def test_contract_with_option_variants(method: str, table_name: str) -> None:
    _raw, schema, conformed = table(table_name)
    synth, cost, calls = _variant_fit(method, conformed, schema)
    out = synth.sample(ROWS)
    check_against_schema(out, schema)
    check_no_canary(out, table_name)
    requested = _requested(method)
    assert cost == synth.planned_cost(requested) and cost.epsilon == requested.epsilon
    if hasattr(synth, "privacy_steps"):
        assert sum(Fraction(s["rho"]) for s in synth.privacy_steps()) == cost.rho
    assert synth.fit_info()["bin_placement"]["columns"]
    if table_name == "penguins-raw":
        _s, _c, small_calls = _variant_fit(method, conformed.iloc[:SMALLER_ROWS].reset_index(drop=True), schema)
        assert small_calls == calls


def _catalogue_cases() -> list:
    return [
        pytest.param(m, marks=pytest.mark.skip(reason=f"{REGISTRY[m]} is not importable"))
        if m in REGISTRY and not _available(m)
        else m
        for m in catalogue_names()
    ]


def _entry_requested(guarantee: str) -> PrivacyCost:
    if guarantee == "dp":
        return PrivacyCost(1, DELTA)
    return PrivacyCost.non_dp() if guarantee == "non-dp" else PrivacyCost.zero()


@pytest.mark.parametrize("method", _catalogue_cases())
def test_every_catalogue_entry_answers_the_same_questions(method: str) -> None:
    """Every entry, the synthesizers and dp-statistics alike: kind, guarantee, planned cost, preflight, info,
    and a plan that agrees with them."""
    entry = method_entry(method)
    assert entry.name == method
    assert entry.kind in KINDS and entry.guarantee in ("dp", "non-dp", "data-free")
    info = entry.info(FAST_OPTIONS.get(method))
    assert info["name"] == method and info["guarantee"] == entry.guarantee and info["description"]
    if method in REGISTRY:
        cls = synthesizer_class(method)
        assert entry.guarantee == cls.guarantee and entry.heavy == cls.heavy
    if entry.kind == "dp-statistics" or entry.kind == "dp-synthetic":
        assert entry.guarantee == "dp"
    assert entry.row_level == (entry.kind in ROW_LEVEL_KINDS)
    assert entry.reads_rows == (entry.guarantee != "data-free")
    requested = _entry_requested(entry.guarantee)
    planned = entry.planned_cost(requested, FAST_OPTIONS.get(method))
    if entry.guarantee == "dp":
        assert planned.is_dp and planned.epsilon == requested.epsilon and planned.delta <= requested.delta
    elif entry.guarantee == "non-dp":
        assert planned.epsilon is INFINITE and not planned.is_dp
    else:
        assert planned.is_zero
    _raw, schema, _conformed = table("penguins-raw")
    entry.preflight(schema, requested, FAST_OPTIONS.get(method))
    epsilon = 1 if entry.guarantee == "dp" else None
    delta = DELTA if entry.guarantee == "dp" else 0
    plan = plan_release(method, epsilon, delta, FAST_OPTIONS.get(method), schema, rows=ROWS)
    assert (plan.method, plan.kind, plan.guarantee) == (method, entry.kind, entry.guarantee)
    assert plan.requested == requested and plan.cost == planned
    assert plan.rows == ROWS and plan.target == schema.target
    assert plan.queue == ("heavy" if entry.heavy else "quick")
    assert (plan.reads_rows, plan.row_level, plan.whole_table) == (entry.reads_rows, entry.row_level, entry.whole_table)
    # the plan refuses a kind the method does not make
    other = next(k for k in KINDS if k != entry.kind)
    with pytest.raises(Exception, match=f"makes a {entry.kind} release, not {other}"):
        plan_release(method, epsilon, delta, FAST_OPTIONS.get(method), schema, kind=other)


def test_dp_statistics_reports_the_planned_cost_on_real_tables() -> None:
    """dp-statistics is not fitted like the synthesizers: its release reports the planned cost."""
    from privacy.statistics import dp_statistics

    entry = method_entry("dp-statistics")
    for name in ("penguins-raw", "adult"):
        _raw, schema, conformed = table(name)
        for options in ({}, {"mechanism": "gaussian"}):
            requested = PrivacyCost(1, DELTA)
            calls: list[tuple[float, str]] = []
            release = dp_statistics(
                conformed,
                schema,
                requested,
                options=options,
                seed=11,
                progress=lambda f, m, calls=calls: calls.append((f, m)),
            )
            assert release.cost == entry.planned_cost(requested, options)
            assert release.cost.epsilon == requested.epsilon and release.cost.delta <= requested.delta
            assert calls and all(0.0 <= f <= 1.0 for f, _m in calls)
            assert not release.counts.empty

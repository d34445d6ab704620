"""Bins where the data is, paid for: the edge placement, the encoder's explicit edges, and the budget
split of the native methods with `adaptive_bins_share`."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.bin_placement import (
    GRID_CELLS,
    edges_from_counts,
    grid_counts,
    place_bin_edges,
    placeable_columns,
)
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.engine.accounting import ZCDPLedger, request_rho
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema, read_table
from privacy.statement import privacy_statement
from privacy.synthesizers import create_synthesizer
from tests.conftest import PENGUINS

DELTA = Fraction(1, 10**9)


def _schema(**columns) -> PublicSchema:
    return PublicSchema.from_dict({"columns": columns})


# ----- edges from (noisy) grid counts ------------------------------------------------------------


def test_edges_are_sorted_inside_the_bounds_and_at_most_bins_plus_one() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        counts = rng.normal(0, 5, GRID_CELLS) + rng.exponential(20, GRID_CELLS) * (rng.random(GRID_CELLS) < 0.2)
        bins = int(rng.integers(2, 64))
        edges = edges_from_counts(counts, -3.0, 11.0, bins, floor=5.0)
        if edges is None:
            assert (counts < 5.0).all() or counts[counts >= 5.0].sum() <= 0
            continue
        assert edges[0] == -3.0 and edges[-1] == 11.0
        assert all(b > a for a, b in itertools.pairwise(edges))
        assert len(edges) <= bins + 1


def test_edges_crowd_where_the_mass_is() -> None:
    counts = np.zeros(GRID_CELLS)
    counts[: GRID_CELLS // 8] = 100.0  # all the mass in the first eighth of [0, 80]
    edges = np.asarray(edges_from_counts(counts, 0.0, 80.0, 32))
    inside = ((edges > 0) & (edges <= 10.0)).sum()
    assert inside >= 16  # half the bins follow the mass (the other half are spread uniformly)
    widths = np.diff(edges)
    assert widths.max() <= 2 * 80.0 / 32 + 1e-9  # no bin wider than twice an equal-width bin


def test_nothing_above_the_floor_keeps_equal_width_bins() -> None:
    assert edges_from_counts(np.full(GRID_CELLS, 2.0), 0.0, 1.0, 8, floor=3.0) is None
    assert edges_from_counts(np.zeros(GRID_CELLS), 0.0, 1.0, 8) is None


def test_integer_edges_leave_an_integer_in_every_bin() -> None:
    counts = np.zeros(GRID_CELLS)
    counts[100:103] = 1000.0  # a spike narrower than one integer
    edges = edges_from_counts(counts, 0.0, 50.0, 32, integer=True)
    assert edges is not None
    inner = np.asarray(edges[1:-1])
    assert np.all(np.mod(inner, 1) == 0.5)
    enc = DomainEncoder(
        _schema(x={"kind": "continuous", "min": 0, "max": 50, "integer": True}), edges={"x": edges}
    ).encodings[0]
    codes = DomainEncoder(
        _schema(x={"kind": "continuous", "min": 0, "max": 50, "integer": True}), edges={"x": edges}
    ).encode(pd.DataFrame({"x": np.arange(51)}))[:, 0]
    assert set(codes.tolist()) == set(range(enc.n_bins))  # 0..50 reaches every bin


# ----- the encoder with explicit edges ---------------------------------------------------------


def test_round_trip_with_explicit_edges_and_special_values() -> None:
    schema = _schema(x={"kind": "continuous", "min": 0, "max": 100, "special_values": [0, 50], "nullable": True})
    edges = (0.0, 1.0, 2.5, 40.0, 50.0, 99.0, 100.0)
    encoder = DomainEncoder(schema, edges={"x": edges})
    enc = encoder.encodings[0]
    assert enc.n_bins == 6 and enc.size == 6 + 2 + 1
    x = pd.Series([0.0, 0.5, 1.0, 2.0, 3.0, 45.0, 50.0, 60.0, 99.5, 100.0, np.nan])
    codes = encoder.encode(pd.DataFrame({"x": x}))
    back = encoder.decode(codes, np.random.default_rng(1))["x"].to_numpy()
    assert back[0] == 0.0 and back[6] == 50.0  # special values exactly
    assert np.isnan(back[-1])
    which = np.searchsorted(np.asarray(edges[1:-1]), x.to_numpy()[:-1], side="right")
    back_which = np.searchsorted(np.asarray(edges[1:-1]), back[:-1], side="right")
    regular = ~np.isin(x.to_numpy()[:-1], [0.0, 50.0])
    assert np.array_equal(which[regular], back_which[regular])  # decoded inside the same (variable-width) bin
    # codes stay ordered like the numbers: special value 50 sits between the bins on either side of edge 50
    assert list(codes[:10, 0]) == sorted(codes[:10, 0])


def test_integer_column_decodes_integers_of_its_bin() -> None:
    schema = _schema(n={"kind": "ordinal", "min": 0, "max": 1000})
    edges = (0.0, 10.5, 11.5, 500.5, 1000.0)
    encoder = DomainEncoder(schema, edges={"n": edges})
    codes = np.repeat(np.arange(4), 500)[:, None]
    out = encoder.decode(codes, np.random.default_rng(2))["n"].to_numpy()
    assert np.all(np.mod(out, 1) == 0)
    assert np.all(out[codes[:, 0] == 1] == 11)
    for b in range(4):
        part = out[codes[:, 0] == b]
        assert part.min() >= np.ceil(edges[b]) and part.max() <= edges[b + 1]


@pytest.mark.parametrize(
    "edges,message",
    [
        ((1.0, 50.0, 100.0), "declared min"),
        ((0.0, 50.0, 99.0), "declared max"),
        ((0.0, 60.0, 50.0, 100.0), "ascending"),
        ((0.0, 10.2, 10.7, 100.0), "integer"),
    ],
)
def test_bad_edges_are_refused(edges, message) -> None:
    schema = _schema(x={"kind": "continuous", "min": 0, "max": 100, "integer": True})
    with pytest.raises(SchemaError, match=message):
        DomainEncoder(schema, edges={"x": edges})


def test_edges_only_for_binned_numeric_columns() -> None:
    schema = _schema(
        c={"kind": "categorical", "values": ["a", "b"]},
        o={"kind": "ordinal", "min": 1, "max": 5},
        x={"kind": "continuous", "min": 0, "max": 1},
    )
    assert [e.name for e in placeable_columns(DomainEncoder(schema))] == ["x"]
    with pytest.raises(SchemaError, match="not binned numeric"):
        DomainEncoder(schema, edges={"o": (1.0, 3.0, 5.0)})


# ----- the mechanism: the data only through the noisy grid histogram -------------------------------


def test_grid_counts_leave_out_nulls_and_special_values() -> None:
    schema = _schema(x={"kind": "continuous", "min": 0, "max": 4, "special_values": [0], "nullable": True})
    enc = DomainEncoder(schema).encodings[0]
    counts = grid_counts(pd.Series([0.0, 0.0, 1.2, 3.99, 4.0, np.nan]), enc, 4)
    assert counts.tolist() == [0.0, 1.0, 0.0, 2.0]


def test_edges_depend_on_the_data_only_through_the_grid_counts() -> None:
    schema = _schema(x={"kind": "continuous", "min": 0, "max": 256})
    encoder = DomainEncoder(schema)
    rng = np.random.default_rng(3)
    cells = rng.integers(0, 40, 400)
    a = pd.DataFrame({"x": cells + 0.1})
    b = pd.DataFrame({"x": cells + 0.9})  # other values, the same cells
    c = pd.DataFrame({"x": np.clip(cells + 100.5, 0, 256)})  # other cells
    rho = Fraction(1, 10)
    placed = [place_bin_edges(t, encoder, ZCDPLedger(rho), rho, np.random.default_rng(4)).edges for t in (a, b, c)]
    assert placed[0] == placed[1]
    assert placed[0] != placed[2]


def test_placement_charges_its_rho_split_over_the_columns() -> None:
    schema = load_schema(PENGUINS.parent / "schema.yaml")
    df, _ = conform_table(read_table(PENGUINS), schema)
    encoder = DomainEncoder(schema)
    ledger = ZCDPLedger(Fraction(1, 100))
    placement = place_bin_edges(df, encoder, ledger, Fraction(1, 300), np.random.default_rng(0))
    names = [e.name for e in placeable_columns(encoder)]
    assert names == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    assert [s.label for s in ledger.steps] == [f"place bins of {n}" for n in names]
    assert all(s.rho == Fraction(1, 1200) for s in ledger.steps)
    assert ledger.spent == placement.rho == Fraction(1, 300)


# ----- the methods: the whole fit spends exactly the request -------------------------------------


@pytest.fixture(scope="module")
def penguins() -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PENGUINS.parent / "schema.yaml")
    df, _ = conform_table(read_table(PENGUINS), schema)
    return df, schema


@pytest.mark.parametrize("method,options", [("mst", {"iters": 50}), ("aim", {"rounds": 16, "final_iters": 50})])
def test_fit_spends_exactly_the_request_with_the_placement(method, options, penguins) -> None:
    df, schema = penguins
    requested = PrivacyCost(Fraction(1), DELTA)
    synth = create_synthesizer(method, seed=5, options={**options, "adaptive_bins_share": 0.2})
    cost = synth.fit(df, schema, requested)
    assert cost == synth.planned_cost(requested) == PrivacyCost(Fraction(1), DELTA, request_rho(requested))
    steps = synth.privacy_steps()
    placed = [Fraction(s["rho"]) for s in steps if s["label"].startswith("place bins of ")]
    assert len(placed) == 4 and sum(placed) == request_rho(requested) * Fraction(1, 5)
    assert sum(Fraction(s["rho"]) for s in steps) == cost.rho
    info = synth.fit_info()
    assert info["bin_placement"]["share"] == 0.2
    statement = privacy_statement(method=info, cost=cost, schema=schema)
    assert "bin placement" in statement and "0.2 of rho" in statement and "body\\_mass\\_g" in statement
    out = synth.sample(300)
    assert out["body_mass_g"].dropna().between(2000, 7000).all()


def test_share_zero_is_the_equal_width_fit(penguins) -> None:
    df, schema = penguins
    requested = PrivacyCost(Fraction(1), DELTA)
    plain = create_synthesizer("mst", seed=5, options={"iters": 50})
    zero = create_synthesizer("mst", seed=5, options={"iters": 50, "adaptive_bins_share": 0})
    plain.fit(df, schema, requested)
    zero.fit(df, schema, requested)
    assert not any(s["label"].startswith("place bins") for s in zero.privacy_steps())
    assert "bin_placement" not in zero.fit_info()
    pd.testing.assert_frame_equal(plain.sample(200), zero.sample(200))


def test_a_share_outside_its_range_is_refused() -> None:
    with pytest.raises(MethodOptionError):
        create_synthesizer("mst", options={"adaptive_bins_share": 0.9})


def test_dp_marginals_spends_the_rest_after_the_placement(penguins) -> None:
    df, schema = penguins
    requested = PrivacyCost(Fraction(1), DELTA)
    synth = create_synthesizer("dp-marginals", seed=5, options={"adaptive_bins_share": 0.25})
    cost = synth.fit(df, schema, requested)
    assert cost == synth.planned_cost(requested)
    placement = synth.fit_info()["bin_placement"]
    assert Fraction(placement["rho"]) == cost.rho / 4
    assert placement["columns"] == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    with pytest.raises(MethodOptionError, match="delta > 0"):
        create_synthesizer("dp-marginals", options={"adaptive_bins_share": 0.25}).fit(
            df, schema, PrivacyCost(Fraction(1), Fraction(0))
        )

"""Decoding a binned column works out each code's draw once and spreads it to the rows: the values are
those of drawing row by row with the same random numbers (equal-width and explicit bins, integer and
real columns, special values inside, on the edge of and outside the bins, a bin of special values only,
and codes past the value codes)."""

from __future__ import annotations

import numpy as np
import pytest

from privacy.encoding import DomainEncoder, _decode_bins
from privacy.schema import PublicSchema


def _row_by_row(enc, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every row's bounds worked out on its own (the decoding the per-code tables must match)."""
    layout = np.asarray(enc.layout, dtype=np.int64)[np.minimum(c, enc.n_value_codes - 1)]
    special = layout < 0
    b = np.where(special, 0, layout)
    width = enc.bin_width
    u = rng.random(len(c))
    if enc.edges:
        edges = np.asarray(enc.edges, dtype=float)
        lower, upper = edges[b], edges[b + 1]
    else:
        lower, upper = enc.lo + b * width, enc.lo + (b + 1) * width
    if enc.spec.is_integer:
        lo_i = np.ceil(lower)
        hi_i = np.maximum(np.floor(upper - 1e-9), lo_i)
        if b.size and enc.n_bins:
            hi_i[b == enc.n_bins - 1] = np.maximum(np.floor(enc.hi), lo_i[b == enc.n_bins - 1])
        inside = [(lo_i <= v) & (v <= hi_i) for v in enc.specials]
        left = hi_i - lo_i + 1 - sum(inside, np.zeros(len(c)))
        exclude = left > 0
        x = lo_i + np.floor(u * np.where(exclude, left, hi_i - lo_i + 1))
        for v, within in zip(enc.specials, inside, strict=True):
            x += exclude & within & (x >= v)
    elif enc.edges:
        x = lower + u * (upper - lower)
    else:
        x = enc.lo + (b + u) * width
    x = np.clip(x, enc.lo, enc.hi)
    if enc.specials:
        x[special] = np.asarray(enc.specials)[-layout[special] - 1]
    return x


SPECS = {
    "real": {"kind": "continuous", "min": -3.5, "max": 7.25},
    "real specials": {"kind": "continuous", "min": 0, "max": 10, "special_values": [0, 2.5, 10]},
    "integer": {"kind": "continuous", "min": 0, "max": 1_500_000, "integer": True},
    "integer specials": {"kind": "continuous", "min": 0, "max": 99_999, "integer": True, "special_values": [0, 99_999]},
    "narrow integer specials": {"kind": "continuous", "min": 0, "max": 9, "integer": True, "special_values": [3, 4]},
    "binned ordinal": {"kind": "ordinal", "min": 1, "max": 500, "bins": 7, "special_values": [250]},
    "negative": {"kind": "continuous", "min": -1000, "max": -1, "integer": True, "special_values": [-500]},
}
EDGES = {
    "real": (-3.5, -1.0, 0.0, 0.5, 7.25),
    "integer specials": (0.0, 1.0, 2.0, 50.0, 99_999.0),
    "narrow integer specials": (0.0, 3.0, 4.0, 9.0),
}


CASES = [(name, bins, False) for name in sorted(SPECS) for bins in (3, 32)] + [(name, 0, True) for name in EDGES]


@pytest.mark.parametrize("name,bins,explicit", CASES)
def test_decoded_values_are_the_row_by_row_ones(name: str, bins: int, explicit: bool) -> None:
    schema = PublicSchema.from_dict({"columns": {"x": SPECS[name]}})
    encoder = DomainEncoder(schema, default_bins=bins or 32, edges={"x": EDGES[name]} if explicit else None)
    enc = encoder.encodings[0]
    assert enc.mode == "bins"
    # every code (and one past the value codes, as a null code is before it is masked) many times over
    codes = np.random.default_rng(3).integers(0, enc.n_value_codes + 1, 20_000)
    got = _decode_bins(enc, codes, np.random.default_rng(11))
    expected = _row_by_row(enc, codes, np.random.default_rng(11))
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
    if enc.specials:  # the special values come out exactly, and only from their codes
        layout = np.asarray(enc.layout)[np.minimum(codes, enc.n_value_codes - 1)]
        assert set(np.unique(got[layout < 0])) <= set(enc.specials)


@pytest.mark.parametrize("n,null_code", [(3, 3), (3, None), (200, 200), (40_000, None)])
def test_category_codes_by_lookup_are_the_row_by_row_ones(n: int, null_code: int | None) -> None:
    """A declared category's index per row (a null -1, a code past the values the last value), as the
    codes pandas keeps for n categories."""
    import pandas as pd

    from privacy.encoding import _category_index

    top = n + 3 if null_code is None else null_code + 1
    column = np.random.default_rng(n).integers(0, top, 5_000).astype(np.uint16 if top > 255 else np.uint8)
    c = column.astype(np.int64)
    expected = np.where(c == null_code, -1, np.minimum(c, n - 1)) if null_code is not None else np.minimum(c, n - 1)
    got = _category_index(column, n, null_code)
    np.testing.assert_array_equal(got, expected)
    categories = pd.Index([f"v{i}" for i in range(n)], dtype=object)
    assert pd.Categorical.from_codes(got, categories=categories).codes.dtype == got.dtype

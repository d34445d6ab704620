"""The compact encoded table and its marginals.

Columns are held as separate contiguous arrays of the smallest unsigned
integer type that fits their domain; a marginal over a set of attributes is one
`np.bincount` over the combined (mixed-radix) code of those attributes.
Attributes are numbered 0..d-1 and a clique is a sorted tuple of them, so a
marginal's axes are always in attribute order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from privacy.encoding import smallest_uint

__all__ = ["CHUNK_ROWS", "Clique", "EncodedTable", "clique_size", "combined_codes"]

CHUNK_ROWS = 1 << 18  # rows per pass when counting: keeps temporaries small on large tables

Clique = tuple[int, ...]


def clique_size(sizes: Sequence[int], clique: Sequence[int]) -> int:
    """Number of cells of the marginal over `clique`."""
    return math.prod(int(sizes[a]) for a in clique)


def combined_codes(
    columns: Sequence[np.ndarray], sizes: Sequence[int], clique: Clique, rows: slice | None = None
) -> np.ndarray:
    """Row-major cell index of each row (or of `rows`) in the marginal over `clique` (int64)."""
    rows = rows or slice(None)
    if not clique:
        n = len(columns[0][rows]) if columns else 0
        return np.zeros(n, dtype=np.int64)
    idx = columns[clique[0]][rows].astype(np.int64)
    for a in clique[1:]:
        idx *= int(sizes[a])
        idx += columns[a][rows]
    return idx


class EncodedTable:
    """A table of integer codes with a declared domain size per attribute."""

    def __init__(self, codes: np.ndarray, sizes: Sequence[int]) -> None:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(sizes):
            raise ValueError("codes must be (rows, attributes) with one size per attribute")
        self.sizes: tuple[int, ...] = tuple(int(s) for s in sizes)
        self.n_rows = int(codes.shape[0])
        self.columns: list[np.ndarray] = []
        for j, size in enumerate(self.sizes):
            col = np.ascontiguousarray(codes[:, j], dtype=smallest_uint(max(size - 1, 0)))
            if self.n_rows and (int(col.max()) >= size):
                raise ValueError(f"attribute {j} has a code outside its domain of size {size}")
            self.columns.append(col)

    @property
    def n_attributes(self) -> int:
        return len(self.sizes)

    def marginal(self, clique: Clique) -> np.ndarray:
        """Counts over `clique` (float64, shape = the clique's sizes)."""
        shape = tuple(self.sizes[a] for a in clique)
        cells = math.prod(shape)
        counts = np.zeros(cells, dtype=np.int64)
        for start in range(0, max(self.n_rows, 1), CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            counts += np.bincount(combined_codes(self.columns, self.sizes, clique, rows), minlength=cells)
        return counts.astype(np.float64).reshape(shape)

    def recode(self, lookups: Sequence[np.ndarray], sizes: Sequence[int]) -> EncodedTable:
        """A table whose attribute j is `lookups[j][old code]` on a domain of `sizes[j]`.

        An attribute whose lookup is the identity shares its column with this
        table (columns are never written in place), so recoding a large table
        costs memory only for the attributes that change.
        """
        out = EncodedTable.__new__(EncodedTable)
        out.sizes = tuple(int(s) for s in sizes)
        out.n_rows = self.n_rows
        out.columns = []
        for col, lookup, size in zip(self.columns, lookups, out.sizes, strict=True):
            dtype = smallest_uint(max(size - 1, 0))
            lookup = np.asarray(lookup)
            if col.dtype == dtype and np.array_equal(lookup, np.arange(len(lookup))):
                out.columns.append(col)
            else:
                out.columns.append(lookup.astype(dtype)[col])
        return out

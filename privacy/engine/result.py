"""What a fit of the engine produces: the model, its ledger, its measurements, and the
mapping from the model's (possibly compressed) domain back to the encoder's codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from privacy.encoding import smallest_uint
from privacy.engine.accounting import ZCDPLedger
from privacy.engine.estimation import Measurement
from privacy.engine.model import GraphicalModel
from privacy.engine.table import CHUNK_ROWS, Clique

__all__ = ["DomainCompression", "EngineFit", "Progress", "no_progress"]

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    return None


@dataclass(frozen=True)
class DomainCompression:
    """Per attribute, the codes kept as themselves; the others share one last code.

    Decided from noisy one-way measurements only (post-processing). Decoding a
    shared code draws among the codes it stands for, with the attribute's
    `spreads` weights or uniformly.
    """

    supports: tuple[np.ndarray, ...]  # bool per original code
    spreads: tuple[np.ndarray | None, ...] | None = None  # how a shared code spreads (None: uniformly)

    @property
    def original_sizes(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.supports)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(s.sum()) + (0 if s.all() else 1) for s in self.supports)

    def lookups(self) -> list[np.ndarray]:
        """original code -> compressed code, per attribute."""
        out = []
        for s in self.supports:
            kept = int(s.sum())
            lookup = np.full(len(s), kept, dtype=np.int64)
            lookup[s] = np.arange(kept)
            out.append(lookup)
        return out

    def decompress(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, d = codes.shape
        dtype = smallest_uint(max(max(self.original_sizes) - 1, 0))
        out = np.empty((n, d), dtype=dtype)
        for j, s in enumerate(self.supports):
            kept = np.flatnonzero(s)
            others = np.flatnonzero(~s)
            back = np.append(kept, 0).astype(dtype)  # compressed code -> original (shared: filled below)
            out[:, j] = back[codes[:, j]]
            if len(others) == 0:
                continue
            shared = np.flatnonzero(codes[:, j] == len(kept))
            spread = None if self.spreads is None else self.spreads[j]
            if spread is None:
                out[shared, j] = others[rng.integers(0, len(others), size=len(shared))]
            else:
                out[shared, j] = others[rng.choice(len(others), size=len(shared), p=spread)]
        return out


@dataclass
class EngineFit:
    """A fitted select-measure-generate model."""

    method: str
    model: GraphicalModel
    ledger: ZCDPLedger
    measurements: list[Measurement]
    selected: list[Clique]
    compression: DomainCompression | None = None
    raw_one_way: list[Measurement] = field(default_factory=list)  # on the encoder's domain

    @classmethod
    def without_data(cls, method: str, sizes: tuple[int, ...], ledger: ZCDPLedger) -> EngineFit:
        """The fit of a budget too small to measure anything (rho rounds to 0): a uniform model
        over the public domain, made without reading the data."""
        return cls(method=method, model=GraphicalModel.uniform(sizes), ledger=ledger, measurements=[], selected=[])

    def sample_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n rows of codes on the encoder's domain (drawn and decompressed block by block)."""
        if self.compression is None:
            return self.model.sample(n, rng)
        sizes = self.compression.original_sizes
        out = np.empty((n, len(sizes)), dtype=smallest_uint(max(max(sizes) - 1, 0)))
        for start in range(0, n, CHUNK_ROWS):
            block = self.model.sample(min(CHUNK_ROWS, n - start), rng)
            out[start : start + len(block)] = self.compression.decompress(block, rng)
        return out

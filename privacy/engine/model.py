"""The fitted graphical model: clique marginals on a junction tree, queries and sampling."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from privacy.encoding import smallest_uint
from privacy.engine.factor import sum_to
from privacy.engine.junction_tree import JunctionTree
from privacy.engine.table import CHUNK_ROWS, Clique, combined_codes

__all__ = ["GraphicalModel", "draw_conditional"]

_LETTERS = string.ascii_letters


class GraphicalModel:
    """A distribution given by consistent clique marginals on a junction tree.

    `probabilities[i]` is the marginal of `jt.cliques[i]` (sums to 1);
    `total` is the (noisy) number of records the model stands for.
    """

    def __init__(self, jt: JunctionTree, probabilities: Sequence[np.ndarray], total: float) -> None:
        self.jt = jt
        self.sizes = jt.sizes
        self.probabilities = [np.asarray(p, dtype=np.float64) for p in probabilities]
        self.total = float(total)

    @classmethod
    def uniform(cls, sizes: Sequence[int]) -> GraphicalModel:
        """Every attribute independent and uniform over its domain (reads no data)."""
        from privacy.engine.junction_tree import build_junction_tree

        jt = build_junction_tree(sizes, [(a,) for a in range(len(sizes))])
        return cls(jt, [np.full(jt.sizes[c[0]], 1.0 / jt.sizes[c[0]]) for c in jt.cliques], 1.0)

    # ----- queries ------------------------------------------------------------------------------
    def project(self, clique: Sequence[int]) -> np.ndarray:
        """Counts (scaled to `total`) of the model's marginal over `clique`."""
        return self.probability(clique) * self.total

    def probability(self, clique: Sequence[int]) -> np.ndarray:
        """The model's marginal distribution over `clique` (axes in sorted attribute order)."""
        target: Clique = tuple(sorted(set(clique)))
        i = self.jt.containing(target)
        if i is not None:
            return sum_to(self.probabilities[i], self.jt.cliques[i], target)
        return self._probability_across(target)

    def _probability_across(self, target: Clique) -> np.ndarray:
        """Marginal of attributes spread over several cliques: the product of the cliques on the
        connecting subtree divided by their separators, summed to the target."""
        jt = self.jt
        k = len(jt.cliques)
        nbrs: list[list[int]] = [[] for _ in range(k)]
        for c in range(k):
            if jt.parent[c] >= 0:
                nbrs[c].append(jt.parent[c])
                nbrs[jt.parent[c]].append(c)
        first = jt.containing((target[0],))
        assert first is not None
        parent = [-2] * k
        parent[first] = -1
        queue = [first]
        for c in queue:
            for n in nbrs[c]:
                if parent[n] == -2:
                    parent[n] = c
                    queue.append(n)
        depth = {c: i for i, c in enumerate(queue)}  # BFS rank: a proxy for distance
        in_tree = {first}
        for a in target[1:]:
            holders = [c for c in range(k) if a in jt.cliques[c]]
            if any(h in in_tree for h in holders):
                continue
            c = min(holders, key=lambda h: depth[h])
            while c not in in_tree:
                in_tree.add(c)
                c = parent[c]
        targets = set(target)
        seps = {c: set(jt.cliques[c]) & set(jt.cliques[parent[c]]) for c in in_tree if parent[c] in in_tree}
        factors: list[tuple[Clique, np.ndarray]] = []
        for c in in_tree:
            keep = set(seps.get(c, set())) | (set(jt.cliques[c]) & targets)
            for ch, s in seps.items():
                if parent[ch] == c:
                    keep |= s
            keep_t = tuple(sorted(keep))
            factors.append((keep_t, sum_to(self.probabilities[c], jt.cliques[c], keep_t)))
            if c in seps:
                s_t = tuple(sorted(seps[c]))
                sep_marg = sum_to(self.probabilities[c], jt.cliques[c], s_t)
                inv = np.divide(1.0, sep_marg, out=np.zeros_like(sep_marg), where=sep_marg > 0)
                factors.append((s_t, inv))
        attrs = sorted(set().union(*[set(f[0]) for f in factors]))
        if len(attrs) > len(_LETTERS):
            raise ValueError("marginal query spans too many attributes")
        letter = {a: _LETTERS[i] for i, a in enumerate(attrs)}
        spec = ",".join("".join(letter[a] for a in cl) for cl, _ in factors)
        spec += "->" + "".join(letter[a] for a in target)
        out = np.einsum(spec, *[v for _, v in factors], optimize=True)
        return np.maximum(out, 0.0)

    # ----- sampling -----------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, *, stratified: bool = True) -> np.ndarray:
        """n rows of codes (n x d) drawn attribute by attribute along the junction tree.

        Large requests are drawn in blocks of `CHUNK_ROWS` rows, so that the
        temporaries stay small next to the output.

        With `stratified` (the default), each attribute is drawn by systematic
        sampling within each configuration of the attributes it is conditioned
        on, in random row order: the sampled counts then match the model's
        conditional marginals up to rounding, with less variance than
        independent draws, and without linking attributes drawn in the same way.
        """
        d = len(self.sizes)
        out = np.zeros((n, d), dtype=smallest_uint(max(max(self.sizes) - 1, 0)))
        for start in range(0, n, CHUNK_ROWS):
            self._sample_into(out[start : start + CHUNK_ROWS], rng, stratified)
        return out

    def _sample_into(self, out: np.ndarray, rng: np.random.Generator, stratified: bool) -> None:
        jt = self.jt
        n, d = out.shape
        cols: list[np.ndarray] = [out[:, j] for j in range(d)]
        done: set[int] = set()
        for c in jt.order:
            clique = jt.cliques[c]
            probs = self.probabilities[c]
            for a in clique:
                if a in done:
                    continue
                cond = tuple(x for x in clique if x in done)
                keep = tuple(sorted((*cond, a)))
                table = sum_to(probs, clique, keep)
                table = np.moveaxis(table, keep.index(a), -1).reshape(-1, self.sizes[a])
                if cond:
                    groups = combined_codes(cols, self.sizes, cond)
                else:
                    groups = np.zeros(n, dtype=np.int64)
                out[:, a] = draw_conditional(table, groups, rng, stratified=stratified)
                done.add(a)


def draw_conditional(
    table: np.ndarray, groups: np.ndarray, rng: np.random.Generator, *, stratified: bool = True
) -> np.ndarray:
    """One draw per row from row `groups[i]` of `table` (unnormalised weights, G x k)."""
    n = len(groups)
    g_count, k = table.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    weights = np.clip(np.nan_to_num(table, nan=0.0, posinf=0.0), 0.0, None)
    row_sum = weights.sum(axis=1, keepdims=True)
    fallback = weights.sum(axis=0)
    fallback = fallback / fallback.sum() if fallback.sum() > 0 else np.full(k, 1.0 / k)
    cond = np.where(row_sum > 0, weights / np.where(row_sum > 0, row_sum, 1.0), fallback[None, :])
    cdf = np.cumsum(cond, axis=1)
    cdf[:, -1] = 1.0
    offsets = np.arange(g_count, dtype=np.float64)[:, None]
    flat = (cdf + offsets).ravel()  # row g's cdf shifted into [g, g + 1]: one sorted array
    if stratified:
        perm = rng.permutation(n)
        # a stable sort of small unsigned keys is a radix sort: linear in rows
        keys = groups[perm].astype(smallest_uint(max(g_count - 1, 0)), copy=False)
        order = perm[np.argsort(keys, kind="stable")]
        g_sorted = groups[order]
        counts = np.bincount(groups, minlength=g_count)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(n) - starts[g_sorted]
        # in this order the queries are ascending, so the search walks the cdf in order
        query = g_sorted + (rank + rng.random(n)) / counts[g_sorted]
        out = np.empty(n, dtype=np.int64)
        out[order] = np.searchsorted(flat, query, side="right") - g_sorted * k
    else:
        out = np.searchsorted(flat, groups + rng.random(n), side="right") - groups * k
    return np.clip(out, 0, k - 1)

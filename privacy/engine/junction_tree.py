"""Junction trees: triangulation, tree construction and exact message passing.

The graph has one node per attribute and an edge between every two attributes
that share a clique. It is triangulated by greedy elimination (zero fill-in
first, then the smallest new clique; a forest, such as MST's tree, eliminates
leaf by leaf with no fill-in), the maximal cliques are joined by a maximum
spanning tree on separator sizes (disconnected parts hang on empty
separators), and sum-product message passing on that tree gives every clique's
exact marginal in two passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from privacy.engine.factor import expand, logsumexp_to, sum_to
from privacy.engine.table import Clique, clique_size

__all__ = ["JunctionTree", "build_junction_tree", "calibrate", "clique_probabilities", "junction_tree_cells"]


@dataclass(frozen=True)
class JunctionTree:
    sizes: tuple[int, ...]
    cliques: tuple[Clique, ...]
    parent: tuple[int, ...]  # -1 for the root
    separator: tuple[Clique, ...]  # shared with the parent; () for the root
    order: tuple[int, ...]  # root first; every clique after its parent
    children: tuple[tuple[int, ...], ...]
    elimination_order: tuple[int, ...]

    @property
    def cells(self) -> int:
        return sum(clique_size(self.sizes, c) for c in self.cliques)

    def containing(self, clique: Iterable[int]) -> int | None:
        """Index of the smallest clique that contains every attribute of `clique`."""
        wanted = set(clique)
        best, best_cells = None, math.inf
        for i, c in enumerate(self.cliques):
            if wanted.issubset(c):
                cells = clique_size(self.sizes, c)
                if cells < best_cells:
                    best, best_cells = i, cells
        return best


def _eliminate(sizes: Sequence[int], cliques: Iterable[Clique]) -> tuple[list[int], list[frozenset[int]]]:
    d = len(sizes)
    adj: list[set[int]] = [set() for _ in range(d)]
    for cl in cliques:
        for a in cl:
            adj[a].update(b for b in cl if b != a)
    remaining = set(range(d))
    order: list[int] = []
    formed: list[frozenset[int]] = []
    while remaining:
        best_v, best_key = -1, None
        for v in sorted(remaining):
            nbrs = adj[v]
            fill = 0
            nb = list(nbrs)
            for i in range(len(nb)):
                ai = adj[nb[i]]
                for j in range(i + 1, len(nb)):
                    if nb[j] not in ai:
                        fill += 1
            key = (fill > 0, math.prod(int(sizes[u]) for u in nbrs) * int(sizes[v]), fill)
            if best_key is None or key < best_key:
                best_v, best_key = v, key
        v = best_v
        nbrs = adj[v]
        formed.append(frozenset(nbrs | {v}))
        for a in nbrs:
            adj[a].update(nbrs - {a})
            adj[a].discard(v)
        adj[v] = set()
        remaining.discard(v)
        order.append(v)
    return order, formed


def build_junction_tree(sizes: Sequence[int], cliques: Iterable[Sequence[int]]) -> JunctionTree:
    """A junction tree over all attributes whose cliques cover every given clique."""
    sizes = tuple(int(s) for s in sizes)
    given = [tuple(sorted(set(c))) for c in cliques]
    order, formed = _eliminate(sizes, given)
    # keep the maximal ones, largest first, deterministic
    formed_sorted = sorted(set(formed), key=lambda s: (-len(s), sorted(s)))
    maximal: list[frozenset[int]] = []
    for s in formed_sorted:
        if not any(s <= m for m in maximal):
            maximal.append(s)
    jt_cliques = [tuple(sorted(s)) for s in maximal]
    k = len(jt_cliques)
    # maximum spanning tree on separator size (Kruskal), empty separators allowed
    pairs = sorted(
        ((len(set(jt_cliques[i]) & set(jt_cliques[j])), i, j) for i in range(k) for j in range(i + 1, k)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    root_of = list(range(k))

    def find(x: int) -> int:
        while root_of[x] != x:
            root_of[x] = root_of[root_of[x]]
            x = root_of[x]
        return x

    nbrs: list[list[int]] = [[] for _ in range(k)]
    for _w, i, j in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            root_of[ri] = rj
            nbrs[i].append(j)
            nbrs[j].append(i)
    # root at the largest clique; breadth-first order
    root = max(range(k), key=lambda i: (clique_size(sizes, jt_cliques[i]), -i))
    parent = [-1] * k
    bfs = [root]
    seen = {root}
    for c in bfs:
        for n in sorted(nbrs[c]):
            if n not in seen:
                seen.add(n)
                parent[n] = c
                bfs.append(n)
    children: list[list[int]] = [[] for _ in range(k)]
    for c in bfs[1:]:
        children[parent[c]].append(c)
    separator = [
        () if parent[c] < 0 else tuple(sorted(set(jt_cliques[c]) & set(jt_cliques[parent[c]]))) for c in range(k)
    ]
    return JunctionTree(
        sizes=sizes,
        cliques=tuple(jt_cliques),
        parent=tuple(parent),
        separator=tuple(separator),
        order=tuple(bfs),
        children=tuple(tuple(ch) for ch in children),
        elimination_order=tuple(order),
    )


def junction_tree_cells(sizes: Sequence[int], cliques: Iterable[Sequence[int]]) -> int:
    """Cells of the junction tree these cliques would need (the model size AIM limits)."""
    _order, formed = _eliminate(tuple(int(s) for s in sizes), [tuple(sorted(set(c))) for c in cliques])
    maximal: list[frozenset[int]] = []
    for s in sorted(set(formed), key=lambda s: -len(s)):
        if not any(s <= m for m in maximal):
            maximal.append(s)
    return sum(clique_size(sizes, tuple(m)) for m in maximal)


def calibrate(jt: JunctionTree, log_potentials: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Exact log-marginals (unnormalised) of every clique, and log Z, by two-pass message passing."""
    k = len(jt.cliques)
    partial: list[np.ndarray] = [np.asarray(p, dtype=np.float64) for p in log_potentials]
    up: list[np.ndarray | None] = [None] * k
    for c in reversed(jt.order):
        clique = jt.cliques[c]
        for ch in jt.children[c]:
            partial[c] = partial[c] + expand(up[ch], jt.separator[ch], clique, jt.sizes)  # type: ignore[arg-type]
        if jt.parent[c] >= 0:
            up[c] = logsumexp_to(partial[c], clique, jt.separator[c])
    beliefs: list[np.ndarray] = [partial[i] for i in range(k)]
    for c in jt.order:
        clique = jt.cliques[c]
        for ch in jt.children[c]:
            sep = jt.separator[ch]
            down = logsumexp_to(beliefs[c] - expand(up[ch], sep, clique, jt.sizes), clique, sep)  # type: ignore[arg-type]
            beliefs[ch] = partial[ch] + expand(down, sep, jt.cliques[ch], jt.sizes)
    root = beliefs[jt.order[0]]
    top = float(root.max())
    log_z = top + float(np.log(np.exp(root - top).sum()))
    return beliefs, log_z


def clique_probabilities(jt: JunctionTree, log_potentials: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Normalised marginal of every clique: message passing in probability space.

    Each clique's potential is exponentiated once (shifted by its maximum) and
    messages are rescaled to a maximum of 1, which is several times cheaper
    than log-space passing. If a message or belief underflows to zero or is not
    finite (potentials spanning more than ~700 nats across cliques), the
    log-space `calibrate` is used instead.
    """
    with np.errstate(under="ignore", over="ignore", invalid="ignore", divide="ignore"):
        out = _probability_pass(jt, log_potentials)
    if out is not None:
        return out
    beliefs, log_z = calibrate(jt, log_potentials)
    return [np.exp(b - log_z) for b in beliefs]


def _probability_pass(jt: JunctionTree, log_potentials: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    k = len(jt.cliques)
    partial: list[np.ndarray] = []
    for p in log_potentials:
        p = np.asarray(p, dtype=np.float64)
        partial.append(np.exp(p - p.max()))
    up: list[np.ndarray | None] = [None] * k
    for c in reversed(jt.order):
        clique = jt.cliques[c]
        for ch in jt.children[c]:
            partial[c] = partial[c] * expand(up[ch], jt.separator[ch], clique, jt.sizes)  # type: ignore[arg-type]
        if jt.parent[c] >= 0:
            msg = sum_to(partial[c], clique, jt.separator[c])
            top = float(msg.max())
            if not (top > 0 and np.isfinite(top)):
                return None
            up[c] = msg / top
    beliefs = list(partial)
    for c in jt.order:
        clique = jt.cliques[c]
        for ch in jt.children[c]:
            sep = jt.separator[ch]
            msg_up = expand(up[ch], sep, clique, jt.sizes)  # type: ignore[arg-type]
            quotient = np.divide(beliefs[c], msg_up, out=np.zeros_like(beliefs[c]), where=msg_up > 0)
            down = sum_to(quotient, clique, sep)
            top = float(down.max())
            if not (top > 0 and np.isfinite(top)):
                return None
            beliefs[ch] = partial[ch] * expand(down / top, sep, jt.cliques[ch], jt.sizes)
    out = []
    for b in beliefs:
        total = float(b.sum())
        if not (total > 0 and np.isfinite(total)):
            return None
        out.append(b / total)
    return out

"""Pure parts of bench/quality.py: splits, item-item baselines, ranking and the two metrics.

Every method is an item-item score matrix ``S`` (scipy CSR, items x items, items indexed in
product-id order): ``S[i, j]`` is how strongly ``j`` is suggested for ``i``. A cart's score for
candidate ``j`` is the sum of ``S[i, j]`` over the cart items ``i``; an anchor's list is its own
row. Popularity is the method without scores (``S = None``): its lists are the popularity fill.

Ranking rule, the same for every method: candidates are products seen in training, never an item
of the cart / the anchor; positive scores first by (score desc, product id asc), then the rest of
the top ``k`` filled from popularity (training baskets desc, product id asc). ``own`` counts the
slots a method filled itself.

Hand-checkable example (three baskets, items a < b < c)::

    >>> idx = ItemIndex(["a", "b", "c"])
    >>> X = basket_matrix([["a", "b"], ["a", "b"], ["a", "c"]], idx)
    >>> cooccurrence(X).toarray().tolist()
    [[0.0, 2.0, 1.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    >>> popularity_order(X).tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

K = 10


def hash_unit(key: str, seed: int) -> float:
    """A stable number in [0, 1) for ``key`` (sha1 of ``seed:key``; not Python's salted hash()).

    >>> hash_unit("1", 0) == hash_unit("1", 0), 0 <= hash_unit("x", 7) < 1
    (True, True)
    """
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


class ItemIndex:
    """Product ids in sorted order and their positions (position order = id order: tie-breaks)."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids: list[str] = sorted(set(ids))
        self.pos: dict[str, int] = {p: i for i, p in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


def basket_matrix(baskets: Sequence[Sequence[str]], index: ItemIndex) -> sp.csr_matrix:
    """Binary baskets x items matrix; ids not in ``index`` are skipped."""
    rows, cols = [], []
    for r, b in enumerate(baskets):
        for p in set(b):
            j = index.pos.get(p)
            if j is not None:
                rows.append(r)
                cols.append(j)
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(baskets), len(index)))


def popularity_order(X: sp.csr_matrix) -> np.ndarray:
    """Item positions by training baskets desc, then product id asc."""
    counts = np.asarray(X.sum(axis=0)).ravel()
    return np.lexsort((np.arange(len(counts)), -counts))


def _no_diagonal(S: sp.spmatrix) -> sp.csr_matrix:
    S = sp.csr_matrix(S)
    S.setdiag(0)
    S.eliminate_zeros()
    return S


def cooccurrence(X: sp.csr_matrix) -> sp.csr_matrix:
    """C[i, j] = training baskets holding both i and j (i != j)."""
    return _no_diagonal((X.T @ X).tocsr())


def _pair_normalised(
    X: sp.csr_matrix, f: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
) -> sp.csr_matrix:
    C = cooccurrence(X).tocoo()
    n = np.asarray(X.sum(axis=0)).ravel()
    data = f(C.data, n[C.row], n[C.col])
    return sp.csr_matrix((data, (C.row, C.col)), shape=C.shape)


def sar_jaccard(X: sp.csr_matrix) -> sp.csr_matrix:
    """SAR jaccard: c_ij / (c_i + c_j - c_ij).

    >>> X = basket_matrix([["a", "b"], ["a", "b"], ["a", "c"]], ItemIndex("abc"))
    >>> sar_jaccard(X).toarray().round(3).tolist()[0]
    [0.0, 0.667, 0.333]
    """
    return _pair_normalised(X, lambda c, ni, nj: c / (ni + nj - c))


def sar_lift(X: sp.csr_matrix) -> sp.csr_matrix:
    """SAR lift: c_ij / (c_i c_j) (rewards rare pairs)."""
    return _pair_normalised(X, lambda c, ni, nj: c / (ni * nj))


def item_cosine(X: sp.csr_matrix) -> sp.csr_matrix:
    """Cosine of the items' binary basket vectors: c_ij / sqrt(c_i c_j)."""
    return _pair_normalised(X, lambda c, ni, nj: c / np.sqrt(ni * nj))


def bm25_weight(X: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """BM25 weights of the items x baskets matrix ``X.T`` as ``implicit.nearest_neighbours``
    computes them: baskets are the terms, idf = log(items) - log1p(basket size); items are the
    documents, length-normalised by their popularity. k1 and b: BM25Recommender's defaults."""
    M = sp.coo_matrix(X.T)
    n_items = float(M.shape[0])
    idf = np.log(n_items) - np.log1p(np.bincount(M.col, minlength=M.shape[1]))
    lengths = np.asarray(M.sum(axis=1)).ravel()
    norm = (1.0 - b) + b * lengths / max(lengths.mean(), 1e-12)
    data = M.data * (k1 + 1.0) / (k1 * norm[M.row] + M.data) * idf[M.col]
    return sp.csr_matrix((data, (M.row, M.col)), shape=M.shape)


def item_bm25(X: sp.csr_matrix) -> sp.csr_matrix:
    """Item-item BM25 (implicit's BM25Recommender without its top-K pruning): W Wᵀ of the
    BM25-weighted items x baskets matrix."""
    W = bm25_weight(X)
    return _no_diagonal((W @ W.T).tocsr())


BASELINES: dict[str, Callable[[sp.csr_matrix], sp.csr_matrix] | None] = {
    "popularity": None,
    "co-occurrence": cooccurrence,
    "SAR jaccard": sar_jaccard,
    "SAR lift": sar_lift,
    "item cosine": item_cosine,
    "item BM25": item_bm25,
}


def relation_matrix(
    rows: Iterable[tuple[str, str, float]], index: ItemIndex, *, reciprocal_rank: bool = False
) -> sp.csr_matrix:
    """S from directed relations (src, dst, score); pairs outside ``index`` are dropped. With
    ``reciprocal_rank`` the value is 1 / rank of dst in src's list (score desc, dst asc)."""
    per_src: dict[int, list[tuple[float, int]]] = {}
    for s, d, score in rows:
        i, j = index.pos.get(s), index.pos.get(d)
        if i is not None and j is not None and i != j:
            per_src.setdefault(i, []).append((float(score), j))
    r, c, v = [], [], []
    for i, lst in per_src.items():
        lst.sort(key=lambda t: (-t[0], t[1]))
        for rank, (score, j) in enumerate(lst, start=1):
            r.append(i)
            c.append(j)
            v.append(1.0 / rank if reciprocal_rank else score)
    n = len(index)
    return sp.csr_matrix((np.array(v, dtype=np.float64), (r, c)), shape=(n, n))


def rank(
    scores: np.ndarray | None, exclude: Sequence[int], pop: np.ndarray, k: int = K
) -> tuple[list[int], int]:
    """Top ``k`` positions by the ranking rule of the module docstring; returns (list, own).

    >>> rank(np.array([0.0, 2.0, 2.0, 1.0]), [3], np.array([0, 3, 1, 2]), k=3)
    ([1, 2, 0], 2)
    """
    out: list[int] = []
    ex = set(int(e) for e in exclude)
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).copy()
        if ex:
            s[list(ex)] = 0.0
        pos = np.flatnonzero(s > 0)
        if len(pos) > k:
            kth = np.partition(s[pos], len(pos) - k)[len(pos) - k]
            pos = pos[s[pos] >= kth]
        out = [int(p) for p in pos[np.lexsort((pos, -s[pos]))][:k]]
    own = len(out)
    if own < k:
        taken = ex | set(out)
        for p in pop:
            if len(out) >= k:
                break
            if int(p) not in taken:
                out.append(int(p))
    return out, own


def row_scores(S: sp.csr_matrix, i: int) -> np.ndarray:
    """Row ``i`` of S as a dense vector."""
    v = np.zeros(S.shape[1], dtype=np.float64)
    a, b = S.indptr[i], S.indptr[i + 1]
    v[S.indices[a:b]] = S.data[a:b]
    return v


@dataclass
class CartCase:
    """One cart-completion case: the rest of a basket and the hidden item (positions)."""

    rest: list[int]
    hidden: int


def cart_cases(baskets: dict[str, list[int]], seed: int, max_cases: int | None) -> list[CartCase]:
    """One case per basket with ≥ 2 distinct items: the hidden item is the one with the smallest
    ``hash_unit(order_id:item)``. Cases come in ``hash_unit(order_id)`` order (so any prefix is a
    seeded random sample) and stop at ``max_cases``."""
    keys = [o for o, b in baskets.items() if len(set(b)) >= 2]
    keys.sort(key=lambda o: (hash_unit(o, seed), o))
    if max_cases is not None:
        keys = keys[:max_cases]
    out = []
    for o in keys:
        items = sorted(set(baskets[o]))
        hidden = min(items, key=lambda j: (hash_unit(f"{o}:{j}", seed), j))
        out.append(CartCase([j for j in items if j != hidden], hidden))
    return out


def hit_and_rr(ranked: Sequence[int], target: int, k: int = K) -> tuple[float, float]:
    """(1 if target in the top k else 0, 1/rank within k else 0).

    >>> hit_and_rr([5, 7, 9], 7), hit_and_rr([5, 7, 9], 4)
    ((1.0, 0.5), (0.0, 0.0))
    """
    top = list(ranked[:k])
    if target in top:
        return 1.0, 1.0 / (top.index(target) + 1)
    return 0.0, 0.0


def cart_lists(
    S: sp.csr_matrix | None, cases: Sequence[CartCase], pop: np.ndarray, k: int = K, chunk: int = 256
) -> list[tuple[list[int], int]]:
    """Each case's top-k list (scores summed over the rest of the basket) and its own count."""
    out: list[tuple[list[int], int]] = []
    n = len(pop)
    for a in range(0, len(cases), chunk):
        part = cases[a : a + chunk]
        if S is None:
            out.extend(rank(None, c.rest, pop, k) for c in part)
            continue
        r = [i for i, c in enumerate(part) for _ in c.rest]
        c_ = [j for c in part for j in c.rest]
        Q = sp.csr_matrix((np.ones(len(r)), (r, c_)), shape=(len(part), n))
        dense = (Q @ S).toarray()
        out.extend(rank(dense[i], c.rest, pop, k) for i, c in enumerate(part))
    return out


def cart_metrics(
    lists: Sequence[tuple[Sequence[int], int]], cases: Sequence[CartCase], k: int = K
) -> dict[str, float]:
    """HR@k, MRR@k and the share of list slots the method filled itself."""
    if not cases:
        return {"hr": float("nan"), "mrr": float("nan"), "own": float("nan"), "n": 0}
    hits = [hit_and_rr(lst, c.hidden, k) for (lst, _), c in zip(lists, cases, strict=True)]
    return {
        "hr": float(np.mean([h for h, _ in hits])),
        "mrr": float(np.mean([r for _, r in hits])),
        "own": float(np.mean([own / k for _, own in lists])),
        "n": len(cases),
    }


def anchor_lists(
    S: sp.csr_matrix | None, items: Iterable[int], pop: np.ndarray, k: int = K
) -> dict[int, tuple[list[int], int]]:
    """Each anchor's top-k list (its own row of S) and own count."""
    return {a: rank(None if S is None else row_scores(S, a), [a], pop, k) for a in items}


def anchor_metrics(
    lists: dict[int, tuple[list[int], int]], baskets: Iterable[Sequence[int]], k: int = K
) -> dict[str, float]:
    """Every item of every basket with ≥ 2 distinct items as anchor: hit rate (≥ 1 other basket
    item in its top k) and precision (other basket items in the top k / k)."""
    hits: list[float] = []
    prec: list[float] = []
    own: list[float] = []
    for b in baskets:
        items = set(b)
        if len(items) < 2:
            continue
        for a in sorted(items):
            lst, o = lists[a]
            found = sum(1 for j in lst[:k] if j in items and j != a)
            hits.append(float(found > 0))
            prec.append(found / k)
            own.append(o / k)
    if not hits:
        return {"hr": float("nan"), "p": float("nan"), "own": float("nan"), "n": 0}
    return {"hr": float(np.mean(hits)), "p": float(np.mean(prec)), "own": float(np.mean(own)), "n": len(hits)}


def anchor_bound(baskets: Iterable[Sequence[int]], k: int = K, *, exact: bool = False) -> dict[str, float]:
    """The most anchor HR@k that *any* fixed top-k list per anchor can reach on ``baskets`` (the
    test baskets themselves, as :func:`anchor_metrics` counts them): per anchor, the share of its
    baskets that a best set of ``k`` other products covers (a basket is hit when it holds one of
    them). ``lp`` is the linear-programming relaxation of that maximum coverage problem, an upper
    bound for every method, whatever it learns from; with ``exact`` also ``ilp``, the optimum itself
    (mixed-integer, slower). No method ranked from training data can pass either.

    >>> anchor_bound([[0, 1], [0, 2], [0, 2]], k=1, exact=True)
    {'n': 6, 'lp': 0.8333, 'ilp': 0.8333}
    """
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    by_anchor: dict[int, list[list[int]]] = {}
    for b in baskets:
        items = sorted(set(b))
        if len(items) >= 2:
            for a in items:
                by_anchor.setdefault(a, []).append(items)
    n = sum(len(v) for v in by_anchor.values())
    lp = ilp = 0.0
    for a, bs in by_anchor.items():
        others = sorted({j for b in bs for j in b if j != a})
        if len(others) <= k:  # every basket of this anchor is hit
            lp += len(bs)
            ilp += len(bs)
            continue
        col = {j: i for i, j in enumerate(others)}
        nx, ny = len(others), len(bs)
        # variables: x (is each product in the list) then y (is each basket hit); max sum(y)
        # subject to y_b <= sum of x over b's other products and sum(x) = k
        r, c, v = [], [], []
        for bi, b in enumerate(bs):
            r.append(bi)
            c.append(nx + bi)
            v.append(1.0)
            for j in b:
                if j != a:
                    r.append(bi)
                    c.append(col[j])
                    v.append(-1.0)
        cover = sp.csr_matrix((v, (r, c)), shape=(ny, nx + ny))
        size = sp.csr_matrix(np.r_[np.ones(nx), np.zeros(ny)][None, :])
        cost = np.r_[np.zeros(nx), -np.ones(ny)]
        res = linprog(cost, A_ub=cover, b_ub=np.zeros(ny), A_eq=size, b_eq=[k], bounds=(0, 1), method="highs")
        lp += -float(res.fun)
        if exact:
            m = milp(
                cost,
                constraints=LinearConstraint(
                    sp.vstack([cover, size]).tocsr(), np.r_[np.full(ny, -np.inf), k], np.r_[np.zeros(ny), k]
                ),
                integrality=np.r_[np.ones(nx), np.zeros(ny)],
                bounds=Bounds(0, 1),
            )
            ilp += -float(m.fun)
    out = {"n": n, "lp": round(lp / n, 4) if n else float("nan")}
    if exact:
        out["ilp"] = round(ilp / n, 4) if n else float("nan")
    return out

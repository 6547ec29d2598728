"""The compiled kernel (numba, :func:`tiein.jit.compiled`) of the candidate pairs: each product's
``k`` best partners among undirected pair rows, without the directed copies.

:func:`top_partners` answers what the candidate query's ``row_number() OVER (PARTITION BY src
ORDER BY value DESC, dst) <= k`` answers over the pairs taken both ways, from the undirected rows
themselves: one pass spreads each row into its two products' partner lists (which come out in
partner order when the rows are sorted by ``lo * n + hi``), and each list longer than ``k`` keeps
the values above its ``k``-th largest plus the first of the ties at it, a linear selection
(``np.partition``) instead of a sort of every directed pair. Online Retail's 2.4M pairs: ~40
bytes a pair at the peak instead of ~300, and the three rankings of a call in ~0.2 s instead of
~1 s (tiein/candidate_pairs.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tiein.jit import compiled


@compiled
def _top_partners(
    lo: Any, hi: Any, v_lh: Any, v_hl: Any, valid: Any, n: int, k: int, out: Any
) -> int:  # pragma: no cover - compiled
    ptr = np.zeros(n + 1, np.int64)
    for i in range(lo.size):
        if valid[i]:
            ptr[lo[i] + 1] += 1
            ptr[hi[i] + 1] += 1
    for x in range(n):
        ptr[x + 1] += ptr[x]
    fill = ptr[:-1].copy()
    partner = np.empty(ptr[n], np.int64)
    value = np.empty(ptr[n], np.float64)
    for i in range(lo.size):  # rows in (lo, hi) order: each list comes out in partner order
        if valid[i]:
            a, b = lo[i], hi[i]
            j = fill[a]
            partner[j], value[j] = b, v_lh[i]
            fill[a] = j + 1
            j = fill[b]
            partner[j], value[j] = a, v_hl[i]
            fill[b] = j + 1
    w = 0
    for x in range(n):
        s, e = ptr[x], ptr[x + 1]
        if e - s <= k:
            for j in range(s, e):
                out[w] = x * n + partner[j]
                w += 1
            continue
        cut = -np.partition(-value[s:e], k - 1)[k - 1]  # the k-th largest value
        ties = k
        for j in range(s, e):
            if value[j] > cut:
                ties -= 1
        for j in range(s, e):  # above the cut, and the first ``ties`` at it (lowest partners)
            v = value[j]
            if v > cut or (v == cut and ties > 0):
                if v == cut:
                    ties -= 1
                out[w] = x * n + partner[j]
                w += 1
    return w


def top_partners(
    lo: np.ndarray, hi: np.ndarray, v_lh: np.ndarray, v_hl: np.ndarray, valid: np.ndarray, n: int, k: int
) -> np.ndarray:
    """Directed keys ``src * n + dst`` (codes < ``n``) of each product's ``k`` best partners, by
    value (high first), ties by partner (low first), among the ``valid`` undirected rows
    ``lo[i] < hi[i]`` (sorted by ``lo * n + hi``, no row twice): the row gives ``lo → hi`` the
    value ``v_lh[i]`` and ``hi → lo`` the value ``v_hl[i]`` (no NaN; -0.0 equals 0.0). Keys in
    src order, then partner order within a src.

    Product 0 has partners 1, 2, 3 worth 5, 7, 7 to it; its best two are 2 and 3, and 1 keeps
    0 (its only partner):

    >>> top_partners(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([5.0, 7.0, 7.0]),
    ...     np.array([1.0, 1.0, 1.0]), np.ones(3, bool), 4, 2).tolist()
    [2, 3, 4, 8, 12]
    """
    if k <= 0 or lo.size == 0:
        return np.zeros(0, np.int64)
    size = int(min(2 * int(np.count_nonzero(valid)), n * k))
    out = np.empty(size, np.int64)
    w = _top_partners(
        lo.astype(np.int64, copy=False),
        hi.astype(np.int64, copy=False),
        v_lh.astype(np.float64, copy=False),
        v_hl.astype(np.float64, copy=False),
        valid.astype(np.bool_, copy=False),
        int(n),
        int(k),
        out,
    )
    return out[:w]


def warm() -> None:
    """Compile (or load from the cache) the kernel of this module on a tiny input."""
    one = np.ones(1)
    top_partners(np.zeros(1, np.int64), np.ones(1, np.int64), one, one, np.ones(1, bool), 2, 1)

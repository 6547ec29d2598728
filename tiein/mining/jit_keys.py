"""Compiled kernels (numba, :func:`tiein.jit.compiled`) over sorted keys and lists: where keys
are (:func:`positions`), directed pair keys in their unordered form (:func:`unordered_keys`), and
the baskets two products share (:func:`pair_baskets`), the summed weights of the baskets holding
given pairs (:func:`weighted_hits`). The pair counter itself is :mod:`tiein.mining.jit`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tiein.jit import compiled
from tiein.mining.jit import _chunk, group_lines, in_regions
from tiein.mining.kernels import Pool, Serial


@compiled
def _pair_baskets(
    k_lo: int, k_hi: int, ai: Any, bi: Any, ptr: Any, baskets: Any, out_pair: Any, out_basket: Any
) -> int:  # pragma: no cover - compiled
    w = 0
    for k in range(k_lo, k_hi):
        x0, x1, y0, y1 = ptr[ai[k]], ptr[ai[k] + 1], ptr[bi[k]], ptr[bi[k] + 1]
        if x1 - x0 > y1 - y0:  # walk the shorter list, gallop along the longer
            x0, x1, y0, y1 = y0, y1, x0, x1
        y = y0
        for i in range(x0, x1):
            if y >= y1:
                break
            v = baskets[i]
            if baskets[y] < v:  # the first basket >= v after y: doubling steps, then halving
                step = 1
                while y + step < y1 and baskets[y + step] < v:
                    step <<= 1
                lo, hi = y + (step >> 1) + 1, min(y + step, y1)
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if baskets[mid] < v:
                        lo = mid + 1
                    else:
                        hi = mid
                y = lo
            if y < y1 and baskets[y] == v:
                out_pair[w] = k
                out_basket[w] = v
                w += 1
                y += 1
    return w


def pair_baskets(
    ai: np.ndarray, bi: np.ndarray, ptr: np.ndarray, baskets: np.ndarray, pool: Pool
) -> tuple[np.ndarray, np.ndarray]:
    """(pair k, basket) for every basket holding both products ``ai[k]`` and ``bi[k]``, sorted
    by pair then basket: the sorted basket lists of the two ends intersected (the shorter one
    walked, the longer galloped through). Product p's baskets are ``baskets[ptr[p]:ptr[p + 1]]``
    (sorted, distinct). int32 where the numbers fit, else int64.

    >>> ptr, baskets = np.array([0, 3, 5, 6]), np.array([0, 2, 7, 2, 7, 1])
    >>> [x.tolist() for x in pair_baskets(np.array([0, 0]), np.array([1, 2]), ptr, baskets, Serial())]
    [[0, 0], [2, 7]]
    """
    n = np.diff(ptr)
    room = np.minimum(n[ai], n[bi]) if ai.size else np.zeros(0, np.int64)
    cum = np.concatenate(([0], np.cumsum(room)))
    step = _chunk(int(cum[-1]))
    cuts = np.searchsorted(cum, np.arange(step, int(cum[-1]), step), side="left")
    edges = np.unique(np.concatenate(([0], cuts, [ai.size])))
    small = ai.size < 2**31 and (baskets.size == 0 or int(baskets.max()) < 2**31)
    dtype = np.int32 if small else np.int64
    args = [np.ascontiguousarray(x, dtype) for x in (ai, bi, baskets)]
    ptr64 = np.ascontiguousarray(ptr, np.int64)

    def run(k: int, out: tuple[np.ndarray, ...]) -> int:
        lo, hi = int(edges[k]), int(edges[k + 1])
        return int(_pair_baskets(lo, hi, args[0], args[1], ptr64, args[2], out[0], out[1]))

    pair, basket = in_regions(cum[edges], (dtype, dtype), run, pool)
    return pair, basket


@compiled
def _unordered(
    keys: Any, counts: Any, shift: int, n_items: int, out_keys: Any, out_counts: Any
) -> None:  # pragma: no cover
    mask = (np.uint64(1) << np.uint64(shift)) - np.uint64(1)
    sh = np.uint64(shift)
    one = np.uint64(1)
    # the b -> a entries (a > b) bucketed by b, in order of a within each: sorted by (b, a)
    head = np.zeros(n_items + 1, np.int64)
    for k in keys:
        a, b = k >> sh, k & mask
        if a > b:
            head[b + one] += 1
    for i in range(n_items):
        head[i + 1] += head[i]
    rk = np.empty(head[n_items], np.uint64)
    rc = np.empty(head[n_items], np.int64)
    fill = head[:-1].copy()
    for i in range(keys.size):
        a, b = keys[i] >> sh, keys[i] & mask
        if a > b:
            rk[fill[b]] = (((b << sh) | a) << one) | one
            rc[fill[b]] = counts[i]
            fill[b] += 1
    # merged with the a -> b entries (a < b), already in order
    w, r = 0, 0
    for i in range(keys.size):
        a, b = keys[i] >> sh, keys[i] & mask
        if a > b:
            continue
        key = ((a << sh) | b) << one
        while r < rk.size and rk[r] < key:
            out_keys[w] = rk[r]
            out_counts[w] = rc[r]
            w += 1
            r += 1
        out_keys[w] = key
        out_counts[w] = counts[i]
        w += 1
    while r < rk.size:
        out_keys[w] = rk[r]
        out_counts[w] = rc[r]
        w += 1
        r += 1


def unordered_keys(
    keys: np.ndarray, counts: np.ndarray, shift: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Directed pair keys ``a << shift | b`` (sorted, a != b) as keys of the unordered pair with
    the direction, ``(min << shift | max) << 1 | (a > b)``, sorted, with their counts: the
    b -> a entries bucketed by b (a counting sort), merged with the a -> b ones. No sort.

    (0, 1) five times, (0, 2) six, (1, 0) seven, (1, 2) eight:

    >>> k, c = unordered_keys(np.array([1, 2, 4, 6], np.uint64), np.array([5, 6, 7, 8]), 2, 3)
    >>> k.tolist(), c.tolist()
    ([2, 3, 4, 12], [5, 7, 6, 8])
    """
    out_k = np.empty(keys.size, np.uint64)
    out_c = np.empty(keys.size, np.int64)
    _unordered(
        np.ascontiguousarray(keys, np.uint64),
        np.ascontiguousarray(counts, np.int64),
        shift,
        n_items,
        out_k,
        out_c,
    )
    return out_k, out_c


@compiled
def _bucket_heads(keys: Any, shift: int, n_buckets: int) -> Any:  # pragma: no cover - compiled
    heads = np.empty(n_buckets + 1, np.int64)  # heads[b]: the first key in bucket b or after
    b = 0
    for i in range(keys.size):  # the keys are sorted: one pass, writes in order
        top = np.int64(keys[i] >> np.uint64(shift))
        while b <= top:
            heads[b] = i
            b += 1
    while b <= n_buckets:
        heads[b] = keys.size
        b += 1
    return heads


@compiled
def _positions(keys: Any, heads: Any, shift: int, query: Any, out: Any) -> None:  # pragma: no cover
    n_buckets = heads.size - 1
    for i in range(query.size):
        q = query[i]
        b = q >> np.uint64(shift)
        out[i] = -1
        if b >= n_buckets:
            continue
        lo, hi = heads[b], heads[b + 1]
        while lo < hi:  # binary search within the bucket (a handful of keys)
            mid = (lo + hi) >> 1
            if keys[mid] < q:
                lo = mid + 1
            else:
                hi = mid
        if lo < heads[b + 1] and keys[lo] == q:
            out[i] = lo


def positions(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The position of each of ``query`` in ``keys`` (sorted, distinct, non-negative integers),
    -1 where absent. The keys are bucketed by their top bits (about one key per bucket), so a
    query reads its bucket's bounds and a key or two: no hash table to build, no binary search
    over all the keys (millions of queries: cache misses).

    >>> positions(np.array([2, 5, 9, 40], np.uint64), np.array([9, 3, 40, 2, 41, 1 << 40], np.uint64)).tolist()
    [2, -1, 3, 0, -1, -1]
    """
    return positions_many(keys, [query])[0]


def found_values(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values`` at positions ``at`` from :func:`positions` (int64), 0 where a key was absent.

    >>> found_values(np.array([7, 8, 9]), np.array([2, -1, 0])).tolist()
    [9, 0, 7]
    """
    out = np.zeros(at.size, np.int64)
    hit = at >= 0
    out[hit] = values[at[hit]]
    return out


def positions_many(keys: np.ndarray, queries: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`positions` of several queries in the same keys (bucketed once)."""
    keys = np.ascontiguousarray(keys, np.uint64)
    outs = [np.full(q.size, -1, np.int64) for q in queries]
    if keys.size == 0:
        return outs
    span_bits = int(keys[-1]).bit_length()
    bucket_bits = max(int(keys.size).bit_length() - 1, 1)  # about two keys a bucket
    shift = max(span_bits - bucket_bits, 0)
    heads = _bucket_heads(keys, shift, (int(keys[-1]) >> shift) + 1)
    for q, out in zip(queries, outs, strict=True):
        _positions(keys, heads, shift, np.ascontiguousarray(q, np.uint64), out)
    return outs


@compiled
def _weighted_hits(
    head: Any, start: Any, end: Any, item: Any, weight: Any, a: Any, b: Any, slot: Any, out: Any
) -> None:  # pragma: no cover - compiled
    q = 0
    for x in range(head.size - 1):
        q0 = q
        while q < a.size and a[q] == x:  # x's asked partners: their slot + 1 in a flag row
            slot[b[q]] = q + 1
            q += 1
        if q == q0:
            continue
        for s in range(head[x], head[x + 1]):
            for p in range(start[s], end[s]):
                k = slot[item[p]]
                if k:
                    out[k - 1] += weight[p]
        for i in range(q0, q):
            slot[b[i]] = 0


def weighted_hits(
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    item: np.ndarray,
    weight: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    n_items: int,
) -> np.ndarray:
    """For each asked pair ``(a[k], b[k])`` (sorted by a, then b, distinct, ``a < b``; product
    codes below ``n_items``), the summed ``weight`` (int64, one per line) of the lines of ``b``
    among the partners of ``a``'s lines in ``index`` (:func:`tiein.mining.jit.group_lines` over
    lines sorted by basket, then product: the baskets holding both, each counted once). One pass
    over the lines of the asked pairs' first products, no pair expanded.

    >>> from tiein.mining.jit import group_lines
    >>> item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0])  # baskets 012, 02
    >>> weighted_hits(group_lines(item, rem, 3), item, np.array([5, 5, 5, 7, 7]), np.array([0, 1]),
    ...               np.array([2, 2]), 3).tolist()
    [12, 5]
    """
    out = np.zeros(a.size, np.int64)
    if a.size:
        head, start, end = index
        slot = np.zeros(n_items, np.int64)
        args = (np.ascontiguousarray(weight, np.int64), np.ascontiguousarray(a, np.int64))
        _weighted_hits(head, start, end, item, *args, np.ascontiguousarray(b, np.int64), slot, out)
    return out


def warm() -> None:
    """Compile (or load from the cache) the kernels of this module on a tiny input."""
    positions(np.array([1, 2], np.uint64), np.array([2], np.uint64))
    unordered_keys(np.array([1, 2], np.uint64), np.array([1, 1], np.int64), 1, 2)
    one = np.zeros(1, np.int64)
    pair_baskets(one, one + 1, np.array([0, 1, 2]), np.zeros(2, np.int64), Serial())
    item = np.array([0, 1], np.int32)
    weighted_hits(group_lines(item, np.array([1, 0]), 2), item, one + one, one, one + 1, 2)

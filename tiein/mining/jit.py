"""Compiled kernels (numba) for the loops numpy can only write with big temporaries.

Each kernel is a plain loop compiled to machine code (:func:`tiein.jit.compiled`) that releases
the GIL, so the mining thread pool runs them side by side. The typed wrappers below are what the
rest of tiein calls.

Pair counting over an inverted index. Rows (basket lines, first purchases) each hold a product
``a`` and a range of partner rows ``start:end`` (the rest of its basket; the purchases after it
within the window); :func:`group_lines` / :func:`group_ranges` index them by product.
:func:`range_pair_counts` then counts every pair (a, product of a partner row) the way the C
counting floor of bench/mining.py does: one product at a time, its partners counted in a dense
row and read back in order from a bitmap of the touched ones, so the keys come out sorted
with no sort and no temporary per pair instance. Unlike the floor it emits every pair, not only
the frequent ones (the mergeable counts of ``tiein update`` need them all), or the pairs of a
given set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, cast

import numpy as np

from tiein.jit import Scratch, compiled

# Pair instances per chunk of products (a chunk's output room is at most 16 bytes each).
CHUNK_PAIRS = 1 << 22

# Bit positions by de Bruijn multiplication: the lowest set bit ``x & -x`` of a 64-bit word,
# times _DE_BRUIJN, has a distinct top 6 bits for each position.
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_AT = np.zeros(64, np.int64)
for _i in range(64):
    _BIT_AT[((1 << _i) * int(_DE_BRUIJN) & (1 << 64) - 1) >> 58] = _i

Index = tuple[np.ndarray, np.ndarray, np.ndarray]


class Pool(Protocol):
    def map(self, fn: Callable[[int], Any], items: Iterable[int]) -> Iterator[Any]: ...


class Serial:
    """A one-thread stand-in for ThreadPoolExecutor."""

    def map(self, fn: Callable[[int], Any], items: Iterable[int]) -> Iterator[Any]:
        return map(fn, items)


def thread_pool(threads: int | None = None) -> AbstractContextManager[Pool]:
    """Threads for chunks of pairs (default ``min(4, CPUs)``; one: no pool)."""
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    return ThreadPoolExecutor(workers) if workers > 1 else nullcontext(Serial())


@compiled
def _group_lines(item: Any, rem: Any, n_items: int) -> tuple[Any, Any, Any]:  # pragma: no cover - compiled
    head = np.zeros(n_items + 1, np.int64)
    for j in range(item.size):
        if rem[j] > 0:
            head[item[j] + 1] += 1
    for a in range(n_items):
        head[a + 1] += head[a]
    fill = head[:-1].copy()
    start = np.empty(head[n_items], np.int64)
    end = np.empty(head[n_items], np.int64)
    for j in range(item.size):
        if rem[j] > 0:
            a = item[j]
            start[fill[a]] = j + 1
            end[fill[a]] = j + 1 + rem[j]
            fill[a] += 1
    return head, start, end


@compiled
def _group_ranges(item: Any, lo: Any, hi: Any, n_items: int) -> tuple[Any, Any, Any]:  # pragma: no cover
    head = np.zeros(n_items + 1, np.int64)
    for j in range(item.size):
        if hi[j] > lo[j]:
            head[item[j] + 1] += 1
    for a in range(n_items):
        head[a + 1] += head[a]
    fill = head[:-1].copy()
    start = np.empty(head[n_items], np.int64)
    end = np.empty(head[n_items], np.int64)
    for j in range(item.size):
        if hi[j] > lo[j]:
            a = item[j]
            start[fill[a]] = lo[j]
            end[fill[a]] = hi[j]
            fill[a] += 1
    return head, start, end


@compiled
def _pair_rows(
    a_lo: int,
    a_hi: int,
    head: Any,
    start: Any,
    end: Any,
    item: Any,
    shift: int,
    bit_at: Any,
    want: Any,
    filtered: bool,
    owner: Any,
    row: Any,
    bits: Any,
    words: Any,
    stamp: Any,
    out_keys: Any,
    out_counts: Any,
) -> int:  # pragma: no cover - compiled
    one = np.uint64(1)
    w = 0
    q = np.searchsorted(want, np.uint64(a_lo) << np.uint64(shift)) if filtered else 0
    distinct = owner.size > 0
    for a in range(a_lo, a_hi):
        w_lo, w_hi, n_words = bits.size, -1, 0
        for s in range(head[a], head[a + 1]):
            for p in range(start[s], end[s]):
                b = item[p]
                if b == a:  # the row itself (a product is in a basket, or first bought, once)
                    continue
                if distinct:  # each owner (customer) once per pair
                    o = owner[p] + 1
                    if stamp[b] == o:
                        continue
                    stamp[b] = o
                if row[b] == 0:  # first time: mark b in the bitmap
                    wi = b >> 6
                    if bits[wi] == 0:  # and its word among the touched ones
                        words[n_words] = wi
                        n_words += 1
                    bits[wi] |= one << np.uint64(b & 63)
                    w_lo = min(w_lo, wi)
                    w_hi = max(w_hi, wi)
                row[b] += 1
        base = np.uint64(a) << np.uint64(shift)
        span = w_hi + 1 - w_lo
        few = n_words * 8 < span  # few words touched: sort them rather than scan the span
        if few:
            words[:n_words].sort()
        for k in range(n_words if few else max(span, 0)):  # the partners in order: the set bits
            wi = words[k] if few else w_lo + k
            x = bits[wi]
            if x == 0:
                continue
            bits[wi] = 0
            while x:
                low = x & (~x + one)
                x ^= low
                b = (wi << 6) + bit_at[(low * _DE_BRUIJN) >> np.uint64(58)]
                key = base | np.uint64(b)
                c = row[b]
                row[b] = 0
                if distinct:
                    stamp[b] = 0
                if filtered:  # keys come in order: one pass along the wanted ones
                    while q < want.size and want[q] < key:
                        q += 1
                    if q == want.size or want[q] != key:
                        continue
                out_keys[w] = key
                out_counts[w] = c
                w += 1
    return w


def group_lines(item: np.ndarray, rem: np.ndarray, n_items: int) -> Index:
    """An inverted index of the lines with partners (``rem[j] > 0``: the products after line j
    in its basket), a counting sort by product: product a's lines are the entries
    ``head[a]:head[a + 1]``, each giving the line range ``start:end`` of its partners.
    ``item``: int32 product codes (other types are converted).

    >>> [x.tolist() for x in group_lines(np.array([2, 0, 2, 1]), np.array([3, 2, 1, 0]), 3)]
    [[0, 1, 1, 3], [2, 1, 3], [4, 4, 4]]
    """
    head, start, end = _group_lines(
        np.ascontiguousarray(item, np.int32), np.ascontiguousarray(rem, np.int64), n_items
    )
    return cast(np.ndarray, head), cast(np.ndarray, start), cast(np.ndarray, end)


def group_ranges(item: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_items: int) -> Index:
    """:func:`group_lines` of rows whose partners are the rows ``lo[j]:hi[j]`` (rows with none
    left out), in row order within each product.

    >>> [x.tolist() for x in group_ranges(np.array([1, 0, 1]), np.array([1, 0, 0]), np.array([3, 3, 2]), 2)]
    [[0, 1, 3], [0, 1, 0], [3, 3, 2]]
    """
    head, start, end = _group_ranges(
        np.ascontiguousarray(item, np.int32),
        np.ascontiguousarray(lo, np.int64),
        np.ascontiguousarray(hi, np.int64),
        n_items,
    )
    return cast(np.ndarray, head), cast(np.ndarray, start), cast(np.ndarray, end)


def pair_counts(
    a_lo: int,
    a_hi: int,
    index: Index,
    item: np.ndarray,
    shift: int,
    out: tuple[np.ndarray, np.ndarray],
    want: np.ndarray | None = None,
    owner: np.ndarray | None = None,
) -> int:
    """Writes the sorted keys ``a << shift | b`` and counts of every pair whose first product
    ``a`` is in ``[a_lo, a_hi)`` to the start of ``out`` (keys uint64, counts int64; room for
    :func:`pair_bound` of them) and returns how many. ``index``: :func:`group_lines` or
    :func:`group_ranges` over rows whose products are ``item`` (int32 codes); a partner row
    holding ``a`` itself is not a pair. With ``want`` (sorted uint64 keys), only those pairs.
    With ``owner`` (int64, one per row: the customer), a pair counts distinct owners.

    Baskets [0, 1, 2] and [0, 2]: the pairs (0, 1) once, (0, 2) twice, (1, 2) once.

    >>> item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0])
    >>> index = group_lines(item, rem, 3)
    >>> keys, counts = np.empty(pair_bound(0, 3, index, 3), np.uint64), np.empty(5, np.int64)
    >>> w = pair_counts(0, 3, index, item, 2, (keys, counts))
    >>> keys[:w].tolist(), counts[:w].tolist()
    ([1, 2, 6], [1, 2, 1])
    >>> w = pair_counts(0, 3, index, item, 2, (keys, counts), want=np.array([2, 5], np.uint64))
    >>> keys[:w].tolist(), counts[:w].tolist()
    ([2], [2])
    >>> w = pair_counts(0, 3, index, item, 2, (keys, counts), owner=np.zeros(5, np.int64))  # one owner
    >>> keys[:w].tolist(), counts[:w].tolist()
    ([1, 2, 6], [1, 1, 1])
    """
    head, start, end = index
    n_items = head.size - 1
    row = np.zeros(n_items, np.int32)
    bits = np.zeros((n_items + 63) >> 6, np.uint64)
    words = np.empty(bits.size, np.int64)
    keys = want if want is not None else np.zeros(0, np.uint64)
    owners = np.ascontiguousarray(owner, np.int64) if owner is not None else np.zeros(0, np.int64)
    stamp = np.zeros(n_items if owner is not None else 0, np.int64)
    args = (keys, want is not None, owners, row, bits, words, stamp, out[0], out[1])
    return int(_pair_rows(a_lo, a_hi, head, start, end, item, shift, _BIT_AT, *args))


def pair_bound(a_lo: int, a_hi: int, index: Index, n_items: int) -> int:
    """At most how many pairs :func:`pair_counts` finds for ``[a_lo, a_hi)``: for each
    product, its pair instances, and no more than the other products."""
    return int(np.minimum(_instances(index, n_items)[a_lo:a_hi], max(n_items - 1, 1)).sum())


def _instances(index: Index, n_items: int) -> np.ndarray:
    """The pair instances of each product of ``index`` (int64; compiled: one ordered pass)."""
    head, start, end = index
    return cast(np.ndarray, _per_product(head, start, end, n_items))


@compiled
def _per_product(head: Any, start: Any, end: Any, n_items: int) -> Any:  # pragma: no cover - compiled
    per = np.zeros(n_items, np.int64)
    for a in range(min(n_items, head.size - 1)):
        for s in range(head[a], head[a + 1]):
            per[a] += end[s] - start[s]
    return per


def range_pair_counts(
    index: Index,
    item: np.ndarray,
    n_items: int,
    shift: int,
    pool: Pool,
    tick: Callable[[int, int], None] | None = None,
    want: np.ndarray | None = None,
    owner: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``a << shift | b`` and counts of every pair of ``index`` (:func:`pair_counts`;
    with ``want``, only those; with ``owner``, distinct owners), counted in chunks of
    consecutive products ``a`` of about :data:`CHUNK_PAIRS` pair instances, the chunks side by
    side on ``pool`` (:func:`in_regions`). ``tick(done, total)`` after each chunk."""
    item = np.ascontiguousarray(item, np.int32)
    per = _instances(index, n_items)
    cum = np.cumsum(per)
    total = int(cum[-1]) if cum.size else 0
    if total == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    step = _chunk(total)
    bounds = np.searchsorted(cum, np.arange(step, total, step), side="left") + 1
    edges = np.unique(np.concatenate(([0], bounds, [n_items])))
    room = np.concatenate(([0], np.cumsum(np.minimum(per, max(n_items - 1, 1)))))[edges]

    def count(k: int, out: tuple[np.ndarray, ...]) -> int:
        return pair_counts(
            int(edges[k]), int(edges[k + 1]), index, item, shift, (out[0], out[1]), want, owner
        )

    keys, counts = in_regions(room, (np.uint64, np.int64), count, pool, tick)
    return keys, counts


def _chunk(total: int) -> int:
    """Pair instances per chunk: :data:`CHUNK_PAIRS`, or less for small inputs so that there are
    at least 16 chunks for the threads to share evenly."""
    return max(min(CHUNK_PAIRS, total // 16), 1 << 14, 1) if CHUNK_PAIRS > 1 << 14 else CHUNK_PAIRS


def in_regions(
    at: np.ndarray,
    dtypes: tuple[type[np.generic], ...],
    run: Callable[[int, tuple[np.ndarray, ...]], int],
    pool: Pool,
    tick: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Output columns (one per ``dtypes``) of chunks that each write an unknown number of rows,
    at most ``at[k + 1] - at[k]`` for chunk k: ``run(k, regions)`` writes its rows to the start
    of its regions of the columns and returns how many. The chunks run side by side on
    ``pool``, each in a region of its own; the regions are closed up in order after and the
    pages past the last row handed back (:class:`tiein.jit.Scratch`: pages never written cost
    no memory). ``tick(done, total)`` after each chunk."""
    cols = [Scratch(int(at[-1]), d) for d in dtypes]

    def one(k: int) -> int:
        region = slice(int(at[k]), int(at[k + 1]))
        return run(k, tuple(c.array[region] for c in cols))

    w = 0
    for k, found in enumerate(pool.map(one, range(at.size - 1))):
        if w != at[k]:  # close the gap (moving down: numpy copies overlapping ranges safely)
            for c in cols:
                c.array[w : w + found] = c.array[at[k] : at[k] + found]
        w += found
        if tick is not None:
            tick(k + 1, at.size - 1)
    return [c.keep(w) for c in cols]


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


def warm() -> None:
    """Compile (or load from the cache) the kernels of this module on a tiny input."""

    item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0], np.int64)
    range_pair_counts(group_lines(item, rem, 3), item, 3, 2, Serial())
    index = group_ranges(item, np.zeros(5, np.int64), np.full(5, 5), 3)
    range_pair_counts(index, item, 3, 2, Serial(), want=np.array([1], np.uint64))
    range_pair_counts(index, item, 3, 2, Serial(), owner=np.zeros(5, np.int64))
    positions(np.array([1, 2], np.uint64), np.array([2], np.uint64))
    unordered_keys(np.array([1, 2], np.uint64), np.array([1, 1], np.int64), 1, 2)
    pair_baskets(
        np.zeros(1, np.int64), np.ones(1, np.int64), np.array([0, 1, 2]), np.zeros(2, np.int64), Serial()
    )

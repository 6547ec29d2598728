"""Compiled kernels (numba) for the loops numpy can only write with big temporaries.

Each kernel is a plain loop compiled to machine code (:func:`tiein.jit.compiled`) that releases
the GIL, so the mining thread pool runs them side by side. The typed wrappers below are what the
rest of tiein calls.

Pair counting over an inverted index. Rows (basket lines, first purchases) each hold a product
``a`` and a range of partner rows ``start:end`` (the rest of its basket; the purchases after it
within the window); :func:`group_lines` / :func:`group_ranges` index them by product.
:func:`range_pair_counts` then counts every pair (a, product of a partner row) the way the C
counting floor of bench/mining.py does: one product at a time, its partners counted in a dense
row and read back in order from a bitmap of the touched ones (and a bitmap of its touched
words, so neither a sort of the words nor a scan of the whole bitmap: 1M lines 0.127 -> 0.091 s
on one thread), so the keys come out sorted with no sort and no temporary per pair instance.
Unlike the floor it emits every pair, not only the frequent ones (the mergeable counts of
``tiein update`` need them all), or the pairs of a given set. :func:`frequent_pair_counts` is
the floor's job: only the pairs of at least a count (plus a given set) written, the touched
partners read back in no order and the kept ones sorted (``mine_pairs`` without its unfiltered
counts, as the ranker's fit and bench/mining.py call it: 1M lines 0.10 -> 0.05 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from tiein.jit import Scratch, compiled
from tiein.mining.kernels import Pool, Serial

# Pair instances per chunk of products (a chunk's output room is at most 16 bytes each).
CHUNK_PAIRS = 1 << 22

# Bit positions by de Bruijn multiplication: the lowest set bit ``x & -x`` of a 64-bit word,
# times _DE_BRUIJN, has a distinct top 6 bits for each position.
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_AT = np.zeros(64, np.int64)
for _i in range(64):
    _BIT_AT[((1 << _i) * int(_DE_BRUIJN) & (1 << 64) - 1) >> 58] = _i

Index = tuple[np.ndarray, np.ndarray, np.ndarray]


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
    summary: Any,
    stamp: Any,
    out_keys: Any,
    out_counts: Any,
) -> int:  # pragma: no cover - compiled
    one = np.uint64(1)
    w = 0
    q = np.searchsorted(want, np.uint64(a_lo) << np.uint64(shift)) if filtered else 0
    distinct = owner.size > 0
    for a in range(a_lo, a_hi):
        s_lo, s_hi = summary.size, -1
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
                    if bits[wi] == 0:  # and its word in the bitmap of touched words
                        si = wi >> 6
                        summary[si] |= one << np.uint64(wi & 63)
                        s_lo = min(s_lo, si)
                        s_hi = max(s_hi, si)
                    bits[wi] |= one << np.uint64(b & 63)
                row[b] += 1
        base = np.uint64(a) << np.uint64(shift)
        for si in range(s_lo, s_hi + 1):  # the partners in order: the touched words' set bits
            y = summary[si]
            if y == 0:
                continue
            summary[si] = 0
            while y:
                low_word = y & (~y + one)
                y ^= low_word
                wi = (si << 6) + bit_at[(low_word * _DE_BRUIJN) >> np.uint64(58)]
                x = bits[wi]
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


@compiled
def _frequent_rows(
    a_lo: int,
    a_hi: int,
    head: Any,
    start: Any,
    end: Any,
    item: Any,
    shift: int,
    at_least: int,
    want: Any,
    row: Any,
    flag: Any,
    touched: Any,
    out_keys: Any,
    out_counts: Any,
) -> tuple[int, int]:  # pragma: no cover - compiled
    mask = np.uint64((1 << shift) - 1)
    w = 0
    seen = 0
    q = np.searchsorted(want, np.uint64(a_lo) << np.uint64(shift))
    for a in range(a_lo, a_hi):
        base = np.uint64(a) << np.uint64(shift)
        q0 = q
        while q < want.size and want[q] >> np.uint64(shift) == a:  # a's wanted partners
            if (want[q] & mask) < flag.size:
                flag[want[q] & mask] = 1
            q += 1
        nt = 0
        for s in range(head[a], head[a + 1]):
            for p in range(start[s], end[s]):
                b = item[p]
                if b == a:  # the row itself
                    continue
                if row[b] == 0:
                    touched[nt] = b
                    nt += 1
                row[b] += 1
        seen += nt
        w0 = w
        for t in range(nt):  # touched in no order: the kept ones are sorted after
            b = touched[t]
            if row[b] >= at_least or flag[b]:
                out_keys[w] = base | np.uint64(b)
                w += 1
            else:
                row[b] = 0
        if w - w0 > 1:
            out_keys[w0:w].sort()
        for i in range(w0, w):
            b = out_keys[i] & mask
            out_counts[i] = row[b]
            row[b] = 0
        for i in range(q0, q):
            if (want[i] & mask) < flag.size:
                flag[want[i] & mask] = 0
    return w, seen


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
    summary = np.zeros((bits.size + 63) >> 6, np.uint64)  # which words of ``bits`` are touched
    keys = want if want is not None else np.zeros(0, np.uint64)
    owners = np.ascontiguousarray(owner, np.int64) if owner is not None else np.zeros(0, np.int64)
    stamp = np.zeros(n_items if owner is not None else 0, np.int64)
    args = (keys, want is not None, owners, row, bits, summary, stamp, out[0], out[1])
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
    edges = _chunk_edges(per, n_items)
    if edges is None:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    room = np.concatenate(([0], np.cumsum(np.minimum(per, max(n_items - 1, 1)))))[edges]

    def count(k: int, out: tuple[np.ndarray, ...]) -> int:
        return pair_counts(
            int(edges[k]), int(edges[k + 1]), index, item, shift, (out[0], out[1]), want, owner
        )

    keys, counts = in_regions(room, (np.uint64, np.int64), count, pool, tick)
    return keys, counts


def frequent_pair_counts(
    index: Index,
    item: np.ndarray,
    n_items: int,
    shift: int,
    pool: Pool,
    at_least: int,
    tick: Callable[[int, int], None] | None = None,
    want: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`range_pair_counts` of only the pairs counted at least ``at_least`` times and of
    the ``want`` keys (sorted uint64), and how many distinct pairs there were in all. The rare
    pairs are counted, never written: at 1M lines 125k of 3.6M pairs are frequent (5 or more),
    at 40M 2.4M of 66M (~1 GB less output). Each product's partners are read back in no order
    (a list of the touched ones, as the C floor of bench/mining.py does) and only the kept
    ones sorted.

    >>> item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0])
    >>> index = group_lines(item, rem, 3)
    >>> keys, counts, seen = frequent_pair_counts(index, item, 3, 2, Serial(), 2)
    >>> keys.tolist(), counts.tolist(), seen
    ([2], [2], 3)
    >>> keys, counts, seen = frequent_pair_counts(index, item, 3, 2, Serial(), 2, want=np.array([6], np.uint64))
    >>> keys.tolist(), counts.tolist()
    ([2, 6], [2, 1])
    """
    at_least = max(int(at_least), 1)
    wanted = np.zeros(0, np.uint64) if want is None else np.ascontiguousarray(want, np.uint64)
    item = np.ascontiguousarray(item, np.int32)
    per = _instances(index, n_items)
    edges = _chunk_edges(per, n_items)
    if edges is None:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), 0
    per_want = np.bincount((wanted >> np.uint64(shift)).astype(np.int64), minlength=n_items)[:n_items]
    room = np.concatenate(([0], np.cumsum(np.minimum(per // at_least + per_want, max(n_items - 1, 1)))))
    seen = np.zeros(edges.size - 1, np.int64)
    head, start, end = index

    def count(k: int, out: tuple[np.ndarray, ...]) -> int:
        row, flag, touched = (
            np.zeros(n_items, np.int32),
            np.zeros(n_items, np.uint8),
            np.empty(n_items, np.int32),
        )
        lo, hi = int(edges[k]), int(edges[k + 1])
        args = (item, shift, at_least, wanted, row, flag, touched, out[0], out[1])
        found, seen[k] = _frequent_rows(lo, hi, head, start, end, *args)
        return int(found)

    keys, counts = in_regions(room[edges], (np.uint64, np.int64), count, pool, tick)
    return keys, counts, int(seen.sum())


def _chunk_edges(per: np.ndarray, n_items: int) -> np.ndarray | None:
    """Product bounds of chunks of about :func:`_chunk` pair instances (``per``: each product's),
    or None when there are no pair instances."""
    cum = np.cumsum(per)
    total = int(cum[-1]) if cum.size else 0
    if total == 0:
        return None
    step = _chunk(total)
    bounds = np.searchsorted(cum, np.arange(step, total, step), side="left") + 1
    return np.unique(np.concatenate(([0], bounds, [n_items])))


def _chunk(total: int) -> int:
    """Pair instances per chunk: :data:`CHUNK_PAIRS`, or less for small inputs so that there are
    at least 16 chunks for the threads to share evenly."""
    return max(min(CHUNK_PAIRS, total // 16), 1 << 14) if CHUNK_PAIRS > 1 << 14 else CHUNK_PAIRS


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


def warm() -> None:
    """Compile (or load from the cache) the kernels of this module on a tiny input."""
    item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0], np.int64)
    range_pair_counts(group_lines(item, rem, 3), item, 3, 2, Serial())
    index = group_ranges(item, np.zeros(5, np.int64), np.full(5, 5), 3)
    range_pair_counts(index, item, 3, 2, Serial(), want=np.array([1], np.uint64))
    range_pair_counts(index, item, 3, 2, Serial(), owner=np.zeros(5, np.int64))
    frequent_pair_counts(index, item, 3, 2, Serial(), 2, want=np.array([1], np.uint64))

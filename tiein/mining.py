"""Co-purchase / co-view pair statistics (the ``PAIR_STATS`` table).

:func:`mine_pairs` turns basket lines (``ORDERS``, or ``VIEWS`` with ``basket_col="session_id"``)
into one row per unordered product pair ``a < b`` (string order) with

- ``n_ab``: baskets holding both, ``n_a`` / ``n_b``: baskets holding each, ``n``: baskets;
- ``support = n_ab / n``, ``conf_ab = n_ab / n_a``, ``conf_ba = n_ab / n_b``,
  ``lift = n_ab * n / (n_a * n_b)``;
- ``after_ab``: distinct customers who bought ``a`` and then, at a strictly later time no more
  than ``after_window_days`` later (edge included), bought ``b``; ``after_ba`` the other way.

How it is computed (columnar, no Python loop over lines or pairs):

1. ids are integer-encoded with Arrow; product codes follow the string order of the ids, so
   ``code(a) < code(b)`` exactly when ``a < b`` and the output comes out sorted by ``(a, b)``;
2. duplicate ``(basket, product)`` lines collapse (one sort of 64-bit keys);
3. baskets with more than ``max_basket`` distinct products ("giant": B2B orders, bots,
   crawler sessions) are dropped before ANY counting: they count neither in ``n`` nor in
   ``n_a`` nor in the after counts, so confidence and lift describe the baskets that were
   mined. The report says how many were dropped;
4. pair instances are generated in chunks by the smaller product's code (the chunks hold
   disjoint key ranges, so nothing needs merging) by a vectorised "offset" expansion into
   packed keys ``a << B | b`` (32-bit when two codes fit), then counted either by ``bincount``
   when the chunk's key range is dense (small catalogues) or by sorting (numpy's SIMD sort)
   and run-length encoding. Chunks run on a thread pool (numpy releases the GIL);
5. "bought after" pairs come from each customer's timeline of distinct
   ``(time, product)`` events: every event is paired with the events of the same customer in
   ``(t, t + window]``, the triples ``(customer, a, b)`` are made distinct, then counted.
   Customers with more than ``max_customer_items`` distinct products, or whose timeline would
   produce more than ``max_customer_items ** 2`` pair instances, are skipped (wholesalers) and
   counted in the report. The same timelines give each product's :data:`~tiein.model.TIMELINE`
   counts (``MinedPairs.timeline``: customers, returning customers, customers who bought it as a
   later purchase), which "next purchase" relations need for their confidence and lift.

A pair is kept when ``n_ab``, ``after_ab`` or ``after_ba`` reaches ``min_count`` (products
bought in sequence may never share a basket), so kept rows may carry ``n_ab == 0``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, InputError
from tiein.model import PAIR_STATS, TIMELINE

__all__ = ["MinedPairs", "PairCounts", "count_pairs", "mine_pairs"]

Progress = Callable[[str, int, int], None]


class _Pool(Protocol):
    def map(self, fn: Callable[[int], Any], items: Iterable[int]) -> Iterator[Any]: ...


class _Serial:
    """A one-thread stand-in for ThreadPoolExecutor."""

    def map(self, fn: Callable[[int], Any], items: Iterable[int]) -> Iterator[Any]:
        return map(fn, items)


# Pair instances generated per chunk: temporaries stay near 8 MB (cache-friendly, and enough
# chunks to keep every thread busy; 1 << 20 measured fastest on Online Retail and synthetic).
CHUNK_PAIRS = 1 << 20
# A chunk whose key range is at most this many times its pair instances is counted with
# bincount (one pass) instead of a sort.
DENSE_FACTOR = 4
_DAY_US = 86_400_000_000
# Bits available for packed sort keys (int64 keys must stay non-negative).
_KEY_BITS = 63


@dataclass
class MinedPairs:
    """The result of :func:`mine_pairs`: ``pairs`` follows ``PAIR_STATS``; ``report`` holds counts
    (see :func:`mine_pairs`) and ``seconds`` per step; ``timeline`` follows ``TIMELINE`` (one row
    per product bought by a known customer at a known time; empty without customers/times)."""

    pairs: pa.Table
    report: dict[str, Any] = field(default_factory=dict)
    timeline: pa.Table = field(default_factory=TIMELINE.empty_table)


def mine_pairs(
    baskets: pa.Table,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    customer_col: str | None = "customer_id",
    ts_col: str | None = "ts",
    min_count: int = 2,
    max_basket: int = 500,
    after_window_days: int | None = 90,
    max_customer_items: int = 1000,
    threads: int | None = None,
    progress: Progress | None = None,
) -> MinedPairs:
    """Count co-occurring and bought-after product pairs in ``baskets``.

    ``baskets`` is an ``ORDERS`` table (or ``VIEWS`` with ``basket_col="session_id"`` and
    ``customer_col=None``); only the named columns are read. Null basket or product ids are an
    :class:`InputError`; a null customer (guest) or time only removes that line from the after
    counts. ``after_window_days=None`` means no window (any later time). ``threads`` sets the
    worker threads that count chunks (default ``min(4, CPUs)``; the numpy kernels release the GIL).
    ``progress`` is called as
    ``progress(step, done, total)`` after each unit of work (steps: "encode", "baskets",
    "pairs", "after", "assemble"; units of "pairs" and "after" are chunks).

    ``report`` keys: lines, duplicate_lines (lines collapsed into an earlier identical
    (basket, product) line), baskets (distinct basket ids), giant_baskets, giant_lines (their
    distinct lines), n (baskets counted = baskets - giant_baskets), items, pair_instances, pairs_co (distinct pairs with n_ab >= 1), after_events,
    after_customers, customers_skipped, after_pair_instances, pairs_after (distinct directed
    after pairs), returning_customers (customers with an order within the window after an
    earlier one: the base of "next" lifts), pairs (rows kept), min_count, max_basket, after_window_days,
    max_customer_items, seconds ({step: seconds}).

    >>> t = pa.table({"order_id": ["1", "1", "2", "2", "3"], "product_id": ["x", "y", "x", "y", "x"]})
    >>> r = mine_pairs(t, customer_col=None, ts_col=None)
    >>> r.pairs.select(["a", "b", "n_ab", "n_a", "n_b", "n"]).to_pylist()
    [{'a': 'x', 'b': 'y', 'n_ab': 2, 'n_a': 3, 'n_b': 2, 'n': 3}]
    """
    if min_count < 1:
        raise ConfigError(f"min_count must be at least 1, got {min_count}")
    if max_basket < 2:
        raise ConfigError(f"max_basket must be at least 2, got {max_basket}")
    if after_window_days is not None and after_window_days < 0:
        raise ConfigError(f"after_window_days must be >= 0 or None, got {after_window_days}")
    if max_customer_items < 2:
        raise ConfigError(f"max_customer_items must be at least 2, got {max_customer_items}")
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext(_Serial()) as pool:
        return _mine(
            baskets, basket_col, item_col, customer_col, ts_col, min_count, max_basket,
            after_window_days, max_customer_items, pool, progress,
        )  # fmt: skip


def _mine(
    baskets: pa.Table,
    basket_col: str,
    item_col: str,
    customer_col: str | None,
    ts_col: str | None,
    min_count: int,
    max_basket: int,
    after_window_days: int | None,
    max_customer_items: int,
    pool: _Pool,
    progress: Progress | None,
) -> MinedPairs:
    """:func:`mine_pairs` once the options are checked; ``pool`` runs the chunks."""
    report: dict[str, Any] = {
        "min_count": min_count,
        "max_basket": max_basket,
        "after_window_days": after_window_days,
        "max_customer_items": max_customer_items,
    }
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def tick(step: str, done: int = 1, total: int = 1) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(seconds.get(step, 0.0) + now - clock, 4)
        clock = now
        if progress is not None:
            progress(step, done, total)

    # 1. encode ---------------------------------------------------------------------------
    basket_ids = _id_column(baskets, basket_col)
    item_ids = _id_column(baskets, item_col)
    report["lines"] = baskets.num_rows
    item_codes, names = _encode_sorted(item_ids)
    basket_codes = _encode(basket_ids)
    n_items = len(names)
    n_baskets_in = int(basket_codes.max()) + 1 if basket_codes.size else 0
    want_after = customer_col is not None and ts_col is not None
    if want_after:
        assert customer_col is not None and ts_col is not None
        cust_codes = _encode_nullable(_id_column(baskets, customer_col, nullable=True))
        ts_us = _ts_column(baskets, ts_col)
    tick("encode")

    # 2. distinct (basket, item) lines, giant baskets ----------------------------------------
    line_b, line_i = _distinct_rows([basket_codes, item_codes], [n_baskets_in, n_items])
    report["duplicate_lines"] = int(basket_codes.size - line_b.size)
    starts = np.flatnonzero(_change(line_b)) if line_b.size else np.zeros(0, np.int64)
    sizes = np.diff(np.append(starts, line_b.size))
    giant = sizes > max_basket
    report["baskets"] = n_baskets_in
    report["giant_baskets"] = int(giant.sum())
    report["giant_lines"] = int(sizes[giant].sum())
    if giant.any():
        keep = np.repeat(~giant, sizes)
        line_b, line_i = line_b[keep], line_i[keep]
        starts = np.flatnonzero(_change(line_b)) if line_b.size else np.zeros(0, np.int64)
        sizes = sizes[~giant]
    n = int(sizes.size)
    report["n"] = n
    item_n = np.bincount(line_i, minlength=n_items)
    report["items"] = int(np.count_nonzero(item_n))
    tick("baskets")

    # 3. co-basket pair counts ----------------------------------------------------------------
    # rem[i]: products after line i in its basket (lines sorted by basket, then product code).
    rem = np.repeat(starts + sizes, sizes) - np.arange(line_b.size, dtype=np.int64) - 1
    co_keys, co_counts, instances = _co_counts(line_i.astype(np.uint64), rem, n_items, pool, tick)
    report["pair_instances"] = instances
    report["pairs_co"] = int(co_keys.size)

    # 4. bought-after counts ----------------------------------------------------------------
    if want_after:
        # basket codes are dense, so ``giant`` is indexed by basket code
        ok = (cust_codes >= 0) & (ts_us != np.iinfo(np.int64).min)
        if report["giant_baskets"]:
            ok &= ~giant[basket_codes]
        af_keys, af_counts, tl = _after_counts(
            cust_codes[ok],
            ts_us[ok],
            item_codes[ok],
            n_items,
            after_window_days,
            max_customer_items,
            report,
            pool,
            tick,
        )
    else:
        af_keys = np.zeros(0, np.uint64)
        af_counts = np.zeros(0, np.int64)
        tl = None
        report.update(
            after_events=0, after_customers=0, customers_skipped=0, after_pair_instances=0, returning_customers=0
        )
        tick("after")
    report["pairs_after"] = int(af_keys.size)

    # 5. assemble -------------------------------------------------------------------------
    table = _assemble(co_keys, co_counts, af_keys, af_counts, item_n, n, n_items, names, min_count)
    report["pairs"] = table.num_rows
    timeline = _timeline_table(tl, names)
    tick("assemble")
    report["seconds"] = seconds
    return MinedPairs(pairs=table, report=report, timeline=timeline)


def _timeline_table(tl: tuple[np.ndarray, np.ndarray, np.ndarray] | None, names: pa.Array) -> pa.Table:
    """The TIMELINE rows of the products some known customer bought (sorted by product id)."""
    if tl is None:
        return TIMELINE.empty_table()
    customers, returning, later = tl
    idx = np.flatnonzero(customers)
    return pa.table(
        [names.take(pa.array(idx)), pa.array(customers[idx]), pa.array(returning[idx]), pa.array(later[idx])],
        schema=TIMELINE,
    )


# --- input --------------------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise InputError(f"missing column (have: {', '.join(table.column_names)})", column=name)
    return table.column(name)


def _first_true_row(mask: pa.ChunkedArray) -> int:
    """1-based row of the first true value of a boolean column."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0]) + 1


def _first_null_row(col: pa.ChunkedArray) -> int:
    """1-based row of the first null in ``col``."""
    return _first_true_row(pc.is_null(col))


def _id_column(table: pa.Table, name: str, *, nullable: bool = False) -> pa.ChunkedArray:
    """The id column ``name`` as strings (integers are accepted and cast)."""
    col = _column(table, name)
    t = col.type
    if nullable and pa.types.is_null(t):  # an all-null column built without a schema
        return col.cast(pa.string())
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        col = col.cast(pa.string())
    elif not pa.types.is_string(t):
        raise InputError(f"ids must be strings, got {t}", column=name)
    if not nullable:
        if col.null_count:
            raise InputError("empty id", row=_first_null_row(col), column=name)
        blank = pc.equal(pc.utf8_length(col), 0)
        if pc.any(blank).as_py():
            raise InputError("empty id", row=_first_true_row(blank), column=name)
    return col


def _ts_column(table: pa.Table, name: str) -> np.ndarray:
    """Microseconds since the epoch as int64; nulls become int64 min."""
    col = _column(table, name)
    t = col.type
    if pa.types.is_date(t) or pa.types.is_null(t):
        col = col.cast(pa.timestamp("us"))
    elif pa.types.is_timestamp(t):
        if t.tz is not None:
            col = col.cast(pa.timestamp(t.unit))
        col = col.cast(pa.timestamp("us"))
    else:
        raise InputError(f"times must be timestamps or dates, got {t}", column=name)
    ints = pc.fill_null(col.cast(pa.int64()), np.iinfo(np.int64).min)
    return ints.to_numpy()


def _encode(col: pa.ChunkedArray) -> np.ndarray:
    """Dense int64 codes (first-appearance order) of a non-null column."""
    enc = pc.dictionary_encode(col).combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _encode_nullable(col: pa.ChunkedArray) -> np.ndarray:
    """Dense int64 codes with -1 for nulls."""
    enc = pc.dictionary_encode(col).combine_chunks()
    return pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy()


def _rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ranks of int64 ``values`` (equal values, equal rank; order kept) and the sorted
    distinct values. Hash-encodes with Arrow, then sorts only the distinct values."""
    codes, distinct = _encode_sorted(pa.chunked_array([pa.array(values)]))
    return codes, distinct.to_numpy()


def _encode_sorted(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Codes that follow the string order of the ids, and the sorted distinct ids."""
    enc = pc.dictionary_encode(col).combine_chunks()
    order = pc.sort_indices(enc.dictionary).to_numpy()
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64)
    codes = rank[enc.indices.to_numpy(zero_copy_only=False)]
    return codes, enc.dictionary.take(pa.array(order))


# --- numpy kernels ------------------------------------------------------------------------


def _change(x: np.ndarray) -> np.ndarray:
    """True where ``x`` differs from the element before (the first element included)."""
    out = np.empty(x.size, bool)
    if x.size:
        out[0] = True
        np.not_equal(x[1:], x[:-1], out=out[1:])
    return out


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` through a plain sort (np.unique is slow on large int arrays in numpy 2.4)."""
    s = np.sort(x)
    return s[_change(s)]


def _runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys of a sorted array and how often each occurs."""
    first = np.flatnonzero(_change(sorted_keys))
    counts = np.empty(first.size, np.int64)
    if first.size:
        np.subtract(first[1:], first[:-1], out=counts[:-1])
        counts[-1] = sorted_keys.size - first[-1]
    return sorted_keys[first], counts


def _bits(n: int) -> int:
    """Bits needed for the values 0..n-1."""
    return max(int(n) - 1, 1).bit_length()


def _distinct_rows(cols: list[np.ndarray], radices: list[int]) -> list[np.ndarray]:
    """Distinct rows of non-negative int columns (column k < radices[k]), sorted lexicographically.

    One bit-packed int64 key when the columns fit in 63 bits, else a lexsort.
    """
    bits = [_bits(r) for r in radices]
    if cols[0].size == 0:
        return [c.astype(np.int64) for c in cols]
    if sum(bits) <= _KEY_BITS:
        key = np.zeros(cols[0].size, np.int64)
        for c, w in zip(cols, bits, strict=True):
            key <<= w
            key |= c
        key.sort()
        key = key[_change(key)]
        out = []
        for w in reversed(bits):
            out.append(key & ((1 << w) - 1))
            key >>= w
        return out[::-1]
    order = np.lexsort(cols[::-1])
    srt = [c[order] for c in cols]
    new = np.zeros(srt[0].size, bool)
    for c in srt:
        new |= _change(c)
    return [c[new].astype(np.int64) for c in srt]


def _expand(left: np.ndarray, start: np.ndarray, count: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For every i and d < count[i], the key ``left[i] + right[start[i] + d]`` (dtype of ``right``).

    Vectorised by offset: the rows are ordered by count (descending, stable), so the rows
    still active at offset d are a prefix; one gather per offset, never a loop over rows.
    """
    total = int(count.sum())
    out = np.empty(total, right.dtype)
    if total == 0:
        return out
    order = np.argsort(-count, kind="stable")
    left, start = left[order].astype(right.dtype, copy=False), start[order]
    # active[d] = rows with count > d
    active = count.size - np.cumsum(np.bincount(count))
    idx = np.empty(int(active[0]), np.int64)
    off = 0
    for d in range(int(count.max())):
        m = int(active[d])
        dst = out[off : off + m]
        np.add(start[:m], d, out=idx[:m])
        np.take(right, idx[:m], out=dst)
        dst += left[:m]
        off += m
    return out


def _co_counts(
    item: np.ndarray, rem: np.ndarray, n_items: int, pool: _Pool, tick: Callable[..., None]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sorted pair keys ``a << B | b`` (a < b, B = bits of an item code) and their basket counts."""
    total = int(rem.sum())
    if total == 0:
        tick("pairs")
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), 0
    ib = _bits(n_items)
    # 32-bit keys when two item codes fit: half the memory traffic
    kt = np.uint32 if 2 * ib <= 32 else np.uint64
    item = item.astype(kt)
    shift = kt(ib)
    # Chunk by ranges of the left (smaller) product so chunks hold disjoint keys.
    per_item = np.bincount(item.astype(np.int64), weights=rem, minlength=n_items)
    cum = np.cumsum(per_item)
    bounds = np.searchsorted(cum, np.arange(CHUNK_PAIRS, cum[-1], CHUNK_PAIRS), side="left") + 1
    edges = np.unique(np.concatenate(([0], bounds, [n_items])))

    def count(k: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(edges[k]), int(edges[k + 1])
        sel = np.flatnonzero((item >= lo) & (item < hi) & (rem > 0))
        m = int(rem[sel].sum())
        span = (hi - lo) << ib
        if span <= DENSE_FACTOR * m:  # dense enough: count into an array indexed by the key
            rel = _expand(np.left_shift(item[sel] - kt(lo), shift), sel + 1, rem[sel], item)
            dense = np.bincount(rel.astype(np.intp, copy=False), minlength=span)
            nz = np.flatnonzero(dense)
            return nz.astype(np.uint64) + np.uint64(lo << ib), dense[nz]  # 64-bit keys from here
        chunk = _expand(item[sel] << shift, sel + 1, rem[sel], item)
        chunk.sort()
        u, c = _runs(chunk)
        return u.astype(np.uint64), c

    keys, counts = [], []
    for k, (u, c) in enumerate(pool.map(count, range(edges.size - 1))):
        keys.append(u)
        counts.append(c)
        tick("pairs", k + 1, edges.size)
    out = np.concatenate(keys), np.concatenate(counts), total
    tick("pairs", edges.size, edges.size)
    return out


def _after_counts(
    cust: np.ndarray,
    ts: np.ndarray,
    item: np.ndarray,
    n_items: int,
    window_days: int | None,
    max_items: int,
    report: dict[str, Any],
    pool: _Pool,
    tick: Callable[..., None],
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Customers who bought x, then y, per directed pair, and the per-product timeline counts
    (customers, returning, later; see TIMELINE) of the customers not skipped.

    Keys are ``(min(x, y) << B | max(x, y)) << 1 | (x > y)``: sorted by the unordered pair, the
    a -> b count (a < b) right before the b -> a count.
    """
    empty = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    none = dict(
        after_events=0, after_customers=0, customers_skipped=0, after_pair_instances=0, returning_customers=0
    )
    if cust.size == 0:
        report.update(none)
        tick("after")
        return (*empty, None)
    # Customer codes are dense already; times get dense ranks that keep their order.
    n_cust = int(cust.max()) + 1
    t_rank, ut = _rank(ts)
    ev_c, ev_t, ev_i = _distinct_rows([cust, t_rank, item], [n_cust, ut.size, n_items])
    # Customers over the distinct-product cap.
    ci_c, _ = _distinct_rows([ev_c, ev_i], [n_cust, n_items])
    skip = np.bincount(ci_c, minlength=n_cust) > max_items
    # Partner range of each event: same customer, time in (t, t + window].
    ckey = ev_c * ut.size + ev_t
    lo = np.searchsorted(ckey, ckey, side="right")
    if window_days is None:
        end_rank = np.full(ev_t.size, ut.size, np.int64)
    else:
        end_rank = np.searchsorted(ut, ut[ev_t] + window_days * _DAY_US, side="right")
    hi = np.searchsorted(ckey, ev_c * ut.size + end_rank, side="left")
    cnt = hi - lo
    per_cust = np.bincount(ev_c, weights=cnt, minlength=n_cust)
    skip |= per_cust > float(max_items) ** 2
    cnt[skip[ev_c]] = 0
    report["after_events"] = int(ev_c.size)
    report["after_customers"] = int(np.count_nonzero(np.bincount(ev_c, minlength=n_cust)) - skip.sum())
    report["customers_skipped"] = int(skip.sum())
    report["after_pair_instances"] = int(cnt.sum())
    tl = _timeline_counts(ev_c, ev_t, ev_i, ckey, ut, cnt, skip, n_cust, n_items, window_days, report)
    if not cnt.any():
        tick("after")
        return (*empty, tl)
    # Chunks of whole customers (events are sorted by customer).
    cum = np.cumsum(cnt)
    cuts = np.searchsorted(cum, np.arange(CHUNK_PAIRS, cum[-1], CHUNK_PAIRS))
    cuts = np.searchsorted(ev_c, ev_c[np.minimum(cuts, ev_c.size - 1)], side="left")
    edges = np.unique(np.concatenate(([0], cuts, [ev_c.size])))
    ib = _bits(n_items)
    shift, pair_mask, item_mask = np.uint64(ib), np.uint64((1 << 2 * ib) - 1), np.uint64((1 << ib) - 1)
    ev_iu = ev_i.astype(np.uint64)

    def directed(k: int) -> np.ndarray:
        e0, e1 = int(edges[k]), int(edges[k + 1])
        sel = np.flatnonzero(cnt[e0:e1]) + e0
        if sel.size == 0:
            return np.zeros(0, np.uint64)
        c0 = int(ev_c[e0])
        if _bits(int(ev_c[e1 - 1]) - c0 + 1) + 2 * ib <= _KEY_BITS:
            # (customer-local, a, b) packed in one key; distinct through one sort
            base = ((ev_c[sel] - c0).astype(np.uint64) << np.uint64(2 * ib)) | (ev_iu[sel] << shift)
            trip = _expand(base, lo[sel], cnt[sel], ev_iu)
            trip.sort()
            pair = trip[_change(trip)] & pair_mask
        else:  # too many bits: distinct triples through a lexsort
            pk = _expand(ev_iu[sel] << shift, lo[sel], cnt[sel], ev_iu)
            # the owner of each instance, in _expand's order (owner + 0)
            owner = _expand(ev_c[sel].astype(np.uint64), lo[sel], cnt[sel], np.zeros_like(ev_iu))
            _, op = _distinct_rows([owner.astype(np.int64), pk.astype(np.int64)], [n_cust, 1 << 2 * ib])
            pair = op.astype(np.uint64)
        x, y = pair >> shift, pair & item_mask
        lo_xy, hi_xy = np.minimum(x, y), np.maximum(x, y)
        out = (((lo_xy << shift) | hi_xy) << np.uint64(1)) | (x > y).astype(np.uint64)
        return out[x != y]

    parts = []
    for k, part in enumerate(pool.map(directed, range(edges.size - 1))):
        parts.append(part)
        tick("after", k + 1, edges.size)
    allp = np.concatenate(parts)
    del parts
    allp.sort()
    keys, counts = _runs(allp)
    tick("after", edges.size, edges.size)
    return keys, counts, tl


def _timeline_counts(
    ev_c: np.ndarray,
    ev_t: np.ndarray,
    ev_i: np.ndarray,
    ckey: np.ndarray,
    ut: np.ndarray,
    cnt: np.ndarray,
    skip: np.ndarray,
    n_cust: int,
    n_items: int,
    window_days: int | None,
    report: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per product: distinct customers who bought it, who came back (an event in ``(t, t +
    window]`` after buying it: ``cnt > 0``), who bought it within the window after an earlier
    event. Events are distinct (customer, time, product), sorted; skipped customers count nowhere."""
    kept = ~skip[ev_c]
    if window_days is None:
        start_rank = np.zeros(ev_t.size, np.int64)
    else:
        start_rank = np.searchsorted(ut, ut[ev_t] - window_days * _DAY_US, side="left")
    first_same_time = np.searchsorted(ckey, ckey, side="left")
    first_in_window = np.searchsorted(ckey, ev_c * ut.size + start_rank, side="left")
    was_later = kept & (first_same_time > first_in_window)

    def per_item(mask: np.ndarray) -> np.ndarray:
        items, _ = _distinct_rows([ev_i[mask], ev_c[mask]], [n_items, n_cust])
        return np.bincount(items, minlength=n_items)

    came_back = cnt > 0
    report["returning_customers"] = int(np.count_nonzero(np.bincount(ev_c[came_back], minlength=n_cust)))
    return per_item(kept), per_item(came_back), per_item(was_later)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` in sorted ``keys`` (0 where absent). Fast when ``query`` is sorted."""
    if keys.size == 0:
        return np.zeros(query.size, np.int64)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[pos] == query, values[pos], 0).astype(np.int64)


def _assemble(
    co_keys: np.ndarray,
    co_counts: np.ndarray,
    af_keys: np.ndarray,
    af_counts: np.ndarray,
    item_n: np.ndarray,
    n: int,
    n_items: int,
    names: pa.Array,
    min_count: int,
) -> pa.Table:
    """The PAIR_STATS table of the pairs that reach ``min_count`` by n_ab or an after count."""
    shift = np.uint64(_bits(n_items))
    one = np.uint64(1)
    strong = co_counts >= min_count
    keys = co_keys[strong]
    hot = af_keys[af_counts >= min_count] >> one
    if hot.size:
        keys = _sorted_unique(np.concatenate([keys, hot]))
        n_ab = _lookup(co_keys, co_counts, keys)
    else:
        n_ab = co_counts[strong].astype(np.int64)
    if af_keys.size:
        after_ab = _lookup(af_keys, af_counts, keys << one)
        after_ba = _lookup(af_keys, af_counts, (keys << one) | one)
    else:
        after_ab = after_ba = np.zeros(keys.size, np.int64)
    a = (keys >> shift).astype(np.int64)
    b = (keys & np.uint64((1 << int(shift)) - 1)).astype(np.int64)
    n_a = item_n[a].astype(np.int64)
    n_b = item_n[b].astype(np.int64)
    f_ab = n_ab.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        support = f_ab / n if n else np.zeros(keys.size)
        conf_ab = f_ab / n_a
        conf_ba = f_ab / n_b
        lift = f_ab * n / (n_a.astype(np.float64) * n_b)
    return pa.table(
        [
            names.take(pa.array(a)),
            names.take(pa.array(b)),
            pa.array(n_ab),
            pa.array(n_a),
            pa.array(n_b),
            pa.array(np.full(keys.size, n, np.int64)),
            pa.array(support, pa.float64()),
            pa.array(conf_ab),
            pa.array(conf_ba),
            pa.array(lift),
            pa.array(after_ab),
            pa.array(after_ba),
        ],
        schema=PAIR_STATS,
    )


# --- mergeable counts (incremental updates, tiein.update) -----------------------------------


@dataclass
class PairCounts:
    """Every count :func:`mine_pairs` derives its table from, before ``min_count`` filters it:
    they add up across disjoint sets of baskets and customers, so an update merges them exactly
    (:meth:`combine`) and :meth:`assemble` gives what ``mine_pairs`` on all the lines gives.

    ``names``: sorted distinct product ids (a product's code is its position); ``item_n``:
    baskets holding each (giant baskets excluded), ``n``: baskets counted; ``co_keys``: sorted
    ``a << B | b`` (``a < b``, ``B = bits(len(names))``) with ``co_counts`` baskets holding both;
    ``af_keys``: sorted ``(a << B | b) << 1 | (x > y)`` with ``af_counts`` customers who bought x,
    then y; ``customers`` / ``returning`` / ``later``: the TIMELINE counts per product;
    ``returning_customers``: customers who came back within the window; ``baskets``: distinct
    basket ids (giant ones included)."""

    names: pa.Array
    item_n: np.ndarray
    n: int
    co_keys: np.ndarray
    co_counts: np.ndarray
    af_keys: np.ndarray
    af_counts: np.ndarray
    customers: np.ndarray
    returning: np.ndarray
    later: np.ndarray
    returning_customers: int = 0
    baskets: int = 0
    report: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("item_n", "co_keys", "co_counts", "af_keys", "af_counts", "customers", "returning", "later")

    @classmethod
    def empty(cls) -> PairCounts:
        z = np.zeros(0, np.int64)
        return cls(pa.array([], pa.string()), z, 0, z.astype(np.uint64), z, z.astype(np.uint64), z, z, z, z)

    def recode(self, names: pa.Array) -> PairCounts:
        """The same counts over ``names`` (sorted, a superset of ``self.names``)."""
        if self.names.equals(names):
            return self
        m = pc.index_in(self.names, value_set=names).to_numpy(zero_copy_only=False)
        if self.names.null_count or (m.size and np.isnan(np.asarray(m, np.float64)).any()):
            raise ValueError("recode: names must be a superset of the counted products")
        m = np.asarray(m, np.int64)
        size = len(names)
        ob, nb = np.uint64(_bits(len(self.names))), np.uint64(_bits(size))
        omask = np.uint64((1 << int(ob)) - 1)
        mu = m.astype(np.uint64)

        def pairs(keys: np.ndarray) -> np.ndarray:
            return (mu[(keys >> ob).astype(np.int64)] << nb) | mu[(keys & omask).astype(np.int64)]

        def per_item(v: np.ndarray) -> np.ndarray:
            out = np.zeros(size, np.int64)
            out[m] = v
            return out

        one = np.uint64(1)
        return PairCounts(
            names, per_item(self.item_n), self.n,
            pairs(self.co_keys), self.co_counts,
            (pairs(self.af_keys >> one) << one) | (self.af_keys & one), self.af_counts,
            per_item(self.customers), per_item(self.returning), per_item(self.later),
            self.returning_customers, self.baskets, dict(self.report),
        )  # fmt: skip

    def combine(self, plus: PairCounts, minus: PairCounts) -> PairCounts:
        """``self + plus - minus`` over the union of their products: the counts of all lines
        after the lines counted in ``minus`` were replaced by those counted in ``plus``. Rows
        whose count drops to 0 are removed. Cost: a sort of the small delta and one pass over
        ``self`` (searchsorted), no re-sort of the big arrays."""
        names = pc.unique(pa.concat_arrays([self.names, plus.names, minus.names]))
        names = names.take(pc.sort_indices(names))
        a, p, m = self.recode(names), plus.recode(names), minus.recode(names)

        def merge(keys: np.ndarray, counts: np.ndarray, dk: list[np.ndarray], dc: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            d_keys, d_counts = np.concatenate(dk), np.concatenate(dc)
            if d_keys.size == 0:
                return keys, counts
            order = np.argsort(d_keys, kind="stable")
            d_keys, d_counts = d_keys[order], d_counts[order]
            first = np.flatnonzero(_change(d_keys))
            d_keys, d_counts = d_keys[first], np.add.reduceat(d_counts, first)
            pos = np.searchsorted(keys, d_keys)
            hit = (pos < keys.size) & (keys[np.minimum(pos, max(keys.size - 1, 0))] == d_keys) if keys.size else np.zeros(d_keys.size, bool)
            counts = counts.astype(np.int64, copy=True)
            np.add.at(counts, pos[hit], d_counts[hit])
            keys = np.insert(keys, pos[~hit], d_keys[~hit])
            counts = np.insert(counts, pos[~hit], d_counts[~hit])
            if (counts < 0).any():
                raise ValueError("combine: a count went negative (minus holds lines that were never counted)")
            keep = counts != 0
            return keys[keep], counts[keep]

        co = merge(a.co_keys, a.co_counts, [p.co_keys, m.co_keys], [p.co_counts, -m.co_counts])
        af = merge(a.af_keys, a.af_counts, [p.af_keys, m.af_keys], [p.af_counts, -m.af_counts])
        return PairCounts(
            names, a.item_n + p.item_n - m.item_n, a.n + p.n - m.n, co[0], co[1], af[0], af[1],
            a.customers + p.customers - m.customers, a.returning + p.returning - m.returning,
            a.later + p.later - m.later, a.returning_customers + p.returning_customers - m.returning_customers,
            a.baskets + p.baskets - m.baskets, dict(self.report),
        )  # fmt: skip

    def assemble(self, min_count: int = 2) -> MinedPairs:
        """What :func:`mine_pairs` returns for the counted lines (the same ``pairs`` and
        ``timeline`` tables; ``report`` holds baskets, n, items, pairs_co, pairs_after,
        returning_customers, pairs, min_count)."""
        if min_count < 1:
            raise ConfigError(f"min_count must be at least 1, got {min_count}")
        table = _assemble(
            self.co_keys, self.co_counts, self.af_keys, self.af_counts, self.item_n, self.n,
            len(self.names), self.names, min_count,
        )  # fmt: skip
        report = {
            **self.report,
            "baskets": self.baskets,
            "n": self.n,
            "items": int(np.count_nonzero(self.item_n)),
            "pairs_co": int(self.co_keys.size),
            "pairs_after": int(self.af_keys.size),
            "returning_customers": self.returning_customers,
            "pairs": table.num_rows,
            "min_count": min_count,
        }
        has_tl = bool(self.customers.any())
        timeline = _timeline_table((self.customers, self.returning, self.later) if has_tl else None, self.names)
        return MinedPairs(pairs=table, report=report, timeline=timeline)

    def save(self, path: Path) -> None:
        """Write the counts to one ``.npz`` file (numbers as arrays, ids as a string array)."""
        scalars = np.array([self.n, self.returning_customers, self.baskets], np.int64)
        with open(path, "wb") as f:
            np.savez(
                f, names=np.asarray(self.names.to_pylist(), dtype=object).astype(str) if len(self.names) else np.zeros(0, "U1"),
                scalars=scalars, **{k: getattr(self, k) for k in self.ARRAYS},
            )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> PairCounts:
        """Read counts written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in cls.ARRAYS}
            names = pa.array(z["names"].tolist(), pa.string())
            n, returning, baskets = (int(v) for v in z["scalars"])
        return cls(names=names, n=n, returning_customers=returning, baskets=baskets, **arrays)


def count_pairs(
    baskets: pa.Table,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    customer_col: str | None = "customer_id",
    ts_col: str | None = "ts",
    max_basket: int = 500,
    after_window_days: int | None = 90,
    max_customer_items: int = 1000,
    threads: int | None = None,
) -> PairCounts:
    """The unfiltered counts of ``baskets`` (options as :func:`mine_pairs`);
    ``count_pairs(t, ...).assemble(min_count)`` equals ``mine_pairs(t, ..., min_count=min_count)``
    (same kernels, same order)."""
    if max_basket < 2:
        raise ConfigError(f"max_basket must be at least 2, got {max_basket}")
    if after_window_days is not None and after_window_days < 0:
        raise ConfigError(f"after_window_days must be >= 0 or None, got {after_window_days}")
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    report: dict[str, Any] = {"max_basket": max_basket, "after_window_days": after_window_days}

    def tick(step: str, done: int = 1, total: int = 1) -> None:
        return None

    if baskets.num_rows == 0:
        return PairCounts.empty()
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext(_Serial()) as pool:
        item_codes, names = _encode_sorted(_id_column(baskets, item_col))
        basket_codes = _encode(_id_column(baskets, basket_col))
        n_items = len(names)
        n_baskets_in = int(basket_codes.max()) + 1 if basket_codes.size else 0
        want_after = customer_col is not None and ts_col is not None
        line_b, line_i = _distinct_rows([basket_codes, item_codes], [n_baskets_in, n_items])
        starts = np.flatnonzero(_change(line_b)) if line_b.size else np.zeros(0, np.int64)
        sizes = np.diff(np.append(starts, line_b.size))
        giant = sizes > max_basket
        if giant.any():
            keep = np.repeat(~giant, sizes)
            line_b, line_i = line_b[keep], line_i[keep]
            starts = np.flatnonzero(_change(line_b)) if line_b.size else np.zeros(0, np.int64)
            sizes = sizes[~giant]
        item_n = np.bincount(line_i, minlength=n_items).astype(np.int64)
        rem = np.repeat(starts + sizes, sizes) - np.arange(line_b.size, dtype=np.int64) - 1
        co_keys, co_counts, _ = _co_counts(line_i.astype(np.uint64), rem, n_items, pool, tick)
        zeros = np.zeros(n_items, np.int64)
        tl: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        af_keys, af_counts = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        report["returning_customers"] = 0
        if want_after:
            assert customer_col is not None and ts_col is not None
            cust_codes = _encode_nullable(_id_column(baskets, customer_col, nullable=True))
            ts_us = _ts_column(baskets, ts_col)
            ok = (cust_codes >= 0) & (ts_us != np.iinfo(np.int64).min)
            if giant.any():
                ok &= ~giant[basket_codes]
            af_keys, af_counts, tl = _after_counts(
                cust_codes[ok], ts_us[ok], item_codes[ok], n_items, after_window_days, max_customer_items,
                report, pool, tick,
            )  # fmt: skip
    customers, returning, later = (np.asarray(v, np.int64) for v in tl) if tl is not None else (zeros, zeros, zeros)
    return PairCounts(
        names, item_n, int(sizes.size), co_keys.astype(np.uint64), co_counts.astype(np.int64),
        af_keys.astype(np.uint64), af_counts.astype(np.int64), customers, returning, later,
        int(report.get("returning_customers", 0)), n_baskets_in, report,
    )  # fmt: skip

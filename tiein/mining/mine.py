"""One pass from order lines to the PAIR_STATS table: :func:`mine_pairs`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError
from tiein.mining.kernels import (
    Pool,
    Progress,
    _after_counts,
    _bits,
    _change,
    _co_counts,
    _distinct_rows,
    _encode,
    _encode_nullable,
    _encode_sorted,
    _id_column,
    _lookup,
    _timeline_table,
    _ts_column,
    default_threads,
    partners_after,
    sorted_unique,
    thread_pool,
)
from tiein.model import MINING, PAIR_STATS, TIMELINE
from tiein.sysmem import small_pages


@dataclass
class MinedPairs:
    """The result of :func:`mine_pairs`: ``pairs`` follows ``PAIR_STATS``; ``report`` holds counts
    (see :func:`mine_pairs`) and ``seconds`` per step; ``timeline`` follows ``TIMELINE`` (one row
    per product bought by a known customer at a known time; empty without customers/times)."""

    pairs: pa.Table
    report: dict[str, Any] = field(default_factory=dict)
    timeline: pa.Table = field(default_factory=TIMELINE.empty_table)
    # the unfiltered counts (tiein.mining.PairCounts) when asked for (``keep_counts``), else None
    counts: Any = None


def mine_pairs(
    baskets: pa.Table,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    customer_col: str | None = "customer_id",
    ts_col: str | None = "ts",
    min_count: int = MINING.min_count,
    max_basket: int = MINING.max_basket,
    after_window_days: int | None = MINING.after_window_days,
    max_customer_items: int = MINING.max_customer_items,
    threads: int | None = None,
    progress: Progress | None = None,
    keep_counts: bool = False,
) -> MinedPairs:
    """Count co-occurring and bought-after product pairs in ``baskets``.

    ``baskets`` is an ``ORDERS`` table (or ``VIEWS`` with ``basket_col="session_id"`` and
    ``customer_col=None``); only the named columns are read. Null basket or product ids are an
    :class:`InputError`; a null customer (guest) or time only removes that line from the after
    counts. ``after_window_days=None`` means no window (any later time). ``threads`` sets the
    worker threads that count chunks (default ``min(4, CPUs)``; the numpy kernels release the GIL).
    ``progress`` is called as
    ``progress(step, done, total)`` after each unit of work (steps: "encode", "baskets",
    "after", "pairs", "assemble"; units of "pairs" and "after" are chunks).

    ``report`` keys: lines, duplicate_lines (lines collapsed into an earlier identical
    (basket, product) line), baskets (distinct basket ids), giant_baskets, giant_lines (their
    distinct lines), n (baskets counted = baskets - giant_baskets), items, pair_instances, pairs_co (distinct pairs with n_ab >= 1), after_events,
    after_customers, customers_skipped, after_pair_instances, pairs_after (distinct directed
    after pairs), returning_customers (customers with an order within the window after an
    earlier one: the base of "next" lifts), pairs (rows kept), min_count, max_basket, after_window_days,
    max_customer_items, seconds ({step: seconds}).

    ``keep_counts``: also return the unfiltered counts as ``counts`` (a
    :class:`tiein.mining.PairCounts`, equal to what :func:`tiein.mining.count_pairs` gives for the
    same lines and options), so a build need not count the lines a second time for its state.

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
    workers = threads if threads is not None else default_threads()
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    with thread_pool(workers) as pool, small_pages():  # new big arrays: small pages (tiein.sysmem)
        return _mine(
            baskets,
            basket_col,
            item_col,
            customer_col,
            ts_col,
            min_count,
            max_basket,
            after_window_days,
            max_customer_items,
            pool,
            progress,
            keep_counts,
        )


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
    pool: Pool,
    progress: Progress | None,
    keep_counts: bool = False,
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

    # 3. bought-after counts ------------------------------------------------------------------
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
            after_events=0,
            after_customers=0,
            customers_skipped=0,
            after_pair_instances=0,
            returning_customers=0,
        )
        tick("after")
    report["pairs_after"] = int(af_keys.size)

    # 4. co-basket pair counts ----------------------------------------------------------------
    # rem[i]: products after line i in its basket (lines sorted by basket, then product code).
    rem = partners_after(starts, sizes)
    # Without the unfiltered counts, only the pairs the table holds are written: those of at
    # least min_count, and those an after count brings in (their n_ab is looked up).
    at_least, hot = 0, None
    if not keep_counts:
        at_least = max(min_count, 1)
        hot = sorted_unique(af_keys[af_counts >= min_count] >> np.uint64(1))
    co_keys, co_counts, instances, distinct = _co_counts(line_i, rem, n_items, pool, tick, at_least, hot)
    report["pair_instances"] = instances
    report["pairs_co"] = distinct

    # 5. assemble -------------------------------------------------------------------------
    table = _assemble(co_keys, co_counts, af_keys, af_counts, item_n, n, n_items, names, min_count)
    report["pairs"] = table.num_rows
    timeline = _timeline_table(tl, names)
    tick("assemble")
    report["seconds"] = seconds
    counts = None
    if keep_counts:  # what count_pairs returns for these lines (same kernels, same arrays)
        from tiein.mining.counts import PairCounts

        counts = PairCounts.from_kernels(
            names,
            item_n,
            n,
            (co_keys, co_counts),
            (af_keys, af_counts),
            tl,
            report,
            n_baskets_in,
            keep_report=False,
        )
    return MinedPairs(pairs=table, report=report, timeline=timeline, counts=counts)


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
        keys = sorted_unique(np.concatenate([keys, hot]))
        (n_ab,) = _lookup(co_keys, co_counts, keys)
    else:
        n_ab = co_counts[strong].astype(np.int64)
    if af_keys.size:
        after_ab, after_ba = _lookup(af_keys, af_counts, keys << one, (keys << one) | one)
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

"""Unfiltered pair counts that `tiein update` merges new baskets into: :class:`PairCounts`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.mining.kernels import (
    _after_counts,
    _bits,
    _change,
    _co_counts,
    _distinct_rows,
    _encode,
    _encode_nullable,
    _encode_sorted,
    _id_column,
    _timeline_table,
    _ts_column,
    default_threads,
    partners_after,
    thread_pool,
)
from tiein.mining.mine import MinedPairs, _assemble
from tiein.model import MINING


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

    @classmethod
    def from_kernels(
        cls,
        names: pa.Array,
        item_n: np.ndarray,
        n: int,
        co: tuple[np.ndarray, np.ndarray],
        after: tuple[np.ndarray, np.ndarray],
        timeline: Any,
        report: dict[str, Any],
        baskets: int,
        keep_report: bool,
    ) -> PairCounts:
        """The counts as the mining kernels leave them: ``co`` / ``after`` (keys, counts),
        ``timeline`` the (customers, returning, later) per product or None (zeros), and the
        returning customers from ``report`` (kept whole with ``keep_report``)."""
        zeros = np.zeros(len(names), np.int64)
        customers, returning, later = (
            (np.asarray(v, np.int64) for v in timeline) if timeline is not None else (zeros, zeros, zeros)
        )
        return cls(
            names,
            np.asarray(item_n, np.int64),
            int(n),
            co[0].astype(np.uint64),
            co[1].astype(np.int64),
            after[0].astype(np.uint64),
            after[1].astype(np.int64),
            customers,
            returning,
            later,
            int(report.get("returning_customers", 0)),
            baskets,
            report if keep_report else {},
        )

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
            names,
            per_item(self.item_n),
            self.n,
            pairs(self.co_keys),
            self.co_counts,
            (pairs(self.af_keys >> one) << one) | (self.af_keys & one),
            self.af_counts,
            per_item(self.customers),
            per_item(self.returning),
            per_item(self.later),
            self.returning_customers,
            self.baskets,
            dict(self.report),
        )

    def combine(self, plus: PairCounts, minus: PairCounts) -> PairCounts:
        """``self + plus - minus`` over the union of their products: the counts of all lines
        after the lines counted in ``minus`` were replaced by those counted in ``plus``. Rows
        whose count drops to 0 are removed. Cost: a sort of the small delta and one pass over
        ``self`` (searchsorted), no re-sort of the big arrays."""
        names = pc.unique(pa.concat_arrays([self.names, plus.names, minus.names]))
        names = names.take(pc.sort_indices(names))
        a, p, m = self.recode(names), plus.recode(names), minus.recode(names)

        def merge(
            keys: np.ndarray, counts: np.ndarray, dk: list[np.ndarray], dc: list[np.ndarray]
        ) -> tuple[np.ndarray, np.ndarray]:
            d_keys, d_counts = np.concatenate(dk), np.concatenate(dc)
            if d_keys.size == 0:
                return keys, counts
            order = np.argsort(d_keys, kind="stable")
            d_keys, d_counts = d_keys[order], d_counts[order]
            first = np.flatnonzero(_change(d_keys))
            d_keys, d_counts = d_keys[first], np.add.reduceat(d_counts, first)
            pos = np.searchsorted(keys, d_keys)
            hit = (
                (pos < keys.size) & (keys[np.minimum(pos, max(keys.size - 1, 0))] == d_keys)
                if keys.size
                else np.zeros(d_keys.size, bool)
            )
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
            names,
            a.item_n + p.item_n - m.item_n,
            a.n + p.n - m.n,
            co[0],
            co[1],
            af[0],
            af[1],
            a.customers + p.customers - m.customers,
            a.returning + p.returning - m.returning,
            a.later + p.later - m.later,
            a.returning_customers + p.returning_customers - m.returning_customers,
            a.baskets + p.baskets - m.baskets,
            dict(self.report),
        )

    def assemble(self, min_count: int = MINING.min_count) -> MinedPairs:
        """What :func:`mine_pairs` returns for the counted lines (the same ``pairs`` and
        ``timeline`` tables; ``report`` holds baskets, n, items, pairs_co, pairs_after,
        returning_customers, pairs, min_count)."""
        if min_count < 1:
            raise ConfigError(f"min_count must be at least 1, got {min_count}")
        table = _assemble(
            self.co_keys,
            self.co_counts,
            self.af_keys,
            self.af_counts,
            self.item_n,
            self.n,
            len(self.names),
            self.names,
            min_count,
        )
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
        timeline = _timeline_table(
            (self.customers, self.returning, self.later) if has_tl else None, self.names
        )
        return MinedPairs(pairs=table, report=report, timeline=timeline)

    def save(self, path: Path) -> None:
        """Write the counts to one ``.npz`` file (numbers as arrays, ids as a string array)."""
        scalars = np.array([self.n, self.returning_customers, self.baskets], np.int64)
        with open(path, "wb") as f:
            np.savez(
                f,
                names=np.asarray(self.names.to_pylist(), dtype=object).astype(str)
                if len(self.names)
                else np.zeros(0, "U1"),
                scalars=scalars,
                **{k: getattr(self, k) for k in self.ARRAYS},
            )

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
    max_basket: int = MINING.max_basket,
    after_window_days: int | None = MINING.after_window_days,
    max_customer_items: int = MINING.max_customer_items,
    threads: int | None = None,
) -> PairCounts:
    """The unfiltered counts of ``baskets`` (options as :func:`mine_pairs`);
    ``count_pairs(t, ...).assemble(min_count)`` equals ``mine_pairs(t, ..., min_count=min_count)``
    (same kernels, same order)."""
    if max_basket < 2:
        raise ConfigError(f"max_basket must be at least 2, got {max_basket}")
    if after_window_days is not None and after_window_days < 0:
        raise ConfigError(f"after_window_days must be >= 0 or None, got {after_window_days}")
    workers = threads if threads is not None else default_threads()
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    report: dict[str, Any] = {"max_basket": max_basket, "after_window_days": after_window_days}

    def tick(step: str, done: int = 1, total: int = 1) -> None:
        return None

    if baskets.num_rows == 0:
        return PairCounts.empty()
    with thread_pool(workers) as pool:
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
        rem = partners_after(starts, sizes)
        co_keys, co_counts, _, _ = _co_counts(line_i, rem, n_items, pool, tick)
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
    return PairCounts.from_kernels(
        names,
        item_n,
        int(sizes.size),
        (co_keys, co_counts),
        (af_keys, af_counts),
        tl,
        report,
        n_baskets_in,
        keep_report=True,
    )

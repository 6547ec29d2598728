"""First-purchase sequence statistics of customer timelines (:func:`sequence_stats`).

Every count here is about a customer's FIRST purchase of a product: a repeat purchase never
makes an "A then B", and a customer who had B before A is no evidence for A → B.

- ``after(a → b)``: customers whose first b came strictly after their first a, at most
  ``window`` days later;
- ``exposed(a)``: customers whose first a was followed by another order of theirs within the
  window (they could have bought something next);
- ``had(a, b)``: exposed customers of a who had bought b at or before their first a (within the
  window before it; older purchases are not looked up): they cannot buy b "for the first time
  after a", so they leave the customers at risk ``exposed(a) - had(a, b)``;
- the time-matched base rate of b in week ``w``: of the OTHER customers (not a's) with an order in
  week ``w`` who came back within the window and had not bought b by then, the share who bought b
  for the first time within the window: how likely an active customer of that period buys b next
  without a. ``expected(a → b)`` sums that rate over a's customers at risk, each at the week of
  their first a, so a product that everyone buys once it is launched (or in the season) expects
  as many buyers after a as it gets. Weeks with few other customers are shrunk toward the
  other customers' rate over all weeks;
- ``together(a, b)``: customers whose first a and first b came in the same order (symmetric);
  its time-matched base rate is the same-order one: of the other customers with an order in
  week ``w`` who had not bought b before it, the share whose first b was in that order
  (``expected_together``);
- ``after_held(a → b)``: the after count of the customers whose first a falls in the held-back
  (latest) part of the months, for the direction check.

The (customer, product, first time) rows are sorted by customer and time; the pairs within the
window are counted by the compiled pair counter (:func:`tiein.mining.jit.range_pair_counts`:
each product's partner rows counted in a dense row, no temporary per pair), the rest is numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tiein.mining.kernels import (
    _bits,
    _change,
    _encode_nullable,
    _encode_sorted,
    _id_column,
    _ts_column,
    sorted_unique,
)
from tiein.model import MINING

_SECOND_US = 1_000_000
_DAY_S = 86_400
_T_BITS = 36  # seconds since the first order: 2,000 years


@dataclass
class SequenceStats:
    """Result of :func:`sequence_stats`. Product codes are positions in ``names`` (sorted ids);
    pair keys are ``a << bits | b`` (``bits`` = :attr:`bits`), sorted.

    ``after_keys`` / ``after`` / ``after_held``: the directed first-purchase pairs and their
    counts; ``had_keys`` / ``had``: exposed customers of a who had b at or before their first a;
    ``exposed``: per product; ``exposed_weeks[a, w]``: exposed customers whose first a is in week
    w; ``new[b, w]`` / ``risk[b, w]``: the (customer, week) slots of week w that came back within
    the window and bought b for the first time then / had not bought b before (the time-matched
    base rate is their ratio, module doc); ``customers``: customers counted,
    ``customers_skipped``: customers left out for buying more than ``max_customer_items``
    distinct products; ``held_from``: start of the held-back months (seconds since ``t0``);
    ``t0``: the first order time (µs since the epoch); ``window_s``: the window in seconds;
    ``first_c`` / ``first_p`` / ``first_t``: the first purchases counted (customer code, product
    code, seconds since ``t0``), sorted by customer, time and product; ``together_keys`` /
    ``together``: customers whose first a and first b are in the same order (both directions);
    ``customer_weeks[a, w]``: customers whose first a is in week w (returning or not);
    ``same[b, w]`` / ``same_risk[b, w]``: the (customer, week) slots of week w whose first b was
    in the week's first order / that had not bought b before it."""

    names: pa.Array
    after_keys: np.ndarray
    after: np.ndarray
    after_held: np.ndarray
    had_keys: np.ndarray
    had: np.ndarray
    exposed: np.ndarray
    exposed_weeks: np.ndarray
    new: np.ndarray
    risk: np.ndarray
    customers: int
    customers_skipped: int
    held_from: int
    t0: int
    window_s: int
    first_c: np.ndarray
    first_p: np.ndarray
    first_t: np.ndarray
    together_keys: np.ndarray
    together: np.ndarray
    customer_weeks: np.ndarray
    same: np.ndarray
    same_risk: np.ndarray

    @property
    def bits(self) -> int:
        return max(len(self.names) - 1, 1).bit_length()

    def keys(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Pair keys of product codes ``src`` → ``dst``."""
        b = np.uint64(self.bits)
        return (src.astype(np.uint64) << b) | dst.astype(np.uint64)

    def expected(
        self, src: np.ndarray, dst: np.ndarray, after: np.ndarray, risk_share: np.ndarray, prior: float = 1.0
    ) -> np.ndarray:
        """Buyers of dst expected among src's exposed customers at the time-matched base rate
        of the OTHER customers (module doc), times ``risk_share`` (the share of src's exposed
        customers who had not bought dst yet).

        Per week w: the control customers are the week's at-risk slots minus src's exposed
        customers of that week (``exposed_weeks[src, w] * risk_share``), their new buyers of dst
        the week's minus src's (at src's own rate ``after / at_risk``); the control rate is shrunk
        toward the control rate of all weeks by ``prior`` slots, so a week where src's customers
        are (nearly) all the active customers falls back on the other weeks."""
        from tiein.next_purchase.jit import matched  # numba: imported where used

        return matched(self.exposed_weeks, self.new, self.risk, src, dst, after, risk_share, prior)

    def expected_together(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        together: np.ndarray,
        risk_share: np.ndarray,
        prior: float = 1.0,
    ) -> np.ndarray:
        """Customers of src expected to buy dst in the same order as their first src, at the
        same-order rate of the OTHER customers of each week (``same / same_risk``, less src's own
        customers at src's own rate, shrunk as in :meth:`expected`), times ``risk_share``."""
        from tiein.next_purchase.jit import matched  # numba: imported where used

        return matched(self.customer_weeks, self.same, self.same_risk, src, dst, together, risk_share, prior)


def lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` keys of the sorted ``keys``; 0 where a key is absent.

    >>> lookup(np.array([2, 5, 9], np.uint64), np.array([1, 2, 3]), np.array([5, 6, 9], np.uint64)).tolist()
    [2, 0, 3]
    >>> lookup(np.array([2, 5, 9, 11, 12], np.uint64), np.arange(5), np.array([11], np.uint64)).tolist()
    [3]
    """
    return lookups(keys, (values,), query)[0]


def lookups(keys: np.ndarray, columns: tuple[np.ndarray, ...], query: np.ndarray) -> list[np.ndarray]:
    """:func:`lookup` of several value ``columns`` of the same ``keys``: the keys are searched
    once (:func:`tiein.mining.jit_keys.positions`: 1.2M candidates against ~3M keys 0.03 s, where a
    hash lookup took ~0.15 s)."""
    from tiein.mining.jit_keys import found_values, positions  # numba: imported where used

    at = positions(keys, query)
    return [found_values(values, at) for values in columns]


def sequence_stats(
    orders: pa.Table,
    *,
    window_days: int | None = MINING.after_window_days,
    held_share: float = 0.25,
    max_customer_items: int = MINING.max_customer_items,
    week_days: int = 7,
    min_after: int = 1,
) -> SequenceStats:
    """The first-purchase sequence statistics of ``orders`` (ORDERS: customer_id, product_id,
    ts; lines without a customer or a time are left out). ``held_share``: the latest share of the
    months (by time) whose customers make ``after_held``. Customers with more than
    ``max_customer_items`` distinct products (wholesalers) are left out, as in mining.

    ``min_after`` > 1 keeps only what a relation with ``after(a → b) >= min_after`` can use:
    ``after`` of those pairs and of their reverses, ``had`` and ``together`` of those pairs
    (their instances are generated in a second pass and dropped unless kept, so the many pairs
    one customer bought once are never held: at 8M synthetic lines 240M pair instances). The
    kept counts are exact; 1 (the default) keeps every pair.

    Two customers buy x, then y 10 days later; a third buys y, then x (and y again later: a
    repeat, which counts for nothing):

    >>> import datetime as dt
    >>> d = lambda n: dt.datetime(2024, 1, 1) + dt.timedelta(days=n)
    >>> o = pa.table({"customer_id": ["1", "1", "2", "2", "3", "3", "3"],
    ...               "product_id": ["x", "y", "x", "y", "y", "x", "y"],
    ...               "ts": [d(0), d(10), d(1), d(11), d(2), d(12), d(20)]})
    >>> s = sequence_stats(o)
    >>> s.names.to_pylist(), s.after_keys.tolist(), s.after.tolist(), s.exposed.tolist()
    (['x', 'y'], [1, 2], [2, 1], [3, 1])
    """
    cust = _encode_nullable(_id_column(orders, "customer_id", nullable=True))
    ts_us = _ts_column(orders, "ts")
    items, names = _encode_sorted(_id_column(orders, "product_id"))
    n_items = len(names)
    ok = (cust >= 0) & (ts_us != np.iinfo(np.int64).min)
    c, p, tus = cust[ok], items[ok], ts_us[ok]
    t0 = int(tus.min()) if tus.size else 0
    t = (tus - t0) // _SECOND_US
    window_s = int(window_days) * _DAY_S if window_days is not None else (1 << (_T_BITS - 1))
    week_s = int(week_days) * _DAY_S
    t_max = int(t.max()) if t.size else 0
    held_from = int(t_max - held_share * t_max) if held_share > 0 else t_max + 1

    # first purchase of each (customer, product); wholesalers out
    fc, fp, ft = _first_purchases(c, p, t, n_items)
    per_c = np.bincount(fc, minlength=int(c.max()) + 1 if c.size else 0)
    big = per_c > max_customer_items
    keep = ~big[fc]
    fc, fp, ft = fc[keep], fp[keep], ft[keep]
    # by customer, time and product: a stable sort on (customer, time) of rows that are in
    # (customer, product) order (one packed key instead of a three-column lexsort: 4M lines 0.8 s)
    cf = (fc << _T_BITS) | ft
    o2 = np.argsort(cf, kind="stable")
    fc, fp, ft, cf = fc[o2], fp[o2], ft[o2], cf[o2]

    # distinct order times of each customer; "exposed": another order within the window
    keep_o = ~big[c]
    ot = sorted_unique((c[keep_o] << _T_BITS) | t[keep_o])

    def next_within(cust_c: np.ndarray, at: np.ndarray) -> np.ndarray:
        i = np.searchsorted(ot, (cust_c << _T_BITS) | at, side="right")
        i_ok = i < ot.size
        nxt = ot[np.minimum(i, ot.size - 1)] if ot.size else np.zeros(i.size, np.int64)
        ok: np.ndarray = i_ok & ((nxt >> _T_BITS) == cust_c) & ((nxt & ((1 << _T_BITS) - 1)) - at <= window_s)
        return ok

    fe = next_within(fc, ft)
    n_weeks = t_max // week_s + 1 if t.size else 1
    fw = ft // week_s
    exposed = np.bincount(fp[fe], minlength=n_items).astype(np.int64)
    exposed_weeks = np.bincount(fp[fe] * n_weeks + fw[fe], minlength=n_items * n_weeks)
    exposed_weeks = exposed_weeks.reshape(n_items, n_weeks).astype(np.float64)
    customer_weeks = np.bincount(fp * n_weeks + fw, minlength=n_items * n_weeks)
    customer_weeks = customer_weeks.reshape(n_items, n_weeks).astype(np.float64)

    # pairs of first purchases within the window, counted by the compiled pair counter over
    # ranges of rows (rows sorted by customer, then time; a product is first bought once):
    # row i's same-time group is lo[i]:same[i], its later purchases within the window same[i]:hi[i]
    # and its earlier ones within the window back[i]:lo[i]
    bits = max(n_items - 1, 1).bit_length()
    lo, same, hi = _window_rows(fc, ft, window_s)
    back = np.searchsorted(cf, (fc << _T_BITS) | np.maximum(ft - window_s, 0), side="left")
    from tiein.mining.jit import group_ranges, range_pair_counts  # numba: imported where used
    from tiein.mining.jit_keys import positions
    from tiein.mining.kernels import thread_pool

    with thread_pool() as pool:

        def count(
            rows: np.ndarray | slice, start: np.ndarray, end: np.ndarray, want: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
            index = group_ranges(fp[rows], start[rows], end[rows], n_items)
            return range_pair_counts(index, fp, n_items, bits, pool, want=want)

        everyone = slice(None)
        after_keys, after = count(everyone, same, hi)  # a then b: b later, within the window
        held_keys, held = count(ft >= held_from, same, hi)  # the same, first a in the held-back months
        wanted: np.ndarray | None = None  # pairs had and together are kept for (None: all)
        if min_after > 1:
            wanted = after_keys[after >= min_after]
            b64 = np.uint64(bits)
            mirror = np.sort(((wanted & np.uint64((1 << bits) - 1)) << b64) | (wanted >> b64))
            keep = after >= min_after
            keep |= positions(mirror, after_keys) >= 0  # the reverse counts (their direction test)
            after_keys, after = after_keys[keep], after[keep]
        after_held = lookup(held_keys, held, after_keys)
        del held_keys, held
        # exposed customers of a who had b before their first a, or in the same order
        had_keys, had = count(fe, back, same, wanted)
        together_keys, together = count(everyone, lo, same, wanted)  # first a and b in one order

    # time-matched base rates over (customer, week) slots: the first order of the week
    slot = sorted_unique((c[keep_o] << _T_BITS) | (t[keep_o] // week_s))
    sc = slot >> _T_BITS
    sw = slot & ((1 << _T_BITS) - 1)
    st = ot[np.searchsorted(ot, (sc << _T_BITS) | (sw * week_s))] & ((1 << _T_BITS) - 1)
    same, same_risk = _same_order(cf, fp, sc, sw, st, n_weeks, n_items)
    se = next_within(sc, st)
    sc, sw, st = sc[se], sw[se], st[se]
    n_slots = np.bincount(sw, minlength=n_weeks).astype(np.float64)
    base = (sc << _T_BITS).astype(np.int64)
    c_lo = np.searchsorted(cf, base, side="left")
    at = np.searchsorted(cf, base | st, side="right")
    c_hi = np.searchsorted(cf, base | (st + window_s), side="right")
    new = _slot_counts(at, c_hi, sw, fp, n_weeks, n_items)
    held_before = _slot_counts(c_lo, at, sw, fp, n_weeks, n_items)
    new_m = new.reshape(n_items, n_weeks).astype(np.float64)
    risk = n_slots[None, :] - held_before.reshape(n_items, n_weeks)
    return SequenceStats(
        names=names,
        after_keys=after_keys,
        after=after,
        after_held=after_held,
        had_keys=had_keys,
        had=had,
        exposed=exposed,
        exposed_weeks=exposed_weeks,
        new=new_m,
        risk=risk,
        customers=int(sorted_unique(fc).size),
        customers_skipped=int(big.sum()),
        held_from=held_from,
        t0=t0,
        window_s=window_s,
        first_c=fc,
        first_p=fp,
        first_t=ft,
        together_keys=together_keys,
        together=together,
        customer_weeks=customer_weeks,
        same=same,
        same_risk=same_risk,
    )


def _slot_counts(
    x: np.ndarray, y: np.ndarray, sw: np.ndarray, fp: np.ndarray, n_weeks: int, n_items: int
) -> np.ndarray:
    """Flat ``[product * n_weeks + week]`` counts: slot i (week ``sw[i]``) counts the first
    purchases ``fp[x[i]:y[i]]`` (compiled: :func:`tiein.next_purchase.jit.slot_counts`)."""
    from tiein.next_purchase.jit import slot_counts  # numba: imported where used

    return slot_counts(x, y, sw, fp, n_weeks, n_items)


def _same_order(
    cf: np.ndarray, fp: np.ndarray, sc: np.ndarray, sw: np.ndarray, st: np.ndarray, n_weeks: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """``same[b, w]``: the slots (customer ``sc``, week ``sw``, first order time ``st``) whose
    first b is in that order; ``same_risk[b, w]``: the slots that had not bought b before it."""
    base = (sc << _T_BITS).astype(np.int64)
    c_lo = np.searchsorted(cf, base, side="left")
    at_lo = np.searchsorted(cf, base | st, side="left")
    at_hi = np.searchsorted(cf, base | st, side="right")
    same = _slot_counts(at_lo, at_hi, sw, fp, n_weeks, n_items)
    before = _slot_counts(c_lo, at_lo, sw, fp, n_weeks, n_items)
    n_slots = np.bincount(sw, minlength=n_weeks).astype(np.float64)
    return same.reshape(n_items, n_weeks).astype(np.float64), n_slots[None, :] - before.reshape(
        n_items, n_weeks
    )


def _first_purchases(
    c: np.ndarray, p: np.ndarray, t: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (customer, product)'s first purchase time, in (customer, product) order: the rows
    sorted by one packed (customer, product) key and the minimum time of each run (a
    three-column lexsort by customer, product and time took 1.5 s at 4M lines).

    >>> [x.tolist() for x in _first_purchases(np.array([1, 0, 1, 1]), np.array([2, 5, 2, 0]), np.array([9, 4, 3, 7]), 6)]
    [[0, 1, 1], [5, 0, 2], [4, 7, 3]]
    """
    if c.size == 0:
        return c, p, t
    bits = _bits(n_items)
    if int(c.max()).bit_length() + bits > 63:  # cannot pack: the lexsort
        order = np.lexsort((t, p, c))
        cs, ps, ts = c[order], p[order], t[order]
        first = np.ones(cs.size, bool)
        first[1:] = (cs[1:] != cs[:-1]) | (ps[1:] != ps[:-1])
        return cs[first], ps[first], ts[first]
    key = (c.astype(np.int64) << np.int64(bits)) | p.astype(np.int64)
    order = np.argsort(key)
    key = key[order]
    starts = np.flatnonzero(_change(key))
    ft = np.minimum.reduceat(t[order], starts)
    key = key[starts]
    fc, fp = key >> np.int64(bits), key & np.int64((1 << bits) - 1)
    return fc.astype(c.dtype, copy=False), fp.astype(p.dtype, copy=False), ft


def _window_rows(fc: np.ndarray, ft: np.ndarray, window_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the first purchases sorted by (customer, time): the start and the end of each row's
    same-time group and the end of its window (rows ``lo[i] <= j < hi[i]`` are the same
    customer's first purchases at ``ft[i] <= ft[j] <= ft[i] + window``, those from ``same[i]``
    on the later ones)."""
    cf = (fc << _T_BITS) | ft
    lo = np.searchsorted(cf, cf, side="left")
    same = np.searchsorted(cf, cf, side="right")
    hi = np.searchsorted(cf, (fc << _T_BITS) | (ft + window_s), side="right")
    return lo, same, hi


def first_gaps(seq: SequenceStats, keys: np.ndarray) -> np.ndarray:
    """For each pair key (a << bits | b), the median over the customers counted in ``after`` of
    the days from their first a to their first b (NaN for a pair nobody bought in that order).
    Compiled (:func:`tiein.next_purchase.jit.gap_medians`): each product's wanted partners are
    marked in a dense row and its customers' later purchases within the window looked up there."""
    from tiein.mining.jit import group_ranges  # numba: imported where used
    from tiein.next_purchase.jit import gap_medians

    out = np.full(keys.size, np.nan)
    if keys.size == 0 or seq.first_c.size == 0:
        return out
    fc, fp, ft = seq.first_c, seq.first_p, seq.first_t
    n_items = len(seq.names)
    _, same, hi = _window_rows(fc, ft, seq.window_s)
    uk = sorted_unique(keys.astype(np.uint64))
    med = gap_medians(group_ranges(fp, same, hi, n_items), fp, ft, uk, seq.bits, _DAY_S, n_items)
    return med[np.searchsorted(uk, keys.astype(np.uint64))]

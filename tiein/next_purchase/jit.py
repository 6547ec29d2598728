"""Compiled kernels of next purchase (numba, :func:`tiein.jit.compiled`)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from tiein.jit import compiled


@compiled
def _matched(
    weeks: Any,
    new: Any,
    risk: Any,
    src: Any,
    dst: Any,
    count: Any,
    risk_share: Any,
    prior: float,
    out: Any,
) -> None:  # pragma: no cover - compiled
    n_weeks = weeks.shape[1]
    ctrl_risk = np.empty(n_weeks)
    ctrl_new = np.empty(n_weeks)
    for i in range(src.size):
        s, d, share = src[i], dst[i], risk_share[i]
        at_risk = 0.0
        for w in range(n_weeks):
            at_risk += weeks[s, w]
        at_risk *= share
        own = count[i] / max(at_risk, 1e-12) if at_risk > 0 else 0.0
        total = 0.0
        total_new = 0.0
        for w in range(n_weeks):
            mine = weeks[s, w] * share
            r = max(risk[d, w] - mine, 0.0)
            ctrl_risk[w] = r
            c = min(max(new[d, w] - mine * own, 0.0), r)
            ctrl_new[w] = c
            total += r
            total_new += c
        glob = total_new / max(total, 1e-12) if total > 0 else 0.0
        acc = 0.0
        for w in range(n_weeks):
            acc += weeks[s, w] * share * (ctrl_new[w] + prior * glob) / (ctrl_risk[w] + prior)
        out[i] = acc


def matched(
    weeks: np.ndarray,
    new: np.ndarray,
    risk: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    count: np.ndarray,
    risk_share: np.ndarray,
    prior: float,
) -> np.ndarray:
    """``sum_w weeks[src, w] * risk_share * rate[dst, w]``: the control rate of each week (the
    week's slots ``risk[dst, w]`` and buyers ``new[dst, w]`` less src's own, at src's own rate
    ``count / (weeks[src].sum() * risk_share)``) shrunk toward all weeks' by ``prior`` slots
    (:meth:`tiein.next_purchase.sequence.SequenceStats.expected`). One candidate at a time, no
    temporary per candidate and week (Online Retail's 1.2M candidates: 1.3 s as numpy arrays of
    candidates x weeks). ``weeks``, ``new`` and ``risk`` are ``[product, week]`` (float64)."""
    out = np.zeros(src.size)
    _matched(
        np.ascontiguousarray(weeks, np.float64),
        np.ascontiguousarray(new, np.float64),
        np.ascontiguousarray(risk, np.float64),
        np.ascontiguousarray(src, np.int64),
        np.ascontiguousarray(dst, np.int64),
        np.ascontiguousarray(count, np.float64),
        np.ascontiguousarray(risk_share, np.float64),
        float(prior),
        out,
    )
    return cast(np.ndarray, out)


@compiled
def _gap_medians(
    a_lo: int,
    a_hi: int,
    head: Any,
    start: Any,
    end: Any,
    item: Any,
    times: Any,
    want: Any,
    shift: int,
    day: float,
    slot: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled
    mask = (np.uint64(1) << np.uint64(shift)) - np.uint64(1)
    q = np.searchsorted(want, np.uint64(a_lo) << np.uint64(shift))
    for a in range(a_lo, a_hi):
        q0 = q
        top = np.uint64(a + 1) << np.uint64(shift)
        while q < want.size and want[q] < top:
            q += 1
        if q == q0:
            continue
        m = q - q0
        for k in range(q0, q):  # mark the wanted partners of a (1-based slots)
            slot[np.int64(want[k] & mask)] = k - q0 + 1
        hits = np.zeros(m + 1, np.int64)
        for s in range(head[a], head[a + 1]):
            for p in range(start[s], end[s]):
                k = slot[item[p]]
                if k:
                    hits[k] += 1
        off = np.cumsum(hits)  # off[k - 1]: where slot k's gaps start
        fill = off.copy()
        gaps = np.empty(off[m], np.int64)
        for s in range(head[a], head[a + 1]):
            t0 = times[start[s] - 1]  # the row's own time: the last row of its same-time group
            for p in range(start[s], end[s]):
                k = slot[item[p]]
                if k:
                    gaps[fill[k - 1]] = times[p] - t0
                    fill[k - 1] += 1
        for k in range(1, m + 1):
            n = off[k] - off[k - 1]
            if n:
                g = np.sort(gaps[off[k - 1] : off[k]])
                out[q0 + k - 1] = (g[(n - 1) // 2] / day + g[n // 2] / day) / 2
            slot[np.int64(want[q0 + k - 1] & mask)] = 0


def gap_medians(
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    item: np.ndarray,
    times: np.ndarray,
    want: np.ndarray,
    shift: int,
    day_s: int,
    n_items: int,
) -> np.ndarray:
    """For each of ``want`` (sorted distinct keys ``a << shift | b``), the median over the pair
    instances of ``index`` of the partner's time less the row's, in days (NaN for a key with
    none). ``index``: :func:`tiein.mining.jit.group_ranges` of rows whose partner range starts
    right after their same-time group (``times`` sorted within a customer), so a row's own time
    is the time just before its range."""
    out = np.full(want.size, np.nan)
    if want.size:
        head, start, end = index
        slot = np.zeros(n_items, np.int64)
        args = (head, start, end, np.ascontiguousarray(item, np.int32), np.ascontiguousarray(times, np.int64))
        _gap_medians(0, n_items, *args, want, shift, float(day_s), slot, out)
    return out


@compiled
def _slot_counts(x: Any, y: Any, sw: Any, fp: Any, n_weeks: int, out: Any) -> None:  # pragma: no cover
    for i in range(x.size):
        w = sw[i]
        for j in range(x[i], y[i]):
            out[fp[j] * n_weeks + w] += 1


def slot_counts(
    x: np.ndarray, y: np.ndarray, sw: np.ndarray, fp: np.ndarray, n_weeks: int, n_items: int
) -> np.ndarray:
    """Flat ``[product * n_weeks + week]`` counts (int64): slot i (week ``sw[i]``) counts the
    products ``fp[x[i]:y[i]]``.

    >>> slot_counts(np.array([0, 2]), np.array([2, 3]), np.array([0, 1]), np.array([1, 0, 1]), 2, 2).tolist()
    [1, 0, 1, 1]
    """
    out = np.zeros(n_weeks * n_items, np.int64)
    _slot_counts(
        np.ascontiguousarray(x, np.int64),
        np.ascontiguousarray(y, np.int64),
        np.ascontiguousarray(sw, np.int64),
        np.ascontiguousarray(fp, np.int64),
        n_weeks,
        out,
    )
    return out


def warm() -> None:
    """Compile (or load) the kernels of this module on a tiny input."""
    one = np.ones((1, 1))
    matched(one, one, one, np.zeros(1, np.int64), np.zeros(1, np.int64), one[0], one[0], 1.0)
    index = (np.array([0, 1, 1]), np.array([1]), np.array([2]))
    gap_medians(index, np.array([0, 1]), np.array([0, 5]), np.array([1], np.uint64), 1, 1, 2)
    slot_counts(
        np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), 1, 1
    )

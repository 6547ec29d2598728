"""Sorting several integer columns as one: each row's non-negative ints packed into one int64
key, most significant column first, and the keys sorted (numpy sorts int64 ~5 x faster than it
argsorts, and a two- or three-column lexsort is slower still: 50k products / 4M lines, (pair,
basket) rows 3-5 x faster). A lexsort where the columns need more than 63 bits. Used by the
miners' sequence and basket kernels and by the candidate kernels (tiein.candidate_pairs), which
also rank within groups here: :func:`desc_rank`, :func:`first_k`.
"""

from __future__ import annotations

import numpy as np


def _bits(x: np.ndarray) -> int:
    """Bits of the largest of the non-negative ints ``x`` (at least 1)."""
    return max(int(x.max(initial=0)), 1).bit_length()


def sorted_keys(cols: list[np.ndarray]) -> tuple[np.ndarray, list[int]] | None:
    """The non-negative int columns ``cols`` (most significant first) packed into one int64 key
    per row and sorted, with the bits of each column; None when they need more than 63 bits."""
    widths = [_bits(c) for c in cols]
    if sum(widths) > 63:
        return None
    key = np.zeros(cols[0].size, np.int64)
    for c, w in zip(cols, widths, strict=True):
        key = (key << w) | c.astype(np.int64)
    key.sort()
    return key, widths


def packed_order(cols: list[np.ndarray]) -> np.ndarray:
    """Row indices sorted by ``cols`` (non-negative ints, most significant first), ties by row:
    the row index rides in the packed key's low bits; a lexsort when it does not fit.

    >>> packed_order([np.array([2, 0, 2, 1]), np.array([5, 9, 1, 0])]).tolist()
    [1, 3, 2, 0]
    """
    rows = np.arange(cols[0].size, dtype=np.int64)
    packed = sorted_keys([*cols, rows])
    if packed is None:
        return np.lexsort([rows, *cols[::-1]])
    key, widths = packed
    return key & np.int64((1 << widths[-1]) - 1)


def sorted_by(major: np.ndarray, minor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``major`` and ``minor`` (non-negative integers, same length) sorted by (major, minor), in
    their own dtypes.

    >>> [x.tolist() for x in sorted_by(np.array([2, 0, 2, 1]), np.array([5, 9, 1, 0]))]
    [[0, 1, 2, 2], [9, 0, 1, 5]]
    """
    if major.size == 0:
        return major, minor
    packed = sorted_keys([major, minor])
    if packed is None:
        order = np.lexsort((minor, major))
        return major[order], minor[order]
    key, (_, shift) = packed
    low = key & np.int64((1 << shift) - 1)
    key >>= np.int64(shift)
    return key.astype(major.dtype, copy=False), low.astype(minor.dtype, copy=False)


def desc_rank(values: np.ndarray) -> np.ndarray:
    """Dense rank, highest value first (0), equal values equal (NaN last, as SQL's NULLS LAST).

    >>> desc_rank(np.array([0.5, 2.0, np.nan, 0.5])).tolist()
    [1, 0, 2, 1]
    """
    if np.issubdtype(values.dtype, np.integer):
        return int(values.max(initial=0)) - values.astype(np.int64)
    order = np.argsort(values)  # NaN sorts last: ranked after every number (SQL's NULLS LAST)
    ordered = values[order]
    nan = np.isnan(ordered)
    dense = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]] & ~nan)  # ascending, from 0
    top = int(dense[~nan][-1]) if (~nan).any() else 0
    rank = np.empty(values.size, np.int64)
    rank[order] = np.where(nan, top + 1, top - dense)
    return rank


def first_k(group: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of rows sorted by ``group``: which are among the first ``k`` of their group (SQL's
    ``row_number() OVER (PARTITION BY group …) <= k``), and where each group starts.

    >>> [x.tolist() for x in first_k(np.array([3, 3, 3, 5, 7, 7]), 2)]
    [[True, True, False, True, True, True], [0, 3, 4]]
    """
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    place = np.arange(group.size)
    place -= np.repeat(start, np.diff(np.r_[start, group.size]))
    return place < k, start

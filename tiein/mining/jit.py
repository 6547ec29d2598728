"""Compiled kernels (numba) for the loops numpy can only write with big temporaries.

Each kernel is a plain loop compiled to machine code on first use (``cache=True``: the machine
code is kept beside this file, or in ``NUMBA_CACHE_DIR``, so only the first process after an
install compiles; ``make setup`` warms it) and releases the GIL (``nogil=True``), so the mining
thread pool runs them side by side. The typed wrappers below are what the rest of tiein calls.

:func:`co_pair_counts` counts the co-basket pairs of a range of products the way the C counting
floor of bench/mining.py does (an inverted index product → baskets, a dense counter row per
product), but emits every pair, sorted, not only the frequent ones: the mergeable counts of
``tiein update`` need them all.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """``fn`` compiled on first use (machine code cached on disk, the GIL released)."""
    return cast(_F, nb.njit(cache=True, nogil=True)(fn))


# Bit positions by de Bruijn multiplication: the lowest set bit ``x & -x`` of a 64-bit word,
# times _DE_BRUIJN, has a distinct top 6 bits for each position.
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_AT = np.zeros(64, np.int64)
for _i in range(64):
    _BIT_AT[((1 << _i) * int(_DE_BRUIJN) & (1 << 64) - 1) >> 58] = _i


@_jit
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


@_jit
def _co_rows(
    a_lo: int,
    a_hi: int,
    head: Any,
    start: Any,
    end: Any,
    item: Any,
    shift: int,
    bit_at: Any,
    row: Any,
    bits: Any,
    out_keys: Any,
    out_counts: Any,
) -> int:  # pragma: no cover - compiled
    one = np.uint64(1)
    w = 0
    for a in range(a_lo, a_hi):
        w_lo, w_hi = bits.size, -1
        for s in range(head[a], head[a + 1]):
            for p in range(start[s], end[s]):
                b = item[p]
                if row[b] == 0:  # first time: mark b in the bitmap
                    wi = b >> 6
                    bits[wi] |= one << np.uint64(b & 63)
                    w_lo = min(w_lo, wi)
                    w_hi = max(w_hi, wi)
                row[b] += 1
        base = np.uint64(a) << np.uint64(shift)
        for wi in range(w_lo, w_hi + 1):  # the partners in order: the bitmap's set bits
            x = bits[wi]
            if x == 0:
                continue
            bits[wi] = 0
            while x:
                low = x & (~x + one)
                x ^= low
                b = (wi << 6) + bit_at[(low * _DE_BRUIJN) >> np.uint64(58)]
                out_keys[w] = base | np.uint64(b)
                out_counts[w] = row[b]
                row[b] = 0
                w += 1
    return w


def group_lines(item: np.ndarray, rem: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def co_pair_counts(
    a_lo: int,
    a_hi: int,
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    item: np.ndarray,
    shift: int,
    out: tuple[np.ndarray, np.ndarray],
) -> int:
    """Writes the sorted keys ``a << shift | b`` and basket counts of every co-basket pair whose
    smaller product ``a`` is in ``[a_lo, a_hi)`` to the start of ``out`` (keys uint64, counts
    int64; room for :func:`co_pair_bound` of them) and returns how many. Lines are sorted by
    basket, then product (``item``: int32 codes); ``index``: :func:`group_lines`. Each
    product's partners are counted in a dense row and read back in order from a bitmap of the
    touched ones (no sort).

    Baskets [0, 1, 2] and [0, 2]: the pairs (0, 1) once, (0, 2) twice, (1, 2) once.

    >>> item, rem = np.array([0, 1, 2, 0, 2], np.int32), np.array([2, 1, 0, 1, 0])
    >>> index = group_lines(item, rem, 3)
    >>> keys, counts = np.empty(co_pair_bound(0, 3, index, 3), np.uint64), np.empty(5, np.int64)
    >>> w = co_pair_counts(0, 3, index, item, 2, (keys, counts))
    >>> keys[:w].tolist(), counts[:w].tolist()
    ([1, 2, 6], [1, 2, 1])
    """
    head, start, end = index
    n_items = head.size - 1
    row = np.zeros(n_items, np.int32)
    bits = np.zeros((n_items + 63) >> 6, np.uint64)
    return int(_co_rows(a_lo, a_hi, head, start, end, item, shift, _BIT_AT, row, bits, out[0], out[1]))


def co_pair_bound(
    a_lo: int, a_hi: int, index: tuple[np.ndarray, np.ndarray, np.ndarray], n_items: int
) -> int:
    """At most how many pairs :func:`co_pair_counts` finds for ``[a_lo, a_hi)``: its pair
    instances, and no more than the pairs those products can form."""
    head, start, end = index
    lo, hi = int(head[a_lo]), int(head[a_hi])
    return min(int((end[lo:hi] - start[lo:hi]).sum()), (n_items - a_lo) * (a_hi - a_lo))


class Scratch:
    """An array of ``n`` items of ``dtype`` for a kernel that writes an unknown part of it from
    the start: memory the kernel never writes costs nothing (the array is an anonymous memory
    map, so its pages come as they are first written), and :meth:`keep` hands back the pages
    past the part kept.

    >>> s = Scratch(1 << 20, np.int64)
    >>> s.array[:3] = [4, 5, 6]
    >>> s.keep(3).tolist()
    [4, 5, 6]
    """

    def __init__(self, n: int, dtype: type[np.generic]) -> None:
        size = max(int(n), 1) * np.dtype(dtype).itemsize
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_HUGEPAGE"):  # as numpy asks for its big arrays: fewer page faults
            self._map.madvise(mmap.MADV_HUGEPAGE)
        self.array: np.ndarray = np.frombuffer(self._map, dtype, count=int(n))

    def keep(self, n: int) -> np.ndarray:
        """The first ``n`` items (a view of the map, which stays alive with it); the whole pages
        after them are handed back to the operating system."""
        start = -(-int(n) * self.array.itemsize // mmap.PAGESIZE) * mmap.PAGESIZE
        if start < len(self._map):
            self._map.madvise(mmap.MADV_DONTNEED, start, len(self._map) - start)
        return self.array[:n]

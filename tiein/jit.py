"""Compiling tiein's hot loops (numba), and memory for kernels that write an unknown amount.

:func:`compiled` compiles a plain Python loop to machine code on first use. ``cache=True`` keeps
the machine code beside the module (or in ``NUMBA_CACHE_DIR``, or the user's cache folder when the
package folder is read-only), so only the first process after an install compiles (~4.5 s for all
the kernels); ``make setup`` and the Docker image call each kernel module's ``warm()``. Kernels
release the GIL (``nogil=True``). numba takes ~0.3 s to import, so modules import their kernels where they use them, never at the
top of a module the API or the CLI's read commands load.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])


def compiled(fn: _F) -> _F:
    """``fn`` compiled on first use (machine code cached on disk, the GIL released; division by
    zero gives inf or nan as in numpy, no exception). Where numba finds no folder to write its
    cache to (the package read-only and no writable home or ``NUMBA_CACHE_DIR``), each process
    compiles for itself instead of failing."""
    try:
        return cast(_F, nb.njit(cache=True, nogil=True, error_model="numpy")(fn))
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return cast(_F, nb.njit(cache=False, nogil=True, error_model="numpy")(fn))


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
        # no MADV_HUGEPAGE (numpy asks it for its big arrays): the kernels write each chunk's
        # region from its start, often a few kB, and each region then faulted in a whole huge
        # page, slow at its first touch on this machine (tiein.sysmem.small_pages). Counting 4M
        # lines' pairs 10 times in a row: median 418 ms with it, 215 without (max 1.39 s against
        # 0.25 s); 1M, frequent pairs only: 56 against 32 ms
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.array: np.ndarray = np.frombuffer(self._map, dtype, count=int(n))

    def keep(self, n: int) -> np.ndarray:
        """The first ``n`` items (a view of the map, which stays alive with it); the whole pages
        after them are handed back to the operating system."""
        start = -(-int(n) * self.array.itemsize // mmap.PAGESIZE) * mmap.PAGESIZE
        if start < len(self._map):
            self._map.madvise(mmap.MADV_DONTNEED, start, len(self._map) - start)
        return self.array[:n]

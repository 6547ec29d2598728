"""How much memory this process can still take: the kernel's ``MemAvailable`` (free memory plus
the page cache and other memory it can reclaim, /proc/meminfo), bounded by the container's limit
when the process runs under one (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``: the
limit less what the group uses, its reclaimable file cache counted as free), and by the user's
memory budget when one is set (``tiein build --memory-budget 6G`` or ``TIEIN_MEMORY_BUDGET``:
the budget less what this process holds already). Linux only; None elsewhere or when nothing
can be read. And :func:`give_back_memory`: what the process freed, handed back to the operating
system; :func:`big_blocks_mapped`: big blocks given back as they are freed. Imports nothing of
tiein but its errors.

What reads it decides by it: the embedded store refuses before writing anything when its
heaviest ``COPY`` would not fit (graph/ladybug_load.py), and
loads its early part beside the last steps only when that fits (graph/ladybug_staged.py).

>>> meminfo = "MemTotal: 24000000 kB\\nMemAvailable: 12000000 kB\\n"
>>> available_memory(meminfo=meminfo, cgroup=None)
12288000000
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError

PROC_MEMINFO = Path("/proc/meminfo")
PROC_STATM = Path("/proc/self/statm")
PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUDGET_ENV = "TIEIN_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_budget: list[int | None] = [None]  # the budget a running build set (memory_budget), else the env's


def _field(text: str | None, key: str) -> int | None:
    """The number after ``key`` in "key: 123 kB" (/proc/meminfo) or "key 123" (memory.stat) lines."""
    for line in (text or "").splitlines():
        parts = line.replace(":", " ", 1).split()
        if len(parts) > 1 and parts[0] == key:
            return int(parts[1]) if parts[1].isdigit() else None
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() else None


def cgroup_available(root: Path = CGROUP_ROOT) -> int | None:
    """What the memory cgroup under ``root`` still allows (bytes), None without a limit. v2:
    ``memory.max`` - ``memory.current`` + ``inactive_file``; v1: ``memory.limit_in_bytes`` -
    ``memory.usage_in_bytes`` + ``total_inactive_file``. A "limit" at or above 2^60 is none."""
    v2_limit = _read(root / "memory.max")
    if v2_limit is not None:
        limit, used = _number(v2_limit), _number(_read(root / "memory.current"))
        cache = _field(_read(root / "memory.stat"), "inactive_file") or 0
    else:
        v1 = root / "memory"
        limit, used = (
            _number(_read(v1 / "memory.limit_in_bytes")),
            _number(_read(v1 / "memory.usage_in_bytes")),
        )
        cache = _field(_read(v1 / "memory.stat"), "total_inactive_file") or 0
    if limit is None or limit >= 1 << 60 or used is None:  # "max", unlimited, or unreadable
        return None
    return max(limit - used + cache, 0)


def parse_size(text: str, what: str = "a memory size") -> int:
    """Bytes of a size written as a number with an optional K, M, G or T (powers of 1024; "B" /
    "iB" after it allowed): ConfigError naming ``what`` for anything else, or for 0.

    >>> parse_size("6G"), parse_size("1.5GiB"), parse_size("800m"), parse_size("4096")
    (6442450944, 1610612736, 838860800, 4096)
    """
    m = _SIZE.match(text)
    number = float(m.group(1)) * _UNITS[m.group(2).upper()] if m else 0.0
    value = int(number) if math.isfinite(number) else 0  # 400 digits: infinite, not a size
    if value <= 0:
        raise ConfigError(
            f"{what} {text!r} is not a size: give bytes or a number with K, M, G or T (e.g. 6G)"
        )
    return value


def current_budget() -> int | None:
    """The memory budget in force (bytes): the one a running build set (:func:`memory_budget`),
    else ``TIEIN_MEMORY_BUDGET`` (ConfigError when that is not a size), else None."""
    if _budget[0] is not None:
        return _budget[0]
    env = os.environ.get(BUDGET_ENV, "").strip()
    return parse_size(env, BUDGET_ENV) if env else None


@contextmanager
def memory_budget(limit: int | None) -> Iterator[int | None]:
    """While the block runs, :func:`available_memory` keeps this process within ``limit`` bytes
    (None: ``TIEIN_MEMORY_BUDGET``'s, or none); yields the budget in force."""
    before = _budget[0]
    _budget[0] = limit
    try:
        yield current_budget()
    finally:
        _budget[0] = before


def resident_bytes(statm: str | None = None) -> int | None:
    """The memory this process holds now (resident set, /proc/self/statm); None when unreadable."""
    fields = (statm if statm is not None else _read(PROC_STATM) or "").split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_memory() -> None:
    """Start counting this process's peak resident memory afresh (Linux: /proc/self/clear_refs;
    elsewhere nothing), so that :func:`peak_memory` tells one build's peak in a long-lived process."""
    try:
        PROC_CLEAR_REFS.write_text("5", encoding="ascii")
    except OSError:
        pass


def peak_memory(status: str | None = None) -> int | None:
    """This process's peak resident bytes (``VmHWM``) since it started or since
    :func:`reset_peak_memory`; None when unreadable.

    >>> peak_memory("Name: python\\nVmHWM:\\t  2048 kB\\n")
    2097152
    """
    kb = _field(status if status is not None else _read(PROC_STATUS), "VmHWM")
    return kb * 1024 if kb is not None else None


def available_memory(
    meminfo: str | None = None,
    cgroup: Path | None = CGROUP_ROOT,
    budget: int | None = None,
    resident: int | None = None,
) -> int | None:
    """Bytes of memory this process can still take (module doc); ``meminfo`` / ``cgroup`` /
    ``budget`` / ``resident`` stand in for /proc/meminfo, /sys/fs/cgroup, :func:`current_budget`
    and :func:`resident_bytes` (tests). None when it cannot be told.

    >>> available_memory(meminfo="MemAvailable: 12000000 kB", cgroup=None, budget=6 << 30, resident=2 << 30)
    4294967296
    """
    text = meminfo if meminfo is not None else _read(PROC_MEMINFO)
    kb = _field(text, "MemAvailable")
    found = [kb * 1024] if kb is not None else []
    limited = cgroup_available(cgroup) if cgroup is not None else None
    if limited is not None:
        found.append(limited)
    limit = budget if budget is not None else current_budget()
    held = resident if resident is not None else resident_bytes()
    if limit is not None and held is not None:
        found.append(max(limit - held, 0))
    return min(found) if found else None


@contextmanager
def small_pages() -> Iterator[None]:
    """While the block runs, numpy does not ask for transparent huge pages for its big arrays
    (it does by default where the system's setting is "madvise": ``NUMPY_MADVISE_HUGEPAGE``,
    numpy's global state). On this machine a huge page costs far more at its first touch than
    its 512 small pages: 1 GiB of new array written took 0.17-12.7 s with them (8.6 and 12.7 s
    the first time in a process), a steady 0.39-0.47 s without; ``mine_pairs`` of 16M lines
    took 4.3-8.4 s with them (its baskets step 0.5-4.9 s), 3.4 s without, three runs each.
    ``mine_pairs`` uses it (in a build too: the 4M-line mine step took 10.5 s, as without). A
    build does not around its other steps: within :func:`big_blocks_mapped` each big array is a
    new map, faulted in page by page, and with small pages Online Retail's rank step took
    8.2-8.9 s against 5.8 s (huge pages freed a moment before are quick to take again)."""
    import numpy as np

    core = getattr(np, "_core", None)  # numpy 2 (numpy 1: np.core)
    flip = getattr(getattr(core or np.core, "multiarray", None), "_set_madvise_hugepage", None)
    if flip is None:  # another numpy: its own default
        yield
        return
    before = flip(False)
    try:
        yield
    finally:
        flip(before)


def _libc(name: str) -> Any:
    """glibc's function ``name`` (``malloc_trim``, ``mallopt``), or None (another C library, or
    none found)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")
_M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
GLIBC_MMAP_THRESHOLD = 128 * 1024  # glibc's starting value (it then grows with what is freed)
BIG_BLOCK = 1 << 20  # what a build maps on its own: blocks of 1 MiB and more


@contextmanager
def big_blocks_mapped(threshold: int = BIG_BLOCK) -> Iterator[bool]:
    """While the block runs, glibc gives every allocation of ``threshold`` bytes or more its own
    memory map, handed back to the system the moment it is freed (``mallopt(M_MMAP_THRESHOLD)``);
    yields whether that could be set (glibc only). By default glibc raises its threshold to the
    largest block freed so far (up to 32 MiB), so a build's numpy arrays of a few MB came from
    the heap, and what one thread freed stayed in its arena, counted in the RSS, while the other
    thread allocated: at 50k products / 4M lines the rank step peaked at 3.71 GB, 3.33 GB with
    1 MiB mapped, the whole build 3.81 -> 3.59 GB, in the same time. After the block the
    threshold is glibc's starting one again (fixed: it no longer grows by itself)."""
    if _MALLOPT is None or not _MALLOPT(_M_MMAP_THRESHOLD, int(threshold)):
        yield False
        return
    try:
        yield True
    finally:
        _MALLOPT(_M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD)


def give_back_memory(*, collect: bool = False) -> None:
    """Hand memory the build has freed back to the operating system: Arrow's pool (mimalloc /
    jemalloc) told to release what it caches and glibc's heap trimmed (~0.1 ms). Freed blocks
    otherwise stay counted in the process's RSS and the next step's peak sits on top of them (at
    50k products / 4M lines ~0.4 GB before the store step). ``collect``: Python's cycles collected
    first (~0.25 s once torch is loaded: only before the store, not after every step)."""
    if collect:
        gc.collect()
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)

"""How much memory this process can still take: the kernel's ``MemAvailable`` (free memory plus
the page cache and other memory it can reclaim, /proc/meminfo), bounded by the container's limit
when the process runs under one (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``: the
limit less what the group uses, its reclaimable file cache counted as free). Linux only; None
elsewhere or when nothing can be read. And :func:`give_back_memory`: what the process freed,
handed back to the operating system. Imports nothing of tiein.

>>> meminfo = "MemTotal: 24000000 kB\\nMemAvailable: 12000000 kB\\n"
>>> available_memory(meminfo=meminfo, cgroup=None)
12288000000
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from pathlib import Path
from typing import Any

import pyarrow as pa

PROC_MEMINFO = Path("/proc/meminfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")


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


def available_memory(meminfo: str | None = None, cgroup: Path | None = CGROUP_ROOT) -> int | None:
    """Bytes of memory this process can still take (module doc); ``meminfo`` / ``cgroup`` stand
    in for /proc/meminfo and /sys/fs/cgroup (tests). None when it cannot be told."""
    text = meminfo if meminfo is not None else _read(PROC_MEMINFO)
    kb = _field(text, "MemAvailable")
    found = [kb * 1024] if kb is not None else []
    limited = cgroup_available(cgroup) if cgroup is not None else None
    if limited is not None:
        found.append(limited)
    return min(found) if found else None


def _libc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another C library, or none found)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _libc_trim()


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

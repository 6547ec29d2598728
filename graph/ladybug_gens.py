"""The generation directories of the embedded store (tiein/graph/ladybug_store.py): the pointer
``CURRENT``, which generations are kept, and finding the one that holds a given build.

The store keeps two finished generations: the one that answers and the one that answered before
it (the previous build or update). ``tiein rollback`` then only points ``CURRENT`` back at the
previous one (:meth:`EmbeddedStore.switch_to_state`): no reload, and a server finds the
snapshot files it wrote for that generation still there. Anything older, and any generation a
crash left half-built (it still holds ``BUILDING``), is deleted by the next load or ``clean``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from tiein.durable import fsync_dir
from tiein.errors import StoreUnavailable

CURRENT = "CURRENT"
DB_FILE = "graph.lbug"
META_FILE = "meta.json"
# in a generation while its first load runs: a crash there leaves debris, not a lost pointer
BUILDING = ".building"
GEN_PREFIX = "gen-"


def new_generation_name() -> str:
    """A fresh generation name: ``gen-`` + the time in ns (so names sort by age) + a random tag."""
    return f"{GEN_PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:8]}"


def read_pointer(path: Path, *, damaged_if_missing: bool = False) -> str | None:
    """The generation ``path/CURRENT`` names; None when the store was never loaded.
    StoreUnavailable when it is unreadable or corrupt, or missing while generations exist (or
    ``damaged_if_missing``: it answered before): the store was damaged, not never built."""
    try:
        name = (path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if damaged_if_missing or finished(path):
            raise StoreUnavailable(
                f"the graph store {path.name}/ lost its pointer {CURRENT}: rebuild it or run `tiein rollback`"
            ) from None
        return None
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the graph store's pointer {CURRENT}: {exc.strerror}") from exc
    if not name.startswith(GEN_PREFIX) or "/" in name or "\\" in name:
        raise StoreUnavailable(f"the graph store's pointer {CURRENT} is corrupt: {name[:40]!r}")
    return name


def write_pointer(path: Path, gen: str) -> None:
    """Point ``path/CURRENT`` at ``gen``: a temporary file, fsynced, ``os.replace``-d over it
    (atomic on POSIX and Windows), then the directory fsynced."""
    tmp = path / f"{CURRENT}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(gen + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / CURRENT)
    fsync_dir(path)


def finished(path: Path) -> list[str]:
    """The generations of ``path`` whose load finished, oldest first (names start with the time)."""
    try:
        children = list(path.iterdir())
    except OSError:
        return []
    return sorted(
        c.name
        for c in children
        if c.name.startswith(GEN_PREFIX) and c.is_dir() and not (c / BUILDING).exists()
    )


def remove_old(path: Path, keep: set[str]) -> None:
    """Delete every generation but ``keep`` (and stray pointer temp files). The caller holds the
    writer lock, so no other process is building one of them."""
    for child in path.iterdir():
        if child.name in keep:
            continue
        if child.name.startswith(GEN_PREFIX) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith(f"{CURRENT}.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


def previous_of(path: Path, current: str) -> str | None:
    """The kept generation besides ``current``: the newest other finished one (after a rollback,
    the build rolled back from)."""
    others = [g for g in finished(path) if g != current]
    return others[-1] if others else None


def state_of(gen_dir: Path) -> str | None:
    """The ``state_id`` in a generation's meta.json (the home generation it holds), or None."""
    try:
        meta = json.loads((gen_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sid = meta.get("state_id") if isinstance(meta, dict) else None
    return sid if isinstance(sid, str) else None


def generation_holding(path: Path, state_id: str, current: str | None) -> str | None:
    """A finished generation other than ``current`` that holds the build ``state_id``, or None."""
    for gen in reversed(finished(path)):
        if gen != current and (path / gen / DB_FILE).exists() and state_of(path / gen) == state_id:
            return gen
    return None

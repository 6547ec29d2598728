"""The home directory (``--home``, env ``TIEIN_HOME``, default ``./tiein-data``) and its one switch.

Layout::

    graph/                  the embedded graph store (its own generations, graph/ladybug_store.py)
    gens/<state_id>/        one build or update: index/ (FAISS + manifest) and inputs/ (what
                            `tiein update` and `tiein rollback` read: normalised inputs, pair
                            counts, the loaded graph as Parquet); complete once renamed in
    gens/.tmp-<state_id>/   a generation being written (removed by recovery)
    CURRENT                 {"current": state_id, "previous": state_id, "store": url}: the
                            generation that answers, the one `tiein rollback` returns to, and
                            the store they were loaded into
    .build.lock             held by the one build / update / rollback writing this home
    .embedding-*/           the titles a build's embedding worker is given (removed when it
                            ends, and by recovery when the build and its worker were killed)
    cache/ feedback/ scenes.discovered.yaml

How a build switches (so that a crash at any point leaves the old or the new home whole):

1. write index/ and inputs/ into ``gens/.tmp-<new>``, fsync, rename it to ``gens/<new>``;
2. load the graph into the store, whose own switch is atomic (a new embedded generation and
   its pointer, or one Neo4j transaction) and whose meta carries ``state_id = <new>``;
3. replace ``CURRENT`` (temp file, fsync, rename) with ``{"current": <new>, "previous": <old>}``;
4. remove every generation but those two.

The store is the commit point. A crash before 2 leaves the store and ``CURRENT`` on the old
generation (the staged one is debris); a crash between 2 and 3 leaves a store that is ahead of
``CURRENT``: :func:`recover` (run by every command that writes the home, and by ``serve`` at
start) sees that the store's ``state_id`` names a complete generation and moves ``CURRENT``
forward — only for the store the pointer names (a build into another store, ``--store``, moves
the pointer to that store; the home's own store then keeps its older graph untouched). Recovery also removes debris and migrates the older layout (``HOME/index`` and
``HOME/inputs`` beside ``graph/``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiein.durable import fsync_dir
from tiein.errors import ConfigError, StoreError
from tiein.faults import fault
from tiein.graph import open_store

GENS = "gens"
POINTER = "CURRENT"
LOCK = ".build.lock"
INDEX = "index"
INPUTS = "inputs"
_TMP = ".tmp-"
# debris of the older layout (before generations): temp and old copies of index/ and inputs/;
# and the titles an embedding job was given, left when a build and its worker were killed at once
# (an out-of-memory kill of the whole group; a job runs only inside a build, which holds the home
# lock that recovery takes). The prefix is tiein.embeddings.worker.JOB_PREFIX, written out here:
# importing tiein.embeddings costs ~0.13 s per command (a test checks the two agree)
EMBEDDING_JOB_PREFIX = ".embedding-"
_DEBRIS = (".index.tmp-", ".index.old-", ".inputs.tmp-", ".inputs.old-", EMBEDDING_JOB_PREFIX)


@dataclass(frozen=True)
class Pointer:
    """What ``HOME/CURRENT`` says: the generation that answers and the one before it."""

    current: str | None = None
    previous: str | None = None
    store: str | None = None


def read_pointer(home: Path | str) -> Pointer:
    """``HOME/CURRENT`` (an empty Pointer before the first build). A damaged file raises
    StoreError without the path's parents (the message names the home-relative file)."""
    path = Path(home) / POINTER
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        return Pointer()
    except OSError as exc:
        raise StoreError(f"cannot read the home pointer {POINTER}: {exc.strerror}") from exc
    try:
        d = json.loads(raw)
        store = d.get("store")
        return Pointer(
            current=_sid(d.get("current")),
            previous=_sid(d.get("previous")),
            store=store if isinstance(store, str) else None,
        )
    except (ValueError, AttributeError) as exc:
        raise StoreError(f"the home pointer {POINTER} is damaged: rebuild with `tiein build`") from exc


def _sid(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "/" in value or value.startswith("."):
        raise ValueError(f"bad generation name {value!r}")
    return value


def write_pointer(home: Path | str, pointer: Pointer) -> None:
    """Replace ``HOME/CURRENT`` atomically and durably."""
    home = Path(home)
    tmp = home / f".{POINTER}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"current": pointer.current, "previous": pointer.previous, "store": pointer.store}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, home / POINTER)
    fsync_dir(home)


def gen_dir(home: Path | str, state_id: str) -> Path:
    return Path(home) / GENS / state_id


def current_dir(home: Path | str) -> Path | None:
    """The directory of the generation that answers, or None before the first build."""
    p = read_pointer(home)
    return gen_dir(home, p.current) if p.current else None


def index_dir(home: Path | str) -> Path:
    """Where the FAISS index of the answering generation is (may not exist: no build yet, or a
    build without embeddings)."""
    d = current_dir(home)
    return (d if d is not None else Path(home) / GENS / "none") / INDEX


def inputs_dir(home: Path | str) -> Path:
    """Where the build state of the answering generation is (may not exist)."""
    d = current_dir(home)
    return (d if d is not None else Path(home) / GENS / "none") / INPUTS


@contextmanager
def home_lock(home: Path | str) -> Iterator[Path]:
    """Hold ``HOME/.build.lock`` (non-blocking): a second writer gets a ConfigError at once."""
    import fcntl

    home = Path(home)
    if home.exists() and not home.is_dir():
        raise ConfigError(f"the home {home} is a file, not a directory")
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(
                f"another build, update or rollback is writing {home}; wait for it to finish"
            ) from exc
        yield home
    finally:
        os.close(fd)  # closing releases the flock


class Staging:
    """A generation being written: ``gens/.tmp-<state_id>``; :meth:`commit` renames it in."""

    def __init__(self, home: Path | str, state_id: str) -> None:
        self.home = Path(home)
        self.state_id = state_id
        self.path = self.home / GENS / f"{_TMP}{state_id}"
        self.final = gen_dir(home, state_id)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def commit(self) -> Path:
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        os.replace(self.path, self.final)
        fsync_dir(self.final.parent)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def store_key(url: str, home: Path | str) -> str:
    """``url`` as the pointer records it: ``HOME/<path>`` for a store inside the home (so a home
    can be moved), an absolute path for another local store, the URL without credentials
    otherwise."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
    path = Path(url).resolve()
    try:
        return f"HOME/{path.relative_to(Path(home).resolve()).as_posix()}"
    except ValueError:
        return str(path)


def switch(home: Path | str, state_id: str, store_url: str, *, previous: str | None = None) -> Pointer:
    """Point ``CURRENT`` at ``state_id`` loaded into ``store_url`` (the old current becomes
    previous unless given), then remove the generations that are neither. The caller holds
    :func:`home_lock`."""
    old = read_pointer(home)
    prev = previous if previous is not None else old.current
    pointer = Pointer(
        current=state_id,
        previous=prev if prev != state_id else old.previous,
        store=store_key(store_url, home),
    )
    write_pointer(home, pointer)
    fault("home.after_pointer")
    remove_debris(home, pointer)
    return pointer


def remove_debris(home: Path | str, pointer: Pointer) -> list[str]:
    """Delete staged and unreferenced generations, the older layout's temp copies and embedding
    jobs' folders; returns the names removed. The caller holds :func:`home_lock`."""
    home = Path(home)
    keep = {pointer.current, pointer.previous}
    removed = []
    gens = home / GENS
    if gens.is_dir():
        for child in gens.iterdir():
            if child.name not in keep:
                _remove(child)
                removed.append(f"{GENS}/{child.name}")
    for child in home.iterdir() if home.is_dir() else []:
        if child.name.startswith(_DEBRIS) or child.name == f".{POINTER}.tmp":
            _remove(child)
            removed.append(child.name)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover(home: Path | str, store: Any, store_url: str) -> list[str]:
    """Make the home whole after a crash (see the module docstring), against ``store`` (open,
    at ``store_url``). Returns what it did, one line each. The caller holds :func:`home_lock`."""
    home = Path(home)
    store_state = store_state_id(store)
    done = _migrate(home, store_state, store_url)
    pointer = read_pointer(home)
    ours = pointer.store is None or pointer.store == store_key(store_url, home)
    if ours and store_state and store_state != pointer.current and gen_dir(home, store_state).is_dir():
        # crashed after the store switched, before CURRENT did: finish the switch
        pointer = Pointer(current=store_state, previous=pointer.current, store=store_key(store_url, home))
        write_pointer(home, pointer)
        done.append(f"finished the switch to generation {store_state}")
    removed = remove_debris(home, pointer)
    if removed:
        done.append(f"removed {len(removed)} unfinished or stale folder(s): {', '.join(sorted(removed))}")
    return done


def _migrate(home: Path, store_state: str | None, store_url: str) -> list[str]:
    """Move ``HOME/inputs`` and ``HOME/index`` of the older layout into a generation."""
    if (home / POINTER).exists() or not ((home / INPUTS).is_dir() or (home / INDEX).is_dir()):
        return []
    sid = None
    try:
        sid = json.loads((home / INPUTS / "build.json").read_text("utf-8")).get("state_id")
    except (OSError, ValueError, AttributeError):
        sid = None
    sid = sid or store_state
    if not sid:
        return []
    target = gen_dir(home, sid)
    target.mkdir(parents=True, exist_ok=True)
    for part in (INPUTS, INDEX):
        if (home / part).is_dir():
            os.replace(home / part, target / part)
    write_pointer(home, Pointer(current=sid, store=store_key(store_url, home)))
    return [f"moved {INPUTS}/ and {INDEX}/ into {GENS}/{sid} (the generations layout)"]


def recover_store(home: Path | str, store_url: str) -> list[str]:
    """:func:`recover` with the store at ``store_url`` opened for it (an unreachable store fails
    here, before any slow work). The caller holds :func:`home_lock`."""

    store = open_store(store_url)
    try:
        return recover(home, store, store_url)
    finally:
        store.close()


def store_state_id(store: Any) -> str | None:
    """The ``state_id`` of the graph the store answers now (None for an empty store)."""
    meta = store.stats().get("meta") or {}
    sid = meta.get("state_id") if isinstance(meta, dict) else None
    return sid if isinstance(sid, str) else None


def recover_if_idle(home: Path | str, store: Any, store_url: str) -> list[str]:
    """:func:`recover` unless a build, update or rollback is writing the home right now (it
    finishes its own switch); for commands that only read (``serve``, ``stats``)."""
    home = Path(home)
    if not home.is_dir():
        return []
    try:
        with home_lock(home):
            done = recover(home, store, store_url)
            store.clean()
            return done
    except ConfigError:
        return []

"""A new generation of the embedded store loaded in two parts, so that the store's ``COPY``
(LadybugDB, one core, releases the GIL) overlaps the build's last steps instead of following them.

``EmbeddedStore.stage(early, kinds)`` is called when the tables that no later step changes are
known — the products with their category, brand and attribute nodes, the co-purchase and
co-view edges, and the relation kinds named in ``kinds`` (the build names "next": the season and
segment evidence skip it) — and returns a :class:`StagedLoad`: it takes the store's writer lock,
makes the new generation's directory (marked ``BUILDING``, like every unfinished load) and
``COPY``-es those tables on a thread of its own while the build computes the rest (the season
step, which runs on one core). :meth:`StagedLoad.finish` then does what ``replace`` does with
the whole graph — derives and validates every table (tiein.graph.build.graph_tables), checks the
memory the heaviest ``COPY`` needs — and checks that every early table is exactly the one the
whole graph derives (``pa.Table.equals``): when one differs (a step changed what it was said to
leave alone) the early part is thrown away and the whole graph loaded afresh, as ``replace``
would. Then it ``COPY``-es the other tables, writes the snapshot files and switches ``CURRENT``
exactly as ``replace``. So the store ends the same as after ``replace(data)``: the same tables
``COPY``-ed once each, the node and relationship tables created in the same order.

Safety is ``replace``'s: until the switch ``CURRENT`` names the previous generation; an
exception anywhere (in the build between the two parts too: the caller calls :meth:`discard`)
removes the new directory, and a kill leaves it with its ``BUILDING`` mark, which the next load
or ``clean`` removes. The writer lock is held from ``stage`` to ``finish`` / ``discard``, so no
other load (an update, a rollback) starts in between.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pyarrow as pa

from tiein.errors import StoreError
from tiein.faults import fault
from tiein.graph.base import Progress
from tiein.graph.build import GraphTables, graph_tables
from tiein.graph.ladybug_gens import BUILDING, DB_FILE, META_FILE, new_generation_name
from tiein.graph.ladybug_load import build_database, loadable_tables, write_meta
from tiein.graph.ladybug_support import _WriterLock
from tiein.model import REL_TYPE, GraphData
from tiein.sysmem import available_memory

if TYPE_CHECKING:
    from tiein.graph.ladybug_store import EmbeddedStore

log = logging.getLogger(__name__)


# what a build knows before its evidence steps: derived from the products and the pair edges alone
EARLY_NODES = ("Product", "Category", "Brand", "Attribute")
EARLY_STATIC = (
    *EARLY_NODES,
    "IN_CATEGORY",
    "CHILD_OF",
    "HAS_BRAND",
    "HAS_ATTRIBUTE",
    "CO_PURCHASED",
    "CO_VIEWED",
)


# measured COPYing the 50k-product / 4M-line shop's early tables one by one: ~420 bytes a
# relationship (1.5M co-purchase edges: +0.65 GB); the evidence text goes into Evidence nodes,
# ~1.2 x the text (graph/ladybug_load.py)
EARLY_BYTES_PER_ROW = 500
EARLY_TEXT_FACTOR = 2
EARLY_SHARE = 4  # the early COPY may take at most 1/4 of the memory left (the build's steps go on)


def early_fits(early: GraphData, available: Callable[[], int | None] | None = None) -> bool:
    """Whether the early part's ``COPY`` (an estimate from its rows and evidence text, above the
    measured peak) fits in a quarter of the memory left (tiein.sysmem; True where that cannot be
    read). A 200k-product / 16M-line shop's would not: its season step is its peak already."""
    rows = early.co_purchased.num_rows + early.co_viewed.num_rows + early.relations.num_rows
    text = early.relations.column("evidence").nbytes if early.relations.num_rows else 0
    need = EARLY_BYTES_PER_ROW * rows + EARLY_TEXT_FACTOR * text
    left = (available or available_memory)()
    return left is None or need * EARLY_SHARE <= left


class StagedLoad:
    """One generation being loaded in two parts (see the module doc). Made by
    ``EmbeddedStore.stage``; ends with :meth:`finish` (switches to the whole graph) or
    :meth:`discard` (removes it); :meth:`discard` after :meth:`finish` does nothing."""

    def __init__(self, store: EmbeddedStore, early: GraphData, kinds: Iterable[str]) -> None:
        self.store = store
        self.names = frozenset((*EARLY_STATIC, *(REL_TYPE[k] for k in kinds)))
        self.gen = new_generation_name()
        self.gen_dir = store.path / self.gen
        self.seconds = 0.0  # the thread's time: deriving and COPY-ing the early tables
        self.reloaded: str | None = None  # the early table that differed, when finish reloaded it all
        self._early = early
        self._kept: dict[str, pa.Table] = {}
        self._kept_evidence: dict[str, pa.Table] = {}
        self._error: BaseException | None = None
        self._ended = False
        self._lock = _WriterLock(store.path / ".lock")
        store.path.mkdir(parents=True, exist_ok=True)
        self._lock.__enter__()
        try:
            self.gen_dir.mkdir()
            (self.gen_dir / BUILDING).touch()
        except BaseException:
            self._lock.__exit__()
            shutil.rmtree(self.gen_dir, ignore_errors=True)
            raise
        fault("store.building")
        self._thread = threading.Thread(target=self._load_early, args=(early,), name="tiein-staged-load")
        self._thread.start()

    def _load_early(self, early: GraphData) -> None:
        t0 = time.perf_counter()
        try:
            tables = graph_tables(early)
            # one thread: the build's steps meanwhile need the other core (two: the season step slows more)
            build_database(self.gen_dir / DB_FILE, tables, 1, None, only=self.names)
            # kept to compare: the relations (the other early tables follow from the very same inputs)
            self._kept = {name: tables.rels[name] for name in self.names if name not in EARLY_STATIC}
            self._kept_evidence = {name: tables.evidence[name] for name in self._kept}
            fault("store.staged")
        except BaseException as exc:  # handed to finish, which raises it on the caller's thread
            self._error = exc
        self.seconds = time.perf_counter() - t0

    def _differing(self, data: GraphData, whole: GraphTables) -> str | None:
        """The first early table that is not exactly the whole graph's, or None: the products and
        pair edges must be the very tables given to ``stage`` (``graph_tables`` derives the same
        rows from the same input), each early relation kind's rows equal."""
        for what in ("products", "co_purchased", "co_viewed"):
            if getattr(data, what) is not getattr(self._early, what):
                return what
        for name, part in self._kept.items():
            if not part.equals(whole.rels[name], check_metadata=True):
                return name
            if not self._kept_evidence[name].equals(whole.evidence[name], check_metadata=True):
                return name
        return None

    def finish(self, data: GraphData, progress: Progress | None = None) -> None:
        """Load the rest of ``data`` (the whole graph, early tables included) and switch to it:
        afterwards the store answers as after ``replace(data)``; on any failure the previous
        graph answers and the new generation is gone."""
        if self._ended:
            raise StoreError("this staged load has ended already")
        try:
            # as replace does (the memory check of the tables not loaded yet)
            tables = loadable_tables(data, skip=self.names)
            self._thread.join()
            if self._error is not None:
                raise self._error
            store = self.store
            self.reloaded = self._differing(data, tables)
            with store._lock:
                if self.reloaded is None:
                    store._new_generation(lambda d: self._rest(tables, progress), tables, gen=self.gen)
                else:  # a step changed an early table: start again with the whole graph
                    log.warning(
                        "the early %s table changed after it was loaded: loading the whole graph",
                        self.reloaded,
                    )
                    shutil.rmtree(self.gen_dir, ignore_errors=True)
                    store._new_generation(lambda d: store._build(d, tables, progress), tables)
            self._ended = True  # switched: nothing left to remove
        finally:
            self.discard()
        if progress:
            progress("switch", 1, 1)

    def _rest(self, tables: GraphTables, progress: Progress | None) -> None:
        write_meta(self.gen_dir / META_FILE, tables.meta)
        build_database(self.gen_dir / DB_FILE, tables, self.store.num_threads, progress, skip=self.names)

    def discard(self) -> None:
        """Stop here: wait for the early ``COPY``, remove the generation (unless it was switched
        to) and release the writer lock. Safe to call twice."""
        if self._thread.is_alive():
            self._thread.join()
        if not self._ended:
            self._ended = True
            shutil.rmtree(self.gen_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._lock.__exit__()

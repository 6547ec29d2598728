"""A read snapshot of a graph store: the same answers, without a query per call.

:class:`SnapshotStore` wraps any :class:`tiein.graph.base.GraphStore` (embedded or Neo4j). It reads
every product, every relation of each kind, the scenes and their members once, in bulk — one
query per label / relationship type, columnar (``read_table``: Arrow straight from LadybugDB, or
built column by column from Neo4j records) — into Arrow tables (tiein.graph.snapshot_arrow: one
product's related list of a kind is a contiguous slice, found through an offsets column) and then
answers ``product``, ``related``, ``scenes``, ``scene`` and ``stats`` from them with exactly the
answers of the wrapped store (tiein.graph.base's ordering rule and shared helpers; tests/stores.py
runs the whole contract suite on a snapshot of the embedded store). This is what makes a batch
export of 50k products through the ordinary ``bundle()`` / ``related_payload()`` code path fast.

Shared between processes. For the embedded store the tables are written once per generation as
uncompressed Arrow IPC files beside it (``gen-*/snapshot-v1.<generation>/``, by the first process
that needs them, under a file lock, renamed in whole) and every process memory-maps them: the
workers of ``tiein serve --workers N`` share the page cache's one copy instead of holding one each,
and a snapshot whose files exist opens in milliseconds without querying LadybugDB at all. With
``files=False``, for Neo4j (no generation directory) or where the directory cannot be written, the
tables are held in the process's memory.

Consistency. The snapshot is one generation of the graph: the bulk reads are retried until the
store's ``generation()`` token (embedded store) is the same before and after them (files are
written only for a generation read whole). With ``follow=True`` (the default) each call compares
that token (one small file read) and reloads after a rebuild, so a long-lived snapshot never
answers from an old graph; ``follow=False`` keeps the graph it loaded (an export reads one
consistent graph even if a rebuild lands meanwhile). Stores without a ``generation()`` (Neo4j) are
loaded once; call :meth:`SnapshotStore.refresh`.

``background=True`` (what the API server uses) switches without a stall: the call that sees a new
generation starts loading it in a background thread (opening its files, or reading the store and
writing them) and every call keeps answering from the previous graph until the new one is whole,
then the reference is swapped (each answer still comes from one generation; the old generation's
mapping goes when its last answer is done). A failed background read is logged and tried again at
most once a second.

Memory: the tables take about a fifth of what per-row Python objects took (Online Retail: see
docs/stores.md); memory-mapped, they are counted once for all processes. Each process keeps only
a product id -> row dict and the scenes' small indexes.

``query`` / ``query_rows`` are delegated to the wrapped store (analysts' Cypher needs the real
engine); ``replace`` loads the wrapped store and then reloads the snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError, ProductNotFound, StoreError, StoreUnavailable
from tiein.graph.base import (
    PRODUCT_FIELDS,
    GraphDelta,
    GraphStore,
    Progress,
    candidates_answer,
    id_list,
    parse_evidence,
    pick_scene,
    product_scene_list,
    scene_detail,
)
from tiein.graph.build import GraphTables
from tiein.graph.snapshot_arrow import (
    LOCK_FILE,
    REL_PROPS,
    SCENE_COLUMNS,
    Graph,
    build_tables,
    file_lock,
    graph_of,
    open_files,
    snapshot_dir,
    write_files,
)
from tiein.model import REL_TYPE, GraphData, check_kind

log = logging.getLogger("tiein.snapshot")
RETRY_S = 1.0  # background mode: the least time between two attempts at reading a new generation
__all__ = ["PRODUCTS_ALL", "REL_PROPS", "RELATIONS_ALL", "SnapshotStore"]

# ----------------------------------------------------------------------------- bulk reads
# Plain Cypher that runs unchanged on LadybugDB and Neo4j (checked by Neo4j's parser in
# tests/test_neo4j_cypher.py). Built from tiein.graph.base's field lists, so a new product field or
# relation kind is read without touching this module.
PRODUCTS_ALL = (
    "MATCH (q:Product) RETURN " + ", ".join(f"q.{f} AS {f}" for f in PRODUCT_FIELDS) + " ORDER BY product_id"
)
RELATIONS_ALL: dict[str, str] = {
    kind: (
        f"MATCH (p:Product)-[r:{rel}]->(q:Product) WITH p, q, r, r.evidence_id AS i "
        "MATCH (e:Evidence {evidence_id: i}) RETURN p.product_id AS src, q.product_id AS dst, "
        + ", ".join(f"e.{f} AS {f}" if f == "evidence" else f"r.{f} AS {f}" for f in REL_PROPS)
    )
    for kind, rel in REL_TYPE.items()
}
SCENES_ALL = (
    "MATCH (s:Scene) RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source ORDER BY scene_id"
)
SCENE_MEMBERS_ALL = (
    "MATCH (q:Product)-[m:IN_SCENE]->(s:Scene) "
    "RETURN q.product_id AS product_id, s.scene_id AS scene_id, m.role AS role, m.weight AS weight"
)
QUERIES = {
    "products": PRODUCTS_ALL,
    "relations": RELATIONS_ALL,
    "scenes": SCENES_ALL,
    "members": SCENE_MEMBERS_ALL,
}


def read_graph(
    store: Any, read: Callable[[str], pa.Table] | None = None
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """The snapshot tables and stats of ``store`` (a GraphStore), read with a few bulk queries
    (``read``, default ``store.read_table``); empty tables when nothing is loaded (the store
    cannot be queried yet)."""
    stats = store.stats()
    if not any(stats["nodes"].values()):
        return build_tables(lambda _: pa.table({}), QUERIES), stats
    return build_tables(read or store.read_table, QUERIES), stats


def tables_reader(tables: GraphTables) -> tuple[Callable[[str], pa.Table], dict[str, Any]]:
    """``read_graph``'s bulk reads and stats answered from the tables a store was just loaded
    with (tiein.graph.build: the rows it holds, in its types), so a new generation's snapshot
    files are written without reading its evidence back out of the database (50k products / 4M
    lines: ~6 s). tests/test_snapshot_files.py checks these tables equal the store's answers."""
    members = tables.rels["IN_SCENE"].select(["src", "dst", "role", "weight"])
    answers = {
        PRODUCTS_ALL: tables.nodes["Product"].select(list(PRODUCT_FIELDS)),
        SCENES_ALL: tables.nodes["Scene"].select(list(SCENE_COLUMNS)).sort_by("scene_id"),
        SCENE_MEMBERS_ALL: members.rename_columns(["product_id", "scene_id", "role", "weight"]),
    }
    for kind, rel in REL_TYPE.items():
        # a relation's Evidence node is the row of tables.evidence[rel] at its own position
        rows = tables.rels[rel].append_column("evidence", tables.evidence[rel].column("evidence"))
        answers[RELATIONS_ALL[kind]] = rows.select(["src", "dst", *REL_PROPS])
    counts = tables.counts()
    meta = json.loads(json.dumps(tables.meta, ensure_ascii=False, sort_keys=True))  # as meta.json holds it
    return answers.__getitem__, {**counts, "meta": meta}


def write_generation_files(path: Path, generation: str, tables: GraphTables | None = None) -> None:
    """Write the snapshot files of the embedded store ``path``'s ``generation`` (finished, not
    yet current) into its directory, so the servers open them at the switch instead of reading
    the store and writing them while they serve (Online Retail: ~1.3 s here, once). From
    ``tables`` when the generation was loaded from them (``replace``), else read from the
    generation (``apply`` changed a copy). A failure is logged, not raised: the first server to
    need the files writes them, as before."""
    from tiein.graph.ladybug_store import EmbeddedStore

    reader = None
    try:
        if tables is None:
            reader = EmbeddedStore(path, generation=generation)
            snapshot, stats = read_graph(reader)
        else:
            read, stats = tables_reader(tables)
            snapshot = build_tables(read, QUERIES)
        if any(stats["nodes"].values()) and json.loads(json.dumps(stats)) == stats:
            write_files(path / generation, generation, snapshot, stats)
    except (OSError, StoreError, pa.ArrowException) as exc:
        log.warning(
            "cannot write the snapshot files of %s (%s); the first server writes them", generation, exc
        )
    finally:
        if reader is not None:
            reader.close()


class SnapshotStore:
    """:class:`tiein.graph.base.GraphStore` answering from a snapshot of ``store`` (see the module
    docstring). ``files``: share memory-mapped files beside each generation of the embedded store
    (None, the default: wherever the store has generation directories; False: always in memory).
    Takes ownership of ``store``: :meth:`close` closes it. Thread-safe."""

    name = "snapshot"

    def __init__(
        self, store: GraphStore, *, follow: bool = True, background: bool = False, files: bool | None = None
    ) -> None:
        self.store = store
        self.follow = follow
        self.background = background
        self.files = files
        self._lock = threading.RLock()
        self._graph: Graph | None = None
        self._reload_lock = threading.Lock()
        self._reloading: threading.Thread | None = None
        self._next_try = 0.0
        self.reloads = 0  # background reloads finished (for tests and benchmarks)
        self.refresh()

    def __repr__(self) -> str:
        return f"SnapshotStore({self.store!r}, follow={self.follow}, background={self.background})"

    # ------------------------------------------------------------------------- loading
    def _generation(self) -> str | None:
        gen = self.store.generation()
        graph = self._graph
        if gen is None and graph is not None and graph.generation is not None:
            # the embedded store says this itself once it has opened a database; a snapshot that
            # answers from its files may never have made it open one
            raise StoreUnavailable(
                "the graph store lost its generation pointer: rebuild it or run `tiein rollback`"
            )
        return gen

    def generation(self) -> str | None:
        """The wrapped store's generation (the snapshot follows it when ``follow``)."""
        return self.store.generation()

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        """Delegated to the wrapped store."""
        return self.store.read_table(cypher, params)

    def clean(self) -> None:
        """Delegated to the wrapped store."""
        self.store.clean()

    @property
    def source(self) -> Path | None:
        """The directory of memory-mapped files the snapshot answers from (None: in memory)."""
        graph = self._graph
        return graph.source if graph is not None else None

    def refresh(self) -> None:
        """Load the graph of the wrapped store's current generation again (its files, or a few
        bulk queries)."""
        with self._lock:
            for _ in range(5):
                before = self._generation()
                graph = self._load(before)
                if self._generation() == before:
                    self._graph = graph
                    return
            raise StoreError(f"{self.store!r} was rebuilt five times while being read; try again later")

    def _read_table(self, cypher: str) -> pa.Table:
        table: pa.Table = self.store.read_table(cypher)
        return table

    def _read(self) -> tuple[dict[str, pa.Table], dict[str, Any]]:
        """The graph's tables and stats, read from the wrapped store (a few bulk queries)."""
        return read_graph(self.store, self._read_table)

    def _in_memory(self, generation: str | None) -> Graph:
        return graph_of(*self._read(), generation, None)

    def _generation_dir(self, generation: str | None) -> Path | None:
        """Where the files of ``generation`` go: the embedded store's generation directory."""
        path = getattr(self.store, "path", None)
        if self.files is False or generation is None or not isinstance(path, Path):
            return None
        gen_dir = path / generation
        return gen_dir if gen_dir.is_dir() else None

    def _load(self, generation: str | None) -> Graph:
        gen_dir = self._generation_dir(generation)
        if gen_dir is None or generation is None:
            return self._in_memory(generation)
        path = snapshot_dir(gen_dir, generation)
        if not path.is_dir():
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(file_lock(gen_dir / LOCK_FILE))
                except OSError as exc:  # the generation was just removed, or a read-only home
                    log.info("no snapshot files for %s (%s); reading it into memory", generation, exc)
                    return self._in_memory(generation)
                if not path.is_dir():  # nobody wrote them while this process waited: write them
                    tables, stats = self._read()
                    if self._generation() != generation:  # not one generation: refresh reads again
                        return graph_of(tables, stats, generation, None)
                    try:
                        if json.loads(json.dumps(stats)) != stats:
                            raise OSError("the store's stats do not survive JSON")
                        write_files(gen_dir, generation, tables, stats)
                    except OSError as exc:
                        log.warning(
                            "cannot write the snapshot files of %s (%s); serving from memory", generation, exc
                        )
                        return graph_of(tables, stats, generation, None)
                    self._release_store()
                    del tables
                    pa.default_memory_pool().release_unused()  # what reading took goes back to the OS
        try:
            tables, stats = open_files(path, generation)
        except (OSError, ValueError, pa.ArrowException, StoreError) as exc:
            log.warning("cannot open the snapshot files %s (%s); reading the store into memory", path, exc)
            return self._in_memory(generation)
        return graph_of(tables, stats, generation, path)

    def _release_store(self) -> None:
        """After writing the files: close the embedded store's database (it reopens on demand,
        e.g. for a Cypher query); the snapshot answers from the files alone."""
        from tiein.graph.ladybug_store import EmbeddedStore

        if isinstance(self.store, EmbeddedStore):
            self.store.close()

    def _current(self) -> Graph:
        graph = self._graph
        if self.background and graph is not None:
            # while a reload is in flight the store is not asked at all: its lock is busy with the
            # bulk reads, and the answer (a new generation) is known already
            loading = self._reloading
            busy = loading is not None and loading.is_alive()
            if self.follow and not busy and self._generation() != graph.generation:
                self._reload_in_background()
            return graph  # the previous generation until the new one is whole
        with self._lock:
            graph = self._graph
            if graph is None or (self.follow and self._generation() != graph.generation):
                self.refresh()
                graph = self._graph
            assert graph is not None
            return graph

    def _reload_in_background(self) -> None:
        with self._reload_lock:
            busy = self._reloading is not None and self._reloading.is_alive()
            if busy or time.monotonic() < self._next_try:
                return
            self._reloading = threading.Thread(target=self._reload, name="tiein-snapshot-reload", daemon=True)
            self._reloading.start()

    def _reload(self) -> None:
        try:
            self.refresh()  # builds the new graph aside; readers keep the old reference meanwhile
            self.reloads += 1
        except Exception as exc:  # the store is mid-switch or broken: keep serving, try again later
            self._next_try = time.monotonic() + RETRY_S
            log.warning("reading the new graph generation failed (%s); still serving the previous one", exc)

    def wait_reloaded(self, timeout: float = 60.0) -> bool:
        """Wait for a background reload in flight (True when none is left running)."""
        t = self._reloading
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    # ------------------------------------------------------------------------- GraphStore
    def replace(self, data: GraphData, progress: Progress | None = None) -> None:
        """Load ``data`` into the wrapped store (atomically, as it does), then reload."""
        with self._lock:
            self.store.replace(data, progress)
            self.refresh()

    def apply(self, delta: GraphDelta, progress: Progress | None = None) -> None:
        """Apply ``delta`` to the wrapped store (atomically, as it does), then reload."""
        with self._lock:
            self.store.apply(delta, progress)
            self.refresh()

    def product(self, product_id: str) -> dict[str, Any]:
        graph = self._current()
        row = graph.ids.get(product_id)
        if row is None:
            raise ProductNotFound(product_id)
        return graph.product(row)

    def related(self, product_id: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        check_kind(kind)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        return self._related(self._current(), product_id, kind, k)

    @staticmethod
    def _related(graph: Graph, product_id: str, kind: str, k: int) -> list[dict[str, Any]]:
        src = graph.ids.get(product_id)
        if src is None:
            raise ProductNotFound(product_id)
        start, end = graph.span(kind, src)
        dst, related_row = graph.dst[kind], graph.related_row[kind]
        out = []
        for i in range(start, min(end, start + k)):
            row = related_row(i, dst[i])
            row["evidence"] = parse_evidence(row["evidence"], product_id, row["product_id"], kind)
            out.append(row)
        return out

    def stats(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(self._current().stats)

    def scenes(self) -> list[dict[str, Any]]:
        return [{**s, "roles": list(s["roles"])} for s in self._current().scene_list]

    def _pick_scene(self, graph: Graph, name_or_id: str) -> dict[str, Any]:
        """As the stores' SCENE_LOOKUP: scenes whose id is ``name_or_id`` or whose id or name
        equals it lower-cased (an exact id always equals it lower-cased too)."""
        key = str(name_or_id)
        found = [dict(s) for s in graph.scene_keys.get(key.lower(), [])]
        return pick_scene(key, found)

    def scene(self, name_or_id: str) -> dict[str, Any]:
        graph = self._current()
        scene = self._pick_scene(graph, name_or_id)
        return scene_detail(scene, graph.member_rows(scene["scene_id"]))

    def scene_summary(self, name_or_id: str) -> dict[str, Any]:
        graph = self._current()
        scene_id = self._pick_scene(graph, name_or_id)["scene_id"]
        found = next(s for s in graph.scene_list if s["scene_id"] == scene_id)
        return {**found, "roles": list(found["roles"])}

    def product_scenes(self, product_id: str) -> list[dict[str, Any]]:
        graph = self._current()
        if product_id not in graph.ids:
            raise ProductNotFound(product_id)
        return product_scene_list([dict(r) for r in graph.product_scenes.get(product_id, [])])

    def scene_roles_of(self, scene_id: str, product_ids: list[str]) -> dict[str, str | None]:
        ids = id_list(product_ids)
        graph = self._current()
        roles = graph.roles.get(str(scene_id), {})
        return {pid: roles[pid] for pid in sorted(ids) if pid in roles}

    def _all_substitutes(self, graph: Graph, product_id: str) -> list[dict[str, Any]]:
        start, end = graph.span("substitute", graph.ids[product_id])
        pids = graph.product_ids
        return [{"a": product_id, "b": pids[j]} for j in graph.dst["substitute"][start:end].tolist()]

    def bundle_candidates(self, product_id: str, k: int = 50) -> dict[str, Any]:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        graph = self._current()
        row = graph.ids.get(product_id)
        if row is None:
            raise ProductNotFound(product_id)
        complements = self._related(graph, product_id, "complement", k)  # one generation
        pairs = self._all_substitutes(graph, product_id)
        for r in complements:
            pairs += self._all_substitutes(graph, r["product_id"])
        scenes = [dict(r) for r in graph.product_scenes.get(product_id, [])]
        return candidates_answer(graph.product(row), scenes, complements, pairs, k)

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Delegated to the wrapped store (read-only there): analysts' Cypher needs the engine."""
        return self.store.query(cypher, params)

    def query_rows(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """Delegated to the wrapped store (see :func:`tiein.cypher.run_cypher`)."""
        return self.store.query_rows(cypher, params, limit=limit, timeout_s=timeout_s)

    def rules(self) -> dict[str, Any]:
        """Delegated to the wrapped store: rules live beside the graph, not in the snapshot, so
        an edit is answered at once (the embedded store re-reads its rules file only when it
        changed)."""
        return self.store.rules()

    def save_rules(
        self, rules: list[dict[str, Any]], *, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Delegated to the wrapped store."""
        return self.store.save_rules(rules, expected_version=expected_version)

    def product_ids(self) -> list[str]:
        """Every product id of the snapshot, sorted (the export's anchor order)."""
        return list(self._current().product_ids)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

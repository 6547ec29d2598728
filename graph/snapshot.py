"""A read snapshot of a graph store held in memory: the same answers, without a query per call.

:class:`SnapshotStore` wraps any :class:`tiein.graph.base.GraphStore` (embedded or Neo4j). It reads
every product, every relation of each kind, the scenes and their members once, in bulk — one
query per label / relationship type, columnar (``read_table``: Arrow straight from LadybugDB, or
built column by column from Neo4j records) — and then answers ``product``, ``related``,
``scenes``, ``scene`` and ``stats`` from memory with exactly the answers of the wrapped store
(tiein.graph.base's ordering rule and shared helpers; tests/stores.py runs the whole contract suite on
a snapshot of the embedded store). This is what makes a batch export of 50k products through the
ordinary ``bundle()`` / ``related_payload()`` code path fast.

Consistency. The snapshot is one generation of the graph: the bulk reads are retried until the
store's ``generation()`` token (embedded store) is the same before and after them. With
``follow=True`` (the default) each call compares that token (one small file read) and reloads
after a rebuild, so a long-lived snapshot never answers from an old graph; ``follow=False`` keeps
the graph it loaded (an export reads one consistent graph even if a rebuild lands meanwhile).
Stores without a ``generation()`` (Neo4j) are loaded once; call :meth:`SnapshotStore.refresh`.

``background=True`` (what the API server uses) switches without a stall: the call that sees a new
generation starts reading it in a background thread and every call keeps answering from the
previous graph until the new one is whole, then the reference is swapped (each answer still comes
from one generation). A failed background read is logged and tried again at most once a second.

Memory: roughly 1 KB per relation row and product (Python objects); 50k products with 800k
relations take about 0.6-0.9 GB.

``query`` / ``query_rows`` are delegated to the wrapped store (analysts' Cypher needs the real
engine); ``replace`` loads the wrapped store and then reloads the snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, ProductNotFound, StoreError
from tiein.graph.base import (
    PRODUCT_FIELDS,
    RELATED_FIELDS,
    GraphDelta,
    GraphStore,
    Progress,
    candidates_answer,
    id_list,
    parse_evidence,
    pick_scene,
    product_scene_list,
    scene_detail,
    scene_list,
)
from tiein.model import REL_TYPE, GraphData, check_kind

log = logging.getLogger("tiein.snapshot")
RETRY_S = 1.0  # background mode: the least time between two attempts at reading a new generation

# The relation properties read per kind, in RELATED_FIELDS order ("kind" is the kind itself).
REL_PROPS = tuple(f for f in RELATED_FIELDS if f != "kind")

# ----------------------------------------------------------------------------- bulk reads
# Plain Cypher that runs unchanged on LadybugDB and Neo4j (checked by Neo4j's parser in
# tests/test_neo4j_cypher.py). Built from tiein.graph.base's field lists, so a new product field or
# relation kind is read without touching this module.
PRODUCTS_ALL = (
    "MATCH (q:Product) RETURN " + ", ".join(f"q.{f} AS {f}" for f in PRODUCT_FIELDS) + " ORDER BY product_id"
)
RELATIONS_ALL: dict[str, str] = {
    kind: (
        f"MATCH (p:Product)-[r:{rel}]->(q:Product) RETURN p.product_id AS src, q.product_id AS dst, "
        + ", ".join(f"r.{f} AS {f}" for f in REL_PROPS)
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

_RELATION_TYPES = {
    "score": pa.float64(),
    "n_ab": pa.int64(),
    "lift": pa.float64(),
    "confidence": pa.float64(),
    "co_view": pa.int64(),
    "similarity": pa.float64(),
    "category_relation": pa.string(),
    "price_ratio": pa.float64(),
    "evidence": pa.string(),
}


def _columns(table: pa.Table, names: list[str] | tuple[str, ...]) -> dict[str, list[Any]]:
    """``table``'s columns as Python lists (an empty table without columns gives empty lists)."""
    if table.num_columns == 0 or table.num_rows == 0:
        return {n: [] for n in names}
    return {n: table.column(n).to_pylist() for n in names}


@dataclass
class _Relations:
    """One kind's relations sorted by (src, score desc, dst asc): rows ``start:end`` of every
    column are ``src``'s related list in the store's order."""

    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    dst: list[str] = field(default_factory=list)
    props: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class _Graph:
    products: dict[str, dict[str, Any]]
    relations: dict[str, _Relations]
    scenes: list[dict[str, Any]]  # SCENE_FIELDS rows by scene_id
    members: dict[str, list[dict[str, Any]]]  # scene_id -> PRODUCT_FIELDS + role, weight
    stats: dict[str, Any]
    generation: str | None
    # product_id -> [{scene_id, name, source, role, weight}]; scene_id -> {product_id: role}
    product_scenes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[str, dict[str, str | None]] = field(default_factory=dict)
    scene_list: list[dict[str, Any]] = field(default_factory=list)  # scenes()'s answer
    scene_keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # lower(id / name) -> scenes


def _sorted_relations(table: pa.Table) -> _Relations:
    """Relations of one kind in tiein.graph.base's order, indexed by source product."""
    out = _Relations(props={f: [] for f in REL_PROPS})
    if table.num_columns == 0 or table.num_rows == 0:
        return out
    table = table.sort_by([("src", "ascending"), ("score", "descending"), ("dst", "ascending")])
    src = table.column("src").combine_chunks()
    n = len(src)
    if n > 1:
        change = pc.not_equal(src.slice(1), src.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = [0, *(change.nonzero()[0] + 1).tolist()]
    else:
        starts = [0]
    ends = [*starts[1:], n]
    firsts = pc.take(src, pa.array(starts)).to_pylist()
    out.spans = {s: (a, b) for s, a, b in zip(firsts, starts, ends, strict=True)}
    out.dst = table.column("dst").to_pylist()
    out.props = {f: table.column(f).cast(_RELATION_TYPES.get(f, pa.string())).to_pylist() for f in REL_PROPS}
    return out


class SnapshotStore:
    """:class:`tiein.graph.base.GraphStore` answering from an in-memory snapshot of ``store`` (see the
    module docstring). Takes ownership of ``store``: :meth:`close` closes it. Thread-safe."""

    name = "snapshot"

    def __init__(self, store: GraphStore, *, follow: bool = True, background: bool = False) -> None:
        self.store = store
        self.follow = follow
        self.background = background
        self._lock = threading.RLock()
        self._graph: _Graph | None = None
        self._reload_lock = threading.Lock()
        self._reloading: threading.Thread | None = None
        self._next_try = 0.0
        self.reloads = 0  # background reloads finished (for tests and benchmarks)
        self.refresh()

    def __repr__(self) -> str:
        return f"SnapshotStore({self.store!r}, follow={self.follow}, background={self.background})"

    # ------------------------------------------------------------------------- loading
    def _generation(self) -> str | None:
        return self.store.generation()

    def generation(self) -> str | None:
        """The wrapped store's generation (the snapshot follows it when ``follow``)."""
        return self.store.generation()

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        """Delegated to the wrapped store."""
        return self.store.read_table(cypher, params)

    def clean(self) -> None:
        """Delegated to the wrapped store."""
        self.store.clean()

    def refresh(self) -> None:
        """Read the whole graph of the wrapped store again (a few bulk queries)."""
        with self._lock:
            for _ in range(5):
                before = self._generation()
                graph = self._read(before)
                if self._generation() == before:
                    self._graph = graph
                    return
            raise StoreError(f"{self.store!r} was rebuilt five times while being read; try again later")

    def _read_table(self, cypher: str) -> pa.Table:
        table: pa.Table = self.store.read_table(cypher)
        return table

    def _read(self, generation: str | None) -> _Graph:
        stats = self.store.stats()
        if not any(stats["nodes"].values()):  # nothing loaded: the stores cannot be queried yet
            return _Graph({}, {k: _Relations() for k in REL_TYPE}, [], {}, stats, generation)
        pt = self._read_table(PRODUCTS_ALL)
        cols = _columns(pt, PRODUCT_FIELDS)
        products = {
            row[0]: dict(zip(PRODUCT_FIELDS, row, strict=True))
            for row in zip(*(cols[f] for f in PRODUCT_FIELDS), strict=True)
        }
        relations = {kind: _sorted_relations(self._read_table(q)) for kind, q in RELATIONS_ALL.items()}
        scenes = pa_rows(self._read_table(SCENES_ALL), ("scene_id", "name", "source"))
        by_id = {s["scene_id"]: s for s in scenes}
        members: dict[str, list[dict[str, Any]]] = {s["scene_id"]: [] for s in scenes}
        product_scenes: dict[str, list[dict[str, Any]]] = {}
        roles: dict[str, dict[str, str | None]] = {s["scene_id"]: {} for s in scenes}
        for m in pa_rows(self._read_table(SCENE_MEMBERS_ALL), ("product_id", "scene_id", "role", "weight")):
            pid, sid = m["product_id"], m["scene_id"]
            p = products.get(pid)
            if p is None or sid not in members:
                raise StoreError(f"scene member {pid!r} of {sid!r} is not in the graph")
            members[sid].append({**p, "role": m["role"], "weight": m["weight"]})
            product_scenes.setdefault(pid, []).append(
                {**by_id[sid], "role": m["role"], "weight": m["weight"]}
            )
            roles[sid][pid] = m["role"]
        keys: dict[str, list[dict[str, Any]]] = {}
        for sc in scenes:
            for name in {sc["scene_id"].lower(), (sc["name"] or "").lower()} - {""}:
                keys.setdefault(name, []).append(sc)
        return _Graph(
            products,
            relations,
            scenes,
            members,
            stats,
            generation,
            product_scenes,
            roles,
            _scene_list(scenes, members),
            keys,
        )

    def _current(self) -> _Graph:
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
        p = self._current().products.get(product_id)
        if p is None:
            raise ProductNotFound(product_id)
        return dict(p)

    def related(self, product_id: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        check_kind(kind)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        graph = self._current()
        if product_id not in graph.products:
            raise ProductNotFound(product_id)
        rel = graph.relations[kind]
        span = rel.spans.get(product_id)
        if span is None:
            return []
        start, end = span
        out = []
        for i in range(start, min(end, start + k)):
            dst = rel.dst[i]
            row = dict(graph.products[dst])
            row["kind"] = kind
            for f in REL_PROPS:
                row[f] = rel.props[f][i]
            row["evidence"] = parse_evidence(row["evidence"], product_id, dst, kind)
            out.append(row)
        return out

    def stats(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(self._current().stats)

    def scenes(self) -> list[dict[str, Any]]:
        return [{**s, "roles": list(s["roles"])} for s in self._current().scene_list]

    def _pick_scene(self, graph: _Graph, name_or_id: str) -> dict[str, Any]:
        """As the stores' SCENE_LOOKUP: scenes whose id is ``name_or_id`` or whose id or name
        equals it lower-cased (an exact id always equals it lower-cased too)."""
        key = str(name_or_id)
        found = [dict(s) for s in graph.scene_keys.get(key.lower(), [])]
        return pick_scene(key, found)

    def scene(self, name_or_id: str) -> dict[str, Any]:
        graph = self._current()
        scene = self._pick_scene(graph, name_or_id)
        return scene_detail(scene, [dict(m) for m in graph.members[scene["scene_id"]]])

    def scene_summary(self, name_or_id: str) -> dict[str, Any]:
        graph = self._current()
        scene_id = self._pick_scene(graph, name_or_id)["scene_id"]
        found = next(s for s in graph.scene_list if s["scene_id"] == scene_id)
        return {**found, "roles": list(found["roles"])}

    def product_scenes(self, product_id: str) -> list[dict[str, Any]]:
        graph = self._current()
        if product_id not in graph.products:
            raise ProductNotFound(product_id)
        return product_scene_list([dict(r) for r in graph.product_scenes.get(product_id, [])])

    def scene_roles_of(self, scene_id: str, product_ids: list[str]) -> dict[str, str | None]:
        ids = id_list(product_ids)
        graph = self._current()
        roles = graph.roles.get(str(scene_id), {})
        return {pid: roles[pid] for pid in sorted(ids) if pid in roles}

    def _all_substitutes(self, graph: _Graph, product_id: str) -> list[dict[str, Any]]:
        rel = graph.relations["substitute"]
        start, end = rel.spans.get(product_id, (0, 0))
        return [{"a": product_id, "b": b} for b in rel.dst[start:end]]

    def bundle_candidates(self, product_id: str, k: int = 50) -> dict[str, Any]:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        graph = self._current()
        product = graph.products.get(product_id)
        if product is None:
            raise ProductNotFound(product_id)
        complements = self.related(product_id, "complement", k)
        pairs = self._all_substitutes(graph, product_id)
        for r in complements:
            pairs += self._all_substitutes(graph, r["product_id"])
        scenes = [dict(r) for r in graph.product_scenes.get(product_id, [])]
        return candidates_answer(dict(product), scenes, complements, pairs, k)

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
        return sorted(self._current().products)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scene_list(
    scenes: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``scenes()``'s answer: the rows a store's SCENES statement gives (one per scene and role:
    smallest weight, member count; a scene without members once, with 0), folded by
    tiein.graph.base.scene_list."""
    rows: list[dict[str, Any]] = []
    for s in scenes:
        by_role: dict[str | None, list[float | None]] = {}
        for m in members[s["scene_id"]]:
            by_role.setdefault(m["role"], []).append(m["weight"])
        if not by_role:
            rows.append({**s, "role": None, "weight": None, "members": 0})
        for role, weights in by_role.items():
            known = [w for w in weights if w is not None]
            rows.append({**s, "role": role, "weight": min(known) if known else None, "members": len(weights)})
    return scene_list(rows)


def pa_rows(table: pa.Table, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """``table``'s rows as dicts of ``names`` (none for an empty table without columns)."""
    cols = _columns(table, names)
    return [dict(zip(names, row, strict=True)) for row in zip(*(cols[n] for n in names), strict=True)]

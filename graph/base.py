"""The one store interface. Every store (embedded LadybugDB, Neo4j) implements it and passes
the same shared test suite (tests/test_store_contract.py), which proves identical answers.

Answers are plain dicts/lists of JSON-able values, so the CLI, the API and exports render the
same objects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, NotFound, StoreError
from tiein.model import GraphData

# progress(step_name, done, total) — stores call it while loading; None means silent.
Progress = Callable[[str, int, int], None]

# Fields of a product as returned by ``product`` and inside every ``related`` row. ``sales_role``
# is one of tiein.model.SALES_ROLES or None; ``product_type`` the build's product type or None
# (see docs/schema.md).
PRODUCT_FIELDS = (
    "product_id",
    "title",
    "category",
    "category_path",
    "brand",
    "price",
    "stock",
    "sales_role",
    "product_type",
)

# Fields of one related row (besides the product fields above), in this order.
RELATED_FIELDS = (
    "kind",
    "score",
    "n_ab",
    "lift",
    "confidence",
    "co_view",
    "similarity",
    "category_relation",
    "price_ratio",
    "evidence",  # dict (parsed from the stored JSON string)
)


@runtime_checkable
class GraphReader(Protocol):
    """What every store answers (the read side; tiein.service, the API, export and snapshots use
    only this).

    Ordering rule shared by every store: ``related`` sorts by score descending, then
    ``product_id`` ascending, so equal scores never make two stores disagree.
    """

    name: str

    def product(self, product_id: str) -> dict[str, Any]:
        """The product's fields (PRODUCT_FIELDS). Raises ProductNotFound."""
        ...

    def related(self, product_id: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        """Top-k products related to ``product_id`` by ``kind`` (one of
        tiein.model.RELATION_KINDS), outgoing direction (src = product_id). Each row holds
        PRODUCT_FIELDS of the related product plus RELATED_FIELDS. Raises ProductNotFound for an
        unknown product and ConfigError for an unknown kind."""
        ...

    def stats(self) -> dict[str, Any]:
        """{"nodes": {label: count}, "relationships": {type: count}, "meta": {...}} where meta is
        GraphData.meta of the last load (build time, sources, model, ...)."""
        ...

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read-only Cypher query in this store's dialect; rows as dicts."""
        ...

    def query_rows(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """:meth:`query` as (column names, rows of plain values): only the first ``limit`` rows,
        interrupted after ``timeout_s`` (CypherError). The analysts' entry point."""
        ...

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        """The whole answer of one of tiein's own read statements as a ``pyarrow.Table`` (bulk
        reads, e.g. graph.snapshot); an empty table when nothing was loaded."""
        ...

    def generation(self) -> str | None:
        """A cheap token that changes with every load (None when the store has no such token:
        Neo4j, or before the first load); a snapshot reloads when it changes."""
        ...

    def scenes(self) -> list[dict[str, Any]]:
        """Every scene, by scene_id: {"scene_id", "name", "source", "members": int,
        "roles": [role names in order]} (see :func:`scene_list`)."""
        ...

    def scene(self, name_or_id: str) -> dict[str, Any]:
        """One scene found by id, else by name (case-insensitive): SCENE_FIELDS plus "members"
        and "roles": [{"role", "weight", "products": [PRODUCT_FIELDS + "weight"]}] in order (see
        :func:`scene_detail`). Raises NotFound naming ``name_or_id``."""
        ...

    def scene_summary(self, name_or_id: str) -> dict[str, Any]:
        """One scene found as :meth:`scene` finds it, shaped like one entry of :meth:`scenes`
        (SCENE_FIELDS, "members", "roles": [role names in order]) without reading its products.
        Raises NotFound naming ``name_or_id``."""
        ...

    def product_scenes(self, product_id: str) -> list[dict[str, Any]]:
        """The scenes ``product_id`` is a member of: SCENE_FIELDS plus its "role" and "weight"
        there, ordered by :func:`product_scene_key`. Raises ProductNotFound."""
        ...

    def scene_roles_of(self, scene_id: str, product_ids: list[str]) -> dict[str, str | None]:
        """{product_id: its role in scene ``scene_id``} for those of ``product_ids`` that are
        members of it (non-members, unknown ids and an unknown scene are simply absent)."""
        ...

    def bundle_candidates(self, product_id: str, k: int = 50) -> dict[str, Any]:
        """What a bundle needs about one product in one call (see :func:`candidates_answer`):
        {"product": PRODUCT_FIELDS, "scenes": :meth:`product_scenes`, "complements": the rows
        of ``related(product_id, "complement", k)`` each with "substitutes": ALL its substitute
        ids, sorted, and (optional, see :func:`candidates_answer`) "scene_roles": {scene_id: its
        role there} for every scene it is in; "substitutes": ALL the product's own substitute
        ids, sorted}. Raises ProductNotFound, and ConfigError for a bad k."""
        ...

    def rules(self) -> dict[str, Any]:
        """The merchant's curated rules kept beside the graph (they survive every ``replace`` and
        ``apply``): ``{"version": int (0 before the first save, +1 per save), "updated_at": ISO
        time or None, "rules": [rule dicts, by rule_id]}`` (see :func:`rules_answer`; their meaning
        is tiein.rules', a store only keeps them)."""
        ...

    def close(self) -> None: ...


class GraphWriter(Protocol):
    """How a graph gets into a store (the build, update and rollback use it)."""

    def replace(self, data: GraphData, progress: Progress | None = None) -> None:
        """Replace the whole graph with ``data`` atomically: on any failure or interruption the
        previous graph stays as it was; loading the same data twice gives the same graph."""
        ...

    def apply(self, delta: GraphDelta, progress: Progress | None = None) -> None:
        """Apply ``delta`` (see :func:`graph_delta`) atomically: afterwards the store answers
        exactly as after ``replace(new)`` where ``delta = graph_delta(old, new)`` and the store
        held ``old``; on any failure the previous graph stays as it was."""
        ...

    def clean(self) -> None:
        """Remove what an interrupted load left behind (a no-op where loads leave nothing)."""
        ...

    def save_rules(
        self, rules: list[dict[str, Any]], *, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Replace the merchant's rules with ``rules`` (flat dicts of str / int / float / bool /
        None, each with an int ``rule_id``) atomically and bump the version; with
        ``expected_version``, RulesConflict unless the stored version is still that one. Returns
        the new :meth:`GraphReader.rules` answer. Rules live outside the graph: ``replace`` and
        ``apply`` never touch them."""
        ...

    def close(self) -> None: ...


class GraphStore(GraphReader, GraphWriter, Protocol):
    """A graph store holding one product relation graph: both sides (every store implements it;
    tests/test_store_contract.py runs the same suite on each)."""


# Fields of a scene as returned by ``scenes`` and ``scene``.
SCENE_FIELDS = ("scene_id", "name", "source")


def _role_key(role: str | None, weight: float | None) -> tuple[bool, float, bool, str]:
    """Role order shared by every store: weight (the role's position) ascending, then name; a
    missing weight or role name sorts last."""
    return (weight is None, weight if weight is not None else 0.0, role is None, role or "")


def scene_list(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``scenes()``'s answer from rows {scene_id, name, source, role, weight (the role's smallest
    member weight), members (count)} — one row per scene and role, a scene without members once
    with 0 members. Shared by every store so their answers stay identical."""
    by_id: dict[str, dict[str, Any]] = {}
    roles: dict[str, list[tuple[str | None, float | None]]] = {}
    for r in rows:
        sid = r["scene_id"]
        by_id.setdefault(sid, {**{f: r[f] for f in SCENE_FIELDS}, "members": 0, "roles": []})
        if r["members"]:
            by_id[sid]["members"] += int(r["members"])
            roles.setdefault(sid, []).append((r["role"], r["weight"]))
    for sid, scene in by_id.items():
        scene["roles"] = [role for role, _ in sorted(roles.get(sid, []), key=lambda rw: _role_key(*rw))]
    return [by_id[sid] for sid in sorted(by_id)]


def pick_scene(name_or_id: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The scene ``name_or_id`` names among ``candidates`` (rows with SCENE_FIELDS whose id or
    name equals it case-insensitively): an exact id first, then an exact name, then the smallest
    id. NotFound when there is none."""
    if not candidates:
        raise NotFound(f"scene {name_or_id!r} is not in the graph (see `tiein scenes list`)")
    for field in ("scene_id", "name"):
        exact = sorted((c for c in candidates if c[field] == name_or_id), key=lambda c: c["scene_id"])
        if exact:
            return exact[0]
    return min(candidates, key=lambda c: c["scene_id"])


def scene_detail(scene: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """``scene()``'s answer from the scene's row and its member rows (PRODUCT_FIELDS + role,
    weight): roles in order (:func:`_role_key`), each role's products by weight, then product
    id. Shared by every store."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for m in members:
        groups.setdefault(m["role"], []).append({**{f: m[f] for f in PRODUCT_FIELDS}, "weight": m["weight"]})
    roles: list[dict[str, Any]] = []
    for role, prods in groups.items():
        prods.sort(key=lambda p: (p["weight"] is None, p["weight"] or 0.0, p["product_id"]))
        weights = [p["weight"] for p in prods if p["weight"] is not None]
        roles.append({"role": role, "weight": min(weights) if weights else None, "products": prods})
    roles.sort(key=lambda r: _role_key(r["role"], r["weight"]))
    return {**{f: scene[f] for f in SCENE_FIELDS}, "members": len(members), "roles": roles}


def parse_evidence(text: str | None, src: str, dst: str, kind: str) -> dict[str, Any]:
    """The evidence JSON string of a stored relation as a dict ({} when none); a corrupt value is
    a StoreError naming the relation. Shared by every store so their answers stay identical."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"evidence of {kind} {src!r} -> {dst!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"evidence of {kind} {src!r} -> {dst!r} is not a JSON object")
    return value


def product_scene_key(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Order of :meth:`GraphStore.product_scenes`: the product's role position (weight)
    ascending, a null weight last, then scene_id."""
    w = row["weight"]
    return (w is None, w if w is not None else 0.0, row["scene_id"])


def product_scene_list(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``product_scenes()``'s answer from rows {scene_id, name, source, role, weight} (rows with a
    null scene_id, from an OPTIONAL MATCH, are dropped). Shared by every store."""
    out = [
        {**{f: r[f] for f in SCENE_FIELDS}, "role": r["role"], "weight": r["weight"]}
        for r in rows
        if r["scene_id"] is not None
    ]
    return sorted(out, key=product_scene_key)


def candidates_answer(
    product: dict[str, Any],
    scenes: list[dict[str, Any]],
    complements: list[dict[str, Any]],
    pairs: list[dict[str, Any]],
    k: int,
    roles: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``bundle_candidates()``'s answer from the product row, its scene rows, its complement rows
    (PRODUCT_FIELDS + RELATED_FIELDS with evidence parsed), substitute pairs {"a": a product id,
    "b": a substitute of it} and, optionally, the complements' scene rows {product_id, scene_id,
    role}: with them every complement carries "scene_roles" (a store that cannot read them in the
    same trip leaves the key out, and callers use :meth:`GraphStore.scene_roles_of`).
    Complements come in the store's ``related`` order (score descending, then product_id) and
    are cut to ``k``. Shared by every store."""
    pid = product["product_id"]
    subs: dict[str, set[str]] = {}
    for p in pairs:
        subs.setdefault(p["a"], set()).add(p["b"])
    comps = [{**r, "substitutes": sorted(subs.get(r["product_id"], ()))} for r in complements[:k]]
    if roles is not None:
        in_scenes: dict[str, dict[str, str | None]] = {}
        for r in sorted(roles, key=lambda r: (r["product_id"], r["scene_id"])):
            in_scenes.setdefault(r["product_id"], {})[r["scene_id"]] = r["role"]
        for c in comps:
            c["scene_roles"] = in_scenes.get(c["product_id"], {})
    return {
        "product": {f: product[f] for f in PRODUCT_FIELDS},
        "scenes": product_scene_list(scenes),
        "complements": comps,
        "substitutes": sorted(subs.get(pid, ())),
    }


class RulesConflict(ConfigError):
    """The rules changed since the version the caller read (a concurrent edit): read and retry."""


# A rule's stored fields: flat scalars only (both stores keep them as they are: JSON beside the
# embedded store's generations, properties of :Rule nodes in Neo4j).
RULE_SCALARS = (str, int, float, bool, type(None))


def check_rule_rows(rules: Any) -> list[dict[str, Any]]:
    """``rules`` as a list of flat dicts with distinct int ``rule_id`` s, sorted by it;
    ConfigError for anything else. Shared by every store so they keep the same things."""
    if isinstance(rules, str | bytes | dict) or not isinstance(rules, list | tuple):
        raise ConfigError(f"rules must be a list of rule dicts, got {type(rules).__name__}")
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or not all(isinstance(k, str) for k in r):
            raise ConfigError(f"rule {i} must be a dict with string keys, got {r!r}")
        rid = r.get("rule_id")
        if isinstance(rid, bool) or not isinstance(rid, int) or rid in seen:
            raise ConfigError(f"rule {i} needs a distinct integer rule_id, got {rid!r}")
        bad = [k for k, v in r.items() if not isinstance(v, RULE_SCALARS)]
        if bad:
            raise ConfigError(f"rule {rid}: fields {bad} must be plain values (str, number, bool, null)")
        seen.add(rid)
        out.append(dict(r))
    return sorted(out, key=lambda r: r["rule_id"])


def rules_answer(version: int, updated_at: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """``rules()``'s answer; shared by every store."""
    return {
        "version": int(version),
        "updated_at": updated_at,
        "rules": sorted((dict(r) for r in rules), key=lambda r: r["rule_id"]),
    }


def check_rules_version(current: int, expected: int | None) -> None:
    """RulesConflict when ``expected`` is given and is not ``current``."""
    if expected is not None and expected != current:
        raise RulesConflict(
            f"the rules changed meanwhile: version {current} is stored, the edit was based on version "
            f"{expected}; read them again and retry"
        )


def id_list(product_ids: Any) -> list[str]:
    """``product_ids`` as a list of distinct strings in their order; ConfigError for anything else."""
    if isinstance(product_ids, str | bytes) or not isinstance(product_ids, list | tuple | set | frozenset):
        raise ConfigError(f"product_ids must be a list of product ids, got {product_ids!r}")
    if not all(isinstance(p, str) for p in product_ids):
        raise ConfigError(f"product_ids must be strings, got {product_ids!r}")
    return list(dict.fromkeys(product_ids))


# ----------------------------------------------------------------------------- incremental change
@dataclass
class GraphDelta:
    """The difference between two graphs, at the level of tiein.graph.build's node / relationship
    tables (so every store applies the same rows it would have loaded).

    ``added_nodes[label]``: rows (NODE_SCHEMAS[label]) whose key is new; ``changed_nodes[label]``:
    rows whose key exists, with ALL their new property values; ``removed_nodes[label]``: one
    column, the keys to delete (with their relationships). ``upserted_rels[type]``: rows
    (REL_SCHEMAS[type]) that replace any relationship of that type between the same ``(src,
    dst)``; ``removed_rels[type]``: ``(src, dst)`` to delete. ``meta`` replaces the graph's meta.
    Apply order (every store): delete removed and upserted relationships, delete removed nodes,
    add nodes, update changed nodes, create upserted relationships, write meta.
    """

    added_nodes: dict[str, pa.Table] = dataclasses.field(default_factory=dict)
    changed_nodes: dict[str, pa.Table] = dataclasses.field(default_factory=dict)
    removed_nodes: dict[str, pa.Table] = dataclasses.field(default_factory=dict)
    upserted_rels: dict[str, pa.Table] = dataclasses.field(default_factory=dict)
    removed_rels: dict[str, pa.Table] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per part, summed over labels / types (what an update summary reports)."""
        return {
            part: sum(t.num_rows for t in getattr(self, part).values())
            for part in ("added_nodes", "changed_nodes", "removed_nodes", "upserted_rels", "removed_rels")
        }

    def size(self) -> int:
        """Rows to write in all."""
        return sum(self.counts().values())


def graph_delta(old: GraphData, new: GraphData, *, only: Collection[str] | None = None) -> GraphDelta:
    """What turns the graph of ``old`` into the graph of ``new`` (see :class:`GraphDelta`).

    Both are derived and validated with :func:`tiein.graph.build.graph_tables`; rows are compared whole
    (NULL-safe, NaN equal to NaN) with DuckDB's ``EXCEPT``, so an unchanged row is never written.
    ``only``: compare just these node labels / relationship types (the caller knows the others
    are equal)."""
    from tiein.graph.build import graph_tables

    return tables_delta(graph_tables(old), graph_tables(new), only=only)


def tables_delta(old: Any, new: Any, *, only: Collection[str] | None = None) -> GraphDelta:
    """:func:`graph_delta` on two :class:`tiein.graph.build.GraphTables`."""
    import duckdb

    delta = GraphDelta(meta=dict(new.meta))
    con = duckdb.connect()
    try:
        for kind, names in (("node", new.nodes), ("rel", new.rels)):
            for name in names:
                if only is not None and name not in only:
                    continue
                o = (old.nodes if kind == "node" else old.rels)[name]
                n = (new.nodes if kind == "node" else new.rels)[name]
                keys = n.column_names[:1] if kind == "node" else n.column_names[:2]
                con.register("o_t", o)
                con.register("n_t", n)
                on = " AND ".join(f'k."{c}" = o_t."{c}"' for c in keys)
                cols = ", ".join(f'"{c}"' for c in keys)
                order = f"ORDER BY {cols}"
                upsert = con.sql(
                    f"SELECT * FROM (SELECT * FROM n_t EXCEPT SELECT * FROM o_t) {order}"
                ).to_arrow_table()
                upsert = upsert.cast(n.schema)
                removed = con.sql(
                    f"SELECT {cols} FROM (SELECT {cols} FROM o_t EXCEPT SELECT {cols} FROM n_t) {order}"
                ).to_arrow_table()
                removed = removed.cast(pa.schema([n.schema.field(c) for c in keys]))
                if kind == "node":
                    con.register("k", upsert.select(keys))
                    existed = con.sql(
                        f"SELECT k.{cols} FROM k WHERE EXISTS (SELECT 1 FROM o_t WHERE {on})"
                    ).to_arrow_table()
                    con.unregister("k")
                    is_old = pc.is_in(upsert.column(keys[0]), value_set=existed.column(0))
                    if upsert.num_rows:
                        delta.added_nodes[name] = upsert.filter(pc.invert(is_old))
                        delta.changed_nodes[name] = upsert.filter(is_old)
                    if removed.num_rows:
                        delta.removed_nodes[name] = removed
                else:
                    if upsert.num_rows:
                        delta.upserted_rels[name] = upsert
                    if removed.num_rows:
                        delta.removed_rels[name] = removed
                con.unregister("o_t")
                con.unregister("n_t")
    finally:
        con.close()
    for part in (delta.added_nodes, delta.changed_nodes):
        for name in [k for k, t in part.items() if t.num_rows == 0]:
            del part[name]
    return delta

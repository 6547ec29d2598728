"""The one store interface. Every store (embedded LadybugDB, Neo4j) implements it and passes
the same shared test suite (tests/test_store_contract.py), which proves identical answers.

Answers are plain dicts/lists of JSON-able values, so the CLI, the API and exports render the
same objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tiein.errors import NotFound, StoreError
from tiein.model import GraphData

# progress(step_name, done, total) — stores call it while loading; None means silent.
Progress = Callable[[str, int, int], None]

# Fields of a product as returned by ``product`` and inside every ``related`` row.
PRODUCT_FIELDS = ("product_id", "title", "category", "category_path", "brand", "price", "stock")

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
class GraphStore(Protocol):
    """A graph store holding one product relation graph.

    Ordering rule shared by every store: ``related`` sorts by score descending, then
    ``product_id`` ascending, so equal scores never make two stores disagree.
    """

    name: str

    def replace(self, data: GraphData, progress: Progress | None = None) -> None:
        """Replace the whole graph with ``data`` atomically: on any failure or interruption the
        previous graph stays as it was; loading the same data twice gives the same graph."""
        ...

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

    def scenes(self) -> list[dict[str, Any]]:
        """Every scene, by scene_id: {"scene_id", "name", "source", "members": int,
        "roles": [role names in order]} (see :func:`scene_list`)."""
        ...

    def scene(self, name_or_id: str) -> dict[str, Any]:
        """One scene found by id, else by name (case-insensitive): SCENE_FIELDS plus "members"
        and "roles": [{"role", "weight", "products": [PRODUCT_FIELDS + "weight"]}] in order (see
        :func:`scene_detail`). Raises NotFound naming ``name_or_id``."""
        ...

    def close(self) -> None: ...


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

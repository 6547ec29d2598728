"""The one store interface. Every store (embedded LadybugDB, Neo4j) implements it and passes
the same shared test suite (tests/test_store_contract.py), which proves identical answers.

Answers are plain dicts/lists of JSON-able values, so the CLI, the API and exports render the
same objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tiein.errors import StoreError
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

    def close(self) -> None: ...


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

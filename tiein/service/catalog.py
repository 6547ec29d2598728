"""Scenes, search, the graph's statistics and health."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from tiein.errors import ConfigError, ProductNotFound
from tiein.home import read_pointer
from tiein.model import MAX_K, check_k
from tiein.rules import NO_FILTERS, Filters, rules_payload
from tiein.service.types import (
    HealthPayload,
    SceneDetailPayload,
    ScenesPayload,
    SearchPayload,
    StatsPayload,
)

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore


class Searcher(Protocol):
    """Text -> (embedding model name, [(product_id, cosine)]) of the ``k`` closest titles
    (:class:`tiein.api.state.Search`)."""

    def search(self, text: str, k: int) -> tuple[str, list[tuple[str, float]]]: ...


def scenes_payload(store: GraphStore) -> ScenesPayload:
    """Every scene with its roles in order."""
    return {"scenes": store.scenes()}


def scene_payload(store: GraphStore, name: str) -> SceneDetailPayload:
    """One scene (by id or name): its roles in order, each with its products. NotFound for an
    unknown scene."""
    return cast(SceneDetailPayload, store.scene(name))


def search_payload(
    store: GraphStore,
    searcher: Searcher,
    query: str,
    k: int = 10,
    *,
    max_k: int = MAX_K,
    filters: Filters | None = None,
) -> SearchPayload:
    """The products whose titles mean what ``query`` says, each with its ``similarity`` and an
    ``explanation: {zh, en}``; hits the graph no longer holds (an index older than the graph)
    are left out. ``filters`` narrow the hits (``min_score`` is the similarity) and skip the
    first ``filters.offset``. The hits are both ``results`` (kept for existing clients) and
    ``items`` (the stable name). ConfigError for a blank query or a bad k."""
    if not query.strip():
        raise ConfigError("query parameter 'q' is blank")
    check_k(k, min(max_k, MAX_K))
    filters = filters or NO_FILTERS
    need = filters.offset + k
    ask = min(MAX_K * 2, need * 4) if filters.narrows else need
    model, hits = searcher.search(query, ask)
    results = []
    for pid, sim in hits:
        try:
            row = {**store.product(pid), "similarity": sim}
        except ProductNotFound:
            continue
        if filters.narrows and not (filters.allows(row) and filters.allows_score(sim)):
            continue
        results.append(row)
    shown = results[filters.offset : need]
    items = [{**row, "explanation": _similar(row["similarity"])} for row in shown]
    return {
        "query": query,
        "model": model,
        "results": shown,
        "items": items,
        "offset": filters.offset,
        "limit": k,
        "filters": filters.to_dict(),
    }


def _similar(similarity: float) -> dict[str, str]:
    """A search hit's explanation."""
    return {
        "zh": f"标题意思相近（相似度 {similarity:.2f}）",
        "en": f"a title like it (similarity {similarity:.2f})",
    }


def stats_payload(store: GraphStore, home: Path | None = None) -> StatsPayload:
    """Node / relationship counts and the build's meta; with ``home``, also its generation
    pointer (``generations``)."""
    stats = cast(StatsPayload, store.stats())
    if hasattr(store, "rules"):  # the merchant's rules: version and how many (tiein.rules)
        listed = rules_payload(store)
        stats["rules"] = {k: listed[k] for k in ("version", "updated_at", "count", "active")}
    if home is not None:
        stats["generations"] = dict(read_pointer(home).__dict__)
    return stats


def health_payload(store: GraphStore, *, search: bool) -> HealthPayload:
    """The store answers (its counts and build meta); ``search``: whether a search index is
    there. An in-memory snapshot of the embedded store reports as ``embedded``."""
    from tiein import __version__

    snapshot = store.name == "snapshot"
    return {
        "status": "ok",
        "version": __version__,
        "store": "embedded" if snapshot else store.name,
        "snapshot": snapshot,
        "graph": stats_payload(store),
        "search": search,
    }

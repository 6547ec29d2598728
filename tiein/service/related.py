"""Related products, one product and the product page's neighbourhood."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.explain import explain
from tiein.feedback import rerank
from tiein.model import MAX_K, RELATION_KINDS, QueryContext, check_k, check_kind
from tiein.rules import NO_FILTERS, PINNED_EN, PINNED_ZH, Filters, RuleSet
from tiein.season import SEASON_POOL
from tiein.segments import Segment, context_rerank, segment_clause, store_segment
from tiein.service.bundle import bundle_payload
from tiein.service.types import BundlePayload, NeighbourhoodPayload, Product, RelatedPayload

if TYPE_CHECKING:
    from datetime import date

    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore
    from tiein.lists import Lists

FEEDBACK_POOL = 3  # with feedback, re-rank the best 3 × k rows so lower ones can rise
PAGE_K = 10  # related rows per kind on the product page
# with filters or rules, read this many rows beyond what is shown so that enough remain
FILTER_POOL = 4
MAX_POOL = 2000


def explained(
    row: dict[str, Any], kind: str, at: date | None = None, segment: Segment | None = None
) -> dict[str, Any]:
    """``row`` (a ``related`` row) with ``explanation_zh`` / ``explanation_en`` and the same as
    ``explanation: {zh, en}`` added; a row pinned by a merchant rule is explained as "商家推荐 /
    picked by the shop"; with a query date ``at`` in the row's peak season, it says so first."""
    if row.get("pinned"):
        zh, en = PINNED_ZH, PINNED_EN
    else:
        e = explain(row, kind, at=at)
        zh, en = e.zh, e.en
        clause = segment_clause(row.get("evidence"), segment)
        if clause is not None:  # the segment's own reason first: "“family”顾客常一起买（30 单）"
            zh, en = f"{clause[0]}；{zh}", f"{clause[1]}; {en}"
    return {**row, "explanation_zh": zh, "explanation_en": en, "explanation": {"zh": zh, "en": en}}


def pool_size(need: int, narrowed: bool) -> int:
    """How many store rows to read to show ``need`` rows after filters and rules."""
    if not narrowed:
        return need
    return min(max(MAX_K, need), max(need * FILTER_POOL, need + 50), MAX_POOL)


def curated_related(
    store: GraphStore,
    product_id: str,
    kind: str,
    need: int,
    *,
    rules: RuleSet,
    filters: Filters = NO_FILTERS,
    feedback: FeedbackStats | None = None,
    seed: int | None = None,
    context: QueryContext | None = None,
    segment: Segment | None = None,
) -> list[dict[str, Any]]:
    """The anchor's ``kind`` rows with merchant rules (:class:`tiein.rules.RuleSet`) and
    ``filters`` applied, best first, at least ``need`` when the graph has them (the offset is
    the caller's). ``product_id`` must exist. With a date in ``context`` the best
    ``SEASON_POOL`` × the rows needed are re-ranked by season first
    (:func:`tiein.season.seasonal_rerank`: rows gain ``season_weight`` and ``season_score``)."""
    narrowed = filters.narrows or rules.touches(product_id, kind)
    pool = pool_size(need, narrowed)
    at = context.at if context is not None else None
    if segment is None and context is not None:  # related_payload resolves it once per request
        segment = store_segment(store, context.segment)
    reranked = at is not None or (segment is not None and segment.known)
    if reranked:
        pool = min(max(pool, SEASON_POOL * need), max(pool, MAX_K))
    if feedback is None:
        rows = store.related(product_id, kind, pool)
        if reranked:
            rows = context_rerank(rows, at, segment)
    else:
        fb_pool = (
            min(MAX_POOL, max(pool, FEEDBACK_POOL * need)) if narrowed else min(MAX_K, FEEDBACK_POOL * need)
        )
        rows = store.related(product_id, kind, max(fb_pool, pool) if reranked else fb_pool)
        if reranked:
            rows = context_rerank(rows, at, segment)
        rows = rerank(rows, feedback, anchor_id=product_id, seed=seed)
    if rules:
        rows = rules.curate(product_id, kind, rows, store.product)
    rows = [r for r in rows if r["product_id"] != product_id]
    return filters.keep(rows) if filters.narrows else rows


def product_payload(store: GraphStore, product_id: str) -> Product:
    """One product's fields. ProductNotFound for an unknown id."""
    return store.product(product_id)


def related_payload(
    store: GraphStore,
    product_id: str,
    kind: str,
    k: int = 10,
    *,
    feedback: FeedbackStats | None = None,
    seed: int | None = None,
    max_k: int = MAX_K,
    filters: Filters | None = None,
    rules: RuleSet | None = None,
    context: QueryContext | None = None,
    trending: Lists | None = None,
) -> RelatedPayload:
    """The product and its top-``k`` related products of ``kind`` with explanations.

    Merchant rules (``rules``, default the store's own in force now, :class:`tiein.rules.RuleSet`)
    put pinned items first, leave blocked ones out and raise boosted scores; ``filters``
    (:class:`tiein.rules.Filters`) narrow the rows and ``filters.offset`` skips the first ones.
    The rows are both ``related`` (kept for existing clients) and ``items`` (the stable name),
    each with ``explanation: {zh, en}``.

    With ``feedback`` (:func:`tiein.feedback.load_stats`), the best ``FEEDBACK_POOL × k`` rows are
    re-ranked by observed performance (:func:`tiein.feedback.rerank`, ``seed`` per request) and the
    top ``k`` returned, each with ``feedback_score`` and ``feedback`` added; without it the answer
    is the store's order, unchanged.

    With a date in ``context`` (:class:`tiein.model.QueryContext`, ``at``), rows are ranked for
    that date: in-season relations up, out-of-season ones down (:mod:`tiein.season.rank`), each
    row with ``season_weight`` / ``season_score``, explanations saying the season when ``at`` is in
    a relation's peak window, and the payload's ``at`` the date used. Without it (or ``at``
    None), the year-round answer, unchanged.

    With ``trending`` (:class:`tiein.lists.Lists`), a complement list with no rows at all gets
    the trending items of the product's category (else of the shop) instead, each row and the
    payload flagged ``fallback: "trending"`` (:func:`tiein.lists.related_fallback`).

    Raises ProductNotFound for an unknown product, ConfigError for a bad kind or a k outside
    1..``max_k`` (a server's cap, at most :data:`tiein.model.MAX_K`).
    """
    check_kind(kind)
    check_k(k, min(max_k, MAX_K))
    filters = filters or NO_FILTERS
    product = store.product(product_id)
    rules = RuleSet.load(store) if rules is None else rules
    pid = product["product_id"]
    segment = store_segment(store, context.segment) if context is not None else None
    rows = curated_related(
        store,
        pid,
        kind,
        filters.offset + k,
        rules=rules,
        filters=filters,
        feedback=feedback,
        seed=seed,
        context=context,
        segment=segment,
    )
    at = context.at if context is not None else None
    shown = [explained(r, kind, at, segment) for r in rows[filters.offset : filters.offset + k]]
    payload: RelatedPayload = {
        "product": product,
        "kind": kind,
        "related": shown,
        "items": shown,
        "offset": filters.offset,
        "limit": k,
        "filters": filters.to_dict(),
        "rules_version": rules.version,
    }
    if at is not None:
        payload["at"] = at.isoformat()
    if segment is not None:
        payload["segment"] = segment.to_dict()
    if trending is not None and not rows:  # no complements yet: trending items, flagged (tiein.lists)
        from tiein.lists import related_fallback

        payload = related_fallback(trending, store, payload, kind, k, filters, rules)
    return payload


def neighbourhood_payload(store: GraphStore, product_id: str, k: int = PAGE_K) -> NeighbourhoodPayload:
    """What the analyst's product page shows: the product, its top-``k`` related rows of every
    kind and its bundle (``bundle_error`` when the bundle rules reject the anchor)."""

    rules = RuleSet.load(store)
    related = {kind: related_payload(store, product_id, kind, k, rules=rules) for kind in RELATION_KINDS}
    bundle: BundlePayload | None
    try:
        bundle, bundle_error = bundle_payload(store, product_id, curation=rules), None
    except ConfigError as exc:
        bundle, bundle_error = None, str(exc)
    return {
        "product": related[RELATION_KINDS[0]]["product"],
        "related": {kind: v["related"] for kind, v in related.items()},
        "bundle": bundle,
        "bundle_error": bundle_error,
    }

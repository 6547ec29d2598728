"""Related products, one product and the product page's neighbourhood."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.explain import explain
from tiein.feedback import rerank
from tiein.model import MAX_K, RELATION_KINDS, check_k, check_kind
from tiein.rules import NO_FILTERS, PINNED_EN, PINNED_ZH, Filters, RuleSet
from tiein.service.bundle import bundle_payload
from tiein.service.types import BundlePayload, NeighbourhoodPayload, Product, RelatedPayload

if TYPE_CHECKING:
    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore

FEEDBACK_POOL = 3  # with feedback, re-rank the best 3 × k rows so lower ones can rise
PAGE_K = 10  # related rows per kind on the product page
# with filters or rules, read this many rows beyond what is shown so that enough remain
FILTER_POOL = 4
MAX_POOL = 2000


def explained(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """``row`` (a ``related`` row) with ``explanation_zh`` / ``explanation_en`` and the same as
    ``explanation: {zh, en}`` added; a row pinned by a merchant rule is explained as "商家推荐 /
    picked by the shop"."""
    if row.get("pinned"):
        zh, en = PINNED_ZH, PINNED_EN
    else:
        e = explain(row, kind)
        zh, en = e.zh, e.en
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
) -> list[dict[str, Any]]:
    """The anchor's ``kind`` rows with merchant rules (:class:`tiein.rules.RuleSet`) and
    ``filters`` applied, best first, at least ``need`` when the graph has them (the offset is
    the caller's). ``product_id`` must exist."""
    narrowed = filters.narrows or rules.touches(product_id, kind)
    pool = pool_size(need, narrowed)
    if feedback is None:
        rows = store.related(product_id, kind, pool)
    else:
        fb_pool = (
            min(MAX_POOL, max(pool, FEEDBACK_POOL * need)) if narrowed else min(MAX_K, FEEDBACK_POOL * need)
        )
        rows = store.related(product_id, kind, fb_pool)
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

    Raises ProductNotFound for an unknown product, ConfigError for a bad kind or a k outside
    1..``max_k`` (a server's cap, at most :data:`tiein.model.MAX_K`).
    """
    check_kind(kind)
    check_k(k, min(max_k, MAX_K))
    filters = filters or NO_FILTERS
    product = store.product(product_id)
    rules = RuleSet.load(store) if rules is None else rules
    pid = product["product_id"]
    rows = curated_related(
        store, pid, kind, filters.offset + k, rules=rules, filters=filters, feedback=feedback, seed=seed
    )
    shown = [explained(r, kind) for r in rows[filters.offset : filters.offset + k]]
    return {
        "product": product,
        "kind": kind,
        "related": shown,
        "items": shown,
        "offset": filters.offset,
        "limit": k,
        "filters": filters.to_dict(),
        "rules_version": rules.version,
    }


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

"""Related products, one product and the product page's neighbourhood."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from tiein.errors import ConfigError
from tiein.explain import explain
from tiein.model import MAX_K, RELATION_KINDS, check_k, check_kind
from tiein.service.types import BundlePayload, NeighbourhoodPayload, Product, RelatedPayload

if TYPE_CHECKING:
    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore

FEEDBACK_POOL = 3  # with feedback, re-rank the best 3 × k rows so lower ones can rise
PAGE_K = 10  # related rows per kind on the product page


def explained(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """``row`` (a ``related`` row) with ``explanation_zh`` / ``explanation_en`` added."""
    e = explain(row, kind)
    return {**row, "explanation_zh": e.zh, "explanation_en": e.en}


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
) -> RelatedPayload:
    """The product and its top-``k`` related products of ``kind`` with explanations.

    With ``feedback`` (:func:`tiein.feedback.load_stats`), the best ``FEEDBACK_POOL × k`` rows are
    re-ranked by observed performance (:func:`tiein.feedback.rerank`, ``seed`` per request) and the
    top ``k`` returned, each with ``feedback_score`` and ``feedback`` added; without it the answer
    is the store's order, unchanged.

    Raises ProductNotFound for an unknown product, ConfigError for a bad kind or a k outside
    1..``max_k`` (a server's cap, at most :data:`tiein.model.MAX_K`).
    """
    check_kind(kind)
    check_k(k, min(max_k, MAX_K))
    product = store.product(product_id)
    if feedback is None:
        rows = store.related(product["product_id"], kind, k)
    else:
        from tiein.feedback import rerank

        pool = store.related(product["product_id"], kind, min(MAX_K, FEEDBACK_POOL * k))
        rows = rerank(pool, feedback, anchor_id=product["product_id"], seed=seed)[:k]
    return {"product": product, "kind": kind, "related": [explained(r, kind) for r in rows]}


def neighbourhood_payload(store: GraphStore, product_id: str, k: int = PAGE_K) -> NeighbourhoodPayload:
    """What the analyst's product page shows: the product, its top-``k`` related rows of every
    kind and its bundle (``bundle_error`` when the bundle rules reject the anchor)."""
    from tiein.service.bundle import bundle_payload

    related = {kind: related_payload(store, product_id, kind, k) for kind in RELATION_KINDS}
    bundle: BundlePayload | None
    try:
        bundle, bundle_error = bundle_payload(store, product_id), None
    except ConfigError as exc:
        bundle, bundle_error = None, str(exc)
    return {
        "product": related[RELATION_KINDS[0]]["product"],
        "related": {kind: v["related"] for kind, v in related.items()},
        "bundle": cast("BundlePayload | None", bundle),
        "bundle_error": bundle_error,
    }

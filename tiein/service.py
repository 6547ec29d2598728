"""The answers tiein gives, as JSON-ready dicts: one code path for the CLI, the HTTP API and
batch export, so the three never disagree.

Every function takes an open :class:`tiein.graph.base.GraphStore` and returns plain dicts/lists of
JSON types (str, int, float, bool, None). The shapes are the public schema; change them only
additively.

- :func:`related_payload`: ``{"product": PRODUCT, "kind": str, "related": [RELATED_ITEM, ...]}``
  where RELATED_ITEM is the related product's fields, ``kind``, ``score``, ``evidence`` and the
  seller-sayable ``explanation_zh`` / ``explanation_en`` built from the evidence.
- :func:`bundle_payload`: :meth:`tiein.bundles.Bundle.to_dict` (``scene`` / ``mix`` / ``discount`` options).
- :func:`addons_payload`: :meth:`tiein.bundles.Addons.to_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.explain import explain
from tiein.model import check_kind

if TYPE_CHECKING:
    from tiein.bundles import BundleRules
    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore

MAX_K = 1000  # the most related rows one call returns
FEEDBACK_POOL = 3  # with feedback, re-rank the best 3 × k rows so lower ones can rise


def explained(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """``row`` (a ``related`` row) with ``explanation_zh`` / ``explanation_en`` added."""
    e = explain(row, kind)
    return {**row, "explanation_zh": e.zh, "explanation_en": e.en}


def related_payload(
    store: GraphStore,
    product_id: str,
    kind: str,
    k: int = 10,
    *,
    feedback: FeedbackStats | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The product and its top-``k`` related products of ``kind`` with explanations.

    With ``feedback`` (:func:`tiein.feedback.load_stats`), the best ``FEEDBACK_POOL × k`` rows are
    re-ranked by observed performance (:func:`tiein.feedback.rerank`, ``seed`` per request) and the
    top ``k`` returned, each with ``feedback_score`` and ``feedback`` added; without it the answer
    is the store's order, unchanged.

    Raises ProductNotFound for an unknown product, ConfigError for a bad kind or k.
    """
    check_kind(kind)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    product = store.product(product_id)
    if feedback is None:
        rows = store.related(product["product_id"], kind, k)
    else:
        from tiein.feedback import rerank

        pool = store.related(product["product_id"], kind, min(MAX_K, FEEDBACK_POOL * k))
        rows = rerank(pool, feedback, anchor_id=product["product_id"], seed=seed)[:k]
    return {"product": product, "kind": kind, "related": [explained(r, kind) for r in rows]}


def bundle_payload(
    store: GraphStore,
    anchor_id: str,
    *,
    scene: str | None = None,
    size: int = 3,
    budget: float | None = None,
    mix: Sequence[str] | str | None = None,
    discount: float | None = None,
    rules: BundleRules | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`tiein.bundles.bundle` as a JSON-ready dict: ``scene`` (id or name; default the
    anchor's own scene), ``mix`` (sales roles, ``("hero", "profit")`` or ``"hero+profit"``),
    ``discount`` (overrides ``rules.discount``, 0.1 = 10 % off); other ``options`` (``roles``)
    pass through. ConfigError for a bad discount."""
    from dataclasses import replace

    from tiein.bundles import BundleRules, bundle

    if discount is not None:
        if isinstance(discount, bool) or not isinstance(discount, int | float):
            raise ConfigError(f"discount must be a number in [0, 1), got {discount!r}")
        rules = replace(rules or BundleRules(), discount=float(discount))
    return bundle(
        store, anchor_id, scene=scene, size=size, budget=budget, mix=mix, rules=rules, **options
    ).to_dict()


def addons_payload(
    store: GraphStore,
    cart: list[str],
    *,
    threshold: float | None = None,
    k: int = 5,
    rules: BundleRules | None = None,
) -> dict[str, Any]:
    """:func:`tiein.bundles.addons` as a JSON-ready dict."""
    from tiein.bundles import addons

    return addons(store, cart, threshold=threshold, k=k, rules=rules).to_dict()

"""The answers tiein gives, as JSON-ready dicts: one code path for the CLI, the HTTP API and
batch export, so the three never disagree.

Every function takes an open :class:`graph.base.GraphStore` and returns plain dicts/lists of
JSON types (str, int, float, bool, None). The shapes are the public schema; change them only
additively.

- :func:`related_payload`: ``{"product": PRODUCT, "kind": str, "related": [RELATED_ITEM, ...]}``
  where RELATED_ITEM is the related product's fields, ``kind``, ``score``, ``evidence`` and the
  seller-sayable ``explanation_zh`` / ``explanation_en`` built from the evidence.
- :func:`bundle_payload`: :meth:`tiein.bundles.Bundle.to_dict`.
- :func:`addons_payload`: :meth:`tiein.bundles.Addons.to_dict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.explain import explain
from tiein.model import RELATION_KINDS

if TYPE_CHECKING:
    from graph.base import GraphStore
    from tiein.bundles import BundleRules

MAX_K = 1000  # the most related rows one call returns


def explained(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """``row`` (a ``related`` row) with ``explanation_zh`` / ``explanation_en`` added."""
    e = explain(row, kind)
    return {**row, "explanation_zh": e.zh, "explanation_en": e.en}


def related_payload(store: GraphStore, product_id: str, kind: str, k: int = 10) -> dict[str, Any]:
    """The product and its top-``k`` related products of ``kind`` with explanations.

    Raises ProductNotFound for an unknown product, ConfigError for a bad kind or k.
    """
    if kind not in RELATION_KINDS:
        raise ConfigError(f"unknown relation kind {kind!r}; valid kinds: {', '.join(RELATION_KINDS)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    product = store.product(product_id)
    rows = store.related(product["product_id"], kind, k)
    return {"product": product, "kind": kind, "related": [explained(r, kind) for r in rows]}


def bundle_payload(
    store: GraphStore,
    anchor_id: str,
    *,
    size: int = 3,
    budget: float | None = None,
    rules: BundleRules | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`tiein.bundles.bundle` as a JSON-ready dict (``options`` pass through, e.g. ``scene``)."""
    from tiein.bundles import bundle

    return bundle(store, anchor_id, size=size, budget=budget, rules=rules, **options).to_dict()


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

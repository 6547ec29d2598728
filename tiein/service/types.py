"""The payload types of the service: one per read surface, the JSON the CLI (``--json``), the
HTTP API and batch export give. The API's response models (:mod:`tiein.api.schemas`, pydantic,
which documents each field for the OpenAPI schema) declare the same fields; tests/test_service_types.py
keeps the two in step. Payloads may gain keys (additive changes only).

A product is the store's product dict (``product_id``, ``title``, ``category``,
``category_path``, ``brand``, ``price``, ``stock``, ``attributes``, ``margin``, ``sales_role``,
``product_type``);
nested rows are plain dicts, described on the payload that holds them.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

Product = dict[str, Any]  # a store's product dict (tiein.graph.base.PRODUCT_FIELDS)
Bilingual = dict[str, Any]  # {"zh", "en"}
Reason = dict[str, Any]  # {"code", "zh", "en"} (tiein.bundles.REASONS)


class RelatedPayload(TypedDict):
    """``related``: the anchor and its top-k related rows of one kind, best first. A row is the
    related product's fields, ``kind``, ``score``, the evidence columns (``n_ab``, ``lift``,
    ``confidence``, ``co_view``, ``similarity``, ``category_relation``, ``price_ratio``),
    ``evidence`` and ``explanation_zh`` / ``explanation_en``; with feedback also
    ``feedback_score`` and ``feedback``."""

    product: Product
    kind: str
    related: list[dict[str, Any]]  # deprecated name of ``items`` (the same rows)
    items: NotRequired[list[dict[str, Any]]]
    offset: NotRequired[int]
    limit: NotRequired[int]
    filters: NotRequired[dict[str, Any]]
    rules_version: NotRequired[int]
    at: NotRequired[str]  # the query date the rows were ranked for (only when one was given)
    segment: NotRequired[dict[str, Any]]  # the customer segment asked: {name, known, note?} (tiein.segments)
    # "trending" when a complement list had no rows and holds trending items instead (tiein.lists)
    fallback: NotRequired[str]


class BundlePayload(TypedDict):
    """``bundle``: :meth:`tiein.bundles.Bundle.to_dict`. An item is ``{product, role,
    relation, score, evidence, explanation}``."""

    anchor: Product
    items: list[dict[str, Any]]
    total: float | None
    suggested_price: float | None
    saving: float | None
    discount: float
    pitch: Bilingual
    budget: float | None
    reason: Reason | None
    skipped: dict[str, int]
    scene: dict[str, Any] | None
    skipped_roles: list[str]
    mix: list[str] | None
    scene_fallback: bool
    priced: bool
    filters: NotRequired[dict[str, Any]]
    rules_version: NotRequired[int]
    at: NotRequired[str]  # the query date the add-ons were ranked for (only when one was given)
    segment: NotRequired[dict[str, Any]]  # the customer segment asked: {name, known, note?}


class AddonsPayload(TypedDict):
    """``addons``: :meth:`tiein.bundles.Addons.to_dict`. An item is ``{product, score, relation,
    sources, evidence, explanation}`` (top-ups also ``overspend`` and ``new_total``)."""

    cart: list[Product]
    total: float | None
    items: list[dict[str, Any]]
    reason: Reason | None
    threshold: float | None
    gap: float | None
    top_ups: list[dict[str, Any]]
    top_up_reason: Reason | None
    skipped: dict[str, int]
    unknown_ids: NotRequired[list[str]]
    offset: NotRequired[int]
    limit: NotRequired[int]
    filters: NotRequired[dict[str, Any]]
    rules_version: NotRequired[int]
    at: NotRequired[str]  # the query date the add-ons were ranked for (only when one was given)
    segment: NotRequired[dict[str, Any]]  # the customer segment asked: {name, known, note?}


class ScenesPayload(TypedDict):
    """``scenes``: every scene ``{scene_id, name, source, members, roles: [role name]}``."""

    scenes: list[dict[str, Any]]


class SceneDetailPayload(TypedDict):
    """``scene``: one scene, its roles in order ``{role, weight, products: [product + weight]}``."""

    scene_id: str
    name: str | None
    source: str | None
    members: int
    roles: list[dict[str, Any]]


class SearchPayload(TypedDict):
    """``search``: the products whose titles are closest to ``query``, each with ``similarity``."""

    query: str
    model: str
    results: list[dict[str, Any]]  # deprecated name of ``items`` (the same rows)
    items: NotRequired[list[dict[str, Any]]]
    offset: NotRequired[int]
    limit: NotRequired[int]
    filters: NotRequired[dict[str, Any]]


class StatsPayload(TypedDict):
    """``stats``: node / relationship counts and the build's meta; ``generations`` (the home's
    generation pointer) when a home is given."""

    nodes: dict[str, int]
    relationships: dict[str, int]
    meta: dict[str, Any]
    generations: NotRequired[dict[str, Any]]
    rules: NotRequired[dict[str, Any]]


class HealthPayload(TypedDict):
    """``health``: the store answers, with its counts."""

    status: str
    version: str
    store: str
    snapshot: bool
    graph: StatsPayload
    search: bool


class RulesPayload(TypedDict):
    """``rules``: the merchant's rules (:func:`tiein.rules.rules_payload`), each with ``active``."""

    version: int
    updated_at: str | None
    count: int
    active: int
    rules: list[dict[str, Any]]


class CypherPayload(TypedDict):
    """``cypher``: :meth:`tiein.cypher.CypherResult.to_dict`."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    limit: int
    row_count: int
    elapsed_ms: float
    store: str


class NeighbourhoodPayload(TypedDict):
    """``neighbourhood`` (the analyst's product page): the product, its related rows per kind,
    its bundle, or ``bundle_error`` when the bundle rules reject the anchor."""

    product: Product
    related: dict[str, list[dict[str, Any]]]
    bundle: BundlePayload | None
    bundle_error: str | None


class PairingsPayload(TypedDict):
    """``pairings`` (搭配榜, :mod:`tiein.lists.pairings`): the best complement pairs. An item is
    ``{rank, anchor, item, category, score, n_ab, lift, confidence, co_view, similarity,
    category_relation, price_ratio, evidence, explanation, explanation_zh, explanation_en}``
    (``anchor`` / ``item``: product fields; ``n_ab``: orders holding both)."""

    items: list[dict[str, Any]]
    category: str | None
    with_category: str | None
    per_category: bool
    k: int
    min_orders: int
    total: int
    note: str | None


class TrendingPayload(TypedDict):
    """``trending`` (品类热销榜, :mod:`tiein.lists.trending`): products selling more in the window
    than in the one before. An item is the product's fields with ``rank``, ``orders``, ``units``,
    ``previous_orders``, ``previous_units``, ``growth``, ``score`` and ``explanation`` (also
    ``explanation_zh`` / ``explanation_en``); ``window``: ``{days, at, start, end,
    previous_start, previous_end}`` (ISO dates; null when the orders carry no dates)."""

    items: list[dict[str, Any]]
    window: dict[str, Any] | None
    category: str | None
    per_category: bool
    k: int
    min_orders: int
    total: int
    note: str | None

"""Response models of the API (the OpenAPI schema of its answers) and the types and help texts the
requests share (``Text``, ``ProductId``, ``at=`` and ``segment=``); the request bodies are in
:mod:`tiein.api.bodies`.

Every response is a payload of :mod:`tiein.service`; its response model here declares the same
fields as the payload's type in :mod:`tiein.service.types` (tests/test_service_types.py keeps
them in step) and documents each one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tiein.api.settings import MAX_ID_LENGTH

MAX_OFFSET = 10_000  # the most rows a list request may skip
AT_HELP = (
    "Rank for this date (YYYY-MM-DD, or 'today'): relations bought together mostly in its season rank up, "
    "out-of-season ones down (their monthly lift, evidence.season). Absent: the year-round order."
)
SEGMENT_HELP = (
    "Customer segment to rank for (a value of the orders' segment column: a country, channel, tier); "
    "an unknown or too small segment answers for all customers and says so in `segment`."
)


def _valid_text(value: str) -> str:
    """Text that can reach a store: no lone surrogates (they cannot be encoded as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


Text = Annotated[str, AfterValidator(_valid_text)]


ProductId = Annotated[Text, PathParam(min_length=1, max_length=MAX_ID_LENGTH, description="Product id.")]


class Open(BaseModel):
    """Answers may gain fields (additive changes only), so extra fields pass through."""

    model_config = ConfigDict(extra="allow")


class Bilingual(Open):
    zh: str | None = None
    en: str | None = None


class Product(Open):
    product_id: str = Field(description="The shop's product id (StockCode, SKU, ASIN).")
    title: str | None = Field(None, description="Product title.")
    category: str | None = Field(None, description="Leaf category name.")
    category_path: str | None = Field(None, description="Full category path joined with ' > '.")
    brand: str | None = Field(None, description="Brand.")
    price: float | None = Field(None, description="Price in the shop's currency (null = unknown).")
    stock: int | None = Field(None, description="Units in stock (null = unknown, treated as in stock).")
    product_type: str | None = Field(
        None, description="What kind of product it is: the leaf category, else learnt from the titles."
    )


class RelatedItem(Product):
    """A related row. A merchant pin adds ``pinned: true`` and ``rule_id``; a boost rule adds
    ``boost`` (the factor the score was multiplied by); ranked for a date (``at=``), each row adds
    ``season_weight`` (the relation's shrunk lift for that month, ``evidence.season.months``; 1
    without season evidence) and ``season_score`` (score × season_weight, what the rows are then
    sorted by)."""

    kind: str = Field(description="Relation kind: complement, substitute, upsell or series.")
    score: float = Field(description="Relation score; rows are sorted by it, then product_id.")
    n_ab: int | None = Field(None, description="Orders holding both products.")
    lift: float | None = Field(None, description="Co-purchase lift.")
    confidence: float | None = Field(None, description="P(this product | the anchor).")
    co_view: int | None = Field(None, description="Sessions viewing both.")
    similarity: float | None = Field(None, description="Title embedding cosine similarity.")
    category_relation: str | None = Field(None, description="same | sibling | different | unknown.")
    price_ratio: float | None = Field(None, description="price(this) / price(anchor).")
    evidence: dict[str, Any] = Field(description="Every number behind the decision.")
    explanation_zh: str = Field(description="Deprecated: use explanation.zh.")
    explanation_en: str = Field(description="Deprecated: use explanation.en.")
    explanation: Bilingual | None = Field(
        None,
        description="The evidence as one sentence in Chinese and English (商家推荐 / picked by the shop when pinned).",
    )


class RelatedResponse(Open):
    """A product's related rows. ``fallback: "trending"`` (a key present only then, on the answer
    and on each row) when the product has no complements yet and the rows are the trending items
    of its category, else of the shop, instead (as GET /v1/trending ranks them). Ranked for a
    date (``at=``), the answer adds ``at``: the date used (absent without one)."""

    product: Product
    kind: str
    items: list[RelatedItem] = Field(
        default_factory=list, description="The related products, best first (merchant pins first)."
    )
    related: list[RelatedItem] = Field(description="Deprecated: the same rows as items.")
    offset: int = Field(0, description="Rows skipped before these.")
    limit: int | None = Field(None, description="The most rows asked for (k).")
    filters: dict[str, Any] = Field(default_factory=dict, description="The filters applied.")
    rules_version: int = Field(0, description="The version of the merchant rules applied.")


class Reason(Open):
    code: str = Field(description="Stable reason code (see tiein.bundles.REASONS).")
    zh: str
    en: str


class BundleItem(Open):
    product: Product
    role: str | None = Field(None, description="The slot this item fills (scene role or category).")
    relation: str = Field(description="'complement of anchor' or 'complement of <product_id>'.")
    score: float
    evidence: dict[str, Any]
    explanation: Bilingual


class BundleResponse(Open):
    """Ranked for a date (``at=``), the answer adds ``at``: the date used (absent without one)."""

    anchor: Product
    items: list[BundleItem] = Field(description="Add-ons in bundle order (empty when reason is set).")
    total: float | None = Field(
        None, description="Anchor + add-ons at full price (null when a price is unknown: priced is false)."
    )
    suggested_price: float | None = Field(
        None, description="A sayable bundle price after the discount (null when priced is false)."
    )
    saving: float | None = Field(None, description="total - suggested_price (null when priced is false).")
    discount: float = Field(
        description="The discount asked for; no price is computed from it when priced is false."
    )
    pitch: Bilingual = Field(
        description="One sayable line; when priced is false it says the prices are at checkout."
    )
    budget: float | None = None
    reason: Reason | None = Field(None, description="Why there is no bundle (null when there is one).")
    skipped: dict[str, int] = Field(description="Candidates passed over, by rule.")
    scene: dict[str, Any] | None = Field(
        None, description="The scene whose roles were followed ({scene_id, name})."
    )
    skipped_roles: list[str] = Field(default_factory=list, description="Scene roles no item could fill.")
    mix: list[str] | None = Field(None, description="The sales roles asked for, in order.")
    priced: bool = Field(
        True,
        description="Whether the anchor and every add-on have a price. False: a bundle without price "
        "maths (total, suggested_price and saving null; the price band was skipped for unpriced pairs).",
    )
    filters: dict[str, Any] = Field(default_factory=dict, description="The filters applied to the add-ons.")
    rules_version: int = Field(0, description="The version of the merchant rules applied.")


class AddonItem(Open):
    product: Product
    score: float
    relation: str
    sources: list[str] = Field(description="Cart items this product complements.")
    evidence: dict[str, Any]
    explanation: Bilingual
    overspend: float | None = Field(None, description="Top-ups: new total - threshold.")
    new_total: float | None = Field(None, description="Top-ups: the cart total with this item.")


class AddonsResponse(Open):
    """Ranked for a date (``"at"`` in the request), the answer adds ``at``: the date used."""

    cart: list[Product]
    total: float | None
    items: list[AddonItem]
    reason: Reason | None = None
    threshold: float | None = None
    gap: float | None = Field(None, description="threshold - total (0 when reached).")
    top_ups: list[AddonItem]
    top_up_reason: Reason | None = None
    skipped: dict[str, int]
    unknown_ids: list[str] = Field(
        default_factory=list, description="Cart ids the graph does not hold (left out; the rest answered)."
    )
    offset: int = Field(0, description="Suggestions skipped before these.")
    limit: int | None = Field(None, description="The most suggestions asked for (k).")
    filters: dict[str, Any] = Field(default_factory=dict, description="The filters applied.")
    rules_version: int = Field(0, description="The version of the merchant rules applied.")


class EventsResponse(Open):
    received: int = Field(description="Events in the request.")
    added: int = Field(description="Events added to the log.")
    duplicates: int = Field(description="Events skipped: already logged, or repeated in the request.")


class SceneSummary(Open):
    scene_id: str
    name: str | None
    source: str | None = Field(description="'user' (a scenes file) or 'discovered'.")
    members: int
    roles: list[str | None] = Field(description="Role names in scene order.")


class ScenesResponse(Open):
    scenes: list[SceneSummary]


class SceneProduct(Product):
    weight: float | None = None


class SceneRole(Open):
    role: str | None
    weight: float | None
    products: list[SceneProduct]


class SceneDetail(Open):
    scene_id: str
    name: str | None
    source: str | None
    members: int
    roles: list[SceneRole]


class SearchHit(Product):
    similarity: float = Field(description="Cosine similarity of the query and the product's title.")


class SearchItem(SearchHit):
    explanation: Bilingual | None = None


class SearchResponse(Open):
    query: str
    model: str = Field(description="The embedding model of the index.")
    items: list[SearchItem] = Field(default_factory=list, description="The hits, closest first.")
    results: list[SearchHit] = Field(description="Deprecated: the same hits as items, without explanation.")
    offset: int = Field(0, description="Hits skipped before these.")
    limit: int | None = Field(None, description="The most hits asked for (k).")
    filters: dict[str, Any] = Field(default_factory=dict, description="The filters applied.")


class RulesSummary(Open):
    version: int = Field(description="Incremented by every change of the rules.")
    updated_at: str | None = None
    count: int
    active: int = Field(description="Rules in force now (inside their valid_from / valid_to).")


class GraphStats(Open):
    nodes: dict[str, int]
    relationships: dict[str, int]
    meta: dict[str, Any] = Field(description="How the graph was built (source, time, model, ...).")
    rules: RulesSummary | None = Field(None, description="The merchant rules kept beside the graph.")


class Rule(Open):
    rule_id: int
    anchor: str
    item: str
    kind: str | None = None
    action: str
    position: int | None = None
    boost: float | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    note: str | None = None
    active: bool = Field(description="In force now.")


class RulesResponse(Open):
    version: int
    updated_at: str | None = None
    count: int
    active: int
    rules: list[Rule]


class RulesChange(Open):
    version: int = Field(description="The rules' version after the change.")
    count: int = Field(description="Rules now.")
    added: int | None = None
    updated: int | None = None
    removed: int | None = None


class HealthResponse(Open):
    status: Literal["ok"]
    version: str
    store: str = Field(description="Store kind: embedded or neo4j.")
    graph: GraphStats
    search: bool = Field(description="Whether /v1/search has an index to search.")
    snapshot: bool = Field(description="Whether reads come from an in-memory snapshot of the embedded store.")


class CypherResponse(Open):
    columns: list[str]
    rows: list[Any]
    truncated: bool = Field(description="True when the row cap cut the result.")
    elapsed_ms: float | None = None


class PairingItem(Open):
    rank: int = Field(description="1 = the best (per category with per_category).")
    anchor: Product = Field(description="The product the pairing starts from.")
    item: Product = Field(description="The product that goes with it (its complement).")
    category: str | None = Field(None, description="The anchor's category.")
    score: float = Field(description="The complement relation's score; the list is sorted by it.")
    n_ab: int | None = Field(None, description="Orders holding both products.")
    lift: float | None = Field(None, description="Co-purchase lift (evidence only).")
    confidence: float | None = Field(None, description="Share of the anchor's orders that hold the item.")
    evidence: dict[str, Any] = Field(description="Every number behind the relation.")
    explanation: Bilingual = Field(description="Why they go together, sayable (zh / en).")


class PairingsResponse(Open):
    items: list[PairingItem] = Field(
        description="The best pairs, best first (grouped by category with per_category)."
    )
    category: str | None = Field(None, description="Only pairs whose anchor is in this category.")
    with_category: str | None = Field(None, description="Only pairs whose item is in this category.")
    per_category: bool = Field(description="The top k of every anchor category instead of the top k overall.")
    k: int = Field(description="The most pairs (per category) asked for.")
    min_orders: int = Field(description="Orders with both a pair needs to be listed.")
    total: int = Field(description="Pairs that qualify, before the cut to k.")
    note: str | None = Field(None, description="Why the list is empty, when it is.")


class TrendingItem(Product):
    rank: int = Field(description="1 = the best (per category with per_category).")
    orders: int = Field(description="Orders holding the product in the window.")
    units: float = Field(description="Units sold in the window.")
    previous_orders: int = Field(description="Orders in the window of the same length before it.")
    previous_units: float = Field(description="Units in the window before.")
    growth: float | None = Field(
        None, description="orders / previous_orders - 1 (null when previous_orders is 0)."
    )
    score: float = Field(
        description="(orders + 5) / (previous_orders + 5): the growth, shrunk so that a few orders "
        "do not top the list; the list is sorted by it."
    )
    explanation: Bilingual = Field(description="The trend as a sayable sentence (zh / en).")


class TrendingResponse(Open):
    items: list[TrendingItem] = Field(
        description="Rising products, best first (grouped by category with per_category)."
    )
    window: dict[str, Any] | None = Field(
        None,
        description="{days, at, start, end, previous_start, previous_end} (ISO dates, both ends "
        "included); null when the orders carry no dates.",
    )
    category: str | None = Field(None, description="Only products in this category.")
    per_category: bool = Field(description="The top k of every category instead of the top k overall.")
    k: int = Field(description="The most items (per category) asked for.")
    min_orders: int = Field(description="Orders in the window a product needs to be listed.")
    total: int = Field(description="Products that qualify, before the cut to k.")
    note: str | None = Field(None, description="Why the list is empty, when it is.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. product_not_found, invalid_parameter.")
    message: str = Field(description="What went wrong, naming the id or parameter.")
    details: dict[str, Any] = Field(description="Machine-readable details (product_id, errors, error_id).")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def _errors(*statuses: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error responses an operation can give: ``statuses`` plus the ones
    every operation can give. ``html``: the operation answers HTML, its errors stay JSON."""
    text = {
        400: "A malformed request body, or invalid Cypher",
        401: "Missing or wrong bearer token (only when the server has a token)",
        403: "The query tried to write",
        404: "Unknown product or scene",
        409: "The rules changed since the version the request was based on",
        422: "A bad parameter (named in the message and in details.errors)",
        500: "Unexpected error (logged with details.error_id)",
        503: "The store cannot be reached, or the feature is unavailable here",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for s in (*statuses, 401, 422, 500, 503):
        if html:
            ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
            out[s] = {"description": text[s], "content": {"application/json": {"schema": ref}}}
        else:
            out[s] = {"model": ErrorEnvelope, "description": text[s]}
    return out

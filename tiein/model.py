"""The data contracts between the stages of a build.

Every stage hands the next one Apache Arrow tables with exactly these schemas
(column order included). Loaders produce ``Catalog``/``orders``/``views``/``listed_pairs``;
mining produces ``PAIR_STATS``; classification produces ``RELATIONS``; the store receives a
:class:`GraphData`.

Conventions
- product ids are strings (``"85123A"``, ``"24852"``, ``"B001BKEWF2"``);
- ``category`` is the leaf category name, ``category_path`` the full path joined with
  ``" > "`` (``"produce > fresh fruits"``); a product without a category has nulls;
- prices are float64 in the shop's currency, stock is int64 (null = unknown, treated as in stock);
- ``attributes`` is a JSON object string of free attributes (``{"color": "red"}``) or null;
- timestamps are naive UTC ``timestamp[us]``;
- ``margin`` is the share of the price the shop keeps, ``(price - cost) / price`` (0.35 = 35 %),
  null when unknown (loaders fill it from an optional ``margin`` or ``cost`` catalog column);
- ``sales_role`` is computed by the build from sales volume, price and margin
  (:func:`tiein.features.sales_roles`): one of :data:`SALES_ROLES`, null when the product sold
  too little to judge. Loaders leave it null.
- ``product_type`` is computed by the build (:func:`tiein.product_type.with_product_types`): the
  leaf category where there is one, else the type learnt from the titles ("lunch bag", 牛奶);
  null when a title gives nothing to go on. Loaders leave it null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

CATEGORY_SEP = " > "

PRODUCTS = pa.schema(
    [
        ("product_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("category_path", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float64()),
        ("stock", pa.int64()),
        ("attributes", pa.string()),
        ("margin", pa.float64()),
        ("sales_role", pa.string()),
        ("product_type", pa.string()),
    ]
)

# Optional PRODUCTS columns: a products table without them is read as all-null (tiein.graph.build).
OPTIONAL_PRODUCT_FIELDS = ("margin", "sales_role", "product_type")

# Sales roles of a product (商品角色): "traffic" 引流款 (high volume, low price: draws customers),
# "hero" 爆款 (high revenue), "profit" 利润款 (high margin), "regular" 常规款 (sold enough, none of
# the three). See tiein.features.RoleConfig for the thresholds.
SALES_ROLES = ("traffic", "hero", "profit", "regular")

# One row per order line. quantity > 0 (cancellations already netted out by the loader).
ORDERS = pa.schema(
    [
        ("order_id", pa.string()),
        ("product_id", pa.string()),
        ("quantity", pa.float64()),
        ("customer_id", pa.string()),
        ("ts", pa.timestamp("us")),
    ]
)

# The customer segment of each order (country, channel, member tier, …) when the orders file has
# one (``--map segment=COLUMN``); orders without a segment are absent. See tiein.segments.
ORDER_SEGMENTS = pa.schema(
    [
        ("order_id", pa.string()),
        ("segment", pa.string()),
    ]
)

# Browsing sessions: one row per event (view, cart, ...). Co-view pairs are mined per session.
VIEWS = pa.schema(
    [
        ("session_id", pa.string()),
        ("product_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("event", pa.string()),
    ]
)

# Pairs a source already lists per product (Amazon also_buy / also_view).
# kind is "co_purchase" or "co_view"; src lists dst.
LISTED_PAIRS = pa.schema(
    [
        ("src", pa.string()),
        ("dst", pa.string()),
        ("kind", pa.string()),
    ]
)

# Content sets (内容场景): products shown together in one short video, livestream, styled outfit
# or a hand-made list (tiein.loaders.sets). One row per (set, product); kind is one of SET_KINDS;
# weight > 0 is the set's (the largest given on its rows, default 1); ts is null when not given.
SETS = pa.schema(
    [
        ("set_id", pa.string()),
        ("product_id", pa.string()),
        ("kind", pa.string()),
        ("weight", pa.float64()),
        ("ts", pa.timestamp("us")),
    ]
)
SET_KINDS = ("video", "live", "outfit", "manual")

# Co-occurrence statistics of an unordered pair, stored once with a < b (string order).
# n_ab: baskets (orders or sessions) with both; n_a / n_b: baskets with a / b; n: all baskets.
# support = n_ab / n; conf_ab = P(b | a) = n_ab / n_a; conf_ba = n_ab / n_b;
# lift = n_ab * n / (n_a * n_b);
# after_ab = customers who bought a and later (a later order, within the window) bought b,
# after_ba the other way round; 0 where customer or time is unknown.
PAIR_STATS = pa.schema(
    [
        ("a", pa.string()),
        ("b", pa.string()),
        ("n_ab", pa.int64()),
        ("n_a", pa.int64()),
        ("n_b", pa.int64()),
        ("n", pa.int64()),
        ("support", pa.float64()),
        ("conf_ab", pa.float64()),
        ("conf_ba", pa.float64()),
        ("lift", pa.float64()),
        ("after_ab", pa.int64()),
        ("after_ba", pa.int64()),
    ]
)

# "next": after buying src, customers go on to buy dst (a later order within the window;
# tiein.next_purchase.classify_next).
RELATION_KINDS = ("complement", "substitute", "upsell", "series", "next")


# The mining parameters and their defaults, in one place: the numpy and Spark miners, the
# incremental counts, the build options and the CLI all take their defaults from MINING.
@dataclass(frozen=True)
class MiningOptions:
    """min_count: baskets (or customers, for "bought after") a pair needs to be kept;
    max_basket: baskets with more distinct products are skipped (B2B orders, bots);
    after_window_days: a later purchase within this many days counts as "bought after" (None:
    no after counts); max_customer_items: customers with more distinct products are skipped in
    the after counts (wholesalers)."""

    min_count: int = 2
    max_basket: int = 500
    after_window_days: int | None = 90
    max_customer_items: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MINING = MiningOptions()


def unknown_kind(kind: object) -> str:
    """The one "unknown relation kind" message (ConfigError in :func:`check_kind`, InputError with
    file/row/column when a relations table carries one)."""
    return f"unknown relation kind {kind!r}; valid kinds: {', '.join(RELATION_KINDS)}"


def check_kind(kind: str) -> str:
    """``kind`` if it is a relation kind, else ConfigError naming the valid ones (the one check
    every store, the service and export share).

    >>> check_kind("complement")
    'complement'
    >>> check_kind("friend")
    Traceback (most recent call last):
    ...
    tiein.errors.ConfigError: unknown relation kind 'friend'; valid kinds: complement, substitute, upsell, series, next
    """
    if kind not in RELATION_KINDS:
        from tiein.errors import ConfigError

        raise ConfigError(unknown_kind(kind))
    return kind


MAX_K = 1000  # the most rows (related products, add-ons, search hits) one call may ask for


def check_k(k: int, most: int = MAX_K, name: str = "k") -> int:
    """``k`` if it is an integer from 1 to ``most`` (a server may cap lower than :data:`MAX_K`),
    else ConfigError (the one check of k that the service, the API, the CLI and export share).

    >>> check_k(10)
    10
    >>> check_k(0, 100)
    Traceback (most recent call last):
    ...
    tiein.errors.ConfigError: k must be an integer from 1 to 100, got 0
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most:
        from tiein.errors import ConfigError

        raise ConfigError(f"{name} must be an integer from 1 to {most}, got {k!r}")
    return k


def parse_mix(mix: Sequence[str] | str | None) -> list[str] | None:
    """Sales roles (:data:`SALES_ROLES`) in add-on order, from a sequence or a string joined by
    ``+``, ``,`` or spaces (``"hero+profit"``; a ``+`` in a URL's query arrives as a space), case
    folded; None for None. ConfigError when it names no role or an unknown one (the one parser of
    ``mix`` for the API, the CLI and export).

    >>> parse_mix("Hero+profit"), parse_mix("hero, profit"), parse_mix(["traffic"]), parse_mix(None)
    (['hero', 'profit'], ['hero', 'profit'], ['traffic'], None)
    >>> parse_mix("hero+vip")
    Traceback (most recent call last):
    ...
    tiein.errors.ConfigError: mix must name sales roles from traffic, hero, profit, regular (e.g. hero+profit), got 'hero+vip'
    """
    from tiein.errors import ConfigError

    if mix is None:
        return None
    if isinstance(mix, str):
        parts: list[Any] = mix.replace("+", " ").replace(",", " ").split()
    elif isinstance(mix, Iterable) and not isinstance(mix, bytes | Mapping):
        parts = list(mix)
    else:
        raise ConfigError(f"mix must be sales roles such as 'hero+profit', got {mix!r}")
    out = [p.strip().lower() if isinstance(p, str) else p for p in parts]
    if not out or any(p not in SALES_ROLES for p in out):
        raise ConfigError(
            f"mix must name sales roles from {', '.join(SALES_ROLES)} (e.g. hero+profit), got {mix!r}"
        )
    return out


# Relationship type in the graph for each relation kind.
REL_TYPE = {
    "complement": "COMPLEMENT",
    "substitute": "SUBSTITUTE",
    "upsell": "UPSELL",
    "series": "SAME_SERIES",
    "next": "NEXT_PURCHASE",
}

# Typed, directed relations: src -> dst ("for a shopper looking at src, dst is a <kind>").
# evidence is a JSON object string with every number that led to the decision.
# Per product, from customer timelines (tiein.mining.mine_pairs): ``customers`` who bought it
# (with a known customer and time), ``returning`` of them who bought anything in a later order
# within the window, ``later``: customers who bought it in an order placed within the window after
# an earlier order of theirs. Feeds the confidence and lift of "next" relations.
TIMELINE = pa.schema(
    [
        ("product_id", pa.string()),
        ("customers", pa.int64()),
        ("returning", pa.int64()),
        ("later", pa.int64()),
    ]
)

RELATIONS = pa.schema(
    [
        ("src", pa.string()),
        ("dst", pa.string()),
        ("kind", pa.string()),
        ("score", pa.float64()),
        ("n_ab", pa.int64()),
        ("lift", pa.float64()),
        ("confidence", pa.float64()),
        ("co_view", pa.int64()),
        ("similarity", pa.float64()),
        ("category_relation", pa.string()),  # "same" | "sibling" | "different" | "unknown"
        ("price_ratio", pa.float64()),  # price(dst) / price(src), null if unknown
        ("evidence", pa.string()),
    ]
)

SCENES = pa.schema(
    [
        ("scene_id", pa.string()),
        ("name", pa.string()),
        ("source", pa.string()),  # "user" | "discovered"
    ]
)

# product_id -> scene_id with the product's role in the scene (may be null) and a weight.
SCENE_MEMBERS = pa.schema(
    [
        ("product_id", pa.string()),
        ("scene_id", pa.string()),
        ("role", pa.string()),
        ("weight", pa.float64()),
    ]
)


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema``."""
    return schema.empty_table()


@dataclass
class GraphData:
    """Everything a store needs for one full, atomic load.

    ``products`` follows PRODUCTS; ``co_purchased`` and ``co_viewed`` follow PAIR_STATS;
    ``relations`` follows RELATIONS; categories / brands / attributes / scenes are derived by
    :func:`tiein.graph.build.graph_data` from the products (see docs/schema.md).
    """

    products: pa.Table
    co_purchased: pa.Table = field(default_factory=lambda: empty(PAIR_STATS))
    co_viewed: pa.Table = field(default_factory=lambda: empty(PAIR_STATS))
    relations: pa.Table = field(default_factory=lambda: empty(RELATIONS))
    scenes: pa.Table = field(default_factory=lambda: empty(SCENES))
    scene_members: pa.Table = field(default_factory=lambda: empty(SCENE_MEMBERS))
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryContext:
    """Who asks and when: the per-request values that re-rank an answer without changing the
    graph. ``at``: the date seasonal relations are ranked for (tiein.season.rank; None: the
    year-round order, exactly as without it). ``segment``: the customer segment asked for
    (tiein.segments; None: all customers), as named — the service resolves it against the graph
    (an unknown one answers for all customers and says so). Frozen, so one context can ride
    through the service, bundles and add-ons unchanged."""

    at: date | None = None
    segment: str | None = None

    @property
    def neutral(self) -> bool:
        """Whether the context changes nothing (the year-round answer for all customers)."""
        return self.at is None and self.segment is None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat() if self.at is not None else None, "segment": self.segment}

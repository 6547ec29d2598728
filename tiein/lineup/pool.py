"""The lineup's options and its product pool: explicit ids, a category, or the shop's top N by
orders, read through the store's :class:`tiein.graph.base.GraphReader` only.

Popularity is what the graph records: the orders holding a product, from the co-purchase
statistics (``CO_PURCHASED.n_a`` / ``n_b``: baskets holding each end of a pair). A product never
bought together with another has no such edge and counts 0 orders (it sorts after the others, by
id). Nothing is estimated or invented.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError, NotFound, ProductNotFound
from tiein.rules import Filters

if TYPE_CHECKING:
    from tiein.graph.base import GraphReader

MAX_POOL = 200  # products one lineup may consider (ids given, a category's best, top N)
MAX_LENGTH_MIN = 24 * 60
MODES = ("lineup", "assort")

# Portable read-only Cypher (both dialects). The a < b pairs are stored once, so each end is read
# on its own side; n_a is the same on every pair of a product (its basket count).
PRODUCT_LIST_QUERY = (
    "MATCH (p:Product) RETURN p.product_id AS product_id, p.category AS category, "
    "p.category_path AS category_path ORDER BY product_id"
)
ORDERS_SRC_QUERY = (
    "MATCH (a:Product)-[r:CO_PURCHASED]->(:Product) RETURN a.product_id AS product_id, max(r.n_a) AS orders"
)
ORDERS_DST_QUERY = (
    "MATCH (:Product)-[r:CO_PURCHASED]->(b:Product) RETURN b.product_id AS product_id, max(r.n_b) AS orders"
)
ORDERS_SRC_OF_QUERY = (
    "MATCH (a:Product)-[r:CO_PURCHASED]->(:Product) WHERE a.product_id IN $ids "
    "RETURN a.product_id AS product_id, max(r.n_a) AS orders"
)
ORDERS_DST_OF_QUERY = (
    "MATCH (:Product)-[r:CO_PURCHASED]->(b:Product) WHERE b.product_id IN $ids "
    "RETURN b.product_id AS product_id, max(r.n_b) AS orders"
)


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


@dataclass(frozen=True)
class LineupOptions:
    """How a broadcast is laid out (every field checked here; ConfigError names the bad one).

    length_min / slot_min: the broadcast and one slot, in minutes (every slot has the same
    length); welfare_every_min: a 福利加推 slot at the first product boundary after every so many
    minutes (None: none; at least two slots apart); openers: traffic items (引流款) that open the
    show; complements: complements placed right after each hero; compare: a hero's substitute from
    the pool follows its complements as a deliberate comparison slot; extend_pool: complements may
    come from outside the pool (flagged); closing_bundle / bundle_size: end with the first hero's
    bundle (tiein.bundles); max_price_jump: flag a slot whose price is at least this many times the
    previous one's; min_stock: products with known stock below it are not scheduled (1: stock 0
    is left out); low_stock: known stock at or below it is said out loud; mode: "lineup", or
    "assort" (组货: pick ``picks`` products first, then line them up); substitute_penalty: in
    assort, the share of a product's orders lost for each substitute already picked."""

    length_min: int = 120
    slot_min: int = 5
    welfare_every_min: int | None = None
    openers: int = 1
    complements: int = 1
    compare: bool = False
    extend_pool: bool = False
    closing_bundle: bool = True
    bundle_size: int = 3
    max_price_jump: float = 5.0
    min_stock: int = 1
    low_stock: int = 5
    mode: str = "lineup"
    picks: int = 8
    substitute_penalty: float = 1.0

    def __post_init__(self) -> None:
        _whole("length_min", self.length_min, 1, MAX_LENGTH_MIN)
        _whole("slot_min", self.slot_min, 1, MAX_LENGTH_MIN)
        if self.slot_min > self.length_min:
            raise ConfigError(
                f"a slot of {self.slot_min} minutes is longer than the broadcast of {self.length_min} minutes"
            )
        if self.welfare_every_min is not None:
            _whole("welfare_every_min", self.welfare_every_min, 1, MAX_LENGTH_MIN)
            if self.welfare_every_min < 2 * self.slot_min:
                raise ConfigError(
                    f"welfare_every_min {self.welfare_every_min} leaves no room for products: give at least "
                    f"two slots ({2 * self.slot_min} minutes)"
                )
        _whole("openers", self.openers, 0, 20)
        _whole("complements", self.complements, 0, 5)
        _whole("bundle_size", self.bundle_size, 2, 6)
        _whole("min_stock", self.min_stock, 0, 1_000_000)
        _whole("low_stock", self.low_stock, 0, 1_000_000)
        _whole("picks", self.picks, 1, MAX_POOL)
        for name in ("max_price_jump", "substitute_penalty"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if self.max_price_jump <= 1:
            raise ConfigError(f"max_price_jump must be above 1 (a factor), got {self.max_price_jump!r}")
        if not 0 <= self.substitute_penalty <= 1:
            raise ConfigError(f"substitute_penalty must be from 0 to 1, got {self.substitute_penalty!r}")
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        for name in ("compare", "extend_pool", "closing_bundle"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def slots(self) -> int:
        """Slots the broadcast holds."""
        return self.length_min // self.slot_min

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Pool:
    """The products a lineup draws from: ``products`` by id, ``orders`` per id (0 when the graph
    has no co-purchase count), ``order`` the ids by orders descending, then id."""

    source: str
    value: Any
    products: dict[str, dict[str, Any]]
    orders: dict[str, int]
    truncated: bool = False

    @property
    def order(self) -> list[str]:
        return sorted(self.products, key=lambda p: (-self.orders.get(p, 0), p))

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "value": self.value,
            "size": len(self.products),
            "truncated": self.truncated,
            "limit": MAX_POOL,
        }


def order_counts(store: GraphReader, ids: list[str] | None = None) -> dict[str, int]:
    """Orders holding each product (of ``ids``, or of every product) as the graph's co-purchase
    statistics record them; products without a co-purchase edge are absent (0)."""
    out: dict[str, int] = {}
    if ids is None:
        queries: tuple[tuple[str, dict[str, Any] | None], ...] = (
            (ORDERS_SRC_QUERY, None),
            (ORDERS_DST_QUERY, None),
        )
    else:
        queries = ((ORDERS_SRC_OF_QUERY, {"ids": ids}), (ORDERS_DST_OF_QUERY, {"ids": ids}))
    for cypher, params in queries:
        for row in store.query(cypher, params):
            if row["orders"] is not None:
                pid = str(row["product_id"])
                out[pid] = max(out.get(pid, 0), int(row["orders"]))
    return out


def resolve_pool(
    store: GraphReader,
    *,
    ids: list[str] | None = None,
    category: str | None = None,
    top: int | None = None,
) -> Pool:
    """The pool of exactly one source: ``ids`` (every unknown id named in one NotFound), a
    ``category`` (any level of the path, case-insensitive; its best :data:`MAX_POOL` by orders)
    or the shop's ``top`` N products by orders. ConfigError for no source, several, or an empty
    or over-long list."""
    given = [name for name, v in (("ids", ids), ("category", category), ("top", top)) if v is not None]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one pool: product ids, a category, or top N"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if ids is not None:
        if isinstance(ids, str) or not isinstance(ids, list | tuple):
            raise ConfigError(f"product ids must be a list, got {ids!r}")
        wanted = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
        if not wanted:
            raise ConfigError("the pool is empty: give at least one product id")
        if len(wanted) > MAX_POOL:
            raise ConfigError(f"the pool holds at most {MAX_POOL} products, got {len(wanted)}")
        products: dict[str, dict[str, Any]] = {}
        unknown = []
        for pid in wanted:
            try:
                products[pid] = store.product(pid)
            except ProductNotFound:
                unknown.append(pid)
        if unknown:
            raise NotFound(
                f"not in the graph: {', '.join(repr(u) for u in unknown)} "
                f"({len(unknown)} of {len(wanted)} pool ids)"
            )
        return Pool("ids", wanted, products, order_counts(store, wanted))
    if category is not None:
        if not isinstance(category, str) or not category.strip():
            raise ConfigError(f"category must be a non-empty text, got {category!r}")
        keep = Filters(category=category)
        members = [str(r["product_id"]) for r in store.query(PRODUCT_LIST_QUERY) if keep.allows(r)]
        if not members:
            raise NotFound(f"category {category!r} has no products in the graph")
        counts = order_counts(store, members)
        chosen = sorted(members, key=lambda p: (-counts.get(p, 0), p))
        return Pool(
            "category",
            category,
            {p: store.product(p) for p in chosen[:MAX_POOL]},
            {p: counts.get(p, 0) for p in chosen[:MAX_POOL]},
            truncated=len(chosen) > MAX_POOL,
        )
    n = _whole("top", top, 1, MAX_POOL)
    counts = order_counts(store)
    best = sorted(counts, key=lambda p: (-counts[p], p))[:n]
    if not best:
        raise ConfigError("the pool is empty: the graph records no orders (no co-purchases) to rank by")
    return Pool("top", n, {p: store.product(p) for p in best}, {p: counts[p] for p in best})

""":class:`Lists`: the merchant lists of one home, read once per generation.

The lists need bulk reads: every product and every complement some order holds (pairings;
through ``read_table`` with plain Cypher every store runs: tiein.graph.snapshot's
``PRODUCTS_ALL``, tiein.lists.pairings' ``PAIRS_QUERY``) and the orders a build kept (trending; ``inputs/orders.parquet`` of the home's answering generation). A :class:`Lists`
keeps them, and the ranked trending rows per window, until the generation changes (the home's
``CURRENT`` pointer or the store's own generation token), so the API answers a list or a
fallback from memory. Thread-safe; one per server (tiein/api/lists_routes.py) or per command.
"""

from __future__ import annotations

import datetime as dt
import difflib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tiein.errors import NotFound
from tiein.graph.base import PRODUCT_FIELDS
from tiein.graph.snapshot import PRODUCTS_ALL
from tiein.home import inputs_dir, read_pointer
from tiein.lists.pairings import DEFAULT_MIN_ORDERS as PAIR_MIN_ORDERS
from tiein.lists.pairings import (
    PAIR_DETAILS_QUERY,
    PAIRS_QUERY,
    PairIndex,
    empty_note,
    pairing_item,
    top,
)
from tiein.lists.trending import (
    DEFAULT_DAYS,
    DEFAULT_MIN_ORDERS,
    PRIOR,
    Sales,
    check_days,
    check_min_orders,
    fallback_rows,
    parse_day,
    rank_trending,
    trending_answer,
    window,
)
from tiein.model import check_k
from tiein.rules import NO_FILTERS, Filters

if TYPE_CHECKING:
    from tiein.graph.base import GraphReader
    from tiein.service.types import PairingsPayload, TrendingPayload

_MAX_WINDOWS = 32  # ranked trending lists kept per generation (one per days / at / min_orders)


def _column_rows(table: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    if table.num_columns == 0 or table.num_rows == 0:
        return []
    cols = [table.column(n).to_pylist() for n in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def check_category(
    products: Mapping[str, Mapping[str, Any]], category: str | None, name: str = "category"
) -> None:
    """NotFound when no product is in ``category`` (any level of its path), naming the closest
    categories there are."""
    if category is None:
        return
    match = Filters(category=category).allows
    if any(match(p) for p in products.values()):
        return
    names = sorted({str(p.get("category")) for p in products.values() if p.get("category")})
    close = difflib.get_close_matches(category, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise NotFound(f"{name} {category!r} is not in the catalog{hint}")


class Lists:
    """Pairings, trending and the trending fallback of ``home`` (None: no home, so no trending)
    over a store passed to each call. ``days``: the fallback's window."""

    def __init__(self, home: Path | str | None, *, days: int = DEFAULT_DAYS) -> None:
        self.home = Path(home) if home is not None else None
        self.days = check_days(days)
        self._lock = threading.RLock()
        self._token: tuple[Any, ...] | None = None
        self._products: dict[str, dict[str, Any]] | None = None
        self._pairs: PairIndex | None = None
        self._sales: Sales | None = None
        self._ranked: dict[tuple[Any, ...], tuple[Any, list[dict[str, Any]]]] = {}

    # ------------------------------------------------------------------------- cached reads
    def _check(self, store: GraphReader) -> None:
        """Forget everything when the generation changed (call with the lock held)."""
        current = read_pointer(self.home).current if self.home is not None else None
        token = (id(store), current, store.generation())
        if token != self._token:
            self._token, self._products, self._pairs, self._sales = token, None, None, None
            self._ranked = {}

    def products(self, store: GraphReader) -> dict[str, dict[str, Any]]:
        """Every product of the graph, by id (PRODUCT_FIELDS)."""
        with self._lock:
            self._check(store)
            if self._products is None:
                rows = _column_rows(store.read_table(PRODUCTS_ALL), PRODUCT_FIELDS)
                self._products = {r["product_id"]: r for r in rows}
            return self._products

    def pairs(self, store: GraphReader) -> tuple[dict[str, dict[str, Any]], PairIndex]:
        """The products and every complement some order holds (a :class:`PairIndex`), of one
        generation."""
        with self._lock:
            products = self.products(store)
            if self._pairs is None:
                t = store.read_table(PAIRS_QUERY)
                cols = [t.column(c) if t.num_rows else [] for c in ("src", "dst", "score", "n_ab")]
                self._pairs = PairIndex.build(list(products), *cols)
            return products, self._pairs

    def sales(self, store: GraphReader) -> Sales:
        """The orders of the answering generation (ServiceUnavailable when the home has none)."""
        with self._lock:
            self._check(store)
            if self._sales is None:
                if self.home is None:
                    from tiein.errors import ServiceUnavailable

                    raise ServiceUnavailable("trending needs a home with the orders of a build")
                self._sales = Sales.load(inputs_dir(self.home))
            return self._sales

    def ranked(
        self, store: GraphReader, days: int, at: dt.date | str | None, min_orders: int
    ) -> tuple[Any, list[dict[str, Any]]]:
        """(window, every trending row of the shop, best first); the window is None when the
        orders carry no dates."""
        at_day = parse_day(at)
        key = (check_days(days), at_day, check_min_orders(min_orders))
        with self._lock:
            sales = self.sales(store)
            products = self.products(store)
            if key not in self._ranked:
                end = at_day or sales.last_day
                if end is None:
                    found: tuple[Any, list[dict[str, Any]]] = (None, [])
                else:
                    win = window(end, days)
                    found = (win, rank_trending(sales, products, win, min_orders=min_orders, prior=PRIOR))
                if len(self._ranked) >= _MAX_WINDOWS:
                    self._ranked.pop(next(iter(self._ranked)))
                self._ranked[key] = found
            return self._ranked[key]

    # ------------------------------------------------------------------------- answers
    def pairings(
        self,
        store: GraphReader,
        *,
        category: str | None = None,
        with_category: str | None = None,
        k: int = 10,
        min_orders: int = PAIR_MIN_ORDERS,
        per_category: bool = False,
        in_stock: bool = False,
    ) -> PairingsPayload:
        """搭配榜: see :mod:`tiein.lists.pairings`. NotFound for a category no product is in."""
        check_k(k)
        check_min_orders(min_orders)
        products, index = self.pairs(store)
        check_category(products, category)
        check_category(products, with_category, "with_category")
        anchor_ok, item_ok = (
            _mask(index.ids, products, category, in_stock),
            _mask(index.ids, products, with_category, in_stock),
        )
        ranked = index.rank(min_orders, anchor_ok, item_ok)
        groups = None
        if per_category:
            cats = [products[pid].get("category") or "" for pid in index.ids]
            names = {c: i for i, c in enumerate(sorted(set(cats)))}
            groups = np.array([names[cats[s]] for s in index.src[ranked]], dtype=np.int64)
        chosen = top(ranked, k, groups)
        pairs = [(index.ids[index.src[p]], index.ids[index.dst[p]]) for _, p in chosen]
        details = _details(store, sorted({a for a, _ in pairs}))
        answer = {
            "items": [
                pairing_item(products, details[pair], rank)
                for (rank, _), pair in zip(chosen, pairs, strict=True)
            ],
            "category": category,
            "with_category": with_category,
            "per_category": per_category,
            "k": k,
            "min_orders": min_orders,
            "total": len(ranked),
            "note": None if chosen else empty_note(category, with_category, min_orders),
        }
        return answer  # type: ignore[return-value]

    def trending(
        self,
        store: GraphReader,
        *,
        category: str | None = None,
        days: int = DEFAULT_DAYS,
        at: dt.date | str | None = None,
        k: int = 10,
        min_orders: int = DEFAULT_MIN_ORDERS,
        per_category: bool = False,
        in_stock: bool = False,
    ) -> TrendingPayload:
        """品类热销榜: see :mod:`tiein.lists.trending`. NotFound for a category no product is in,
        ServiceUnavailable when the home kept no orders."""
        check_k(k)
        check_category(self.products(store), category)
        win, ranked = self.ranked(store, days, at, min_orders)
        note = None if win is not None else "the orders carry no dates: nothing to compare"
        answer = trending_answer(
            ranked,
            win,
            k=k,
            category=category,
            per_category=per_category,
            min_orders=min_orders,
            keep=_keep(category, in_stock),
            note=note,
        )
        return answer  # type: ignore[return-value]

    def fallback(
        self,
        store: GraphReader,
        product: Mapping[str, Any],
        kind: str,
        k: int,
        keep: Callable[[Mapping[str, Any]], bool] = NO_FILTERS.allows,
    ) -> list[dict[str, Any]]:
        """The trending rows that stand in for an empty ``related`` list of ``product`` (see
        :func:`tiein.lists.trending.fallback_rows`; only rows ``keep`` allows), over this list's
        ``days``; none when the home kept no orders, or no dated ones."""
        from tiein.errors import ServiceUnavailable

        try:
            _, ranked = self.ranked(store, self.days, None, DEFAULT_MIN_ORDERS)
        except ServiceUnavailable:
            return []
        return fallback_rows(ranked, product, kind, k, keep, self.days)


def _keep(category: str | None, in_stock: bool) -> Callable[[Mapping[str, Any]], bool] | None:
    if category is None and not in_stock:
        return None
    return Filters(category=category, in_stock=in_stock).allows


def _mask(
    ids: list[str], products: Mapping[str, Mapping[str, Any]], category: str | None, in_stock: bool
) -> np.ndarray | None:
    """A bool per product code: in ``category`` and (with ``in_stock``) in stock."""
    keep = _keep(category, in_stock)
    return None if keep is None else np.array([keep(products[pid]) for pid in ids], dtype=bool)


def _details(store: GraphReader, anchors: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The whole complement rows of ``anchors``, by (src, dst)."""
    if not anchors:
        return {}
    t = store.read_table(PAIR_DETAILS_QUERY, {"ids": anchors})
    return {(r["src"], r["dst"]): r for r in _column_rows(t, tuple(t.column_names))}

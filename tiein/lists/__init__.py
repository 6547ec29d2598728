"""Lists a merchant reads: 搭配榜 (best pairings) and 品类热销榜 (trending items per category),
and the trending items that fill a related list a product does not have yet.

- :mod:`~tiein.lists.pairings`: the strongest complement pairs, overall or per category
  (:class:`PairIndex`, vectorised).
- :mod:`~tiein.lists.trending`: orders in a window against the window before, with shrinkage
  (:func:`window`, :func:`trend_score`, :func:`rank_trending`, pure; :class:`Sales`, the build's
  orders as daily counts) and :func:`fallback_rows`.
- :mod:`~tiein.lists.source`: :class:`Lists`, the answers (payloads of tiein.service.types:
  ``PairingsPayload``, ``TrendingPayload``) with the bulk reads kept per generation.

The CLI (``tiein pairings`` / ``tiein trending``), the API (``GET /v1/pairings`` /
``GET /v1/trending``) and ``tiein export pairings|trending`` all answer through :class:`Lists`;
``related`` (kind complement) takes one to fill an empty list, flagged ``fallback: "trending"``
(:func:`related_fallback`). See docs/lists.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tiein.lists.pairings import PairIndex
from tiein.lists.source import Lists, check_category
from tiein.lists.trending import (
    DEFAULT_DAYS,
    DEFAULT_MIN_ORDERS,
    FALLBACK,
    PRIOR,
    Sales,
    Window,
    fallback_rows,
    rank_trending,
    trend_score,
    window,
)

if TYPE_CHECKING:
    from tiein.graph.base import GraphReader
    from tiein.rules import Filters, RuleSet
    from tiein.service.types import RelatedPayload


def related_fallback(
    lists: Lists,
    store: GraphReader,
    payload: RelatedPayload,
    kind: str,
    k: int,
    filters: Filters,
    rules: RuleSet | None = None,
) -> RelatedPayload:
    """``payload`` (a ``related`` answer with no rows) with ``items`` / ``related`` = the trending
    items of its product's category, else of the shop, and ``fallback: "trending"``: only for kind
    complement, on the first page; ``filters`` apply and the merchant's blocks (``rules``) for
    this anchor keep their items out. Unchanged when nothing is trending."""
    if kind != "complement" or filters.offset:
        return payload
    anchor = payload["product"]["product_id"]

    def keep(row: Mapping[str, Any]) -> bool:
        return filters.allows(row) and not (
            rules is not None and rules.blocked(anchor, row["product_id"], kind)
        )

    rows = lists.fallback(store, payload["product"], kind, k, keep)
    if rows:
        payload["items"] = rows
        payload["related"] = rows
        payload["fallback"] = FALLBACK
    return payload


__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_MIN_ORDERS",
    "FALLBACK",
    "PRIOR",
    "PairIndex",
    "Lists",
    "Sales",
    "Window",
    "check_category",
    "fallback_rows",
    "rank_trending",
    "related_fallback",
    "trend_score",
    "window",
]

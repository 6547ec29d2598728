"""Smoothed CTR / conversion per (anchor, item, kind), per item and per kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError
from tiein.feedback.log import read_log
from tiein.loaders.events import records_table

Z95 = 1.959963984540054
DEFAULT_PRIOR_STRENGTH = 50.0
DEFAULT_ITEM_STRENGTH = 200.0
METRICS = {"conversion": "purchases", "ctr": "clicks"}


def _count_index(
    table: pa.Table, keys: Sequence[str], successes: str
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """key columns -> (impressions, successes capped at impressions) of a stats table."""
    cols = zip(*(table.column(k).to_pylist() for k in keys), strict=True)
    vals = zip(table.column("impressions").to_pylist(), table.column(successes).to_pylist(), strict=True)
    return {key: (n, min(s, n)) for key, (n, s) in zip(cols, vals, strict=True)}


def _lookup(got: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.array(got, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


@dataclass
class FeedbackStats:
    """Counts and smoothed rates per (anchor_id, item_id, kind) (``pairs``), per kind (``kinds``)
    and per recommended item and kind over all its anchors (``items``: item_id, kind, anchors,
    impressions, clicks, purchases; successes capped at impressions per pair); see the module
    docstring for the smoothing. ``metric`` ("conversion" or "ctr") is the rate :func:`rerank`
    optimises; ``item_strength`` the pseudo-impressions of its item level (0: no item level)."""

    pairs: pa.Table
    kinds: pa.Table
    items: pa.Table
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    item_strength: float = DEFAULT_ITEM_STRENGTH
    metric: str = "conversion"
    _index: dict[tuple[Any, ...], tuple[int, int]] | None = field(default=None, repr=False)
    _item_index: dict[tuple[Any, ...], tuple[int, int]] | None = field(default=None, repr=False)
    _prior: dict[str, float] | None = field(default=None, repr=False)

    def prior_rate(self, kind: str) -> float:
        """The kind's Laplace-smoothed overall rate of ``metric``: ``(s + 1) / (n + 2)``; for a
        kind without events, the same over all kinds (0.5 when there are no events at all)."""
        if self._prior is None:
            import pyarrow.compute as pc

            k = self.kinds.to_pydict()
            self._prior = dict(zip(k["kind"], k[f"{self.metric}_prior"], strict=True))
            n = self.pairs.column("impressions")
            capped = pc.min_element_wise(self.pairs.column(METRICS[self.metric]), n)
            self._prior[""] = ((pc.sum(capped).as_py() or 0) + 1.0) / ((pc.sum(n).as_py() or 0) + 2.0)
        return self._prior.get(kind, self._prior[""])

    def _pair_index(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        if self._index is None:
            self._index = _count_index(self.pairs, ("anchor_id", "item_id", "kind"), METRICS[self.metric])
        return self._index

    def _items_index(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        if self._item_index is None:
            self._item_index = _count_index(self.items, ("item_id", "kind"), METRICS[self.metric])
        return self._item_index

    def counts(self, anchor_id: str, items: Sequence[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(impressions, successes)`` of ``metric`` for each of ``items`` shown for ``anchor_id``
        as ``kind`` (0, 0 for pairs never shown; successes capped at impressions)."""
        index = self._pair_index()
        return _lookup([index.get((anchor_id, i, kind), (0, 0)) for i in items])

    def item_counts(self, items: Sequence[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(impressions, successes)`` of ``metric`` for each of ``items`` recommended as ``kind``
        for any anchor (per-pair successes capped at impressions; 0, 0 for items never shown)."""
        index = self._items_index()
        return _lookup([index.get((i, kind), (0, 0)) for i in items])

    def warm(self) -> FeedbackStats:
        """Build the lookup indexes now (a server does it before swapping new stats in, so no
        request pays for it); returns self."""
        self._pair_index()
        self._items_index()
        self.prior_rate("")
        return self

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready: {"metric", "prior_strength", "item_strength", "kinds": [...], "pairs": [...
        best ``top`` by smoothed conversion, then impressions], "items": [... best ``top`` by
        purchases, then impressions]}."""
        pairs, items = self.pairs, self.items
        if top is not None:
            import pyarrow.compute as pc

            order = pc.sort_indices(
                pairs,
                sort_keys=[
                    ("conversion_smoothed", "descending"),
                    ("impressions", "descending"),
                    ("anchor_id", "ascending"),
                    ("item_id", "ascending"),
                ],
            )
            pairs = pairs.take(order[:top])
            order = pc.sort_indices(
                items,
                sort_keys=[
                    ("purchases", "descending"),
                    ("impressions", "descending"),
                    ("kind", "ascending"),
                    ("item_id", "ascending"),
                ],
            )
            items = items.take(order[:top])
        return {
            "metric": self.metric,
            "prior_strength": self.prior_strength,
            "item_strength": self.item_strength,
            "kinds": self.kinds.to_pylist(),
            "pairs": pairs.to_pylist(),
            "items": items.to_pylist(),
        }


_PAIRS_SQL = """
SELECT anchor_id, item_id, kind,
       count(*) FILTER (WHERE event = 'impression') AS impressions,
       count(*) FILTER (WHERE event = 'click') AS clicks,
       count(*) FILTER (WHERE event = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE event = 'purchase') AS purchases
FROM ev GROUP BY ALL
"""
# Priors: successes capped at impressions per pair, then Laplace-smoothed per kind.
_KINDS_SQL = """
SELECT kind, sum(impressions)::BIGINT AS impressions, sum(clicks)::BIGINT AS clicks,
       sum(add_to_carts)::BIGINT AS add_to_carts, sum(purchases)::BIGINT AS purchases,
       CASE WHEN sum(impressions) > 0 THEN sum(clicks) / sum(impressions) END AS ctr,
       CASE WHEN sum(impressions) > 0 THEN sum(purchases) / sum(impressions) END AS conversion,
       (sum(least(clicks, impressions)) + 1.0) / (sum(impressions) + 2.0) AS ctr_prior,
       (sum(least(purchases, impressions)) + 1.0) / (sum(impressions) + 2.0) AS conversion_prior
FROM p GROUP BY kind ORDER BY kind
"""
_STATS_SQL = """
SELECT p.*,
       CASE WHEN p.impressions > 0 THEN p.clicks / p.impressions END AS ctr,
       CASE WHEN p.impressions > 0 THEN p.purchases / p.impressions END AS conversion,
       (least(p.clicks, p.impressions) + $m * k.ctr_prior) / (p.impressions + $m) AS ctr_smoothed,
       (least(p.purchases, p.impressions) + $m * k.conversion_prior) / (p.impressions + $m) AS conversion_smoothed
FROM p JOIN k USING (kind)
ORDER BY kind, anchor_id, item_id
"""
# The item level of the re-ranker's prior: every anchor's impressions of an item, successes capped
# per pair exactly as in the pair counts (so a pair's own counts can be taken out again).
_ITEMS_SQL = """
SELECT item_id, kind, count(*)::BIGINT AS anchors, sum(impressions)::BIGINT AS impressions,
       sum(least(clicks, impressions))::BIGINT AS clicks, sum(least(purchases, impressions))::BIGINT AS purchases
FROM p GROUP BY item_id, kind ORDER BY kind, item_id
"""


def feedback_stats(
    events: pa.Table,
    *,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    item_strength: float = DEFAULT_ITEM_STRENGTH,
    metric: str = "conversion",
) -> FeedbackStats:
    """Per-pair and per-kind counts of :data:`EVENTS` with raw and smoothed CTR and conversion
    (one DuckDB pass). ``pairs``: anchor_id, item_id, kind, impressions, clicks, add_to_carts,
    purchases, ctr, conversion (null without impressions), ctr_smoothed, conversion_smoothed.
    ``kinds``: kind, impressions, clicks, add_to_carts, purchases, ctr, conversion, ctr_prior,
    conversion_prior (the Laplace-smoothed rates used as prior means).

    >>> ev = events_table([
    ...     {"ts": "2024-01-01", "user_id": "u", "anchor_id": "a", "item_id": "b", "kind": "complement", "event": e}
    ...     for e in ("impression", "impression", "purchase")])
    >>> s = feedback_stats(ev, prior_strength=2)
    >>> row = s.pairs.to_pylist()[0]
    >>> row["impressions"], row["purchases"], row["conversion"]   # prior (1 + 1) / (2 + 2) = 0.5
    (2, 1, 0.5)
    >>> row["conversion_smoothed"]                                # (1 + 2 * 0.5) / (2 + 2)
    0.5
    """
    import duckdb

    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    if not prior_strength > 0:
        raise ConfigError(f"prior_strength must be > 0, got {prior_strength!r}")
    if not item_strength >= 0:
        raise ConfigError(f"item_strength must be >= 0 (0: no item level), got {item_strength!r}")
    con = duckdb.connect()
    try:
        con.register("ev", events.select(["anchor_id", "item_id", "kind", "event"]))
        con.execute(f"CREATE TEMP TABLE p AS {_PAIRS_SQL}")
        kinds = con.sql(_KINDS_SQL).to_arrow_table()
        con.register("k", kinds)
        pairs = con.sql(_STATS_SQL, params={"m": float(prior_strength)}).to_arrow_table()
        items = con.sql(_ITEMS_SQL).to_arrow_table()
    finally:
        con.close()
    return FeedbackStats(
        pairs=pairs,
        kinds=kinds,
        items=items,
        prior_strength=float(prior_strength),
        item_strength=float(item_strength),
        metric=metric,
    )


def events_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """:func:`records_table` for code and doctests (source "records")."""
    return records_table(records, "records")


def load_stats(home: Path | str, **options: Any) -> FeedbackStats:
    """:func:`feedback_stats` of the whole log of ``home``."""
    return feedback_stats(read_log(home), **options)

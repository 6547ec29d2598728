"""Seasonal ranking at query time: a date (``at``) re-weights the rows a store returns by the
``season`` evidence the build put on each relation (:mod:`tiein.season.stats`).

A row's weight at ``at`` is its shrunk monthly lift for ``at``'s month to the power
:data:`STRENGTH`; rows are re-sorted by ``score × weight`` (stable: equal products keep the
store's order). A relation without season evidence (never bought together in a dated basket,
``next`` relations) weighs 1. The month is what counts: a graph built from 2010-2011 orders ranks
``at=2026-12-10`` as a December.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from tiein.errors import ConfigError
from tiein.season.calendar import spans_contain

# exponent of the monthly lift in the re-ranking (tuned on a validation split of the training
# months of Online Retail, bench/quality.py --seasonal; see docs/relations.md, Seasons)
STRENGTH = 1.0
# with a date, read this many times the rows asked for, so that in-season rows further down rise
SEASON_POOL = 3


def parse_at(value: str | date | None) -> date | None:
    """The query date: a ``date``, ISO text ``YYYY-MM-DD``, or ``today`` (UTC); None for None or
    "". ConfigError for anything else.

    >>> parse_at("2024-12-10"), parse_at(None)
    (datetime.date(2024, 12, 10), None)
    >>> parse_at("12/10/2024")
    Traceback (most recent call last):
    ...
    tiein.errors.ConfigError: at must be a date YYYY-MM-DD (or 'today'), got '12/10/2024'
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "today":
            return datetime.now(UTC).date()
        if len(text) == 10:
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
    raise ConfigError(f"at must be a date YYYY-MM-DD (or 'today'), got {value!r}")


def _season(evidence: Any) -> Mapping[str, Any] | None:
    season = evidence.get("season") if isinstance(evidence, Mapping) else None
    return season if isinstance(season, Mapping) else None


def season_weight(evidence: Any, at: date, strength: float = STRENGTH) -> float:
    """The factor a relation's score is multiplied by at ``at``: its monthly lift to the power
    ``strength``; 1 without season evidence.

    >>> ev = {"season": {"months": [0.5] * 11 + [3.0]}}
    >>> season_weight(ev, date(2024, 12, 1)), season_weight(ev, date(2024, 7, 1)), season_weight({}, date(2024, 7, 1))
    (3.0, 0.5, 1.0)
    """
    season = _season(evidence)
    months = season.get("months") if season is not None else None
    if not isinstance(months, list) or len(months) != 12:
        return 1.0
    value = months[at.month - 1]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return 1.0
    return float(float(value) ** strength)


def in_peak(evidence: Any, at: date) -> bool:
    """Whether the relation is seasonal and ``at`` lies in its peak window (the peak month, or
    one of the peak window's spans).

    >>> in_peak({"season": {"by": "month", "peak": "m12", "seasonal": True}}, date(2011, 12, 5))
    True
    >>> in_peak({"season": {"by": "calendar", "peak": "christmas", "seasonal": True, "spans": [["11-15", "12-25"]]}}, date(2011, 12, 28))
    False
    """
    season = _season(evidence)
    if season is None or season.get("seasonal") is not True:
        return False
    if season.get("by") == "calendar":
        spans = season.get("spans")
        return isinstance(spans, list) and spans_contain(spans, at)
    return season.get("peak") == f"m{at.month:02d}"


def season_clause(evidence: Any, at: date | None) -> tuple[str, str] | None:
    """(zh, en) "圣诞季常一起买" / "often bought together at Christmas" when ``at`` lies in the
    relation's peak window; None otherwise.

    >>> season_clause({"season": {"by": "month", "peak": "m12", "peak_zh": "12月", "peak_en": "December", "seasonal": True}}, date(2011, 12, 5))
    ('12月常一起买', 'often bought together in December')
    """
    if at is None or not in_peak(evidence, at):
        return None
    season = _season(evidence) or {}
    zh, en = str(season.get("peak_zh") or ""), str(season.get("peak_en") or "")
    if not zh or not en:
        return None
    return f"{zh}常一起买", f"often bought together {'in' if season.get('by') == 'month' else 'at'} {en}"


def seasonal_rerank(
    rows: list[dict[str, Any]], at: date, *, strength: float = STRENGTH, score_key: str = "score"
) -> list[dict[str, Any]]:
    """``rows`` (store rows, best first) each with ``season_weight`` and ``season_score`` (score
    × weight) added, sorted by ``season_score`` descending; ties keep the given order.

    >>> rows = [{"product_id": "a", "score": 0.5, "evidence": {}},
    ...         {"product_id": "b", "score": 0.3, "evidence": {"season": {"months": [2.0] * 12}}}]
    >>> [(r["product_id"], r["season_score"]) for r in seasonal_rerank(rows, date(2024, 1, 1))]
    [('b', 0.6), ('a', 0.5)]
    """
    out = []
    for r in rows:
        w = season_weight(r.get("evidence"), at, strength)
        out.append({**r, "season_weight": round(w, 6), "season_score": round(float(r[score_key]) * w, 6)})
    order = sorted(range(len(out)), key=lambda i: (-out[i]["season_score"], i))
    return [out[i] for i in order]

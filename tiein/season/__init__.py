"""Seasonal relations (时令与节日): pair statistics per season window, and ranking at a date.

- :mod:`~tiein.season.calendar`: the windows: twelve months (default) or named windows from a
  calendar file (``tiein build --calendar FILE``, or ``builtin``).
- :mod:`~tiein.season.stats`: the build step: per-window co-purchase counts of the kept
  relation pairs, shrunk to the year-round rate, as ``season`` evidence on each relation.
- :mod:`~tiein.season.rank`: the query side: ``at=DATE`` re-weights rows by their monthly lift;
  explanations say "圣诞季常一起买" when ``at`` is in a relation's peak window.

The heavy parts (DuckDB) load only in the build step. See docs/relations.md, Seasons.
"""

from __future__ import annotations

from tiein.season.calendar import BUILTIN, Window, load_calendar, month_windows, parse_calendar
from tiein.season.rank import (
    SEASON_POOL,
    STRENGTH,
    in_peak,
    parse_at,
    season_clause,
    season_weight,
    seasonal_rerank,
)
from tiein.season.stats import SeasonConfig, most_seasonal, season_evidence

__all__ = [
    "BUILTIN",
    "SEASON_POOL",
    "STRENGTH",
    "SeasonConfig",
    "Window",
    "in_peak",
    "load_calendar",
    "month_windows",
    "most_seasonal",
    "parse_at",
    "parse_calendar",
    "season_clause",
    "season_evidence",
    "season_weight",
    "seasonal_rerank",
]

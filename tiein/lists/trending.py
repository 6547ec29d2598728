"""品类热销榜 / trending items: orders in a window of days against the window just before it.

Pure parts, checkable by hand (tests/fixtures/trending/README.md works one shop out):

- :func:`window`: the two windows. ``at`` is the last day counted (default: the day of the last
  order in the data, never the wall clock: shops' data is historical); ``days`` = N counts the N
  days ending on ``at`` (both ends included) against the N days before them.
- :func:`trend_score`: ``(orders + PRIOR) / (previous + PRIOR)``, the growth shrunk towards 1 by
  ``PRIOR`` pseudo-orders in each window, so a product going 1 → 3 orders (8 / 6 = 1.33) ranks
  below one going 6 → 14 (19 / 11 = 1.73), and a product needs ``min_orders`` orders in the window
  and more than in the previous one to be listed at all.
- Orders, not units, decide: one bulk order of 50 mugs is one order (units are reported too).

:class:`Sales` holds the orders of one build (its ``inputs/orders.parquet``, tiein/state.py) as
daily counts per product; :func:`rank_trending` turns them into the ranked rows that
:func:`trending_answer` (the payload) and :func:`fallback_rows` (related's stand-in when a product
has no complements) read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError, InputError, ServiceUnavailable
from tiein.graph.base import PRODUCT_FIELDS

DEFAULT_DAYS = 30
MAX_DAYS = 3660
PRIOR = 5.0  # pseudo-orders added to both windows (the shrinkage of the growth)
DEFAULT_MIN_ORDERS = 3
FALLBACK = "trending"  # the flag on a related answer filled with trending items
Keep = Callable[[Mapping[str, Any]], bool]  # which rows a list may show (filters, rules)

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Window:
    """The counted days ``start``..``end`` and the previous ones ``previous_start``..
    ``previous_end`` (all included)."""

    days: int
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "at": self.end.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "previous_start": self.previous_start.isoformat(),
            "previous_end": self.previous_end.isoformat(),
        }


def parse_day(value: dt.date | str | None, name: str = "at") -> dt.date | None:
    """``value`` as a date (``YYYY-MM-DD``, or a date); ConfigError naming ``name`` otherwise.

    >>> parse_day("2024-06-30")
    datetime.date(2024, 6, 30)
    """
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


def check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
    return days


def check_min_orders(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"min_orders must be a whole number of 1 or more, got {n!r}")
    return n


def window(at: dt.date, days: int) -> Window:
    """The ``days`` days ending on ``at`` and the ``days`` days before them.

    >>> w = window(dt.date(2024, 6, 30), 7)
    >>> (str(w.start), str(w.end), str(w.previous_start), str(w.previous_end))
    ('2024-06-24', '2024-06-30', '2024-06-17', '2024-06-23')
    """
    check_days(days)
    try:
        start = at - dt.timedelta(days=days - 1)
        return Window(days, start, at, start - dt.timedelta(days=days), start - dt.timedelta(days=1))
    except OverflowError:
        raise ConfigError(f"at {at} less 2 × {days} days is before the year 1") from None


def trend_score(orders: float, previous: float, prior: float = PRIOR) -> float:
    """The growth from ``previous`` to ``orders``, shrunk towards 1 by ``prior`` pseudo-orders.

    >>> round(trend_score(3, 1), 3), round(trend_score(14, 6), 3), trend_score(4, 0)
    (1.333, 1.727, 1.8)
    """
    return (orders + prior) / (previous + prior)


@dataclass
class Sales:
    """Daily orders and units per product: ``ids[code[i]]`` sold ``orders[i]`` orders
    (``units[i]`` units) on day ``day[i]`` (days since 1970-01-01). ``undated``: order lines
    without a date (not counted)."""

    ids: list[str]
    code: np.ndarray
    day: np.ndarray
    orders: np.ndarray
    units: np.ndarray
    undated: int = 0

    @classmethod
    def from_orders(cls, orders: pa.Table) -> Sales:
        """From order lines (tiein.model.ORDERS: order_id, product_id, quantity, ts); a line
        without a quantity counts as one unit."""
        import pyarrow.compute as pc

        ts = orders.column("ts")
        undated = ts.null_count
        t = orders.filter(pc.is_valid(ts)) if undated else orders
        if t.num_rows == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls([], empty, empty, empty, np.zeros(0), undated)
        day = pc.cast(pc.cast(t.column("ts"), pa.date32()), pa.int32())
        qty = pc.fill_null(t.column("quantity").cast(pa.float64()), 1.0)
        daily = (
            pa.table(
                {"product_id": t.column("product_id"), "day": day, "order_id": t.column("order_id"), "q": qty}
            )
            .group_by(["product_id", "day"])
            .aggregate([("order_id", "count_distinct"), ("q", "sum")])
        )
        ids = sorted(set(daily.column("product_id").to_pylist()))
        index = {p: i for i, p in enumerate(ids)}
        code = np.array([index[p] for p in daily.column("product_id").to_pylist()], dtype=np.int64)
        return cls(
            ids,
            code,
            daily.column("day").to_numpy().astype(np.int64),
            daily.column("order_id_count_distinct").to_numpy().astype(np.int64),
            daily.column("q_sum").to_numpy().astype(np.float64),
            undated,
        )

    @classmethod
    def load(cls, inputs: Path) -> Sales:
        """The orders a build kept (``inputs/orders.parquet`` of the answering generation);
        ServiceUnavailable when there is none."""
        import pyarrow.parquet as pq

        path = Path(inputs) / "orders.parquet"
        if not path.is_file():
            raise ServiceUnavailable(
                "trending needs the orders of a build: none in this home (run `tiein build` with orders)"
            )
        try:
            table = pq.read_table(path, columns=["order_id", "product_id", "quantity", "ts"])
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(
                f"cannot read the build's orders ({exc}); run `tiein build` again", file=str(path)
            ) from exc
        return cls.from_orders(table)

    @property
    def last_day(self) -> dt.date | None:
        """The day of the last dated order (None without any)."""
        return _EPOCH + dt.timedelta(days=int(self.day.max())) if len(self.day) else None

    def counts(self, start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """(orders, units) per product code over the days ``start``..``end`` (included)."""
        lo, hi = (start - _EPOCH).days, (end - _EPOCH).days
        mask = (self.day >= lo) & (self.day <= hi)
        n = len(self.ids)
        orders = np.bincount(self.code[mask], weights=self.orders[mask], minlength=n)
        units = np.bincount(self.code[mask], weights=self.units[mask], minlength=n)
        return orders.astype(np.int64), units


def explain_trend(orders: int, previous: int, days: int) -> dict[str, str]:
    """One item's trend as a sayable sentence.

    >>> explain_trend(8, 2, 7)["zh"], explain_trend(4, 0, 7)["en"]
    ('近 7 天 8 单，之前 7 天 2 单', '4 orders in the last 7 days, none in the 7 days before')
    """
    en_now = f"{orders} order{'s' if orders != 1 else ''} in the last {days} day{'s' if days != 1 else ''}"
    if previous:
        return {
            "zh": f"近 {days} 天 {orders} 单，之前 {days} 天 {previous} 单",
            "en": f"{en_now}, up from {previous} in the {days} days before",
        }
    return {
        "zh": f"近 {days} 天 {orders} 单，之前 {days} 天没有卖出",
        "en": f"{en_now}, none in the {days} days before",
    }


def rank_trending(
    sales: Sales,
    products: Mapping[str, Mapping[str, Any]],
    win: Window,
    *,
    min_orders: int = DEFAULT_MIN_ORDERS,
    prior: float = PRIOR,
) -> list[dict[str, Any]]:
    """Every product of ``products`` that sold at least ``min_orders`` orders in ``win`` and more
    than in the window before, best first: trend score descending, then orders descending, then
    product_id. Rows: PRODUCT_FIELDS, ``orders``, ``units``, ``previous_orders``,
    ``previous_units``, ``growth`` (orders / previous − 1; None when previous is 0), ``score``."""
    now_o, now_u = sales.counts(win.start, win.end)
    prev_o, prev_u = sales.counts(win.previous_start, win.previous_end)
    rows: list[dict[str, Any]] = []
    for i, pid in enumerate(sales.ids):
        o, p = int(now_o[i]), int(prev_o[i])
        if o < min_orders or o <= p or pid not in products:
            continue
        rows.append(
            {
                **{f: products[pid].get(f) for f in PRODUCT_FIELDS},
                "orders": o,
                "units": float(now_u[i]),
                "previous_orders": p,
                "previous_units": float(prev_u[i]),
                "growth": round(o / p - 1, 6) if p else None,
                "score": round(trend_score(o, p, prior), 6),
            }
        )
    rows.sort(key=lambda r: (-r["score"], -r["orders"], r["product_id"]))
    return rows


def trending_answer(
    ranked: list[dict[str, Any]],
    win: Window | None,
    *,
    k: int,
    category: str | None,
    per_category: bool,
    min_orders: int,
    keep: Keep | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """The trending payload (tiein.service.types.TrendingPayload) from :func:`rank_trending`'s
    rows: those ``keep(row)`` allows (category / stock filters), the top ``k`` (per category with
    ``per_category``), each with ``rank``, ``window`` and its explanation."""
    rows = [r for r in ranked if keep is None or keep(r)]
    items = []
    if per_category:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r["category"] or "", []).append(r)
        chosen = [(i, r) for cat in sorted(groups) for i, r in enumerate(groups[cat][:k], 1)]
    else:
        chosen = list(enumerate(rows[:k], 1))
    days = win.days if win else 0
    for rank, r in chosen:
        e = explain_trend(r["orders"], r["previous_orders"], days)
        items.append(
            {"rank": rank, **r, "explanation": e, "explanation_zh": e["zh"], "explanation_en": e["en"]}
        )
    if not items and note is None and win is not None:
        note = (
            f"nothing trending{' in ' + repr(category) if category else ''}: no product had "
            f"{min_orders}+ orders between {win.start} and {win.end} and more than in the {days} days before"
        )
    return {
        "items": items,
        "window": win.to_dict() if win else None,
        "category": category,
        "per_category": per_category,
        "k": k,
        "min_orders": min_orders,
        "total": len(rows),
        "note": note,
    }


def fallback_rows(
    ranked: list[dict[str, Any]], product: Mapping[str, Any], kind: str, k: int, keep: Keep, days: int
) -> list[dict[str, Any]]:
    """Related rows standing in for an empty list: the trending items of ``product``'s category,
    else of each broader level of its category path, else of the shop (never the product
    itself), shaped like ``related`` rows (``kind``, ``score`` = the trend score, ``evidence``)
    with ``fallback: "trending"`` and an explanation that says so."""
    pid = product["product_id"]
    pool = [r for r in ranked if r["product_id"] != pid and keep(r)]
    path = [p.strip() for p in str(product.get("category_path") or product.get("category") or "").split(">")]
    levels = [
        lvl
        for lvl in (product.get("category"), *reversed([" > ".join(path[: i + 1]) for i in range(len(path))]))
        if lvl
    ]
    for level in dict.fromkeys(levels):
        same = [r for r in pool if _within(r, level)]
        if same:
            return [_fallback_row(r, kind, days, shop=False) for r in same[:k]]
    return [_fallback_row(r, kind, days, shop=True) for r in pool[:k]]


def _within(row: Mapping[str, Any], level: str) -> bool:
    """Whether ``row``'s category is ``level`` or lies under it."""
    want = level.casefold()
    for name in (row.get("category_path"), row.get("category")):
        text = str(name or "").casefold()
        if text == want or text.startswith(want + " >"):
            return True
    return False


def _fallback_row(row: Mapping[str, Any], kind: str, days: int, *, shop: bool) -> dict[str, Any]:
    trend = explain_trend(row["orders"], row["previous_orders"], days)
    zh_head, en_head = (
        ("全店热销", "trending in the shop") if shop else ("同类热销", "trending in this category")
    )
    zh, en = f"{zh_head}：{trend['zh']}", f"{en_head}: {trend['en']}"
    evidence = {
        "trending": {
            k: row[k] for k in ("orders", "units", "previous_orders", "previous_units", "growth", "score")
        },
        "scope": "shop" if shop else "category",
    }
    return {
        **{f: row[f] for f in PRODUCT_FIELDS},
        "kind": kind,
        "score": row["score"],
        **dict.fromkeys(
            ("n_ab", "lift", "confidence", "co_view", "similarity", "category_relation", "price_ratio")
        ),
        "evidence": evidence,
        "fallback": FALLBACK,
        "explanation_zh": zh,
        "explanation_en": en,
        "explanation": {"zh": zh, "en": en},
    }

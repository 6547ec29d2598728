"""``lineup_payload``: a livestream lineup (直播排品) or a 组货 pick, as the JSON-ready dict the
CLI, the API and the export share."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

from tiein.errors import ConfigError
from tiein.lineup import talk
from tiein.lineup.assort import greedy, picks_payload
from tiein.lineup.plan import Entry, Relations, layout, units
from tiein.lineup.pool import LineupOptions, Pool, order_counts, resolve_pool
from tiein.lineup.types import LineupPayload, LineupSlot
from tiein.rules import RuleSet
from tiein.service.bundle import bundle_payload

if TYPE_CHECKING:
    from tiein.graph.base import GraphReader

OPTION_NAMES = tuple(f.name for f in fields(LineupOptions))


def lineup_options(options: LineupOptions | None = None, **overrides: Any) -> LineupOptions:
    """``options`` (default :class:`LineupOptions`) with ``overrides`` (None leaves a field as it
    is); ConfigError for an unknown name or a bad value."""
    from dataclasses import replace

    unknown = sorted(set(overrides) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(f"unknown lineup option(s): {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}")
    base = options or LineupOptions()
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given) if given else base


def lineup_payload(
    store: GraphReader,
    *,
    ids: list[str] | None = None,
    category: str | None = None,
    top: int | None = None,
    options: LineupOptions | None = None,
    curation: RuleSet | None = None,
    **overrides: Any,
) -> LineupPayload:
    """The lineup of a pool (exactly one of ``ids``, ``category``, ``top``) under ``options``
    (overridden by keyword, e.g. ``length_min=60``); see :mod:`tiein.lineup`. Merchant rules
    (``curation``, default the store's in force now) keep blocked pairs apart. NotFound for
    unknown ids (all named) or an empty category; ConfigError for a bad option or an empty pool."""
    opts = lineup_options(options, **overrides)
    pool = resolve_pool(store, ids=ids, category=category, top=top)
    rules = RuleSet.load(store) if curation is None else curation  # type: ignore[arg-type]
    rel = Relations(store, rules)
    left_out: list[dict[str, Any]] = []

    def in_stock(product: dict[str, Any]) -> bool:
        stock = product.get("stock")
        return stock is None or stock >= opts.min_stock

    ready = []
    for pid in pool.order:
        product = pool.products[pid]
        if in_stock(product):
            ready.append(pid)
        elif (product.get("stock") or 0) <= 0:
            left_out.append({"product": product, "reason": talk.reason("out_of_stock")})
        else:
            left_out.append(
                {
                    "product": product,
                    "reason": talk.reason("low_stock", stock=product["stock"], min=opts.min_stock),
                }
            )
    picks = None
    if opts.mode == "assort":
        chosen = greedy(ready, pool.orders, rel, opts.picks, opts.substitute_penalty)
        picks = picks_payload(chosen, pool.products, pool.orders, talk.names)
        keep = {c[0] for c in chosen}
        ready = [p for p in ready if p in keep]
    todo, added = units(pool, ready, opts, rel, in_stock)
    products = {**pool.products, **added}
    orders = dict(pool.orders)
    if added:
        orders.update(order_counts(store, sorted(added)))
    traffic = [p for p in ready if products[p].get("sales_role") == "traffic"]
    placed, no_slot = layout(todo, opts, rel, traffic or ready[:1])
    slots = [_slot(i, e, placed, products, orders, opts, rel) for i, e in enumerate(placed)]
    closing_reason = None
    if opts.closing_bundle and placed:
        if opts.slots < 2:
            closing_reason = talk.reason("no_closing_slot")
        else:
            closing, closing_reason = _closing(store, placed, opts, rules)
            if closing is not None:
                slots.append(_closing_slot(len(slots), closing, opts))
    for e in no_slot:
        left_out.append({"product": products[e.pid], "reason": talk.reason("no_slot")})
    used = len(slots)
    return cast(
        LineupPayload,
        {
            "mode": opts.mode,
            "pool": pool.describe(),
            "options": opts.to_dict(),
            "length_min": opts.length_min,
            "slot_min": opts.slot_min,
            "slots_available": opts.slots,
            "slots_used": used,
            "spare_min": opts.length_min - used * opts.slot_min,
            "slots": slots,
            "picks": picks,
            "left_out": left_out,
            "warnings": sum(c["level"] == "warning" for s in slots for c in s["checks"]),
            "reason": None if ready else talk.reason("nothing_in_stock"),
            "closing_reason": closing_reason,
            "rules_version": rules.version,
        },
    )


def _slot(
    i: int,
    e: Entry,
    placed: list[Entry],
    products: dict[str, dict[str, Any]],
    orders: dict[str, int],
    opts: LineupOptions,
    rel: Relations,
) -> LineupSlot:
    product = products[e.pid]
    hero = products.get(e.hero) if e.hero else None
    checks: list[dict[str, str]] = []
    if i > 0:
        before = products[placed[i - 1].pid]
        prev, price = before.get("price"), product.get("price")
        if prev and price and prev > 0 and price / prev >= opts.max_price_jump:
            checks.append(talk.price_jump(float(prev), float(price)))
        if e.role != "compare" and rel.subs(placed[i - 1].pid, e.pid):
            checks.append(talk.check("substitutes_adjacent"))
        if rel.rules.together_blocked(placed[i - 1].pid, e.pid):
            checks.append(talk.check("blocked_adjacent"))
    if e.role == "compare" and hero is not None:
        checks.append(talk.check("comparison", hero=talk.names(hero)[0] + f" ({e.hero})"))
    if e.outside:
        checks.append(talk.check("outside_pool", hero=e.hero))
    stock = product.get("stock")
    if stock is None:
        checks.append(talk.check("stock_unknown"))
    elif 0 < stock <= opts.low_stock:
        checks.append(talk.check("low_stock", stock=stock))
    why = talk.bilingual(talk.WHY, e.role, hero=e.hero, every=opts.welfare_every_min)
    start = i * opts.slot_min
    return {
        "position": i + 1,
        "start_min": start,
        "end_min": start + opts.slot_min,
        "duration_min": opts.slot_min,
        "role": e.role,
        "role_name": talk.role_name(e.role),
        "products": [product],
        "orders": int(orders.get(e.pid, 0)),
        "relation": cast(Any, e.relation),
        "why": why,
        "talking_points": talk.talking_points(
            e.role,
            product,
            int(orders.get(e.pid, 0)),
            low_stock=opts.low_stock,
            hero=hero,
            evidence=(e.relation or {}).get("evidence") if e.relation else None,
        ),
        "checks": cast(Any, checks),
        "bundle": None,
    }


def _closing(
    store: GraphReader, placed: list[Entry], opts: LineupOptions, rules: RuleSet
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """The closing bundle: that of the first scheduled hero that has one, else of the first other
    scheduled product that has one; else the first refusal's reason."""
    order = [e.pid for e in placed if e.role == "hero"] + [e.pid for e in placed if e.role != "hero"]
    first: dict[str, Any] | None = None
    for pid in dict.fromkeys(order):
        b = bundle_payload(store, pid, size=opts.bundle_size, curation=rules)  # type: ignore[arg-type]
        if b["reason"] is None and b["items"]:
            return dict(b), None
        first = first or dict(b["reason"] or {})
    why = first or {"zh": "没有搭配商品", "en": "no add-ons"}
    out = talk.reason("no_bundle", why=why.get("en"))
    out["zh"] = talk.REASONS["no_bundle"][0].format(why=why.get("zh"))
    return None, out


def _closing_slot(i: int, bundle: dict[str, Any], opts: LineupOptions) -> LineupSlot:
    start = i * opts.slot_min
    return {
        "position": i + 1,
        "start_min": start,
        "end_min": start + opts.slot_min,
        "duration_min": opts.slot_min,
        "role": "closing",
        "role_name": talk.role_name("closing"),
        "products": [bundle["anchor"], *(item["product"] for item in bundle["items"])],
        "orders": 0,
        "relation": None,
        "why": talk.bilingual(talk.WHY, "closing"),
        "talking_points": talk.bundle_points(bundle),
        "checks": [],
        "bundle": bundle,
    }


__all__ = ["OPTION_NAMES", "Pool", "lineup_options", "lineup_payload"]

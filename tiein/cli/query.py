"""Commands that read the graph: related, stats, scenes, bundle, addons. Each prints a payload of
:mod:`tiein.service` (``--json``: as it is, the API's JSON) and assembles none itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import click

from tiein.cli.base import (
    F,
    _fmt_price,
    _fmt_role,
    _home,
    _open_store,
    cli,
    json_option,
    where_options,
)
from tiein.model import MAX_K, RELATION_KINDS

if TYPE_CHECKING:
    from tiein.service import BundlePayload

_KIND_PLURAL = {"series": "same-series products", "next": "next purchases"}


def at_option(fn: F) -> F:
    """``--at DATE`` and ``--segment NAME``: rank for a date and a customer segment (the API's
    ``at`` / ``segment``); the command gets ``context`` (:class:`tiein.model.QueryContext`, None
    without either)."""
    import functools

    @functools.wraps(fn)
    def inner(**kw: Any) -> Any:
        from tiein.model import QueryContext
        from tiein.season import parse_at
        from tiein.segments import check_segment

        day, segment = parse_at(kw.pop("at")), check_segment(kw.pop("segment"))
        kw["context"] = None if day is None and segment is None else QueryContext(at=day, segment=segment)
        return fn(**kw)

    with_at = click.option(
        "--at",
        metavar="YYYY-MM-DD|today",
        help="Rank for this date: pairs bought together mostly in its season rank up, out-of-season "
        "ones down (by month; docs/relations.md, Seasons) [default: the year-round order].",
    )(inner)
    return cast(
        F,
        click.option(
            "--segment",
            metavar="NAME",
            help="Rank for this customer segment (a value of the orders' segment column, "
            "`build --map segment=COLUMN`); an unknown one answers for all customers and says so.",
        )(with_at),
    )


def filter_options(*, offset: bool = True) -> Callable[[F], F]:
    """The list filters (the API's query parameters) as options; the command gets them as one
    ``filters`` argument (:class:`tiein.rules.Filters`)."""

    def wrap(fn: F) -> F:
        import functools

        @functools.wraps(fn)
        def inner(**kw: Any) -> Any:
            from tiein.rules import Filters

            kw["filters"] = Filters.make(
                in_stock=kw.pop("in_stock"),
                exclude=kw.pop("exclude"),
                category=kw.pop("category"),
                brand=kw.pop("brand"),
                min_price=kw.pop("min_price"),
                max_price=kw.pop("max_price"),
                min_score=kw.pop("min_score"),
                offset=kw.pop("offset", 0),
            )
            return fn(**kw)

        opts = [
            click.option(
                "--in-stock", is_flag=True, help="Only products in stock (unknown stock counts as in stock)."
            ),
            click.option(
                "--exclude",
                multiple=True,
                metavar="IDS",
                help="Leave these product ids out (repeat, or join with ',').",
            ),
            click.option("--category", help="Only this category (any level of the path)."),
            click.option("--brand", help="Only this brand."),
            click.option("--min-price", type=float, help="Lowest price."),
            click.option("--max-price", type=float, help="Highest price."),
            click.option("--min-score", type=float, help="Lowest score; merchant pins stay."),
        ]
        if offset:
            opts.append(
                click.option(
                    "--offset", default=0, type=click.IntRange(0, 10_000), help="Rows to skip (paging)."
                )
            )
        for opt in reversed(opts):
            inner = opt(inner)
        return cast(F, inner)

    return wrap


@cli.command()
@click.argument("product")
@click.option(
    "--kind",
    type=click.Choice(RELATION_KINDS),
    default="complement",
    show_default=True,
    help="Relation kind: complement (add-on), substitute, upsell, series (same line), next (bought next: customers buy it after PRODUCT).",
)
@click.option(
    "-k", "k", default=10, show_default=True, type=click.IntRange(1, MAX_K), help="How many related products."
)
@json_option("JSON output (stable schema, with evidence).")
@click.option(
    "--feedback",
    is_flag=True,
    help="Re-rank by the home's feedback log (`tiein feedback ingest`), as the API's feedback=true does.",
)
@filter_options()
@at_option
@where_options
def related(
    product: str,
    kind: str,
    k: int,
    as_json: bool,
    feedback: bool,
    home: str | None,
    store: str | None,
    filters: Any,
    context: Any = None,
) -> None:
    """Products related to PRODUCT (its id) by KIND, best first, with the evidence behind each
    and a plain explanation (中文 + English) a seller can say out loud. Merchant rules apply
    (`tiein rules`: pins first, blocked items never)."""
    from tiein.lists import Lists
    from tiein.service import related_payload

    stats = None
    if feedback:
        from tiein.feedback import load_stats

        stats = load_stats(_home(home))
    st = _open_store(home, store)
    try:
        payload = related_payload(
            st,
            product,
            kind,
            k,
            feedback=stats,
            filters=filters,
            context=context,
            trending=Lists(_home(home)),
        )
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    anchor, rows = payload["product"], payload["related"]
    when = f" at {payload['at']}" if payload.get("at") else ""
    click.echo(
        f"{anchor['product_id']}  {anchor['title']}  (price {_fmt_price(anchor['price'])}{_fmt_role(anchor)}) — {_KIND_PLURAL.get(kind, kind + 's')}{when}"
    )
    if payload.get("fallback"):
        click.echo(f"  no {_KIND_PLURAL.get(kind, kind + 's')} yet: trending items instead (同类热销)")
    if not rows:
        click.echo(f"  no {_KIND_PLURAL.get(kind, kind + 's')} found for this product")
    for r in rows:
        mark = "  [pinned]" if r.get("pinned") else ""
        click.echo(
            f"  {r['score']:.3f}  {r['product_id']:<12} {r['title'] or '':<45}  {_fmt_price(r['price']):>9}{_fmt_role(r)}{mark}"
        )
        if "feedback" in r:
            f = r["feedback"]
            click.echo(
                f"         feedback: shown {f['impressions']:,}, {f['metric']} {f['successes']:,}; item elsewhere "
                f"{f['item_successes']:,}/{f['item_impressions']:,} (×{f['item_factor']:.2f}); "
                f"rate {f['rate'] * 100:.1f}%"
            )
        click.echo(f"         {r['explanation_en']}")
        click.echo(f"         {r['explanation_zh']}")


@cli.command()
@where_options
@json_option()
def stats(home: str | None, store: str | None, as_json: bool) -> None:
    """Counts of nodes and relationships in the graph, and how it was built."""
    from tiein.home import recover_if_idle
    from tiein.options import default_store_url
    from tiein.service import stats_payload

    st = _open_store(home, store)
    try:
        for line in recover_if_idle(_home(home), st, store or default_store_url(_home(home))):
            click.echo(f"recovered: {line}", err=True)
        s = stats_payload(st, _home(home))
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(s, ensure_ascii=False, indent=2, default=str))
        return
    if not s["nodes"].get("Product"):
        click.echo("the graph is empty: build it first, e.g. `tiein build --dataset online_retail`")
        return
    click.echo("nodes:")
    for label, n in sorted(s["nodes"].items()):
        click.echo(f"  {label:<14} {n:>10,}")
    click.echo("relationships:")
    for t, n in sorted(s["relationships"].items()):
        click.echo(f"  {t:<14} {n:>10,}")
    rules = s.get("rules")
    if rules:
        click.echo(
            f"merchant rules: {rules['count']:,} ({rules['active']:,} in force, version {rules['version']}; `tiein rules list`)"
        )
    meta = s.get("meta") or {}
    if meta:
        click.echo(f"built from {meta.get('source')} at {meta.get('built_at')} (model: {meta.get('model')})")


@cli.command("bundle")
@click.argument("product")
@click.option(
    "--scene", help="Scene id or name whose role order to follow [default: the scene PRODUCT belongs to]."
)
@click.option(
    "--size",
    type=click.IntRange(2, 6),
    help="Items in the bundle, PRODUCT included [default: size in HOME/shop.toml, else 3].",
)
@click.option("--budget", type=float, help="The most the bundle may cost at full price.")
@click.option(
    "--mix", help="Sales roles of the add-ons in order, e.g. hero+profit (traffic, hero, profit, regular)."
)
@click.option(
    "--discount", type=float, help="Bundle discount for the suggested price, 0.1 = 10 % off [default: 0.1]."
)
@click.option(
    "--min-price-ratio",
    type=float,
    help="Price band: an add-on's lowest price as a share of PRODUCT's [default: 0.3].",
)
@click.option(
    "--max-price-ratio",
    type=float,
    help="Price band: an add-on's highest price as a share of PRODUCT's [default: 0.8].",
)
@click.option(
    "--charm-digit",
    type=click.IntRange(-1, 9),
    help="Rounding: the last digit of the bundle price (8: 398; -1: whole tens) [default: 8].",
)
@click.option(
    "--rounding-slack",
    type=float,
    help="Rounding: how far below the discounted price it may go, as a share of the total [default: 0.03].",
)
@filter_options(offset=False)
@at_option
@json_option("JSON output (the API's schema).")
@where_options
def bundle_cmd(
    product: str,
    scene: str | None,
    size: int | None,
    budget: float | None,
    mix: str | None,
    discount: float | None,
    min_price_ratio: float | None,
    max_price_ratio: float | None,
    charm_digit: int | None,
    rounding_slack: float | None,
    filters: Any,
    as_json: bool,
    home: str | None,
    store: str | None,
    context: Any = None,
) -> None:
    """A bundle for PRODUCT: add-ons in scene-role order under the merchant's rules (30-80 % of
    its price, in stock, no substitutes, one per category), a sayable bundle price and the pitch.
    When no bundle is possible it says why (not an error). Defaults of the rules come from
    HOME/shop.toml where it has a [bundle] table (docs/bundles.md)."""
    from tiein.service import bundle_payload, shop_bundle_rules

    rules = shop_bundle_rules(_home(home))
    st = _open_store(home, store)
    try:
        payload = bundle_payload(
            st,
            product,
            rules=rules,
            scene=scene,
            size=size,
            budget=budget,
            mix=mix,
            discount=discount,
            filters=filters,
            min_price_ratio=min_price_ratio,
            max_price_ratio=max_price_ratio,
            charm_digit=charm_digit,
            rounding_slack=rounding_slack,
            context=context,
        )
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print_bundle(payload)


def _print_bundle(b: BundlePayload) -> None:
    from tiein.bundles.reasons import skipped_lines

    a = b["anchor"]
    click.echo(f"{a['product_id']}  {a['title']}  (price {_fmt_price(a['price'])}{_fmt_role(a)})")
    scene, mix = b.get("scene"), b.get("mix")
    if scene:
        note = (
            " — no role of it could be filled, so: best complements by score"
            if b.get("scene_fallback")
            else ""
        )
        click.echo(f"scene: {scene['name']} ({scene['scene_id']}){note}")
    if mix:
        click.echo(f"mix: {' + '.join(mix)}")
    for n, item in enumerate(b["items"], 1):
        p = item["product"]
        role = f"[{item['role']}]" if item.get("role") else ""
        click.echo(
            f"  {n}. {role} {p['product_id']}  {p['title']}  {_fmt_price(p['price'])}{_fmt_role(p)}  — {item['relation']}"
        )
        click.echo(f"       {item['explanation']['en']}")
        click.echo(f"       {item['explanation']['zh']}")
    if b.get("skipped_roles"):
        click.echo(f"  roles no item could fill: {', '.join(b['skipped_roles'])}")
    if b["reason"]:
        click.echo(f"no bundle: {b['reason']['en']}")
        click.echo(f"无法组合套装：{b['reason']['zh']}")
        for line in skipped_lines(b.get("skipped") or {}):
            click.echo(f"  {line}")
        return
    if not b.get("priced", True):
        click.echo("not every item has a price: no bundle price (prices at checkout)")
        click.echo(f"pitch: {b['pitch']['zh']}")
        click.echo(f"       {b['pitch']['en']}")
        return
    click.echo(
        f"total {_fmt_price(b['total'])} → bundle price {_fmt_price(b['suggested_price'])} "
        f"({round(b['discount'] * 100)}% off, rounded to a sayable price; save {_fmt_price(b['saving'])})"
    )
    click.echo(f"pitch: {b['pitch']['zh']}")
    click.echo(f"       {b['pitch']['en']}")


@cli.command("addons")
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "--threshold",
    type=float,
    help="Free-shipping threshold: also suggest the cheapest items that lift the cart over it.",
)
@click.option(
    "-k",
    "k",
    default=5,
    show_default=True,
    type=click.IntRange(1, MAX_K),
    help="How many add-ons (and top-ups).",
)
@filter_options()
@at_option
@json_option("JSON output (the API's schema).")
@where_options
def addons_cmd(
    ids: tuple[str, ...],
    threshold: float | None,
    k: int,
    filters: Any,
    as_json: bool,
    home: str | None,
    store: str | None,
    context: Any = None,
) -> None:
    """Add-ons for a cart of IDS as a whole: complements of the cart, never substitutes of what is
    in it; with --threshold, the items that reach it with the least overspend."""
    from tiein.service import addons_payload, shop_bundle_rules

    rules = shop_bundle_rules(_home(home))
    st = _open_store(home, store)
    try:
        payload = addons_payload(
            st, list(ids), threshold=threshold, k=k, filters=filters, rules=rules, context=context
        )
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    cart = ", ".join(f"{p['product_id']} ({_fmt_price(p['price'])})" for p in payload["cart"])
    click.echo(f"cart: {cart} — total {_fmt_price(payload['total'])}")
    if payload.get("unknown_ids"):
        click.echo(f"not in the graph (left out): {', '.join(payload['unknown_ids'])}")

    def show(items: list[dict[str, Any]], top_up: bool) -> None:
        for n, item in enumerate(items, 1):
            p = item["product"]
            extra = (
                f"  → {_fmt_price(item['new_total'])} (over by {_fmt_price(item['overspend'])})"
                if top_up
                else ""
            )
            click.echo(
                f"  {n}. {p['product_id']}  {p['title']}  {_fmt_price(p['price'])}{_fmt_role(p)}  — {item['relation']}{extra}"
            )
            click.echo(f"       {item['explanation']['en']}")
            click.echo(f"       {item['explanation']['zh']}")

    if payload["reason"]:
        click.echo(f"no add-ons: {payload['reason']['en']}")
        click.echo(f"没有搭配推荐：{payload['reason']['zh']}")
    else:
        click.echo("add-ons:")
        show(payload["items"], False)
    if payload["threshold"] is not None:
        click.echo(f"free shipping at {_fmt_price(payload['threshold'])}: gap {_fmt_price(payload['gap'])}")
        if payload["top_ups"]:
            show(payload["top_ups"], True)
        elif payload["top_up_reason"]:
            click.echo(f"  no top-up: {payload['top_up_reason']['en']}")
            click.echo(f"  无法凑单：{payload['top_up_reason']['zh']}")

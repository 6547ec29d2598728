"""The merchant lists: ``tiein pairings`` (搭配榜) and ``tiein trending`` (品类热销榜), the API's
``GET /v1/pairings`` / ``GET /v1/trending`` answers (:mod:`tiein.lists`); and
:func:`export_list`, what ``tiein export pairings|trending`` runs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tiein.cli.base import F, _fmt_price, _home, _open_store, cli, json_option, where_options
from tiein.cli.display import print_table
from tiein.model import MAX_K
from tiein.rules import Filters

DAYS_HELP = "The window: this many days up to --at, against as many days before."
AT_HELP = "The window's last day, YYYY-MM-DD [default: the day of the last order in the data]."


def _k_option() -> Callable[[F], F]:
    return click.option(
        "-k",
        "k",
        default=10,
        show_default=True,
        type=click.IntRange(1, MAX_K),
        help="How many (per category with --per-category).",
    )


def _min_orders_option(what: str) -> Callable[[F], F]:
    return click.option("--min-orders", default=3, show_default=True, type=click.IntRange(1), help=what)


def _lists_payload(what: str, home: str | None, store: str | None, **query: Any) -> Any:
    """``Lists(home).<what>(store, **query)`` (pairings or trending), the store closed after."""
    from tiein.lists import Lists

    st = _open_store(home, store)
    try:
        return getattr(Lists(_home(home)), what)(st, **query)
    finally:
        st.close()


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@cli.command()
@click.option("--category", help="Only pairs whose anchor is in this category (any level of the path).")
@click.option("--with-category", help="Only pairs whose item is in this category.")
@_k_option()
@_min_orders_option("Orders that held both products, at least.")
@click.option("--per-category", is_flag=True, help="The top k of every anchor category.")
@click.option("--in-stock", is_flag=True, help="Only pairs whose two products are in stock.")
@json_option("JSON output (the API's /v1/pairings answer).")
@where_options
def pairings(
    category: str | None,
    with_category: str | None,
    k: int,
    min_orders: int,
    per_category: bool,
    in_stock: bool,
    as_json: bool,
    home: str | None,
    store: str | None,
) -> None:
    """Best pairings (搭配榜): the shop's strongest complement pairs, each pair once.

    Ranked by the relation score among pairs bought together in at least --min-orders orders;
    the same list as the API's GET /v1/pairings.

    \b
    tiein pairings -k 20
    tiein pairings --category 帐篷 --with-category 灯具     # tents with lamps
    tiein pairings --per-category -k 3 --json
    """
    payload = _lists_payload(
        "pairings",
        home,
        store,
        category=category,
        with_category=with_category,
        k=k,
        min_orders=min_orders,
        per_category=per_category,
        in_stock=in_stock,
    )
    if as_json:
        _echo_json(payload)
        return
    rows = payload["items"]
    if not rows:
        click.echo(payload["note"] or "no pairings")
        return
    print_table(
        [
            [
                r["rank"],
                r["anchor"]["product_id"],
                r["anchor"]["title"] or "",
                r["item"]["product_id"],
                r["item"]["title"] or "",
                r["n_ab"],
                f"{r['score']:.3f}",
                r["explanation"]["zh"],
            ]
            for r in rows
        ],
        header=["#", "anchor", "title", "item", "title", "orders", "score", "why"],
        align="><<<<>><",
        max_width=[None, 14, 30, 14, 30, None, None, 60],
    )
    click.echo(f"({len(rows)} of {payload['total']:,} pairs bought together in {min_orders}+ orders)")


@cli.command()
@click.option("--category", help="Only this category (any level of the path).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660), help=DAYS_HELP)
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%d"]), help=AT_HELP)
@_k_option()
@_min_orders_option("Orders in the window a product needs, at least.")
@click.option("--per-category", is_flag=True, help="The top k of every category.")
@click.option("--in-stock", is_flag=True, help="Only products in stock.")
@json_option("JSON output (the API's /v1/trending answer).")
@where_options
def trending(
    category: str | None,
    days: int,
    at: dt.datetime | None,
    k: int,
    min_orders: int,
    per_category: bool,
    in_stock: bool,
    as_json: bool,
    home: str | None,
    store: str | None,
) -> None:
    """Trending items (品类热销榜): more orders in the last --days days than in the days before.

    The window ends on --at (default: the day of the last order). Ranked by the growth shrunk
    towards 1, (orders + 5) / (previous + 5), so a product going from 1 to 3 orders does not top
    the list. Needs the orders of a build; the same list as the API's GET /v1/trending.

    \b
    tiein trending --days 7
    tiein trending --category 咖啡 --days 30 --at 2024-06-30
    tiein trending --per-category -k 3 --json
    """
    payload = _lists_payload(
        "trending",
        home,
        store,
        category=category,
        days=days,
        at=at.date() if at else None,
        k=k,
        min_orders=min_orders,
        per_category=per_category,
        in_stock=in_stock,
    )
    if as_json:
        _echo_json(payload)
        return
    win = payload["window"]
    if win:
        click.echo(
            f"{win['start']} – {win['end']} ({win['days']} days) against "
            f"{win['previous_start']} – {win['previous_end']}"
        )
    rows = payload["items"]
    if not rows:
        click.echo(payload["note"] or "nothing trending")
        return
    print_table(
        [
            [
                r["rank"],
                r["product_id"],
                r["title"] or "",
                r["category"] or "",
                _fmt_price(r["price"]),
                r["orders"],
                r["previous_orders"],
                f"{r['score']:.2f}",
                r["explanation"]["zh"],
            ]
            for r in rows
        ],
        header=["#", "product", "title", "category", "price", "orders", "before", "trend", "why"],
        align="><<<>>>><",
        max_width=[None, 14, 30, 24, None, None, None, None, 40],
    )


def export_list_cmd(
    what: str,
    out: Path,
    fmt: str,
    headers: str | None,
    bom: bool,
    raw_csv: bool,
    as_json: bool,
    k: int,
    days: int,
    at: dt.datetime | None,
    min_orders: int,
    per_category: bool,
    filters: Filters,
    home: str | None,
    store: str | None,
    **others: Any,
) -> None:
    """``tiein export pairings|trending``: the list's answer (the one `tiein pairings` /
    `tiein trending` and the API give) written by :func:`tiein.export.lists.write_list`.
    ``others``: the export options that are for bundles / related, refused when given."""
    from tiein.export.lists import write_list

    given = [
        f"--{name.rstrip('s') if name == 'kinds' else name}"
        for name, value in others.items()
        if value not in (None, (), "item")
    ]
    narrowing = {k: v for k, v in filters.to_dict().items() if k not in ("category", "in_stock")}
    if given or narrowing:
        bad = given + [f"--{name.replace('_', '-')}" for name in narrowing]
        raise click.UsageError(f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not for {what}")
    query: dict[str, Any] = {"days": days, "at": at.date() if at else None} if what == "trending" else {}
    payload = _lists_payload(
        what,
        home,
        store,
        category=filters.category,
        k=k,
        min_orders=min_orders,
        per_category=per_category,
        in_stock=filters.in_stock,
        **query,
    )
    summary = write_list(what, payload, out, fmt=fmt, headers=headers, bom=bom, formula_escape=not raw_csv)
    if as_json:
        _echo_json(summary)
        return
    click.echo(f"wrote {summary['path']}: {summary['rows']:,} rows ({what})")
    if not payload["items"] and payload["note"]:
        click.echo(payload["note"])

"""`tiein lineup`: a livestream lineup (直播排品) or a 组货 pick from a product pool
(:func:`tiein.lineup.lineup_payload`; the API's ``POST /v1/lineup``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tiein.cli.base import _fmt_price, _open_store, cli, json_option, where_options
from tiein.cli.display import print_table


@cli.command("lineup")
@click.argument("ids", nargs=-1)
@click.option("--category", help="Pool: the products of this category (any level of the path).")
@click.option("--top", type=click.IntRange(1, 200), help="Pool: the shop's N most-ordered products.")
@click.option(
    "--length",
    "length_min",
    default=120,
    show_default=True,
    type=click.IntRange(1, 1440),
    help="Broadcast length in minutes.",
)
@click.option(
    "--slot",
    "slot_min",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1440),
    help="Minutes per slot (every slot the same).",
)
@click.option(
    "--welfare-every",
    "welfare_every_min",
    type=click.IntRange(1, 1440),
    help="A 福利加推 slot (a traffic item again) every N minutes, at a product boundary.",
)
@click.option(
    "--openers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Traffic items (引流款) that open the show.",
)
@click.option(
    "--complements",
    default=1,
    show_default=True,
    type=click.IntRange(0, 5),
    help="Complements placed right after each hero.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Follow each hero with a substitute from the pool, as a deliberate comparison.",
)
@click.option(
    "--extend-pool",
    is_flag=True,
    help="Complements may come from outside the pool (flagged: have them ready).",
)
@click.option("--no-bundle", "no_bundle", is_flag=True, help="No closing bundle.")
@click.option(
    "--bundle-size",
    default=3,
    show_default=True,
    type=click.IntRange(2, 6),
    help="Closing bundle size, anchor included.",
)
@click.option(
    "--max-jump",
    "max_price_jump",
    default=5.0,
    show_default=True,
    type=float,
    help="Flag a slot costing at least this many times the one before.",
)
@click.option(
    "--min-stock",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Products with known stock below this are left out (1: stock 0 is).",
)
@click.option(
    "--mode",
    type=click.Choice(["lineup", "assort"]),
    default="lineup",
    show_default=True,
    help="assort (组货): pick --picks products first (most orders, fewest substitutes), then line them up.",
)
@click.option(
    "--picks",
    default=8,
    show_default=True,
    type=click.IntRange(1, 200),
    help="assort: how many products to pick.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the lineup to this file: .csv, .xlsx or .json.",
)
@click.option(
    "--headers",
    type=click.Choice(["en", "zh-en"]),
    help="File column names [default: zh-en for xlsx, en for csv].",
)
@json_option("JSON output (the API's schema).")
@where_options
def lineup_cmd(
    ids: tuple[str, ...],
    category: str | None,
    top: int | None,
    no_bundle: bool,
    out: Path | None,
    headers: str | None,
    as_json: bool,
    home: str | None,
    store: str | None,
    **options: Any,
) -> None:
    """A livestream lineup (直播排品) from a product pool: IDS, --category or --top N. Traffic items
    open, each hero is followed by its complements, then profit items and the rest by orders, a
    福利 slot every --welfare-every minutes and a closing bundle; each slot with talking points
    (中文 + English), price and stock checks. Out-of-stock products are left out and listed.

    \b
    tiein lineup --top 12 --length 60 --slot 5 --welfare-every 20
    tiein lineup shades sunscreen fan strap aftersun --length 30 --compare
    tiein lineup --category "Sun care" --out lineup.xlsx
    tiein lineup --top 40 --mode assort --picks 8 --json   # 组货: the 8 to take, then their lineup
    """
    from tiein.lineup import lineup_payload

    st = _open_store(home, store)
    try:
        payload = lineup_payload(
            st,
            ids=list(ids) if ids else None,
            category=category,
            top=top,
            closing_bundle=not no_bundle,
            **options,
        )
    finally:
        st.close()
    if out is not None:
        from tiein.export.lineup import write_lineup

        rows = write_lineup(payload, out, headers=headers)
        if not as_json:
            click.echo(f"wrote {out} ({rows} rows)", err=True)
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print(payload)


def _print(p: Any) -> None:
    pool = p["pool"]
    click.echo(
        f"pool: {pool['source']}{'' if pool['source'] == 'ids' else ' ' + str(pool['value'])} ({pool['size']} products"
        f"{', cut to the best ' + str(pool['limit']) if pool['truncated'] else ''}); "
        f"{p['length_min']} min in {p['slots_available']} slots of {p['slot_min']} min, {p['slots_used']} used"
    )
    if p["picks"]:
        click.echo("组货 picks:")
        for k in p["picks"]:
            click.echo(
                f"  {k['rank']}. {k['product']['product_id']}  gain {k['gain']:g} — {k['explanation']['en']}"
            )
    if p["reason"]:
        click.echo(f"no lineup: {p['reason']['en']} / {p['reason']['zh']}")
    rows = []
    for s in p["slots"]:
        ids = " + ".join(x["product_id"] for x in s["products"])
        price = (
            s["products"][0].get("price")
            if len(s["products"]) == 1
            else (s["bundle"] or {}).get("suggested_price")
        )
        flags = ",".join(c["code"] for c in s["checks"])
        rows.append(
            [
                s["position"],
                f"{s['start_min']}'",
                s["role_name"]["zh"],
                s["role"],
                ids,
                _fmt_price(price),
                flags,
            ]
        )
    print_table(
        rows,
        header=["#", "start", "环节", "role", "products", "price", "checks"],
        align=">><<<><",
        max_width=40,
    )
    for s in p["slots"]:
        click.echo(f"  {s['position']}. " + "；".join(s["talking_points"]["zh"]))
        click.echo("     " + "; ".join(s["talking_points"]["en"]))
        for c in s["checks"]:
            click.echo(f"     [{c['level']}] {c['en']}")
    if p["closing_reason"]:
        click.echo(f"no closing bundle: {p['closing_reason']['en']}")
    for item in p["left_out"]:
        click.echo(f"left out: {item['product']['product_id']} — {item['reason']['en']}")

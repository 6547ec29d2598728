"""Scene commands: ``tiein scenes list``, ``show`` and ``discover``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tiein.cli.base import (
    _fmt_price,
    _home,
    _open_store,
    cli,
    json_option,
    where_options,
)
from tiein.errors import TieinError

if TYPE_CHECKING:
    pass

_KIND_PLURAL = {"series": "same-series products", "next": "next purchases"}


@cli.group()
def scenes() -> None:
    """Shopping scenes (露营 / camping: tent → chair → lamp …): list, show, discover.

    \b
    tiein scenes list
    tiein scenes show camping               # by id or name (露营 works too)
    tiein scenes discover --out scenes.yaml # edit it, then: tiein build ... --scenes scenes.yaml
    """


@scenes.command("list")
@where_options
@json_option()
def scenes_list(home: str | None, store: str | None, as_json: bool) -> None:
    """The scenes in the graph with their roles in order."""
    from tiein.service import scenes_payload

    st = _open_store(home, store)
    try:
        payload = scenes_payload(st)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    rows = payload["scenes"]
    if not rows:
        click.echo("no scenes in the graph: build with --scenes FILE, or let the build discover them")
        return
    for r in rows:
        roles = " → ".join("-" if x is None else x for x in r["roles"])
        click.echo(f"{r['scene_id']:<16} {r['name']}  [{r['source']}, {r['members']:,} products]  {roles}")


@scenes.command("show")
@click.argument("name")
@click.option(
    "-k",
    "k",
    default=10,
    show_default=True,
    type=click.IntRange(1, 100000),
    help="Products shown per role (table output).",
)
@where_options
@json_option("JSON output (every member).")
def scenes_show(name: str, k: int, home: str | None, store: str | None, as_json: bool) -> None:
    """One scene (by id or name): its roles in order, each with its products."""
    from tiein.service import scene_payload

    st = _open_store(home, store)
    try:
        sc = scene_payload(st, name)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(sc, ensure_ascii=False, indent=2))
        return
    click.echo(f"{sc['name']}  ({sc['scene_id']}, {sc['source']}, {sc['members']:,} products)")
    for i, role in enumerate(sc["roles"], start=1):
        prods = role["products"]
        click.echo(f"  {i}. {role['role'] if role['role'] is not None else '-'}  ({len(prods):,} products)")
        for p in prods[:k]:
            click.echo(f"       {p['product_id']:<12} {p['title'] or '':<45} {_fmt_price(p['price']):>9}")
        if len(prods) > k:
            click.echo(f"       … {len(prods) - k:,} more (--json for all)")


@scenes.command("discover")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the editable YAML [default: HOME/scenes.discovered.yaml].",
)
@click.option(
    "--max-scenes",
    default=12,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="At most this many scenes.",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the community detection (same seed, same scenes)."
)
@where_options
@json_option("Also print the scenes as JSON.")
def scenes_discover(
    out: Path | None, max_scenes: int, seed: int, home: str | None, store: str | None, as_json: bool
) -> None:
    """Discover scenes from the graph's complements and write them as an editable YAML file."""
    import pyarrow as pa

    from tiein.model import PRODUCTS, RELATIONS
    from tiein.options import DISCOVERED_SCENES_FILE
    from tiein.scenes import (
        STORE_COMPLEMENTS_QUERY,
        STORE_PRODUCTS_QUERY,
        discover_scenes,
        dump_scenes,
        scenes_json,
    )

    st = _open_store(home, store)
    try:
        prows = st.query(STORE_PRODUCTS_QUERY)
        crows = st.query(STORE_COMPLEMENTS_QUERY)
    finally:
        st.close()
    if not prows:
        raise TieinError("the graph is empty: build it first, e.g. `tiein build --dataset instacart`")
    products = pa.Table.from_pylist(prows, schema=pa.schema([PRODUCTS.field(c) for c in prows[0]]))
    rel = pa.table(
        {
            "src": pa.array([r["src"] for r in crows], pa.string()),
            "dst": pa.array([r["dst"] for r in crows], pa.string()),
            "kind": pa.array(["complement"] * len(crows), pa.string()),
            "score": pa.array([r["score"] for r in crows], RELATIONS.field("score").type),
        }
    )
    found = discover_scenes(products, rel, max_scenes=max_scenes, seed=seed)
    if not found:
        click.echo("no scenes found: the graph has no complements between different categories or products")
        return
    path = dump_scenes(found, out or _home(home) / DISCOVERED_SCENES_FILE)
    if as_json:
        click.echo(scenes_json(found))
        return
    for s in found:
        click.echo(
            f"{s.scene_id:<16} {s.name}  ({len(s.roles)} roles: {' → '.join(r.name for r in s.roles)})"
        )
    click.echo(f"wrote {path}: edit it, then `tiein build ... --scenes {path}`")

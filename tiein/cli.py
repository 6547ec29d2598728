"""The ``tiein`` command line. A thin layer: every command calls library functions.

Heavy modules (duckdb, torch, faiss, ladybug, neo4j) are imported inside the commands, so
``tiein --help`` answers instantly. User mistakes print one plain ``error: ...`` line and exit
with status 2; no tracebacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tiein.errors import TieinError
from tiein.model import RELATION_KINDS

DATASET_NAMES = (
    "online_retail",
    "instacart",
    "groceries",
    "groceries_zh",
    "taobao_makeup",
    "amazon_gift_cards",
    "bread_basket",
)

HOME_HELP = "Working directory for the graph, the FAISS index and caches [env TIEIN_HOME; default ./tiein-data]."
STORE_HELP = (
    "Graph store: a directory for the embedded store (default HOME/graph) or a Neo4j URL "
    "(bolt://host:7687, neo4j://…; credentials from TIEIN_NEO4J_USER / TIEIN_NEO4J_PASSWORD) [env TIEIN_STORE]."
)


class TqdmProgress:
    """progress(step, done, total) callbacks rendered as one tqdm bar per step on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        # "store · CO_PURCHASED": one bar per phase, the sub-step shown after it
        phase, _, detail = step.partition(" · ")
        bar = self.bars.get(phase)
        if bar is None:
            bar = tqdm(total=total or None, desc=f"{phase:<8}", unit="", leave=False, file=sys.stderr, dynamic_ncols=True)
            self.bars[phase] = bar
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        if detail:
            bar.set_postfix_str(detail, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _home(home: str | None) -> Path:
    from tiein.pipeline import default_home

    return Path(home) if home else default_home()


def _open_store(home: str | None, store: str | None):  # type: ignore[no-untyped-def]
    from graph import open_store
    from tiein.pipeline import default_store_url

    return open_store(store or default_store_url(_home(home)))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tiein")
def cli() -> None:
    """tiein — product relations and bundles for cross-selling (关联销售 / 搭售).

    \b
    Typical use:
      tiein build --dataset online_retail        # files → statistics → embeddings → relations → graph
      tiein related 85123A --kind complement     # what to offer with a product
      tiein stats                                # what the graph holds
    \b
    Your own files:
      tiein build --catalog items.csv --orders orders.csv --map product_id=sku --map title=name
    """


@cli.command()
@click.option("--dataset", type=click.Choice(DATASET_NAMES), help="A ready dataset from ../shared/data (see `tiein datasets`).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the ready datasets live [env TIEIN_DATA; default ../shared/data].")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), help="Catalog file: CSV/TSV, JSON lines (.gz), Parquet or XLSX; UTF-8/BOM/GBK detected.")
@click.option("--orders", type=click.Path(dir_okay=False, path_type=Path), help="Order lines: order id, product id, [quantity, customer, time].")
@click.option("--views", type=click.Path(dir_okay=False, path_type=Path), help="Browsing events: session/user, product, [time, event].")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, path_type=Path), help="YAML/JSON column mapping for your files (see README).")
@click.option("--map", "map_pairs", multiple=True, metavar="FIELD=COLUMN", help="Map one column, e.g. --map product_id=StockCode (repeatable).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--model", help="Embedding model: packaged alias or any sentence-transformers name/path [default: multilingual USE, offline].")
@click.option("--no-embeddings", is_flag=True, help="Skip title embeddings (substitutes then rely on co-view and categories only).")
@click.option("--min-count", default=2, show_default=True, help="Minimum co-purchase/co-view count for a pair.")
@click.option("--max-basket", default=500, show_default=True, help="Baskets with more distinct items are skipped when pairing.")
@click.option("--after-window", default=90, show_default=True, help="Days within which a later purchase counts as 'bought after'.")
@click.option("--threads", type=int, help="CPU threads for mining and embeddings [default: all].")
@click.option("--scenes", "scenes_file", type=click.Path(dir_okay=False, path_type=Path), help="YAML/JSON scenes file (露营 / camping: tent → chair → lamp …); see README. Without it scenes are discovered.")
@click.option("--no-scenes", is_flag=True, help="Do not discover scenes (a --scenes file is still used).")
@click.option("--show", default=0, show_default=True, help="After the build, print the N most-ordered products with their complements and substitutes.")
@click.option("--json", "as_json", is_flag=True, help="Print the build summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(
    dataset: str | None,
    data_dir: Path | None,
    catalog: Path | None,
    orders: Path | None,
    views: Path | None,
    mapping_file: Path | None,
    map_pairs: tuple[str, ...],
    home: str | None,
    store: str | None,
    model: str | None,
    no_embeddings: bool,
    min_count: int,
    max_basket: int,
    after_window: int,
    threads: int | None,
    scenes_file: Path | None,
    no_scenes: bool,
    show: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build the relation graph from a ready dataset or your own files, replacing the store's
    graph atomically (a failed build leaves the previous graph as it was)."""
    from tiein.errors import ConfigError
    from tiein.pipeline import BuildOptions
    from tiein.pipeline import build as run_build

    if not dataset and not (catalog or orders or views):
        raise ConfigError("say what to build from: --dataset NAME, or --catalog/--orders/--views files")
    if dataset and (catalog or orders or views):
        raise ConfigError("use either --dataset or your own files, not both")
    mapping = None
    if mapping_file or map_pairs:
        import loaders

        mapping = loaders.Mapping.from_file(mapping_file) if mapping_file else None
        if map_pairs:
            mapping = loaders.Mapping.from_cli(list(map_pairs), base=mapping)
    opts = BuildOptions(
        dataset=dataset,
        data_dir=data_dir,
        catalog=catalog,
        orders=orders,
        views=views,
        mapping=mapping,
        home=_home(home),
        store_url=store,
        model=model,
        embeddings=not no_embeddings,
        min_count=min_count,
        max_basket=max_basket,
        after_window_days=after_window,
        threads=threads,
        scenes=scenes_file,
        discover_scenes=not no_scenes,
    )
    progress = TqdmProgress(enabled=not quiet and not as_json)
    try:
        summary = run_build(opts, progress=progress)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_summary(summary)
    if show and summary.top_products:
        st = _open_store(home, store)
        try:
            for pid in summary.top_products[:show]:
                _print_product_block(st, pid)
        finally:
            st.close()


def _print_summary(summary: Any) -> None:
    c = summary.counts
    click.echo(f"built {summary.source} → {summary.store}")
    click.echo(
        f"  {c['products']:,} products · {c['order_lines']:,} order lines · {c['baskets']:,} baskets · "
        f"{c['co_purchase_pairs']:,} co-purchase pairs · {c['co_view_pairs']:,} co-view pairs · "
        f"{c['listed_pairs']:,} listed pairs"
    )
    rel = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.relations.items())) or "none"
    click.echo(f"  relations: {rel}  (from {c['candidates']:,} candidate pairs)")
    if summary.model:
        click.echo(f"  embeddings: {summary.model}")
    secs = " · ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items() if k != "total")
    click.echo(f"  time: {summary.seconds['total']:.1f}s ({secs})")
    sc = summary.scenes or {}
    if sc.get("count"):
        click.echo(f"  scenes: {sc['count']} {sc['source']} · {sc['members']:,} members  ({sc['file']})")
        for role in sc.get("empty_roles", []):
            click.echo(f"  scenes: no product fills role {role}")
    elif sc.get("note"):
        click.echo(f"  scenes: {sc['note']}")
    for line in summary.load_report:
        click.echo(f"  input: {line}")


def _fmt_price(p: Any) -> str:
    return "-" if p is None else f"{p:,.2f}"


def _print_product_block(st: Any, pid: str) -> None:
    p = st.product(pid)
    click.echo("")
    click.echo(f"{p['product_id']}  {p['title']}  (price {_fmt_price(p['price'])})")
    for kind in ("complement", "substitute"):
        rows = st.related(pid, kind, 3)
        click.echo(f"  {kind}s:")
        if not rows:
            click.echo("    (none)")
        for r in rows:
            click.echo(f"    {r['score']:.3f}  {r['product_id']:<10} {r['title']}  ({_why(r)})")


def _why(r: dict[str, Any]) -> str:
    ev = r.get("evidence") or {}
    parts = []
    if ev.get("bought_together"):
        parts.append(f"bought together {ev['bought_together']}×, lift {ev.get('lift')}")
    if ev.get("viewed_together") or ev.get("listed_also_viewed"):
        parts.append("viewed together")
    if ev.get("listed_also_bought"):
        parts.append("listed as also bought")
    if ev.get("similarity") is not None:
        parts.append(f"similarity {ev['similarity']}")
    if ev.get("category_relation") not in (None, "unknown"):
        parts.append(f"category {ev['category_relation']}")
    if ev.get("price_ratio") is not None:
        parts.append(f"price ×{ev['price_ratio']}")
    return "; ".join(parts)


@cli.command()
@click.argument("product")
@click.option("--kind", type=click.Choice(RELATION_KINDS), default="complement", show_default=True, help="Relation kind.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many related products.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (stable schema, with evidence).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def related(product: str, kind: str, k: int, as_json: bool, home: str | None, store: str | None) -> None:
    """Products related to PRODUCT (its id) by KIND, best first, with the evidence behind each
    and a plain explanation (中文 + English) a seller can say out loud."""
    from tiein.service import related_payload

    st = _open_store(home, store)
    try:
        payload = related_payload(st, product, kind, k)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    anchor, rows = payload["product"], payload["related"]
    click.echo(f"{anchor['product_id']}  {anchor['title']}  (price {_fmt_price(anchor['price'])}) — {kind}s")
    if not rows:
        click.echo(f"  no {kind}s found for this product")
    for r in rows:
        click.echo(f"  {r['score']:.3f}  {r['product_id']:<12} {r['title']:<45}  {_fmt_price(r['price']):>9}")
        click.echo(f"         {r['explanation_en']}")
        click.echo(f"         {r['explanation_zh']}")


@cli.command()
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def stats(home: str | None, store: str | None, as_json: bool) -> None:
    """Counts of nodes and relationships in the graph, and how it was built."""
    st = _open_store(home, store)
    try:
        s = st.stats()
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
    meta = s.get("meta") or {}
    if meta:
        click.echo(f"built from {meta.get('source')} at {meta.get('built_at')} (model: {meta.get('model')})")


@cli.group()
def scenes() -> None:
    """Shopping scenes (露营 / camping: tent → chair → lamp …): list, show, discover.

    \b
    tiein scenes list
    tiein scenes show camping               # by id or name (露营 works too)
    tiein scenes discover --out scenes.yaml # edit it, then: tiein build ... --scenes scenes.yaml
    """


@scenes.command("list")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def scenes_list(home: str | None, store: str | None, as_json: bool) -> None:
    """The scenes in the graph with their roles in order."""
    st = _open_store(home, store)
    try:
        rows = st.scenes()
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps({"scenes": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no scenes in the graph: build with --scenes FILE, or let the build discover them")
        return
    for r in rows:
        roles = " → ".join("-" if x is None else x for x in r["roles"])
        click.echo(f"{r['scene_id']:<16} {r['name']}  [{r['source']}, {r['members']:,} products]  {roles}")


@scenes.command("show")
@click.argument("name")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 100000), help="Products shown per role (table output).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output (every member).")
def scenes_show(name: str, k: int, home: str | None, store: str | None, as_json: bool) -> None:
    """One scene (by id or name): its roles in order, each with its products."""
    st = _open_store(home, store)
    try:
        sc = st.scene(name)
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
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the editable YAML [default: HOME/scenes.discovered.yaml].")
@click.option("--max-scenes", default=12, show_default=True, type=click.IntRange(1, 1000), help="At most this many scenes.")
@click.option("--seed", default=0, show_default=True, help="Seed of the community detection (same seed, same scenes).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Also print the scenes as JSON.")
def scenes_discover(out: Path | None, max_scenes: int, seed: int, home: str | None, store: str | None, as_json: bool) -> None:
    """Discover scenes from the graph's complements and write them as an editable YAML file."""
    import pyarrow as pa

    from tiein.model import PRODUCTS, RELATIONS
    from tiein.pipeline import DISCOVERED_SCENES_FILE
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
        click.echo(f"{s.scene_id:<16} {s.name}  ({len(s.roles)} roles: {' → '.join(r.name for r in s.roles)})")
    click.echo(f"wrote {path}: edit it, then `tiein build ... --scenes {path}`")


@cli.command()
def datasets() -> None:
    """The ready datasets (read from ../shared/data or TIEIN_DATA)."""
    import loaders

    for name, desc in loaders.DATASETS.items():
        click.echo(f"{name:<18} {desc}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TieinError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2 if exc.status < 500 else 1)
    except KeyboardInterrupt:
        click.echo("interrupted; the previous graph is untouched", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

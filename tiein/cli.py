"""The ``tiein`` command line. A thin layer: every command calls library functions.

Heavy modules (duckdb, torch, faiss, ladybug, neo4j) are imported inside the commands, so
``tiein --help`` answers instantly. User mistakes print one plain ``error: ...`` line and exit
with status 2; no tracebacks.
"""

from __future__ import annotations

import json
import os
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
    from tiein.graph import open_store
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
@click.option("--min-count", default=2, show_default=True, type=click.IntRange(1), help="Minimum co-purchase/co-view count for a pair.")
@click.option("--max-basket", default=500, show_default=True, type=click.IntRange(2), help="Baskets with more distinct items are skipped when pairing.")
@click.option("--after-window", default=90, show_default=True, type=click.IntRange(0), help="Days within which a later purchase counts as 'bought after'.")
@click.option("--min-next", default=3, show_default=True, type=click.IntRange(1), help="Customers who bought A, then B (within --after-window) a 'next' relation A → B needs.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for mining and embeddings [default: all].")
@click.option("--mining", type=click.Choice(["numpy", "spark"]), default="numpy", show_default=True, help="Pair-mining backend: numpy (one machine, fastest) or spark (pip install 'tiein[spark]' + Java; master from TIEIN_SPARK_MASTER, else local).")
@click.option("--scenes", "scenes_file", type=click.Path(dir_okay=False, path_type=Path), help="YAML/JSON scenes file (露营 / camping: tent → chair → lamp …); see README. Without it scenes are discovered.")
@click.option("--no-scenes", is_flag=True, help="Do not discover scenes (a --scenes file is still used).")
@click.option("--show", default=0, show_default=True, type=click.IntRange(0), help="After the build, print the N most-ordered products with their complements and substitutes.")
@click.option("--min-matched", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="Refuse the build when fewer order lines than this share are for catalog products (a wrong --map).")
@click.option("--allow-empty", is_flag=True, help="Switch to the new graph even if it kept no products, matched few order lines or found no basket with two products.")
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
    min_next: int,
    threads: int | None,
    mining: str,
    scenes_file: Path | None,
    no_scenes: bool,
    show: int,
    min_matched: float,
    allow_empty: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build the relation graph from a ready dataset or your own files, replacing the store's
    graph atomically (a failed build leaves the previous graph as it was)."""
    from tiein.checks import Floors
    from tiein.errors import ConfigError
    from tiein.pipeline import BuildOptions
    from tiein.pipeline import build as run_build
    from tiein.relations import NextConfig

    if not dataset and not (catalog or orders or views):
        raise ConfigError("say what to build from: --dataset NAME, or --catalog/--orders/--views files")
    if dataset and (catalog or orders or views):
        raise ConfigError("use either --dataset or your own files, not both")
    if scenes_file is not None:  # a device or FIFO would be read without end
        from tiein.loaders.limits import require_regular_file

        require_regular_file(scenes_file)
    mapping = None
    if mapping_file or map_pairs:
        from tiein import loaders
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
        next_purchase=NextConfig(min_customers=min_next),
        threads=threads,
        mining=mining,
        scenes=scenes_file,
        discover_scenes=not no_scenes,
        floors=Floors(min_matched=min_matched, allow_empty=allow_empty),
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


@cli.command()
@click.option("--orders", type=click.Path(dir_okay=False, path_type=Path), help="New order lines (lines already in the graph are skipped: dedup by order id + product id).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), help="New or changed products: only the columns the file has change (a product_id,stock file changes stock only).")
@click.option("--views", type=click.Path(dir_okay=False, path_type=Path), help="New browsing events.")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, path_type=Path), help="YAML/JSON column mapping for these files (as for build).")
@click.option("--map", "map_pairs", multiple=True, metavar="FIELD=COLUMN", help="Map one column, e.g. --map stock=qty (repeatable).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--threads", type=click.IntRange(1), help="CPU threads for mining and embeddings [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print the update summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def update(
    orders: Path | None,
    catalog: Path | None,
    views: Path | None,
    mapping_file: Path | None,
    map_pairs: tuple[str, ...],
    home: str | None,
    store: str | None,
    threads: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Add new orders, products, price and stock changes to the last build without rebuilding:
    pair statistics are merged, only new titles are embedded, and only what changed is written
    to the store. The graph equals a full build on all the data; a failed update changes nothing.
    A stock/price-only catalog re-mines nothing (out-of-stock items leave bundles at once)."""
    from tiein.update import UpdateOptions
    from tiein.update import update as run_update

    mapping = None
    if mapping_file or map_pairs:
        from tiein import loaders
        mapping = loaders.Mapping.from_file(mapping_file) if mapping_file else None
        if map_pairs:
            mapping = loaders.Mapping.from_cli(list(map_pairs), base=mapping)
    opts = UpdateOptions(
        catalog=catalog, orders=orders, views=views, mapping=mapping, home=_home(home), store_url=store, threads=threads
    )
    progress = TqdmProgress(enabled=not quiet and not as_json)
    try:
        summary = run_update(opts, progress=progress)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    c = summary.counts
    click.echo(f"updated {summary.store} ({summary.path})")
    added = [f"{c[k]:,} {label}" for k, label in (("order_lines_added", "new order lines"), ("products_added", "new products"),
             ("products_changed", "changed products"), ("view_rows_added", "new view events")) if c.get(k)]  # fmt: skip
    click.echo(f"  {' · '.join(added) or 'nothing new'}")
    click.echo(f"  recomputed: {', '.join(summary.recomputed) or 'nothing'}")
    d = summary.delta
    if summary.store_write == "replace":
        click.echo("  store: replaced in bulk (most of the graph changed: more baskets move every lift)")
    else:
        click.echo(
            f"  store: {d.get('added_nodes', 0):,} nodes added, {d.get('changed_nodes', 0):,} changed, "
            f"{d.get('removed_nodes', 0):,} removed · {d.get('upserted_rels', 0):,} relationships written, "
            f"{d.get('removed_rels', 0):,} removed"
        )
    secs = " · ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items() if k != "total")
    click.echo(f"  time: {summary.seconds['total']:.1f}s ({secs})")
    for note in summary.notes:
        click.echo(f"  note: {note}")


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


def _fmt_role(product: dict[str, Any]) -> str:
    """", hero item" for a product with a sales role, "" without."""
    role = product.get("sales_role")
    return f", {role} item" if role else ""


def _print_product_block(st: Any, pid: str) -> None:
    """The demo's view of one product: its best complements and substitutes with the seller's
    explanation, then its bundle and pitch (all through tiein.service, like the API)."""
    from tiein.service import bundle_payload, related_payload

    p = st.product(pid)
    click.echo("")
    click.echo(f"{p['product_id']}  {p['title']}  (price {_fmt_price(p['price'])}{_fmt_role(p)})")
    for kind in ("complement", "substitute"):
        rows = related_payload(st, pid, kind, 3)["related"]
        click.echo(f"  {kind}s:")
        if not rows:
            click.echo("    (none)")
        for r in rows:
            click.echo(f"    {r['score']:.3f}  {r['product_id']:<10} {r['title']}  {_fmt_price(r['price'])}")
            click.echo(f"           {r['explanation_en']}")
    b = bundle_payload(st, pid)
    if b["reason"]:
        click.echo(f"  bundle: none — {b['reason']['en']}")
    else:
        items = " + ".join(f"{i['product']['product_id']} {i['product']['title']}" for i in b["items"])
        click.echo(f"  bundle: {p['product_id']} + {items}")
        click.echo(f"          {b['pitch']['en']}  |  {b['pitch']['zh']}")


# Settings of `tiein serve` read only from the environment (tiein.api.Settings; a test keeps this
# list complete without importing the API here: `tiein --help` stays instant).
SERVE_ENV_HELP = """\b
More settings, from the environment:
  TIEIN_API_CYPHER_MAX_ROWS   largest row cap a Cypher request may ask (10000)
  TIEIN_API_CYPHER_TIMEOUT    longest time limit of a Cypher request, s (10)
  TIEIN_API_CYPHER_MEMORY     memory of the worker process of a Cypher request, MB (2048)
  TIEIN_API_MAX_BODY          largest request body, bytes (1048576; 413 above it)
  TIEIN_API_NEO4J_RETRY       how long a failed Neo4j read is retried before a 503, s (1)
  TIEIN_API_FEEDBACK_REFRESH  feedback=true: how stale the feedback statistics may get, s
                              (10; recomputed in the background; 0: before the next request)"""


_KIND_PLURAL = {"series": "same-series products", "next": "next purchases"}


@cli.command()
@click.argument("product")
@click.option("--kind", type=click.Choice(RELATION_KINDS), default="complement", show_default=True, help="Relation kind: complement (add-on), substitute, upsell, series (same line), next (bought next: customers buy it after PRODUCT).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many related products.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (stable schema, with evidence).")
@click.option("--feedback", is_flag=True, help="Re-rank by the home's feedback log (`tiein feedback ingest`), as the API's feedback=true does.")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def related(
    product: str, kind: str, k: int, as_json: bool, feedback: bool, home: str | None, store: str | None
) -> None:
    """Products related to PRODUCT (its id) by KIND, best first, with the evidence behind each
    and a plain explanation (中文 + English) a seller can say out loud."""
    from tiein.service import related_payload

    stats = None
    if feedback:
        from tiein.feedback import load_stats

        stats = load_stats(_home(home))
    st = _open_store(home, store)
    try:
        payload = related_payload(st, product, kind, k, feedback=stats)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    anchor, rows = payload["product"], payload["related"]
    click.echo(f"{anchor['product_id']}  {anchor['title']}  (price {_fmt_price(anchor['price'])}{_fmt_role(anchor)}) — {_KIND_PLURAL.get(kind, kind + 's')}")
    if not rows:
        click.echo(f"  no {_KIND_PLURAL.get(kind, kind + 's')} found for this product")
    for r in rows:
        click.echo(f"  {r['score']:.3f}  {r['product_id']:<12} {r['title']:<45}  {_fmt_price(r['price']):>9}{_fmt_role(r)}")
        if "feedback" in r:
            f = r["feedback"]
            click.echo(f"         feedback: shown {f['impressions']:,}, {f['metric']} {f['successes']:,}; item elsewhere "
                       f"{f['item_successes']:,}/{f['item_impressions']:,} (×{f['item_factor']:.2f}); "
                       f"rate {f['rate'] * 100:.1f}%")  # fmt: skip
        click.echo(f"         {r['explanation_en']}")
        click.echo(f"         {r['explanation_zh']}")


@cli.command()
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def stats(home: str | None, store: str | None, as_json: bool) -> None:
    """Counts of nodes and relationships in the graph, and how it was built."""
    from tiein.home import read_pointer, recover_if_idle
    from tiein.pipeline import default_store_url

    st = _open_store(home, store)
    try:
        for line in recover_if_idle(_home(home), st, store or default_store_url(_home(home))):
            click.echo(f"recovered: {line}", err=True)
        s = st.stats()
        s["generations"] = read_pointer(_home(home)).__dict__
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


@cli.command(epilog=SERVE_ENV_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; a non-loopback one needs --token (or --insecure).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--token", envvar="TIEIN_API_TOKEN", help="Bearer token every request must carry [env TIEIN_API_TOKEN; default: no auth].")
@click.option("--cors", "cors", multiple=True, metavar="ORIGIN", help="An origin allowed by CORS, e.g. https://shop.example (repeatable) [env TIEIN_API_CORS, comma-separated].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes (each opens the store once).")
@click.option("--max-k", type=click.IntRange(1, 1000), help="Largest k a request may ask [env TIEIN_API_MAX_K; default 100].")
@click.option("--snapshot/--no-snapshot", default=None, help="Serve reads from an in-memory snapshot of the embedded graph (the default for it): identical answers, bundles ~10x faster, reloaded after a rebuild; memory ~0.7 GB and 2-6 s of start-up per 50k products. --no-snapshot reads LadybugDB per request [env TIEIN_API_SNAPSHOT].")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without a token.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="Server log level.")
def serve(
    host: str,
    port: int,
    home: str | None,
    store: str | None,
    token: str | None,
    cors: tuple[str, ...],
    workers: int,
    max_k: int | None,
    snapshot: bool | None,
    insecure: bool,
    log_level: str,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) over the graph store.

    \b
    tiein serve                                    # http://127.0.0.1:8000/docs
    tiein serve --store bolt://neo4j:7687 --host 0.0.0.0 --token "$TOKEN"
    curl localhost:8000/v1/products/85123A/related?kind=complement
    """
    import os

    import uvicorn

    from tiein.api import Settings, is_loopback, open_api_store
    from tiein.errors import ConfigError

    settings = Settings.from_env(
        home=Path(home) if home else None, store=store, token=token, cors_origins=cors or None, max_k=max_k,
        snapshot=snapshot,
    )
    if settings.token is None and not is_loopback(host) and not insecure:
        raise ConfigError(
            f"refusing to serve on {host} without a token: give --token (or TIEIN_API_TOKEN), "
            "bind 127.0.0.1, or pass --insecure"
        )
    import dataclasses

    from tiein.home import recover_if_idle

    # a bad store URL fails here, not in every worker (without loading a snapshot just to check);
    # and what a crashed build left half-switched is finished before the first request
    plain = open_api_store(dataclasses.replace(settings, snapshot=False))
    try:
        for line in recover_if_idle(settings.home, plain, settings.store_url):
            click.echo(f"recovered: {line}", err=True)
    finally:
        plain.close()
    from tiein.graph import is_neo4j_url

    if settings.snapshot and is_neo4j_url(settings.store_url):
        raise ConfigError("--snapshot serves the embedded store only; Neo4j is read directly")
    os.environ.update(settings.to_env())  # the workers' app factory reads them back
    click.echo(f"tiein API on http://{host}:{port}/docs · store {settings.store_url.split('@')[-1]}"
               f" · auth {'on' if settings.token else 'off'}", err=True)
    uvicorn.run("tiein.api:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level)


@cli.group()
def feedback() -> None:
    """Recommendation events (impression, click, add_to_cart, purchase): ingest and statistics.

    \b
    tiein feedback ingest events.csv          # CSV/TSV, JSON lines, Parquet, XLSX; re-ingesting adds nothing
    tiein feedback stats --kind complement    # CTR and conversion per kind and per pair (smoothed)
    tiein report --experiment exp-1 --out ab/ # A/B report: add-on rate, AOV, lift with 95% CIs
    """


@feedback.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--home", help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def feedback_ingest(file: Path, home: str | None, as_json: bool) -> None:
    """Append the events of FILE to the event log (HOME/feedback); events already there are skipped."""
    from tiein.feedback import ingest, read_events

    result = ingest(_home(home), read_events(file))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(f"{result.added:,} of {result.received:,} events added ({result.duplicates:,} already in the log)")


@feedback.command("stats")
@click.option("--kind", help="Only this relation kind (complement, substitute, …).")
@click.option("--top", default=10, show_default=True, type=click.IntRange(0, 100000), help="Pairs shown, best smoothed conversion first.")
@click.option("--prior-strength", default=50.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Pseudo-impressions of the kind's rate added to each pair (smoothing).")
@click.option("--item-strength", default=200.0, show_default=True, type=click.FloatRange(min=0), help="Pseudo-impressions of the item level of the re-ranker's prior (0: off); listed in --json.")
@click.option("--home", help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def feedback_stats_cmd(
    kind: str | None, top: int, prior_strength: float, item_strength: float, home: str | None, as_json: bool
) -> None:
    """Impressions, clicks, add-to-carts, purchases, CTR and conversion per kind, per pair and per
    recommended item (all its anchors together: what the re-ranker's item level learns from)."""
    import pyarrow.compute as pc

    from tiein.feedback import feedback_stats, read_log

    events = read_log(_home(home))
    if kind is not None:
        events = events.filter(pc.equal(events.column("kind"), kind))
    stats = feedback_stats(events, prior_strength=prior_strength, item_strength=item_strength)
    if as_json:
        click.echo(json.dumps(stats.to_dict(top=top), ensure_ascii=False, indent=2))
        return
    if not events.num_rows:
        click.echo("no events" + (f" of kind {kind}" if kind else "") + ": ingest some with `tiein feedback ingest FILE`")
        return
    d = stats.to_dict(top=top)
    click.echo(f"{'kind':<12} {'impressions':>11} {'clicks':>8} {'carts':>7} {'purchases':>9} {'CTR':>7} {'conv.':>7}")
    for r in d["kinds"]:
        click.echo(
            f"{r['kind']:<12} {r['impressions']:>11,} {r['clicks']:>8,} {r['add_to_carts']:>7,} {r['purchases']:>9,} "
            f"{_pct(r['ctr']):>7} {_pct(r['conversion']):>7}"
        )
    if d["pairs"]:
        click.echo(f"\ntop pairs by smoothed conversion (prior strength {prior_strength:g} impressions):")
        for r in d["pairs"]:
            click.echo(
                f"  {r['anchor_id']:<12} → {r['item_id']:<12} {r['kind']:<11} {r['impressions']:>7,} shown "
                f"{r['purchases']:>6,} bought  conv. {_pct(r['conversion'])} → {_pct(r['conversion_smoothed'])}"
            )
    if d["items"]:
        click.echo("\ntop recommended items by purchases (all anchors):")
        for r in d["items"]:
            rate = r["purchases"] / r["impressions"] if r["impressions"] else None
            click.echo(
                f"  {r['item_id']:<12} {r['kind']:<11} {r['anchors']:>5,} anchors {r['impressions']:>7,} shown "
                f"{r['purchases']:>6,} bought  conv. {_pct(rate)}"
            )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


@cli.command()
@click.option("--experiment", help="The experiment to report [default: the only one in the log].")
@click.option("--control", help="The variant the others are compared with [default: the first by name].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for report.json, report.png and report.html.")
@click.option("--home", help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(experiment: str | None, control: str | None, out: Path, home: str | None, as_json: bool) -> None:
    """A/B report from the event log: per variant the add-on rate (purchases of recommended items
    per user shown them) and average order value with 95% confidence intervals, and the lift."""
    from tiein.feedback import ab_report, read_log, write_report

    rep = ab_report(read_log(_home(home)), experiment=experiment, control=control)
    paths = write_report(rep, out)
    if as_json:
        click.echo(json.dumps(rep, ensure_ascii=False, indent=2))
        return

    def ci(m: dict[str, Any], pct: bool = False) -> str:
        f = (lambda x: f"{x * 100:.2f}%") if pct else (lambda x: f"{x:,.3f}")
        if m["value"] is None:
            return "-"
        if m["low"] is None:
            return f(m["value"])
        return f"{f(m['value'])} [{f(m['low'])}, {f(m['high'])}]"

    click.echo(f"experiment {rep['experiment'] or '(none)'} · control {rep['control']} · {rep['ci']}")
    for v in rep["variants"]:
        click.echo(
            f"  {v['variant']:<10} {v['users']:>7,} users {v['impressions']:>8,} shown {v['purchases']:>6,} bought  "
            f"add-on rate {ci(v['add_on_rate'])}  conversion {ci(v['conversion'], True)}  AOV {ci(v['aov'])}"
        )
    for x in rep["lift"]:
        lo = "-" if x["low"] is None else f"{x['low'] * 100:+.1f}%"
        hi = "-" if x["high"] is None else f"{x['high'] * 100:+.1f}%"
        val = "-" if x["value"] is None else f"{x['value'] * 100:+.1f}%"
        click.echo(f"  lift {x['variant']} vs {x['vs']} {x['metric']:<12} {val} [{lo}, {hi}]")
    click.echo(f"wrote {paths['html']} (and report.png, report.json)")


@cli.command("bundle")
@click.argument("product")
@click.option("--scene", help="Scene id or name whose role order to follow [default: the scene PRODUCT belongs to].")
@click.option("--size", default=3, show_default=True, type=click.IntRange(2, 6), help="Items in the bundle, PRODUCT included.")
@click.option("--budget", type=float, help="The most the bundle may cost at full price.")
@click.option("--mix", help="Sales roles of the add-ons in order, e.g. hero+profit (traffic, hero, profit, regular).")
@click.option("--discount", type=float, help="Bundle discount for the suggested price, 0.1 = 10 % off [default: 0.1].")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the API's schema).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def bundle_cmd(
    product: str, scene: str | None, size: int, budget: float | None, mix: str | None, discount: float | None,
    as_json: bool, home: str | None, store: str | None,
) -> None:  # fmt: skip
    """A bundle for PRODUCT: add-ons in scene-role order under the merchant's rules (30-80 % of
    its price, in stock, no substitutes, one per category), a sayable bundle price and the pitch.
    When no bundle is possible it says why (not an error)."""
    from tiein.service import bundle_payload

    st = _open_store(home, store)
    try:
        payload = bundle_payload(st, product, scene=scene, size=size, budget=budget, mix=mix, discount=discount)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print_bundle(payload)


def _print_bundle(b: dict[str, Any]) -> None:
    a = b["anchor"]
    click.echo(f"{a['product_id']}  {a['title']}  (price {_fmt_price(a['price'])}{_fmt_role(a)})")
    if b.get("scene"):
        note = " — no role of it could be filled, so: best complements by score" if b.get("scene_fallback") else ""
        click.echo(f"scene: {b['scene']['name']} ({b['scene']['scene_id']}){note}")
    if b.get("mix"):
        click.echo(f"mix: {' + '.join(b['mix'])}")
    for n, item in enumerate(b["items"], 1):
        p = item["product"]
        role = f"[{item['role']}]" if item.get("role") else ""
        click.echo(f"  {n}. {role} {p['product_id']}  {p['title']}  {_fmt_price(p['price'])}{_fmt_role(p)}  — {item['relation']}")
        click.echo(f"       {item['explanation']['en']}")
        click.echo(f"       {item['explanation']['zh']}")
    if b.get("skipped_roles"):
        click.echo(f"  roles no item could fill: {', '.join(b['skipped_roles'])}")
    if b["reason"]:
        click.echo(f"no bundle: {b['reason']['en']}")
        click.echo(f"无法组合套装：{b['reason']['zh']}")
        return
    click.echo(
        f"total {_fmt_price(b['total'])} → bundle price {_fmt_price(b['suggested_price'])} "
        f"({round(b['discount'] * 100)}% off, rounded to a sayable price; save {_fmt_price(b['saving'])})"
    )
    click.echo(f"pitch: {b['pitch']['zh']}")
    click.echo(f"       {b['pitch']['en']}")


@cli.command("addons")
@click.argument("ids", nargs=-1, required=True)
@click.option("--threshold", type=float, help="Free-shipping threshold: also suggest the cheapest items that lift the cart over it.")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100), help="How many add-ons (and top-ups).")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the API's schema).")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def addons_cmd(ids: tuple[str, ...], threshold: float | None, k: int, as_json: bool, home: str | None, store: str | None) -> None:
    """Add-ons for a cart of IDS as a whole: complements of the cart, never substitutes of what is
    in it; with --threshold, the items that reach it with the least overspend."""
    from tiein.service import addons_payload

    st = _open_store(home, store)
    try:
        payload = addons_payload(st, list(ids), threshold=threshold, k=k)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    cart = ", ".join(f"{p['product_id']} ({_fmt_price(p['price'])})" for p in payload["cart"])
    click.echo(f"cart: {cart} — total {_fmt_price(payload['total'])}")

    def show(items: list[dict[str, Any]], top_up: bool) -> None:
        for n, item in enumerate(items, 1):
            p = item["product"]
            extra = f"  → {_fmt_price(item['new_total'])} (over by {_fmt_price(item['overspend'])})" if top_up else ""
            click.echo(f"  {n}. {p['product_id']}  {p['title']}  {_fmt_price(p['price'])}{_fmt_role(p)}  — {item['relation']}{extra}")
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


@cli.command()
@click.argument("query")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A query parameter ($NAME), repeatable; VALUE is read as JSON when it parses (3, true, \"007\"), else as text.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Row cap; the answer says when it was truncated.")
@click.option("--timeout", "timeout_s", default=10.0, show_default=True, type=click.FloatRange(0, 600, min_open=True), help="Time limit in seconds.")
@click.option("--json", "as_json", is_flag=True, help="JSON: {columns, rows, truncated, limit, row_count, elapsed_ms, store}.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row (nested values as JSON; text cells starting with = + - @ tab or CR get a leading ' so spreadsheets do not run them).")
@click.option("--no-formula-escape", "raw_csv", is_flag=True, help="--csv: write text cells as they are (no leading ' before = + - @ tab CR).")
@click.option("--memory", "memory_mb", default=2048, show_default=True, type=click.IntRange(512, 1_048_576), help="Embedded store: memory (MB of address space) of the worker process that runs the query.")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def cypher(
    query: str, params: tuple[str, ...], limit: int, timeout_s: float, as_json: bool, as_csv: bool, raw_csv: bool,
    memory_mb: int, home: str | None, store: str | None,
) -> None:  # fmt: skip
    """Run a read-only Cypher QUERY (analysts; the graph model and examples: docs/schema.md).

    \b
      tiein cypher "MATCH (p:Product)-[r:COMPLEMENT]->(q) RETURN p.title, q.title, r.score ORDER BY r.score DESC" --limit 20
      tiein cypher "MATCH (p:Product {product_id: $id})-[:SUBSTITUTE]->(q) RETURN q.product_id, q.price" --param id=85123A --csv

    Read queries only: writes, files, extensions, transactions and settings (CREATE, MERGE, SET,
    DELETE, REMOVE, DROP, LOAD, COPY, EXPORT, INSTALL, BEGIN, CHECKPOINT, ...) are refused. On the
    embedded store the query runs in a worker process with --memory and is killed at --timeout."""
    import csv

    from tiein.cypher import parse_param, run_cypher
    from tiein.cypher_worker import WorkerLimits
    from tiein.export import escape_formula

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    values = dict(parse_param(p) for p in params)
    st = _open_store(home, store)
    try:
        result = run_cypher(st, query, values, limit=limit, timeout_s=timeout_s, worker=WorkerLimits(memory_mb))
    finally:
        st.close()
    note = f"truncated: showing the first {limit:,} rows (raise --limit)" if result.truncated else ""
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        cell = (lambda v: v) if raw_csv else escape_formula
        for row in result.rows:
            writer.writerow(["" if v is None else json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else cell(v) for v in row])
        if note:
            click.echo(note, err=True)
        return
    cells = [[json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else ("" if v is None else str(v)) for v in row] for row in result.rows]
    widths = [min(60, max([len(c), *(len(r[i]) for r in cells)])) for i, c in enumerate(result.columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v[:60].ljust(w) for v, w in zip(r, widths, strict=True)))
    click.echo(f"({len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}, {result.elapsed_ms:.1f} ms){'  ' + note if note else ''}")


@cli.command("export")
@click.argument("what", type=click.Choice(["bundles", "related"]))
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "jsonl", "parquet"]), help="csv / parquet: flat, one row per item; jsonl: one nested answer per anchor.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output file (written atomically; a rerun resumes an interrupted export).")
@click.option("--scene", help="Only this scene's products (id or name); bundles follow its role order.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(RELATION_KINDS), help="related: relation kind(s), repeatable [default: complement].")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="related: items per anchor and kind.")
@click.option("--size", default=3, show_default=True, type=click.IntRange(2, 6), help="bundles: items per bundle, anchor included.")
@click.option("--budget", type=float, help="bundles: the most a bundle may cost at full price.")
@click.option("--mix", help="bundles: sales roles of the add-ons in order, e.g. hero+profit.")
@click.option("--discount", type=float, help="bundles: discount for the suggested price (0.1 = 10 %).")
@click.option("--chunk-size", default=500, show_default=True, type=click.IntRange(1, 1_000_000), help="Anchors per resumable chunk.")
@click.option("--bom", is_flag=True, help="csv: start with a UTF-8 byte-order mark, so Excel opens Chinese titles right.")
@click.option("--no-formula-escape", "raw_csv", is_flag=True, help="csv: write text cells as they are; by default a text cell starting with = + - @ tab or CR gets a leading ' so spreadsheets do not run it as a formula (numbers are never changed).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the export summary as JSON.")
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
def export_cmd(
    what: str, fmt: str, out: Path, scene: str | None, kinds: tuple[str, ...], k: int, size: int,
    budget: float | None, mix: str | None, discount: float | None, chunk_size: int, bom: bool, raw_csv: bool,
    quiet: bool, as_json: bool, home: str | None, store: str | None,
) -> None:  # fmt: skip
    """Export WHAT (bundles or related) for every product, in product_id order, through the same
    code path as `tiein bundle` / `tiein related` and the API. Columns: README.md "Batch export".

    \b
      tiein export bundles --format parquet --out bundles.parquet
      tiein export related --format csv --out related.csv --kind complement --kind substitute -k 5"""
    from tiein.export import export

    st = _open_store(home, store)
    bar = TqdmProgress(enabled=not quiet)
    try:
        result = export(
            st, what, out, fmt=fmt, kinds=list(kinds) or None, k=k, size=size, scene=scene, budget=budget,
            mix=mix, discount=discount, chunk_size=chunk_size, bom=bom, formula_escape=not raw_csv, progress=bar,
        )  # fmt: skip
    finally:
        bar.close()
        st.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    resumed = f", {result.chunks_reused} of {result.chunks} chunks resumed" if result.chunks_reused else ""
    click.echo(f"wrote {result.path}: {result.rows:,} rows for {result.anchors:,} products in {result.seconds:.1f} s{resumed}")


@cli.command()
@click.option("--home", help=HOME_HELP)
@click.option("--store", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def rollback(home: str | None, store: str | None, as_json: bool) -> None:
    """Answer with the previous build or update again (graph, search index and update state
    together); run it twice to return. The home keeps one generation before the current one."""
    from tiein.rollback import rollback as run_rollback

    result = run_rollback(_home(home), store)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(f"rolled back to generation {result.current} (built {result.built_at}); "
                   f"`tiein rollback` again returns to {result.previous}")


@cli.command()
def datasets() -> None:
    """The ready datasets (read from ../shared/data or TIEIN_DATA)."""
    from tiein import loaders
    for name, desc in loaders.DATASETS.items():
        click.echo(f"{name:<18} {desc}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, like every other error
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TieinError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2 if exc.status < 500 else 1)
    except KeyboardInterrupt:
        click.echo("interrupted; the previous graph is untouched", err=True)
        sys.exit(130)
    except OSError as exc:  # disk full, permission denied, ... where no check caught it first
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line; the traceback with TIEIN_DEBUG=1
        if os.environ.get("TIEIN_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(f"error: internal error ({type(exc).__name__}: {first}); TIEIN_DEBUG=1 shows the traceback", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

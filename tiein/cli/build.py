"""Commands that write the home: build, update, rollback (and the ready datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tiein.cli.base import (
    DATASET_NAMES,
    _home,
    _open_store,
    _print_product_block,
    _print_summary,
    cli,
    json_option,
    map_fields_help,
    memory_budget_option,
    where_options,
)
from tiein.cli.display import TqdmProgress
from tiein.model import MINING


@cli.command(epilog_fn=map_fields_help)
@click.option(
    "--dataset",
    type=click.Choice(DATASET_NAMES),
    help="A ready dataset from ../shared/data (see `tiein datasets`).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the ready datasets live [env TIEIN_DATA; default ../shared/data].",
)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file: CSV/TSV, JSON lines (.gz), Parquet or XLSX; UTF-8/BOM/GBK detected.",
)
@click.option(
    "--orders",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Order lines: order id, product id, [quantity, customer, time].",
)
@click.option(
    "--views",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Browsing events: session/user, product, [time, event].",
)
@click.option(
    "--pairs",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pairs you list yourself: src, dst, kind (complement/substitute, also_bought/also_viewed, 搭配/替代); "
    "evidence, and the labels the substitute-vs-complement classifier learns from.",
)
@click.option(
    "--sets",
    "sets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Content sets: set id, product id, [kind video/live/outfit/manual (视频/直播/穿搭/手动), weight, time]: "
    "products shown together in a video, livestream or outfit; evidence of their own (docs/building.md).",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML/JSON column mapping for your files (see docs/building.md).",
)
@click.option(
    "--map",
    "map_pairs",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Map one column, e.g. --map product_id=StockCode (repeatable; the fields are listed below).",
)
@where_options
@click.option(
    "--model",
    help="Embedding model: packaged alias or any sentence-transformers name/path [default: multilingual USE, offline].",
)
@click.option(
    "--no-embeddings",
    is_flag=True,
    help="Skip title embeddings (substitutes then rely on co-view and categories only).",
)
@click.option(
    "--min-count",
    default=MINING.min_count,
    show_default=True,
    type=click.IntRange(1),
    help="Minimum co-purchase/co-view count for a pair.",
)
@click.option(
    "--max-basket",
    default=MINING.max_basket,
    show_default=True,
    type=click.IntRange(2),
    help="Baskets with more distinct items are skipped when pairing.",
)
@click.option(
    "--after-window",
    default=MINING.after_window_days,
    show_default=True,
    type=click.IntRange(0),
    help="Days within which a later purchase counts as 'bought after'.",
)
@click.option(
    "--min-next",
    default=3,
    show_default=True,
    type=click.IntRange(1),
    help="Customers who bought A, then B (within --after-window) a 'next' relation A → B needs.",
)
@click.option(
    "--threads", type=click.IntRange(1), help="CPU threads for mining and embeddings [default: all]."
)
@memory_budget_option
@click.option(
    "--mining",
    type=click.Choice(["numpy", "spark"]),
    default="numpy",
    show_default=True,
    help="Where pairs are mined and candidates scored and typed: numpy (one machine, fastest) or spark (pip install 'tiein[spark]' + Java; master from TIEIN_SPARK_MASTER, else local; the same graph, docs/scale-out.md).",
)
@click.option(
    "--scenes",
    "scenes_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML/JSON scenes file (露营 / camping: tent → chair → lamp …); see docs/scenes.md. Without it scenes are discovered.",
)
@click.option("--no-scenes", is_flag=True, help="Do not discover scenes (a --scenes file is still used).")
@click.option(
    "--calendar",
    metavar="FILE|builtin",
    help="Season windows: a CSV/YAML calendar (name, zh, en, from, to; docs/relations.md, Seasons) or 'builtin' "
    "(春节, 618, 双11, 双12, Christmas …) [default: the twelve months].",
)
@click.option(
    "--season-prior",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seasons: co-purchases at the year-round rate each window is shrunk with (larger: fewer seasonal pairs).",
)
@click.option(
    "--no-season", is_flag=True, help="No season evidence on the relations (at= then changes nothing)."
)
@click.option(
    "--show",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="After the build, print the N most-ordered products with their complements and substitutes.",
)
@click.option(
    "--min-matched",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Refuse the build when fewer order lines than this share are for catalog products (a wrong --map).",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Switch to the new graph even if it kept no products, matched few order lines or found no basket with two products.",
)
@json_option("Print the build summary as JSON.")
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bars or spinners (never drawn anyway when stderr is not a terminal).",
)
def build(
    dataset: str | None,
    data_dir: Path | None,
    catalog: Path | None,
    orders: Path | None,
    views: Path | None,
    pairs: Path | None,
    sets_file: Path | None,
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
    memory_budget: int | None,
    mining: str,
    scenes_file: Path | None,
    no_scenes: bool,
    calendar: str | None,
    season_prior: float,
    no_season: bool,
    show: int,
    min_matched: float,
    allow_empty: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build the relation graph from a ready dataset or your own files.

    The store's graph is replaced atomically: a failed build leaves the previous graph as it was.
    """
    from tiein.checks import Floors
    from tiein.errors import ConfigError
    from tiein.next_purchase import NextConfig
    from tiein.options import BuildOptions
    from tiein.pipeline import build as run_build
    from tiein.season import SeasonConfig, load_calendar

    if not dataset and not (catalog or orders or views):
        raise ConfigError("say what to build from: --dataset NAME, or --catalog/--orders/--views files")
    if dataset and (catalog or orders or views or pairs):
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
        pairs=pairs,
        sets=sets_file,
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
        memory_budget=memory_budget,
        mining=mining,
        scenes=scenes_file,
        discover_scenes=not no_scenes,
        season=SeasonConfig(
            enabled=not no_season,
            prior=season_prior,
            calendar=load_calendar(calendar) if calendar else (),
            calendar_name=calendar,
        ),
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
                _print_product_block(st, pid, _home(home))
        finally:
            st.close()


@cli.command(epilog_fn=map_fields_help)
@click.option(
    "--orders",
    type=click.Path(dir_okay=False, path_type=Path),
    help="New order lines (lines already in the graph are skipped: dedup by order id + product id).",
)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="New or changed products: only the columns the file has change (a product_id,stock file changes stock only).",
)
@click.option("--views", type=click.Path(dir_okay=False, path_type=Path), help="New browsing events.")
@click.option(
    "--sets",
    "sets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Content sets (as for build): a set id in the file replaces that set; the others stay.",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML/JSON column mapping for these files (as for build).",
)
@click.option(
    "--map",
    "map_pairs",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Map one column, e.g. --map stock=qty (repeatable; the fields are listed below).",
)
@where_options
@click.option(
    "--threads", type=click.IntRange(1), help="CPU threads for mining and embeddings [default: all]."
)
@json_option("Print the update summary as JSON.")
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bars or spinners (never drawn anyway when stderr is not a terminal).",
)
def update(
    orders: Path | None,
    catalog: Path | None,
    views: Path | None,
    sets_file: Path | None,
    mapping_file: Path | None,
    map_pairs: tuple[str, ...],
    home: str | None,
    store: str | None,
    threads: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Add new orders, products, price and stock changes to the last build, without rebuilding.

    Pair statistics are merged, only new titles are embedded, and only what changed is written
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
        catalog=catalog,
        orders=orders,
        views=views,
        sets=sets_file,
        mapping=mapping,
        home=_home(home),
        store_url=store,
        threads=threads,
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
    added = [
        f"{c[k]:,} {label}"
        for k, label in (
            ("order_lines_added", "new order lines"),
            ("products_added", "new products"),
            ("products_changed", "changed products"),
            ("view_rows_added", "new view events"),
            ("sets_added", "new content sets"),
            ("sets_replaced", "content sets replaced"),
        )
        if c.get(k)
    ]
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


@cli.command()
@where_options
@json_option()
def rollback(home: str | None, store: str | None, as_json: bool) -> None:
    """Switch back to the previous build or update (graph, search index and update state together).

    Run it twice to return. The home keeps one generation before the current one."""
    from tiein.rollback import rollback as run_rollback

    result = run_rollback(_home(home), store)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(
            f"rolled back to generation {result.current} (built {result.built_at}); "
            f"`tiein rollback` again returns to {result.previous}"
        )


@cli.command()
def datasets() -> None:
    """List the ready datasets (read from ../shared/data or TIEIN_DATA)."""
    from tiein import loaders

    for name, desc in loaders.DATASETS.items():
        click.echo(f"{name:<18} {desc}")

"""The build: files → statistics → embeddings → relations → store.

This is the one wiring place (style.md habit 3): it builds the encoder and the store and hands
them to the stages. Each stage is a library function of its own module; this module only runs them
in order, times them and reports progress.

Home directory (``--home``, env ``TIEIN_HOME``, default ``./tiein-data``): see tiein/home.py for
its layout and the one switch that makes a build visible (graph + index + inputs together, or
nothing). Before anything is written the build is checked (tiein/checks.py): a build that kept no
products, matched too few order lines or found no basket with two products refuses.

The stages after mining and embedding (shared with ``tiein update``) are in tiein/stages.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.basket_pairs import Handed
from tiein.checks import check_build
from tiein.errors import ConfigError
from tiein.faults import fault
from tiein.features import with_sales_roles
from tiein.graph import open_store
from tiein.home import INDEX, INPUTS, Staging, home_lock, recover_store, switch
from tiein.mining import PairCounts, mine_pairs
from tiein.model import GraphData
from tiein.options import (  # noqa: F401  (re-exported: the build's public names)
    DISCOVERED_SCENES_FILE,
    MINING_BACKENDS,
    BuildOptions,
    Progress,
    default_home,
    default_store_url,
)
from tiein.product_type import with_product_types
from tiein.scenes import load_scenes
from tiein.stages import _Timer, graph_from_stats, next_relations  # noqa: F401  (re-exported)
from tiein.state import write_counts, write_state
from tiein.sysmem import (
    big_blocks_mapped,
    current_budget,
    give_back_memory,
    memory_budget,
    peak_memory,
    reset_peak_memory,
)


@dataclass
class BuildSummary:
    source: str
    store: str
    counts: dict[str, int] = field(default_factory=dict)
    relations: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    load_report: list[str] = field(default_factory=list)
    model: str | None = None
    top_products: list[str] = field(default_factory=list)
    # {"source": "user" | "discovered" | None, "count", "members", "file", "empty_roles": [...]}
    scenes: dict[str, Any] = field(default_factory=dict)
    # how complements were scored: the learnt weights and validation AUC, or why not (tiein.ranker)
    ranker: dict[str, Any] = field(default_factory=dict)
    # substitute vs complement learnt from listed pairs (tiein.typer): cross-validated AUC, or why not
    type_classifier: dict[str, Any] = field(default_factory=dict)
    # products with a type and orders: how many lacked item-level complements, how many the
    # type-level fallback filled (tiein.type_fallback)
    coverage: dict[str, Any] = field(default_factory=dict)
    # season evidence: windows, pairs counted, relations marked seasonal (tiein.season)
    season: dict[str, Any] = field(default_factory=dict)
    # the embedded store's early part (graph/ladybug_staged.py): tables loaded beside the last
    # steps, the thread's seconds, and the early table that changed when it all had to be reloaded
    staged: dict[str, Any] = field(default_factory=dict)
    # the process's peak resident bytes during the build, the budget it had (bytes, or None) and
    # the embedding worker's own peak
    memory: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "store": self.store,
            "counts": self.counts,
            "relations": self.relations,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "load_report": self.load_report,
            "model": self.model,
            "top_products": self.top_products,
            "scenes": self.scenes,
            "ranker": self.ranker,
            "type_classifier": self.type_classifier,
            "coverage": self.coverage,
            "season": self.season,
            "staged": self.staged,
            "memory": self.memory,
        }


def _phase(progress: Progress | None, phase: str) -> Progress | None:
    """Prefix a stage's own step names with the pipeline phase ("store · CO_PURCHASED")."""
    if progress is None:
        return None
    report = progress
    return lambda step, done, total: report(f"{phase} · {step}", done, total)


def _miner(opts: BuildOptions, scope: ExitStack) -> Callable[..., Any]:
    """The pair miner of ``opts.mining``: :func:`tiein.mining.mine_pairs`, or the Spark backend bound
    to a session: the active one, else one started here and stopped when ``scope`` (the build)
    ends, so that the classification step runs on it too (tiein.stages)."""
    if opts.mining == "spark":
        from tiein.spark_mining import mine_pairs_spark
        from tiein.spark_mining.session import session_for

        return partial(mine_pairs_spark, spark=scope.enter_context(session_for(opts.threads)))
    return partial(mine_pairs, threads=opts.threads)  # --threads reaches the numpy miner


def build(opts: BuildOptions, progress: Progress | None = None) -> BuildSummary:
    """Run the whole build and switch the home to it atomically (tiein/home.py). Raises
    TieinError subclasses for user mistakes (bad file, unknown dataset, bad mapping, a build
    under ``opts.floors``) before anything is written."""

    check_options(opts)
    with (
        memory_budget(opts.memory_budget) as budget,
        big_blocks_mapped(),  # freed arrays go back to the system at once (lower peaks)
        home_lock(Path(opts.home)),
        ExitStack() as scope,  # scope: a Spark session, if one is started
    ):
        reset_peak_memory()
        summary = _build(opts, progress, scope)
        summary.memory = {"budget": budget, "peak": peak_memory(), **summary.memory}
        return summary


def check_options(opts: BuildOptions) -> None:
    """ConfigError for option values no stage could use, before anything runs."""

    problems = []
    if opts.threads is not None and opts.threads < 1:
        problems.append(f"--threads must be 1 or more, got {opts.threads}")
    for name, value, low in (("--min-count", opts.min_count, 1), ("--max-basket", opts.max_basket, 2)):
        if value < low:
            problems.append(f"{name} must be {low} or more, got {value}")
    if opts.after_window_days is not None and opts.after_window_days < 0:
        problems.append(f"--after-window must be 0 days or more, got {opts.after_window_days}")
    if opts.memory_budget is not None and opts.memory_budget < 1:
        problems.append(f"--memory-budget must be a positive size, got {opts.memory_budget}")
    current_budget()  # ConfigError for a TIEIN_MEMORY_BUDGET that is not a size
    if problems:
        raise ConfigError("; ".join(problems))


def _build(opts: BuildOptions, progress: Progress | None, scope: ExitStack) -> BuildSummary:
    from tiein import loaders

    timer = _Timer()
    t_all = time.perf_counter()
    home = Path(opts.home)
    store_url = opts.store_url or default_store_url(home)
    recover_store(home, store_url)  # finish or undo what a crashed command left
    # a bad scenes file fails at once, before the slow stages
    user_scenes = load_scenes(opts.scenes) if opts.scenes is not None else None
    if opts.mining not in MINING_BACKENDS:
        raise ConfigError(f"unknown mining backend {opts.mining!r} (one of: {', '.join(MINING_BACKENDS)})")

    with timer.step("load"):
        if opts.dataset:
            loaded = loaders.load_dataset(
                opts.dataset, data_dir=opts.data_dir, progress=_phase(progress, "load")
            )
        else:
            loaded = loaders.load_files(
                catalog=opts.catalog,
                orders=opts.orders,
                views=opts.views,
                pairs=opts.pairs,
                mapping=opts.mapping,
                progress=_phase(progress, "load"),
                sets=opts.sets,
            )
        if opts.dataset and opts.sets is not None:  # content sets next to a ready dataset
            from tiein.loaders.sets import read_sets

            loaded.sets = read_sets(
                opts.sets, opts.mapping or loaders.Mapping(), loaded.products, loaded.report
            )
    products = loaded.products
    # titles not yet in the embedding cache are embedded in a worker process while the orders are
    # mined (tiein/embeddings/background.py); a rebuild with every title cached loads no model.
    # Started after the files are read, not before: on two cores the encoder's imports beside the
    # reading slowed it as much as they gained (Online Retail 27.4 -> 28.0-30.8 s, 4M lines 113 -> 115 s)
    pending = cached = None
    ids: list[str] | None = None
    if opts.embeddings and products.num_rows:
        from tiein import embeddings
        from tiein.embeddings.background import PendingVectors
        from tiein.embeddings.products import cached_vectors

        cache_key = embeddings.model_key(opts.model)
        texts = embeddings.product_texts(products)
        product_ids: list[str] = products.column("product_id").to_pylist()
        ids = product_ids
        cached = cached_vectors(texts, home / "cache", cache_key)

        def index_of(vectors: Any, name: str) -> tuple[Any, pa.Table]:
            """The FAISS index of the titles and each product's nearest titles."""
            index = embeddings.ProductIndex.build(product_ids, vectors, name, threads=opts.threads)
            k = min(opts.neighbours_k, max(1, len(product_ids) - 1))
            return index, index.neighbours(k, threads=opts.threads)

        if cached is None:  # the neighbour search runs on its watching thread too
            pending = PendingVectors(
                texts, opts.model, threads=opts.threads, cache_dir=home / "cache", then=index_of
            )
            scope.callback(pending.cancel)  # a build that fails stops the worker process
    with timer.step("roles"):
        products = with_product_types(with_sales_roles(products, loaded.orders, opts.roles))

    # the numpy miner also hands back its unfiltered counts, which the state keeps (tiein/state.py):
    # the lines are not counted a second time there
    keep = {"keep_counts": True} if opts.mining == "numpy" else {}
    counts_orders = counts_views = None
    with timer.step("mine"):
        mine_pairs = _miner(opts, scope)
        co_purchase = None
        timeline = None
        mining_report: dict[str, Any] = {}
        if loaded.orders.num_rows:
            mined = mine_pairs(
                loaded.orders,
                min_count=opts.min_count,
                max_basket=opts.max_basket,
                after_window_days=opts.after_window_days,
                progress=_phase(progress, "mine"),
                **keep,
            )
            co_purchase, mining_report, timeline = mined.pairs, mined.report, mined.timeline
            counts_orders = getattr(mined, "counts", None)
            del mined  # the counts are held once, and only until the state is written
        co_view = None
        if loaded.views.num_rows:
            mined_v = mine_pairs(
                loaded.views,
                basket_col="session_id",
                customer_col=None,
                ts_col=None,
                min_count=opts.min_count,
                max_basket=opts.max_basket,
                after_window_days=None,
                progress=_phase(progress, "co-view"),
                **keep,
            )
            co_view = mined_v.pairs
            counts_views = getattr(mined_v, "counts", None)
            del mined_v
        # the new generation's state directory, made now: the unfiltered counts go into it at
        # once and are let go, not held through every later step (4M lines: ~0.6 GB)
        state_id = uuid.uuid4().hex  # ties the generation's inputs and index (tiein/home.py) to this graph
        stage = Staging(home, state_id)
        scope.callback(stage.discard)  # a failure before the commit removes it (after it: a no-op)
        counts_written = None
        if keep:  # the numpy miner's counts (an empty table's are empty)
            counts_written = write_counts(
                stage.path / INPUTS,
                counts_orders if counts_orders is not None else PairCounts.empty(),
                counts_views if counts_views is not None else PairCounts.empty(),
            )
            counts_orders = counts_views = None

    # "next purchase" needs only the mined orders: run while the titles are still being embedded
    with timer.step("next"):
        next_purchase = next_relations(
            opts,
            products,
            loaded.orders,
            co_purchase,
            timeline,
            int(mining_report.get("returning_customers", 0)),
        )

    vectors = None
    neighbours = None
    model_name: str | None = None
    index = None
    if opts.embeddings and products.num_rows:
        from tiein import embeddings

        with timer.step("embed"):  # the time still waited for the background thread
            if pending is not None:
                vectors, model_name = pending.result(_phase(progress, "embed"))
            else:  # every title was in the cache
                assert cached is not None
                vectors, model_name = cached, cache_key
        with timer.step("index"):
            if pending is not None:
                (index, neighbours), pending.extra = pending.extra, None
            else:
                index, neighbours = index_of(vectors, model_name)
            # into the new generation now: the search index is not held through the later steps
            index.save(stage.path / INDEX)
            index = None
    # the embedding worker's own peak (its process ended; not in this process's peak)
    embedding_peak = pending.peak if pending is not None else None

    meta = {
        "source": loaded.name,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_name,
        "relation_config": opts.relations.to_dict(),
        "min_count": opts.min_count,
        "after_window_days": opts.after_window_days,
        "next_config": opts.next_purchase.to_dict(),
        "role_config": opts.roles.to_dict(),
        "state_id": state_id,
    }
    # the embedded store loads what no later step changes (products, pair edges, "next purchase")
    # on a thread while the evidence steps run (graph/ladybug_staged.py); Neo4j loads it all at once
    store = scope.enter_context(closing(open_store(store_url)))
    staged: list[Any] = []

    def early(part: GraphData, kinds: tuple[str, ...]) -> None:
        stage = getattr(store, "stage", None)
        load = stage(part, kinds) if stage is not None else None
        if load is not None:  # None: not enough memory to load beside the next steps
            staged.append(load)
            scope.callback(load.discard)  # a failure before the switch removes it

    # handed over: let go inside once the pair edges are known (the summary keeps the count)
    n_co_purchase = co_purchase.num_rows if co_purchase is not None else 0
    handed_pairs = Handed(co_purchase) if co_purchase is not None else None
    co_purchase = None
    data, report = graph_from_stats(
        opts,
        home,
        products,
        orders=loaded.orders,
        co_purchase=handed_pairs,
        co_view=co_view,
        listed=loaded.listed_pairs,
        timeline=timeline,
        returning_customers=int(mining_report.get("returning_customers", 0)),
        neighbours=neighbours,
        ids=ids,
        vectors=vectors,
        user_scenes=user_scenes,
        meta=meta,
        timer=timer,
        sets=loaded.sets if loaded.sets.num_rows else None,
        segments=loaded.segments if loaded.segments.num_rows else None,
        next_purchase=next_purchase,
        early=early,
    )
    check_build(opts.floors, loaded, data.relations)

    # the new generation's index and inputs, not yet visible (on a failure the scope removes the
    # staging directory, as from mining on)
    with timer.step("state"):
        write_state(
            stage.path / INPUTS,
            opts,
            source=loaded.name,
            derived_catalog=loaded.report.products_derived_from == "orders",
            products=loaded.products,
            orders=loaded.orders,
            views=loaded.views,
            listed_pairs=loaded.listed_pairs,
            data=data,
            model=model_name,
            neighbours=neighbours,
            counts_orders=counts_orders,
            counts_views=counts_views,
            sets=loaded.sets,
            segments=loaded.segments,
            counts_written=counts_written,
        )
        fault("build.after_stage")
        stage.commit()
    # what the summary says of the inputs, taken now: the orders are not held through the store load
    summary = BuildSummary(source=loaded.name, store=store_url, model=model_name)
    summary.counts = {
        "products": products.num_rows,
        "order_lines": loaded.orders.num_rows,
        "baskets": int(mining_report.get("baskets", 0)),
        "co_purchase_pairs": n_co_purchase,
        "co_view_pairs": co_view.num_rows if co_view is not None else 0,
        "listed_pairs": loaded.listed_pairs.num_rows,
        "candidates": report["candidates"],
    }
    relations = data.relations
    kinds = pc.value_counts(relations.column("kind")).to_pylist() if relations.num_rows else []
    summary.relations = {d["values"]: int(d["counts"]) for d in kinds}
    summary.load_report = loaded.report.lines()
    summary.top_products = top_products(loaded.orders, relations, 5)
    # what only the state and the summary needed: freed before the store load, the build's peak
    # of memory (the orders: 16M lines ~0.7 GB)
    del loaded, relations
    counts_orders = counts_views = index = vectors = neighbours = co_purchase = co_view = timeline = None
    pending = cached = None  # they hold the vectors and the search index too
    give_back_memory(collect=True)
    fault("build.before_store")
    with timer.step("store"):  # the commit point: the store switches to the new graph
        if staged:
            staged[0].finish(data, progress=_phase(progress, "store"))
        else:
            store.replace(data, progress=_phase(progress, "store"))
    fault("build.after_store")
    switch(home, state_id, store_url)

    summary.seconds = dict(timer.seconds)
    summary.seconds["total"] = time.perf_counter() - t_all
    summary.scenes = report["scenes"]
    summary.ranker = report["ranker"]
    summary.type_classifier = report["type_classifier"]
    summary.coverage = report["coverage"]
    summary.season = report["season"]
    summary.memory = {
        "embedding_peak": embedding_peak,
    }
    if staged:
        load = staged[0]
        summary.staged = {"tables": sorted(load.names), "seconds": load.seconds, "reloaded": load.reloaded}
    summary.counts["scenes"] = report["scenes"]["count"]
    seg_report = data.meta.get("segments")
    if isinstance(seg_report, dict):  # only with --map segment=…: per-segment statistics kept
        summary.counts["segments"] = len(seg_report.get("segments", {}))
        summary.counts["segment_relations"] = int(seg_report.get("with_segments", 0))
    if "content_sets" in report:  # only with --sets: a build without them reports as before
        summary.counts["sets"] = report["content_sets"]["sets"]
        summary.counts["set_pairs"] = report["content_sets"]["pairs"]
    return summary


def top_products(orders: pa.Table, relations: pa.Table, n: int) -> list[str]:
    """The ``n`` most-ordered products that have complements (for a demo); falls back to products
    with the most relations when there are no orders."""
    import duckdb

    con = duckdb.connect()
    con.register("rel", relations.select(["src", "kind"]))
    if orders.num_rows:
        con.register("o", orders.select(["order_id", "product_id"]))
        q = """
            SELECT o.product_id FROM o
            WHERE o.product_id IN (SELECT src FROM rel WHERE kind = 'complement')
              AND o.product_id IN (SELECT src FROM rel WHERE kind = 'substitute')
            GROUP BY o.product_id ORDER BY count(DISTINCT o.order_id) DESC, o.product_id LIMIT ?
        """
    else:
        q = "SELECT src FROM rel GROUP BY src ORDER BY count(*) DESC, src LIMIT ?"
    rows = con.execute(q, [n]).fetchall()
    con.close()
    return [r[0] for r in rows]

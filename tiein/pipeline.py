"""The build: files → statistics → embeddings → relations → store.

This is the one wiring place (style.md habit 3): it builds the encoder and the store and hands
them to the stages. Each stage is a library function of its own module; this module only runs them
in order, times them and reports progress.

Home directory (``--home``, env ``TIEIN_HOME``, default ``./tiein-data``): see tiein/home.py for
its layout and the one switch that makes a build visible (graph + index + inputs together, or
nothing). Before anything is written the build is checked (tiein/checks.py): a build that kept no
products, matched too few order lines or found no basket with two products refuses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein import content_sets
from tiein.checks import check_build
from tiein.errors import ConfigError
from tiein.faults import fault
from tiein.features import candidate_features, next_candidates, top_pairs, with_sales_roles
from tiein.graph import open_store
from tiein.home import INDEX, INPUTS, Staging, home_lock, recover_store, switch
from tiein.mining import mine_pairs
from tiein.model import PAIR_STATS, GraphData
from tiein.next_purchase import classify_next
from tiein.options import (  # noqa: F401  (re-exported: the build's public names)
    DISCOVERED_SCENES_FILE,
    MINING_BACKENDS,
    BuildOptions,
    Progress,
    default_home,
    default_store_url,
)
from tiein.product_type import with_product_types
from tiein.ranker import feature_dict, fit_from_orders, with_basket_weights
from tiein.relations import classify, score_features
from tiein.scenes import assign_members, discover_scenes, dump_scenes, empty_roles, load_scenes
from tiein.season import season_evidence
from tiein.segments import segment_evidence
from tiein.state import write_state
from tiein.type_fallback import type_complements
from tiein.typer import type_probability


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
        }


def _phase(progress: Progress | None, phase: str) -> Progress | None:
    """Prefix a stage's own step names with the pipeline phase ("store · CO_PURCHASED")."""
    if progress is None:
        return None
    report = progress
    return lambda step, done, total: report(f"{phase} · {step}", done, total)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


@contextmanager
def _miner(opts: BuildOptions) -> Iterator[Callable[..., Any]]:
    """The pair miner of ``opts.mining``: :func:`tiein.mining.mine_pairs`, or the Spark backend bound
    to a session (started here and stopped after mining, unless one is already active)."""
    if opts.mining == "spark":
        from tiein.spark_mining import spark_miner

        with spark_miner(opts.threads) as mine:
            yield mine
    else:
        yield partial(mine_pairs, threads=opts.threads)  # --threads reaches the numpy miner


def build(opts: BuildOptions, progress: Progress | None = None) -> BuildSummary:
    """Run the whole build and switch the home to it atomically (tiein/home.py). Raises
    TieinError subclasses for user mistakes (bad file, unknown dataset, bad mapping, a build
    under ``opts.floors``) before anything is written."""

    check_options(opts)
    with home_lock(Path(opts.home)):
        return _build(opts, progress)


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
    if problems:
        raise ConfigError("; ".join(problems))


def _build(opts: BuildOptions, progress: Progress | None) -> BuildSummary:
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
    with timer.step("roles"):
        products = with_product_types(with_sales_roles(products, loaded.orders, opts.roles))

    with timer.step("mine"), _miner(opts) as mine_pairs:
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
            )
            co_purchase, mining_report, timeline = mined.pairs, mined.report, mined.timeline
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
            )
            co_view = mined_v.pairs

    ids: list[str] | None = None
    vectors = None
    neighbours = None
    model_name: str | None = None
    index = None
    if opts.embeddings and products.num_rows:
        from tiein import embeddings
        from tiein.embeddings.products import cached_vectors

        with timer.step("embed"):
            # every title already in the cache (a rebuild): no model load, no torch import
            model_name = embeddings.model_key(opts.model)
            vectors = cached_vectors(embeddings.product_texts(products), home / "cache", model_name)
            if vectors is None:
                encoder = embeddings.load_encoder(opts.model, threads=opts.threads)
                model_name = encoder.name
                vectors = embeddings.embed_products(
                    products, encoder, cache_dir=home / "cache", progress=_phase(progress, "embed")
                )
            ids = products.column("product_id").to_pylist()
        with timer.step("index"):
            index = embeddings.ProductIndex.build(ids, vectors, model_name, threads=opts.threads)
            neighbours = index.neighbours(min(opts.neighbours_k, max(1, len(ids) - 1)), threads=opts.threads)

    state_id = uuid.uuid4().hex  # ties the generation's inputs and index (tiein/home.py) to this graph
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
    data, report = graph_from_stats(
        opts,
        home,
        products,
        orders=loaded.orders,
        co_purchase=co_purchase,
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
    )
    check_build(opts.floors, loaded, data.relations)

    with timer.step("state"):  # the new generation's index and inputs, not yet visible
        stage = Staging(home, state_id)
        try:
            if index is not None:
                index.save(stage.path / INDEX)
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
                sets=loaded.sets,
                segments=loaded.segments,
            )
            fault("build.after_stage")
            stage.commit()
        except BaseException:
            stage.discard()
            raise
    fault("build.before_store")
    with timer.step("store"):  # the commit point: the store switches to the new graph
        store = open_store(store_url)
        try:
            store.replace(data, progress=_phase(progress, "store"))
        finally:
            store.close()
    fault("build.after_store")
    switch(home, state_id, store_url)

    summary = BuildSummary(source=loaded.name, store=store_url, model=model_name)
    summary.counts = {
        "products": products.num_rows,
        "order_lines": loaded.orders.num_rows,
        "baskets": int(mining_report.get("baskets", 0)),
        "co_purchase_pairs": co_purchase.num_rows if co_purchase is not None else 0,
        "co_view_pairs": co_view.num_rows if co_view is not None else 0,
        "listed_pairs": loaded.listed_pairs.num_rows,
        "candidates": report["candidates"],
    }
    relations = data.relations
    kinds = pc.value_counts(relations.column("kind")).to_pylist() if relations.num_rows else []
    summary.relations = {d["values"]: int(d["counts"]) for d in kinds}
    summary.seconds = dict(timer.seconds)
    summary.seconds["total"] = time.perf_counter() - t_all
    summary.load_report = loaded.report.lines()
    summary.top_products = top_products(loaded.orders, relations, 5)
    summary.scenes = report["scenes"]
    summary.ranker = report["ranker"]
    summary.type_classifier = report["type_classifier"]
    summary.coverage = report["coverage"]
    summary.season = report["season"]
    summary.counts["scenes"] = report["scenes"]["count"]
    seg_report = data.meta.get("segments")
    if isinstance(seg_report, dict):  # only with --map segment=…: per-segment statistics kept
        summary.counts["segments"] = len(seg_report.get("segments", {}))
        summary.counts["segment_relations"] = int(seg_report.get("with_segments", 0))
    if "content_sets" in report:  # only with --sets: a build without them reports as before
        summary.counts["sets"] = report["content_sets"]["sets"]
        summary.counts["set_pairs"] = report["content_sets"]["pairs"]
    return summary


def graph_from_stats(
    opts: BuildOptions,
    home: Path,
    products: pa.Table,
    *,
    orders: pa.Table,
    co_purchase: pa.Table | None,
    co_view: pa.Table | None,
    listed: pa.Table,
    timeline: pa.Table | None,
    returning_customers: int,
    neighbours: pa.Table | None,
    ids: list[str] | None,
    vectors: Any,
    user_scenes: list[Any] | None,
    meta: dict[str, Any],
    timer: _Timer,
    sets: pa.Table | None = None,
    segments: pa.Table | None = None,
) -> tuple[GraphData, dict[str, Any]]:
    """The stages after mining and embedding, shared by :func:`build` and :func:`tiein.update.update`
    (so an update gives what a build gives): classify the candidate pairs, "next purchase"
    relations, scenes, and each product's strongest pair edges; timed as classify, next, season, scenes,
    pairs. Returns the GraphData (with ``meta``) and a report: {"candidates": candidate pairs
    classified, "scenes": the scenes report}. ``sets`` (SETS, content sets): co-appearance mined
    over them (step "sets") enters the candidates, the scores and the evidence
    (:mod:`tiein.content_sets`); None changes nothing. ``segments`` (ORDER_SEGMENTS): each
    order's customer segment; relations get per-segment evidence (step "segments",
    :mod:`tiein.segments`); None changes nothing."""

    set_stats, set_report = None, None
    if sets is not None and sets.num_rows:
        with timer.step("sets"):
            set_stats, set_report = content_sets.set_pairs(
                sets, partial(mine_pairs, threads=opts.threads), max_basket=opts.max_basket
            )
            meta = {**meta, "content_sets": set_report}

    features_of = partial(
        candidate_features,
        products,
        co_view=co_view,
        listed=listed if listed.num_rows else None,
        neighbours=neighbours,
        ids=ids,
        vectors=vectors,
        threads=opts.threads,
        per_product=opts.candidates_per_product,
        sets=set_stats,
    )
    with timer.step("rank"):  # complement weights fitted on a time split of the shop's own orders
        ranker, ranker_report = fit_from_orders(
            products,
            orders,
            features=lambda pairs: features_of(co_purchase=pairs),
            min_count=opts.min_count,
            max_basket=opts.max_basket,
            after_window_days=opts.after_window_days,
            min_pair_count=opts.relations.min_pair_count,
            baseline=lambda f: score_features(f, opts.relations)["complement"],
            min_probability=opts.relations.min_probability,
            keep_per_src=opts.relations.keep_per_kind,
            threads=opts.threads,
            cfg=opts.ranker,
            relation_cfg=opts.relations,
        )
    meta = {**meta, "complement_ranker": ranker_report, "ranker_config": opts.ranker.to_dict()}
    with timer.step("classify"):
        features = features_of(co_purchase=co_purchase)
        if ranker is not None:  # the ranker's basket-size weighted counts, from all the orders
            features = with_basket_weights(features, orders, opts.max_basket, opts.relations.min_pair_count)
        if listed.num_rows:  # substitute vs complement learnt from the shop's own lists
            p_comp, typer_report = type_probability(feature_dict(features), listed)
            meta = {**meta, "type_classifier": typer_report}
            if p_comp is not None:
                features = features.append_column("p_complement", pa.array(p_comp, pa.float64()))
        relations = classify(features, opts.relations, ranker)
    with timer.step("types"):  # products without an item-level complement get their type's
        if orders.num_rows:
            fallback, fallback_report = type_complements(
                products, orders, relations, max_basket=opts.max_basket, cfg=opts.type_fallback
            )
            meta = {**meta, "type_fallback": fallback_report}
            if fallback.num_rows:
                relations = pa.concat_tables([relations, fallback])
    with timer.step("next"):
        if co_purchase is not None and timeline is not None and timeline.num_rows:
            next_report: dict[str, Any] = {}
            nxt = classify_next(
                next_candidates(products, co_purchase, timeline, min_count=opts.next_purchase.min_customers),
                returning_customers,
                opts.next_purchase,
                window_days=opts.after_window_days,
                orders=orders,
                report=next_report,
            )
            meta = {**meta, "next_purchase": next_report}
            if nxt.num_rows:
                relations = pa.concat_tables([relations, nxt])
    with timer.step("season"):  # per-window co-purchases of the kept pairs as season evidence
        relations, season_report = season_evidence(
            orders, relations, opts.season, max_basket=opts.max_basket, threads=opts.threads
        )
        meta = {**meta, "season": season_report}
    if segments is not None and segments.num_rows:
        with timer.step("segments"):  # per-segment co-purchases of the kept pairs (tiein.segments)
            seg_orders = orders.join(segments, "order_id", join_type="left outer")
            relations, segment_report = segment_evidence(
                seg_orders, relations, opts.segments, max_basket=opts.max_basket, threads=opts.threads
            )
            meta = {**meta, "segments": segment_report}
    if set_stats is not None and sets is not None:
        with timer.step("sets"):  # how often each relation's two products were shown together
            relations = content_sets.with_set_evidence(relations, set_stats, sets, opts.max_basket)
    with timer.step("scenes"):
        (scenes, members), scene_report = _scenes(opts, home, products, relations, user_scenes)
    with timer.step("pairs"):  # the CO_PURCHASED / CO_VIEWED edges: each product's strongest partners
        empty = PAIR_STATS.empty_table()
        data = GraphData(
            products=products,
            co_purchased=top_pairs(co_purchase, opts.graph_pairs_per_product)
            if co_purchase is not None
            else empty,
            co_viewed=top_pairs(co_view, opts.graph_pairs_per_product) if co_view is not None else empty,
            relations=relations,
            scenes=scenes,
            scene_members=members,
            meta=meta,
        )
    return data, {
        "candidates": features.num_rows,
        "scenes": scene_report,
        "ranker": ranker_report,
        "type_classifier": meta.get("type_classifier", {"fitted": False, "reason": "no listed pairs"}),
        "coverage": meta.get("type_fallback", {}),
        "season": season_report,
        **({"content_sets": set_report} if set_report is not None else {}),
    }


def _scenes(
    opts: BuildOptions, home: Path, products: pa.Table, relations: pa.Table, user_scenes: list[Any] | None
) -> tuple[tuple[pa.Table, pa.Table], dict[str, Any]]:
    """The scene tables of the build (user scenes win; otherwise discovered ones, also written to
    ``HOME/scenes.discovered.yaml`` for review) and the summary's report of them."""

    report: dict[str, Any] = {"source": None, "count": 0, "members": 0, "file": None, "empty_roles": []}
    if user_scenes is not None:
        defs, report["source"], report["file"] = user_scenes, "user", str(opts.scenes)
    elif opts.discover_scenes:
        defs = discover_scenes(products, relations, max_scenes=opts.max_scenes)
        report["source"] = "discovered"
        if not defs:
            report["note"] = (
                "no scenes discovered (no complements between different categories"
                + ("" if pc.any(pc.is_valid(products.column("category"))).as_py() else ", and no categories")
                + ")"
            )
            (home / DISCOVERED_SCENES_FILE).unlink(missing_ok=True)  # no stale file from an older build
        else:
            report["file"] = str(dump_scenes(defs, home / DISCOVERED_SCENES_FILE))
    else:
        defs = []
    tables = assign_members(products, defs)
    report["count"] = tables[0].num_rows
    report["members"] = tables[1].num_rows
    report["empty_roles"] = empty_roles(defs, tables[1])
    return tables, report


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

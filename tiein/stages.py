"""The stages after mining and embedding, shared by a build (tiein.pipeline) and an update
(tiein.update_recompute), so that an update gives what a build gives: the complement ranker,
classification, product-type fallback, next purchase, season and segment evidence, content sets,
scenes and each product's strongest pair edges, each timed under its own name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein import content_sets
from tiein.basket_pairs import Handed
from tiein.classify_buckets import bucket_count, classify_in_buckets, estimated_candidates
from tiein.features import candidate_features, next_candidates, top_pairs
from tiein.graph.build import in_store_order
from tiein.mining import mine_pairs
from tiein.model import PAIR_STATS, RELATIONS, GraphData
from tiein.next_purchase import classify_next
from tiein.options import DISCOVERED_SCENES_FILE, BuildOptions
from tiein.ranker import feature_dict, fit_from_orders, with_basket_weights
from tiein.relations import classify, score_features
from tiein.scenes import assign_members, discover_scenes, dump_scenes, empty_roles
from tiein.season import season_evidence
from tiein.segments import segment_evidence
from tiein.sysmem import _TRIM as _TRIM  # tests read it here
from tiein.sysmem import available_memory
from tiein.sysmem import give_back_memory as give_back_memory  # the timer calls it by this name
from tiein.type_fallback import type_complements
from tiein.typer import type_probability


class _Timer:
    """Seconds per named step; memory freed by a step is handed back when it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            give_back_memory()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def graph_from_stats(
    opts: BuildOptions,
    home: Path,
    products: pa.Table,
    *,
    orders: pa.Table,
    co_purchase: pa.Table | Handed | None,
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
    next_purchase: tuple[pa.Table, dict[str, Any] | None] | None = None,
    early: Callable[[GraphData, tuple[str, ...]], None] | None = None,
) -> tuple[GraphData, dict[str, Any]]:
    """The stages after mining and embedding, shared by :func:`build` and :func:`tiein.update.update`
    (so an update gives what a build gives): classify the candidate pairs, "next purchase"
    relations, scenes, and each product's strongest pair edges; timed as classify, next, season, scenes,
    pairs. Returns the GraphData (with ``meta``) and a report: {"candidates": candidate pairs
    classified, "scenes": the scenes report}. ``sets`` (SETS, content sets): co-appearance mined
    over them (step "sets") enters the candidates, the scores and the evidence
    (:mod:`tiein.content_sets`); None changes nothing. ``segments`` (ORDER_SEGMENTS): each
    order's customer segment; relations get per-segment evidence (step "segments",
    :mod:`tiein.segments`); None changes nothing. ``next_purchase``: what :func:`next_relations`
    returned, when the caller ran it earlier (the build does, while titles are embedded); None:
    computed here (step "next"). ``early``: called once, before the evidence steps, with the part of
    the graph no later step changes — the products, the pair edges and the relations of the kinds
    it names ("next" unless content sets add to its evidence) — so a store can start loading it
    (``EmbeddedStore.stage``). ``co_purchase`` given as :class:`tiein.basket_pairs.Handed` (the
    caller holds no other reference) is let go once the pair edges are known: right after the
    ranker's fit when they are made beside it (4M lines: ~0.3 GB less in classification and the
    season step)."""

    handed_pairs = None
    if isinstance(co_purchase, Handed):
        handed_pairs, co_purchase = co_purchase, co_purchase.table
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
    spark_why = _spark_classify_blocked(opts, listed, set_stats, co_purchase)
    buckets = _classify_buckets(opts, listed, set_stats, co_purchase, neighbours) if spark_why else 1
    # a shop classified all at once: its candidates' features (one core, numpy) are computed on a
    # thread of their own while the ranker is fitted on the other core; they need no ranker
    features_job = pairs_job = None
    if spark_why is not None and buckets <= 1:
        features_job = _Beside(partial(_classify_features, opts, features_of, orders, co_purchase))
        # then each product's strongest pair edges, on that thread once it is free (the fit
        # outlasts the features)
        pairs_job = _Beside(partial(_pair_edges, opts, co_purchase, co_view), after=features_job)
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
    edges = None
    if pairs_job is not None and handed_pairs is not None and next_purchase is not None:
        with timer.step("pairs"):  # made beside the fit: the pair statistics go before classification
            edges = pairs_job.result()
        handed_pairs.take()
        co_purchase = handed_pairs = None
    with timer.step("classify"):
        if spark_why is None:  # features and classification on Spark (tiein.spark_classify)
            assert co_purchase is not None
            relations, n_candidates = _classify_by_anchor_bucket(
                opts, products, co_purchase, orders, co_view, neighbours, ids, vectors, ranker, None
            )
            meta = {**meta, "classified_on": "spark"}
        elif features_job is None:
            assert co_purchase is not None
            relations, n_candidates = _classify_by_anchor_bucket(
                opts, products, co_purchase, orders, co_view, neighbours, ids, vectors, ranker, buckets
            )
            meta = {**meta, "classified_in_buckets": buckets}
        else:
            if opts.mining == "spark":
                meta = {**meta, "classified_on": f"this machine ({spark_why})"}
            plain, weighted = features_job.result()
            features = plain if ranker is None else weighted  # weights: what the ranker reads
            del plain, weighted
            if listed.num_rows:  # substitute vs complement learnt from the shop's own lists
                p_comp, typer_report = type_probability(feature_dict(features), listed)
                meta = {**meta, "type_classifier": typer_report}
                if p_comp is not None:
                    features = features.append_column("p_complement", pa.array(p_comp, pa.float64()))
            relations = classify(features, opts.relations, ranker)
            n_candidates = features.num_rows
            del features
    with timer.step("types"):  # products without an item-level complement get their type's
        if orders.num_rows:
            fallback, fallback_report = type_complements(
                products, orders, relations, max_basket=opts.max_basket, cfg=opts.type_fallback
            )
            meta = {**meta, "type_fallback": fallback_report}
            if fallback.num_rows:
                relations = pa.concat_tables([relations, fallback])
    if next_purchase is None:
        with timer.step("next"):
            next_purchase = next_relations(opts, products, orders, co_purchase, timeline, returning_customers)
    nxt, next_report = next_purchase
    if next_report is not None:
        meta = {**meta, "next_purchase": next_report}
    if nxt.num_rows:
        relations = pa.concat_tables([relations, nxt])
    # sorted as the store keeps them, while the evidence is still short: the later steps keep the
    # order, and the store then slices its tables instead of copying the evidence (graph_tables)
    relations = in_store_order(relations)
    if edges is None:
        with timer.step("pairs"):  # the CO_PURCHASED / CO_VIEWED edges: each product's strongest partners
            edges = pairs_job.result() if pairs_job else _pair_edges(opts, co_purchase, co_view)
    co_purchased, co_viewed = edges
    if handed_pairs is not None:  # nothing below reads the pair statistics
        handed_pairs.take()
        co_purchase = None  # the jobs hold nothing once ended and read (_Beside)
    if early is not None:  # season and segment evidence skip "next"; content sets add to every kind
        final = ("next",) if set_stats is None else ()
        rows = nxt if final else RELATIONS.empty_table()
        early(GraphData(products, co_purchased=co_purchased, co_viewed=co_viewed, relations=rows), final)
    # scenes need only the complements' ends and scores, which the evidence steps below leave as
    # they are: discovered on a thread of their own (networkx's Louvain is pure Python) while the
    # season step counts (DuckDB and numpy, which release the GIL)
    # (given the columns they read only: the evidence is not held, nor copied by their filter)
    ends = relations.select(["src", "dst", "kind", "score"])
    scenes_job = _Beside(partial(_scenes, opts, home, products, ends, user_scenes))
    del ends
    with timer.step("season"):  # per-window co-purchases of the kept pairs as season evidence
        handed = Handed(relations)  # given up: the old evidence goes as the new is written
        del relations
        relations, season_report = season_evidence(
            orders, handed, opts.season, max_basket=opts.max_basket, threads=opts.threads
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
    with timer.step("scenes"):  # what is still waited for
        (scenes, members), scene_report = scenes_job.result()
    data = GraphData(
        products=products,
        co_purchased=co_purchased,
        co_viewed=co_viewed,
        relations=relations,
        scenes=scenes,
        scene_members=members,
        meta=meta,
    )
    return data, {
        "candidates": n_candidates,
        "scenes": scene_report,
        "ranker": ranker_report,
        "type_classifier": meta.get("type_classifier", {"fitted": False, "reason": "no listed pairs"}),
        "coverage": meta.get("type_fallback", {}),
        "season": season_report,
        **({"content_sets": set_report} if set_report is not None else {}),
    }


def _pair_edges(
    opts: BuildOptions, co_purchase: pa.Table | None, co_view: pa.Table | None
) -> tuple[pa.Table, pa.Table]:
    """The CO_PURCHASED and CO_VIEWED edges: each product's strongest partners (top_pairs)."""
    k, empty = opts.graph_pairs_per_product, PAIR_STATS.empty_table()
    return (
        top_pairs(co_purchase, k) if co_purchase is not None else empty,
        top_pairs(co_view, k) if co_view is not None else empty,
    )


def _classify_features(
    opts: BuildOptions, features_of: Callable[..., pa.Table], orders: pa.Table, co_purchase: pa.Table | None
) -> tuple[pa.Table, pa.Table]:
    """The candidates' features, without and with the ranker's basket-size weighted counts (from
    all the orders; the same columns plus three, sharing their memory): the weights before the
    ranker is known to be fitted, unless it cannot be (disabled, no orders)."""
    features = features_of(co_purchase=co_purchase)
    if not opts.ranker.enabled or not orders.num_rows:  # no ranker will read them
        return features, features
    weighted = with_basket_weights(features, orders, opts.max_basket, opts.relations.min_pair_count)
    return features, weighted


def _classify_at_once(
    listed: pa.Table, set_stats: pa.Table | None, co_purchase: pa.Table | None
) -> str | None:
    """Why this shop's candidates must be classified all at once on this machine (None: they
    can go bucket by bucket of anchors, here or on Spark)."""
    if co_purchase is None:
        return "no orders"
    if listed.num_rows:
        return "listed pairs: their typer learns from every candidate at once"
    if set_stats is not None:
        return "content sets"
    return None


def _spark_classify_blocked(
    opts: BuildOptions, listed: pa.Table, set_stats: pa.Table | None, co_purchase: pa.Table | None
) -> str | None:
    """None when the build classifies on Spark (``--mining spark``), else why not."""
    if opts.mining != "spark":
        return "numpy mining"
    return _classify_at_once(listed, set_stats, co_purchase)


# memory a candidate row takes while classifying, its features thread beside the ranker's fit
# included: 50k products / 4M lines, 3.55M candidates at once +2.5 GB, in 1M-row buckets +1.4 GB
CLASSIFY_BYTES_PER_ROW = 1_500
MIN_CLASSIFY_ROWS = 250_000  # below this a bucket's fixed costs (the queries, the weights) dominate


def _classify_buckets(
    opts: BuildOptions,
    listed: pa.Table,
    set_stats: pa.Table | None,
    co_purchase: pa.Table | None,
    neighbours: pa.Table | None,
) -> int:
    """How many buckets of anchors the candidates are classified in on this machine
    (tiein.classify_buckets): about ``opts.classify_rows`` candidates each, fewer where the memory
    this process can still take (tiein.sysmem.available_memory: the machine's, its cgroup's, or
    what a ``--memory-budget`` leaves) holds fewer :data:`CLASSIFY_BYTES_PER_ROW`; 1 (all at
    once) for a smaller shop and where :func:`_classify_at_once` says so."""
    if co_purchase is None or _classify_at_once(listed, set_stats, co_purchase) is not None:
        return 1
    estimate = estimated_candidates(co_purchase, neighbours, opts.candidates_per_product)
    rows = opts.classify_rows
    left = available_memory()
    if rows > 0 and left is not None:
        rows = min(rows, max(left // CLASSIFY_BYTES_PER_ROW, MIN_CLASSIFY_ROWS))
    return bucket_count(estimate, rows)


def _classify_by_anchor_bucket(
    opts: BuildOptions,
    products: pa.Table,
    co_purchase: pa.Table,
    orders: pa.Table,
    co_view: pa.Table | None,
    neighbours: pa.Table | None,
    ids: list[str] | None,
    vectors: Any,
    ranker: Any,
    buckets: int | None,
) -> tuple[pa.Table, int]:
    """The candidates featured and classified per bucket of anchors: here in ``buckets``
    buckets (tiein.classify_buckets), or on Spark with ``buckets=None`` (tiein.spark_classify,
    its own bucket count). The relations and the candidate count."""
    common: dict[str, Any] = {
        "cfg": opts.relations,
        "ranker": ranker,
        "max_basket": opts.max_basket,
        "neighbours": neighbours,
        "ids": ids,
        "vectors": vectors,
        "co_view": co_view,
        "per_product": opts.candidates_per_product,
    }
    if buckets is not None:
        return classify_in_buckets(
            products, co_purchase, orders, buckets=buckets, threads=opts.threads, **common
        )
    from tiein.spark_classify import classify_spark
    from tiein.spark_mining.session import session_for

    with session_for(opts.threads) as spark:
        return classify_spark(spark, products, co_purchase, orders, **common)


class _Beside:
    """``fn()`` running on a daemon thread; :meth:`result` waits and returns or raises what it did.
    A daemon: a build failing meanwhile reports its own error at once."""

    def __init__(self, fn: Callable[[], Any], *, after: _Beside | None = None) -> None:
        self._fn: Callable[[], Any] | None = fn
        self._after = after  # another job whose thread ends first (its result stays its own)
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tiein-beside", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._after is not None:
                self._after._thread.join()
            assert self._fn is not None
            self._value = self._fn()
        except BaseException as exc:  # raised in the thread that waits
            self._error = exc
        finally:  # the function's arguments are not held past it (the pair statistics)
            self._fn = self._after = None

    def result(self) -> Any:
        """What ``fn()`` returned, handed over: asked once, the job keeps no reference to it (the
        candidates' features would otherwise stay alive through the season step: ~1 GB at 4M lines)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        value, self._value = self._value, None
        return value


def next_relations(
    opts: BuildOptions,
    products: pa.Table,
    orders: pa.Table,
    co_purchase: pa.Table | None,
    timeline: pa.Table | None,
    returning_customers: int,
) -> tuple[pa.Table, dict[str, Any] | None]:
    """The "next purchase" relations (tiein.next_purchase) and their report for the meta (None,
    with no relations, when the orders have no customer timeline). Needs only the mined orders,
    not the embeddings or the other relations."""
    if co_purchase is None or timeline is None or not timeline.num_rows:
        return RELATIONS.empty_table(), None
    report: dict[str, Any] = {}
    nxt = classify_next(
        next_candidates(products, co_purchase, timeline, min_count=opts.next_purchase.min_customers),
        returning_customers,
        opts.next_purchase,
        window_days=opts.after_window_days,
        orders=orders,
        report=report,
    )
    return nxt, report


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

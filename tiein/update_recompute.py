"""Step 3 of ``tiein update``: the new graph, recomputed from the merged inputs.

In the update data flow (:mod:`tiein.update`) this sits between merging the inputs and staging
the new generation. :func:`recompute` takes the merged inputs and what changed and gives the new
GraphData with its neighbours, index and pair counts: the stock / price fast path copies the
stored graph with the new product rows; otherwise the pair counts are merged, never re-mined
(:func:`_merged_counts`), titles are embedded only when new (:func:`_embeddings`), and the
build's own stages make the graph (:func:`_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, InputError
from tiein.home import index_dir
from tiein.merge import _touched
from tiein.model import GraphData
from tiein.options import BuildOptions
from tiein.scenes import load_scenes
from tiein.stages import _Timer, graph_from_stats
from tiein.state import State, _count

if TYPE_CHECKING:
    from tiein.update import UpdateSummary, _Changes, _Inputs


@dataclass
class Recomputed:
    """The new graph and what the new generation keeps with it."""

    data: GraphData
    neighbours: pa.Table | None  # FAISS neighbours (the stored ones when no title changed)
    index: Any  # the embeddings.ProductIndex to save, None when unchanged
    counts_orders: Any  # tiein.mining.PairCounts of all order lines
    counts_views: Any  # ... of all browsing sessions


def recompute(
    bopts: BuildOptions,
    home: Path,
    state: State,
    inputs: _Inputs,
    changes: _Changes,
    summary: UpdateSummary,
    timer: _Timer,
) -> Recomputed:
    """The new graph: the fast path when only product properties changed, else a recompute of
    the pair statistics, embeddings, relations and scenes (``summary.path`` says which)."""
    if changes.products_only:
        return _fast_path(state, inputs, changes, summary)
    summary.path = (
        "full" if (changes.lines_changed or len(changes.new_ids) or changes.changed_text) else "reclassify"
    )
    with timer.step("mine"):
        co_counts, cv_counts = _merged_counts(bopts, state, inputs, summary)
        mined = co_counts.assemble(bopts.min_count) if inputs.orders.num_rows else None
        mined_v = cv_counts.assemble(bopts.min_count) if inputs.views.num_rows else None
    summary.recomputed = ["sales roles", "classification", "next purchase", "scenes"]
    if inputs.added_lines.num_rows or inputs.added_views.num_rows:
        summary.recomputed.insert(0, "pair statistics (merged)")
    with timer.step("embed"):
        vectors, ids, index, neighbours, model_name = _embeddings(
            bopts, home, inputs.products, state, changes.new_ids, bool(changes.changed_text), summary
        )
    data = _graph(
        bopts,
        home,
        inputs.products,
        inputs.orders,
        state.listed_pairs,
        mined,
        mined_v,
        ids,
        vectors,
        neighbours,
        model_name,
        state.graph.meta,
        timer,
        sets=inputs.sets,
        segments=inputs.segments,
    )
    return Recomputed(data, neighbours, index, co_counts, cv_counts)


def _fast_path(state: State, inputs: _Inputs, changes: _Changes, summary: UpdateSummary) -> Recomputed:
    """Stock, margin or attribute changes only (or nothing): the stored graph with the new
    product rows; nothing re-mined or re-embedded."""
    summary.path = "stock" if changes.changed_any else "no-op"
    old = state.graph
    data = GraphData(
        products=inputs.products,
        co_purchased=old.co_purchased,
        co_viewed=old.co_viewed,
        relations=old.relations,
        scenes=old.scenes,
        scene_members=old.scene_members,
        meta=dict(old.meta),
    )
    summary.recomputed = ["sales roles"]
    return Recomputed(data, state.neighbours, None, state.counts_orders, state.counts_views)


def _merged_counts(
    bopts: BuildOptions, state: State, inputs: _Inputs, summary: UpdateSummary
) -> tuple[Any, Any]:
    """(order pair counts, view pair counts) of all the data: the stored counts with the touched
    baskets (orders of the new lines' customers, sessions of the new events) counted again, the
    difference applied (see :mod:`tiein.update`)."""
    co_counts, cv_counts = state.counts_orders, state.counts_views
    orders, views = inputs.orders, inputs.views
    if inputs.added_lines.num_rows:
        touched = _touched(orders, inputs.added_lines)
        before = state.orders.filter(pc.is_in(state.orders.column("order_id"), value_set=touched))
        after = orders.filter(pc.is_in(orders.column("order_id"), value_set=touched))
        summary.counts["recounted_order_lines"] = after.num_rows
        co_counts = co_counts.combine(_count(after, bopts, views=False), _count(before, bopts, views=False))
    if inputs.added_views.num_rows:
        sessions = pc.unique(inputs.added_views.column("session_id"))
        before = state.views.filter(pc.is_in(state.views.column("session_id"), value_set=sessions))
        after = views.filter(pc.is_in(views.column("session_id"), value_set=sessions))
        cv_counts = cv_counts.combine(_count(after, bopts, views=True), _count(before, bopts, views=True))
    return co_counts, cv_counts


def _embeddings(
    bopts: BuildOptions,
    home: Path,
    products: pa.Table,
    state: State,
    new_ids: pa.Array,
    text_changed: bool,
    summary: UpdateSummary,
) -> tuple[Any, list[str] | None, Any, pa.Table | None, str | None]:
    """(vectors, ids, index to save or None, neighbours, model) for ``products``: vectors from
    the embedding cache when every title is there (no model load), else from the encoder; the
    FAISS index gets new products appended, or is rebuilt when a title changed."""
    model = state.build["options"]["model"]
    if not bopts.embeddings or products.num_rows == 0 or model is None:
        return None, None, None, None, None
    from tiein import embeddings
    from tiein.embeddings.products import cached_vectors, product_texts

    texts = product_texts(products)
    vectors = cached_vectors(texts, home / "cache", model)
    if vectors is None:
        encoder = embeddings.load_encoder(model, threads=bopts.threads, plain=True)
        vectors = embeddings.embed_products(products, encoder, cache_dir=home / "cache")
        summary.recomputed.append("embeddings (new titles encoded)")
    ids = products.column("product_id").to_pylist()
    if not text_changed and len(new_ids) == 0 and state.neighbours is not None:
        return vectors, ids, None, state.neighbours, model
    index = None

    if not text_changed and index_dir(home).is_dir():
        try:
            index = embeddings.ProductIndex.load(index_dir(home), expect_model=model)
        except (ConfigError, InputError):
            index = None
        if index is not None and index.ids == ids[: len(index)]:
            index.add(ids[len(index) :], vectors[len(index) :])
        else:
            index = None
    if index is None:
        index = embeddings.ProductIndex.build(ids, vectors, model, threads=bopts.threads)
    summary.recomputed.append("FAISS neighbours")
    neighbours = index.neighbours(min(bopts.neighbours_k, max(1, len(ids) - 1)), threads=bopts.threads)
    return vectors, ids, index, neighbours, model


def _graph(
    bopts: BuildOptions,
    home: Path,
    products: pa.Table,
    orders: pa.Table,
    listed: pa.Table,
    mined: Any,
    mined_v: Any,
    ids: list[str] | None,
    vectors: Any,
    neighbours: pa.Table | None,
    model_name: str | None,
    old_meta: dict[str, Any],
    timer: Any,
    sets: pa.Table | None = None,
    segments: pa.Table | None = None,
) -> GraphData:
    """The GraphData :func:`tiein.pipeline.build` makes from these inputs: its own stages
    (:func:`tiein.stages.graph_from_stats`), timed under the same names."""

    data, _ = graph_from_stats(
        bopts,
        home,
        products,
        orders=orders,
        co_purchase=mined.pairs if mined is not None else None,
        co_view=mined_v.pairs if mined_v is not None else None,
        listed=listed,
        timeline=mined.timeline if mined is not None else None,
        returning_customers=int(mined.report.get("returning_customers", 0)) if mined is not None else 0,
        neighbours=neighbours,
        ids=ids,
        vectors=vectors,
        user_scenes=load_scenes(bopts.scenes) if bopts.scenes is not None else None,
        meta={**old_meta, "model": model_name if model_name is not None else old_meta.get("model")},
        timer=timer,
        sets=sets if sets is not None and sets.num_rows else None,
        segments=segments if segments is not None and segments.num_rows else None,
    )
    return data

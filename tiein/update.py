"""``tiein update``: add new orders, products, price and stock changes without a full rebuild.

The result EQUALS a full build on the union of the data (same products, relations with the same
scores and evidence, same pair edges and scenes; tests/test_update.py checks it on hand fixtures
and on a real slice of Online Retail). "The union" is the union of the *normalised* inputs:

- products: the stored catalog; a catalog file in an update upserts rows by product id and only
  the columns the file has (a ``product_id,stock`` file changes stock and nothing else); ids not
  in the file stay as they are;
- order lines: the stored lines plus the new ones, deduplicated by (order id, product id): lines
  already stored are skipped (and counted in the summary), so re-running an update is a no-op;
  lines of unknown products are dropped (counted), except when the first build derived the
  catalog from the orders (no catalog file): then new products are derived from the new lines;
- browsing events: the stored ones plus the new distinct (session, product, time, event) rows.

What the build keeps in its generation's ``inputs/`` for this (tiein/state.py, written by
:func:`tiein.state.write_state` for every build and update, switched in with the generation,
tiein/home.py)::

    products.parquet orders.parquet views.parquet listed_pairs.parquet   normalised inputs
    build.json                the build options, embedding model, source, state id
    counts_orders.npz         unfiltered pair / bought-after / timeline counts (tiein.mining.PairCounts)
    counts_views.npz          the same for co-view sessions
    graph/*.parquet           the GraphData last loaded into the store (to diff against)
    neighbours.parquet        the FAISS neighbours of the last build (reused when no title changed)

How an update recomputes (correctness first):

1. Pair statistics are merged, never re-mined: the baskets an update touches are the orders of
   the new lines plus every order of a customer with a line in them (bought-after counts are
   distinct customers per pair, and a customer's counts depend on all their orders). Counting
   those baskets before and after the update (:func:`tiein.mining.count_pairs`) and applying the
   difference to the stored counts (:meth:`PairCounts.combine`) gives exactly the counts of all
   lines: basket counts add up over baskets, customer counts over customers. ``min_count`` is
   applied after the merge, so pairs crossing it either way come and go correctly.
2. New or retitled products are embedded; titles already embedded come from the embedding cache
   without loading the model (torch is not even imported). The FAISS index gets the new products
   appended (:meth:`embeddings.ProductIndex.add`) or is rebuilt when a title changed; neighbours
   are recomputed only then.
3. Classification, "next purchase" relations and scenes are recomputed from the merged
   statistics (a few seconds; every lift moves when the basket count grows).
4. The store gets only what changed: :func:`tiein.graph.base.graph_delta` diffs the old and new graph
   tables and :meth:`GraphStore.apply` writes the difference atomically.

Stock / price fast path. With no new order lines, no new products and no change of title, brand or
category, nothing is re-mined or re-embedded: stock, margin and attribute changes only update
the product nodes (and sales roles); a price change feeds ``price_ratio`` (complement direction,
upsell) and is re-classified from the stored statistics. Out-of-stock products drop out of
bundles at once: bundles read stock from the store.

Atomicity: the new state is written to a temporary directory; the store is changed with one
atomic ``apply``; then the state directory is swapped in. A failure before the store changed
leaves graph and state untouched; the state id in the graph's meta detects a state that does not
belong to the graph (e.g. a build into another store), and the update refuses to run on it.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, InputError
from tiein.merge import _catalog_columns, _changed_ids, _new_rows, _touched, _upsert_products
from tiein.model import (
    ORDERS,
    PRODUCTS,
    VIEWS,
    GraphData,
)
from tiein.options import BuildOptions, Progress, default_home, default_store_url
from tiein.pipeline import _phase, _Timer
from tiein.state import GRAPH_PARTS, State, _count, _options_from, load_state, write_state

# An update writes the store with GraphStore.apply (only what changed) unless the change touches
# more than this share of the graph's rows (or the basket count changed: then every pair edge's
# support and lift did): a bulk replace is faster then. Both give the same graph.
REPLACE_SHARE = 0.25
# The graph tables a stock / price-only / attribute change can touch (tiein.graph.build.graph_tables).
PRODUCT_TABLES = frozenset(
    {"Product", "Attribute", "Category", "Brand", "HAS_ATTRIBUTE", "IN_CATEGORY", "HAS_BRAND", "CHILD_OF"}
)
# Product columns that classification, "next" relations or scenes read (tiein.features.product_frame,
# embeddings.product_texts, tiein.scenes): changing any of them re-classifies.
CLASSIFY_COLUMNS = ("title", "brand", "category", "category_path", "price")
TEXT_COLUMNS = ("title", "brand")


@dataclass
class UpdateOptions:
    """What to add: any of ``catalog`` (changed / new product rows), ``orders`` (new order lines),
    ``views`` (new browsing events), read with ``mapping`` (loaders.Mapping) like ``tiein build``
    reads them. ``home`` holds the state of the last build (``HOME/inputs``)."""

    catalog: Path | None = None
    orders: Path | None = None
    views: Path | None = None
    mapping: Any = None
    home: Path = field(default_factory=default_home)
    store_url: str | None = None
    threads: int | None = None


@dataclass
class UpdateSummary:
    """What an update did. ``path`` is "no-op", "stock" (product properties only), "reclassify"
    (price changes: no mining, no embedding) or "full" (new lines or products)."""

    store: str
    path: str = "no-op"
    store_write: str = "apply"  # how the store was written: "apply" (the delta) or "replace" (bulk)
    counts: dict[str, int] = field(default_factory=dict)
    recomputed: list[str] = field(default_factory=list)
    delta: dict[str, int] = field(default_factory=dict)
    relations: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "path": self.path,
            "store_write": self.store_write,
            "counts": self.counts,
            "recomputed": self.recomputed,
            "delta": self.delta,
            "relations": self.relations,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": self.notes,
        }


# ----------------------------------------------------------------------------- update


def update(opts: UpdateOptions, progress: Progress | None = None) -> UpdateSummary:
    """Apply new orders / products / price and stock changes to the graph of ``opts.home`` (see
    the module docstring): afterwards the store answers exactly as after a full build on the
    union of the data. Raises InputError (file, row, column) for bad files and ConfigError when
    there is nothing to update or no build state; a failed update leaves graph and state as they
    were."""
    from tiein.home import home_lock, recover_store

    if opts.catalog is None and opts.orders is None and opts.views is None:
        raise ConfigError("nothing to update: give --orders, --catalog and/or --views files")
    if opts.threads is not None and opts.threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {opts.threads}")
    home = Path(opts.home)
    with home_lock(home):
        recover_store(home, opts.store_url or default_store_url(home))  # what a crash left
        return _update(opts, progress)


def _update(opts: UpdateOptions, progress: Progress | None) -> UpdateSummary:
    from tiein import loaders
    from tiein.faults import fault
    from tiein.features import with_sales_roles
    from tiein.graph import open_store
    from tiein.graph.base import graph_delta
    from tiein.home import INDEX, INPUTS, Staging, index_dir, switch

    timer = _Timer()
    t0 = time.perf_counter()
    home = Path(opts.home)
    store_url = opts.store_url or default_store_url(home)
    mapping = opts.mapping or loaders.Mapping()
    with timer.step("read state"):
        state = load_state(home)
    bopts = _options_from(state.build["options"], home, store_url, opts.threads)
    summary = UpdateSummary(store=store_url)
    c = summary.counts

    # 1. read the new files (each alone: a stock file must not drop order lines as unknown)
    with timer.step("load"):
        cat = new_orders = new_views = None
        if opts.catalog is not None:
            cat = loaders.load_files(
                catalog=opts.catalog, orders=None, mapping=mapping, progress=_phase(progress, "load")
            )
            cat_cols = _catalog_columns(opts.catalog, mapping)
        if opts.orders is not None:
            new_orders = loaders.load_files(
                catalog=None, orders=opts.orders, mapping=mapping, progress=_phase(progress, "load")
            )
        if opts.views is not None:
            new_views = loaders.load_files(
                catalog=None,
                orders=None,
                views=opts.views,
                mapping=mapping,
                progress=_phase(progress, "load"),
            )

    # 2. merge the inputs
    with timer.step("merge inputs"):
        products = state.products
        if cat is not None:
            products, c["products_changed"], c["products_added"] = _upsert_products(
                products, cat.products, cat_cols
            )
            c["catalog_rows"] = cat.products.num_rows
        known = products.column("product_id").combine_chunks()
        orders, views = state.orders, state.views
        added_lines = ORDERS.empty_table()
        if new_orders is not None:
            lines = new_orders.orders
            c["order_lines_read"] = lines.num_rows
            unknown = pc.invert(pc.is_in(lines.column("product_id"), value_set=known))
            n_unknown = pc.sum(unknown).as_py() or 0
            if n_unknown and state.build["derived_catalog"]:
                # the first build derived its catalog from order lines: so do new products
                derived = new_orders.products.filter(
                    pc.invert(pc.is_in(new_orders.products.column("product_id"), value_set=known))
                )
                products = pa.concat_tables([products, derived.cast(PRODUCTS)])
                c["products_added"] = c.get("products_added", 0) + derived.num_rows
                known = products.column("product_id").combine_chunks()
                n_unknown = 0
            elif n_unknown:
                lines = lines.filter(pc.invert(unknown))
                c["unknown_product_lines"] = n_unknown
                summary.notes.append(f"{n_unknown:,} order lines of products not in the catalog dropped")
            added_lines, dup = _new_rows(orders, lines, ["order_id", "product_id"])
            c["duplicate_order_lines"] = dup
            if dup:
                summary.notes.append(
                    f"{dup:,} order lines already in the graph skipped (deduplicated by order id + product id)"
                )
            c["order_lines_added"] = added_lines.num_rows
            orders = pa.concat_tables([orders, added_lines]) if added_lines.num_rows else orders
        added_views = VIEWS.empty_table()
        if new_views is not None:
            ev = new_views.views.filter(pc.is_in(new_views.views.column("product_id"), value_set=known))
            added_views, dup = _new_rows(views, ev, ["session_id", "product_id", "ts", "event"])
            c["duplicate_view_rows"] = dup
            c["view_rows_added"] = added_views.num_rows
            views = pa.concat_tables([views, added_views]) if added_views.num_rows else views

    n_old = state.products.num_rows
    new_ids = products.column("product_id").slice(n_old).combine_chunks()
    changed_class = _changed_ids(state.products, products.slice(0, n_old), CLASSIFY_COLUMNS)
    changed_text = _changed_ids(state.products, products.slice(0, n_old), TEXT_COLUMNS)
    changed_any = _changed_ids(state.products, products.slice(0, n_old), PRODUCTS.names[1:-1])
    c["products_changed"] = len(changed_any)
    lines_changed = added_lines.num_rows > 0 or added_views.num_rows > 0
    with timer.step("roles"):
        products = with_sales_roles(products, orders, bopts.roles)

    old = state.graph
    co_counts, cv_counts = state.counts_orders, state.counts_views
    if not lines_changed and len(new_ids) == 0 and not changed_class:
        summary.path = "stock" if changed_any else "no-op"
        new_data = GraphData(
            products=products,
            co_purchased=old.co_purchased,
            co_viewed=old.co_viewed,
            relations=old.relations,
            scenes=old.scenes,
            scene_members=old.scene_members,
            meta=dict(old.meta),
        )
        neighbours = state.neighbours
        index = None
        summary.recomputed = ["sales roles"]
    else:
        summary.path = "full" if (lines_changed or len(new_ids) or changed_text) else "reclassify"
        with timer.step("mine"):
            if added_lines.num_rows:
                touched = _touched(orders, added_lines)
                before = state.orders.filter(pc.is_in(state.orders.column("order_id"), value_set=touched))
                after = orders.filter(pc.is_in(orders.column("order_id"), value_set=touched))
                c["recounted_order_lines"] = after.num_rows
                co_counts = co_counts.combine(
                    _count(after, bopts, views=False), _count(before, bopts, views=False)
                )
            if added_views.num_rows:
                sessions = pc.unique(added_views.column("session_id"))
                before = state.views.filter(pc.is_in(state.views.column("session_id"), value_set=sessions))
                after = views.filter(pc.is_in(views.column("session_id"), value_set=sessions))
                cv_counts = cv_counts.combine(
                    _count(after, bopts, views=True), _count(before, bopts, views=True)
                )
            mined = co_counts.assemble(bopts.min_count) if orders.num_rows else None
            mined_v = cv_counts.assemble(bopts.min_count) if views.num_rows else None
        summary.recomputed = ["sales roles", "classification", "next purchase", "scenes"]
        if added_lines.num_rows or added_views.num_rows:
            summary.recomputed.insert(0, "pair statistics (merged)")
        with timer.step("embed"):
            vectors, ids, index, neighbours, model_name = _embeddings(
                bopts, home, products, state, new_ids, bool(changed_text), summary
            )
        new_data = _graph(
            bopts,
            home,
            products,
            orders,
            state.listed_pairs,
            mined,
            mined_v,
            ids,
            vectors,
            neighbours,
            model_name,
            old.meta,
            timer,
        )

    state_id = uuid.uuid4().hex
    new_data.meta = {
        **new_data.meta,
        "state_id": state_id,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with timer.step("state"):  # the new generation's inputs and index, not yet visible
        stage = Staging(home, state_id)
        try:
            write_state(
                stage.path / INPUTS,
                bopts,
                source=state.build["source"],
                derived_catalog=state.build["derived_catalog"],
                products=products,
                orders=orders,
                views=views,
                listed_pairs=state.listed_pairs,
                data=new_data,
                model=state.build["options"]["model"],
                neighbours=neighbours,
                counts_orders=co_counts,
                counts_views=cv_counts,
            )
            if index is not None:
                index.save(stage.path / INDEX)
            elif index_dir(home).is_dir():  # unchanged index: the same files, linked
                shutil.copytree(index_dir(home), stage.path / INDEX, copy_function=_link_or_copy)
            fault("update.after_stage")
            stage.commit()
        except BaseException:
            stage.discard()
            raise
    try:
        store = open_store(store_url)
        try:
            current = store.stats().get("meta", {}).get("state_id")
            if current != state.build.get("state_id"):
                raise ConfigError(
                    f"the graph in {store_url} is not the one the build state in {home} describes "
                    f"(state {state.build.get('state_id')!r}, graph {current!r}): run `tiein build` again"
                )
            delta = None
            if co_counts.n == state.counts_orders.n and cv_counts.n == state.counts_views.n:
                with timer.step("diff"):
                    if summary.path == "stock":  # only product-derived tables can differ: diff those
                        delta = graph_delta(
                            _products_only(old), _products_only(new_data), only=PRODUCT_TABLES
                        )
                        delta.meta = dict(new_data.meta)
                    else:
                        delta = graph_delta(old, new_data)
                summary.delta = delta.counts()
            with timer.step("store"):
                if delta is not None and delta.size() <= REPLACE_SHARE * _graph_rows(new_data):
                    summary.store_write = "apply"
                    store.apply(delta, progress=_phase(progress, "store"))
                else:
                    # more baskets: every pair edge's support and lift changed (and with them most
                    # relation scores), so a bulk replace is cheaper than an upsert of nearly all
                    summary.store_write = "replace"
                    store.replace(new_data, progress=_phase(progress, "store"))
        finally:
            store.close()
    except BaseException:
        shutil.rmtree(stage.final, ignore_errors=True)
        raise
    fault("update.after_store")
    switch(home, state_id, store_url)
    kinds = (
        pc.value_counts(new_data.relations.column("kind")).to_pylist() if new_data.relations.num_rows else []
    )
    summary.relations = {d["values"]: int(d["counts"]) for d in kinds}
    c["products"] = products.num_rows
    c["order_lines"] = orders.num_rows
    summary.seconds = dict(timer.seconds)
    summary.seconds["total"] = time.perf_counter() - t0
    return summary


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (files of a generation are never changed in place), or copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _products_only(data: GraphData) -> GraphData:
    """``data`` without pairs, relations and scenes (what PRODUCT_TABLES derive from)."""
    empty = {part: schema.empty_table() for part, schema in GRAPH_PARTS.items() if part != "products"}
    return GraphData(products=data.products, **empty, meta=dict(data.meta))


def _graph_rows(data: GraphData) -> int:
    """Rows of the graph's main tables (what a replace loads, roughly)."""
    return sum(getattr(data, part).num_rows for part in GRAPH_PARTS)


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
        encoder = embeddings.load_encoder(model, threads=bopts.threads)
        vectors = embeddings.embed_products(products, encoder, cache_dir=home / "cache")
        summary.recomputed.append("embeddings (new titles encoded)")
    ids = products.column("product_id").to_pylist()
    if not text_changed and len(new_ids) == 0 and state.neighbours is not None:
        return vectors, ids, None, state.neighbours, model
    index = None
    from tiein.home import index_dir

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
        index = embeddings.ProductIndex.build(ids, vectors, model)
    summary.recomputed.append("FAISS neighbours")
    neighbours = index.neighbours(min(bopts.neighbours_k, max(1, len(ids) - 1)))
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
) -> GraphData:
    """The GraphData :func:`tiein.pipeline.build` makes from these inputs: its own stages
    (:func:`tiein.pipeline.graph_from_stats`), timed under the same names."""
    from tiein.pipeline import graph_from_stats
    from tiein.scenes import load_scenes

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
    )
    return data

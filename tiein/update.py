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
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.faults import fault
from tiein.features import with_sales_roles
from tiein.graph import open_store
from tiein.graph.base import graph_delta
from tiein.home import INDEX, INPUTS, Staging, home_lock, index_dir, recover_store, switch
from tiein.merge import _catalog_columns, _changed_ids, _new_rows, _upsert_products
from tiein.model import (
    ORDER_SEGMENTS,
    ORDERS,
    PRODUCTS,
    REL_TYPE,
    RELATION_KINDS,
    SETS,
    VIEWS,
    GraphData,
)
from tiein.options import BuildOptions, Progress, default_home, default_store_url
from tiein.pipeline import _phase
from tiein.product_type import with_product_types
from tiein.stages import _Timer
from tiein.state import GRAPH_PARTS, State, _options_from, load_state, write_state
from tiein.sysmem import big_blocks_mapped
from tiein.update_recompute import recompute

if TYPE_CHECKING:
    from tiein.graph.base import GraphDelta
    from tiein.home import Staging
    from tiein.update_recompute import Recomputed

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
# computed by the build, not read from the catalog: never a change of the input
COMPUTED = ("sales_role", "product_type")


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
    sets: Path | None = None  # content sets: a set id given replaces that set (tiein.loaders.sets.merge_sets)


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

    if opts.catalog is None and opts.orders is None and opts.views is None and opts.sets is None:
        raise ConfigError("nothing to update: give --orders, --catalog, --views and/or --sets files")
    if opts.threads is not None and opts.threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {opts.threads}")
    home = Path(opts.home)
    with home_lock(home), big_blocks_mapped():  # freed arrays go back to the system at once
        recover_store(home, opts.store_url or default_store_url(home))  # what a crash left
        return _update(opts, progress)


@dataclass
class _NewFiles:
    """The update's files as read (each alone, loaders.Loaded): None for a file not given."""

    catalog: Any = None
    catalog_columns: set[str] = field(default_factory=set)  # the product columns the catalog file has
    orders: Any = None
    views: Any = None


@dataclass
class _Inputs:
    """The normalised inputs after the merge: the union of the stored and the new data."""

    products: pa.Table
    orders: pa.Table
    views: pa.Table
    added_lines: pa.Table  # order lines new to the graph
    added_views: pa.Table  # browsing events new to the graph
    sets: pa.Table = field(default_factory=SETS.empty_table)  # content sets, stored and new
    sets_changed: bool = False
    segments: pa.Table = field(default_factory=ORDER_SEGMENTS.empty_table)  # each order's segment


@dataclass
class _Changes:
    """What the merge changed in the catalog and the baskets (picks the recompute path)."""

    new_ids: pa.Array  # products added by the update
    changed_class: set[str]  # stored products with a changed CLASSIFY_COLUMNS value
    changed_text: set[str]  # ... with a changed TEXT_COLUMNS value (to embed again)
    changed_any: set[str]  # ... with any changed column
    lines_changed: bool  # new order lines or browsing events

    @property
    def products_only(self) -> bool:
        """Only product properties changed (or nothing): the stock / price fast path."""
        return not self.lines_changed and len(self.new_ids) == 0 and not self.changed_class


def _update(opts: UpdateOptions, progress: Progress | None) -> UpdateSummary:
    """The update's steps in order; each step is a function below."""
    from tiein import loaders

    timer = _Timer()
    t0 = time.perf_counter()
    home = Path(opts.home)
    store_url = opts.store_url or default_store_url(home)
    with timer.step("read state"):
        state = load_state(home)
    bopts = _options_from(state.build["options"], home, store_url, opts.threads)
    summary = UpdateSummary(store=store_url)
    with timer.step("load"):
        new = _read_files(opts, opts.mapping or loaders.Mapping(), progress)
    with timer.step("merge inputs"):
        inputs = _merge_inputs(state, new, summary)
        if opts.sets is not None:
            _merge_sets(inputs, opts.sets, opts.mapping or loaders.Mapping(), summary)
    changes = _changes(state, inputs, summary)
    with timer.step("roles"):
        inputs.products = with_product_types(with_sales_roles(inputs.products, inputs.orders, bopts.roles))
    result = recompute(bopts, home, state, inputs, changes, summary, timer)
    state_id = _stamp(result.data)
    with timer.step("state"):  # the new generation's inputs and index, not yet visible
        stage = _stage(home, state_id, bopts, state, inputs, result)
    try:
        _write_store(store_url, home, state, result, summary, timer, progress)
    except BaseException:
        shutil.rmtree(stage.final, ignore_errors=True)
        raise
    fault("update.after_store")
    switch(home, state_id, store_url)
    _summarise(summary, result.data, inputs, timer, t0)
    return summary


def _read_files(opts: UpdateOptions, mapping: Any, progress: Progress | None) -> _NewFiles:
    """Step 1: read the new files, each alone (a stock file must not drop order lines as
    unknown)."""
    from tiein import loaders

    new = _NewFiles()
    if opts.catalog is not None:
        new.catalog = loaders.load_files(
            catalog=opts.catalog, orders=None, mapping=mapping, progress=_phase(progress, "load")
        )
        new.catalog_columns = _catalog_columns(opts.catalog, mapping)
    if opts.orders is not None:
        new.orders = loaders.load_files(
            catalog=None, orders=opts.orders, mapping=mapping, progress=_phase(progress, "load")
        )
    if opts.views is not None:
        new.views = loaders.load_files(
            catalog=None,
            orders=None,
            views=opts.views,
            mapping=mapping,
            progress=_phase(progress, "load"),
        )
    return new


def _merge_inputs(state: State, new: _NewFiles, summary: UpdateSummary) -> _Inputs:
    """Step 2: the stored inputs with the new files merged in: catalog rows upserted, new order
    lines and browsing events added once (counted in ``summary``)."""
    c = summary.counts
    products = state.products
    if new.catalog is not None:
        products, c["products_changed"], c["products_added"] = _upsert_products(
            products, new.catalog.products, new.catalog_columns
        )
        c["catalog_rows"] = new.catalog.products.num_rows
    orders, added_lines = state.orders, ORDERS.empty_table()
    if new.orders is not None:
        products, orders, added_lines = _merge_orders(state, products, new.orders, summary)
    views, added_views = state.views, VIEWS.empty_table()
    if new.views is not None:
        known = products.column("product_id").combine_chunks()
        ev = new.views.views.filter(pc.is_in(new.views.views.column("product_id"), value_set=known))
        added_views, dup = _new_rows(views, ev, ["session_id", "product_id", "ts", "event"])
        c["duplicate_view_rows"] = dup
        c["view_rows_added"] = added_views.num_rows
        views = pa.concat_tables([views, added_views]) if added_views.num_rows else views
    segments = state.segments
    if new.orders is not None and new.orders.segments.num_rows:  # a new order's segment; stored ones stay
        fresh = new.orders.segments.filter(
            pc.invert(pc.is_in(new.orders.segments.column("order_id"), value_set=segments.column("order_id")))
        )
        segments = pa.concat_tables([segments, fresh]) if fresh.num_rows else segments
    return _Inputs(products, orders, views, added_lines, added_views, sets=state.sets, segments=segments)


def _merge_sets(inputs: _Inputs, path: Path, mapping: Any, summary: UpdateSummary) -> None:
    """The content sets of ``path`` (read against the merged catalog) merged into ``inputs``: a
    set id in the file replaces that set; counted in ``summary``."""
    from tiein.loaders import LoadReport
    from tiein.loaders.sets import merge_sets, read_sets

    new = read_sets(path, mapping, inputs.products, LoadReport())
    merged, replaced, added = merge_sets(inputs.sets, new)
    keys = [("set_id", "ascending"), ("product_id", "ascending")]
    inputs.sets_changed = not merged.sort_by(keys).equals(inputs.sets.sort_by(keys))
    inputs.sets = merged
    summary.counts["sets_added"], summary.counts["sets_replaced"] = added, replaced


def _merge_orders(
    state: State, products: pa.Table, new_orders: Any, summary: UpdateSummary
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(products, order lines, lines added) after merging the new order lines: lines of unknown
    products are dropped, or derive new products when the first build derived its catalog;
    lines already stored are skipped."""
    c = summary.counts
    known = products.column("product_id").combine_chunks()
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
    elif n_unknown:
        lines = lines.filter(pc.invert(unknown))
        c["unknown_product_lines"] = n_unknown
        summary.notes.append(f"{n_unknown:,} order lines of products not in the catalog dropped")
    added_lines, dup = _new_rows(state.orders, lines, ["order_id", "product_id"])
    c["duplicate_order_lines"] = dup
    if dup:
        summary.notes.append(
            f"{dup:,} order lines already in the graph skipped (deduplicated by order id + product id)"
        )
    c["order_lines_added"] = added_lines.num_rows
    orders = pa.concat_tables([state.orders, added_lines]) if added_lines.num_rows else state.orders
    return products, orders, added_lines


def _changes(state: State, inputs: _Inputs, summary: UpdateSummary) -> _Changes:
    """What the merge changed: new products, stored products whose columns changed, new lines."""
    n_old = state.products.num_rows
    kept = inputs.products.slice(0, n_old)
    changes = _Changes(
        new_ids=inputs.products.column("product_id").slice(n_old).combine_chunks(),
        changed_class=_changed_ids(state.products, kept, CLASSIFY_COLUMNS),
        changed_text=_changed_ids(state.products, kept, TEXT_COLUMNS),
        changed_any=_changed_ids(state.products, kept, [n for n in PRODUCTS.names[1:] if n not in COMPUTED]),
        lines_changed=bool(inputs.added_lines.num_rows or inputs.added_views.num_rows or inputs.sets_changed),
    )
    summary.counts["products_changed"] = len(changes.changed_any)
    return changes


def _stamp(data: GraphData) -> str:
    """A new state id, written into the graph's meta with the update time."""
    state_id = uuid.uuid4().hex
    data.meta = {
        **data.meta,
        "state_id": state_id,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return state_id


def _stage(
    home: Path, state_id: str, bopts: BuildOptions, state: State, inputs: _Inputs, result: Recomputed
) -> Staging:
    """Step 4: the new generation's inputs, graph tables and index, written to a staging
    directory and committed (renamed in), not yet switched to; discarded on any failure."""

    stage = Staging(home, state_id)
    try:
        write_state(
            stage.path / INPUTS,
            bopts,
            source=state.build["source"],
            derived_catalog=state.build["derived_catalog"],
            products=inputs.products,
            orders=inputs.orders,
            views=inputs.views,
            listed_pairs=state.listed_pairs,
            data=result.data,
            model=state.build["options"]["model"],
            neighbours=result.neighbours,
            counts_orders=result.counts_orders,
            counts_views=result.counts_views,
            sets=inputs.sets,
            segments=inputs.segments,
        )
        if result.index is not None:
            result.index.save(stage.path / INDEX)
        elif index_dir(home).is_dir():  # unchanged index: the same files, linked
            shutil.copytree(index_dir(home), stage.path / INDEX, copy_function=_link_or_copy)
        fault("update.after_stage")
        stage.commit()
    except BaseException:
        stage.discard()
        raise
    return stage


def _write_store(
    store_url: str,
    home: Path,
    state: State,
    result: Recomputed,
    summary: UpdateSummary,
    timer: _Timer,
    progress: Progress | None,
) -> None:
    """Step 5: the store gets the new graph: the delta (``apply``) when it is small enough, else
    a bulk ``replace``. Refuses a store whose graph is not the one the state describes."""

    store = open_store(store_url)
    try:
        stats = store.stats()
        current = stats.get("meta", {}).get("state_id")
        if current != state.build.get("state_id"):
            raise ConfigError(
                f"the graph in {store_url} is not the one the build state in {home} describes "
                f"(state {state.build.get('state_id')!r}, graph {current!r}): run `tiein build` again"
            )
        delta = _diff(state, result, summary, timer)
        with timer.step("store"):
            if (
                delta is not None
                and delta.size() <= REPLACE_SHARE * _graph_rows(result.data)
                and _evidence_in_nodes(stats)
            ):
                summary.store_write = "apply"
                store.apply(delta, progress=_phase(progress, "store"))
            else:
                # more baskets: every pair edge's support and lift changed (and with them most
                # relation scores), so a bulk replace is cheaper than an upsert of nearly all
                summary.store_write = "replace"
                store.replace(result.data, progress=_phase(progress, "store"))
    finally:
        store.close()


def _evidence_in_nodes(stats: dict[str, Any]) -> bool:
    """Whether the stored graph keeps one Evidence node per relation (docs/schema.md), as a delta
    assumes: a Neo4j graph loaded by an earlier tiein keeps the evidence on its relationships
    and gets a full replace instead. (An embedded store that old cannot even count its
    Evidence nodes: ``stats()`` says to rebuild.)"""
    rels = stats.get("relationships", {})
    relations = sum(int(rels.get(REL_TYPE[kind], 0)) for kind in RELATION_KINDS)
    return int(stats.get("nodes", {}).get("Evidence", 0)) == relations


def _diff(state: State, result: Recomputed, summary: UpdateSummary, timer: _Timer) -> GraphDelta | None:
    """The delta from the stored graph to the new one (counted in ``summary.delta``); None when
    the basket count changed (every pair edge did: a replace is due)."""

    if result.counts_orders.n != state.counts_orders.n or result.counts_views.n != state.counts_views.n:
        return None
    old, new_data = state.graph, result.data
    with timer.step("diff"):
        if summary.path == "stock":  # only product-derived tables can differ: diff those
            delta = graph_delta(_products_only(old), _products_only(new_data), only=PRODUCT_TABLES)
            delta.meta = dict(new_data.meta)
        else:
            delta = graph_delta(old, new_data)
    summary.delta = delta.counts()
    return delta


def _summarise(summary: UpdateSummary, data: GraphData, inputs: _Inputs, timer: _Timer, t0: float) -> None:
    """The summary's relation counts, final table sizes and step times."""
    kinds = pc.value_counts(data.relations.column("kind")).to_pylist() if data.relations.num_rows else []
    summary.relations = {d["values"]: int(d["counts"]) for d in kinds}
    summary.counts["products"] = inputs.products.num_rows
    summary.counts["order_lines"] = inputs.orders.num_rows
    summary.seconds = dict(timer.seconds)
    summary.seconds["total"] = time.perf_counter() - t0


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

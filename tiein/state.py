"""The build state a generation keeps in its ``inputs/`` (tiein/home.py): what `tiein update`
merges new data into and what `tiein rollback` reloads.

    products.parquet orders.parquet views.parquet listed_pairs.parquet   normalised inputs
    sets.parquet              content sets (only when the build had them; tiein.loaders.sets)
    segments.parquet          each order's customer segment (only when the orders had one; tiein.segments)
    build.json                the build options, embedding model, source, state id
    counts_orders.npz counts_views.npz   unfiltered pair counts (tiein.mining.PairCounts)
    graph/*.parquet, graph/meta.json     the graph that was loaded (tiein.model.GraphData)
    neighbours.parquet        title neighbours (when the build had embeddings)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tiein.errors import ConfigError, InputError
from tiein.features import RoleConfig
from tiein.graph.build import conform
from tiein.home import inputs_dir
from tiein.mining import PairCounts, count_pairs
from tiein.model import (
    LISTED_PAIRS,
    OPTIONAL_PRODUCT_FIELDS,
    ORDER_SEGMENTS,
    ORDERS,
    PAIR_STATS,
    PRODUCTS,
    RELATIONS,
    SCENE_MEMBERS,
    SCENES,
    SETS,
    VIEWS,
    GraphData,
)
from tiein.next_purchase import NextConfig
from tiein.options import BuildOptions
from tiein.ranker import RankerConfig
from tiein.relations import RelationConfig
from tiein.season import SeasonConfig
from tiein.segments import SegmentConfig
from tiein.type_fallback import TypeFallbackConfig

STATE_VERSION = 1
GRAPH_PARTS = {
    "products": PRODUCTS,
    "co_purchased": PAIR_STATS,
    "co_viewed": PAIR_STATS,
    "relations": RELATIONS,
    "scenes": SCENES,
    "scene_members": SCENE_MEMBERS,
}


def _options_dict(opts: BuildOptions, model: str | None) -> dict[str, Any]:
    return {
        "min_count": opts.min_count,
        "max_basket": opts.max_basket,
        "after_window_days": opts.after_window_days,
        "neighbours_k": opts.neighbours_k,
        "candidates_per_product": opts.candidates_per_product,
        "graph_pairs_per_product": opts.graph_pairs_per_product,
        "embeddings": opts.embeddings,
        "model": model,
        "relations": opts.relations.to_dict(),
        "ranker": opts.ranker.to_dict(),
        "next_purchase": opts.next_purchase.to_dict(),
        "roles": opts.roles.to_dict(),
        "type_fallback": opts.type_fallback.to_dict(),
        "scenes": str(opts.scenes) if opts.scenes is not None else None,
        "discover_scenes": opts.discover_scenes,
        "max_scenes": opts.max_scenes,
        "season": opts.season.to_dict(),
        "segments": opts.segments.to_dict(),
    }


def _known(cls: Any, d: dict[str, Any]) -> Any:
    """``cls(**d)`` with only the fields ``cls`` still has: a home built by an older version may
    hold options since removed (``tiein update`` then builds as this version does), and lacks
    the ones added since (their defaults)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _options_from(d: dict[str, Any], home: Path, store_url: str | None, threads: int | None) -> BuildOptions:

    return BuildOptions(
        home=home,
        store_url=store_url,
        model=d["model"],
        embeddings=d["embeddings"],
        neighbours_k=d["neighbours_k"],
        candidates_per_product=d["candidates_per_product"],
        graph_pairs_per_product=d["graph_pairs_per_product"],
        min_count=d["min_count"],
        max_basket=d["max_basket"],
        after_window_days=d["after_window_days"],
        threads=threads,
        relations=_known(RelationConfig, d["relations"]),
        ranker=_known(RankerConfig, d.get("ranker", {})),  # states written before the ranker: defaults
        next_purchase=_known(NextConfig, d["next_purchase"]),
        roles=_known(RoleConfig, d["roles"]),
        type_fallback=_known(TypeFallbackConfig, d.get("type_fallback", {})),  # older states: defaults
        scenes=Path(d["scenes"]) if d["scenes"] else None,
        discover_scenes=d["discover_scenes"],
        max_scenes=d["max_scenes"],
        season=SeasonConfig.from_dict(d.get("season", {})),  # states written before seasons: defaults
        segments=SegmentConfig.from_dict(d.get("segments", {})),  # older states: defaults
    )


def _count(table: pa.Table, opts: BuildOptions, views: bool) -> Any:

    if table.num_rows == 0:
        return PairCounts.empty()
    if views:
        return count_pairs(
            table,
            basket_col="session_id",
            customer_col=None,
            ts_col=None,
            max_basket=opts.max_basket,
            after_window_days=None,
            threads=opts.threads,
        )
    return count_pairs(
        table, max_basket=opts.max_basket, after_window_days=opts.after_window_days, threads=opts.threads
    )


@dataclass
class State:
    """Everything in ``HOME/inputs`` (see the module docstring)."""

    build: dict[str, Any]
    products: pa.Table
    orders: pa.Table
    views: pa.Table
    listed_pairs: pa.Table
    counts_orders: Any
    counts_views: Any
    graph: GraphData
    neighbours: pa.Table | None
    sets: pa.Table = field(default_factory=SETS.empty_table)  # content sets (empty: none, or an older home)
    # each order's customer segment (empty: none mapped, or an older home; tiein.segments)
    segments: pa.Table = field(default_factory=ORDER_SEGMENTS.empty_table)


def write_counts(root: Path, counts_orders: Any, counts_views: Any) -> int:
    """Write the unfiltered pair counts (tiein.mining.PairCounts) into the state directory
    ``root`` ahead of the rest, so that a build can let them go right after mining instead of
    holding them through every later step; the orders' returning customers, which
    :func:`write_state` then takes as ``counts_written``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts_orders.save(root / "counts_orders.npz")
    counts_views.save(root / "counts_views.npz")
    return int(counts_orders.returning_customers)


def write_state(
    root: Path,
    opts: BuildOptions,
    *,
    source: str,
    derived_catalog: bool,
    products: pa.Table,
    orders: pa.Table,
    views: pa.Table,
    listed_pairs: pa.Table,
    data: GraphData,
    model: str | None,
    neighbours: pa.Table | None,
    counts_orders: Any = None,
    counts_views: Any = None,
    sets: pa.Table | None = None,
    segments: pa.Table | None = None,
    counts_written: int | None = None,
) -> None:
    """Write the state an update needs into the new directory ``root`` (the ``inputs/`` of a
    generation being staged, tiein/home.py). ``products`` are the normalised catalog rows (sales
    roles are recomputed); counts not given are computed here (:func:`tiein.mining.count_pairs`,
    ~1.3 s on Online Retail's 485k lines). ``data.meta["state_id"]`` ties the state to the graph
    it describes. ``counts_written``: the counts are in ``root`` already (:func:`write_counts`,
    which returned this number: the orders' returning customers)."""
    tmp = Path(root)
    (tmp / "graph").mkdir(parents=True, exist_ok=counts_written is not None)
    pq.write_table(products.cast(PRODUCTS), tmp / "products.parquet")
    pq.write_table(orders.cast(ORDERS), tmp / "orders.parquet")
    pq.write_table(views.cast(VIEWS), tmp / "views.parquet")
    pq.write_table(listed_pairs.cast(LISTED_PAIRS), tmp / "listed_pairs.parquet")
    if sets is not None and sets.num_rows:
        pq.write_table(sets.cast(SETS), tmp / "sets.parquet")
    if segments is not None and segments.num_rows:
        pq.write_table(segments.cast(ORDER_SEGMENTS), tmp / "segments.parquet")
    if counts_written is None:
        co = counts_orders if counts_orders is not None else _count(orders, opts, views=False)
        cv = counts_views if counts_views is not None else _count(views, opts, views=True)
        counts_written = write_counts(tmp, co, cv)
    for part, schema in GRAPH_PARTS.items():
        pq.write_table(getattr(data, part).cast(schema), tmp / "graph" / f"{part}.parquet")
    (tmp / "graph" / "meta.json").write_text(
        json.dumps(data.meta, ensure_ascii=False, sort_keys=True), "utf-8"
    )
    if neighbours is not None:
        pq.write_table(neighbours, tmp / "neighbours.parquet")
    build = {
        "version": STATE_VERSION,
        "state_id": data.meta.get("state_id"),
        "source": source,
        "derived_catalog": derived_catalog,
        "options": _options_dict(opts, model),
        "returning_customers": counts_written,
    }
    (tmp / "build.json").write_text(json.dumps(build, ensure_ascii=False, indent=1), "utf-8")


def _optional_nulls(table: pa.Table, name: str) -> pa.Table:
    """A products table of a state written before an optional PRODUCTS field existed
    (``product_type``): the field is read as nulls; any other missing column is an error."""
    return conform(table, PRODUCTS, name, optional=OPTIONAL_PRODUCT_FIELDS)


def _read_part(path: Path, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(path)
    return _optional_nulls(table, str(path)) if schema.equals(PRODUCTS) else table.cast(schema)


def load_state(home: Path) -> State:
    """Read the inputs/ of the home's answering generation (tiein/home.py); ConfigError when
    there is none (no build yet, or a build by an older version) and InputError naming a damaged
    file."""

    root = inputs_dir(home)
    if not (root / "build.json").is_file():
        raise ConfigError(
            f"no build state in {home}: run `tiein build` first (a build saves what `tiein update` needs)"
        )
    try:
        build = json.loads((root / "build.json").read_text("utf-8"))
        if build.get("version") != STATE_VERSION:
            raise ConfigError(
                f"{root / 'build.json'}: state version {build.get('version')!r}; rebuild with `tiein build`"
            )
        tables = {
            n: pq.read_table(root / f"{n}.parquet") for n in ("products", "orders", "views", "listed_pairs")
        }
        graph = {p: _read_part(root / "graph" / f"{p}.parquet", s) for p, s in GRAPH_PARTS.items()}
        products = _optional_nulls(tables["products"], str(root / "products.parquet"))
        meta = json.loads((root / "graph" / "meta.json").read_text("utf-8"))
        counts = {n: PairCounts.load(root / f"counts_{n}.npz") for n in ("orders", "views")}
        nb = pq.read_table(root / "neighbours.parquet") if (root / "neighbours.parquet").exists() else None
        sets = pq.read_table(root / "sets.parquet").cast(SETS) if (root / "sets.parquet").exists() else None
        seg_file = root / "segments.parquet"
        segments = pq.read_table(seg_file).cast(ORDER_SEGMENTS) if seg_file.exists() else None
    except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"the build state is damaged ({exc}); run `tiein build` again", file=str(root)
        ) from exc
    return State(
        build=build,
        products=products,
        orders=tables["orders"].cast(ORDERS),
        views=tables["views"].cast(VIEWS),
        listed_pairs=tables["listed_pairs"].cast(LISTED_PAIRS),
        counts_orders=counts["orders"],
        counts_views=counts["views"],
        graph=GraphData(**graph, meta=meta),
        neighbours=nb,
        sets=sets if sets is not None else SETS.empty_table(),
        segments=segments if segments is not None else ORDER_SEGMENTS.empty_table(),
    )

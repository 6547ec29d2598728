"""tiein.spark_classify against the build's own classify step: the same RELATIONS rows in the same
order from candidate features and classification run per anchor bucket on Spark, with the
ranker's basket weights counted by Spark; and a whole build with ``mining="spark"`` giving the
same graph as the numpy build.

One local Spark session (``local[2]``) is shared by the module. Without pyspark or Java the
module is skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tiein import loaders
from tiein.features import candidate_features, with_sales_roles
from tiein.mining import mine_pairs
from tiein.mining.weighted import weighted_pair_counts
from tiein.model import RELATIONS
from tiein.options import BuildOptions
from tiein.product_type import with_product_types
from tiein.ranker import BASKET_UNIT, fit_from_orders, with_basket_weights
from tiein.relations import classify, score_features

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TIEIN_DATA", ROOT.parent / "shared" / "data"))
HAVE_RETAIL = (DATA / "online_retail").is_dir()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from test_spark_mining import local_spark

    yield from local_spark(shuffle_partitions=4)


@pytest.fixture(scope="module")
def retail() -> tuple[pa.Table, pa.Table]:
    """The first 60k order lines of Online Retail and their products, with roles and types."""
    if not HAVE_RETAIL:
        pytest.skip(f"no Online Retail under {DATA}")
    loaded = loaders.load_dataset("online_retail", data_dir=DATA)
    orders = loaded.orders.slice(0, 60_000)
    opts = BuildOptions()
    products = with_product_types(with_sales_roles(loaded.products, orders, opts.roles))
    return products, orders


def test_buckets_split_pairs_by_either_end() -> None:
    from tiein.spark_classify import bucket_rows, buckets_of

    ids = pa.array(["tent", "chair", "lamp", "tent", "stove"])
    got = buckets_of(ids, 3)
    assert got.tolist() == [buckets_of(pa.array([i]), 3)[0] for i in ids.to_pylist()]  # row by row
    assert got[0] == got[3] and set(got.tolist()) <= {0, 1, 2}
    pairs = pa.table({"a": ["chair", "lamp"], "b": ["tent", "tent"]})
    from tiein.model import PAIR_STATS

    full = pa.table(
        {
            f.name: pairs.column(f.name) if f.name in ("a", "b") else pa.array([1, 1], f.type)
            for f in PAIR_STATS
        },
        schema=PAIR_STATS,
    )
    rows = bucket_rows(full, 3)
    real = rows.filter(pc.is_valid(rows.column("a")))
    assert rows.num_rows - real.num_rows == 3  # one marker row per bucket: every bucket runs
    for a, b in zip(pairs.column("a").to_pylist(), pairs.column("b").to_pylist(), strict=True):
        mine = real.filter(pc.and_(pc.equal(real.column("a"), a), pc.equal(real.column("b"), b)))
        ends = {int(buckets_of(pa.array([x]), 3)[0]) for x in (a, b)}
        assert set(mine.column("bucket").to_pylist()) == ends and mine.num_rows == len(ends)


def test_basket_weights_equal_numpy(spark: Any, retail: tuple[pa.Table, pa.Table]) -> None:
    """Spark's basket-size weighted counts equal weighted_pair_counts' (integers, so exactly)."""
    from tiein.spark_classify import basket_weights_spark

    _, orders = retail
    pairs = mine_pairs(orders, min_count=3, max_basket=50, threads=1).pairs
    pair_w, item_w = basket_weights_spark(spark, orders, pairs, max_basket=50)
    want_ab, want_a, want_b = weighted_pair_counts(
        orders, pairs.column("a"), pairs.column("b"), max_basket=50, unit=BASKET_UNIT
    )
    got = dict(
        zip(
            zip(pair_w["a"].to_pylist(), pair_w["b"].to_pylist(), strict=True),
            pair_w["w_ab"].to_pylist(),
            strict=True,
        )
    )
    keys = zip(pairs["a"].to_pylist(), pairs["b"].to_pylist(), strict=True)
    assert [got.get(k, 0) for k in keys] == want_ab.tolist()
    assert (want_ab > 0).sum() > 1000
    items = dict(zip(item_w["product_id"].to_pylist(), item_w["w"].to_pylist(), strict=True))
    assert [items.get(a, 0) for a in pairs["a"].to_pylist()] == want_a.tolist()
    assert [items.get(b, 0) for b in pairs["b"].to_pylist()] == want_b.tolist()


def _neighbours(products: pa.Table, k: int = 5) -> tuple[pa.Table, list[str], np.ndarray]:
    """Each product's k nearest of random unit vectors (a stand-in for title embeddings)."""
    ids = products.column("product_id").to_pylist()
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(ids), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = vectors @ vectors.T
    np.fill_diagonal(sim, -2)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    src = np.repeat(np.arange(len(ids)), k)
    nb = pa.table(
        {
            "src": pa.array([ids[i] for i in src]),
            "dst": pa.array([ids[j] for j in top.ravel()]),
            "similarity": pa.array(sim[src, top.ravel()].astype(np.float64)),
        }
    )
    return nb, ids, vectors


def test_classify_on_spark_equals_the_local_step(spark: Any, retail: tuple[pa.Table, pa.Table]) -> None:
    """Features and classification per anchor bucket on Spark give the RELATIONS the build's
    classify step gives: with the fitted complement ranker and its basket weights, title
    neighbours and similarity, viewed-together pairs, every row and column equal, in the same
    order."""
    from tiein.spark_classify import classify_spark

    products, orders = retail
    opts = BuildOptions()
    cfg = opts.relations
    mined = mine_pairs(orders, min_count=2, max_basket=opts.max_basket, after_window_days=90, threads=1)
    nb, ids, vectors = _neighbours(products)
    # viewed together: a stand-in from the same customers' baskets (as sessions), other pairs
    sessions = orders.set_column(0, "order_id", orders.column("customer_id").cast(pa.string()))
    views = sessions.filter(pc.is_valid(sessions.column("order_id")))
    co_view = mine_pairs(views, customer_col=None, ts_col=None, min_count=3, max_basket=200, threads=1).pairs
    assert co_view.num_rows > 1_000

    def features(pairs: pa.Table) -> pa.Table:
        return candidate_features(
            products, co_purchase=pairs, co_view=co_view, neighbours=nb, ids=ids, vectors=vectors
        )

    ranker, report = fit_from_orders(
        products,
        orders,
        features=features,
        min_count=2,
        max_basket=opts.max_basket,
        after_window_days=90,
        min_pair_count=cfg.min_pair_count,
        baseline=lambda f: score_features(f, cfg)["complement"],
        min_probability=cfg.min_probability,
        keep_per_src=cfg.keep_per_kind,
        cfg=opts.ranker,
        relation_cfg=cfg,
    )
    assert ranker is not None, report
    local_features = with_basket_weights(features(mined.pairs), orders, opts.max_basket, cfg.min_pair_count)
    local = classify(local_features, cfg, ranker)
    got, candidates = classify_spark(
        spark,
        products,
        mined.pairs,
        orders,
        cfg=cfg,
        ranker=ranker,
        max_basket=opts.max_basket,
        neighbours=nb,
        ids=ids,
        vectors=vectors,
        co_view=co_view,
        buckets=5,
    )
    assert got.schema == RELATIONS
    assert candidates == local_features.num_rows
    kinds = set(local.column("kind").to_pylist())
    assert local.num_rows > 5_000 and {"complement", "substitute"} <= kinds
    assert pc.sum(pc.greater(local.column("co_view"), 0)).as_py() > 100  # the views count
    for name in RELATIONS.names:
        assert got.column(name).equals(local.column(name)), name
    assert got.equals(local)


@pytest.mark.slow
def test_build_on_spark_gives_the_same_graph(spark: Any, tmp_path: Path) -> None:
    """``tiein build --mining spark`` (pairs mined, candidates featured and classified on Spark,
    title embeddings and the rest on the driver) gives the graph of the numpy build: every table
    the store serves (products, every relation kind with its evidence, scenes) equal, on 40k
    Online Retail lines with their catalog (titles not embedded here: the classification with
    title neighbours and similarity is compared above)."""
    import pyarrow.parquet as pq

    from tiein.graph import open_store
    from tiein.graph.snapshot import read_graph
    from tiein.pipeline import build

    if not HAVE_RETAIL:
        pytest.skip(f"no Online Retail under {DATA}")
    loaded = loaders.load_dataset("online_retail", data_dir=DATA)
    orders = loaded.orders.slice(0, 40_000)
    ordered = pc.is_in(loaded.products.column("product_id"), value_set=pc.unique(orders.column("product_id")))
    pq.write_table(orders, tmp_path / "orders.parquet")
    pq.write_table(
        loaded.products.filter(ordered).select(["product_id", "title", "price"]), tmp_path / "catalog.parquet"
    )
    graphs = []
    for backend in ("numpy", "spark"):
        opts = BuildOptions(
            catalog=tmp_path / "catalog.parquet",
            orders=tmp_path / "orders.parquet",
            home=tmp_path / backend,
            mining=backend,
            embeddings=False,
        )
        summary = build(opts)
        store = open_store(summary.store)
        try:
            graphs.append(read_graph(store)[0])
        finally:
            store.close()
    local, on_spark = graphs
    assert local["rel_complement"].num_rows > 3_000 and local["rel_next"].num_rows > 300
    assert local["scenes"].num_rows > 0
    assert local.keys() == on_spark.keys()
    for name, table in local.items():
        assert on_spark[name].equals(table), name

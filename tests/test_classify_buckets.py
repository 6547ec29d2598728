"""tiein.classify_buckets: candidates featured and classified a bucket of anchors at a time on
this machine give the rows of classifying them all at once (with the fitted ranker and its
basket weights, title neighbours and similarity, viewed-together pairs), and a build of a shop
past ``BuildOptions.classify_rows`` gives the same graph as one classifying all at once."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_spark_classify import _neighbours

from tiein import loaders
from tiein.classify_buckets import bucket_count, classify_in_buckets, estimated_candidates, pair_weights
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


@pytest.fixture(scope="module")
def retail() -> tuple[pa.Table, pa.Table]:
    """The first 60k order lines of Online Retail and their products, with roles and types."""
    if not (DATA / "online_retail").is_dir():
        pytest.skip(f"no Online Retail under {DATA}")
    loaded = loaders.load_dataset("online_retail", data_dir=DATA)
    orders = loaded.orders.slice(0, 60_000)
    products = with_product_types(with_sales_roles(loaded.products, orders, BuildOptions().roles))
    return products, orders


def test_bucket_count() -> None:
    assert bucket_count(5_000_000, 6_000_000) == 1 and bucket_count(6_000_000, 6_000_000) == 1
    assert bucket_count(6_000_001, 6_000_000) == 2 and bucket_count(20_000_000, 6_000_000) == 4
    assert bucket_count(10**9, 0) == 1  # 0: never split


def test_pair_weights_equal_the_counts_per_row(retail: tuple[pa.Table, pa.Table]) -> None:
    _, orders = retail
    pairs = mine_pairs(orders, min_count=2, max_basket=50, threads=1).pairs
    pair_w, item_w = pair_weights(orders, pairs, min_pair_count=3, max_basket=50)
    needed = pairs.filter(pc.greater_equal(pairs.column("n_ab"), 3))
    want_ab, want_a, want_b = weighted_pair_counts(
        orders, needed.column("a"), needed.column("b"), max_basket=50, unit=BASKET_UNIT
    )
    assert pair_w.column("w_ab").to_numpy().tolist() == want_ab.tolist() and (want_ab > 0).sum() > 1_000
    items = dict(zip(item_w["product_id"].to_pylist(), item_w["w"].to_pylist(), strict=True))
    assert [items[a] for a in needed["a"].to_pylist()] == want_a.tolist()
    assert [items[b] for b in needed["b"].to_pylist()] == want_b.tolist()


def test_classify_in_buckets_equals_all_at_once(retail: tuple[pa.Table, pa.Table]) -> None:
    products, orders = retail
    opts = BuildOptions()
    cfg = opts.relations
    mined = mine_pairs(orders, min_count=2, max_basket=opts.max_basket, after_window_days=90, threads=1)
    nb, ids, vectors = _neighbours(products)
    sessions = orders.set_column(0, "order_id", orders.column("customer_id").cast(pa.string()))
    views = sessions.filter(pc.is_valid(sessions.column("order_id")))
    co_view = mine_pairs(views, customer_col=None, ts_col=None, min_count=3, max_basket=200, threads=1).pairs

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
    all_features = with_basket_weights(features(mined.pairs), orders, opts.max_basket, cfg.min_pair_count)
    whole = classify(all_features, cfg, ranker)
    steps: list[tuple[int, int]] = []
    got, candidates = classify_in_buckets(
        products,
        mined.pairs,
        orders,
        buckets=3,
        cfg=cfg,
        ranker=ranker,
        max_basket=opts.max_basket,
        neighbours=nb,
        ids=ids,
        vectors=vectors,
        co_view=co_view,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert got.schema == RELATIONS and candidates == all_features.num_rows
    assert whole.num_rows > 5_000 and {"complement", "substitute"} <= set(whole.column("kind").to_pylist())
    for name in RELATIONS.names:
        assert got.column(name).equals(whole.column(name)), name
    # the estimate the build splits by is an upper bound of the candidates
    assert estimated_candidates(mined.pairs, nb, opts.candidates_per_product) >= all_features.num_rows


def test_a_build_past_classify_rows_gives_the_same_graph(tmp_path: Path) -> None:
    """A build that classifies in buckets (``classify_rows`` small) holds the graph of one that
    classifies all at once: every served table equal, and the meta says how many buckets."""
    import json

    import pyarrow.parquet as pq

    from tiein.graph import open_store
    from tiein.graph.snapshot import read_graph
    from tiein.pipeline import build

    if not (DATA / "online_retail").is_dir():
        pytest.skip(f"no Online Retail under {DATA}")
    loaded = loaders.load_dataset("online_retail", data_dir=DATA)
    orders = loaded.orders.slice(0, 40_000)
    ordered = pc.is_in(loaded.products.column("product_id"), value_set=pc.unique(orders.column("product_id")))
    pq.write_table(orders, tmp_path / "orders.parquet")
    pq.write_table(
        loaded.products.filter(ordered).select(["product_id", "title", "price"]), tmp_path / "catalog.parquet"
    )
    graphs, metas = [], []
    for name, rows in (("whole", 0), ("buckets", 20_000)):
        summary = build(
            BuildOptions(
                catalog=tmp_path / "catalog.parquet",
                orders=tmp_path / "orders.parquet",
                home=tmp_path / name,
                embeddings=False,
                classify_rows=rows,
            )
        )
        store = open_store(summary.store)
        try:
            tables, stats = read_graph(store)
        finally:
            store.close()
        graphs.append(tables)
        metas.append(json.loads(json.dumps(stats["meta"])))
    whole, buckets = graphs
    assert "classified_in_buckets" not in metas[0] and metas[1]["classified_in_buckets"] >= 3
    assert whole["rel_complement"].num_rows > 3_000 and whole.keys() == buckets.keys()
    for name, table in whole.items():
        assert buckets[name].equals(table), name

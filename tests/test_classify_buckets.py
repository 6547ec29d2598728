"""tiein.classify_buckets: candidates featured and classified a bucket of anchors at a time on
this machine give the rows of classifying them all at once (with the fitted ranker and its
basket weights, title neighbours and similarity, viewed-together pairs), and a build of a shop
past ``BuildOptions.classify_rows`` gives the same graph as one classifying all at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from test_spark_classify import built_graph, classified_at_once

from tiein.classify_buckets import bucket_count, classify_in_buckets, estimated_candidates, pair_weights
from tiein.mining import mine_pairs
from tiein.mining.weighted import weighted_pair_counts
from tiein.model import RELATIONS
from tiein.options import BuildOptions
from tiein.ranker import BASKET_UNIT


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
    at_once = classified_at_once(products, orders)
    steps: list[tuple[int, int]] = []
    got, candidates = classify_in_buckets(
        products,
        at_once.pairs,
        orders,
        buckets=3,
        cfg=opts.relations,
        ranker=at_once.ranker,
        max_basket=opts.max_basket,
        neighbours=at_once.neighbours,
        ids=at_once.ids,
        vectors=at_once.vectors,
        co_view=at_once.co_view,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert got.schema == RELATIONS and candidates == at_once.features.num_rows
    for name in RELATIONS.names:
        assert got.column(name).equals(at_once.relations.column(name)), name
    # the estimate the build splits by is an upper bound of the candidates
    estimate = estimated_candidates(at_once.pairs, at_once.neighbours, opts.candidates_per_product)
    assert estimate >= at_once.features.num_rows


def test_a_build_past_classify_rows_gives_the_same_graph(tmp_path: Path) -> None:
    """A build that classifies in buckets (``classify_rows`` small) holds the graph of one that
    classifies all at once: every served table equal, and the meta says how many buckets."""
    whole, whole_stats = built_graph(tmp_path, "whole", classify_rows=0)
    buckets, bucket_stats = built_graph(tmp_path, "buckets", classify_rows=20_000)
    assert "classified_in_buckets" not in whole_stats["meta"]
    assert bucket_stats["meta"]["classified_in_buckets"] >= 3
    assert whole["rel_complement"].num_rows > 3_000 and whole.keys() == buckets.keys()
    for name, table in whole.items():
        assert buckets[name].equals(table), name


def test_the_buckets_follow_the_memory_left(retail: tuple[pa.Table, pa.Table], monkeypatch: Any) -> None:
    """``classify_rows`` candidates a bucket, fewer when the memory the build can still take
    (a ``--memory-budget``, the cgroup's, the machine's: tiein.sysmem.available_memory) holds
    fewer rows of :data:`tiein.stages.CLASSIFY_BYTES_PER_ROW`, never fewer than the minimum."""
    from tiein import stages
    from tiein.model import LISTED_PAIRS

    _, orders = retail
    pairs = mine_pairs(orders, min_count=2, max_basket=50, threads=1).pairs
    opts = BuildOptions()
    estimate = estimated_candidates(pairs, None, opts.candidates_per_product)
    monkeypatch.setattr(stages, "MIN_CLASSIFY_ROWS", 1_000)
    assert estimate > 20_000

    def buckets(left: int | None, classify_rows: int = opts.classify_rows) -> int:
        monkeypatch.setattr(stages, "available_memory", lambda: left)
        o = BuildOptions(classify_rows=classify_rows)
        return stages._classify_buckets(o, LISTED_PAIRS.empty_table(), None, pairs, None)

    assert buckets(None) == buckets(10**13) == 1  # unknown, or plenty: all at once
    assert buckets(5_000 * stages.CLASSIFY_BYTES_PER_ROW) == bucket_count(estimate, 5_000) > 4
    assert buckets(0) == bucket_count(estimate, 1_000)  # the floor
    assert buckets(0, classify_rows=0) == 1  # 0: never split, whatever the memory
    assert buckets(10**13, classify_rows=2_000) == bucket_count(estimate, 2_000)  # asked for fewer

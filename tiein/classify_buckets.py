"""Candidate features and classification a share of the anchors at a time.

A relation depends only on its anchor's pair rows and the two products, so the candidates can be
featured and classified bucket by bucket: the anchors go into buckets (crc32 of the id,
:func:`tiein.ranker.model.buckets_of`), each bought-together pair (and viewed-together pair and
title-neighbour pair) goes to the buckets of both its ends, :func:`tiein.features.candidate_features`
runs on those rows and only the rows whose anchor is in the bucket are classified. The result is
exactly the rows of classifying every candidate at once (tests/test_classify_buckets.py).

Two runners share :func:`classify_bucket`: tiein.spark_classify on Spark executors, and
:func:`classify_in_buckets` on this machine for a shop whose candidate table would not fit in
memory at once (``BuildOptions.classify_rows``): the candidate feature table, its numpy columns
and classification's temporaries are then held for one bucket at a time (each pair is featured
in up to two buckets, so the feature queries cost up to twice as much in all).

The complement ranker's basket-size weights (:func:`tiein.ranker.with_basket_weights`) are
counted once for every pair (:func:`pair_weights`) and looked up per bucket
(:func:`with_pair_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.features import candidate_features
from tiein.mining.weighted import weighted_pair_counts
from tiein.model import RELATIONS
from tiein.ranker.model import BASKET_UNIT, buckets_of
from tiein.relations import RelationConfig, classify

WEIGHTS = ("w_ab", "w_src", "w_dst")
RELATION_ORDER = [("src", "ascending"), ("kind", "ascending"), ("score", "descending"), ("dst", "ascending")]


def estimated_candidates(co_purchase: pa.Table, neighbours: pa.Table | None, per_product: int) -> int:
    """An upper bound of the candidate pairs :func:`tiein.features.candidate_features` makes:
    both directions of every pair, but at most ``per_product`` best and 20 staple partners per
    product, plus both directions of the title neighbours."""
    if co_purchase.num_rows == 0:
        return 2 * int(neighbours.num_rows if neighbours is not None else 0)
    ends = pa.chunked_array([*co_purchase.column("a").chunks, *co_purchase.column("b").chunks])
    capped = len(pc.unique(ends)) * (per_product + 20)
    both_ways = 2 * int(neighbours.num_rows if neighbours is not None else 0)
    return min(2 * int(co_purchase.num_rows), capped) + both_ways


def bucket_count(estimate: int, rows: int) -> int:
    """Buckets that keep each near ``rows`` candidates (1: classify all at once)."""
    return 1 if rows <= 0 or estimate <= rows else math.ceil(estimate / rows)


def pair_weights(
    orders: pa.Table, co_purchase: pa.Table, *, min_pair_count: int, max_basket: int
) -> tuple[pa.Table, pa.Table]:
    """The basket weights of :func:`tiein.ranker.with_basket_weights`, counted once: per pair
    with ``min_pair_count`` co-purchases (a, b, w_ab) and per product at an end of one
    (product_id, w) — every candidate row that gets weights is such a pair."""
    needed = co_purchase.filter(pc.greater_equal(co_purchase.column("n_ab"), min_pair_count))
    a, b = needed.column("a"), needed.column("b")
    w_ab, w_a, w_b = weighted_pair_counts(orders, a, b, max_basket=max_basket, unit=BASKET_UNIT)
    items = pa.table(
        {
            "product_id": pa.chunked_array([*a.chunks, *b.chunks]),
            "w": pa.array(np.concatenate([w_a, w_b]), pa.int64()),
        }
    )
    items = items.group_by("product_id").aggregate([("w", "max")]).rename_columns(["product_id", "w"])
    return pa.table({"a": a, "b": b, "w_ab": pa.array(w_ab, pa.int64())}), items


def with_pair_weights(
    features: pa.Table, pair_w: pa.Table, item_w: pa.Table, min_pair_count: int
) -> pa.Table:
    """``features`` with ``w_ab`` / ``w_src`` / ``w_dst`` looked up from counted weights
    (:func:`pair_weights`, or Spark's :func:`tiein.spark_classify.basket_weights_spark`): what
    :func:`tiein.ranker.with_basket_weights` counts from the order lines, for the rows with
    ``min_pair_count`` co-purchases (0 elsewhere)."""
    src, dst = features.column("src"), features.column("dst")
    a = pc.if_else(pc.less(src, dst), src, dst)
    b = pc.if_else(pc.less(src, dst), dst, src)
    key = pc.binary_join_element_wise(a, b, "\x00")
    pair_key = pc.binary_join_element_wise(pair_w.column("a"), pair_w.column("b"), "\x00")
    w_ab = _looked_up(key, pair_key, pair_w.column("w_ab"))
    ids = item_w.column("product_id")
    w_src, w_dst = _looked_up(src, ids, item_w.column("w")), _looked_up(dst, ids, item_w.column("w"))
    on = features.column("n_ab").to_numpy(zero_copy_only=False) >= min_pair_count
    for name, values in zip(WEIGHTS, (w_ab, w_src, w_dst), strict=True):
        features = features.append_column(name, pa.array(np.where(on, values, 0), pa.int64()))
    return features


def _looked_up(query: Any, keys: Any, values: Any) -> np.ndarray:
    at = pc.index_in(query, value_set=pa.chunked_array(keys).combine_chunks())
    got = pc.take(pa.chunked_array(values).combine_chunks(), at)
    return np.asarray(pc.fill_null(got, 0).to_numpy(zero_copy_only=False), np.int64)


def by_end_bucket(table: pa.Table | None, a: str, b: str, buckets: int) -> Callable[[int], pa.Table | None]:
    """A function of a bucket giving the rows of ``table`` whose ``a`` or ``b`` end is in it
    (the ends' buckets hashed once, however many buckets are asked for)."""
    if table is None or not table.num_rows:
        return lambda _bucket: table
    ends_a, ends_b = buckets_of(table.column(a), buckets), buckets_of(table.column(b), buckets)
    return lambda bucket: table.filter(pa.array((ends_a == bucket) | (ends_b == bucket)))


def classify_bucket(
    bucket: int,
    buckets: int,
    pairs: pa.Table,
    products: pa.Table,
    *,
    cfg: RelationConfig,
    ranker: Any,
    weights: tuple[pa.Table, pa.Table] | None,
    neighbours: pa.Table | None,
    co_view: pa.Table | None,
    ids: list[str] | None,
    vectors: np.ndarray | None,
    per_product: int,
    threads: int | None,
) -> tuple[pa.Table, int]:
    """The RELATIONS of the anchors in ``bucket`` (of ``buckets``) and how many candidates they
    had. ``pairs``, ``neighbours`` and ``co_view``: the co-purchase pairs, title neighbours and
    viewed-together pairs with an end in the bucket (:func:`by_end_bucket`; both directions of
    each are candidates of its ends)."""
    features = candidate_features(
        products,
        co_purchase=pairs,
        co_view=co_view,
        neighbours=neighbours,
        ids=ids,
        vectors=vectors,
        threads=threads,
        per_product=per_product,
    )
    features = features.filter(pa.array(buckets_of(features.column("src"), buckets) == bucket))
    n = features.num_rows
    if weights is not None:
        features = with_pair_weights(features, weights[0], weights[1], cfg.min_pair_count)
    return classify(features, cfg, ranker).cast(RELATIONS), n


def classify_in_buckets(
    products: pa.Table,
    co_purchase: pa.Table,
    orders: pa.Table,
    *,
    buckets: int,
    cfg: RelationConfig,
    ranker: Any,
    max_basket: int,
    neighbours: pa.Table | None = None,
    ids: list[str] | None = None,
    vectors: np.ndarray | None = None,
    co_view: pa.Table | None = None,
    per_product: int = 60,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, int]:
    """What classifying every candidate at once gives (the rows of :func:`tiein.relations.classify`
    for ``candidate_features(products, co_purchase=…, co_view=…, neighbours=…, ids=…, vectors=…)``,
    with the basket weights of ``orders`` when ``ranker`` is given, in the same order) and the
    candidate count, computed ``buckets`` buckets of anchors at a time on this machine."""
    weights = None
    if ranker is not None and co_purchase.num_rows and orders.num_rows:
        weights = pair_weights(orders, co_purchase, min_pair_count=cfg.min_pair_count, max_basket=max_basket)
    pairs_in = by_end_bucket(co_purchase, "a", "b", buckets)
    neighbours_in = by_end_bucket(neighbours, "src", "dst", buckets)
    co_view_in = by_end_bucket(co_view, "a", "b", buckets)
    parts: list[pa.Table] = []
    counted = 0
    for k in range(buckets):
        if progress:
            progress(k, buckets)
        pairs = pairs_in(k)
        assert pairs is not None  # co_purchase is a table
        rel, n = classify_bucket(
            k,
            buckets,
            pairs,
            products,
            cfg=cfg,
            ranker=ranker,
            weights=weights,
            neighbours=neighbours_in(k),
            co_view=co_view_in(k),
            ids=ids,
            vectors=vectors,
            per_product=per_product,
            threads=threads,
        )
        parts.append(rel)
        counted += n
        del pairs
    if progress:
        progress(buckets, buckets)
    table = pa.concat_tables(parts) if parts else RELATIONS.empty_table()
    return table.take(pc.sort_indices(table, RELATION_ORDER)).combine_chunks(), counted

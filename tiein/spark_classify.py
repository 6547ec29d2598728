"""Candidate features and relation classification on Apache Spark: the scale-out twin of the
build's ``classify`` step (:func:`tiein.features.candidate_features`,
:func:`tiein.ranker.with_basket_weights`, :func:`tiein.relations.classify`), giving the same
RELATIONS rows in the same order.

Everything a relation of product ``p`` depends on is either a pair row with ``p`` at one end or
a property of a product, so the work splits by the anchor (src): each product falls in one of
``buckets`` buckets (crc32 of its id), every bought-together pair goes to the buckets of its
two ends, and ``groupBy(bucket).applyInArrow`` runs the build's own functions on each bucket's
pairs, keeping the rows whose src is in that bucket (the best candidates of an anchor, its
top-k per kind and each relation's evidence depend on that anchor's rows only). The executors
hold one bucket's candidate features at a time; the driver gets back relations only.

The complement ranker's basket-size weights (orders holding both products / each product, a
basket of ``s`` products weighing ``BASKET_UNIT // s``) are counted by Spark from the order
lines beforehand: co-basket pair instances (``posexplode`` + ``slice`` of each basket's sorted
products, as the pair miner does) summed per kept pair, and per product. Integer sums: equal to
the numpy counts.

What stays on the driver: the ranker fit (it learns from a time split of the orders), the
substitute/complement typer of shops with listed pairs and content sets; a build with listed
pairs or content sets classifies locally (said in the build's meta).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.classify_buckets import RELATION_ORDER, by_end_bucket, classify_bucket
from tiein.model import PAIR_STATS, RELATIONS
from tiein.ranker.model import BASKET_UNIT, buckets_of
from tiein.relations import RelationConfig
from tiein.spark_mining.inputs import arrow_lines

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def basket_weights_spark(
    spark: SparkSession, orders: pa.Table, pairs: pa.Table, *, max_basket: int, unit: int = BASKET_UNIT
) -> tuple[pa.Table, pa.Table]:
    """Spark's count of the basket weights (:func:`tiein.mining.weighted.weighted_pair_counts`):
    ``(pair weights, product weights)``: the orders holding both products of each row of
    ``pairs`` (``a`` < ``b``, product ids), each weighing ``unit // basket size``, as columns
    a, b, w_ab (pairs no kept basket holds are left out), and per product: product_id, w."""
    from pyspark.sql import functions as F

    lines = arrow_lines(spark, orders, "order_id", "product_id", None, None).select("b", "i").distinct()
    baskets = (
        lines.groupBy("b")
        .agg(F.array_sort(F.collect_list("i")).alias("items"))
        .withColumn("size", F.size("items"))
        .filter((F.col("size") >= 2) & (F.col("size") <= max_basket))
        .withColumn("w", F.floor(F.lit(unit) / F.col("size")).cast("long"))
    )
    items = (
        baskets.select(F.explode("items").alias("product_id"), "w")
        .groupBy("product_id")
        .agg(F.sum("w").cast("long").alias("w"))
    )
    wanted: DataFrame = spark.createDataFrame(pairs.select(["a", "b"]))
    instances = (
        baskets.select("items", "size", "w", F.posexplode("items").alias("pos", "a"))
        .filter(F.col("pos") < F.col("size") - 1)
        .select(
            "a",
            F.explode(F.slice("items", F.col("pos") + 2, F.col("size") - F.col("pos") - 1)).alias("b"),
            "w",
        )
    )
    summed = (
        instances.join(wanted, ["a", "b"], "left_semi")
        .groupBy("a", "b")
        .agg(F.sum("w").cast("long").alias("w_ab"))
    )
    return summed.toArrow(), items.toArrow()


def bucket_rows(pairs: pa.Table, buckets: int) -> pa.Table:
    """The PAIR_STATS ``pairs`` with a ``bucket`` column: each row once for the bucket of ``a``
    and once more for that of ``b`` when it differs; and one row of nulls per bucket, so that
    every bucket runs (its anchors may have only title neighbours)."""
    ba, bb = buckets_of(pairs.column("a"), buckets), buckets_of(pairs.column("b"), buckets)
    other = bb != ba
    marks = pa.table(
        {f.name: pa.nulls(buckets, f.type) for f in PAIR_STATS}, schema=PAIR_STATS
    ).append_column("bucket", pa.array(np.arange(buckets, dtype=np.int32)))
    return pa.concat_tables(
        [
            pairs.append_column("bucket", pa.array(ba)),
            pairs.filter(pa.array(other)).append_column("bucket", pa.array(bb[other])),
            marks,
        ]
    )


def classify_spark(
    spark: SparkSession,
    products: pa.Table,
    co_purchase: pa.Table,
    orders: pa.Table,
    *,
    cfg: RelationConfig,
    ranker: Any,
    max_basket: int,
    neighbours: pa.Table | None = None,
    ids: list[str] | None = None,
    vectors: np.ndarray | None = None,
    co_view: pa.Table | None = None,
    per_product: int = 60,
    buckets: int | None = None,
) -> tuple[pa.Table, int]:
    """The RELATIONS of the candidate pairs, classified on Spark (module docstring), and how many
    candidate pairs were classified: the rows
    :func:`tiein.relations.classify` gives for ``candidate_features(products, co_purchase=…,
    co_view=…, neighbours=…, ids=…, vectors=…)`` with the basket weights of ``orders`` when
    ``ranker`` is given, in the same order. ``buckets``: how many groups the anchors are split
    into (default: 4 per Spark core)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    n_buckets = buckets or 4 * spark.sparkContext.defaultParallelism
    weights: tuple[pa.Table, pa.Table] | None = None
    if ranker is not None and co_purchase.num_rows and orders.num_rows:
        needed = co_purchase.filter(pc.greater_equal(co_purchase.column("n_ab"), cfg.min_pair_count))
        weights = basket_weights_spark(spark, orders, needed, max_basket=max_basket)
    counted = spark.sparkContext.accumulator(0)  # candidates classified, summed over the buckets
    # the neighbours' and viewed-together pairs' ends hashed once, here, not in every bucket
    neighbours_in = by_end_bucket(neighbours, "src", "dst", n_buckets)
    co_view_in = by_end_bucket(co_view, "a", "b", n_buckets)

    def one_bucket(rows: pa.Table) -> pa.Table:
        k = int(rows.column("bucket")[0].as_py())
        pairs = rows.filter(pc.is_valid(rows.column("a"))).drop_columns(["bucket"]).cast(PAIR_STATS)
        got, n = classify_bucket(
            k,
            n_buckets,
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
            threads=1,
        )
        counted.add(n)
        return got

    frame = spark.createDataFrame(bucket_rows(co_purchase, n_buckets))
    with warnings.catch_warnings():
        # pyspark 4.x warns that pandas >= 3 is not fully supported; applyInArrow passes Arrow
        # tables, not pandas frames, and tests/test_spark_classify.py checks the rows with pandas 3
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        got = frame.groupBy("bucket").applyInArrow(one_bucket, from_arrow_schema(RELATIONS)).toArrow()
    table = pa.table([got.column(f.name).cast(f.type) for f in RELATIONS], schema=RELATIONS)
    return table.take(pc.sort_indices(table, RELATION_ORDER)).combine_chunks(), int(counted.value)

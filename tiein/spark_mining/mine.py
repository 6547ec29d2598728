"""Pair statistics on Spark: :func:`mine_pairs_spark` (see the package docstring)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.mining import MinedPairs
from tiein.model import MINING, PAIR_STATS, TIMELINE
from tiein.spark_mining.inputs import _check_parquet_paths, _parquet_lines, arrow_lines
from tiein.spark_mining.session import _DAY_US, spark_session

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


Progress = Callable[[str, int, int], None]
ParquetSource = str | Path | Sequence[str | Path]


def mine_pairs_spark(
    baskets: pa.Table | ParquetSource,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    customer_col: str | None = "customer_id",
    ts_col: str | None = "ts",
    min_count: int = MINING.min_count,
    max_basket: int = MINING.max_basket,
    after_window_days: int | None = MINING.after_window_days,
    max_customer_items: int = MINING.max_customer_items,
    threads: int | None = None,
    progress: Progress | None = None,
    spark: SparkSession | None = None,
) -> MinedPairs:
    """:func:`tiein.mining.mine_pairs` on Spark: same options, same table, same report keys.

    ``baskets`` is an Arrow table (``ORDERS``, or ``VIEWS`` with ``basket_col="session_id"`` and
    ``customer_col=None``) or a Parquet file, directory or list of them (``str``/``Path``), read
    by Spark (so it may live on HDFS/S3 when the session can reach it). Bad input raises
    :class:`InputError` naming the column and the 1-based row (and, for Parquet, the file).
    ``spark`` is the session to run on; without one :func:`spark_session` (local mode,
    ``threads`` cores) is used and left running for later calls. The session's time zone is
    set to UTC while the job runs (naive times are UTC, as in ``ORDERS``).
    ``report["seconds"]`` times the steps; pair counting happens in one Spark aggregation
    during "assemble" (the "pairs" step only plans it).

    >>> t = pa.table({"order_id": ["1", "1", "2", "2", "3"], "product_id": ["x", "y", "x", "y", "x"]})
    >>> r = mine_pairs_spark(t, customer_col=None, ts_col=None)  # doctest: +SKIP
    >>> r.pairs.select(["a", "b", "n_ab", "n_a", "n_b", "n"]).to_pylist()  # doctest: +SKIP
    [{'a': 'x', 'b': 'y', 'n_ab': 2, 'n_a': 3, 'n_b': 2, 'n': 3}]
    """
    if min_count < 1:
        raise ConfigError(f"min_count must be at least 1, got {min_count}")
    if max_basket < 2:
        raise ConfigError(f"max_basket must be at least 2, got {max_basket}")
    if after_window_days is not None and after_window_days < 0:
        raise ConfigError(f"after_window_days must be >= 0 or None, got {after_window_days}")
    if max_customer_items < 2:
        raise ConfigError(f"max_customer_items must be at least 2, got {max_customer_items}")
    if not isinstance(baskets, pa.Table):
        _check_parquet_paths(baskets)
    if spark is None:
        spark = spark_session(threads=threads)
    tz_key = "spark.sql.session.timeZone"
    old_tz = spark.conf.get(tz_key)
    spark.conf.set(tz_key, "UTC")
    cached: list[DataFrame] = []
    try:
        return _mine(
            spark,
            baskets,
            basket_col,
            item_col,
            customer_col,
            ts_col,
            min_count,
            max_basket,
            after_window_days,
            max_customer_items,
            progress,
            cached,
        )
    finally:
        for df in cached:
            df.unpersist()
        if old_tz is not None:
            spark.conf.set(tz_key, old_tz)
        else:
            spark.conf.unset(tz_key)


# --- input --------------------------------------------------------------------------------


def _observation(what: str) -> Any:
    """A uniquely named Spark Observation (metrics gathered while a job runs)."""
    from pyspark.sql import Observation

    return Observation(f"tiein_{what}_{uuid.uuid4().hex}")


def _pairs_in(size: Column) -> Column:
    """size * (size - 1) / 2 in integers."""
    from pyspark.sql import functions as F

    return F.floor(size * (size - 1) / 2).cast("long")


def _mine(
    spark: SparkSession,
    src: pa.Table | ParquetSource,
    basket_col: str,
    item_col: str,
    customer_col: str | None,
    ts_col: str | None,
    min_count: int,
    max_basket: int,
    after_window_days: int | None,
    max_customer_items: int,
    progress: Progress | None,
    cached: list[DataFrame],
) -> MinedPairs:
    """:func:`mine_pairs_spark` once the options are checked; ``cached`` collects what it persists."""
    from pyspark.sql import functions as F

    report: dict[str, Any] = {
        "min_count": min_count,
        "max_basket": max_basket,
        "after_window_days": after_window_days,
        "max_customer_items": max_customer_items,
    }
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def tick(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(seconds.get(step, 0.0) + now - clock, 4)
        clock = now
        if progress is not None:
            progress(step, 1, 1)

    def persist(df: DataFrame) -> DataFrame:
        cached.append(df.persist())
        return df

    # 1. encode: validated lines ----------------------------------------------------------------
    want_after = customer_col is not None and ts_col is not None
    if isinstance(src, pa.Table):
        lines = arrow_lines(spark, src, basket_col, item_col, customer_col, ts_col)
        report["lines"] = src.num_rows
    else:
        lines, report["lines"] = _parquet_lines(spark, src, basket_col, item_col, customer_col, ts_col)
    tick("encode")

    # 2. baskets: sorted distinct products, giant baskets ------------------------------------
    baskets = persist(
        lines.groupBy("b")
        .agg(F.array_sort(F.collect_set("i")).alias("items"))
        .withColumn("size", F.size("items"))
    )
    giant = F.col("size") > max_basket
    kept = baskets.filter(~giant)
    # the basket counts are observed while the product counts are computed: one Spark job
    basket_obs = _observation("baskets")
    observed = baskets.observe(
        basket_obs,
        F.count(F.lit(1)).alias("baskets"),
        F.sum("size").alias("distinct_lines"),
        F.count(F.when(giant, 1)).alias("giant_baskets"),
        F.sum(F.when(giant, F.col("size")).otherwise(0)).alias("giant_lines"),
        F.sum(F.when(~giant, _pairs_in(F.col("size").cast("long"))).otherwise(0)).alias("pi"),
    )
    item_n = persist(
        observed.filter(~giant)
        .select(F.explode("items").alias("i"))
        .groupBy("i")
        .agg(F.count(F.lit(1)).alias("n_i"))
    )
    report["items"] = item_n.count()
    st = basket_obs.get
    distinct_lines = int(st["distinct_lines"] or 0)
    report["duplicate_lines"] = report["lines"] - distinct_lines
    report["baskets"] = int(st["baskets"])
    report["giant_baskets"] = int(st["giant_baskets"])
    report["giant_lines"] = int(st["giant_lines"] or 0)
    n = report["baskets"] - report["giant_baskets"]
    report["n"] = n
    tick("baskets")

    # 3. co-basket pair instances (counted in step 5) ---------------------------------------------
    co = (
        kept.filter(F.col("size") > 1)
        .select("items", "size", F.posexplode("items").alias("pos", "a"))
        .filter(F.col("pos") < F.col("size") - 1)
        .select(
            "a", F.explode(F.slice("items", F.col("pos") + 2, F.col("size") - F.col("pos") - 1)).alias("b")
        )
        .select("a", "b", F.lit(1).alias("n_ab"), F.lit(0).alias("after_ab"), F.lit(0).alias("after_ba"))
    )
    report["pair_instances"] = int(st["pi"] or 0)
    tick("pairs")

    # 4. bought-after pairs -------------------------------------------------------------------------
    after: DataFrame | None = None
    timeline: DataFrame | None = None
    if want_after:
        events = lines.filter(F.col("c").isNotNull() & F.col("t").isNotNull())
        if report["giant_baskets"]:
            events = events.join(baskets.filter(giant).select("b"), "b", "left_anti")
        after, timeline = _after_pairs(events, after_window_days, max_customer_items, report, persist)
    else:
        report.update(
            after_events=0,
            after_customers=0,
            customers_skipped=0,
            after_pair_instances=0,
            returning_customers=0,
        )
    tick("after")

    # 5. one aggregation of both counts; kept pairs with their ratios -------------------------------
    inst = co if after is None else co.unionByName(after)
    pair_obs = _observation("pairs")  # observed during the collect below: no extra job
    agg = (
        inst.groupBy("a", "b")
        .agg(
            F.sum("n_ab").cast("long").alias("n_ab"),
            F.sum("after_ab").cast("long").alias("after_ab"),
            F.sum("after_ba").cast("long").alias("after_ba"),
        )
        .observe(
            pair_obs,
            F.count(F.when(F.col("n_ab") > 0, 1)).alias("pairs_co"),
            (F.count(F.when(F.col("after_ab") > 0, 1)) + F.count(F.when(F.col("after_ba") > 0, 1))).alias(
                "pairs_after"
            ),
        )
    )
    keep = (F.col("n_ab") >= min_count) | (F.col("after_ab") >= min_count) | (F.col("after_ba") >= min_count)
    na = item_n.select(F.col("i").alias("a"), F.col("n_i").alias("n_a"))
    nb = item_n.select(F.col("i").alias("b"), F.col("n_i").alias("n_b"))
    f_ab, f_n = F.col("n_ab").cast("double"), F.lit(float(n))
    out = (
        agg.filter(keep)
        .join(na, "a")
        .join(nb, "b")
        .select(
            "a",
            "b",
            "n_ab",
            "n_a",
            "n_b",
            F.lit(n).cast("long").alias("n"),
            (f_ab / f_n).alias("support"),
            (f_ab / F.col("n_a").cast("double")).alias("conf_ab"),
            (f_ab / F.col("n_b").cast("double")).alias("conf_ba"),
            ((f_ab * f_n) / (F.col("n_a").cast("double") * F.col("n_b").cast("double"))).alias("lift"),
            "after_ab",
            "after_ba",
        )
    )
    table = out.toArrow()
    report["pairs_co"] = int(pair_obs.get["pairs_co"])
    report["pairs_after"] = int(pair_obs.get["pairs_after"])
    table = pa.table([table.column(f.name).cast(f.type) for f in PAIR_STATS], schema=PAIR_STATS)
    if table.num_rows:
        table = table.take(pc.sort_indices(table, [("a", "ascending"), ("b", "ascending")]))
    table = table.combine_chunks()
    report["pairs"] = table.num_rows
    tl = TIMELINE.empty_table()
    if timeline is not None:
        got = timeline.toArrow()
        tl = pa.table([got.column(f.name).cast(f.type) for f in TIMELINE], schema=TIMELINE)
        tl = tl.take(pc.sort_indices(tl, [("product_id", "ascending")])).combine_chunks()
    tick("assemble")
    report["seconds"] = seconds
    return MinedPairs(pairs=table, report=report, timeline=tl)


def _after_pairs(
    events: DataFrame,
    window_days: int | None,
    max_items: int,
    report: dict[str, Any],
    persist: Callable[[DataFrame], DataFrame],
) -> tuple[DataFrame, DataFrame]:
    """Directed bought-after instances, one per (customer, x, y), as (a, b, n_ab=0, after_ab, after_ba)
    rows with a < b, and the ``TIMELINE`` counts of the customers not skipped (a customer who came
    back: an event in ``(t, t + window]`` after buying the product; later: an event in
    ``[t - window, t)`` before it); fills the after_* keys and returning_customers of ``report``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_time = Window.partitionBy("c").orderBy("t")
    # lo: events at or before t (the 0-based start of the partners in the time-sorted array);
    # cnt: events in (t, t + window]; before: events in [t - window, t) (integer microseconds)
    if window_days == 0:
        cnt = before = F.lit(0).cast("long")
    else:
        w_us = window_days * _DAY_US if window_days is not None else None
        after_frame = by_time.rangeBetween(1, Window.unboundedFollowing if w_us is None else w_us)
        before_frame = by_time.rangeBetween(Window.unboundedPreceding if w_us is None else -w_us, -1)
        cnt = F.count(F.lit(1)).over(after_frame)
        before = F.count(F.lit(1)).over(before_frame)
    ev = persist(
        events.select("c", "t", "i")
        .distinct()
        .select(
            "c",
            "t",
            "i",
            F.count(F.lit(1)).over(by_time.rangeBetween(Window.unboundedPreceding, 0)).alias("lo"),
            cnt.alias("cnt"),
            before.alias("before"),
        )
    )
    limit = max_items * max_items
    per_cust = persist(
        ev.groupBy("c")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.count_distinct("i").alias("items"),
            F.sum("cnt").alias("inst"),
            F.max(F.col("cnt") > 0).alias("back"),
        )
        .withColumn("skip", (F.col("items") > max_items) | (F.col("inst") > limit))
    )
    st = per_cust.agg(
        F.sum("events").alias("events"),
        F.count(F.when(~F.col("skip"), 1)).alias("kept"),
        F.count(F.when(F.col("skip"), 1)).alias("skipped"),
        F.sum(F.when(~F.col("skip"), F.col("inst")).otherwise(0)).alias("inst"),
        F.count(F.when(~F.col("skip") & F.col("back"), 1)).alias("back"),
    ).first()
    assert st is not None
    report["after_events"] = int(st["events"] or 0)
    report["after_customers"] = int(st["kept"])
    report["customers_skipped"] = int(st["skipped"])
    report["after_pair_instances"] = int(st["inst"] or 0)
    report["returning_customers"] = int(st["back"])
    ok = ev
    if report["customers_skipped"]:
        ok = ev.join(per_cust.filter("skip").select("c"), "c", "left_anti")
    # per customer: events sorted by time; each event's partners are a slice of them
    per_event = ok.groupBy("c").agg(F.array_sort(F.collect_list(F.struct("t", "i", "lo", "cnt"))).alias("ev"))
    xy = F.flatten(
        F.transform(
            F.filter("ev", lambda e: e["cnt"] > 0),
            lambda e: F.transform(
                F.slice(F.col("ev"), e["lo"] + 1, e["cnt"]),
                lambda f: F.struct(e["i"].alias("x"), f["i"].alias("y")),
            ),
        )
    )
    timeline = ok.groupBy(F.col("i").alias("product_id")).agg(
        F.count_distinct("c").alias("customers"),
        F.count_distinct(F.when(F.col("cnt") > 0, F.col("c"))).alias("returning"),
        F.count_distinct(F.when(F.col("before") > 0, F.col("c"))).alias("later"),
    )
    # distinct (customer, x, y) after the explode: array_distinct on structs is quadratic in Spark
    pairs = (
        per_event.select("c", F.explode(xy).alias("p"))
        .select("c", "p.x", "p.y")
        .filter(F.col("x") != F.col("y"))
        .distinct()
    )
    x_first = F.col("x") < F.col("y")
    directed = pairs.select(
        F.least("x", "y").alias("a"),
        F.greatest("x", "y").alias("b"),
        F.lit(0).alias("n_ab"),
        F.when(x_first, 1).otherwise(0).alias("after_ab"),
        F.when(x_first, 0).otherwise(1).alias("after_ba"),
    )
    return directed, timeline

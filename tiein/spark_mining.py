"""Pair statistics on Apache Spark: the scale-out twin of :func:`tiein.mining.mine_pairs`.

:func:`mine_pairs_spark` takes the same options and returns the same :class:`MinedPairs`: the
same ``PAIR_STATS`` rows in the same order, with equal counts and bit-identical floats (the
four ratios are computed from the same integers by the same IEEE-754 double operations in the
same order; Java's double arithmetic is strict, so the bits agree), and the same report keys.

Use it when the order history does not fit one machine. On one machine it is much slower
than the numpy engine (see README, "Scale-out mining"). Input is an ``ORDERS``/``VIEWS`` Arrow
table or, for data beyond the driver, Parquet files read by the Spark job itself.

How the job runs (DataFrame API; nothing is collected to the driver but the result table):

1. baskets: ``groupBy(basket)`` → the sorted distinct products of each basket
   (``array_sort(collect_set)``; Spark's string order is the byte order, as Arrow's);
   giant baskets (more than ``max_basket`` products) are dropped before any counting;
2. co-basket pairs: each product with the products after it in its sorted basket
   (``posexplode`` + ``slice``), no self-join;
3. bought-after pairs: distinct ``(customer, time, product)`` events outside giant baskets;
   two window frames per customer ordered by time give each event the start and the length of
   its partner range ``(t, t + window]``; customers over ``max_customer_items`` distinct
   products or ``max_customer_items ** 2`` pair instances are skipped; the others' sorted
   event arrays are sliced per event (no self-join), then ``(customer, a, b)`` made distinct;
4. one aggregation over the union of both kinds of pair instances gives ``n_ab``,
   ``after_ab`` and ``after_ba``; the kept pairs are joined with the product counts, the ratios
   computed, and the result collected as Arrow and sorted by ``(a, b)``.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError, InputError, MissingDependency
from tiein.mining import MinedPairs
from tiein.mining.kernels import _id_column, _ts_column
from tiein.model import PAIR_STATS, TIMELINE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["mine_pairs_spark", "spark_miner", "spark_session"]

Progress = Callable[[str, int, int], None]
ParquetSource = str | Path | Sequence[str | Path]

_DAY_US = 86_400_000_000
JAVA_HINT = (
    "install a Java 17+ runtime (Debian/Ubuntu: apt-get install default-jre-headless) or set JAVA_HOME"
)


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise MissingDependency("pyspark", "spark") from exc
    return pyspark


def spark_session(
    master: str | None = None,
    *,
    threads: int | None = None,
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    app_name: str = "tiein-mining",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session for mining (or the active one: Spark allows one per process).

    ``master`` defaults to env ``TIEIN_SPARK_MASTER``, else ``local[threads]`` (threads default
    ``min(4, CPUs)``); under ``spark-submit`` the master of the submit command is kept. Local
    sessions get the web UI off, ``2 * threads`` shuffle partitions (unless given) and
    ``driver_memory`` (env ``TIEIN_SPARK_DRIVER_MEMORY``, default ``4g``: in local mode the whole
    job runs in the driver's JVM). ``conf`` adds Spark settings. Logs are cut to errors. Raises :class:`MissingDependency` when
    pyspark or Java is missing.
    """
    _pyspark()
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # driver started by spark-submit
    if not submitted and not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise MissingDependency("java", "spark", hint=JAVA_HINT)
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    master = master or os.environ.get("TIEIN_SPARK_MASTER") or (None if submitted else f"local[{workers}]")
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        memory = driver_memory or os.environ.get("TIEIN_SPARK_DRIVER_MEMORY", "4g")
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * workers))
            .config("spark.driver.memory", memory)
        )
    elif shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except PySparkException as exc:
        raise MissingDependency("java", "spark", hint=f"{JAVA_HINT} (Spark could not start: {exc})") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_miner(threads: int | None = None) -> Iterator[Callable[..., MinedPairs]]:
    """:func:`mine_pairs_spark` bound to a session: the active one, else a new one from
    :func:`spark_session` that is stopped on exit (the build's wiring uses this)."""
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    spark = active or spark_session(threads=threads)
    try:
        yield partial(mine_pairs_spark, spark=spark)
    finally:
        if active is None:
            spark.stop()


def mine_pairs_spark(
    baskets: pa.Table | ParquetSource,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    customer_col: str | None = "customer_id",
    ts_col: str | None = "ts",
    min_count: int = 2,
    max_basket: int = 500,
    after_window_days: int | None = 90,
    max_customer_items: int = 1000,
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
            spark, baskets, basket_col, item_col, customer_col, ts_col, min_count, max_basket,
            after_window_days, max_customer_items, progress, cached,
        )  # fmt: skip
    finally:
        for df in cached:
            df.unpersist()
        if old_tz is not None:
            spark.conf.set(tz_key, old_tz)
        else:
            spark.conf.unset(tz_key)


# --- input --------------------------------------------------------------------------------


def _paths(src: ParquetSource) -> list[str]:
    return [str(src)] if isinstance(src, str | Path) else [str(p) for p in src]


def _check_parquet_paths(src: ParquetSource) -> None:
    """Local paths must exist (remote URLs such as ``s3a://`` are left to Spark)."""
    paths = _paths(src)
    if not paths:
        raise InputError("no Parquet files given")
    for p in paths:
        if "://" not in p and not Path(p).exists():
            raise InputError("no such file or directory", file=p)


def _arrow_lines(
    spark: SparkSession,
    t: pa.Table,
    basket_col: str,
    item_col: str,
    customer_col: str | None,
    ts_col: str | None,
) -> DataFrame:
    """Validated lines (b, i, c, t: microseconds) of an Arrow table, as a Spark DataFrame.

    Validation is mine_pairs' own (same messages, same rows)."""
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "b": _id_column(t, basket_col),
        "i": _id_column(t, item_col),
    }
    if customer_col is not None and ts_col is not None:
        cols["c"] = _id_column(t, customer_col, nullable=True)
        us = _ts_column(t, ts_col)
        cols["t"] = pa.array(us, pa.int64(), mask=us == np.iinfo(np.int64).min)
    else:
        cols["c"] = pa.nulls(t.num_rows, pa.string())
        cols["t"] = pa.nulls(t.num_rows, pa.int64())
    return spark.createDataFrame(pa.table(cols))


def _parquet_lines(
    spark: SparkSession,
    src: ParquetSource,
    basket_col: str,
    item_col: str,
    customer_col: str | None,
    ts_col: str | None,
) -> tuple[DataFrame, int]:
    """Validated lines (b, i, c, t) of Parquet files, and their count (one pass over the files)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    paths = _paths(src)
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    try:
        raw = spark.read.parquet(*paths)
    except PySparkException as exc:
        raise InputError(f"cannot read as Parquet: {_first_line(exc)}", file=where) from exc
    fields = {f.name: f.dataType for f in raw.schema.fields}

    def field(name: str) -> T.DataType:
        if name not in fields:
            raise InputError(f"missing column (have: {', '.join(fields)})", file=where, column=name)
        return fields[name]

    def ids(name: str) -> Column:
        dt = field(name)
        if isinstance(dt, T.StringType):
            return F.col(name)
        if isinstance(dt, T.IntegralType | T.NullType):
            return F.col(name).cast("string")
        raise InputError(f"ids must be strings, got {dt.simpleString()}", file=where, column=name)

    sel = [ids(basket_col).alias("b"), ids(item_col).alias("i")]
    if customer_col is not None and ts_col is not None:
        dt = field(ts_col)
        if isinstance(dt, T.TimestampType):
            ts = F.unix_micros(F.col(ts_col))
        elif isinstance(dt, T.TimestampNTZType | T.DateType | T.NullType):
            ts = F.unix_micros(F.col(ts_col).cast("timestamp"))  # naive = UTC (session zone)
        else:
            raise InputError(
                f"times must be timestamps or dates, got {dt.simpleString()}", file=where, column=ts_col
            )
        sel += [ids(customer_col).alias("c"), ts.alias("t")]
    else:
        sel += [F.lit(None).cast("string").alias("c"), F.lit(None).cast("long").alias("t")]
    lines = raw.select(*sel)
    bad = {n: F.col(n).isNull() | (F.length(n) == 0) for n in ("b", "i")}
    try:
        row = lines.agg(
            F.count(F.lit(1)).alias("lines"),
            *[F.count(F.when(cond, 1)).alias(n) for n, cond in bad.items()],
        ).first()
    except PySparkException as exc:
        raise InputError(f"cannot read as Parquet: {_first_line(exc)}", file=where) from exc
    assert row is not None
    for n, name in (("b", basket_col), ("i", item_col)):
        if row[n]:
            first = (
                raw.select(*sel, "_metadata.file_path", "_metadata.row_index")
                .filter(bad[n])
                .orderBy("file_path", "row_index")
                .first()
            )
            assert first is not None
            file = str(first["file_path"]).removeprefix("file:")
            raise InputError("empty id", file=file, row=int(first["row_index"]) + 1, column=name)
    return lines, int(row["lines"])


def _observation(what: str) -> Any:
    """A uniquely named Spark Observation (metrics gathered while a job runs)."""
    from pyspark.sql import Observation

    return Observation(f"tiein_{what}_{uuid.uuid4().hex}")


def _pairs_in(size: Column) -> Column:
    """size * (size - 1) / 2 in integers."""
    from pyspark.sql import functions as F

    return F.floor(size * (size - 1) / 2).cast("long")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- the job ------------------------------------------------------------------------------


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
        lines = _arrow_lines(spark, src, basket_col, item_col, customer_col, ts_col)
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

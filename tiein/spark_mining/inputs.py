"""Order lines into Spark: from Arrow tables or Parquet files (checked before Spark reads them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tiein.errors import InputError
from tiein.mining.kernels import _id_column, _ts_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


Progress = Callable[[str, int, int], None]
ParquetSource = str | Path | Sequence[str | Path]


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


def arrow_lines(
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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- the job ------------------------------------------------------------------------------

"""Peers of bench/mining.py: the engines it compares tiein's pair mining with (DuckDB SQL,
SciPy X^T X, Polars, mlxtend, Spark local), the Online Retail reader, exact checks and timing.
See bench/mining.py for what each engine does and how it is compared."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiein.mining import mine_pairs  # noqa: E402
from tiein.model import ORDERS  # noqa: E402

STAT_COLUMNS = ("support", "conf_ab", "conf_ba", "lift")
STAT_REF_COLUMNS = ("a", "b", "n_ab", "n_a", "n_b", "n", *STAT_COLUMNS)
REL_TOL = 1e-9


DUCKDB_SQL = """
WITH lines AS (SELECT DISTINCT order_id, product_id FROM baskets),
ok AS (SELECT order_id FROM lines GROUP BY order_id HAVING count(*) <= $max_basket),
kept AS (SELECT * FROM lines SEMI JOIN ok USING (order_id))
SELECT x.product_id AS a, y.product_id AS b, count(*) AS n_ab
FROM kept x JOIN kept y ON x.order_id = y.order_id AND x.product_id < y.product_id
GROUP BY ALL
HAVING count(*) >= $min_count
"""

# The same with the bought-after counts (no customer cap), kept by tiein's rule.
DUCKDB_AFTER_SQL = """
WITH lines AS (SELECT DISTINCT order_id, product_id FROM baskets),
ok AS (SELECT order_id FROM lines GROUP BY order_id HAVING count(*) <= $max_basket),
kept AS (SELECT * FROM lines SEMI JOIN ok USING (order_id)),
co AS (
  SELECT x.product_id AS a, y.product_id AS b, count(*) AS n_ab
  FROM kept x JOIN kept y ON x.order_id = y.order_id AND x.product_id < y.product_id
  GROUP BY ALL),
ev AS (
  SELECT DISTINCT customer_id AS c, product_id AS p, ts FROM baskets SEMI JOIN ok USING (order_id)
  WHERE customer_id IS NOT NULL AND ts IS NOT NULL),
seq AS (
  SELECT x.p AS x, y.p AS y, count(DISTINCT x.c) AS k
  FROM ev x JOIN ev y ON x.c = y.c AND y.ts > x.ts AND y.ts <= x.ts + to_days($window) AND x.p <> y.p
  GROUP BY ALL),
af AS (
  SELECT least(x, y) AS a, greatest(x, y) AS b,
         coalesce(sum(k) FILTER (WHERE x < y), 0) AS after_ab,
         coalesce(sum(k) FILTER (WHERE x > y), 0) AS after_ba
  FROM seq GROUP BY ALL)
SELECT a, b, coalesce(n_ab, 0)::BIGINT AS n_ab, coalesce(after_ab, 0)::BIGINT AS after_ab,
       coalesce(after_ba, 0)::BIGINT AS after_ba
FROM co FULL JOIN af USING (a, b)
WHERE coalesce(n_ab, 0) >= $min_count OR coalesce(after_ab, 0) >= $min_count
   OR coalesce(after_ba, 0) >= $min_count
"""
WINDOW_DAYS = 90
AFTER_COLUMNS = ["a", "b", "n_ab", "after_ab", "after_ba"]

# mlxtend needs a dense one-hot frame (1 byte a cell) plus working copies.
MLXTEND_OVERHEAD = 3.0


def data_dir() -> Path:
    """The shared data folder: ``$TIEIN_DATA`` or ``../shared/data`` next to the repository."""
    return Path(os.environ.get("TIEIN_DATA", ROOT.parent / "shared" / "data"))


def online_retail(limit: int | None = None) -> pa.Table:
    """Online Retail I as ORDERS: C-invoices and quantity <= 0 dropped."""
    path = data_dir() / "online_retail" / "online_retail_I.parquet"
    t = pq.read_table(path, columns=["InvoiceNo", "StockCode", "Quantity", "CustomerID", "InvoiceDate"])
    keep = pc.and_(
        pc.invert(pc.starts_with(t["InvoiceNo"].cast(pa.string()), "C")), pc.greater(t["Quantity"], 0)
    )
    t = t.filter(keep)
    if limit is not None:
        t = t.slice(0, limit)
    cust = pc.cast(pc.cast(t["CustomerID"], pa.int64()), pa.string())
    return pa.table(
        [
            t["InvoiceNo"].cast(pa.string()),
            t["StockCode"].cast(pa.string()),
            t["Quantity"].cast(pa.float64()),
            cust,
            t["InvoiceDate"].cast(pa.timestamp("us")),
        ],
        schema=ORDERS,
    )


_TMP: list[str] = []


def tmp_dir() -> str:
    """One temp folder for this process (the floor's library, DuckDB's spill files), removed at exit."""
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="tiein-bench-mining-"))
        atexit.register(shutil.rmtree, _TMP[0], ignore_errors=True)
    return _TMP[0]


# --- engines: each returns a table (a, b, n_ab, ...) -------------------------------------------


def run_tiein(t: pa.Table, min_count: int, max_basket: int) -> Any:
    """mine_pairs without customers: co-basket statistics only (a MinedPairs)."""
    return mine_pairs(t, customer_col=None, ts_col=None, min_count=min_count, max_basket=max_basket)


def run_tiein_after(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    """Co-basket and bought-after counts, no customer skipped (as the SQL peer)."""
    res = mine_pairs(
        t, min_count=min_count, max_basket=max_basket, after_window_days=WINDOW_DAYS, max_customer_items=10**9
    )
    return res.pairs.select(AFTER_COLUMNS)


def duckdb_connect(memory_gib: float) -> Any:
    """An in-memory DuckDB connection held to ``memory_gib`` (past that it spills to a temp folder)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_gib:.1f}GiB'")
    con.execute(f"SET temp_directory = '{tmp_dir()}'")
    return con


def run_duckdb_after(t: pa.Table, min_count: int, max_basket: int, memory_gib: float = 12.0) -> pa.Table:
    con = duckdb_connect(memory_gib)
    con.register("baskets", t.select(["order_id", "product_id", "customer_id", "ts"]))
    params = {"min_count": min_count, "max_basket": max_basket, "window": WINDOW_DAYS}
    out = con.sql(DUCKDB_AFTER_SQL, params=params).to_arrow_table()
    con.close()
    return out


def run_spark(t: pa.Table, min_count: int, max_basket: int, spark: Any) -> pa.Table:
    """tiein.spark_mining on the local session started by main (same options as run_tiein)."""
    from tiein.spark_mining import mine_pairs_spark

    res = mine_pairs_spark(
        t, customer_col=None, ts_col=None, min_count=min_count, max_basket=max_basket, spark=spark
    )
    return res.pairs.select(["a", "b", "n_ab"])


def run_duckdb(t: pa.Table, min_count: int, max_basket: int, memory_gib: float = 12.0) -> pa.Table:
    con = duckdb_connect(memory_gib)
    con.register("baskets", t.select(["order_id", "product_id"]))
    out = con.sql(DUCKDB_SQL, params={"min_count": min_count, "max_basket": max_basket}).to_arrow_table()
    con.close()
    return out


def run_polars(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    """Pair statistics the Polars way (see the module docstring); float64 stats as tiein's."""
    import polars as pl

    df = pl.from_arrow(t.select(["order_id", "product_id"]))
    assert isinstance(df, pl.DataFrame)
    # product codes in id order (so a < b compares as the ids do), order ids as categorical codes
    products = df.select("product_id").unique().sort("product_id").with_row_index("p")
    lines = (
        df.lazy()
        .join(products.lazy(), on="product_id")
        .select(pl.col("order_id").cast(pl.Categorical).to_physical().alias("o"), "p")
        .unique()
        .filter(pl.len().over("o") <= max_basket)
        .collect()
    )
    n = lines["o"].n_unique()
    item_n = lines.lazy().group_by("p").agg(pl.len().alias("n_a"))
    names = products.lazy().rename({"product_id": "a"})
    pairs = (
        lines.lazy()
        .join(lines.lazy(), on="o", suffix="_b")
        .filter(pl.col("p") < pl.col("p_b"))
        .group_by("p", "p_b")
        .agg(pl.len().alias("n_ab"))
        .filter(pl.col("n_ab") >= min_count)
        .join(item_n, on="p")
        .join(item_n.rename({"p": "p_b", "n_a": "n_b"}), on="p_b")
        .join(names, on="p")
        .join(names.rename({"p": "p_b", "a": "b"}), on="p_b")
    )
    f_ab, f_a, f_b = (pl.col(c).cast(pl.Float64) for c in ("n_ab", "n_a", "n_b"))
    out = pairs.select(
        "a",
        "b",
        *(pl.col(c).cast(pl.Int64) for c in ("n_ab", "n_a", "n_b")),
        pl.lit(n, pl.Int64).alias("n"),
        (f_ab / n).alias("support"),
        (f_ab / f_a).alias("conf_ab"),
        (f_ab / f_b).alias("conf_ba"),
        (f_ab * n / (f_a * f_b)).alias("lift"),
    ).collect()
    return out.to_arrow()


def _sparse_baskets(t: pa.Table, max_basket: int):  # noqa: ANN202 - scipy types
    """Binary basket x product CSR matrix (giant baskets dropped) and the sorted product names."""
    import pandas as pd
    from scipy import sparse

    rows, _ = pd.factorize(t["order_id"].to_numpy(zero_copy_only=False))
    cols, names = pd.factorize(t["product_id"].to_numpy(zero_copy_only=False), sort=True)
    x = sparse.csr_matrix(
        (np.ones(rows.size, np.int32), (rows, cols)), shape=(int(rows.max()) + 1, len(names))
    )
    x.sum_duplicates()
    x.data[:] = 1
    x = x[np.diff(x.indptr) <= max_basket]
    return x, names


def run_scipy(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    from scipy import sparse

    x, names = _sparse_baskets(t, max_basket)
    co = sparse.triu(x.T.tocsr() @ x, k=1).tocoo()
    keep = co.data >= min_count
    return pa.table(
        {"a": names[co.row[keep]], "b": names[co.col[keep]], "n_ab": co.data[keep].astype(np.int64)}
    )


def mlxtend_need_gib(t: pa.Table, max_basket: int) -> float:
    """Memory mlxtend would ask for: the dense one-hot frame times working copies."""
    lines = (
        pa.table({"o": t["order_id"], "p": t["product_id"]})
        .group_by(["o"])
        .aggregate([("p", "count_distinct")])
    )
    n_baskets = int(pc.sum(pc.less_equal(lines["p_count_distinct"], max_basket)).as_py())
    n_items = len(pc.unique(t["product_id"]))
    return n_baskets * n_items * MLXTEND_OVERHEAD / 2**30


def run_mlxtend(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    import pandas as pd
    from mlxtend.frequent_patterns import fpgrowth

    x, names = _sparse_baskets(t, max_basket)
    frame = pd.DataFrame(x.toarray().astype(bool), columns=np.arange(len(names)))
    n = frame.shape[0]
    found = fpgrowth(frame, min_support=(min_count - 0.5) / n, max_len=2)
    pairs = found[found["itemsets"].map(len) == 2]
    ab = np.array([sorted(s) for s in pairs["itemsets"]], dtype=np.int64).reshape(-1, 2)
    n_ab = np.rint(pairs["support"].to_numpy() * n).astype(np.int64)
    out = pa.table({"a": names[ab[:, 0]], "b": names[ab[:, 1]], "n_ab": n_ab})
    return out.filter(pc.greater_equal(out["n_ab"], min_count))


# --- checks, memory, timing ------------------------------------------------------------------


def canonical(t: pa.Table, columns: tuple[str, ...] = ("a", "b", "n_ab")) -> pa.Table:
    """``columns`` with plain types, sorted by (a, b), for an exact comparison."""

    def kind(c: str) -> pa.DataType:
        return pa.string() if c in ("a", "b") else pa.float64() if c in STAT_COLUMNS else pa.int64()

    schema = pa.schema([(c, kind(c)) for c in columns])
    t = t.select(list(columns)).cast(schema)
    return t.sort_by([("a", "ascending"), ("b", "ascending")]).combine_chunks()


def stats_check(out: pa.Table, ref: pa.Table) -> tuple[bool, bool, bool, int]:
    """(counts identical, lift within REL_TOL, support and confidences within REL_TOL, pairs whose
    n_a * n_b reaches 2^32) of ``out`` against tiein's full table ``ref`` (canonical, all columns)."""
    cols = STAT_REF_COLUMNS[:6]
    got = canonical(out, STAT_REF_COLUMNS)
    counts = got.select(list(cols)).equals(ref.select(list(cols)))
    if not counts:
        return False, False, False, 0

    def close(c: str) -> bool:
        x, y = got[c].to_numpy(), ref[c].to_numpy()
        return bool(np.all(np.abs(x - y) <= REL_TOL * np.abs(y)))

    n_a, n_b = ref["n_a"].to_numpy(), ref["n_b"].to_numpy()
    big = int(np.count_nonzero(n_a * n_b >= 2**32))
    return True, close("lift"), all(close(c) for c in ("support", "conf_ab", "conf_ba")), big


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        out = None
        gc.collect()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _child(fn: Callable[[], pa.Table], conn) -> None:  # noqa: ANN001 - a Pipe end
    try:
        start = time.perf_counter()
        out = fn()
        conn.send((time.perf_counter() - start, out))
    except MemoryError:
        conn.send((None, None))


def timed_in_child(fn: Callable[[], pa.Table], limit_s: float) -> tuple[float | None, pa.Table | None]:
    """Run ``fn`` in a forked child with a time limit; (None, None) when it ran out of time or memory."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, child))
    proc.start()
    got = parent.recv() if parent.poll(limit_s) else (None, None)
    if proc.is_alive():
        proc.terminate()
    proc.join()
    return got

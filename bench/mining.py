"""Benchmark: tiein's pair mining against the usual ways of counting co-purchased pairs.

    python bench/mining.py [--quick] [--min-count 5] [--max-basket 500] [--spark]

Datasets: (1) UCI Online Retail I (cancellations and quantity <= 0 dropped) read from the
shared data folder (``$TIEIN_DATA`` or ``../shared/data``), (2) a deterministic synthetic 4M-line
Zipf basket set (bench/synthetic.py). ``--quick`` uses the first 60k Online Retail lines and 200k
synthetic lines (a CI smoke run).

Engines, all with the same ``min_count`` and the same giant-basket rule (baskets with more than
``max_basket`` distinct products are left out), all from the same Arrow table with string ids:

- tiein: ``mine_pairs(..., customer_col=None)`` (co-basket statistics: n_ab, n_a, n_b, support,
  confidence, lift);
- duckdb-sql: the obvious self-join on string ids;
- scipy: X^T X of the sparse basket x product matrix;
- spark-local (``--spark``): :func:`tiein.spark_mining.mine_pairs_spark` in Spark local mode on
  all CPUs (one run; the session start is timed and printed apart);
- mlxtend: fpgrowth with ``min_support = min_count / n`` and ``max_len=2`` on the dense one-hot
  DataFrame it needs; a size check runs first and prints "cannot run (needs ~X GiB)" instead of
  asking the machine for more than it has.

A second comparison adds the bought-after counts (90-day window, no customer cap):
"tiein +after" against "duckdb-sql +after" (a self-join of customer timelines); columns
(a, b, n_ab, after_ab, after_ba) are compared.

Every peer's table is compared with tiein's: "identical: yes/no". Times are the best wall
seconds of ``--repeat`` runs in this one process; the ratio is peer / tiein.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
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
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import synthetic_orders  # noqa: E402

from tiein.mining import mine_pairs  # noqa: E402
from tiein.model import ORDERS  # noqa: E402

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


# --- engines: each returns a table (a, b, n_ab) ----------------------------------------------


def run_tiein(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    res = mine_pairs(t, customer_col=None, ts_col=None, min_count=min_count, max_basket=max_basket)
    return res.pairs.select(["a", "b", "n_ab"])


def run_tiein_after(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    """Co-basket and bought-after counts, no customer skipped (as the SQL peer)."""
    res = mine_pairs(
        t, min_count=min_count, max_basket=max_basket, after_window_days=WINDOW_DAYS, max_customer_items=10**9
    )
    return res.pairs.select(AFTER_COLUMNS)


def run_duckdb_after(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    import duckdb

    con = duckdb.connect()
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


def run_duckdb(t: pa.Table, min_count: int, max_basket: int) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    con.register("baskets", t.select(["order_id", "product_id"]))
    out = con.sql(DUCKDB_SQL, params={"min_count": min_count, "max_basket": max_basket}).to_arrow_table()
    con.close()
    return out


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


def canonical(t: pa.Table, columns: tuple[str, ...] = ("a", "b", "n_ab")) -> pa.Table:
    """``columns`` with plain types, sorted by (a, b), for an exact comparison."""
    schema = pa.schema([(c, pa.string() if c in ("a", "b") else pa.int64()) for c in columns])
    t = t.select(list(columns)).cast(schema)
    return t.sort_by([("a", "ascending"), ("b", "ascending")]).combine_chunks()


def available_gib() -> float:
    """MemAvailable from /proc/meminfo (Linux), else 4 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 4.0


def timed(fn: Callable[[], pa.Table], repeat: int = 1) -> tuple[float, pa.Table]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
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


def bench(name: str, t: pa.Table, args: argparse.Namespace, rows: list[list[str]]) -> None:
    """Run every engine on ``t``; append one result row per engine."""
    min_count, max_basket = args.min_count, args.max_basket
    print(f"\n== {name}: {t.num_rows:,} lines, min_count={min_count}, max_basket={max_basket}", flush=True)
    mine_pairs(t.slice(0, 1000), customer_col=None, ts_col=None)  # warm imports
    tiein_s, ref = timed(lambda: run_tiein(t, min_count, max_basket), args.repeat)
    ref = canonical(ref)
    res = mine_pairs(t, min_count=min_count, max_basket=max_basket).report
    print(f"tiein steps (with after): {res['seconds']}")
    print(
        f"tiein report: baskets {res['baskets']:,}, giant {res['giant_baskets']}, duplicates "
        f"{res['duplicate_lines']:,}, pair instances {res['pair_instances']:,}, after instances "
        f"{res['after_pair_instances']:,}, customers skipped {res['customers_skipped']}"
    )
    rows.append([name, "tiein", f"{tiein_s:.2f}", "1.00", f"{ref.num_rows:,}", "reference"])
    peers: list[tuple[str, Callable[[], pa.Table]]] = [
        ("duckdb-sql", lambda: run_duckdb(t, min_count, max_basket)),
        ("scipy", lambda: run_scipy(t, min_count, max_basket)),
        ("mlxtend", lambda: run_mlxtend(t, min_count, max_basket)),
        ("spark-local", lambda: run_spark(t, min_count, max_basket, args.spark_session)),
    ]
    for engine, fn in peers:
        if engine not in args.engines:
            continue
        secs: float | None
        if engine == "mlxtend":
            need = mlxtend_need_gib(t, max_basket)
            if need > 0.5 * available_gib():
                msg = f"cannot run (needs ~{need:.0f} GiB)"
                print(f"{engine}: {msg}", flush=True)
                rows.append([name, engine, msg, "-", "-", "-"])
                continue
            secs, out = timed_in_child(fn, args.mlxtend_limit)
            if secs is None:
                msg = f"cannot run (over {args.mlxtend_limit:.0f} s or out of memory)"
                print(f"{engine}: {msg}", flush=True)
                rows.append([name, engine, msg, "-", "-", "-"])
                continue
        else:
            # Spark: one run (minutes at 4M lines); its session was started (and timed) before
            secs, out = timed(fn, 1 if engine == "spark-local" else args.repeat)
        assert out is not None
        same = canonical(out).equals(ref)
        print(
            f"{engine}: {secs:.2f} s, {out.num_rows:,} pairs, identical: {'yes' if same else 'no'}",
            flush=True,
        )
        rows.append(
            [
                name,
                engine,
                f"{secs:.2f}",
                f"{secs / tiein_s:.2f}",
                f"{out.num_rows:,}",
                "yes" if same else "no",
            ]
        )
    if "after" in args.engines:
        # Bought-after counts too (window 90 days, no customer cap): only DuckDB SQL is a peer.
        cols = tuple(AFTER_COLUMNS)
        after_s, ref_after = timed(lambda: run_tiein_after(t, min_count, max_basket), args.repeat)
        ref_after = canonical(ref_after, cols)
        rows.append([name, "tiein +after", f"{after_s:.2f}", "1.00", f"{ref_after.num_rows:,}", "reference"])
        print(f"tiein +after: {after_s:.2f} s, {ref_after.num_rows:,} pairs", flush=True)
        secs, out = timed(lambda: run_duckdb_after(t, min_count, max_basket), args.repeat)
        same = canonical(out, cols).equals(ref_after)
        print(
            f"duckdb-sql +after: {secs:.2f} s, {out.num_rows:,} pairs, identical: {'yes' if same else 'no'}",
            flush=True,
        )
        rows.append(
            [
                name,
                "duckdb-sql +after",
                f"{secs:.2f}",
                f"{secs / after_s:.2f}",
                f"{out.num_rows:,}",
                "yes" if same else "no",
            ]
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tiein pair mining vs DuckDB SQL, SciPy and mlxtend")
    ap.add_argument("--quick", action="store_true", help="small inputs (CI smoke run)")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--max-basket", type=int, default=500)
    ap.add_argument("--lines", type=int, default=4_000_000, help="synthetic lines")
    ap.add_argument("--repeat", type=int, default=3, help="runs per engine (best time is kept)")
    ap.add_argument("--mlxtend-limit", type=float, default=120.0, help="seconds before mlxtend is stopped")
    ap.add_argument("--engines", default="duckdb-sql,scipy,mlxtend,after", help="peers to run")
    ap.add_argument(
        "--spark",
        action="store_true",
        help="also run tiein.spark_mining in Spark local mode (slow; session start timed apart, one run)",
    )
    args = ap.parse_args(argv)
    args.engines = set(args.engines.split(","))
    if args.quick:
        args.repeat, args.mlxtend_limit = 1, 60.0
    rows: list[list[str]] = []
    args.spark_session = None
    if args.spark:
        from tiein.spark_mining import spark_session

        args.engines.add("spark-local")
        start = time.perf_counter()
        args.spark_session = spark_session(threads=os.cpu_count())
        took = time.perf_counter() - start
        print(f"spark session start (local[{os.cpu_count()}]): {took:.1f} s", flush=True)
    retail = online_retail(8_000 if args.quick else None)
    bench("online-retail", retail, args, rows)
    del retail
    synth = synthetic_orders(40_000 if args.quick else args.lines)
    bench("synthetic", synth, args, rows)
    head = ["dataset", "engine", "seconds", "peer/tiein", "pairs", "identical"]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{os.cpu_count()} CPUs; best wall seconds of {args.repeat} run(s) per engine, one process")
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

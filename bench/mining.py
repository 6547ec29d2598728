"""Benchmark: tiein's pair mining against the usual ways of counting co-purchased pairs.

    python bench/mining.py [--quick] [--min-count 5] [--max-basket 500] [--engines ...] [--spark]
    python bench/mining.py --sizes 1M,4M,16M,40M --engines duckdb-sql,scipy,polars,floor --repeat 2

Datasets. Without ``--sizes``: (1) UCI Online Retail I (cancellations and quantity <= 0 dropped)
read from the shared data folder (``$TIEIN_DATA`` or ``../shared/data``), (2) a deterministic
synthetic Zipf basket set of ``--lines`` lines (4M; bench/synthetic.py). ``--quick`` uses the
first 8k Online Retail lines and 40k synthetic lines (a CI smoke run). With ``--sizes`` (line
counts such as ``1M,4M,16M,40M`` or plain integers): only synthetic sets, each generated once
and given to every engine; one table per size, then a summary table (a row per size: seconds
per engine, peer / tiein, identical checks, the floor ratios, whether tiein was fastest).

Engines, all with the same ``min_count`` and the same giant-basket rule (baskets with more than
``max_basket`` distinct products are left out), all from the same Arrow table with string ids:

- tiein: ``mine_pairs(..., customer_col=None)`` (co-basket statistics: n_ab, n_a, n_b, support,
  confidence, lift). Its "pairs step" (``report["seconds"]["pairs"]`` of the best run: counting
  the pairs of the already encoded, deduplicated lines) is printed apart;
- duckdb-sql: the obvious self-join on string ids (held to ``--max-gib`` by ``memory_limit``;
  past that it spills to a temp folder);
- scipy: X^T X of the sparse basket x product matrix;
- polars: the Polars way: product ids coded by a join with their sorted distinct values (codes
  keep the ids' order), order ids as Categorical codes, distinct (order, product) lines, giant
  baskets dropped (``pl.len().over(order) <= max_basket``), a self-join on the order code,
  ``a < b``, group by (a, b), count, filter by ``min_count``; then n_a, n_b, n and support,
  confidence and lift in float64 as tiein defines them (lift = n_ab * n / (n_a * n_b)). Its
  check compares the counts (identical) and lift, support and confidences (1e-9 relative)
  with tiein's, and says how many pairs have n_a * n_b >= 2^32: there a product taken in
  Polars' UInt32 counts would overflow, so a silent 32-bit lift shows as "identical: no";
- floor: a C counting floor, the bound a compiled exact counter sets. A small kernel (the
  ``FLOOR_C`` string below) compiled at run time with the system C compiler (``cc -O3 -shared
  -fPIC``, plus ``-fopenmp`` when that works: one thread per CPU) into a temp folder and called
  through ctypes; skipped with a message when there is no compiler or it fails. Input: the
  baskets as int32 product codes in CSR form (sorted and distinct within a basket, giant
  baskets dropped). Method: an inverted index product -> (position in basket, basket end);
  for each product a, every partner after it in each of its baskets (so b > a) is counted in a
  dense int32 row; the touched entries are scanned, (a, b, n_ab >= min_count) emitted and reset.
  "floor (count only)" times the kernel alone (index, counting, emitting codes) on the CSR
  made beforehand: no id reading, encoding, deduplication, giant-basket removal, names or
  n_a / lift. "floor incl. encoding" adds the encoding: pyarrow dictionary encoding of the
  string ids (product codes in id order), numpy sort-based deduplication, giant-basket removal,
  the CSR arrays and the (a, b, n_ab) table with names (still no n_a, n_b, lift). Reported:
  tiein / floor incl. encoding (whole runs) and tiein's pairs step / floor count only (the
  counting alone); the (a, b, n_ab) sets are compared with tiein's;
- spark-local (``--spark``): :func:`tiein.spark_mining.mine_pairs_spark` in Spark local mode on
  all CPUs (one run; the session start is timed and printed apart);
- mlxtend: fpgrowth with ``min_support = min_count / n`` and ``max_len=2`` on the dense one-hot
  DataFrame it needs.

Memory: before an engine runs on a set, its peak is estimated from the set's shape (lines,
pair instances = sum of s(s-1)/2 over the kept baskets, distinct pairs from tiein's report;
per-line and per-pair bytes measured on the synthetic sets); an engine whose estimate is over
``--max-gib`` (12) or 80% of MemAvailable prints "cannot run (needs ~X GiB)" and is skipped.
mlxtend keeps its own check (its dense one-hot frame against half of MemAvailable) and runs in
a child process with a time limit.

A second comparison (engine ``after``, on by default) adds the bought-after counts (90-day
window, no customer cap): "tiein +after" against "duckdb-sql +after" (a self-join of customer
timelines); columns (a, b, n_ab, after_ab, after_ba) are compared.

Every peer's table is compared with tiein's: "identical: yes/no". Times are the best wall
seconds of ``--repeat`` runs in this one process (one run per engine on sets of 16M lines or
more); the ratio is peer / tiein.
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

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from mining_floor import Csr, basket_csr, floor_count, floor_library, floor_table, floor_threads, run_floor  # noqa: E402
from mining_peers import (  # noqa: E402
    AFTER_COLUMNS,
    canonical,
    mlxtend_need_gib,
    online_retail,
    run_duckdb,
    run_duckdb_after,
    run_mlxtend,
    run_polars,
    run_scipy,
    run_spark,
    run_tiein,
    run_tiein_after,
    stats_check,
    timed,
    timed_in_child,
)
from mining_report import BIG_SIZE, PEERS, parse_sizes, print_table, sec, size_label, summary  # noqa: E402
from synthetic import synthetic_orders  # noqa: E402

from tiein.mining import mine_pairs  # noqa: E402

# Peak memory an engine adds over the input table, in bytes per input line, per pair instance
# (a pair of products in one kept basket) and per distinct pair (pairs_co). Measured on the
# synthetic sets (VmHWM over VmRSS before the run; 4M and 16M lines: tiein 0.4 / 1.7 GiB,
# duckdb-sql 1.6 / 4.6, scipy 0.55 / 1.7, polars 1.2 / 4.3, floor 0.4 at 16M) and rounded up.
MEMORY_MODEL: dict[str, tuple[float, float, float]] = {
    "tiein": (80.0, 0.0, 24.0),  # before it runs, distinct pairs are bounded by the instances
    "duckdb-sql": (32.0, 0.0, 160.0),  # its hash aggregate: ~155 bytes per distinct pair
    "scipy": (48.0, 0.0, 40.0),
    "polars": (0.0, 52.0, 0.0),  # the self-join's rows (both orders and a = b) before the filter
    "floor": (64.0, 0.0, 0.0),  # plus 12 bytes per instance / min_count: room for the pairs
}


# --- memory ---------------------------------------------------------------------------------


def estimate_gib(engine: str, csr: Csr, pairs_co: int | None, min_count: int) -> float:
    """Peak memory ``engine`` needs on the set ``csr`` was made from (MEMORY_MODEL), in GiB;
    before tiein has run, distinct pairs are bounded by the pair instances."""
    per_line, per_instance, per_pair = MEMORY_MODEL[engine]
    n_items = len(csr.names)
    pairs = pairs_co if pairs_co is not None else min(csr.instances, n_items * (n_items - 1) // 2)
    need = per_line * csr.lines + per_instance * csr.instances + per_pair * pairs
    if engine == "floor":
        need += 12 * csr.instances / min_count
    return need / 2**30


def available_gib() -> float:
    """MemAvailable from /proc/meminfo (Linux), else 4 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 4.0


def memory_limit_gib(args: argparse.Namespace) -> float:
    """What an engine may use now: ``--max-gib``, or 80% of MemAvailable when that is less."""
    return min(args.max_gib, 0.8 * available_gib())


# --- one data set ----------------------------------------------------------------------------


def bench(
    name: str,
    t: pa.Table,
    args: argparse.Namespace,
    rows: list[list[str]],
    repeat: int,
    after_report: bool = True,
) -> dict[str, Any]:
    """Run every chosen engine on ``t``; append one result row per engine to ``rows`` and
    return the results (seconds, identical, notes) for the summary."""
    min_count, max_basket = args.min_count, args.max_basket
    print(f"\n== {name}: {t.num_rows:,} lines, min_count={min_count}, max_basket={max_basket}", flush=True)
    result: dict[str, Any] = {"name": name, "lines": t.num_rows, "engines": {}, "notes": []}
    engines = result["engines"]

    def skip(engine: str, msg: str) -> None:
        print(f"{engine}: {msg}", flush=True)
        rows.append([name, engine, msg, "-", "-", "-"])
        engines[engine] = {"seconds": None, "msg": msg}
        result["notes"].append(f"{name} {engine}: {msg}")

    def too_big(engine: str, pairs_co: int | None) -> bool:
        need, limit = estimate_gib(engine, csr, pairs_co, min_count), memory_limit_gib(args)
        if need > limit:
            skip(engine, f"cannot run (needs ~{need:.1f} GiB; limit {limit:.1f} GiB)")
            return True
        return False

    mine_pairs(t.slice(0, 1000), customer_col=None, ts_col=None)  # warm imports
    csr = basket_csr(t, max_basket)  # untimed: the set's shape (memory estimates), the floor's input
    print(
        f"set: {csr.baskets:,} baskets ({csr.giant} giant), {csr.items.size:,} distinct lines kept, "
        f"{len(csr.names):,} products, {csr.instances:,} pair instances",
        flush=True,
    )
    if too_big("tiein", None):
        return result
    tiein_s, best = float("inf"), None
    for _ in range(repeat):  # the fastest run's result is kept (a table of the frequent pairs: small)
        gc.collect()
        start = time.perf_counter()
        res = run_tiein(t, min_count, max_basket)
        took = time.perf_counter() - start
        if took < tiein_s:
            tiein_s, best = took, res
        del res
    assert best is not None
    report, steps = best.report, best.report["seconds"]
    ref_full = best.pairs
    del best
    ref = canonical(ref_full)
    pairs_step = float(steps["pairs"])
    print(f"tiein: {sec(tiein_s)} s, {ref.num_rows:,} pairs; steps of the best run: {steps}", flush=True)
    if after_report:
        res = mine_pairs(t, min_count=min_count, max_basket=max_basket).report
        print(f"tiein steps (with after): {res['seconds']}")
        print(
            f"tiein report: baskets {res['baskets']:,}, giant {res['giant_baskets']}, duplicates "
            f"{res['duplicate_lines']:,}, pair instances {res['pair_instances']:,}, after instances "
            f"{res['after_pair_instances']:,}, customers skipped {res['customers_skipped']}"
        )
    else:
        print(
            f"tiein report: baskets {report['baskets']:,}, giant {report['giant_baskets']}, duplicates "
            f"{report['duplicate_lines']:,}, pair instances {report['pair_instances']:,}, distinct pairs "
            f"{report['pairs_co']:,}"
        )
    rows.append([name, "tiein", sec(tiein_s), "1.00", f"{ref.num_rows:,}", "reference"])
    rows.append([name, "tiein pairs step", sec(pairs_step), "-", "-", "(part of tiein)"])
    result.update(tiein=tiein_s, pairs_step=pairs_step, pairs=ref.num_rows)
    pairs_co = int(report["pairs_co"])
    peers: dict[str, Callable[[], pa.Table]] = {
        "duckdb-sql": lambda: run_duckdb(t, min_count, max_basket, memory_limit_gib(args)),
        "scipy": lambda: run_scipy(t, min_count, max_basket),
        "polars": lambda: run_polars(t, min_count, max_basket),
        "mlxtend": lambda: run_mlxtend(t, min_count, max_basket),
        "spark-local": lambda: run_spark(t, min_count, max_basket, args.spark_session),
    }
    for engine in PEERS:
        if engine not in args.engines:
            continue
        if engine == "floor":
            floor_bench(name, t, csr, args, rows, repeat, result, ref, tiein_s, pairs_step, skip, too_big)
            continue
        fn = peers[engine]
        secs: float | None
        if engine == "mlxtend":
            need = mlxtend_need_gib(t, max_basket)
            if need > min(0.5 * available_gib(), args.max_gib):
                skip(engine, f"cannot run (needs ~{need:.0f} GiB)")
                continue
            secs, out = timed_in_child(fn, args.mlxtend_limit)
            if secs is None:
                skip(engine, f"cannot run (over {args.mlxtend_limit:.0f} s or out of memory)")
                continue
        elif engine == "polars":
            try:
                import polars  # noqa: F401
            except ImportError:
                skip(engine, "skipped (polars is not installed: pip install polars)")
                continue
            if too_big(engine, pairs_co):
                continue
            secs, out = timed(fn, repeat)
        else:
            if engine in MEMORY_MODEL and too_big(engine, pairs_co):
                continue
            # Spark: one run (minutes at 4M lines); its session was started (and timed) before
            secs, out = timed(fn, 1 if engine == "spark-local" else repeat)
        assert out is not None and secs is not None
        extra = ""
        if engine == "polars":
            counts, lift, others, big = stats_check(
                out, canonical(ref_full, tuple(ref_full.column_names[:10]))
            )
            same = counts and lift and others
            extra = (
                f" (counts {'yes' if counts else 'no'}, lift {'yes' if lift else 'no'}, support and "
                f"confidence {'yes' if others else 'no'}; {big:,} pairs with n_a * n_b >= 2^32)"
            )
        else:
            same = canonical(out).equals(ref)
        n_out = out.num_rows
        del out
        print(
            f"{engine}: {sec(secs)} s, {n_out:,} pairs, identical: {'yes' if same else 'no'}{extra}",
            flush=True,
        )
        rows.append([name, engine, sec(secs), f"{secs / tiein_s:.2f}", f"{n_out:,}", "yes" if same else "no"])
        engines[engine] = {"seconds": secs, "same": same}
    if "after" in args.engines:
        # Bought-after counts too (window 90 days, no customer cap): only DuckDB SQL is a peer.
        cols = tuple(AFTER_COLUMNS)
        after_s, ref_after = timed(lambda: run_tiein_after(t, min_count, max_basket), repeat)
        ref_after = canonical(ref_after, cols)
        rows.append([name, "tiein +after", sec(after_s), "1.00", f"{ref_after.num_rows:,}", "reference"])
        print(f"tiein +after: {sec(after_s)} s, {ref_after.num_rows:,} pairs", flush=True)
        secs, out = timed(lambda: run_duckdb_after(t, min_count, max_basket, memory_limit_gib(args)), repeat)
        same = canonical(out, cols).equals(ref_after)
        print(
            f"duckdb-sql +after: {sec(secs)} s, {out.num_rows:,} pairs, identical: {'yes' if same else 'no'}",
            flush=True,
        )
        rows.append(
            [
                name,
                "duckdb-sql +after",
                sec(secs),
                f"{secs / after_s:.2f}",
                f"{out.num_rows:,}",
                "yes" if same else "no",
            ]
        )
    return result


def floor_bench(
    name: str,
    t: pa.Table,
    csr: Csr,
    args: argparse.Namespace,
    rows: list[list[str]],
    repeat: int,
    result: dict[str, Any],
    ref: pa.Table,
    tiein_s: float,
    pairs_step: float,
    skip: Callable[[str, str], None],
    too_big: Callable[[str, int | None], bool],
) -> None:
    """The C counting floor: count only (on ``csr``) and with its encoding (from ``t``)."""
    lib, how = floor_library()
    if lib is None:
        skip("floor", f"skipped: {how}")
        return
    if too_big("floor", None):
        return
    threads = floor_threads(how)
    min_count, max_basket = args.min_count, args.max_basket
    count_s, codes = timed(lambda: floor_count(lib, csr, min_count, threads), repeat)
    same_count = canonical(floor_table(csr, *codes)).equals(ref)
    del codes
    one_s = timed(lambda: floor_count(lib, csr, min_count, 1), 1)[0] if threads > 1 else count_s
    incl_s, out = timed(lambda: run_floor(lib, t, min_count, max_basket, threads), repeat)
    same = same_count and canonical(out).equals(ref)
    yes = "yes" if same else "no"
    print(
        f"floor ({how}; {threads} thread(s)): count only {sec(count_s)} s (1 thread {sec(one_s)} s), incl. "
        f"encoding {sec(incl_s)} s, {out.num_rows:,} pairs, identical: {yes}; tiein / floor incl. "
        f"encoding {tiein_s / incl_s:.2f}, tiein pairs step / floor count only {pairs_step / count_s:.2f}",
        flush=True,
    )
    n_out = f"{out.num_rows:,}"
    rows.append([name, "floor (count only)", sec(count_s), f"{count_s / tiein_s:.2f}", n_out, yes])
    rows.append([name, "floor incl. encoding", sec(incl_s), f"{incl_s / tiein_s:.2f}", n_out, yes])
    result["engines"]["floor"] = {
        "seconds": incl_s,
        "count": count_s,
        "count_1": one_s,
        "threads": threads,
        "same": same,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="tiein pair mining vs DuckDB SQL, SciPy, Polars, mlxtend and a C counting floor"
    )
    ap.add_argument("--quick", action="store_true", help="small inputs (CI smoke run)")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--max-basket", type=int, default=500)
    ap.add_argument("--lines", type=int, default=4_000_000, help="synthetic lines (without --sizes)")
    ap.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="synthetic line counts to compare at, e.g. 1M,4M,16M,40M (no Online Retail then)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help=f"runs per engine, best time kept (one run on sets of {size_label(BIG_SIZE)} lines and more)",
    )
    ap.add_argument("--mlxtend-limit", type=float, default=120.0, help="seconds before mlxtend is stopped")
    ap.add_argument(
        "--max-gib", type=float, default=12.0, help="skip an engine whose memory estimate is over this"
    )
    ap.add_argument(
        "--engines",
        default="duckdb-sql,scipy,polars,floor,mlxtend,after",
        help="peers to run: duckdb-sql, scipy, polars, floor, mlxtend, after (+ spark-local with --spark)",
    )
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
    head = ["dataset", "engine", "seconds", "peer/tiein", "pairs", "identical"]
    if args.sizes:
        results = []
        for lines in args.sizes:
            start = time.perf_counter()
            synth = synthetic_orders(lines)
            print(
                f"\nsynthetic {size_label(lines)}: generated in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
            size_rows: list[list[str]] = []
            repeat = 1 if lines >= BIG_SIZE else args.repeat
            results.append(bench(f"synthetic {size_label(lines)}", synth, args, size_rows, repeat, False))
            del synth
            gc.collect()
            print(f"\n{os.cpu_count()} CPUs; best wall seconds of {repeat} run(s) per engine, one process")
            print_table(head, size_rows)
        summary(results, args)
        return 0
    retail = online_retail(8_000 if args.quick else None)
    bench("online-retail", retail, args, rows, args.repeat)
    del retail
    synth = synthetic_orders(40_000 if args.quick else args.lines)
    bench("synthetic", synth, args, rows, args.repeat)
    print(f"\n{os.cpu_count()} CPUs; best wall seconds of {args.repeat} run(s) per engine, one process")
    print_table(head, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

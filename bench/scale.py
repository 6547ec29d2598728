"""Benchmark: how tiein behaves as the shop grows. One sub-benchmark per stage, chosen by ``--only``.

    python bench/scale.py [--only search] [--sizes 50000,500000] [--quick]

Sub-benchmarks (``--only NAME[,NAME]``; default: all):

- ``search``: :class:`tiein.embeddings.ProductIndex` exact flat vs the approximate index ``build``
  picks above ``FLAT_MAX`` (IVF, nprobe tuned at build), on synthetic unit vectors (512-d like the
  default model, ``--dim``) at each ``--sizes``. The vectors are clustered like product titles,
  not uniform: 50 departments, n/250 categories around them with Zipf-like sizes, products around
  their category, and 20 % near-duplicate variants of an earlier product (top-1 cosine ≈ 0.9,
  20th ≈ 0.54). Queries are held-out: catalog vectors plus noise (cosine ≈ 0.9 to their source),
  as a new title would be. Per index: build seconds (FAISS on all CPUs), peak RSS growth during
  the build and RSS kept after it, single-query latency with 1 FAISS thread (``search(q, 20)``,
  wall p50/p99 and the thread's CPU p50/p99: on a shared machine the wall p99 is mostly time
  spent waiting for a core), recall@20 against the exact answer, and the ratios flat / approx.
- ``build``: ``tiein build`` of the synthetic shop of bench/synthetic.py (``--build-lines``, default
  4M lines, over ``--build-products``, default 50k, in one category per 100 products; the catalog
  derived from the orders; ``--max-rss-gb`` stops it before the machine runs out of memory) or of a ready ``--dataset``, in
  a new home under /tmp unless ``--home`` (a home with an embedding cache skips the model): the
  build's own seconds per step and the peak RSS while each step ran (sampled every 10 ms), then
  the process's VmHWM. Not in the default set (minutes): ``--only build``.

Medians of 4 runs on 2 shared cores (2026-12-04, load average 5-11 from other work: the wall
p99 is mostly time spent waiting for a core, 6.8-54 ms over the runs at 500k, so the CPU columns
show the index's own cost; ~2.5 min a run)::

    products  index  build s  peak +MB  kept MB  p50 ms  p99 ms  cpu p50  cpu p99  recall@20  nprobe
      50,000  flat       0.4       124      124   19.2    35.0     7.61     8.70     1.000
      50,000  ivf        4.0       307      148    0.38    8.7     0.36     0.90     0.990   8/224
     500,000  flat       3.8      1053     1053  263     367      69.1     82.0      1.000
     500,000  ivf       48.1      1598     1268    1.43   17.2     1.25     3.23     0.986   8/707

"tuned recall" is the recall the build measured while choosing nprobe (module docstring of
embeddings/index.py); "kept MB" of a freshly built IVF index includes the slack of its growing
inverted lists (an index loaded from disk holds about what flat does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiein.embeddings import index as index_module  # noqa: E402
from tiein.embeddings.index import ProductIndex  # noqa: E402
from tiein.embeddings.ivf import recall_at  # noqa: E402

K = 20


# ---------------------------------------------------------------- helpers shared by sub-benchmarks
def rss_mb() -> float:
    """Resident memory of this process, MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class PeakRss:
    """Samples RSS every 5 ms while in the ``with`` block: ``peak`` and ``start`` in MB."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))


# ---------------------------------------------------------------- search
def clustered_vectors(n: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` unit float32 vectors clustered like product titles (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_dept, n_cat = 50, max(20, n // 250)

    def noisy(base: np.ndarray, spread: float) -> np.ndarray:
        # base + noise of norm ≈ spread: cosine to base ≈ 1 / sqrt(1 + spread²)
        x = base + spread * rng.standard_normal(base.shape, dtype=np.float32) / np.float32(np.sqrt(dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    dept = rng.standard_normal((n_dept, dim), dtype=np.float32)
    dept /= np.linalg.norm(dept, axis=1, keepdims=True)
    cat = noisy(dept[rng.integers(0, n_dept, n_cat)], 1.33)  # cosine ≈ 0.6 to the department
    weight = 1.0 / np.arange(1, n_cat + 1) ** 0.8
    weight /= weight.sum()
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        out[start:stop] = noisy(cat[rng.choice(n_cat, size=stop - start, p=weight)], 0.88)  # ≈ 0.75
    variants = np.nonzero(rng.random(n) < 0.2)[0]
    earlier = (rng.random(len(variants)) * variants).astype(np.int64)
    out[variants] = noisy(out[earlier], 0.33)  # cosine ≈ 0.95 to the product it varies
    return out


def held_out_queries(vectors: np.ndarray, m: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = vectors[rng.choice(len(vectors), size=m, replace=False)]
    q = base + 0.5 * rng.standard_normal(base.shape, dtype=np.float32) / np.float32(np.sqrt(base.shape[1]))
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


def single_query_latency(index: ProductIndex, queries: np.ndarray) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of ``index.search(one query, K)`` for each query (1 thread)."""
    for q in queries[:10]:  # warm-up
        index.search(q[None, :], K)
    wall, cpu = [], []
    for q in queries:
        w, c = time.perf_counter(), time.thread_time()
        index.search(q[None, :], K)
        cpu.append((time.thread_time() - c) * 1e3)
        wall.append((time.perf_counter() - w) * 1e3)
    return wall, cpu


def bench_search(args: argparse.Namespace) -> None:
    os.environ[index_module.FAISS_THREADS_ENV] = "1"  # the serving setting (also the default)
    header = [
        "products",
        "index",
        "build s",
        "peak +MB",
        "kept MB",
        "p50 ms",
        "p99 ms",
        "cpu p50",
        "cpu p99",
        f"recall@{K}",
        "tuned recall",
        "nprobe/nlist",
    ]
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    for n in args.sizes:
        t0 = time.perf_counter()
        vectors = clustered_vectors(n, args.dim)
        gen_s = time.perf_counter() - t0
        queries = held_out_queries(vectors, args.queries)
        ids = [f"p{i}" for i in range(n)]
        print(f"# {n:,} products × {args.dim}-d: generated in {gen_s:.1f} s", flush=True)
        truth: np.ndarray | None = None
        results: dict[str, dict[str, float]] = {}
        for kind in ("flat", "ivf"):
            with PeakRss() as mem:
                t0 = time.perf_counter()
                index = ProductIndex.build(ids, vectors, "bench", kind=kind)
                build_s = time.perf_counter() - t0
            kept = rss_mb() - mem.start
            index._vectors = None  # a served index holds the FAISS index only
            lat_q = queries[: args.flat_queries] if kind == "flat" else queries
            wall, cpu = single_query_latency(index, lat_q)
            row_of = {pid: i for i, pid in enumerate(ids)}
            found = np.array(
                [[row_of[p] for p, _ in hits] for hits in _batched(index, queries)], dtype=np.int64
            )
            if truth is None:  # the flat index's answer is the exact one
                truth = found
            recall = recall_at(found, truth, K)
            m = index.manifest()
            r = {
                "build": build_s,
                "peak": mem.peak - mem.start,
                "kept": kept,
                "p50": float(np.median(wall)),
                "p99": float(np.percentile(wall, 99)),
                "cpu50": float(np.median(cpu)),
                "cpu99": float(np.percentile(cpu, 99)),
            }
            results[kind] = r
            rows.append(
                [
                    f"{n:,}",
                    f"{kind} ({m['index']})",
                    f"{build_s:.1f}",
                    f"{r['peak']:.0f}",
                    f"{kept:.0f}",
                    f"{r['p50']:.2f}",
                    f"{r['p99']:.2f}",
                    f"{r['cpu50']:.2f}",
                    f"{r['cpu99']:.2f}",
                    f"{recall:.3f}",
                    f"{m['tuned_recall']:.3f}" if m.get("tuned_recall") is not None else "exact",
                    f"{m['nprobe']}/{m['nlist']}" if kind == "ivf" else "-",
                ]
            )
            print("  " + "  ".join(rows[-1]), flush=True)
            del index
        f, a = results["flat"], results["ivf"]
        ratios.append(
            [
                f"{n:,}",
                "flat / ivf",
                f"{f['build'] / a['build']:.2f}",
                f"{f['peak'] / max(a['peak'], 1):.2f}",
                f"{f['kept'] / max(a['kept'], 1):.2f}",
                *(f"{f[x] / a[x]:.1f}" for x in ("p50", "p99", "cpu50", "cpu99")),
                "",
                "",
                "",
            ]
        )
        del vectors
    print()
    print(
        f"search: single query, top {K}, 1 FAISS thread; {args.queries} held-out queries "
        f"({args.flat_queries} timed on flat); ms"
    )
    print_table(header, rows + ratios)


def _batched(index: ProductIndex, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    index.query_threads = max(1, os.cpu_count() or 1)  # the recall check only: all CPUs
    try:
        return index.search(queries, K)
    finally:
        index.query_threads = 1


# ---------------------------------------------------------------- build
def vm_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def bench_build(args: argparse.Namespace) -> None:
    """``tiein build`` of a synthetic shop (``--build-lines`` order lines, 50k products; the catalog
    derived from the orders) or of ``--dataset``: seconds and peak RSS of each step, sampled every
    10 ms by a thread that charges the RSS to the step running (tiein.stages._Timer)."""
    import tempfile

    import pyarrow.parquet as pq

    from tiein import stages
    from tiein.errors import TieinError
    from tiein.pipeline import BuildOptions, build
    from tiein.sysmem import parse_size

    current = ["start"]
    peaks: dict[str, float] = {}
    original_step = stages._Timer.step

    def step(self: stages._Timer, name: str) -> Any:
        current[0] = name
        return original_step(self, name)

    stages._Timer.step = step  # type: ignore[method-assign]
    stop = threading.Event()

    t_start = time.perf_counter()

    def stopped(why: str) -> None:
        """What ran so far and where it broke; the temporary folder removed unless --keep."""
        print(
            f"{why} in step {current[0]!r} after {time.perf_counter() - t_start:.0f} s; "
            "peak RSS per step so far (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items()),
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def sample() -> None:
        while not stop.wait(0.01):
            mb = vm_kb("VmRSS") / 1e3
            peaks[current[0]] = max(peaks.get(current[0], 0.0), mb)
            if args.max_rss_gb and mb > args.max_rss_gb * 1000:  # before the machine's OOM killer
                stopped(f"ABORTED: RSS {mb:,.0f} MB > --max-rss-gb {args.max_rss_gb:g}")
                os._exit(3)

    budget = parse_size(args.memory_budget, "--memory-budget") if args.memory_budget else None
    work = Path(tempfile.mkdtemp(prefix="tiein_scale_"))
    home = args.home or work / "home"
    if args.dataset:
        opts = BuildOptions(dataset=args.dataset, home=home, threads=args.threads, memory_budget=budget)
        label = args.dataset
    else:
        from synthetic import synthetic_orders

        orders = work / "orders.parquet"
        products = args.build_products
        pq.write_table(synthetic_orders(args.build_lines, products, max(1, products // 100)), orders)
        opts = BuildOptions(orders=orders, home=home, threads=args.threads, memory_budget=budget)
        label = f"synthetic {args.build_lines:,} lines over {products:,} products"
    print(f"# build {label} -> {home}", flush=True)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        summary = build(opts)
    except TieinError as exc:  # e.g. the store's memory check
        stopped(f"STOPPED: {exc};")
        raise SystemExit(3) from None
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    total = summary.seconds.get("total", wall)
    rows = [
        [name, f"{s:.1f}", f"{100 * s / total:.0f} %", f"{peaks.get(name, 0.0):,.0f}"]
        for name, s in summary.seconds.items()
        if name != "total"
    ]
    rows.append(["total", f"{total:.1f}", "100 %", f"{vm_kb('VmHWM') / 1e3:,.0f} (VmHWM)"])
    print(f"counts: {summary.counts}")
    print(f"relations: {summary.relations}")
    if summary.staged:  # the embedded store's early COPY, on a thread beside the season step
        st = summary.staged
        print(
            f"store, early part beside the last steps: {len(st['tables'])} tables, {st['seconds']:.1f} s"
            + (f"; RELOADED whole ({st['reloaded']} changed)" if st["reloaded"] else "")
        )
    mem = summary.memory
    if mem.get("budget"):
        peak = f"; peak {mem['peak'] / (1 << 30):.1f} GB" if mem.get("peak") else ""
        print(f"memory budget: {mem['budget'] / (1 << 30):.1f} GB{peak}")
    print_table(["step", "s", "share", "peak RSS MB"], rows)
    if not args.keep:  # a 4M-line run leaves ~3 GB (orders, home)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- main
BENCHES: dict[str, Callable[[argparse.Namespace], None]] = {"search": bench_search, "build": bench_build}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tiein at growing shop sizes")
    ap.add_argument("--only", default="search", help=f"comma-separated of: {', '.join(BENCHES)}")
    ap.add_argument("--sizes", default="50000,500000", help="search: product counts")
    ap.add_argument("--dim", type=int, default=512, help="search: vector dimension")
    ap.add_argument("--queries", type=int, default=500, help="search: held-out queries (recall, IVF latency)")
    ap.add_argument("--flat-queries", type=int, default=100, help="search: queries timed on the flat index")
    ap.add_argument("--build-lines", type=int, default=4_000_000, help="build: synthetic order lines")
    ap.add_argument(
        "--build-products", type=int, default=50_000, help="build: synthetic products (categories: 1 per 100)"
    )
    ap.add_argument(
        "--max-rss-gb",
        type=float,
        default=None,
        help="build: stop (exit 3) when the build's RSS passes this, printing the steps so far",
    )
    ap.add_argument("--dataset", default=None, help="build: a ready dataset instead of the synthetic shop")
    ap.add_argument(
        "--home", type=Path, default=None, help="build: home (default: a temp folder, removed at the end)"
    )
    ap.add_argument(
        "--keep", action="store_true", help="build: keep the temp folder (synthetic orders, home) at the end"
    )
    ap.add_argument("--threads", type=int, default=None, help="build: --threads")
    ap.add_argument(
        "--memory-budget", default=None, metavar="SIZE", help="build: --memory-budget (e.g. 4G; tiein.sysmem)"
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.sizes, args.queries, args.flat_queries = [20_000], 100, 50
        args.build_lines = min(args.build_lines, 200_000)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        ap.error(f"unknown sub-benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    for name in chosen:
        print(f"== {name}", flush=True)
        BENCHES[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

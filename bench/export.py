"""Batch export speed: every product's bundle and related list in CSV, JSON lines and Parquet.

    python bench/export.py                          # Online Retail I + 50k synthetic products
    python bench/export.py --skip-online-retail --synthetic 5000 --edges 200000
    python bench/export.py --cache ~/.cache/tiein-bench   # where built graphs are kept

Graphs are built once into ``--cache`` (Online Retail I through the real pipeline; the synthetic
catalog from bench/store_load.py's generator, ~40 % of ``--edges`` typed relations) and reused
by later runs. For each graph it prints the snapshot load (tiein.graph.snapshot: the whole graph read
once) and, per export (bundles / related complements) and format, the wall time, anchors and
rows, through tiein.export.export — the same code path as ``tiein export``. Target: each export
of 50k products <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

FORMATS = ("csv", "jsonl", "parquet")
WHATS = ("bundles", "related")


def _built(home: Path) -> bool:
    return (home / "graph" / "CURRENT").is_file()


def online_retail_home(cache: Path, data_dir: Path | None) -> Path:
    """A home with Online Retail I built (once) by the real pipeline."""
    from tiein.pipeline import BuildOptions, build

    home = cache / "online_retail"
    if not _built(home):
        t0 = time.perf_counter()
        build(BuildOptions(dataset="online_retail", data_dir=data_dir, home=home))
        print(f"built Online Retail I into {home} in {time.perf_counter() - t0:.1f} s", flush=True)
    return home


def synthetic_home(cache: Path, n_products: int, n_edges: int) -> Path:
    """A home whose embedded graph is bench/store_load.py's synthetic catalog (built once)."""
    from store_load import synthetic_graph

    from tiein.graph.ladybug_store import EmbeddedStore

    home = cache / f"synthetic-{n_products}-{n_edges}"
    if not _built(home):
        t0 = time.perf_counter()
        store = EmbeddedStore(home / "graph")
        store.replace(synthetic_graph(n_products, n_edges))
        store.close()
        print(
            f"built {n_products:,} synthetic products / {n_edges:,} edges in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    return home


def bench_home(label: str, home: Path, out_dir: Path, k: int) -> list[dict[str, Any]]:
    """Export every format of bundles and related complements from ``home``; one result per run."""
    from tiein.export import export
    from tiein.graph.ladybug_store import EmbeddedStore
    from tiein.graph.snapshot import SnapshotStore

    t0 = time.perf_counter()
    snap = SnapshotStore(EmbeddedStore(home / "graph"), follow=False)
    load_s = time.perf_counter() - t0
    n = len(snap.product_ids())
    print(f"\n{label}: {n:,} products; snapshot loaded in {load_s:.1f} s")
    print(f"  {'export':<9} {'format':<8} {'seconds':>8} {'anchors':>9} {'rows':>10} {'MB':>7}")
    results = []
    try:
        for what in WHATS:
            for fmt in FORMATS:
                path = out_dir / f"{label}-{what}.{fmt}"
                r = export(snap, what, path, fmt=fmt, k=k)
                mb = path.stat().st_size / 1e6
                print(
                    f"  {what:<9} {fmt:<8} {r.seconds:>8.1f} {r.anchors:>9,} {r.rows:>10,} {mb:>7.1f}",
                    flush=True,
                )
                results.append(
                    {
                        "graph": label,
                        "what": what,
                        "format": fmt,
                        "seconds": r.seconds,
                        "anchors": r.anchors,
                        "rows": r.rows,
                        "load_s": load_s,
                    }
                )
                path.unlink()
    finally:
        snap.close()
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tiein-bench-export",
        help="where built graphs are kept between runs",
    )
    ap.add_argument("--data-dir", type=Path, default=None, help="shared datasets [env TIEIN_DATA]")
    ap.add_argument("--synthetic", type=int, default=50_000, help="synthetic products (0: skip)")
    ap.add_argument("--edges", type=int, default=2_000_000, help="synthetic edges (~40 %% typed relations)")
    ap.add_argument("--skip-online-retail", action="store_true")
    ap.add_argument("-k", type=int, default=10, help="related items per anchor")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (sets OMP/torch threads)")
    args = ap.parse_args(argv)
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    args.cache.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tiein-export-") as tmp:
        out_dir = Path(tmp)
        if not args.skip_online_retail:
            home = online_retail_home(args.cache, args.data_dir)
            results += bench_home("online_retail", home, out_dir, args.k)
        if args.synthetic:
            home = synthetic_home(args.cache, args.synthetic, args.edges)
            results += bench_home(f"synthetic_{args.synthetic}", home, out_dir, args.k)
    slow = [r for r in results if r["seconds"] > 60]
    print(
        f"\n{len(results)} exports; slowest {max((r['seconds'] for r in results), default=0):.1f} s "
        f"({'all within' if not slow else f'{len(slow)} over'} the 60 s target)"
    )
    return results


if __name__ == "__main__":
    main()

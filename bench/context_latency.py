"""Query latency with ``at=`` and ``segment=`` on the 50k-product synthetic graph (issue 14: p99
≤ 5 ms).

bench/store_load.py's synthetic graph (50k products, ~2M relationships) with realistic
``season`` (12 monthly weights, peak, share, …) and ``segments`` (8 segments, 4 per pair) evidence
on every relation and the build meta's segment report, loaded once into the embedded store
(``--home``, kept), then served the way the API serves it: ``tiein.service.related_payload`` and
``bundle_payload`` on a :class:`tiein.graph.snapshot.SnapshotStore`, plain vs ranked for a date and
a segment, over the same random anchors.

    python bench/context_latency.py                  # 2,000 anchors, home <tmp>/tiein-context
    python bench/context_latency.py --products 5000 --edges 200000 --anchors 500   # quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SEGMENTS = [f"S{i}" for i in range(8)]


def with_context_evidence(data: Any, seed: int) -> Any:
    """``data`` (GraphData) with season and segment evidence on every relation."""
    rng = np.random.default_rng(seed)
    rel = data.relations
    n = rel.num_rows
    months = np.round(rng.uniform(0.5, 2.5, (n, 12)), 2)
    peak = months.argmax(axis=1)
    counts = rng.integers(3, 200, n)
    seg_idx = np.argsort(rng.random((n, len(SEGMENTS))), axis=1)[:, :4]
    seg_lift = np.round(rng.uniform(0.4, 2.0, (n, 4)), 3)
    seg_n = rng.integers(1, 50, (n, 4))
    texts = []
    for i in range(n):
        p = int(peak[i])
        season = {
            "by": "month",
            "peak": f"m{p + 1:02d}",
            "peak_zh": f"{p + 1}月",
            "peak_en": "month",
            "share": 0.2,
            "lift": float(months[i, p]),
            "seasonal": bool(months[i, p] >= 1.5),
            "bought_together": int(counts[i]),
            "months": months[i].tolist(),
        }
        by = {SEGMENTS[int(j)]: [int(seg_n[i, k]), float(seg_lift[i, k])] for k, j in enumerate(seg_idx[i])}
        texts.append(
            json.dumps(
                {"score": 0.5, "season": season, "segments": {"n": int(counts[i]), "by": by}},
                ensure_ascii=False,
                separators=(",", ":"),
            )
        )
    idx = rel.schema.get_field_index("evidence")
    data.relations = rel.set_column(idx, rel.schema.field(idx), pa.array(texts, pa.string()))
    share = round(1 / len(SEGMENTS), 6)
    data.meta = {
        **data.meta,
        "bench": "context",
        "segments": {
            "prior": 10.0,
            "strength": 1.0,
            "segments": {s: {"baskets": 1000, "share": share} for s in SEGMENTS},
            "small": [],
        },
    }
    return data


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def timed(fn: Any, anchors: list[str]) -> dict[str, float]:
    for a in anchors[:100]:
        fn(a)
    out = []
    for a in anchors:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000)
    return percentiles(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "tiein-context")
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--edges", type=int, default=2_000_000)
    ap.add_argument("--anchors", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from bundles import synthetic_bundle_graph

    from tiein.graph import open_store
    from tiein.graph.snapshot import SnapshotStore
    from tiein.model import QueryContext
    from tiein.service import bundle_payload, related_payload

    key = {"products": args.products, "edges": args.edges, "seed": args.seed}
    marker = args.home / "bench.json"
    if not marker.exists() or json.loads(marker.read_text()) != key:
        t = time.perf_counter()
        data = with_context_evidence(synthetic_bundle_graph(args.products, args.edges, args.seed), args.seed)
        args.home.mkdir(parents=True, exist_ok=True)
        with open_store(str(args.home / "graph")) as s:
            s.replace(data)
        marker.write_text(json.dumps(key))
        print(f"built the synthetic graph in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    snap = SnapshotStore(open_store(str(args.home / "graph")))
    try:
        rng = np.random.default_rng(args.seed + 2)
        anchors = [f"P{i:07d}" for i in rng.integers(0, args.products, args.anchors)]
        ctx = QueryContext(at=date(2011, 12, 1), segment="S3")
        result = {
            "graph": {"products": args.products, "relationships": snap.stats()["relationships"]},
            "anchors": len(anchors),
            "related_plain": timed(lambda a: related_payload(snap, a, "complement", 10), anchors),
            "related_at_segment": timed(
                lambda a: related_payload(snap, a, "complement", 10, context=ctx), anchors
            ),
            "bundle_plain": timed(lambda a: bundle_payload(snap, a), anchors),
            "bundle_at_segment": timed(lambda a: bundle_payload(snap, a, context=ctx), anchors),
        }
    finally:
        snap.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.products:,} products, {args.anchors:,} anchors, snapshot store (what the API serves)")
        for name in ("related_plain", "related_at_segment", "bundle_plain", "bundle_at_segment"):
            r = result[name]
            print(f"  {name:<20} p50 {r['p50']:.2f} ms  p95 {r['p95']:.2f} ms  p99 {r['p99']:.2f} ms")
    return result


if __name__ == "__main__":
    main()

"""What a generation switch costs the requests of a serving snapshot, isolated from the build.

The API serves from :class:`tiein.graph.snapshot.SnapshotStore`. When a rebuild switches the
generation, the snapshot reads the new graph: before, inside the request that noticed it (every
request waited, under the lock, for the whole read); now (``background=True``, what ``tiein
serve`` uses) in a background thread while requests keep the previous graph. This bench makes one
client thread call ``related_payload`` every 4 ms on the bench home's graph, then marks the
loaded graph stale (exactly what a switch looks like to the snapshot, without a build competing
for the two cores) and reports the latencies of the calls in the 1.5 s after it, both ways.
``bench/api.py --switches N`` measures the whole thing end to end, a real `tiein rollback`
(a store rewrite) included.

    python bench/snapshot_switch.py                    # the home of bench/api.py (built if needed)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def probe(graph: Path, background: bool, seconds_after: float = 1.5) -> dict[str, Any]:
    from tiein.graph import open_store
    from tiein.graph.snapshot import SnapshotStore
    from tiein.service import related_payload

    snap = SnapshotStore(open_store(str(graph)), background=background)
    ids = snap.product_ids()[:2000]
    calls: list[tuple[float, float]] = []
    stop = threading.Event()

    def client() -> None:
        rng = random.Random(0)
        while not stop.is_set():
            t = time.perf_counter()
            related_payload(snap, rng.choice(ids), "complement", 10)
            calls.append((t, time.perf_counter() - t))
            time.sleep(0.004)

    th = threading.Thread(target=client)
    th.start()
    try:
        time.sleep(1.0)
        switch = time.perf_counter()
        snap._graph = dataclasses.replace(snap._graph, generation="stale")  # type: ignore[arg-type]
        deadline = switch + 30
        while (
            time.perf_counter() < deadline and snap._graph is not None and snap._graph.generation == "stale"
        ):
            time.sleep(0.02)
        reload_s = time.perf_counter() - switch
        time.sleep(max(0.0, seconds_after - reload_s) + 0.2)
    finally:
        stop.set()
        th.join()
        snap.close()
    after = sorted(lat for t, lat in calls if switch - 0.005 <= t <= switch + seconds_after)
    before = sorted(lat for t, lat in calls if t < switch)

    def pct(v: list[float], q: float) -> float:
        return round(v[min(len(v) - 1, int(len(v) * q))] * 1000, 2) if v else 0.0

    return {
        "reload_s": round(reload_s, 2),
        "calls_after": len(after),
        "after_p99_ms": pct(after, 0.99),
        "after_max_ms": round(after[-1] * 1000, 1) if after else 0.0,
        "before_p99_ms": pct(before, 0.99),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from api_server import default_home, ensure_home

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    home = (args.home or default_home()).expanduser()
    ensure_home(home, "online_retail")
    result = {"in_the_request": probe(home / "graph", False), "background": probe(home / "graph", True)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"related() every 4 ms while the snapshot reloads ({home}):")
        for name, r in result.items():
            print(
                f"  reload {name:<15} {r['reload_s']:.2f} s; calls in the 1.5 s after the switch: "
                f"{r['calls_after']}, p99 {r['after_p99_ms']:.1f} ms, max {r['after_max_ms']:.0f} ms "
                f"(before: p99 {r['before_p99_ms']:.2f} ms)"
            )
    return result


if __name__ == "__main__":
    main()

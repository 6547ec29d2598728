"""Relations per customer segment on held-out baskets: Online Retail I with the invoice's Country
as the segment (`tiein build --map segment=Country`).

Protocol: invoices before 2011-09-01 train (the real build, through the shipped Online Retail
mapping plus ``orders.segment: Country``), later invoices test. Test baskets keep the products seen
in training and need ≥ 2 of them. Task (as bench/quality.py's anchor task): every item of every
test basket as anchor, its top-10 complements through ``tiein.service.related_payload`` on a
snapshot of the built store, hit = another item of the basket in them. Each anchor is asked twice,
for all customers and with ``segment=<the basket's country>``; the table splits the baskets into
the UK (the shop's 90 %) and the rest, and counts only countries the build kept statistics for
(≥ 30 training baskets) under "known".

    python bench/segments.py                  # builds into bench/out/segments/ (kept for reruns)
    python bench/segments.py --rebuild --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_I.parquet"
OUT = ROOT / "bench" / "out" / "segments"
SPLIT = "2011-09-01"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_train(home: Path, rebuild: bool) -> None:
    from tiein.loaders.mapping import Mapping, ready_mapping
    from tiein.pipeline import BuildOptions, build

    if (home / "graph" / "CURRENT").exists() and not rebuild:
        return
    raw = pq.read_table(DATA)
    cut = pa.scalar(pa.scalar(SPLIT).cast(pa.timestamp("ns")).as_py(), pa.timestamp("ns"))
    train = raw.filter(pc.less(raw.column("InvoiceDate"), cut))
    home.mkdir(parents=True, exist_ok=True)
    pq.write_table(train, home.parent / "train.parquet")
    mapping: Mapping = ready_mapping("online_retail")
    mapping = Mapping.from_cli(["orders.segment=Country"], base=mapping)
    log(f"building the training invoices (before {SPLIT}) into {home} …")
    t0 = time.perf_counter()
    s = build(BuildOptions(orders=home.parent / "train.parquet", mapping=mapping, home=home, threads=1))
    log(f"built in {time.perf_counter() - t0:.0f} s: {s.counts.get('segments')} segments kept")


def test_baskets(known_products: set[str]) -> list[tuple[str, list[str]]]:
    """(country, distinct known products) of every test invoice with ≥ 2 of them."""
    raw = pq.read_table(DATA, columns=["InvoiceNo", "StockCode", "InvoiceDate", "Country", "Quantity"])
    cut = pa.scalar(pa.scalar(SPLIT).cast(pa.timestamp("ns")).as_py(), pa.timestamp("ns"))
    test = raw.filter(
        pc.and_(pc.greater_equal(raw.column("InvoiceDate"), cut), pc.greater(raw.column("Quantity"), 0))
    )
    baskets: dict[str, tuple[str, set[str]]] = {}
    for inv, code, country in zip(
        test.column("InvoiceNo").to_pylist(),
        test.column("StockCode").to_pylist(),
        test.column("Country").to_pylist(),
        strict=True,
    ):
        pid = str(code).upper()
        if str(inv).startswith("C") or pid not in known_products:
            continue
        baskets.setdefault(str(inv), (str(country), set()))[1].add(pid)
    return [(c, sorted(items)) for _, (c, items) in sorted(baskets.items()) if len(items) >= 2]


def evaluate(home: Path) -> dict[str, Any]:
    from tiein.graph import open_store
    from tiein.graph.snapshot import SnapshotStore
    from tiein.model import QueryContext
    from tiein.segments import store_segment
    from tiein.service import related_payload

    snap = SnapshotStore(open_store(str(home / "graph")), follow=False)
    try:
        products = set(snap.product_ids())
        known = set((snap.stats()["meta"].get("segments") or {}).get("segments", {}))
        baskets = test_baskets(products)
        groups: dict[str, dict[str, list[int]]] = {}
        cache: dict[tuple[str, str | None], list[str]] = {}

        def top(pid: str, segment: str | None) -> list[str]:
            key = (pid, segment)
            if key not in cache:
                ctx = QueryContext(segment=segment) if segment else None
                cache[key] = [
                    r["product_id"]
                    for r in related_payload(snap, pid, "complement", 10, context=ctx)["items"]
                ]
            return cache[key]

        t0 = time.perf_counter()
        for country, items in baskets:
            group = (
                "UK"
                if country == "United Kingdom"
                else ("other, known" if country in known else "other, unknown")
            )
            g = groups.setdefault(group, {"global": [], "segment": [], "baskets": [0]})
            g["baskets"][0] += 1
            basket = set(items)
            for pid in items:
                rest = basket - {pid}
                g["global"].append(int(bool(rest & set(top(pid, None)))))
                g["segment"].append(int(bool(rest & set(top(pid, country)))))
        seconds = time.perf_counter() - t0
        seg = store_segment(snap, "France")
    finally:
        snap.close()
    out: dict[str, Any] = {"known_segments": sorted(known), "seconds": round(seconds, 1), "groups": {}}
    out["france_known"] = bool(seg and seg.known)
    for name, g in sorted(groups.items()):
        n = len(g["global"])
        hr_g = sum(g["global"]) / max(n, 1)
        hr_s = sum(g["segment"]) / max(n, 1)
        out["groups"][name] = {
            "baskets": g["baskets"][0],
            "anchors": n,
            "hr10_global": round(hr_g, 4),
            "hr10_segment": round(hr_s, 4),
            "ratio": round(hr_s / hr_g, 3) if hr_g else None,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=OUT / "home")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    build_train(args.home, args.rebuild)
    result = evaluate(args.home)
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"Online Retail I, train before {SPLIT}, anchor HR@10 of held-out baskets (segment = Country)")
    print(f"segments with statistics: {', '.join(result['known_segments'])}")
    print(f"{'baskets':<16} {'n':>6} {'anchors':>8} {'global':>8} {'segment':>8} {'ratio':>6}")
    for name, g in result["groups"].items():
        print(
            f"{name:<16} {g['baskets']:>6} {g['anchors']:>8} {g['hr10_global']:>8.4f} {g['hr10_segment']:>8.4f} "
            f"{g['ratio'] if g['ratio'] is not None else '-':>6}"
        )
    return result


if __name__ == "__main__":
    main()

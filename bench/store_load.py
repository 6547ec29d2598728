"""Load time of a graph store on a synthetic catalog (default 50k products, ~2M relationships).

    python bench/store_load.py                       # embedded store in a temp dir
    python bench/store_load.py --products 4000 --edges 100000
    python bench/store_load.py --store bolt://localhost:7687

Prints the time of tiein.graph.build.graph_tables (validation + derivation), of the full atomic
``replace``, of a second ``replace`` (the switch path), reopen, ``related`` latency and counts.
The generator is vectorised (numpy) and deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.model import (
    PAIR_STATS,
    PRODUCTS,
    RELATION_KINDS,
    RELATIONS,
    SCENE_MEMBERS,
    SCENES,
    GraphData,
)


def _ids(idx: np.ndarray) -> pa.Array:
    # zero-padded, so string order = numeric order (pairs need a < b)
    return pc.binary_join_element_wise("P", pc.utf8_lpad(pa.array(idx).cast(pa.string()), 7, "0"), "")


def _unique_pairs(rng: np.random.Generator, n_products: int, n: int, ordered: bool) -> np.ndarray:
    """n distinct (a, b) index pairs, a != b; a < b unless ``ordered``."""
    a = rng.integers(0, n_products, int(n * 1.2))
    b = rng.integers(0, n_products, int(n * 1.2))
    keep = a != b
    a, b = a[keep], b[keep]
    if not ordered:
        a, b = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(a.astype(np.int64) * n_products + b)
    key = rng.permutation(key)[:n]
    return np.stack([key // n_products, key % n_products], axis=1)


def synthetic_graph(n_products: int = 50_000, n_edges: int = 2_000_000, seed: int = 0) -> GraphData:
    """A GraphData whose co-purchase, co-view and relation tables hold about ``n_edges`` rows
    (40% / 20% / 40%); category/brand/attribute/scene edges come on top (~3 per product)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n_products)
    pid = _ids(idx)
    cats = np.array(
        [
            f"dept{d} > aisle{d}-{a} > shelf{d}-{a}-{s}"
            for d in range(10)
            for a in range(10)
            for s in range(10)
        ]
    )
    leaves = np.array([c.split(" > ")[-1] for c in cats])
    cat_idx = rng.integers(0, len(cats), n_products)
    colors = np.array(['{"color": "red"}', '{"color": "blue", "size": 42}', '{"material": "棉"}', None])
    products = pa.table(
        {
            "product_id": pid,
            "title": pc.binary_join_element_wise("商品 item ", pid, ""),
            "category": pa.array(leaves[cat_idx]),
            "category_path": pa.array(cats[cat_idx]),
            "brand": pa.array(np.array([f"brand{i}" for i in range(500)])[rng.integers(0, 500, n_products)]),
            "price": pa.array(np.round(rng.uniform(1, 1000, n_products), 2)),
            "stock": pa.array(rng.integers(0, 100, n_products)),
            "attributes": pa.array(colors[rng.integers(0, len(colors), n_products)].tolist(), pa.string()),
            "margin": pa.array(np.round(rng.uniform(0.05, 0.6, n_products), 2)),
            "sales_role": pa.array(
                np.array(["traffic", "hero", "profit", "regular", None])[
                    rng.integers(0, 5, n_products)
                ].tolist(),
                pa.string(),
            ),
            "product_type": pa.array(cats[cat_idx]),
        },
        schema=PRODUCTS,
    )

    def pair_stats(n: int) -> pa.Table:
        p = _unique_pairs(rng, n_products, n, ordered=False)
        n_ab = rng.integers(1, 50, len(p))
        n_a = n_ab + rng.integers(0, 500, len(p))
        n_b = n_ab + rng.integers(0, 500, len(p))
        total = np.full(len(p), 1_000_000)
        return pa.table(
            {
                "a": _ids(p[:, 0]),
                "b": _ids(p[:, 1]),
                "n_ab": n_ab,
                "n_a": n_a,
                "n_b": n_b,
                "n": total,
                "support": n_ab / total,
                "conf_ab": n_ab / n_a,
                "conf_ba": n_ab / n_b,
                "lift": n_ab * total / (n_a * n_b),
                "after_ab": n_ab // 3,
                "after_ba": n_ab // 5,
            },
            schema=PAIR_STATS,
        )

    n_rel = int(n_edges * 0.4)
    r = _unique_pairs(rng, n_products, n_rel, ordered=True)
    kinds = np.array(RELATION_KINDS)[rng.integers(0, len(RELATION_KINDS), len(r))]
    score = np.round(rng.random(len(r)), 3)  # rounded: many ties
    relations = pa.table(
        {
            "src": _ids(r[:, 0]),
            "dst": _ids(r[:, 1]),
            "kind": kinds,
            "score": score,
            "n_ab": rng.integers(0, 50, len(r)),
            "lift": rng.random(len(r)) * 5,
            "confidence": rng.random(len(r)),
            "co_view": rng.integers(0, 20, len(r)),
            "similarity": rng.random(len(r)),
            "category_relation": np.array(["same", "sibling", "different", "unknown"])[
                rng.integers(0, 4, len(r))
            ],
            "price_ratio": rng.random(len(r)) * 3,
            "evidence": pc.binary_join_element_wise('{"score": ', pa.array(score).cast(pa.string()), "}", ""),
        },
        schema=RELATIONS,
    )
    n_scenes = 50
    member_idx = rng.permutation(n_products)[: min(n_products, 5000)]
    members = np.stack([member_idx, rng.integers(0, n_scenes, len(member_idx))], axis=1)
    return GraphData(
        products=products,
        co_purchased=pair_stats(int(n_edges * 0.4)),
        co_viewed=pair_stats(int(n_edges * 0.2)),
        relations=relations,
        scenes=pa.table(
            {
                "scene_id": [f"S{i}" for i in range(n_scenes)],
                "name": [f"scene {i}" for i in range(n_scenes)],
                "source": ["discovered"] * n_scenes,
            },
            schema=SCENES,
        ),
        scene_members=pa.table(
            {
                "product_id": _ids(members[:, 0]),
                "scene_id": pa.array([f"S{i}" for i in members[:, 1]]),
                "role": pa.nulls(len(members), pa.string()),
                "weight": np.ones(len(members)),
            },
            schema=SCENE_MEMBERS,
        ),
        meta={"synthetic": True, "seed": seed},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--edges", type=int, default=2_000_000)
    ap.add_argument("--store", default=None, help="store url (default: embedded store in a temp dir)")
    args = ap.parse_args()

    from tiein.graph import open_store
    from tiein.graph.build import graph_tables

    t = time.perf_counter()
    data = synthetic_graph(args.products, args.edges)
    print(f"generate      {time.perf_counter() - t:6.2f} s")
    t = time.perf_counter()
    tables = graph_tables(data)
    print(f"graph_tables  {time.perf_counter() - t:6.2f} s")
    counts = tables.counts()
    n_nodes, n_rels = sum(counts["nodes"].values()), sum(counts["relationships"].values())
    print(f"graph         {n_nodes:,} nodes, {n_rels:,} relationships")

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or str(Path(tmp) / "graph")
        store = open_store(url)
        for attempt in ("replace", "replace again"):
            t = time.perf_counter()
            store.replace(data)
            print(f"{attempt:13s} {time.perf_counter() - t:6.2f} s (validation + load + switch)")
        store.close()
        t = time.perf_counter()
        store = open_store(url)
        st = store.stats()
        print(f"reopen+stats  {time.perf_counter() - t:6.2f} s")
        assert st["nodes"] == counts["nodes"] and st["relationships"] == counts["relationships"], st
        pids = data.products.column("product_id").to_pylist()[:: max(1, args.products // 500)]
        lat = []
        for p in pids:
            t = time.perf_counter()
            store.related(p, "complement", 10)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        print(f"related       p50 {statistics.median(lat):.2f} ms, p99 {lat[int(len(lat) * 0.99)]:.2f} ms")
        if args.store is None:
            size = sum(f.stat().st_size for f in Path(url).rglob("*") if f.is_file())
            print(f"disk          {size / 1e6:.0f} MB")
        print(json.dumps(st["relationships"]))
        store.close()


if __name__ == "__main__":
    main()

"""Bundle speed and bundle quality (issue 3).

    python bench/bundles.py --synthetic            # 50k products / ~2M edges: bundle() latency
    python bench/bundles.py --instacart            # bundles for the 500 most-ordered products
    python bench/bundles.py --synthetic --instacart --home /tmp/tiein-bundles   # keep the builds

``--synthetic`` loads bench/store_load.py's synthetic graph (50k products, ~2M relationships:
co-purchase 40 %, co-view 20 %, typed relations 40 %, i.e. ~4 complements and ~4 substitutes per
product) with scenes made bundle-like: one scene per department (10), one role per aisle in
aisle order, every product a member, sales roles drawn at random. It times ``bundle()`` (the
default call: the anchor's own scene) for ``--anchors`` random anchors after a warm-up and, as the
peer, a plain ``store.related(anchor, "complement", 50)``: p50 / p95 / p99 in ms, in-process on the
embedded store.

``--instacart`` builds Instacart (catalog + prior orders) with the pipeline. Instacart has no
prices (loaders/datasets.py maps none), so the bench writes a COPY of the loaded catalog into the
build's home with a deterministic synthetic price per product (:func:`synthetic_prices`: log-uniform
1-30 from a hash of the product id; nothing is written to shared/), builds from that copy and the
prior orders, then takes ``bundle()`` for the 500 most-ordered products and audits every bundle
independently of the bundle code (:func:`audit_bundles`): prices and aisles are read from the
priced catalog, not from the answers. It prints how many bundles, items, pairs of bundle members
(anchor included) in the same aisle (must be 0), items outside the 30-80 % price band (must be 0)
and why the rest have no bundle. The built home is cached under ``--home`` (default: a temp dir).

The JSON summary on the last line is what tests/test_bench_bundles.py reads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiein.bundles import BundleRules, bundle  # noqa: E402
from tiein.graph.base import GraphStore  # noqa: E402
from tiein.model import SALES_ROLES, SCENE_MEMBERS, SCENES, GraphData  # noqa: E402

MARKER = "bench-bundles.json"  # in a cached home: what was built there


# ----------------------------------------------------------------------------- timing
def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max of a list of milliseconds (nearest-rank), rounded to 0.01 ms."""
    s = sorted(ms)
    n = len(s)

    def rank(q: float) -> float:
        return s[min(n - 1, max(0, int(np.ceil(q * n)) - 1))]

    return {
        "n": n,
        "p50": round(statistics.median(s), 2),
        "p95": round(rank(0.95), 2),
        "p99": round(rank(0.99), 2),
        "max": round(s[-1], 2),
    }


def time_calls(fn: Callable[[str], Any], anchors: Sequence[str], warmup: int = 200) -> dict[str, float]:
    """Percentiles of ``fn(anchor)`` over ``anchors`` after ``warmup`` untimed calls."""
    for a in anchors[:warmup]:
        fn(a)
    ms = []
    for a in anchors:
        t = time.perf_counter()
        fn(a)
        ms.append((time.perf_counter() - t) * 1000)
    return percentiles(ms)


# ----------------------------------------------------------------------------- synthetic
def synthetic_bundle_graph(n_products: int = 50_000, n_edges: int = 2_000_000, seed: int = 0) -> GraphData:
    """bench/store_load.py's synthetic graph with bundle-like scenes and sales roles (see the
    module docstring). Vectorised and deterministic for a seed."""
    from store_load import synthetic_graph

    data = synthetic_graph(n_products, n_edges, seed)
    rng = np.random.default_rng(seed + 1)
    products = data.products
    paths = products.column("category_path").to_numpy(zero_copy_only=False).astype(str)
    parts = np.char.split(paths, " > ")
    dept = np.array([p[0] for p in parts])
    aisle = np.array([p[1] for p in parts])
    aisle_pos = np.char.rpartition(aisle, "-")[:, 2].astype(np.int64) + 1
    roles = np.array([*SALES_ROLES, None], dtype=object)[rng.integers(0, len(SALES_ROLES) + 1, n_products)]
    products = products.set_column(
        products.schema.get_field_index("sales_role"), "sales_role", pa.array(roles.tolist(), pa.string())
    )
    depts = sorted(set(dept.tolist()))
    data.products = products
    data.scenes = pa.table(
        {"scene_id": depts, "name": [f"{d} scene" for d in depts], "source": ["user"] * len(depts)},
        schema=SCENES,
    )
    data.scene_members = pa.table(
        {
            "product_id": products.column("product_id"),
            "scene_id": dept,
            "role": aisle,
            "weight": aisle_pos.astype(np.float64),
        },
        schema=SCENE_MEMBERS,
    )
    data.meta = {**data.meta, "bench": "bundles"}
    return data


def _cached_store(home: Path, key: dict[str, Any], make: Callable[[Path], str]) -> GraphStore:
    """The store built in ``home`` for ``key``, built by ``make(home) -> store url`` when the home
    holds nothing or something else."""
    from tiein.graph import open_store

    marker = home / MARKER
    if marker.exists():
        saved = json.loads(marker.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return open_store(saved["store"])
    home.mkdir(parents=True, exist_ok=True)
    url = make(home)
    marker.write_text(json.dumps({"key": key, "store": url}), encoding="utf-8")
    return open_store(url)


def synthetic_bench(
    home: Path,
    n_products: int = 50_000,
    n_edges: int = 2_000_000,
    anchors: int = 2_000,
    seed: int = 0,
    warmup: int = 200,
) -> dict[str, Any]:
    """Latency of bundle() vs related() on the synthetic graph (built once into ``home``)."""
    from tiein.graph import open_store

    def make(h: Path) -> str:
        t = time.perf_counter()
        data = synthetic_bundle_graph(n_products, n_edges, seed)
        store = open_store(h / "graph")
        store.replace(data)
        store.close()
        print(f"built synthetic graph in {time.perf_counter() - t:.1f} s", flush=True)
        return str(h / "graph")

    key = {"kind": "synthetic", "products": n_products, "edges": n_edges, "seed": seed}
    store = _cached_store(home, key, make)
    try:
        counts = store.stats()
        rng = np.random.default_rng(seed + 2)
        ids = [f"P{i:07d}" for i in rng.integers(0, n_products, anchors)]
        answers = [bundle(store, a) for a in ids[:warmup]]  # also the warm-up
        bundle_ms = time_calls(lambda a: bundle(store, a), ids, warmup=0)
        related_ms = time_calls(lambda a: store.related(a, "complement", 50), ids, warmup=warmup)
        answers += [bundle(store, a) for a in ids[warmup : warmup * 2]]
        # the same bundle code on tiein.graph.snapshot.SnapshotStore (the embedded graph read once into
        # memory, answers proven identical by the store contract suite): the serving option
        from tiein.graph.snapshot import SnapshotStore

        t = time.perf_counter()
        snap = SnapshotStore(store)
        snapshot_load_s = time.perf_counter() - t
        same = all(bundle(snap, b.anchor["product_id"]).to_dict() == b.to_dict() for b in answers)
        snapshot_ms = time_calls(lambda a: bundle(snap, a), ids, warmup=warmup)
    finally:
        store.close()
    return {
        "graph": {
            "products": counts["nodes"]["Product"],
            "relationships": sum(v for k, v in counts["relationships"].items()),
        },
        "anchors": len(ids),
        "bundle_ms": bundle_ms,
        "related_ms": related_ms,
        "p99_ratio_bundle_to_related": round(bundle_ms["p99"] / max(related_ms["p99"], 1e-9), 2),
        "snapshot": {"load_s": round(snapshot_load_s, 2), "bundle_ms": snapshot_ms, "same_answers": same},
        "sample": {
            "bundles": len(answers),
            "with_items": sum(1 for b in answers if b.items),
            "following_a_scene": sum(1 for b in answers if b.scene),
            "reasons": dict(Counter(b.reason.code for b in answers if b.reason)),
        },
    }


# ----------------------------------------------------------------------------- instacart
def synthetic_prices(
    product_ids: pa.Array | pa.ChunkedArray, low: float = 1.0, high: float = 30.0
) -> pa.Array:
    """A deterministic price per product id: log-uniform in [low, high) from a 64-bit hash of the
    id (pandas' hash_array, vectorised), rounded to cents. Same id, same price, on every run."""
    import pandas as pd

    ids = np.asarray(product_ids.to_pylist(), dtype=object)
    h = pd.util.hash_array(ids, categorize=False).astype(np.float64) / 2.0**64
    return pa.array(np.round(np.exp(np.log(low) + h * (np.log(high) - np.log(low))), 2))


def priced_copy(products: pa.Table, folder: Path) -> Path:
    """Write ``products`` (PRODUCTS) with :func:`synthetic_prices` filled in where the price is
    null to ``folder/catalog_priced.parquet``; returns the path."""
    prices = pc.coalesce(products.column("price"), synthetic_prices(products.column("product_id")))
    table = products.set_column(products.schema.get_field_index("price"), "price", prices)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "catalog_priced.parquet"
    pq.write_table(table, path)
    return path


def build_instacart(
    home: Path,
    *,
    data_dir: Path | None = None,
    embeddings: bool = True,
    max_orders: int | None = None,
    threads: int | None = None,
) -> GraphStore:
    """Instacart built by the pipeline from a priced copy of its catalog and its prior orders
    (the first ``max_orders`` orders when given), cached in ``home``."""

    def make(h: Path) -> str:
        from tiein import loaders
        from tiein.pipeline import BuildOptions, build

        t = time.perf_counter()
        loaded = loaders.load_dataset("instacart", data_dir=data_dir)
        orders = loaded.orders
        if max_orders is not None:
            keep = pc.unique(orders.column("order_id")).slice(0, max_orders)
            orders = orders.filter(pc.is_in(orders.column("order_id"), value_set=keep))
        catalog = priced_copy(loaded.products, h / "input")
        orders_path = h / "input" / "orders.parquet"
        pq.write_table(orders.select(["order_id", "product_id", "quantity"]), orders_path)
        summary = build(
            BuildOptions(catalog=catalog, orders=orders_path, home=h, embeddings=embeddings, threads=threads)
        )
        print(f"built instacart in {time.perf_counter() - t:.1f} s ({summary.counts})", flush=True)
        return summary.store

    key = {
        "kind": "instacart",
        "embeddings": embeddings,
        "max_orders": max_orders,
        "prices": "log-uniform 1-30 v1",
    }
    return _cached_store(home, key, make)


def most_ordered(store: GraphStore, n: int) -> list[str]:
    """The ``n`` products in the most orders (CO_PURCHASED n_a / n_b are per-product order counts,
    so the graph itself says; ties by id)."""
    rows = store.query(
        "MATCH (a:Product)-[r:CO_PURCHASED]->(b:Product) "
        "RETURN a.product_id AS a, b.product_id AS b, r.n_a AS n_a, r.n_b AS n_b"
    )
    orders: dict[str, int] = {}
    for r in rows:
        orders[r["a"]] = max(orders.get(r["a"], 0), r["n_a"])
        orders[r["b"]] = max(orders.get(r["b"], 0), r["n_b"])
    return sorted(orders, key=lambda p: (-orders[p], p))[:n]


def audit_bundles(
    store: GraphStore, anchors: Sequence[str], catalog: pa.Table, rules: BundleRules | None = None
) -> dict[str, Any]:
    """Take ``bundle()`` for each anchor and check it against ``catalog`` (PRODUCTS; prices and
    leaf categories read from there, not from the answers): bundles, items, pairs of members
    (anchor included) in the same leaf category, items outside the rules' price band (an add-on
    without a catalog price counts as outside), and the reasons of the anchors without one."""
    rules = rules or BundleRules()
    price = dict(
        zip(catalog.column("product_id").to_pylist(), catalog.column("price").to_pylist(), strict=True)
    )
    aisle = dict(
        zip(catalog.column("product_id").to_pylist(), catalog.column("category").to_pylist(), strict=True)
    )
    out: dict[str, Any] = {
        "anchors": len(anchors),
        "bundles": 0,
        "items": 0,
        "same_aisle_pairs": 0,
        "out_of_band_items": 0,
        "following_a_scene": 0,
        "skipped_roles": 0,
        "no_bundle": Counter(),
    }
    ms = []
    for a in anchors:
        t = time.perf_counter()
        b = bundle(store, a, rules=rules)
        ms.append((time.perf_counter() - t) * 1000)
        out["following_a_scene"] += b.scene is not None
        out["skipped_roles"] += len(b.skipped_roles)
        if not b.items:
            out["no_bundle"][b.reason.code if b.reason else "none"] += 1
            continue
        out["bundles"] += 1
        out["items"] += len(b.items)
        members = b.product_ids
        cats = [aisle.get(p) for p in members]
        out["same_aisle_pairs"] += sum(
            1
            for i in range(len(cats))
            for j in range(i + 1, len(cats))
            if cats[i] is not None and cats[i] == cats[j]
        )
        anchor_price = price[a]
        for p in members[1:]:
            q = price.get(p)
            if (
                q is None
                or not rules.min_price_ratio * anchor_price - 1e-9
                <= q
                <= rules.max_price_ratio * anchor_price + 1e-9
            ):
                out["out_of_band_items"] += 1
    out["no_bundle"] = dict(out["no_bundle"].most_common())
    out["bundle_ms"] = percentiles(ms) if ms else {}
    return out


def instacart_bench(
    home: Path,
    *,
    top: int = 500,
    data_dir: Path | None = None,
    embeddings: bool = True,
    max_orders: int | None = None,
) -> dict[str, Any]:
    store = build_instacart(home, data_dir=data_dir, embeddings=embeddings, max_orders=max_orders)
    try:
        catalog = pq.read_table(home / "input" / "catalog_priced.parquet")
        anchors = most_ordered(store, top)
        report = audit_bundles(store, anchors, catalog)
    finally:
        store.close()
    report["prices"] = "synthetic: log-uniform 1-30 per product id (bench/bundles.py synthetic_prices)"
    return report


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", action="store_true", help="latency on the synthetic 50k / 2M graph")
    ap.add_argument("--instacart", action="store_true", help="bundle audit on Instacart")
    ap.add_argument("--home", type=Path, help="keep the builds here (reused when they match)")
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--edges", type=int, default=2_000_000)
    ap.add_argument("--anchors", type=int, default=2_000, help="timed bundle() calls (synthetic)")
    ap.add_argument("--top", type=int, default=500, help="most-ordered products to bundle (instacart)")
    ap.add_argument("--no-embeddings", action="store_true", help="instacart: build without title embeddings")
    ap.add_argument("--max-orders", type=int, help="instacart: only the first N orders")
    ap.add_argument("--data-dir", type=Path, help="the shared data folder [env TIEIN_DATA]")
    args = ap.parse_args(argv)
    if not (args.synthetic or args.instacart):
        ap.error("choose --synthetic and/or --instacart")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tiein-bundles-") as tmp:
        root = args.home or Path(tmp)
        if args.synthetic:
            r = synthetic_bench(root / "synthetic", args.products, args.edges, args.anchors)
            result["synthetic"] = r
            print(
                f"synthetic graph: {r['graph']['products']:,} products, {r['graph']['relationships']:,} relationships"
            )
            for name in ("bundle_ms", "related_ms"):
                x = r[name]
                print(
                    f"  {name[:-3]:<8} n={x['n']}  p50 {x['p50']:.2f} ms  p95 {x['p95']:.2f} ms  p99 {x['p99']:.2f} ms"
                )
            print(f"  bundle p99 / related p99 = {r['p99_ratio_bundle_to_related']}; sample: {r['sample']}")
            sn = r["snapshot"]
            x = sn["bundle_ms"]
            print(
                f"  bundle on SnapshotStore (loaded in {sn['load_s']:.1f} s; same answers: {sn['same_answers']}): "
                f"p50 {x['p50']:.2f} ms  p95 {x['p95']:.2f} ms  p99 {x['p99']:.2f} ms"
            )
        if args.instacart:
            r = instacart_bench(
                root / "instacart",
                top=args.top,
                data_dir=args.data_dir,
                embeddings=not args.no_embeddings,
                max_orders=args.max_orders,
            )
            result["instacart"] = r
            print(
                f"instacart: {r['anchors']} most-ordered products -> {r['bundles']} bundles, {r['items']} items"
            )
            print(f"  pairs of bundle members in the same aisle: {r['same_aisle_pairs']} (must be 0)")
            print(
                f"  items outside the 30-80 % price band: {r['out_of_band_items']} (must be 0; {r['prices']})"
            )
            print(f"  following a scene: {r['following_a_scene']}; roles skipped: {r['skipped_roles']}")
            print(f"  no bundle, why: {r['no_bundle']}")
            print(f"  bundle() p50 {r['bundle_ms'].get('p50')} ms, p99 {r['bundle_ms'].get('p99')} ms")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()

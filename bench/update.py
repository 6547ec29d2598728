"""Incremental update vs full rebuild on Online Retail I (tiein update, issue 5).

    python bench/update.py                         # all of Online Retail, embeddings on
    python bench/update.py --no-embeddings         # without the title model
    python bench/update.py --sample 3000           # the first 3,000 orders only (a quick run)

Steps, on the normalised Online Retail lines (loaders.load_dataset) written to Parquet in a
temporary directory: (1) build on the orders before the 99th percentile of time; (2) ``update``
with the last 1 % of orders (timed); (3) a full build on all orders in a second home that shares
the embedding cache (timed: what an update replaces); (4) check that both graphs are equal (every
table the store was loaded with); (5) a stock-only update (a catalog file with stock changes of
100 products) timed. Prints one line per step and a JSON summary; ``main`` returns it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def graph_tables(home: Path) -> dict[str, pa.Table]:
    """The tables a home's store was loaded with (HOME/inputs/graph), in a canonical order."""
    from tiein.home import inputs_dir
    from tiein.update import GRAPH_PARTS

    keys = {
        "products": ["product_id"],
        "co_purchased": ["a", "b"],
        "co_viewed": ["a", "b"],
        "relations": ["src", "kind", "dst"],
        "scenes": ["scene_id"],
        "scene_members": ["scene_id", "product_id"],
    }
    return {
        p: pq.read_table(inputs_dir(home) / "graph" / f"{p}.parquet").sort_by(
            [(k, "ascending") for k in keys[p]]
        )
        for p in GRAPH_PARTS
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--fraction", type=float, default=0.01, help="share of orders (the latest) given to the update"
    )
    ap.add_argument("--sample", type=int, default=0, help="use only the first N orders (0 = all)")
    ap.add_argument("--no-embeddings", action="store_true", help="build without title embeddings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    args = ap.parse_args(argv)

    from tiein import loaders
    from tiein.pipeline import BuildOptions, build
    from tiein.update import UpdateOptions, update

    work = args.keep or Path(tempfile.mkdtemp(prefix="tiein-bench-update-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        loaded = loaders.load_dataset("online_retail")
        orders, products = loaded.orders, loaded.products
        if args.sample:
            first = pc.unique(orders.column("order_id")).slice(0, args.sample)
            orders = orders.filter(pc.is_in(orders.column("order_id"), value_set=first))
            products = products.filter(
                pc.is_in(products.column("product_id"), value_set=pc.unique(orders["product_id"]))
            )
        ts = orders.column("ts").cast(pa.int64())
        cut = pc.quantile(ts, q=1.0 - args.fraction, interpolation="higher")[0].as_py()
        early = pc.less(ts, cut)
        pq.write_table(products, work / "catalog.parquet")
        pq.write_table(orders.filter(early), work / "orders_before.parquet")
        pq.write_table(orders.filter(pc.invert(early)), work / "orders_new.parquet")
        pq.write_table(orders, work / "orders_all.parquet")
        n_new = orders.num_rows - (pc.sum(early).as_py() or 0)
        kw: dict[str, Any] = {"threads": args.threads, "embeddings": not args.no_embeddings}
        inc, full = work / "inc", work / "full"
        for h in (inc, full):
            shutil.rmtree(h, ignore_errors=True)
        print(
            f"online_retail: {products.num_rows:,} products, {orders.num_rows:,} lines; update adds {n_new:,} lines "
            f"({args.fraction:.0%} of orders by time)"
        )

        t = time.perf_counter()
        build(
            BuildOptions(
                catalog=work / "catalog.parquet", orders=work / "orders_before.parquet", home=inc, **kw
            )
        )
        t_first = time.perf_counter() - t
        print(f"build on the earlier orders: {t_first:.1f} s")
        if (inc / "cache").is_dir():  # the full build gets the same warm embedding cache
            shutil.copytree(inc / "cache", full / "cache")

        t = time.perf_counter()
        s = update(UpdateOptions(orders=work / "orders_new.parquet", home=inc, threads=args.threads))
        t_update = time.perf_counter() - t
        print(
            f"update (+{s.counts['order_lines_added']:,} lines): {t_update:.1f} s  "
            + " · ".join(f"{k} {v:.1f}" for k, v in s.seconds.items() if k != "total")
        )

        t = time.perf_counter()
        fb = build(
            BuildOptions(
                catalog=work / "catalog.parquet", orders=work / "orders_all.parquet", home=full, **kw
            )
        )
        t_full = time.perf_counter() - t
        print(
            f"full build on all orders: {t_full:.1f} s  "
            + " · ".join(f"{k} {v:.1f}" for k, v in fb.seconds.items() if k != "total")
        )

        a, b = graph_tables(inc), graph_tables(full)
        unequal = [p for p in a if not a[p].equals(b[p])]
        print(
            f"graph after update == full build: {'yes' if not unequal else 'NO: ' + ', '.join(unequal)}"
            f" ({a['relations'].num_rows:,} relations, {a['co_purchased'].num_rows:,} pair edges)"
        )
        print(f"update / full build: {t_update / t_full:.2f}")

        ids = products.column("product_id").slice(0, 100)
        stock = pa.table({"product_id": ids, "stock": pa.array([0, 5] * 50, pa.int64())[: len(ids)]})
        pacsv.write_csv(stock, work / "stock.csv")
        t = time.perf_counter()
        st = update(UpdateOptions(catalog=work / "stock.csv", home=inc, threads=args.threads))
        t_stock = time.perf_counter() - t
        print(
            f"stock-only update ({st.counts.get('products_changed', 0)} products, path {st.path}): {t_stock:.2f} s  "
            + " · ".join(f"{k} {v:.2f}" for k, v in st.seconds.items() if k != "total")
        )
        result = {
            "products": products.num_rows,
            "lines": orders.num_rows,
            "new_lines": n_new,
            "first_build_s": round(t_first, 2),
            "update_s": round(t_update, 2),
            "full_build_s": round(t_full, 2),
            "ratio": round(t_update / t_full, 3),
            "equal": not unequal,
            "unequal_tables": unequal,
            "update_seconds": {k: round(v, 2) for k, v in s.seconds.items()},
            "delta": s.delta,
            "stock_update_s": round(t_stock, 3),
            "stock_path": st.path,
            "stock_delta": st.delta,
        }
        print(json.dumps(result))
        return result
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

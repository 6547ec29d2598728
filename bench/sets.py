"""Content sets alone on a catalog without orders: "sets-only vs nothing" (issue 14, item 2).

The shared data has no real outfit / video / livestream sets, so the proxy is: split a shop's
baskets in two halves by sha1(seed:order_id); the first half plays the shop's content sets
(every basket one set of kind "manual", weight 1: a list of products someone put together), the
second half is held out and only ever used to measure. The catalog is the shop's full catalog and
no order is given to the build. Nothing learnt from the held-out half enters a build.

Built with the real pipeline (no embeddings: titles would give substitutes, never complements):

  nothing       catalog only (what a new shop gets today): its complements
  popularity    the 10 products shown in most sets (the best a shop could do by hand)
  sets-only     catalog + the first half as ``--sets``: tiein's complements (unfilled lists)
  + pop         the same lists filled up to 10 from the set popularity (as bench/quality.py fills)
  as orders     the first half given as *orders* instead (the ordinary build, ranker included):
                the reference for the same evidence read as purchases

Task (as bench/quality.py's anchor task): every product of every held-out basket with ≥ 2
catalog products is an anchor; HR@10 = share of anchors whose top 10 holds another product of
the basket; P@10 = those products / 10; "own" = share of anchors with at least one complement.

    python bench/sets.py                       # groceries, bread_basket, instacart
    python bench/sets.py --datasets instacart  # one

Writes bench/out/sets.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality_metrics as qm  # noqa: E402

SEED = 14
K = 10
OUT = ROOT / "bench" / "out"
DATASETS = ("groceries", "bread_basket", "instacart")


def halves(orders: pa.Table) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(sets, held-out) baskets: a whole order goes to one side, by sha1(seed:order_id)."""
    sets: dict[str, set[str]] = {}
    held: dict[str, set[str]] = {}
    for o, p in zip(
        orders.column("order_id").to_pylist(), orders.column("product_id").to_pylist(), strict=True
    ):
        (sets if qm.hash_unit(o, SEED) < 0.5 else held).setdefault(o, set()).add(p)
    return {o: sorted(b) for o, b in sets.items()}, {o: sorted(b) for o, b in held.items()}


def run_build(
    products: pa.Table, home: Path, *, sets: dict[str, list[str]] | None, orders: pa.Table | None
) -> Any:
    """The real build of the catalog with ``sets`` as a sets file or ``orders`` as orders."""
    from tiein.loaders.mapping import Mapping
    from tiein.options import BuildOptions
    from tiein.pipeline import build

    spec: dict[str, Any] = {
        "catalog": {
            "product_id": "product_id",
            "title": "title",
            "category": "category_path",
            "price": "price",
        },
        "orders": {
            "order_id": "order_id",
            "product_id": "product_id",
            "quantity": "quantity",
            "timestamp": "ts",
        },
        "options": {"category_sep": " > "},
    }
    mapping = Mapping.from_dict(spec)
    with tempfile.TemporaryDirectory(prefix="bench-sets-") as tmp:
        cat = Path(tmp) / "catalog.parquet"
        pq.write_table(products.select(["product_id", "title", "category_path", "price"]), cat)
        sets_file = orders_file = None
        if sets is not None:
            sets_file = Path(tmp) / "sets.parquet"
            ids = [(s, p) for s, b in sets.items() for p in b]
            pq.write_table(
                pa.table({"set_id": [i[0] for i in ids], "product_id": [i[1] for i in ids]}), sets_file
            )
        if orders is not None:
            orders_file = Path(tmp) / "orders.parquet"
            pq.write_table(
                orders.select(["order_id", "product_id", "quantity", "customer_id", "ts"]), orders_file
            )
        return build(
            BuildOptions(
                catalog=cat,
                orders=orders_file,
                sets=sets_file,
                mapping=mapping,
                home=home,
                embeddings=False,
                threads=2,
                discover_scenes=False,
            )
        )


def complements(home: Path) -> dict[str, list[str]]:
    """Each product's complements, best first (the order the store serves: score desc, dst)."""
    from tiein.home import inputs_dir

    t = pq.read_table(
        inputs_dir(home) / "graph" / "relations.parquet", columns=["src", "dst", "kind", "score"]
    )
    rows = [r for r in t.to_pylist() if r["kind"] == "complement"]
    rows.sort(key=lambda r: (r["src"], -r["score"], r["dst"]))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["src"], []).append(r["dst"])
    return out


def anchor_scores(
    lists: dict[str, list[str]], held: dict[str, list[str]], fill: list[str] | None
) -> dict[str, float]:
    """HR@10, P@10 and "own" over every (held-out basket, anchor) pair."""
    hits = own = n = 0
    prec = 0.0
    for basket in held.values():
        items = set(basket)
        for a in basket:
            top = [p for p in lists.get(a, []) if p != a][:K]
            own += bool(top)
            if fill is not None:
                top += [p for p in fill if p != a and p not in top][: K - len(top)]
            got = len(items.intersection(top) - {a})
            hits += got > 0
            prec += got / K
            n += 1
    return {"hr@10": round(hits / n, 4), "p@10": round(prec / n, 4), "own": round(own / n, 4), "anchors": n}


def run(name: str, data_dir: Path | None) -> dict[str, Any]:
    from tiein.loaders import load_dataset

    loaded = load_dataset(name, data_dir=data_dir)
    products = loaded.products
    ids = set(products.column("product_id").to_pylist())
    sets, held = halves(loaded.orders)
    held = {o: [p for p in b if p in ids] for o, b in held.items()}
    held = {o: b for o, b in held.items() if len(b) >= 2}
    shown = Counter(p for b in sets.values() for p in b)
    popular = [p for p, _ in sorted(shown.items(), key=lambda t: (-t[1], t[0]))][: K + 1]
    in_sets = set(sets)
    set_orders = loaded.orders.filter(
        pa.array([o in in_sets for o in loaded.orders.column("order_id").to_pylist()])
    )
    out: dict[str, Any] = {"sets": len(sets), "held_out_baskets": len(held), "products": products.num_rows}
    work = OUT / "sets" / name
    for method, kw in (
        ("nothing", {"sets": None, "orders": None}),
        ("sets-only", {"sets": sets, "orders": None}),
        ("as orders", {"sets": None, "orders": set_orders}),
    ):
        t0 = time.perf_counter()
        summary = run_build(products, work / method.replace(" ", "_"), **kw)
        lists = complements(work / method.replace(" ", "_"))
        out[method] = {**anchor_scores(lists, held, None), "build_s": round(time.perf_counter() - t0, 1)}
        out[method]["complements"] = summary.relations.get("complement", 0)
        if method != "nothing":  # lists filled up to 10 from the set popularity, as bench/quality.py fills
            out[f"{method} + pop"] = anchor_scores(lists, held, popular)
    out["popularity"] = anchor_scores({}, held, popular)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    results = {}
    for name in args.datasets:
        res = run(name, args.data_dir)
        results[name] = res
        print(
            f"\n{name}: {res['sets']:,} sets, {res['held_out_baskets']:,} held-out baskets, {res['products']:,} products"
        )
        print(f"  {'method':<16} {'HR@10':>7} {'P@10':>7} {'own':>6} {'complements':>12}")
        for m in ("nothing", "popularity", "sets-only", "sets-only + pop", "as orders", "as orders + pop"):
            r = res[m]
            print(
                f"  {m:<16} {r['hr@10']:>7.4f} {r['p@10']:>7.4f} {r['own']:>6.2f} {r.get('complements', ''):>12}"
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sets.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), "utf-8")


if __name__ == "__main__":
    main()

"""Relation quality on held-out baskets: tiein against simple baselines trained on the same lines.

Protocols (orders split, the real build run on the training orders only):

  online_retail  invoices before 2011-09-01 train, later invoices test
  instacart      prior orders split 80/20 by sha1(seed:order_id)
  groceries      baskets split 80/20 by sha1(seed:order_id)
  groceries_zh   the same, Chinese item names and categories
  bread_basket   transactions before 2017-03-01 train, later ones test

--seasonal runs only the seasonal protocol instead (bench/seasonal.py: Online Retail, train
before 2011-11-01, Nov-Dec 2011 baskets ranked at their own dates vs year-round).

Test baskets keep only products seen in training and need ≥ 2 distinct of them.

Tasks:
  cart completion  hide one item of each test basket (chosen by hash), rank from the rest:
                   HR@10, MRR@10. Scores are summed over the cart items.
  anchor           every item of every test basket as anchor, its top 10: hit rate (another
                   item of the basket in it) and precision@10.

Methods: popularity, co-occurrence count, SAR jaccard, SAR lift, item cosine, item BM25
(numpy/scipy), tiein complements (anchors: by relation score, a learnt P(dst | src); carts: the
edges' cart weights summed, as tiein addons does, tiein.ranker.cart_weight; "rr": reciprocal rank
summed instead) and tiein addons (tiein.bundles.addons with default rules, k=10, on a
snapshot of the built store). Candidates are products seen in training; ties by product id;
every list short of 10 is filled from popularity ("own" = share of slots a method filled itself).

Prints one table per dataset with the ratio tiein / best baseline and writes bench/out/quality.json.
Builds go to bench/out/quality/<dataset>/ (kept: the embedding cache makes reruns faster).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality_metrics as qm  # noqa: E402

SEED = 12
OUT = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Protocol:
    """How one dataset is split: by time (``before``) or by hash of the order id (``train_share``)."""

    before: dt.datetime | None = None
    train_share: float | None = None

    def describe(self) -> str:
        if self.before is not None:
            return f"time split: train before {self.before:%Y-%m-%d}, test from then on"
        return (
            f"hash split: {self.train_share:.0%} of orders train by sha1(seed {SEED}:order_id), the rest test"
        )


PROTOCOLS: dict[str, Protocol] = {
    "online_retail": Protocol(before=dt.datetime(2011, 9, 1)),
    "instacart": Protocol(train_share=0.8),
    "groceries": Protocol(train_share=0.8),
    "groceries_zh": Protocol(train_share=0.8),
    "bread_basket": Protocol(before=dt.datetime(2017, 3, 1)),
}
TIEIN = "tiein complements"
CART = "complement cart weight"  # tiein_relations' key for the complements' cart weights
OTHER_KINDS = ("substitute", "series", "upsell", "next")


def log(msg: str) -> None:
    print(msg, flush=True)


def split_orders(orders: pa.Table, proto: Protocol) -> tuple[pa.Table, pa.Table]:
    """(train, test) order lines; a whole order goes to one side."""
    if proto.before is not None:
        is_train = pc.less(orders.column("ts"), pa.scalar(proto.before, pa.timestamp("us")))
        is_train = pc.fill_null(is_train, False)
    else:
        share = proto.train_share or 0.8
        ids = orders.column("order_id").to_pylist()
        side = {o: qm.hash_unit(o, SEED) < share for o in set(ids)}
        is_train = pa.array([side[o] for o in ids], pa.bool_())
    return orders.filter(is_train), orders.filter(pc.invert(is_train))


def baskets_of(orders: pa.Table) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for o, p in zip(
        orders.column("order_id").to_pylist(), orders.column("product_id").to_pylist(), strict=True
    ):
        out.setdefault(o, []).append(p)
    return {o: sorted(set(b)) for o, b in out.items()}


def build_tiein(
    name: str, products: pa.Table, train: pa.Table, home: Path, threads: int | None
) -> dict[str, Any]:
    """Write the catalog and the training orders as Parquet (normalised names) and run the real
    build into ``home``. Returns the build summary as a dict."""
    from tiein.loaders.mapping import Mapping
    from tiein.pipeline import BuildOptions, build

    mapping = Mapping.from_dict(
        {
            "catalog": {
                "product_id": "product_id",
                "title": "title",
                "category": "category_path",
                "brand": "brand",
                "price": "price",
                "stock": "stock",
            },
            "orders": {
                "order_id": "order_id",
                "product_id": "product_id",
                "quantity": "quantity",
                "customer": "customer_id",
                "timestamp": "ts",
            },
            "options": {"category_sep": " > "},
        }
    )
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"quality-{name}-") as tmp:
        cat, orders = Path(tmp) / "catalog.parquet", Path(tmp) / "orders.parquet"
        pq.write_table(
            products.select(["product_id", "title", "category_path", "brand", "price", "stock"]), cat
        )
        pq.write_table(train.select(["order_id", "product_id", "quantity", "customer_id", "ts"]), orders)
        summary = build(BuildOptions(catalog=cat, orders=orders, mapping=mapping, home=home, threads=threads))
    return summary.to_dict()


def tiein_relations(home: Path) -> dict[str, list[tuple[str, str, float]]]:
    """The relations of the home's answering generation by kind: [(src, dst, score)]."""
    from tiein.home import inputs_dir

    t = pq.read_table(
        inputs_dir(home) / "graph" / "relations.parquet", columns=["src", "dst", "kind", "score", "evidence"]
    )
    out: dict[str, list[tuple[str, str, float]]] = {}
    cols = [t.column(c).to_pylist() for c in ("src", "dst", "kind", "score", "evidence")]
    for src, dst, kind, score, evidence in zip(*cols, strict=True):
        out.setdefault(kind, []).append((src, dst, score))
        if kind == "complement":  # what the edge adds to a cart (tiein.ranker.cart_weight)
            w = json.loads(evidence).get("cart_weight") if evidence else None
            out.setdefault(CART, []).append((src, dst, score if w is None else w))
    return out


def miss_reasons(
    hits_best: list[bool], hits_tiein: list[bool], cases: list[qm.CartCase], C: Any, kinds: dict[str, Any]
) -> dict[str, int]:
    """Why tiein missed the carts the best baseline got: per case, the first that applies of
    "complement ranked below 10" (a cart item has the hidden item as complement), "typed <kind>"
    (a relation of another kind between a cart item and the hidden item, either way; the first of
    OTHER_KINDS that applies), "co-bought
    once only" (the hidden item shares one training basket at most with any cart item, below the
    build's min_count 2), "no relation" (co-bought more, yet no edge)."""
    out: dict[str, int] = {}
    for hb, ht, c in zip(hits_best, hits_tiein, cases, strict=True):
        if not hb or ht:
            continue
        h, rest = c.hidden, c.rest
        if kinds["complement"][rest, h].max() > 0:
            why = "complement ranked below 10"
        else:
            typed = [
                k
                for k in OTHER_KINDS
                if k in kinds and max(kinds[k][rest, h].max(), kinds[k][h, rest].max()) > 0
            ]
            if typed:
                why = "typed " + typed[0]
            elif C[rest, h].max() <= 1:
                why = "co-bought once only"
            else:
                why = "no relation"
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def addons_misses(
    hits_addons: list[bool],
    hits_tiein: list[bool],
    cases: list[qm.CartCase],
    category: dict[int, str | None],
    substitutes: Any,
) -> dict[str, int]:
    """Carts tiein complements completed and tiein addons missed, by the first rule that explains
    it: "category of a cart item" (max_per_category = 1 counts the cart's own items),
    "substitute of a cart item" (either way), "other" (list order, candidate_k, one per category
    among the suggestions)."""
    out: dict[str, int] = {}
    for ha, ht, c in zip(hits_addons, hits_tiein, cases, strict=True):
        if ha or not ht:
            continue
        cat = category.get(c.hidden)
        if cat is not None and any(category.get(j) == cat for j in c.rest):
            why = "category of a cart item"
        elif max(substitutes[c.rest, c.hidden].max(), substitutes[c.hidden, c.rest].max()) > 0:
            why = "substitute of a cart item"
        else:
            why = "other"
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class _MemoStore:
    """Caches ``bundle_candidates`` (a pure read) across addons calls; everything else is delegated."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._cache: dict[tuple[str, int], dict[str, Any]] = {}

    def bundle_candidates(self, pid: str, k: int = 50) -> dict[str, Any]:
        key = (pid, k)
        if key not in self._cache:
            self._cache[key] = self._store.bundle_candidates(pid, k)
        return self._cache[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def addons_lists(
    store: Any, cases: list[qm.CartCase], index: qm.ItemIndex, pop: np.ndarray
) -> list[tuple[list[int], int]]:
    """tiein's cart add-ons (default rules, k=10) for each case, as positions, popularity-filled."""
    from tiein import bundles

    memo = _MemoStore(store)
    out = []
    for c in cases:
        a = bundles.addons(memo, [index.ids[j] for j in c.rest], k=qm.K)  # type: ignore[arg-type]
        scores = np.zeros(len(index))
        for r, item in enumerate(a.items):  # keep addons' order: descending pseudo-scores
            j = index.pos.get(item.product["product_id"])
            if j is not None:
                scores[j] = qm.K + 1 - r
        out.append(qm.rank(scores, c.rest, pop))
    return out


def check_against_store(store: Any, S: Any, index: qm.ItemIndex, pop: np.ndarray, n: int = 25) -> int:
    """Anchors whose top-10 from the relations file differs from the store's related() (should be 0)."""
    bad = 0
    anchors = [i for i in np.flatnonzero(np.diff(S.indptr) > 0)[:n]]
    for a in anchors:
        served = [r["product_id"] for r in store.related(index.ids[a], "complement", qm.K)]
        mine, own = qm.rank(qm.row_scores(S, int(a)), [int(a)], pop)
        bad += [index.ids[j] for j in mine[:own]] != served[:own]
    return bad


def run_dataset(
    name: str, *, quick: bool, max_cases: int, addon_cases: int, threads: int | None, home_root: Path
) -> dict[str, Any]:
    from tiein import loaders
    from tiein.graph import open_store
    from tiein.graph.snapshot import SnapshotStore

    t0 = time.perf_counter()
    proto = PROTOCOLS[name]
    loaded = loaders.load_dataset(name)
    train, test = split_orders(loaded.orders, proto)
    train_b, test_b = baskets_of(train), baskets_of(test)
    index = qm.ItemIndex(p for b in train_b.values() for p in b)
    X = qm.basket_matrix(list(train_b.values()), index)
    pop = qm.popularity_order(X)
    test_pos = {o: [index.pos[p] for p in b if p in index.pos] for o, b in test_b.items()}
    test_pos = {o: b for o, b in test_pos.items() if len(b) >= 2}
    cases = qm.cart_cases(test_pos, SEED, max_cases)
    log(
        f"[{name}] {proto.describe()}; train {len(train_b):,} baskets / {train.num_rows:,} lines, "
        f"{len(index):,} products; test {len(test_b):,} baskets, {len(test_pos):,} with ≥ 2 known products; "
        f"{len(cases):,} cart cases"
    )

    t1 = time.perf_counter()
    home = home_root / name
    summary = build_tiein(name, loaded.products, train, home, threads)
    build_s = time.perf_counter() - t1
    log(f"[{name}] tiein build {build_s:.1f} s: {summary['relations']}")

    matrices: dict[str, Any] = {m: (f(X) if f else None) for m, f in qm.BASELINES.items()}
    rels = tiein_relations(home)
    cart_weights = qm.relation_matrix(rels.pop(CART, []), index)
    kinds = {k: qm.relation_matrix(v, index) for k, v in rels.items()}
    kinds.setdefault("complement", qm.relation_matrix([], index))
    matrices[TIEIN] = kinds["complement"]
    matrices["tiein complements, rr"] = qm.relation_matrix(
        rels.get("complement", []), index, reciprocal_rank=True
    )
    all_lists: dict[str, list[tuple[list[int], int]]] = {}
    anchor_items = sorted({a for b in test_pos.values() for a in b})
    rows: dict[str, dict[str, Any]] = {}
    sub = cases[:addon_cases]  # a seeded sample: cases come in hash order
    for m, S in matrices.items():
        tm = time.perf_counter()
        # tiein's carts sum each edge's cart weight (what tiein addons sums), anchors rank by score
        lists = all_lists[m] = qm.cart_lists(cart_weights if m == TIEIN else S, cases, pop)
        cart = qm.cart_metrics(lists, cases)
        anchor = qm.anchor_metrics(qm.anchor_lists(S, anchor_items, pop), test_pos.values())
        # the same method on the addons' carts, for the addons ratio
        rows[m] = {
            "cart": cart,
            "anchor": anchor,
            "cart_addons_sample": qm.cart_metrics(lists[: len(sub)], sub),
        }
        log(
            f"[{name}] {m}: cart HR@10 {cart['hr']:.3f}, anchor HR@10 {anchor['hr']:.3f} ({time.perf_counter() - tm:.1f} s)"
        )

    best = max(qm.BASELINES, key=lambda m: (rows[m]["cart"]["hr"], m))

    def hits(m: str) -> list[bool]:
        return [c.hidden in lst for (lst, _), c in zip(all_lists[m], cases, strict=True)]

    misses = miss_reasons(hits(best), hits(TIEIN), cases, matrices["co-occurrence"], kinds)
    log(f"[{name}] carts {best} got and tiein complements missed: {misses}")

    store = SnapshotStore(open_store(home / "graph"), follow=False)
    try:
        mismatches = check_against_store(store, matrices[TIEIN], index, pop)
        ta = time.perf_counter()
        lists = addons_lists(store, sub, index, pop)
        addons_cart = qm.cart_metrics(lists, sub)
        cats = dict(
            zip(
                loaded.products.column("product_id").to_pylist(),
                loaded.products.column("category").to_pylist(),
                strict=True,
            )
        )
        addon_misses = addons_misses(
            [c.hidden in lst for (lst, _), c in zip(lists, sub, strict=True)],
            [c.hidden in lst for (lst, _), c in zip(all_lists[TIEIN][: len(sub)], sub, strict=True)],
            sub,
            {i: cats.get(p) for i, p in enumerate(index.ids)},
            kinds.get("substitute", qm.relation_matrix([], index)),
        )
        rows["tiein addons"] = {"cart": addons_cart, "anchor": None, "cart_addons_sample": addons_cart}
        log(
            f"[{name}] tiein addons: cart HR@10 {addons_cart['hr']:.3f} over {len(sub):,} carts "
            f"({time.perf_counter() - ta:.1f} s); completed by complements, missed by addons: {addon_misses}"
        )
    finally:
        store.close()

    return {
        "protocol": proto.describe(),
        "train_baskets": len(train_b),
        "train_lines": train.num_rows,
        "train_products": len(index),
        "test_baskets": len(test_b),
        "test_baskets_2_known": len(test_pos),
        "cart_cases": len(cases),
        "addons_cases": rows["tiein addons"]["cart"]["n"],
        "store_mismatches_top10": mismatches,
        "tiein_misses_vs_best_cart_baseline": {"best": best, "reasons": misses},
        "addons_misses_vs_tiein_complements": addon_misses,
        "tiein_relations": summary["relations"],
        "tiein_ranker": {
            k: summary.get("ranker", {}).get(k)
            for k in (
                "fitted",
                "reason",
                "cart_exponent",
                "cart_gamma",
                "cart_similarity",
                "validation_auc",
                "validation_auc_hand_set",
            )
        },
        "build_seconds": round(build_s, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "quick": quick,
        "methods": rows,
        "ratios": ratios(rows),
    }


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """tiein complements / best baseline per metric (and which baseline was best); tiein addons /
    best baseline on the addons' own sample of carts."""
    out: dict[str, Any] = {}

    def best_of(task: str, key: str) -> tuple[str, float]:
        best = max(qm.BASELINES, key=lambda m: (rows[m][task][key], m))
        return best, rows[best][task][key]

    for task, key in (("cart", "hr"), ("cart", "mrr"), ("anchor", "hr"), ("anchor", "p")):
        best, b = best_of(task, key)
        entry: dict[str, Any] = {
            "best": best,
            "best_value": b,
            TIEIN: rows[TIEIN][task][key] / b if b else None,
        }
        if task == "cart":
            best_s, b_s = best_of("cart_addons_sample", key)
            a = rows["tiein addons"]["cart"][key]
            entry["addons"] = {"best": best_s, "best_value": b_s, "ratio": a / b_s if b_s else None}
        out[f"{task} {key}"] = entry
    return out


def rows_n(r: dict[str, Any]) -> str:
    return f"{r['addons_cases']:,}"


def table(name: str, r: dict[str, Any]) -> str:
    head = (
        f"{name} — {r['protocol']}; train {r['train_baskets']:,} baskets, {r['train_products']:,} products; "
        f"tiein relations {r['tiein_relations']}"
    )
    lines = [
        head,
        "| method | cart HR@10 | cart MRR@10 | anchor HR@10 | anchor P@10 | own (cart / anchor) | n (cart / anchor) |",
        "|---|---|---|---|---|---|---|",
    ]

    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    for m, row in r["methods"].items():
        c, a = row["cart"], row["anchor"] or {}
        lines.append(
            f"| {m} | {f(c['hr'])} | {f(c['mrr'])} | {f(a.get('hr'))} | {f(a.get('p'))} | "
            f"{c['own']:.0%} / {'—' if not a else format(a['own'], '.0%')} | {c['n']:,} / {'—' if not a else format(a['n'], ',')} |"
        )
    parts = []
    for metric, e in r["ratios"].items():
        s = f"{metric} {e[TIEIN]:.2f} (best {e['best']} {e['best_value']:.3f})"
        if "addons" in e:
            a = e["addons"]
            s += f", addons {a['ratio']:.2f} (best on its {rows_n(r)} carts: {a['best']} {a['best_value']:.3f})"
        parts.append(s)
    lines.append("ratio tiein / best baseline: " + "; ".join(parts))
    mr = r["tiein_misses_vs_best_cart_baseline"]
    lines.append(
        f"carts {mr['best']} completed and tiein complements missed: "
        + ", ".join(f"{k} {v:,}" for k, v in mr["reasons"].items())
    )
    if r["addons_misses_vs_tiein_complements"]:
        lines.append(
            "carts tiein complements completed and tiein addons missed: "
            + ", ".join(f"{k} {v:,}" for k, v in r["addons_misses_vs_tiein_complements"].items())
        )
    rk = r.get("tiein_ranker") or {}
    lines.append(
        f"complement ranker: fitted {rk.get('fitted')}, cart weighting exponent {rk.get('cart_exponent')} "
        f"power {rk.get('cart_gamma')} similarity {rk.get('cart_similarity')}, validation AUC "
        f"{rk.get('validation_auc')} (hand-set score {rk.get('validation_auc_hand_set')}){' — ' + rk['reason'] if rk.get('reason') else ''}"
    )
    lines.append(
        f"(tiein complements' top 10 vs the store's related(): {r['store_mismatches_top10']} of 25 anchors differ)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="bench/quality.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--datasets",
        default=",".join(PROTOCOLS),
        help=f"comma-separated, from: {', '.join(PROTOCOLS)} (default: all)",
    )
    ap.add_argument("--quick", action="store_true", help="smaller samples: 500 cart cases, 150 addons carts")
    ap.add_argument(
        "--max-cases", type=int, default=None, help="cart cases per dataset (default 5000; quick 500)"
    )
    ap.add_argument(
        "--addons-cases",
        type=int,
        default=None,
        help="carts asked of tiein addons, the first of the cart cases (default: all of them, up to 5000; quick 150)",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="threads for the tiein build (default: tiein's)"
    )
    ap.add_argument(
        "--home-root",
        type=Path,
        default=OUT / "quality",
        help="where the builds go, one home per dataset (default bench/out/quality)",
    )
    ap.add_argument("--json", type=Path, default=OUT / "quality.json", help="where to write all numbers")
    ap.add_argument(
        "--seasonal",
        action="store_true",
        help="only the seasonal protocol (bench/seasonal.py): Online Retail, train before 2011-11-01, "
        "seasonal vs year-round ranking of the Nov-Dec 2011 baskets; writes bench/out/quality_seasonal.json",
    )
    args = ap.parse_args(argv)
    if args.seasonal:
        import seasonal

        result = seasonal.run(build=build_tiein, home_root=args.home_root, threads=args.threads, seed=SEED)
        print()
        print(seasonal.table(result))
        path = OUT / "quality_seasonal.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        return result
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
    max_cases = args.max_cases or (500 if args.quick else 5000)
    addon_cases = args.addons_cases or (150 if args.quick else max_cases)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for n in names:
        results[n] = run_dataset(
            n,
            quick=args.quick,
            max_cases=max_cases,
            addon_cases=addon_cases,
            threads=args.threads,
            home_root=args.home_root,
        )
    total = time.perf_counter() - t0
    print()
    for n, r in results.items():
        print(table(n, r))
        print()
    print(f"total {total:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {"seed": SEED, "k": qm.K, "seconds": round(total, 1), "datasets": results}
    args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()

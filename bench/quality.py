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
                   item of the basket in it) and precision@10. Beside it, the anchor HR@10 no
                   method can pass: the best possible top-10 list of each anchor, chosen with
                   the test baskets in hand (quality_metrics.anchor_bound, an LP bound).

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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality_metrics as qm  # noqa: E402
from quality_tiein import (  # noqa: E402
    CART,
    addons_lists,
    addons_misses,
    build_tiein,
    check_against_store,
    miss_reasons,
    tiein_relations,
)

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
    tb = time.perf_counter()
    bound = qm.anchor_bound(test_pos.values())
    log(
        f"[{name}] anchor HR@10 no fixed top-10 lists can pass: {bound['lp']:.4f} ({time.perf_counter() - tb:.1f} s)"
    )

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
        "anchor_bound": bound,
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
    bound, e = r.get("anchor_bound"), r["ratios"]["anchor hr"]
    if bound and e["best_value"]:
        lines.append(
            f"anchor HR@10 that no method can pass (best possible top-10 lists, chosen on the test baskets "
            f"themselves; LP bound): {bound['lp']:.3f} = {bound['lp'] / e['best_value']:.2f} × the best baseline "
            f"(1.10 × would be {1.1 * e['best_value']:.3f})"
        )
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

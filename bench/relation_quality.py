"""Relation quality on real data (issue 2 acceptance). Prints:

1. Instacart (catalog + prior orders): among each product's top-5 substitutes, the share in the
   same aisle; among its top-5 complements, the share in a different aisle; averaged over products
   with ≥ 20 orders. Targets: ≥ 80 % and ≥ 70 %. Answers are read back from the store, as served.
2. Amazon gift cards: how well the complement-vs-substitute score separates ``also_buy`` pairs
   from ``also_view`` pairs (ROC AUC). The lists themselves are withheld from the scored features
   (each listed pair becomes a bare candidate), so the AUC measures the classifier's own signals
   (title similarity, category, price, brand); the in-sample AUC with the lists as features is
   printed beside it for reference.

Usage: python bench/relation_quality.py [--only instacart|amazon] [--home DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def instacart(home: Path, threads: int | None) -> dict:
    import duckdb

    from tiein.graph import open_store
    from tiein.pipeline import BuildOptions, build

    t0 = time.perf_counter()
    summary = build(BuildOptions(dataset="instacart", home=home, threads=threads))
    build_s = time.perf_counter() - t0
    from tiein import loaders

    loaded = loaders.load_dataset("instacart")
    con = duckdb.connect()
    con.register("o", loaded.orders.select(["order_id", "product_id"]))
    con.register("p", loaded.products.select(["product_id", "category_path"]))
    busy = [
        r[0]
        for r in con.execute(
            "SELECT product_id FROM o GROUP BY product_id HAVING count(DISTINCT order_id) >= 20 ORDER BY product_id"
        ).fetchall()
    ]
    aisle = dict(con.execute("SELECT product_id, category_path FROM p").fetchall())
    store = open_store(summary.store)
    sub_share, comp_share = [], []
    n_sub = n_comp = 0
    try:
        for pid in busy:
            subs = store.related(pid, "substitute", 5)
            comps = store.related(pid, "complement", 5)
            if subs:
                sub_share.append(np.mean([aisle.get(r["product_id"]) == aisle[pid] for r in subs]))
                n_sub += len(subs)
            if comps:
                comp_share.append(np.mean([aisle.get(r["product_id"]) != aisle[pid] for r in comps]))
                n_comp += len(comps)
    finally:
        store.close()
    return {
        "build_seconds": round(build_s, 1),
        "products_with_20_orders": len(busy),
        "with_substitutes": len(sub_share),
        "with_complements": len(comp_share),
        "substitutes_same_aisle": round(float(np.mean(sub_share)), 4) if sub_share else None,
        "complements_other_aisle": round(float(np.mean(comp_share)), 4) if comp_share else None,
        "relations": summary.relations,
    }


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank statistic (ties get average ranks)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def amazon(threads: int | None) -> dict:
    from tiein import embeddings, loaders
    from tiein.features import candidate_features
    from tiein.relations import RelationConfig, score_features

    loaded = loaders.load_dataset("amazon_gift_cards")
    products = loaded.products
    enc = embeddings.load_encoder(None, threads=threads)
    vec = embeddings.embed_products(products, enc)
    ids = products.column("product_id").to_pylist()
    lp = loaded.listed_pairs.to_pylist()
    buy = {tuple(sorted((r["src"], r["dst"]))) for r in lp if r["kind"] == "co_purchase"}
    view = {tuple(sorted((r["src"], r["dst"]))) for r in lp if r["kind"] == "co_view"}
    both = buy & view
    labelled = {p: 1 for p in buy - both} | {p: 0 for p in view - both}
    pairs = sorted(labelled)
    bare = pa.table(
        {"src": [a for a, _ in pairs], "dst": [b for _, b in pairs], "similarity": [0.0] * len(pairs)}
    )
    cfg = RelationConfig()

    def auc_for(feats: pa.Table) -> tuple[float, int]:
        f = {c: feats.column(c).to_numpy(zero_copy_only=False) for c in feats.column_names}
        for c in ("n_ab", "n_src", "after_sd", "after_ds", "co_view", "listed_buy", "listed_view", "cat_rel"):
            f[c] = f[c].astype(np.int64)
        f["same_line"] = f["same_line"].astype(bool)
        s = score_features(f, cfg)
        margin = s["complement"] - s["substitute"]
        key = {(a, b): i for i, (a, b) in enumerate(zip(f["src"], f["dst"], strict=True))}
        sc, lab = [], []
        for a, b in pairs:
            i, j = key.get((a, b)), key.get((b, a))
            if i is None or j is None:
                continue
            sc.append(max(margin[i], margin[j]))  # the pair's better direction
            lab.append(labelled[(a, b)])
        return roc_auc(np.array(sc), np.array(lab)), len(sc)

    withheld, n = auc_for(candidate_features(products, neighbours=bare, ids=ids, vectors=vec))
    in_sample, _ = auc_for(
        candidate_features(products, listed=loaded.listed_pairs, neighbours=bare, ids=ids, vectors=vec)
    )
    # similarity alone, for reference (lower similarity = more complement-like)
    feats = candidate_features(products, neighbours=bare, ids=ids, vectors=vec)
    sim = dict(
        zip(
            zip(feats.column("src").to_pylist(), feats.column("dst").to_pylist(), strict=True),
            feats.column("similarity").to_pylist(),
            strict=True,
        )
    )
    sim_auc = roc_auc(np.array([-sim[(a, b)] for a, b in pairs]), np.array([labelled[p] for p in pairs]))
    # Reference only (not used by the classifier): a link-prediction baseline on the rest of the
    # lists — share of also_buy partners the two products have in common, the pair itself withheld.
    # Two substitutes (two phones) also share partners (the case), so in general this signal does
    # not say "complement"; it is printed to show how much of the separation is list structure.
    partners: dict[str, set[str]] = {}
    for a, b in buy:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)

    def shared(a: str, b: str) -> float:
        pa_, pb_ = partners.get(a, set()) - {b}, partners.get(b, set()) - {a}
        return len(pa_ & pb_) / max(1, len(pa_ | pb_))

    shared_auc = roc_auc(np.array([shared(a, b) for a, b in pairs]), np.array([labelled[p] for p in pairs]))
    return {
        "products": products.num_rows,
        "auc_reference_shared_also_buy_partners": round(shared_auc, 4),
        "also_buy_pairs": len(buy - both),
        "also_view_pairs": len(view - both),
        "in_both_lists_excluded": len(both),
        "pairs_scored": n,
        "auc_lists_withheld": round(withheld, 4),
        "auc_similarity_only": round(sim_auc, 4),
        "auc_in_sample_lists_as_features": round(in_sample, 4),
        "model": enc.name,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["instacart", "amazon"])
    ap.add_argument(
        "--home", type=Path, help="working directory for the Instacart build (default: a temp dir)"
    )
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    out: dict = {}
    if args.only in (None, "amazon"):
        out["amazon_gift_cards"] = amazon(args.threads)
        a = out["amazon_gift_cards"]
        print(
            f"amazon gift cards: AUC complement-vs-substitute score, also_buy vs also_view = {a['auc_lists_withheld']:.3f} "
            f"(lists withheld; {a['pairs_scored']} pairs: {a['also_buy_pairs']} also_buy, {a['also_view_pairs']} also_view); "
            f"similarity alone {a['auc_similarity_only']:.3f}; in-sample with lists {a['auc_in_sample_lists_as_features']:.3f}; "
            f"reference link-prediction baseline (shared also_buy partners, not used) {a['auc_reference_shared_also_buy_partners']:.3f}"
        )
    if args.only in (None, "instacart"):
        with tempfile.TemporaryDirectory() as tmp:
            out["instacart"] = instacart(args.home or Path(tmp), args.threads)
        i = out["instacart"]
        print(
            f"instacart: over {i['products_with_20_orders']} products with ≥20 orders: "
            f"top-5 substitutes in the same aisle {i['substitutes_same_aisle']:.1%} (target ≥80%, {i['with_substitutes']} products have substitutes); "
            f"top-5 complements in another aisle {i['complements_other_aisle']:.1%} (target ≥70%, {i['with_complements']} have complements); "
            f"build {i['build_seconds']}s"
        )
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

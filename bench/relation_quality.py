"""Relation quality on real data (issue 2 acceptance). Prints:

1. Instacart (catalog + prior orders): among each product's top-5 substitutes, the share in the
   same aisle; among its top-5 complements, the share in a different aisle; averaged over products
   with ≥ 20 orders. Targets: ≥ 80 % and ≥ 70 %. Answers are read back from the store, as served.
2. Amazon gift cards: how well tiein separates ``also_buy`` pairs (complements) from
   ``also_view`` pairs (substitutes), ROC AUC, with half of the products' lists withheld: the
   type classifier (tiein.typer) learns from the other half, and is scored on withheld pairs no
   kept list labels. Target ≥ 0.85. Beside it: the engine's typing with the classifier, the
   hand-set typing without labels, similarity alone.

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
    """Half of the products' lists withheld (crc32 of the id, even = withheld): the type classifier
    (tiein.typer) learns from the other half's lists; scored on the withheld pairs whose label no
    kept list shows. Beside it: the hand-set typing (no labels), similarity alone, and the engine
    as built with every list (in-sample)."""
    import zlib

    import pyarrow.compute as pc

    from tiein import embeddings, loaders
    from tiein.features import candidate_features
    from tiein.ranker import feature_dict
    from tiein.relations import RelationConfig, score_features
    from tiein.typer import type_probability

    loaded = loaders.load_dataset("amazon_gift_cards")
    products = loaded.products
    enc = embeddings.load_encoder(None, threads=threads)
    vec = embeddings.embed_products(products, enc)
    ids = products.column("product_id").to_pylist()
    listed = loaded.listed_pairs
    withheld_src = pa.array(
        [zlib.crc32(s.encode("utf-8")) % 2 == 0 for s in listed.column("src").to_pylist()]
    )
    kept = listed.filter(pc.invert(withheld_src))
    held = listed.filter(withheld_src)

    def labels(rows: pa.Table) -> dict[tuple[str, str], int]:
        kinds: dict[tuple[str, str], set[str]] = {}
        for r in rows.to_pylist():
            kinds.setdefault((min(r["src"], r["dst"]), max(r["src"], r["dst"])), set()).add(r["kind"])
        return {p: int(k == {"co_purchase"}) for p, k in kinds.items() if len(k) == 1}

    visible = set(labels(kept)) | {
        (min(a, b), max(a, b))
        for a, b in zip(kept.column("src").to_pylist(), kept.column("dst").to_pylist(), strict=True)
    }
    test = {p: y for p, y in labels(held).items() if p not in visible}
    pairs = sorted(test)
    y = np.array([test[p] for p in pairs])
    bare = pa.table(
        {"src": [a for a, _ in pairs], "dst": [b for _, b in pairs], "similarity": [0.0] * len(pairs)}
    )
    cfg = RelationConfig()

    def pair_scores(f: dict, values: np.ndarray) -> np.ndarray:
        key = {(a, b): i for i, (a, b) in enumerate(zip(f["src"], f["dst"], strict=True))}
        return np.array([max(values[key[(a, b)]], values[key[(b, a)]]) for a, b in pairs])

    f = feature_dict(candidate_features(products, listed=kept, neighbours=bare, ids=ids, vectors=vec))
    t0 = time.perf_counter()
    p_comp, report = type_probability(f, kept)
    fit_s = time.perf_counter() - t0
    learnt = roc_auc(pair_scores(f, p_comp), y) if p_comp is not None else float("nan")
    f["p_complement"] = p_comp if p_comp is not None else np.full(len(f["src"]), np.nan)
    s = score_features(f, cfg)
    typed = roc_auc(pair_scores(f, s["complement"] - s["substitute"]), y)
    # without labels: the hand-set typing and similarity alone, same pairs
    f0 = feature_dict(candidate_features(products, neighbours=bare, ids=ids, vectors=vec))
    s0 = score_features(f0, cfg)
    hand = roc_auc(pair_scores(f0, s0["complement"] - s0["substitute"]), y)
    sim = roc_auc(pair_scores(f0, -f0["similarity"]), y)
    return {
        "products": products.num_rows,
        "kept_list_rows": kept.num_rows,
        "withheld_list_rows": held.num_rows,
        "pairs_scored": len(pairs),
        "also_buy_pairs": int(y.sum()),
        "also_view_pairs": int((1 - y).sum()),
        "auc_type_classifier_withheld": round(learnt, 4),
        "auc_engine_typing_withheld": round(typed, 4),
        "auc_hand_set_no_labels": round(hand, 4),
        "auc_similarity_only": round(sim, 4),
        "type_classifier_cv_auc": report.get("cv_auc"),
        "type_classifier_seconds": round(fit_s, 2),
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
            f"amazon gift cards, half of the products' lists withheld: AUC also_buy vs also_view on "
            f"{a['pairs_scored']} withheld pairs ({a['also_buy_pairs']} also_buy, {a['also_view_pairs']} also_view): "
            f"type classifier {a['auc_type_classifier_withheld']:.3f} (target ≥ 0.85; cross-validated on the kept "
            f"lists {a['type_classifier_cv_auc']}), engine typing with it {a['auc_engine_typing_withheld']:.3f}, "
            f"hand-set typing without labels {a['auc_hand_set_no_labels']:.3f}, similarity alone {a['auc_similarity_only']:.3f}"
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

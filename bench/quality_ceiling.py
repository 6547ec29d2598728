"""How far can a learnt combination of the simple baselines go? An estimate of the ceiling for
cart completion on the quality protocols (bench/quality.py), to read the 1.10 × target against.

For each dataset (the same train / test split and the same 5,000 test carts as bench/quality.py):

1. the training orders are split again, latest 20 % of baskets by time (hash for the hash-split
   datasets) as *label* baskets; the baselines' item-item matrices (co-occurrence, SAR jaccard,
   SAR lift, item cosine, item BM25, confidence both ways, BM25 over the last 90 days) are computed
   on the rest;
2. carts from the label baskets (each basket hides one item, four seeds) give candidates: the top
   100 by summed BM25, top 50 by summed jaccard and by summed confidence, the 20 best sellers;
3. each (cart, candidate) gets 33 features: popularity and recent popularity, cart size, and for
   every matrix the sum, max and mean over the cart items, the share of cart items ever bought with
   it, and its rank under three of the sums;
4. a logistic regression (scikit-learn, standardised) learns P(candidate is the hidden item);
5. the matrices are recomputed on all training orders and the test carts ranked by the model.

The model sees nothing of the test months and learns what a per-shop blend of every baseline can
do; it is not what tiein serves (its cart weights are per edge). Dense matrices: datasets up to a
few thousand products (Instacart's 19,776 would need ~12 GB and is left out).

Writes bench/out/quality_ceiling.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality as Q  # noqa: E402
import quality_metrics as qm  # noqa: E402

DATASETS = ("online_retail", "groceries", "groceries_zh", "bread_basket")
MATRICES = ("cooc", "jac", "cos", "bm25", "lift", "conf", "rconf", "bm25r")
N_CANDIDATES = 100
LABEL_SEEDS = 4


def inner_split(orders: pa.Table, proto: Q.Protocol) -> tuple[pa.Table, pa.Table]:
    """(feature, label) lines of the training orders: the latest 20 % of baskets by time, or by
    hash for the hash-split datasets."""
    ids = orders.column("order_id").to_pylist()
    if proto.before is not None:
        first: dict[str, Any] = {}
        for o, t in zip(ids, orders.column("ts").to_pylist(), strict=True):
            if o not in first or t < first[o]:
                first[o] = t
        order = sorted(first, key=lambda o: (first[o], o))
    else:
        order = sorted(set(ids), key=lambda o: qm.hash_unit(o, 99))
    late = set(order[int(len(order) * 0.8) :])
    is_late = pa.array([o in late for o in ids])
    return orders.filter(pc.invert(is_late)), orders.filter(is_late)


def recent(orders: pa.Table, proto: Q.Protocol, days: int = 90) -> pa.Table:
    """The last ``days`` of ``orders`` (all of them without times)."""
    if proto.before is None:
        return orders
    ts = orders.column("ts")
    last = pc.max(ts).as_py()
    return orders.filter(pc.greater_equal(ts, pa.scalar(last - dt.timedelta(days=days), pa.timestamp("us"))))


def matrices(
    orders: pa.Table, proto: Q.Protocol, index: qm.ItemIndex
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Dense item-item matrices of the baselines on ``orders`` and the items' basket counts."""
    b = Q.baskets_of(orders)
    X = qm.basket_matrix(list(b.values()), index)
    rb = Q.baskets_of(recent(orders, proto))
    Xr = qm.basket_matrix(list(rb.values()), index)
    cnt = np.asarray(X.sum(axis=0)).ravel()
    C = qm.cooccurrence(X)
    c = C.tocoo()
    out = {
        "cooc": C,
        "jac": qm.sar_jaccard(X),
        "cos": qm.item_cosine(X),
        "bm25": qm.item_bm25(X),
        "lift": qm.sar_lift(X),
        "conf": sp.csr_matrix((c.data / (cnt[c.row] + 5), (c.row, c.col)), shape=C.shape),
        "rconf": sp.csr_matrix((c.data / (cnt[c.col] + 5), (c.row, c.col)), shape=C.shape),
        "bm25r": qm.item_bm25(Xr),
    }
    dense = {k: v.toarray().astype(np.float32) for k, v in out.items()}
    cnt_r = np.asarray(Xr.sum(axis=0)).ravel()
    dense["_pop"] = np.log1p(cnt).astype(np.float32)
    dense["_rpop"] = (np.log1p(cnt_r) - np.log(max(len(rb), 1)) + np.log(max(len(b), 1))).astype(np.float32)
    return dense, cnt


def cases_of(orders: pa.Table, index: qm.ItemIndex, seed: int, max_cases: int) -> list[qm.CartCase]:
    b = Q.baskets_of(orders)
    pos = {o: [index.pos[p] for p in bb if p in index.pos] for o, bb in b.items()}
    return qm.cart_cases({o: bb for o, bb in pos.items() if len(bb) >= 2}, seed, max_cases)


def features(
    dense: dict[str, np.ndarray], cnt: np.ndarray, cases: list[qm.CartCase]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per case: the candidates' feature rows, whether each is the hidden item, the candidates."""
    rows, labels, cands = [], [], []
    best_sellers = np.argsort(-cnt, kind="stable")[:20]
    for c in cases:
        rest = np.array(c.rest)
        sums = {k: dense[k][rest].sum(0) for k in ("bm25", "jac", "conf")}
        for s in sums.values():
            s[rest] = -1.0
        cand = np.unique(
            np.r_[
                np.argsort(-sums["bm25"], kind="stable")[:N_CANDIDATES],
                np.argsort(-sums["jac"], kind="stable")[: N_CANDIDATES // 2],
                np.argsort(-sums["conf"], kind="stable")[: N_CANDIDATES // 2],
                best_sellers,
            ]
        )
        cand = cand[~np.isin(cand, rest)]
        f = [
            dense["_pop"][cand],
            np.full(cand.size, np.log(len(rest)), np.float32),
            dense["_rpop"][cand],
            dense["_rpop"][cand] - dense["_pop"][cand],
        ]
        for k in MATRICES:
            sub = dense[k][np.ix_(rest, cand)]
            f += [sub.sum(0), sub.max(0), sub.mean(0)]
        f.append((dense["cooc"][np.ix_(rest, cand)] > 0).mean(0))
        for s in sums.values():
            v = s[cand]
            r = np.empty(cand.size)
            r[np.argsort(-v, kind="stable")] = np.arange(cand.size)
            f.append(np.log1p(r).astype(np.float32))
        rows.append(np.column_stack(f))
        labels.append(cand == c.hidden)
        cands.append(cand)
    return rows, labels, cands


def run(name: str, max_cases: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from tiein import loaders

    t0 = time.perf_counter()
    proto = Q.PROTOCOLS[name]
    train, test = Q.split_orders(loaders.load_dataset(name).orders, proto)
    index = qm.ItemIndex(p for b in Q.baskets_of(train).values() for p in b)
    early, late = inner_split(train, proto)
    d_early, c_early = matrices(early, proto, index)
    label_cases = [c for s in range(LABEL_SEEDS) for c in cases_of(late, index, 7 + s, 8000)]
    x, y, _ = features(d_early, c_early, label_cases)
    del d_early
    xs, ys = np.vstack(x), np.concatenate(y)
    mean, sd = xs.mean(0), xs.std(0) + 1e-9
    model = LogisticRegression(max_iter=2000).fit((xs - mean) / sd, ys)
    d_all, c_all = matrices(train, proto, index)
    cases = cases_of(test, index, Q.SEED, max_cases)
    xt, yt, ct = features(d_all, c_all, cases)
    hits, rr = 0.0, 0.0
    for xx, yy, cc in zip(xt, yt, ct, strict=True):
        s = model.decision_function((xx - mean) / sd)
        top = cc[np.lexsort((cc, -s))][:10].tolist()
        if yy.any() and (t := int(cc[yy][0])) in top:
            hits += 1
            rr += 1 / (top.index(t) + 1)
    X = qm.basket_matrix(list(Q.baskets_of(train).values()), index)
    pop = qm.popularity_order(X)
    base = {
        m: qm.cart_metrics(qm.cart_lists(f(X) if f else None, cases, pop), cases)["hr"]
        for m, f in qm.BASELINES.items()
    }
    best = max(base, key=lambda m: (base[m], m))
    hr = hits / len(cases)
    out = {
        "products": len(index),
        "label_cases": len(label_cases),
        "test_cases": len(cases),
        "candidate_recall": round(float(np.mean([v.any() for v in yt])), 4),
        "baselines_hr": {m: round(v, 4) for m, v in base.items()},
        "best_baseline": best,
        "learnt_blend_hr": round(hr, 4),
        "learnt_blend_mrr": round(rr / len(cases), 4),
        "ratio": round(hr / base[best], 3),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"[{name}] learnt blend of the baselines: cart HR@10 {hr:.4f} vs best baseline {best} "
        f"{base[best]:.4f} = {out['ratio']:.3f}× ({len(cases):,} test carts, candidates hold the hidden "
        f"item in {out['candidate_recall']:.0%}; {out['seconds']:.0f} s)",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default: %(default)s)")
    ap.add_argument(
        "--max-cases", type=int, default=5000, help="test carts per dataset (default: %(default)s)"
    )
    ap.add_argument(
        "--json", type=Path, default=Q.OUT / "quality_ceiling.json", help="where to write the results"
    )
    a = ap.parse_args(argv)
    results = {name: run(name, a.max_cases) for name in a.datasets.split(",") if name}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

"""Simulation on real data: does re-ranking by feedback sell more than the classifier's order?

    python bench/feedback_sim.py [--cut 2011-09-01] [--end 2011-12-10] [--views 0] [-k 5] [--pool 20]
                                 [--window-days 0] [--explore 0.1] [--prior-strength 50]
                                 [--item-strength 200] [--home tiein-data/feedback-sim] [--json]

1. **Train.** The complement relations are built from UCI Online Retail I order lines *before*
   ``--cut`` (mine → candidate features → classify, the build's own stages; no title embeddings
   unless ``--embeddings``). They are cached in ``HOME/relations-<cut>-<emb>.parquet``.
2. **Replay.** Every held-back invoice from ``--cut`` to ``--end`` (time order) is one unit: the
   pages of its items that have complements are "viewed" (``--views 0``, the default: every one,
   as a shopper opens each product page before buying it; ``--views N``: the N with the smallest
   stable hash of invoice and item, deterministic and unrelated to the ranking) and each page shows
   ``k`` complements of its item: one ``impression`` each. A shown item counts as ``click`` +
   ``purchase`` when the customer bought it in that invoice (or in a later invoice within
   ``--window-days``).
3. **Arms.** The customer (guests: the invoice) is assigned by :func:`tiein.feedback.assign` to
   ``control`` (the classifier's top k) or ``reranked`` (:func:`tiein.feedback.rerank` of the top
   ``--pool`` complements by the feedback stats learnt so far, top k of that). Stats are online:
   each day's events of both arms are ingested into the real event log (``HOME/sim-log``) after
   the day, and the next day re-ranks with ``feedback_stats`` of everything logged before it.
4. **Report.** Per arm: conversion (purchases per impression; CI by the delta method over
   invoices), hit rate (invoices with at least one purchase of a shown item; Wilson CI), and the
   lift of reranked over control with its CI (delta method on the log ratio). **Paired**: both
   arms' lists judged on every invoice (what the customer bought does not depend on what was shown
   in a replay), which removes the noise of splitting customers; its CI is over invoices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiein.feedback import (  # noqa: E402
    DEFAULT_ITEM_STRENGTH,
    DEFAULT_PRIOR_STRENGTH,
    EVENTS,
    Z95,
    assign,
    feedback_stats,
    ingest,
    lift_ci,
    ratio_ci,
    read_log,
    rerank,
    stable_hash,
    wilson,
)

ARMS = ("control", "reranked")
EXPERIMENT = "feedback-sim"


@dataclass
class SimResult:
    """Per arm: requests (invoices served), impressions, purchases, hits (requests with a
    purchase), conversion and hit_rate with CIs; lift of reranked over control; settings; seconds."""

    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    lift: dict[str, dict[str, float | None]] = field(default_factory=dict)
    paired: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arms": self.arms,
            "lift": self.lift,
            "paired": self.paired,
            "settings": self.settings,
            "seconds": self.seconds,
        }


def paired_lift(diff: np.ndarray, impressions: np.ndarray, base: float | None) -> dict[str, float | None]:
    """Relative lift ``Σdiff / Σimpressions / base`` of a paired comparison (both lists judged on
    the same invoices) with a 95 % CI by the delta method over invoices (``base`` held fixed)."""
    if not base or impressions.size < 2:
        return {"value": None, "low": None, "high": None}
    n, r = impressions.size, float(diff.sum() / impressions.sum())
    d = diff - r * impressions
    se = float(np.sqrt((d * d).sum() / (n - 1) / (n * impressions.mean() ** 2)))
    return {"value": r / base, "low": (r - Z95 * se) / base, "high": (r + Z95 * se) / base}


def load_orders(data_dir: Path | None = None) -> tuple[pa.Table, pa.Table]:
    """(products, orders) of Online Retail I, loaded by the project's own loader."""
    from tiein import loaders

    loaded = loaders.load_dataset("online_retail", data_dir=data_dir)
    return loaded.products, loaded.orders


def train_relations(
    products: pa.Table, orders: pa.Table, cut: datetime, home: Path, *, embeddings: bool = False
) -> pa.Table:
    """Complement relations (RELATIONS) learnt from ``orders`` before ``cut``; cached in ``home``."""
    from tiein.features import candidate_features
    from tiein.mining import mine_pairs
    from tiein.relations import classify

    cache = home / f"relations-{cut:%Y%m%d}-{'emb' if embeddings else 'noemb'}.parquet"
    if cache.exists():
        return pq.read_table(cache)
    train = orders.filter(pc.less(orders.column("ts"), pa.scalar(cut, pa.timestamp("us"))))
    pairs = mine_pairs(train, min_count=2, max_basket=500, after_window_days=90).pairs
    ids = vectors = neighbours = None
    if embeddings:
        import embeddings as emb

        encoder = emb.load_encoder(None, threads=1)
        vectors = emb.embed_products(products, encoder, cache_dir=home / "cache")
        ids = products.column("product_id").to_pylist()
        neighbours = emb.ProductIndex.build(ids, vectors, encoder.name).neighbours(20)
    features = candidate_features(
        products, co_purchase=pairs, neighbours=neighbours, ids=ids, vectors=vectors
    )
    rel = classify(features)
    rel = rel.filter(pc.equal(rel.column("kind"), "complement"))
    home.mkdir(parents=True, exist_ok=True)
    pq.write_table(rel, cache)
    return rel


def _complements(rel: pa.Table, pool: int) -> dict[str, list[dict[str, Any]]]:
    """anchor -> its best ``pool`` complement rows (the stores' order: score desc, then id)."""
    idx = pc.sort_indices(rel, [("src", "ascending"), ("score", "descending"), ("dst", "ascending")])
    rel = rel.take(idx)
    out: dict[str, list[dict[str, Any]]] = {}
    for s, d, sc in zip(*(rel.column(c).to_pylist() for c in ("src", "dst", "score")), strict=True):
        rows = out.setdefault(s, [])
        if len(rows) < pool:
            rows.append({"product_id": d, "kind": "complement", "score": sc})
    return out


def _baskets(test: pa.Table, window_days: int) -> list[dict[str, Any]]:
    """Held-back invoices in time order: id, ts, user, items (in line order), truth (items bought
    in the invoice or by the same customer within ``window_days`` after it)."""
    import duckdb

    con = duckdb.connect()
    con.register("o", test.select(["order_id", "product_id", "customer_id", "ts"]))
    rows = con.sql(
        """SELECT order_id, min(ts) AS ts, any_value(customer_id) AS customer_id, list(product_id) AS items
           FROM o GROUP BY order_id ORDER BY ts, order_id"""
    ).fetchall()
    con.close()
    baskets = [
        {
            "order_id": o,
            "ts": ts,
            "user": c if c is not None else f"guest:{o}",
            "items": items,
            "truth": set(items),
        }
        for o, ts, c, items in rows
    ]
    if window_days > 0:
        by_user: dict[str, list[dict[str, Any]]] = {}
        for b in baskets:
            by_user.setdefault(b["user"], []).append(b)
        window = timedelta(days=window_days)
        for seq in by_user.values():  # time-ordered per customer; few invoices each
            for i, b in enumerate(seq):
                for later in seq[i + 1 :]:
                    if later["ts"] - b["ts"] > window:
                        break
                    b["truth"] |= set(later["items"])
    return baskets


def simulate(
    relations: pa.Table,
    test_orders: pa.Table,
    home: Path,
    *,
    k: int = 5,
    pool: int = 20,
    views: int = 0,
    window_days: int = 0,
    explore: float = 0.1,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    item_strength: float = DEFAULT_ITEM_STRENGTH,
) -> SimResult:
    """Replay ``test_orders`` against ``relations`` (see the module docstring)."""
    import shutil

    t0 = time.perf_counter()
    comps = _complements(relations, pool)
    baskets = _baskets(test_orders, window_days)
    log_home = home / "sim-log"
    shutil.rmtree(log_home, ignore_errors=True)
    if views < 0:
        raise ValueError(f"views must be >= 0 (0: every basket item), got {views}")
    per = {a: {"impressions": [], "purchases": []} for a in ARMS}
    paired: dict[str, list[int]] = {"control": [], "reranked": [], "impressions": []}
    fb_options = {"prior_strength": prior_strength, "item_strength": item_strength}
    stats = feedback_stats(EVENTS.empty_table(), **fb_options)
    day = None
    ev: dict[str, list[Any]] = {n: [] for n in EVENTS.names}
    t_stats = 0.0

    def flush() -> None:
        nonlocal stats, t_stats
        if ev["event"]:
            ts = time.perf_counter()
            ingest(log_home, pa.table({n: pa.array(v, EVENTS.field(n).type) for n, v in ev.items()}))
            stats = feedback_stats(read_log(log_home), **fb_options)
            t_stats += time.perf_counter() - ts
            for v in ev.values():
                v.clear()

    for b in baskets:
        if b["ts"].date() != day:
            flush()  # the stats used on a day are those of every day before it
            day = b["ts"].date()
        candidates = [i for i in dict.fromkeys(b["items"]) if i in comps]
        if not candidates:
            continue
        # the viewed anchors: the basket's items with complements, by a stable hash of invoice and
        # item (deterministic, unrelated to the ranking); views=0: every one of them
        candidates.sort(key=lambda i: stable_hash("anchor", b["order_id"], i))
        anchors = candidates[:views] if views > 0 else candidates
        arm = assign(b["user"], EXPERIMENT, ARMS)
        got = {"control": 0, "reranked": 0, "impressions": 0, "bought": 0}  # both lists are k long
        for anchor in anchors:
            lists = {
                "control": [r["product_id"] for r in comps[anchor][:k]],
                "reranked": [
                    r["product_id"]
                    for r in rerank(
                        comps[anchor],
                        stats,
                        anchor_id=anchor,
                        explore=explore,
                        seed=stable_hash(b["order_id"], anchor),
                    )[:k]
                ],
            }
            for name, items in lists.items():  # both lists judged on every invoice (paired)
                got[name] += sum(i in b["truth"] and i != anchor for i in items)
            got["impressions"] += len(lists["control"])
            shown = lists[arm]
            bought = [i for i in shown if i in b["truth"] and i != anchor]
            got["bought"] += len(bought)
            for item in shown:
                for event in ("impression", "click", "purchase") if item in bought else ("impression",):
                    for n, v in (
                        ("event_id", f"{b['order_id']}:{anchor}:{item}:{event}"),
                        ("ts", b["ts"]),
                        ("user_id", b["user"]),
                        ("anchor_id", anchor),
                        ("item_id", item),
                        ("kind", "complement"),
                        ("surface", "page"),
                        ("experiment", EXPERIMENT),
                        ("variant", arm),
                        ("event", event),
                        ("value", None),
                        ("order_id", b["order_id"]),
                    ):
                        ev[n].append(v)
        for name in ("control", "reranked", "impressions"):
            paired[name].append(got[name])
        per[arm]["impressions"].append(got["impressions"])
        per[arm]["purchases"].append(got["bought"])
    flush()

    result = SimResult()
    for arm in ARMS:
        imp = np.asarray(per[arm]["impressions"], dtype=np.float64)
        pur = np.asarray(per[arm]["purchases"], dtype=np.float64)
        hits = (pur > 0).astype(np.float64)
        lo, hi = wilson(float(hits.sum()), float(hits.size))
        result.arms[arm] = {
            "requests": int(imp.size),
            "impressions": int(imp.sum()),
            "purchases": int(pur.sum()),
            "hits": int(hits.sum()),
            "conversion": ratio_ci(pur, imp),
            "hit_rate": {**ratio_ci(hits, np.ones(hits.size)), "low": lo, "high": hi},
        }
    c, r = result.arms["control"], result.arms["reranked"]
    result.lift = {m: lift_ci(r[m], c[m]) for m in ("conversion", "hit_rate")}
    imp = np.asarray(paired["impressions"], dtype=np.float64)
    both = {a: ratio_ci(np.asarray(paired[a], dtype=np.float64), imp) for a in ARMS}
    diff = np.asarray(paired["reranked"], dtype=np.float64) - np.asarray(paired["control"], dtype=np.float64)
    result.paired = {
        "requests": int(imp.size),
        "invoices_with_different_purchases": int(np.count_nonzero(diff)),
        **{f"{a}_conversion": both[a] for a in ARMS},
        "lift": paired_lift(diff, imp, both["control"]["value"]),
    }
    result.settings = {
        "k": k,
        "pool": pool,
        "views": views,
        "window_days": window_days,
        "explore": explore,
        "prior_strength": prior_strength,
        "item_strength": item_strength,
        "invoices": len(baskets),
        "anchors_with_complements": len(comps),
    }
    result.seconds = {"replay": time.perf_counter() - t0, "ingest_and_stats": t_stats}
    return result


def run(
    cut: datetime,
    end: datetime,
    home: Path,
    *,
    data_dir: Path | None = None,
    embeddings: bool = False,
    **options: Any,
) -> SimResult:
    """Load Online Retail, train before ``cut``, replay ``[cut, end)``."""
    t0 = time.perf_counter()
    products, orders = load_orders(data_dir)
    t_load = time.perf_counter() - t0
    rel = train_relations(products, orders, cut, home, embeddings=embeddings)
    t_train = time.perf_counter() - t0 - t_load
    ts = orders.column("ts")
    held = pc.and_(
        pc.greater_equal(ts, pa.scalar(cut, pa.timestamp("us"))),
        pc.less(ts, pa.scalar(end, pa.timestamp("us"))),
    )
    result = simulate(rel, orders.filter(held), home, **options)
    result.settings.update({"cut": f"{cut:%Y-%m-%d}", "end": f"{end:%Y-%m-%d}", "embeddings": embeddings})
    result.seconds = {"load": t_load, "train": t_train, **result.seconds}
    return result


def _fmt(m: dict[str, Any], pct: bool = True) -> str:
    f = (lambda x: f"{x * 100:.2f}%") if pct else (lambda x: f"{x:.4f}")
    if m["value"] is None:
        return "-"
    if m.get("low") is None:
        return f(m["value"])
    return f"{f(m['value'])} [{f(m['low'])}, {f(m['high'])}]"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cut", default="2011-09-01", help="Train before, replay from this date.")
    ap.add_argument("--end", default="2011-12-10", help="Replay up to (excluding) this date.")
    ap.add_argument("-k", type=int, default=5, help="Complements shown per request.")
    ap.add_argument("--pool", type=int, default=20, help="Complements the reranked arm chooses from.")
    ap.add_argument(
        "--views",
        type=int,
        default=0,
        help="Anchors viewed per invoice (each shown k complements); 0: every basket item with complements.",
    )
    ap.add_argument("--window-days", type=int, default=0, help="A later purchase within N days also counts.")
    ap.add_argument("--explore", type=float, default=0.1, help="Thompson draw spread (0 greedy, 1 classic).")
    ap.add_argument(
        "--prior-strength",
        type=float,
        default=DEFAULT_PRIOR_STRENGTH,
        help="Pseudo-impressions of a pair's prior.",
    )
    ap.add_argument(
        "--item-strength",
        type=float,
        default=DEFAULT_ITEM_STRENGTH,
        help="Pseudo-impressions of the item level of the prior (0: pair level only).",
    )
    ap.add_argument(
        "--embeddings", action="store_true", help="Use title embeddings in the classifier (slower)."
    )
    ap.add_argument(
        "--home", type=Path, default=ROOT / "tiein-data" / "feedback-sim", help="Cache and event log."
    )
    ap.add_argument("--data-dir", type=Path, help="Shared data folder [env TIEIN_DATA].")
    ap.add_argument("--json", action="store_true", help="Print the result as JSON too.")
    a = ap.parse_args(argv)
    if a.views < 0:
        ap.error(f"--views must be >= 0 (0: every basket item), got {a.views}")
    res = run(
        datetime.fromisoformat(a.cut),
        datetime.fromisoformat(a.end),
        a.home,
        data_dir=a.data_dir,
        embeddings=a.embeddings,
        k=a.k,
        pool=a.pool,
        views=a.views,
        window_days=a.window_days,
        explore=a.explore,
        prior_strength=a.prior_strength,
        item_strength=a.item_strength,
    )
    s = res.settings
    print(
        f"Online Retail: train < {s['cut']}, replay {s['cut']} .. {s['end']} ({s['invoices']:,} invoices), "
        f"{'all' if s['views'] == 0 else s['views']} anchor(s) viewed per invoice, k={s['k']} of pool {s['pool']}, "
        f"window {s['window_days']} d, explore {s['explore']}, prior {s['prior_strength']:g}, "
        f"item level {s['item_strength']:g}"
    )
    for arm, m in res.arms.items():
        print(
            f"  {arm:<9} {m['requests']:>6,} invoices {m['impressions']:>7,} shown {m['purchases']:>6,} bought  "
            f"conversion {_fmt(m['conversion'])}  hit rate {_fmt(m['hit_rate'])}"
        )
    for metric, x in res.lift.items():
        print(f"  lift reranked vs control, {metric:<10} {_fmt(x)}")
    pr = res.paired
    print(
        f"  paired (both lists judged on all {pr['requests']:,} invoices): conversion control "
        f"{_fmt(pr['control_conversion'])}, reranked {_fmt(pr['reranked_conversion'])}, lift {_fmt(pr['lift'])} "
        f"({pr['invoices_with_different_purchases']:,} invoices differ)"
    )
    print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in res.seconds.items()))
    if a.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))


if __name__ == "__main__":
    main()

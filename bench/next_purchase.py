""" "Next purchase" relations on UCI Online Retail: the top pairs with their numbers, checks, and
the precision of "next" predictions on a time split against a popularity baseline.

    python bench/next_purchase.py [--window 90] [--cutoff 2011-09-01] [--top 15] [--k 10]

1. Build "next" relations from all orders (the build's own path: mine_pairs → next_candidates →
   classify_next) and print the strongest pairs.
2. Checks: directed (no pair kept both ways), within the window (median gaps ≤ window), and the
   after counts of 200 kept pairs recomputed independently in DuckDB SQL from the order lines.
3. Time split: relations from orders before ``--cutoff`` only. Customers with an order in the
   ``window`` days before the cutoff and one in the ``window`` days after it are scored: their
   items of the last ``window`` days before the cutoff are the anchors; "next" ranks products by
   the summed scores of anchor → product relations, the baseline ranks products by how many
   customers bought them in the ``window`` days before the cutoff. Both skip products the
   customer bought before the cutoff; a hit is a product the customer bought after it (within the
   window). Prints precision@k, hit rate and coverage of both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loaders  # noqa: E402
from tiein.features import next_candidates  # noqa: E402
from tiein.mining import mine_pairs  # noqa: E402
from tiein.next_purchase import NextConfig, classify_next  # noqa: E402


def next_relations(
    orders: pa.Table, products: pa.Table, window: int, cfg: NextConfig
) -> tuple[pa.Table, dict[str, Any]]:
    """The "next" relations of ``orders`` (RELATIONS rows) and the mining report."""
    mined = mine_pairs(orders, min_count=min(2, cfg.min_customers), after_window_days=window)
    feats = next_candidates(products, mined.pairs, mined.timeline, min_count=cfg.min_customers)
    rel = classify_next(feats, mined.report["returning_customers"], cfg, window_days=window, orders=orders)
    return rel, mined.report


def independent_after_counts(
    orders: pa.Table, pairs: pa.Table, window: int, max_items: int = 1000
) -> dict[tuple[str, str], int]:
    """Customers who bought src, then dst at a strictly later time within ``window`` days, for
    each (src, dst) of ``pairs``: plain SQL over the order lines, no tiein code. Wholesalers are
    left out by mining's documented rule (more than ``max_items`` distinct products, or more than
    ``max_items ** 2`` (event, later event in the window) pairs), restated here in SQL."""
    con = duckdb.connect()
    con.register("o", orders.select(["customer_id", "product_id", "ts"]))
    con.register("k", pairs.select(["src", "dst"]))
    rows = con.execute(
        """
        WITH ev0 AS (SELECT DISTINCT customer_id c, product_id p, ts FROM o
                     WHERE customer_id IS NOT NULL AND ts IS NOT NULL),
        per_t AS (SELECT c, ts, count(*) n FROM ev0 GROUP BY ALL),
        inst AS (SELECT x.c, sum(x.n * y.n) n FROM per_t x JOIN per_t y ON y.c = x.c AND y.ts > x.ts
                 AND y.ts <= x.ts + to_days(CAST($w AS INTEGER)) GROUP BY ALL),
        skip AS (SELECT c FROM ev0 GROUP BY c HAVING count(DISTINCT p) > $m
                 UNION SELECT c FROM inst WHERE n > $m * $m),
        ev AS (SELECT * FROM ev0 WHERE c NOT IN (SELECT c FROM skip))
        SELECT k.src, k.dst, count(DISTINCT a.c)
        FROM k JOIN ev a ON a.p = k.src
        JOIN ev b ON b.c = a.c AND b.p = k.dst AND b.ts > a.ts AND b.ts <= a.ts + to_days(CAST($w AS INTEGER))
        GROUP BY ALL
        """,
        {"w": window, "m": max_items},
    ).fetchall()
    con.close()
    return {(s, d): int(n) for s, d, n in rows}


def checks(orders: pa.Table, rel: pa.Table, window: int, sample: int = 200) -> dict[str, Any]:
    """Directed, within the window, after counts equal to an independent recount."""
    edges = set(zip(rel.column("src").to_pylist(), rel.column("dst").to_pylist(), strict=True))
    mirrored = sum(1 for s, d in edges if (d, s) in edges)
    ev = [json.loads(e) for e in rel.column("evidence").to_pylist()]
    gaps = [e["median_gap_days"] for e in ev if e.get("median_gap_days") is not None]
    picked = (
        rel.take(pa.array(range(0, rel.num_rows, max(1, rel.num_rows // sample)))) if rel.num_rows else rel
    )
    recount = independent_after_counts(orders, picked, window)
    claimed = {
        (s, d): json.loads(e)["after_count"]
        for s, d, e in zip(*(picked.column(c).to_pylist() for c in ("src", "dst", "evidence")), strict=True)
    }
    return {
        "relations": rel.num_rows,
        "mirrored_pairs": mirrored,
        "max_median_gap_days": max(gaps) if gaps else None,
        "gaps_within_window": all(0 <= g <= window for g in gaps),  # 0.0: a later order the same day
        "recounted": len(claimed),
        "recount_mismatches": sum(1 for key, n in claimed.items() if recount.get(key, 0) != n),
    }


_SPLIT_SQL = """
WITH tr AS (SELECT DISTINCT customer_id c, product_id p, ts FROM o WHERE customer_id IS NOT NULL AND ts < $cut),
te AS (SELECT DISTINCT customer_id c, product_id p FROM o
       WHERE customer_id IS NOT NULL AND ts >= $cut AND ts < $cut + to_days(CAST($w AS INTEGER))),
recent AS (SELECT DISTINCT c, p FROM tr WHERE ts >= $cut - to_days(CAST($w AS INTEGER))),
owned AS (SELECT DISTINCT c, p FROM tr),
users AS (SELECT DISTINCT c FROM recent WHERE c IN (SELECT c FROM te)),
truth AS (SELECT te.c, te.p FROM te JOIN users USING (c) ANTI JOIN owned USING (c, p)),
nx AS (
    SELECT r.c, n.dst AS p, sum(n.score) AS s FROM recent r JOIN users USING (c) JOIN rel n ON n.src = r.p
    GROUP BY ALL
),
nx_rank AS (
    SELECT c, p, row_number() OVER (PARTITION BY c ORDER BY s DESC, p) AS rk
    FROM (SELECT * FROM nx ANTI JOIN owned USING (c, p))
),
pop AS (SELECT p, count(DISTINCT c) AS n FROM recent GROUP BY p),
pop_rank AS (
    SELECT c, p, row_number() OVER (PARTITION BY c ORDER BY n DESC, p) AS rk
    FROM (SELECT u.c, pop.p, pop.n FROM users u CROSS JOIN (SELECT * FROM pop ORDER BY n DESC, p LIMIT 500) pop)
    ANTI JOIN owned USING (c, p)
),
score AS (
    SELECT 'next' AS method, c, count(*) FILTER (WHERE t.p IS NOT NULL) AS hits, count(*) AS shown
    FROM nx_rank LEFT JOIN truth t USING (c, p) WHERE rk <= $k GROUP BY ALL
    UNION ALL
    SELECT 'popular', c, count(*) FILTER (WHERE t.p IS NOT NULL), count(*)
    FROM pop_rank LEFT JOIN truth t USING (c, p) WHERE rk <= $k GROUP BY ALL
)
SELECT method, (SELECT count(*) FROM users) AS users, count(*) AS users_with_predictions,
       sum(hits) / ((SELECT count(*) FROM users) * $k) AS precision_at_k,
       avg(CASE WHEN hits > 0 THEN 1.0 ELSE 0.0 END) * count(*) / (SELECT count(*) FROM users) AS hit_rate
FROM score GROUP BY method ORDER BY method
"""


def time_split(
    orders: pa.Table, products: pa.Table, cutoff: dt.datetime, window: int, k: int, cfg: NextConfig
) -> dict[str, Any]:
    """Precision@k of "next" vs popularity for customers active around ``cutoff`` (module doc)."""
    train = orders.filter(pc.less(orders.column("ts"), pa.scalar(cutoff, pa.timestamp("us"))))
    rel, _ = next_relations(train, products, window, cfg)
    con = duckdb.connect()
    con.register("o", orders.select(["customer_id", "product_id", "ts"]))
    con.register("rel", rel.select(["src", "dst", "score"]))
    rows = con.execute(_SPLIT_SQL, {"cut": cutoff, "w": window, "k": k}).fetchall()
    con.close()
    out: dict[str, Any] = {"cutoff": cutoff.date().isoformat(), "train_relations": rel.num_rows, "k": k}
    for method, users, covered, prec, hit in rows:
        out["users"] = int(users)
        out[method] = {
            "precision_at_k": round(float(prec or 0), 4),
            "hit_rate": round(float(hit or 0), 4),
            "users_with_predictions": int(covered),
        }
    return out


def run(
    data_dir: Path | None = None, window: int = 90, cutoff: str = "2011-09-01", top: int = 15, k: int = 10
) -> dict[str, Any]:
    """Everything the command prints, as a dict (the slow test calls this)."""
    t0 = time.perf_counter()
    loaded = loaders.load_dataset("online_retail", data_dir=data_dir)
    t_load = time.perf_counter() - t0
    cfg = NextConfig()
    t0 = time.perf_counter()
    rel, report = next_relations(loaded.orders, loaded.products, window, cfg)
    t_next = time.perf_counter() - t0
    titles = dict(
        zip(
            loaded.products.column("product_id").to_pylist(),
            loaded.products.column("title").to_pylist(),
            strict=True,
        )
    )
    best = rel.take(
        pc.sort_indices(rel, sort_keys=[("score", "descending"), ("src", "ascending"), ("dst", "ascending")])
    ).slice(0, top)
    top_rows = []
    for r in best.to_pylist():
        ev = json.loads(r["evidence"])
        top_rows.append(
            {
                "src": r["src"],
                "src_title": titles.get(r["src"]),
                "dst": r["dst"],
                "dst_title": titles.get(r["dst"]),
                "score": r["score"],
                **{
                    key: ev.get(key)
                    for key in (
                        "after_count",
                        "before_count",
                        "returning_customers",
                        "confidence",
                        "lift",
                        "asymmetry",
                        "median_gap_days",
                    )
                },
            }
        )
    t0 = time.perf_counter()
    chk = checks(loaded.orders, rel, window)
    split = time_split(loaded.orders, loaded.products, dt.datetime.fromisoformat(cutoff), window, k, cfg)
    return {
        "window_days": window,
        "returning_customers": report["returning_customers"],
        "seconds": {
            "load": round(t_load, 2),
            "next_relations": round(t_next, 2),
            "checks_and_split": round(time.perf_counter() - t0, 2),
        },
        "top": top_rows,
        "checks": chk,
        "time_split": split,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--window", type=int, default=90)
    ap.add_argument("--cutoff", default="2011-09-01")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run(a.data_dir, a.window, a.cutoff, a.top, a.k)
    if a.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    print(
        f"Online Retail: {out['checks']['relations']:,} next relations (window {a.window} days, "
        f"{out['returning_customers']:,} returning customers); seconds {out['seconds']}"
    )
    print(f"{'score':>6} {'after':>5} {'before':>6} {'conf':>6} {'lift':>6} {'gap':>5}  src → dst")
    for r in out["top"]:
        print(
            f"{r['score']:6.3f} {r['after_count']:5d} {r['before_count']:6d} {r['confidence']:6.3f} {r['lift']:6.2f} "
            f"{r['median_gap_days'] or 0:5.0f}  {r['src']} {r['src_title']} → {r['dst']} {r['dst_title']}"
        )
    print("checks:", json.dumps(out["checks"]))
    s = out["time_split"]
    print(
        f"time split at {s['cutoff']} ({s['train_relations']:,} relations from earlier orders; {s['users']:,} customers):"
    )
    for m in ("next", "popular"):
        print(
            f"  {m:<8} precision@{s['k']} {s[m]['precision_at_k']:.4f}  hit rate {s[m]['hit_rate']:.4f}  "
            f"customers with predictions {s[m]['users_with_predictions']:,}"
        )


if __name__ == "__main__":
    main()

""" "Next purchase" on UCI Online Retail I: tiein's "next" relations against baselines on a
held-out time split, plus the build's own checks.

    .venv/bin/python bench/next_purchase.py [--window 90] [--cutoffs 2011-09-01,2011-06-01] [--k 10]

Protocol (per cutoff; everything trained on the orders before the cutoff only):

- customers: active on both sides (an order in the ``window`` days before the cutoff and one in
  the ``window`` days after it) with at least one target;
- targets: the products new to the customer (never bought before the cutoff) bought within the
  ``window`` days after it;
- anchors: the customer's products of the ``window`` days before the cutoff; every method ranks
  products the customer never bought, best ``k`` shown;
- methods, side by side: popularity (customers whose first purchase of the product was in the
  last ``window`` days before the cutoff and who had ordered before: returning customers, new
  items), "bought later" raw counts (mining's after counts, any purchase, summed over the
  anchors), same-basket co-occurrence (``n_ab`` summed), SAR-jaccard
  (``n_ab / (n_a + n_b - n_ab)`` summed), tiein next with summed scores and with reciprocal-rank
  aggregation (each anchor's list contributes ``1 / rank``);
- metrics: P@k (hits / k, averaged over customers), HR@k (customers with a hit), R@k (hits /
  targets, averaged); the ratio of tiein to the best baseline of each metric;
- direction out of sample: for each relation src → dst, the customers who bought neither before
  the cutoff and both after it (first purchase of each, different times); the share whose first
  dst came first ("backwards"). The same for each baseline's 20 best partners per product
  (bought-later counts, SAR-jaccard) as a reference.

Checks on all the orders: the pairs kept both ways (bought in either order about as often) and
the lowest asymmetry of any relation (never below ``min_asymmetry``: a pair bought mostly the
other way round is not "next"), median gaps within the window, and the first-purchase after
counts of a sample of relations equal an independent SQL recount from the order lines.

The defaults (``NextConfig``: min_asymmetry, same_order_weight) were chosen on validation splits
inside the training months: ``--cutoffs 2011-03-01`` on the orders before 2011-06-01 (for both
test splits) and 2011-06-01 on the orders before 2011-09-01 (for the 2011-09-01 split; its test
months are the 2011-06-01 split's), by the lower of the two ratios to the best baseline; the
2011-09-01 split was not looked at to choose them. ``--until`` truncates the orders.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from tiein import loaders  # noqa: E402
from tiein.features import next_candidates  # noqa: E402
from tiein.mining import mine_pairs  # noqa: E402
from tiein.next_purchase import NextConfig, classify_next  # noqa: E402

BASELINES = ("popular", "bought_later", "co_count", "sar_jaccard")
TIEIN = ("tiein_sum", "tiein_rr")


def next_relations(
    orders: pa.Table, products: pa.Table, window: int, cfg: NextConfig
) -> tuple[pa.Table, dict[str, Any], pa.Table]:
    """The build's path (mine_pairs → next_candidates → classify_next): the "next" relations
    of ``orders``, the mining + next report and the mined PAIR_STATS."""
    mined = mine_pairs(orders, min_count=min(2, cfg.min_customers), after_window_days=window)
    feats = next_candidates(products, mined.pairs, mined.timeline, min_count=cfg.min_customers)
    rep: dict[str, Any] = {}
    rel = classify_next(
        feats, mined.report["returning_customers"], cfg, window_days=window, orders=orders, report=rep
    )
    return rel, {**mined.report, "next": rep}, mined.pairs


def independent_after_counts(
    orders: pa.Table, pairs: pa.Table, window: int, max_items: int = 1000
) -> dict[tuple[str, str], int]:
    """Customers whose first dst came strictly after their first src, within ``window`` days, for
    each (src, dst) of ``pairs``: plain SQL over the order lines, no tiein code (customers with
    more than ``max_items`` distinct products left out, the documented rule)."""
    con = duckdb.connect()
    con.register("o", orders.select(["customer_id", "product_id", "ts"]))
    con.register("k", pairs.select(["src", "dst"]))
    rows = con.execute(
        """
        WITH f AS (SELECT customer_id c, product_id p, min(ts) t FROM o
                   WHERE customer_id IS NOT NULL AND ts IS NOT NULL GROUP BY ALL),
        ok AS (SELECT c FROM f GROUP BY c HAVING count(*) <= $m)
        SELECT k.src, k.dst, count(*)
        FROM k JOIN f a ON a.p = k.src JOIN f b ON b.c = a.c AND b.p = k.dst
        WHERE a.c IN (SELECT c FROM ok) AND b.t > a.t AND b.t <= a.t + to_days(CAST($w AS INTEGER))
        GROUP BY ALL
        """,
        {"w": window, "m": max_items},
    ).fetchall()
    con.close()
    return {(s, d): int(n) for s, d, n in rows}


def checks(orders: pa.Table, rel: pa.Table, window: int, sample: int = 200) -> dict[str, Any]:
    """Pairs kept both ways and the lowest asymmetry, gaps within the window, after counts equal
    to an independent recount."""
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
        "mirrored_pairs": mirrored // 2,
        "min_asymmetry": min((e["asymmetry"] for e in ev), default=None),
        "max_median_gap_days": max(gaps) if gaps else None,
        "gaps_within_window": all(0 <= g <= window for g in gaps),
        "recounted": len(claimed),
        "recount_mismatches": sum(1 for key, n in claimed.items() if recount.get(key, 0) != n),
    }


_TASK_SQL = """
WITH tr AS (SELECT DISTINCT customer_id c, product_id p, ts FROM o WHERE customer_id IS NOT NULL AND ts < $cut),
te AS (SELECT DISTINCT customer_id c, product_id p FROM o
       WHERE customer_id IS NOT NULL AND ts >= $cut AND ts < $cut + to_days(CAST($w AS INTEGER))),
recent AS (SELECT DISTINCT c, p FROM tr WHERE ts >= $cut - to_days(CAST($w AS INTEGER))),
owned AS (SELECT DISTINCT c, p FROM tr),
truth0 AS (SELECT te.c, te.p FROM te ANTI JOIN owned USING (c, p)),
users AS (SELECT DISTINCT c FROM recent WHERE c IN (SELECT c FROM truth0)),
truth AS (SELECT * FROM truth0 WHERE c IN (SELECT c FROM users)),
ntruth AS (SELECT c, count(*) AS nt FROM truth GROUP BY c),
first_tr AS (SELECT c, p, min(ts) AS f FROM tr GROUP BY ALL),
ret_new AS (SELECT DISTINCT f.c, f.p FROM first_tr f JOIN tr ON tr.c = f.c AND tr.ts < f.f
              WHERE f.f >= $cut - to_days(CAST($w AS INTEGER))),
pop AS (SELECT p, count(*) AS s FROM ret_new GROUP BY p ORDER BY s DESC, p LIMIT 300),
sym AS (SELECT a, b, n_ab, n_a, n_b, after_ab AS later FROM pairs
        UNION ALL SELECT b, a, n_ab, n_b, n_a, after_ba FROM pairs),
rel_rk AS (SELECT src, dst, score, row_number() OVER (PARTITION BY src ORDER BY score DESC, dst) AS rk FROM rel),
cand AS (
    SELECT 'popular' AS method, u.c, pop.p, pop.s FROM users u CROSS JOIN pop
    UNION ALL SELECT 'bought_later', r.c, s.b, sum(s.later) FROM recent r JOIN users USING (c)
        JOIN sym s ON s.a = r.p WHERE s.later > 0 GROUP BY ALL
    UNION ALL SELECT 'co_count', r.c, s.b, sum(s.n_ab) FROM recent r JOIN users USING (c)
        JOIN sym s ON s.a = r.p WHERE s.n_ab > 0 GROUP BY ALL
    UNION ALL SELECT 'sar_jaccard', r.c, s.b, sum(s.n_ab / (s.n_a + s.n_b - s.n_ab)) FROM recent r JOIN users USING (c)
        JOIN sym s ON s.a = r.p WHERE s.n_ab > 0 GROUP BY ALL
    UNION ALL SELECT 'tiein_sum', r.c, n.dst, sum(n.score) FROM recent r JOIN users USING (c)
        JOIN rel_rk n ON n.src = r.p GROUP BY ALL
    UNION ALL SELECT 'tiein_rr', r.c, n.dst, sum(1.0 / n.rk) FROM recent r JOIN users USING (c)
        JOIN rel_rk n ON n.src = r.p GROUP BY ALL
),
ranked AS (
    SELECT method, c, p, row_number() OVER (PARTITION BY method, c ORDER BY s DESC, p) AS rk
    FROM (SELECT * FROM cand ANTI JOIN owned USING (c, p))
),
per_user AS (
    SELECT m.method, u.c,
           coalesce(count(t.p), 0) AS hits, coalesce(count(r.p), 0) AS shown
    FROM (SELECT DISTINCT method FROM cand) m CROSS JOIN users u
    LEFT JOIN ranked r ON r.method = m.method AND r.c = u.c AND r.rk <= $k
    LEFT JOIN truth t ON t.c = r.c AND t.p = r.p
    GROUP BY ALL
)
SELECT method, count(*) AS users, avg(hits) / $k AS p_at_k, avg(CASE WHEN hits > 0 THEN 1.0 ELSE 0.0 END) AS hr_at_k,
       avg(hits / nt) AS r_at_k, avg(CASE WHEN shown > 0 THEN 1.0 ELSE 0.0 END) AS covered
FROM per_user JOIN ntruth USING (c) GROUP BY method ORDER BY method
"""

_BACKWARD_SQL = """
WITH before AS (SELECT DISTINCT customer_id c, product_id p FROM o WHERE customer_id IS NOT NULL AND ts < $cut),
after AS (SELECT customer_id c, product_id p, min(ts) AS f FROM o
          WHERE customer_id IS NOT NULL AND ts >= $cut GROUP BY ALL),
fresh AS (SELECT * FROM after ANTI JOIN before USING (c, p)),
inst AS (
    SELECT l.list, a.f AS fs, b.f AS fd
    FROM lists l JOIN fresh a ON a.p = l.src JOIN fresh b ON b.c = a.c AND b.p = l.dst
    WHERE a.f <> b.f
)
SELECT list, count(*) AS customers, avg(CASE WHEN fd < fs THEN 1.0 ELSE 0.0 END) AS backwards
FROM inst GROUP BY list ORDER BY list
"""


def split_task(
    orders: pa.Table, products: pa.Table, cutoff: dt.datetime, window: int, k: int, cfg: NextConfig
) -> dict[str, Any]:
    """The next-purchase task at ``cutoff`` (module doc): every method's P@k, HR@k, R@k, the
    relations' backward share out of sample, and tiein's build cost on the training orders."""
    train = orders.filter(pc.less(orders.column("ts"), pa.scalar(cutoff, pa.timestamp("us"))))
    t0 = time.perf_counter()
    rel, report, pairs = next_relations(train, products, window, cfg)
    seconds = time.perf_counter() - t0
    con = duckdb.connect()
    con.register("o", orders.select(["customer_id", "product_id", "ts"]))
    con.register("rel", rel.select(["src", "dst", "score"]))
    con.register("pairs", pairs.select(["a", "b", "n_ab", "n_a", "n_b", "after_ab", "after_ba"]))
    params = {"cut": cutoff, "w": window, "k": k}
    rows = con.execute(_TASK_SQL, params).fetchall()
    lists = con.sql(
        """
        SELECT 'tiein' AS list, src, dst FROM rel
        UNION ALL SELECT * FROM (
            SELECT 'bought_later', a, b FROM (SELECT a, b, after_ab AS s FROM pairs UNION ALL SELECT b, a, after_ba FROM pairs)
            WHERE s > 0 QUALIFY row_number() OVER (PARTITION BY a ORDER BY s DESC, b) <= 20)
        UNION ALL SELECT * FROM (
            SELECT 'sar_jaccard', a, b FROM (SELECT a, b, n_ab / (n_a + n_b - n_ab) AS s FROM pairs WHERE n_ab > 0
                                             UNION ALL SELECT b, a, n_ab / (n_a + n_b - n_ab) FROM pairs WHERE n_ab > 0)
            QUALIFY row_number() OVER (PARTITION BY a ORDER BY s DESC, b) <= 20)
        """
    ).to_arrow_table()
    con.register("lists", lists)
    back = con.execute(_BACKWARD_SQL, {"cut": cutoff}).fetchall()
    con.close()
    methods = {
        m: {"p_at_k": float(p), "hr_at_k": float(h), "r_at_k": float(r), "covered": float(cov)}
        for m, _u, p, h, r, cov in rows
    }
    users = int(rows[0][1]) if rows else 0
    best = {
        key: max(methods[m][key] for m in BASELINES if m in methods)
        for key in ("p_at_k", "hr_at_k", "r_at_k")
    }
    ratios = {
        m: {key: (methods[m][key] / best[key] if best[key] else None) for key in best}
        for m in TIEIN
        if m in methods
    }
    return {
        "cutoff": cutoff.date().isoformat(),
        "k": k,
        "users": users,
        "relations": rel.num_rows,
        "dropped_by_direction": report["next"].get("dropped_by_direction"),
        "build_seconds": round(seconds, 2),
        "methods": methods,
        "best_baseline": best,
        "ratios": ratios,
        "backwards": {lst: {"customers": int(n), "share": float(s)} for lst, n, s in back},
    }


def run(
    data_dir: Path | None = None,
    window: int = 90,
    cutoffs: tuple[str, ...] = ("2011-09-01", "2011-06-01"),
    k: int = 10,
    cfg: NextConfig | None = None,
    full_checks: bool = True,
    until: str | None = None,
) -> dict[str, Any]:
    """Everything the command prints, as a dict (the slow test calls this). ``until``: only the
    orders before that date (a validation split inside the training months)."""
    cfg = cfg or NextConfig()
    t0 = time.perf_counter()
    loaded = loaders.load_dataset("online_retail", data_dir=data_dir)
    if until:
        end = pa.scalar(dt.datetime.fromisoformat(until), pa.timestamp("us"))
        loaded = dataclasses.replace(
            loaded, orders=loaded.orders.filter(pc.less(loaded.orders.column("ts"), end))
        )
    out: dict[str, Any] = {"window_days": window, "config": cfg.to_dict(), "seconds": {}}
    out["seconds"]["load"] = round(time.perf_counter() - t0, 2)
    if full_checks:
        t0 = time.perf_counter()
        rel, report, _ = next_relations(loaded.orders, loaded.products, window, cfg)
        out["seconds"]["next_relations_all_orders"] = round(time.perf_counter() - t0, 2)
        out["next_report"] = report["next"]
        out["checks"] = checks(loaded.orders, rel, window)
    out["splits"] = [
        split_task(loaded.orders, loaded.products, dt.datetime.fromisoformat(c), window, k, cfg)
        for c in cutoffs
    ]
    return out


def table(split: dict[str, Any]) -> str:
    """One split as a text table, tiein's ratios to the best baseline underneath."""
    k = split["k"]
    lines = [
        f"split {split['cutoff']}: {split['users']:,} customers, {split['relations']:,} relations "
        f"({split['dropped_by_direction']:,} dropped by the held-back direction check), built in "
        f"{split['build_seconds']} s",
        f"  {'method':<14} {'P@' + str(k):>7} {'HR@' + str(k):>7} {'R@' + str(k):>7} {'covered':>8}",
    ]
    for m in (*BASELINES, *TIEIN):
        r = split["methods"].get(m)
        if r:
            lines.append(
                f"  {m:<14} {r['p_at_k']:7.4f} {r['hr_at_k']:7.4f} {r['r_at_k']:7.4f} {r['covered']:8.3f}"
            )
    for m, r in split["ratios"].items():
        lines.append(
            f"  {m + ' / best':<14} "
            + " ".join(f"{v:6.2f}x" if v is not None else "   n/a " for v in r.values())
        )
    back = ", ".join(f"{lst} {v['share']:.1%} of {v['customers']:,}" for lst, v in split["backwards"].items())
    lines.append(f"  backwards out of sample (customers new to both after the split): {back}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--window", type=int, default=90)
    ap.add_argument("--cutoffs", default="2011-09-01,2011-06-01")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument(
        "--until", help="only the orders before this date (validation inside the training months)"
    )
    ap.add_argument("--no-checks", action="store_true", help="skip the build on all orders and its checks")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run(
        a.data_dir, a.window, tuple(a.cutoffs.split(",")), a.k, full_checks=not a.no_checks, until=a.until
    )
    if a.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if "checks" in out:
        print(
            f"all orders: next relations in {out['seconds']['next_relations_all_orders']} s; report {out['next_report']}"
        )
        print("checks:", json.dumps(out["checks"]))
    for s in out["splits"]:
        print(table(s))


if __name__ == "__main__":
    main()

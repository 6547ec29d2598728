"""Seasonal vs year-round relations on Online Retail I (``bench/quality.py --seasonal``).

Protocol (a time split at the Christmas season of this giftware shop):

  train  invoices before 2011-11-01 (Dec 2010 - Oct 2011), the real build
  test   invoices from 2011-11-01 (Nov - 9 Dec 2011), products seen in training, ≥ 2 of them

Tasks as bench/quality.py (tiein complements): cart completion (hide one item per test basket,
rank by the cart edges' cart weights summed; HR@10, MRR@10) and anchor (every item of a test
basket as anchor, its top 10 by score; HR@10, P@10). "year-round" ranks as without ``at``;
"seasonal" ranks each basket at its own date: every edge's weight × its monthly lift for the
basket's month to the power ``strength`` (tiein.season.season_weight), anchors re-ranking their
best SEASON_POOL × 10 complements as tiein related does, carts every kept complement as tiein
addons does.

Tuning, on the training months only: the training baskets are split 80/20 by
sha1(seed:order_id); a second build on the 80 % gives relations whose season evidence is
recomputed for each prior (tiein.season.season_evidence) and scored at each strength on the 20 %
(each validation basket at its own month). The best (prior, strength) by mean of cart and anchor
HR@10 is then applied to the test build's relations; the test baskets are never looked at while
tuning. Also printed: the ten most seasonal complement pairs of the test build.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import quality_metrics as qm

SPLIT = dt.datetime(2011, 11, 1)
PRIORS = (3.0, 5.0, 10.0, 30.0)
STRENGTHS = (0.5, 1.0, 2.0)
VALIDATION_SHARE = 0.8  # of the training baskets: the rest validates


def _log(msg: str) -> None:
    print(msg, flush=True)


def _relations(home: Path) -> pa.Table:
    from tiein.home import inputs_dir

    t = pq.read_table(inputs_dir(home) / "graph" / "relations.parquet")
    return t.filter(pc.equal(t.column("kind"), "complement"))


def _edges(relations: pa.Table) -> dict[str, Any]:
    """Per complement edge: src, dst, score, cart weight, monthly lifts (12 columns) and its rank
    by score among its source's complements."""
    src = relations.column("src").to_pylist()
    dst = relations.column("dst").to_pylist()
    score = np.array(relations.column("score").to_pylist(), dtype=np.float64)
    cart = score.copy()
    months = np.ones((len(src), 12))
    for i, ev in enumerate(relations.column("evidence").to_pylist()):
        e = json.loads(ev) if ev else {}
        if e.get("cart_weight") is not None:
            cart[i] = float(e["cart_weight"])
        m = (e.get("season") or {}).get("months")
        if m:
            months[i] = m
    order = sorted(range(len(src)), key=lambda i: (src[i], -score[i], dst[i]))
    rank = np.zeros(len(src), dtype=np.int64)
    prev, r = None, 0
    for i in order:
        r = r + 1 if src[i] == prev else 0
        prev = src[i]
        rank[i] = r
    return {"src": src, "dst": dst, "score": score, "cart": cart, "months": months, "rank": rank}


def _by_month(orders: pa.Table, index: qm.ItemIndex) -> dict[int, dict[str, list[int]]]:
    """Test baskets (≥ 2 products known to training) grouped by their month."""
    first: dict[str, dt.datetime] = {}
    items: dict[str, set[int]] = {}
    for o, p, ts in zip(
        orders.column("order_id").to_pylist(),
        orders.column("product_id").to_pylist(),
        orders.column("ts").to_pylist(),
        strict=True,
    ):
        if ts is None or p not in index.pos:
            continue
        first[o] = min(first.get(o, ts), ts)
        items.setdefault(o, set()).add(index.pos[p])
    out: dict[int, dict[str, list[int]]] = {}
    for o, b in items.items():
        if len(b) >= 2:
            out.setdefault(first[o].month, {})[o] = sorted(b)
    return out


def evaluate(
    edges: dict[str, Any],
    months: dict[int, dict[str, list[int]]],
    index: qm.ItemIndex,
    pop: np.ndarray,
    strength: float | None,
    seed: int,
) -> dict[str, Any]:
    """Cart and anchor metrics over the baskets of every month; ``strength`` None: year-round."""
    from tiein.season import SEASON_POOL

    parts: list[tuple[dict[str, float], dict[str, float]]] = []
    by_month: dict[int, dict[str, Any]] = {}
    pool = edges["rank"] < SEASON_POOL * qm.K
    for month, baskets in sorted(months.items()):
        w = np.ones(len(edges["src"])) if strength is None else edges["months"][:, month - 1] ** strength
        rows = list(zip(edges["src"], edges["dst"], strict=True))
        cart_s = qm.relation_matrix(
            ((s, d, v) for (s, d), v in zip(rows, edges["cart"] * w, strict=True)), index
        )
        anchor_rows = [
            (s, d, v) for (s, d), v, keep in zip(rows, edges["score"] * w, pool, strict=True) if keep
        ]
        if strength is None:  # year-round: every kept complement by score, as the store answers
            anchor_rows = [(s, d, v) for (s, d), v in zip(rows, edges["score"], strict=True)]
        anchor_s = qm.relation_matrix(anchor_rows, index)
        cases = qm.cart_cases(baskets, seed, None)
        cart = qm.cart_metrics(qm.cart_lists(cart_s, cases, pop), cases)
        items = sorted({a for b in baskets.values() for a in b})
        anchor = qm.anchor_metrics(qm.anchor_lists(anchor_s, items, pop), baskets.values())
        parts.append((cart, anchor))
        by_month[month] = {"cart": cart, "anchor": anchor}

    def pooled(task: int, key: str) -> float:
        n = sum(p[task]["n"] for p in parts)
        return float(sum(p[task][key] * p[task]["n"] for p in parts) / n) if n else float("nan")

    return {
        "cart": {"hr": pooled(0, "hr"), "mrr": pooled(0, "mrr"), "n": sum(p[0]["n"] for p in parts)},
        "anchor": {"hr": pooled(1, "hr"), "p": pooled(1, "p"), "n": sum(p[1]["n"] for p in parts)},
        "by_month": by_month,
    }


def _reseason(relations: pa.Table, orders: pa.Table, prior: float) -> pa.Table:
    """``relations`` with their season evidence recomputed at ``prior`` (as a build with
    ``--season-prior`` gives)."""
    from tiein.model import MINING
    from tiein.season import SeasonConfig, season_evidence

    ev = relations.column("evidence").to_pylist()
    stripped = [e.split(',"season":', 1)[0] + "}" if e and ',"season":' in e else e for e in ev]
    idx = relations.schema.get_field_index("evidence")
    bare = relations.set_column(idx, relations.schema.field(idx), pa.array(stripped, pa.string()))
    out, _ = season_evidence(orders, bare, SeasonConfig(prior=prior), max_basket=MINING.max_basket)
    return out


def run(*, build: Any, home_root: Path, threads: int | None, seed: int) -> dict[str, Any]:
    """The protocol above; ``build(name, products, train, home, threads)`` is
    bench/quality_tiein.py's build_tiein."""
    from tiein import loaders
    from tiein.season import STRENGTH, most_seasonal

    t0 = time.perf_counter()
    loaded = loaders.load_dataset("online_retail")
    orders = loaded.orders
    is_train = pc.fill_null(pc.less(orders.column("ts"), pa.scalar(SPLIT, pa.timestamp("us"))), False)
    train, test = orders.filter(is_train), orders.filter(pc.invert(is_train))
    ids = train.column("order_id").to_pylist()
    side = {o: qm.hash_unit(o, seed) < VALIDATION_SHARE for o in set(ids)}
    in_fit = pa.array([side[o] for o in ids], pa.bool_())
    fit, val = train.filter(in_fit), train.filter(pc.invert(in_fit))
    cache = home_root / "online_retail" / "cache"  # titles embedded by bench/quality.py already

    def home_for(name: str) -> Path:
        home = home_root / name
        if cache.is_dir() and not (home / "cache").exists():
            shutil.copytree(cache, home / "cache")
        return home

    # 1. tuning on the training months: build on 80 %, validate on 20 %
    tv = time.perf_counter()
    vhome = home_for("online_retail_season_validation")
    build("online_retail", loaded.products, fit, vhome, threads)
    vindex = qm.ItemIndex(p for p in fit.column("product_id").to_pylist())
    vpop = qm.popularity_order(qm.basket_matrix(list(_baskets(fit).values()), vindex))
    vmonths = _by_month(val, vindex)
    vrel = _relations(vhome)
    grid: list[dict[str, Any]] = [
        {"prior": None, "strength": None, **evaluate(_edges(vrel), vmonths, vindex, vpop, None, seed)}
    ]
    for prior in PRIORS:
        edges = _edges(_reseason(vrel, fit, prior))
        for strength in STRENGTHS:
            r = evaluate(edges, vmonths, vindex, vpop, strength, seed)
            grid.append({"prior": prior, "strength": strength, **r})
            _log(
                f"[seasonal] validation prior {prior:g} strength {strength:g}: cart HR@10 "
                f"{r['cart']['hr']:.4f}, anchor HR@10 {r['anchor']['hr']:.4f}"
            )
    _log(
        f"[seasonal] validation year-round: cart HR@10 {grid[0]['cart']['hr']:.4f}, anchor HR@10 "
        f"{grid[0]['anchor']['hr']:.4f} ({time.perf_counter() - tv:.0f} s)"
    )
    best = max(grid[1:], key=lambda g: (g["cart"]["hr"] + g["anchor"]["hr"], -g["prior"], -g["strength"]))

    # 2. the test: train before 2011-11-01, test baskets after
    home = home_for("online_retail_season")
    summary = build("online_retail", loaded.products, train, home, threads)
    index = qm.ItemIndex(p for p in train.column("product_id").to_pylist())
    pop = qm.popularity_order(qm.basket_matrix(list(_baskets(train).values()), index))
    months = _by_month(test, index)
    rel = _relations(home)
    methods = {
        "year-round": evaluate(_edges(rel), months, index, pop, None, seed),
        f"seasonal (prior 10, strength {STRENGTH:g}: the defaults)": evaluate(
            _edges(rel), months, index, pop, STRENGTH, seed
        ),
        f"seasonal (prior {best['prior']:g}, strength {best['strength']:g}: tuned on validation)": evaluate(
            _edges(_reseason(rel, train, best["prior"])), months, index, pop, best["strength"], seed
        ),
    }
    titles = dict(
        zip(
            loaded.products.column("product_id").to_pylist(),
            loaded.products.column("title").to_pylist(),
            strict=True,
        )
    )
    top = [
        {**r, "src_title": titles.get(r["src"]), "dst_title": titles.get(r["dst"])}
        for r in most_seasonal(rel, 10)
    ]
    return {
        "protocol": f"time split: train before {SPLIT:%Y-%m-%d}, test from then on (Nov - Dec 2011)",
        "test_baskets": {m: len(b) for m, b in months.items()},
        "validation": {
            "share": VALIDATION_SHARE,
            "grid": grid,
            "best": {k: best[k] for k in ("prior", "strength")},
        },
        "methods": methods,
        "most_seasonal": top,
        "season_step_seconds": round(summary["seconds"].get("season", 0.0), 2),
        "build_seconds": round(summary["seconds"].get("total", 0.0), 1),
        "seasonal_relations": summary.get("season"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _baskets(orders: pa.Table) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for o, p in zip(
        orders.column("order_id").to_pylist(), orders.column("product_id").to_pylist(), strict=True
    ):
        out.setdefault(o, set()).add(p)
    return {o: sorted(b) for o, b in out.items()}


def table(r: dict[str, Any]) -> str:
    lines = [
        f"online_retail seasonal — {r['protocol']}; test baskets by month {r['test_baskets']}; "
        f"validation best {r['validation']['best']}",
        "| method | cart HR@10 | cart MRR@10 | anchor HR@10 | anchor P@10 | n (cart / anchor) |",
        "|---|---|---|---|---|---|",
    ]
    base = r["methods"]["year-round"]
    for m, v in r["methods"].items():
        c, a = v["cart"], v["anchor"]
        lines.append(
            f"| {m} | {c['hr']:.4f} ({c['hr'] / base['cart']['hr']:.3f}×) | {c['mrr']:.4f} | "
            f"{a['hr']:.4f} ({a['hr'] / base['anchor']['hr']:.3f}×) | {a['p']:.4f} | {c['n']:,} / {a['n']:,} |"
        )
    for month in sorted(base["by_month"]):
        b = base["by_month"][month]
        cells = []
        for m, v in r["methods"].items():
            c, a = v["by_month"][month]["cart"], v["by_month"][month]["anchor"]
            cells.append(
                f"{m.split(' (')[0]}{'' if m == 'year-round' else ' ' + m.split(' (')[1].split(':')[0]}: "
                f"cart HR@10 {c['hr']:.4f} ({c['hr'] / b['cart']['hr']:.3f}×), anchor HR@10 {a['hr']:.4f}"
            )
        lines.append(f"month {month} ({b['cart']['n']:,} carts): " + "; ".join(cells))
    lines.append(
        f"season step {r['season_step_seconds']} s of a {r['build_seconds']} s build; {r['seasonal_relations']}"
    )
    lines.append("ten most seasonal complement pairs (shrunk peak lift, share of co-purchases in the peak):")
    for p in r["most_seasonal"]:
        lines.append(
            f"  {p['src']} {p['src_title']} → {p['dst']} {p['dst_title']}: {p['peak_en']} ×{p['lift']:.2f}, "
            f"{p['share']:.0%} of {p['bought_together']}"
        )
    return "\n".join(lines)

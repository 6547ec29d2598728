"""Fitting the complement ranker from the shop's own orders, and what a learnt pair adds to a
cart (see :mod:`tiein.ranker` for the method)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.mining import mine_pairs
from tiein.ranker.model import (
    BASKET_UNIT,
    ComplementRanker,
    RankerConfig,
    feature_dict,
    fit_ranker,
)

ArrayLike = Any


# --- from pair probabilities to a cart ---------------------------------------------------------

#: exponents :func:`choose_cart_exponent` tries
CART_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def cart_weight(score: ArrayLike, n_dst: ArrayLike, n_baskets: ArrayLike, exponent: float) -> np.ndarray:
    """What one complement edge adds to a cart's add-on score: ``score / base_rate(dst) **
    exponent`` with ``base_rate = n_dst / n_baskets`` (the share of orders holding dst; the score
    unchanged where it is unknown). Exponent 0 sums the probabilities; 1 sums probability over
    base rate (a calibrated lift), which keeps best sellers from filling every big cart.

    >>> cart_weight(np.array([0.2, 0.2]), np.array([100, 10]), np.array([1000, 1000]), 1.0).tolist()
    [2.0, 20.0]
    >>> cart_weight(np.array([0.2]), np.array([0]), np.array([0]), 1.0).tolist()
    [0.2]
    """
    s = np.asarray(score, dtype=np.float64)
    n_d = np.asarray(n_dst, dtype=np.float64)
    n = np.asarray(n_baskets, dtype=np.float64)
    ok = (n_d > 0) & (n > 0)
    base = np.where(ok, n_d / np.where(ok, n, 1.0), 1.0)
    return np.where(ok, s / base**exponent, s)


def choose_cart_exponent(
    src: np.ndarray,
    dst: np.ndarray,
    score: np.ndarray,
    base: np.ndarray,
    carts: list[np.ndarray],
    hidden: np.ndarray,
    n_items: int,
    exponents: tuple[float, ...] = CART_EXPONENTS,
) -> tuple[float, dict[str, float]]:
    """The exponent of :func:`cart_weight` that completes most held-out carts: edges
    ``src[i] → dst[i]`` (item positions < ``n_items``) with ``score`` and dst base rate ``base``;
    each cart (item positions) misses its ``hidden`` item, which should be in the top 10 of the
    summed weights (cart items excluded). Ties go to the smaller exponent. Returns (exponent,
    {exponent: hit rate}).

    Cart [0, 1] hides 3: the popular item 2 wins on summed probabilities, the rare item 3 on
    probability over base rate... with a top 10 of one item only this would matter, so here
    both make the top 10 and the smaller exponent wins the tie:

    >>> choose_cart_exponent(np.array([0, 1, 0]), np.array([2, 2, 3]), np.array([0.5, 0.5, 0.3]),
    ...                      np.array([0.5, 0.5, 0.05]), [np.array([0, 1])], np.array([3]), 4)
    (0.0, {'0.0': 1.0, '0.25': 1.0, '0.5': 1.0, '0.75': 1.0, '1.0': 1.0})
    """
    hit_rates: dict[str, float] = {}
    best, best_hr = 0.0, -1.0
    if not carts:
        return best, hit_rates
    # every edge leaving a cart item, once per cart: (cart row, dst, score, base)
    order = np.argsort(src, kind="stable")
    src_s, dst_s, score_s, base_s = src[order], dst[order], score[order], np.maximum(base[order], 1e-12)
    indptr = np.searchsorted(src_s, np.arange(n_items + 1))
    items = np.concatenate(carts)
    cart_of = np.repeat(np.arange(len(carts)), [c.size for c in carts])
    starts, ends = indptr[items], indptr[items + 1]
    counts = ends - starts
    edge = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
    row = np.repeat(cart_of, counts)
    for e in exponents:
        w = score_s[edge] / base_s[edge] ** e
        hits = 0
        for a in range(0, len(carts), 64):
            b = min(a + 64, len(carts))
            sel = (row >= a) & (row < b)
            S = np.zeros((b - a, n_items))
            np.add.at(S, (row[sel] - a, dst_s[edge[sel]]), w[sel])
            in_cart = cart_of[(cart_of >= a) & (cart_of < b)]
            S[in_cart - a, items[(cart_of >= a) & (cart_of < b)]] = -1.0
            top = (
                np.argpartition(-S, 9, axis=1)[:, :10]
                if n_items > 10
                else np.tile(np.arange(n_items), (b - a, 1))
            )
            h = hidden[a:b]
            ok = S[np.arange(h.size), h] > 0
            hits += int((ok & (top == h[:, None]).any(axis=1)).sum())
        hr = hits / len(carts)
        hit_rates[str(e)] = round(hr, 4)
        if hr > best_hr + 1e-12:
            best, best_hr = e, hr
    return best, hit_rates


_WEIGHT_SQL = """
WITH l AS (SELECT DISTINCT order_id, product_id FROM o),
sz AS (SELECT order_id, count(*) AS s FROM l GROUP BY order_id HAVING count(*) BETWEEN 2 AND $max_basket),
lw AS (SELECT l.order_id, l.product_id, CAST($unit // sz.s AS BIGINT) AS w FROM l JOIN sz USING (order_id)),
iw AS (SELECT product_id, sum(w)::BIGINT AS w FROM lw GROUP BY product_id),
cu AS (SELECT DISTINCT least(src, dst) AS a, greatest(src, dst) AS b FROM cand),
pw AS (
    SELECT cu.a, cu.b, sum(x.w)::BIGINT AS w
    FROM cu JOIN lw x ON x.product_id = cu.a JOIN lw y ON y.order_id = x.order_id AND y.product_id = cu.b
    GROUP BY ALL
)
SELECT c.i, coalesce(pw.w, 0) AS w_ab, coalesce(s.w, 0) AS w_src, coalesce(d.w, 0) AS w_dst
FROM cand c
LEFT JOIN pw ON pw.a = least(c.src, c.dst) AND pw.b = greatest(c.src, c.dst)
LEFT JOIN iw s ON s.product_id = c.src
LEFT JOIN iw d ON d.product_id = c.dst
ORDER BY c.i
"""


def with_basket_weights(
    features: pa.Table, orders: pa.Table, max_basket: int, min_pair_count: int
) -> pa.Table:
    """``features`` with ``w_ab`` / ``w_src`` / ``w_dst``: orders holding both / src / dst, each
    weighing ``BASKET_UNIT // basket size`` (a pair in a 200-product wholesale order says less
    than in a 3-product one; baskets over ``max_basket`` are skipped, as the miner does). Only
    rows with ``min_pair_count`` co-purchases get them (0 elsewhere): complements need that."""
    import duckdb

    n_ab = features.column("n_ab").to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(n_ab >= min_pair_count)
    w = {c: np.zeros(features.num_rows, dtype=np.int64) for c in ("w_ab", "w_src", "w_dst")}
    if idx.size and orders.num_rows:
        con = duckdb.connect()
        con.register("o", orders.select(["order_id", "product_id"]))
        con.register(
            "cand",
            pa.table(
                {
                    "i": pa.array(idx),
                    "src": features.column("src").take(pa.array(idx)),
                    "dst": features.column("dst").take(pa.array(idx)),
                }
            ),
        )
        out = con.sql(
            _WEIGHT_SQL, params={"max_basket": int(max_basket), "unit": BASKET_UNIT}
        ).to_arrow_table()
        con.close()
        rows = out.column("i").to_numpy()
        for c in w:
            w[c][rows] = out.column(c).to_numpy()
    for c, v in w.items():
        features = features.append_column(c, pa.array(v, pa.int64()))
    return features


# --- fitting from the shop's orders -----------------------------------------------------------

_SPLIT_SQL = """
SELECT order_id, row_number() OVER (ORDER BY t NULLS FIRST, md5(order_id)) AS i
FROM (SELECT order_id, min(ts) AS t FROM o GROUP BY order_id)
"""


def split_orders(orders: pa.Table, holdout_share: float) -> tuple[pa.Table, pa.Table]:
    """(feature, label) order lines: the latest ``holdout_share`` of the baskets by time (then by
    md5 of the order id; baskets without a time count as earliest) are the label side."""
    import duckdb

    con = duckdb.connect()
    con.register("o", orders.select(["order_id", "ts"]))
    rank = con.sql(_SPLIT_SQL).to_arrow_table()
    con.close()
    total = rank.num_rows
    cut = total - int(round(total * holdout_share))
    late_ids = rank.filter(pa.compute.greater(rank.column("i"), cut)).column("order_id")
    is_late = pa.compute.is_in(orders.column("order_id"), value_set=late_ids.combine_chunks())
    return orders.filter(pa.compute.invert(is_late)), orders.filter(is_late)


def fit_from_orders(
    products: pa.Table,
    orders: pa.Table,
    *,
    features: Any,
    min_count: int,
    max_basket: int,
    after_window_days: int | None,
    min_pair_count: int,
    baseline: Any,
    min_probability: float = 0.002,
    keep_per_src: int = 20,
    threads: int | None = None,
    cfg: RankerConfig | None = None,
    relation_cfg: Any = None,
) -> tuple[ComplementRanker | None, dict[str, Any]]:
    """Fit the ranker from ``orders`` (ORDERS) as the module docstring says. ``features(pairs)``
    returns the candidate feature table for pair statistics (the build's own
    :func:`tiein.features.candidate_features` with everything but the pairs bound), and
    ``baseline(f)`` the hand-set complement score of a feature dict. Candidates need
    ``min_pair_count`` co-purchases in the feature baskets (or a listed pair), as complements do.
    The cart exponent (:func:`cart_weight`) is then chosen on the label baskets with the
    relations classification would keep (``min_probability``, ``keep_per_src``). With content
    sets in the features, pairs shown together are candidates too (``relation_cfg``: the
    tiein.relations.RelationConfig that says how, default its defaults)."""

    cfg = cfg or RankerConfig()
    if not cfg.enabled:
        return None, {"fitted": False, "reason": "disabled"}
    if orders.num_rows == 0:
        return None, {"fitted": False, "reason": "no orders"}
    early, late = split_orders(orders, cfg.holdout_share)
    if early.num_rows == 0 or late.num_rows == 0:
        return None, {"fitted": False, "reason": "too few baskets to split"}
    mined = mine_pairs(
        early,
        min_count=min_count,
        max_basket=max_basket,
        after_window_days=after_window_days,
        threads=threads,
    )
    table = with_basket_weights(features(mined.pairs), early, max_basket, min_pair_count)
    f = feature_dict(table)
    eligible = (f["n_ab"] >= min_pair_count) | (f["listed_buy"] > 0)
    if "n_sets" in f:  # shown together in content sets: a candidate as in classification
        from tiein.content_sets import shown_score
        from tiein.relations import RelationConfig

        eligible |= np.asarray(shown_score(f, relation_cfg or RelationConfig()), dtype=np.float64) > 0
    lab = with_basket_weights(
        table.select(["src", "dst", "n_ab"]).filter(pa.array(eligible)), late, max_basket, min_pair_count
    )
    i = np.flatnonzero(eligible)
    k = lab.column("w_ab").to_numpy() / BASKET_UNIT
    n = lab.column("w_src").to_numpy() / BASKET_UNIT
    keep = n > 0
    i, k, n = i[keep], k[keep], n[keep]
    sub = {c: v[i] for c, v in f.items()}
    model, report = fit_ranker(sub, k, n, baseline(sub), cfg)
    report["feature_baskets"] = int(mined.report.get("baskets", 0))
    report["label_baskets"] = int(late.group_by("order_id").aggregate([]).num_rows)
    if model is None:
        return None, report
    exponent, report["cart_hit_rates"] = _cart_exponent(
        model, f, eligible, late, min_probability, keep_per_src
    )
    fitted = ComplementRanker(
        model.weights, model.intercept, model.mean, model.scale, report, exponent, names=model.names
    )
    return fitted, fitted.describe()


def _cart_exponent(
    model: ComplementRanker,
    f: dict[str, np.ndarray],
    eligible: np.ndarray,
    late: pa.Table,
    min_probability: float,
    keep_per_src: int,
    max_carts: int = 2000,
) -> tuple[float, dict[str, float]]:
    """:func:`choose_cart_exponent` on the label baskets, with the relations the feature baskets
    give (each src's best ``keep_per_src`` complements scoring ≥ ``min_probability``); up to
    ``max_carts`` baskets (by md5 of the order id), each hiding one item (by crc32)."""
    import hashlib

    idx = np.flatnonzero(eligible)
    p = model.predict({c: v[idx] for c, v in f.items()})
    keep = p >= min_probability
    idx, p = idx[keep], p[keep]
    src, dst = f["src"][idx].astype(str), f["dst"][idx].astype(str)
    order = np.lexsort((dst, -p, src))
    src, dst, p, idx = src[order], dst[order], p[order], idx[order]
    starts = np.r_[0, np.flatnonzero(src[1:] != src[:-1]) + 1] if src.size else np.array([], dtype=np.int64)
    rank = np.arange(src.size) - np.repeat(starts, np.diff(np.r_[starts, src.size]))
    top = rank < keep_per_src
    src, dst, p, idx = src[top], dst[top], p[top], idx[top]
    items, inv = np.unique(np.r_[src, dst], return_inverse=True)
    si, di = inv[: src.size], inv[src.size :]
    n_b = np.maximum(f["n_baskets"][idx].astype(np.float64), 1.0) if "n_baskets" in f else np.ones(idx.size)
    base = f["n_dst"][idx] / n_b if "n_dst" in f else np.ones(idx.size)
    pos = {x: i for i, x in enumerate(items.tolist())}
    baskets: dict[str, set[int]] = {}
    for o, q in zip(late.column("order_id").to_pylist(), late.column("product_id").to_pylist(), strict=True):
        if (j := pos.get(q)) is not None:
            baskets.setdefault(o, set()).add(j)
    chosen = sorted(
        (hashlib.md5(o.encode("utf-8")).hexdigest(), o) for o, b in baskets.items() if len(b) >= 2
    )
    carts, hidden = [], []
    for _, o in chosen[:max_carts]:
        b = sorted(baskets[o])
        h = b.pop(zlib.crc32(o.encode("utf-8")) % len(b))
        carts.append(np.array(b, dtype=np.int64))
        hidden.append(h)
    return choose_cart_exponent(si, di, p, base, carts, np.array(hidden, dtype=np.int64), len(items))

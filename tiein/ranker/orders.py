"""Fitting the complement ranker from the shop's own orders, and what a learnt pair adds to a
cart (see :mod:`tiein.ranker` for the method)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa

from tiein.mining import mine_pairs
from tiein.mining.kernels import _encode_sorted, shared_order_codes, sorted_unique
from tiein.mining.weighted import weighted_pair_counts
from tiein.ranker.model import (
    BASKET_UNIT,
    ComplementRanker,
    RankerConfig,
    feature_dict,
    fit_ranker,
    fit_sample,
    held_anchors,
)

ArrayLike = Any


# --- from pair probabilities to a cart ---------------------------------------------------------

#: base-rate exponents (``a``), sharpening powers (``g``) and title-similarity boosts (``s``)
#: :func:`choose_cart_weighting` tries
CART_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)
CART_GAMMAS = (1.0, 1.5, 2.0)
CART_SIMILARITY = (0.0, 1.0, 2.0)


@dataclass(frozen=True)
class CartWeighting:
    """How one complement edge counts in a cart's add-on score (:func:`cart_weight`):
    ``score ** gamma * exp(similarity * title similarity) / base_rate(dst) ** exponent``.

    exponent: the base-rate discount (0 sums probabilities; 1 keeps best sellers from filling
        every big cart).
    gamma: sharpening (1 sums the edges; above 1 one strong edge outweighs several weak ones).
    similarity: how much a title like a cart item's counts (0: not at all).
    """

    exponent: float = 0.0
    gamma: float = 1.0
    similarity: float = 0.0

    def key(self) -> str:
        return f"a={self.exponent:g} g={self.gamma:g} s={self.similarity:g}"


def cart_weight(
    score: ArrayLike,
    n_dst: ArrayLike,
    n_baskets: ArrayLike,
    exponent: float,
    gamma: float = 1.0,
    similarity: ArrayLike = 0.0,
    boost: float = 0.0,
) -> np.ndarray:
    """What one complement edge adds to a cart's add-on score: ``score ** gamma * exp(boost *
    similarity) / base_rate(dst) ** exponent`` with ``base_rate = n_dst / n_baskets`` (the share of
    orders holding dst; no division where it is unknown; a NaN similarity counts 0). Exponent 0
    and gamma 1 sum the probabilities; exponent 1 sums probability over base rate (a calibrated
    lift), which keeps best sellers from filling every big cart; gamma above 1 lets one strong
    edge outweigh several weak ones.

    >>> cart_weight(np.array([0.2, 0.2]), np.array([100, 10]), np.array([1000, 1000]), 1.0).tolist()
    [2.0, 20.0]
    >>> cart_weight(np.array([0.2]), np.array([0]), np.array([0]), 1.0).tolist()
    [0.2]
    >>> cart_weight(np.array([0.2]), np.array([0]), np.array([0]), 0.0, 2.0, np.array([0.5]), 2.0).round(4).tolist()
    [0.1087]
    """
    s = np.asarray(score, dtype=np.float64)
    n_d = np.asarray(n_dst, dtype=np.float64)
    n = np.asarray(n_baskets, dtype=np.float64)
    ok = (n_d > 0) & (n > 0)
    base = np.where(ok, n_d / np.where(ok, n, 1.0), 1.0)
    sim = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=0.0)
    w = np.power(np.maximum(s, 0.0), gamma) * np.exp(boost * sim)
    return np.where(ok, w / base**exponent, w)


def round_significant(x: ArrayLike, digits: int = 6) -> np.ndarray:
    """``x`` rounded to ``digits`` significant digits (a weight of 3e-9 stays 3e-9, not 0).

    >>> round_significant(np.array([123.456789, 3.14159e-9, 0.0])).tolist()
    [123.457, 3.14159e-09, 0.0]
    """
    v = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(v != 0, np.floor(np.log10(np.abs(np.where(v != 0, v, 1.0)))), 0.0)
    scale = 10.0 ** (digits - 1 - mag)
    return cast(np.ndarray, np.round(v * scale) / scale)


class _CartCases:
    """Held-out carts against candidate edges: the hit rate at 10 of any edge weighting
    (:meth:`hit_rate`). The edge expansion is done once, in chunks of ``chunk`` carts whose
    columns are only the items those carts can reach (plus their own and hidden items), so an
    evaluation costs the edges, not carts × catalog."""

    def __init__(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        carts: list[np.ndarray],
        hidden: np.ndarray,
        n_items: int,
        chunk: int = 256,
    ) -> None:
        order = np.argsort(src, kind="stable")
        src_s, dst_s = src[order], dst[order]
        indptr = np.searchsorted(src_s, np.arange(n_items + 1))
        items = np.concatenate(carts) if carts else np.zeros(0, dtype=np.int64)
        cart_of = np.repeat(np.arange(len(carts)), [c.size for c in carts])
        starts, ends = indptr[items], indptr[items + 1]
        counts = ends - starts
        edge = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        row = np.repeat(cart_of, counts)
        self.pick = order[edge]  # weight[self.pick] = each expanded edge's weight
        self.n = len(carts)
        # per chunk: (expanded edges, flat cell of each, excluded cells, hidden column, rows, width)
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]] = []
        for a in range(0, self.n, chunk):
            b = min(a + chunk, self.n)
            sel = np.flatnonzero((row >= a) & (row < b))
            mine = (cart_of >= a) & (cart_of < b)
            h = hidden[a:b]
            # sorted unique columns keep the items' order, so ties still go by position
            cols = np.unique(np.r_[dst_s[edge[sel]], items[mine], h])
            width = cols.size
            flat = (row[sel] - a) * width + np.searchsorted(cols, dst_s[edge[sel]])
            excluded = (cart_of[mine] - a) * width + np.searchsorted(cols, items[mine])
            self.chunks.append((sel, flat, excluded, np.searchsorted(cols, h), b - a, width))

    def hit_rate(self, weight: np.ndarray) -> float:
        """Share of carts whose hidden item is in the top 10 of the summed ``weight`` (one per
        edge, in the order given to the constructor), cart items excluded; ties by position."""
        w = np.asarray(weight, dtype=np.float64)[self.pick]
        hits = 0
        for sel, flat, excluded, h, rows, width in self.chunks:
            S = np.bincount(flat, weights=w[sel], minlength=rows * width)
            S[excluded] = -1.0
            S = S.reshape(rows, width)
            target = S[np.arange(rows), h]
            # the hidden item is in the top 10 when fewer than 10 items beat it (ties by position)
            better = (S > target[:, None]).sum(axis=1) + (
                (S == target[:, None]) & (np.arange(width)[None, :] < h[:, None])
            ).sum(axis=1)
            hits += int(((target > 0) & (better < 10)).sum())
        return hits / self.n if self.n else 0.0


def choose_cart_weighting(
    src: np.ndarray,
    dst: np.ndarray,
    score: np.ndarray,
    base: np.ndarray,
    similarity: np.ndarray,
    carts: list[np.ndarray],
    hidden: np.ndarray,
    n_items: int,
) -> tuple[CartWeighting, dict[str, float]]:
    """The :class:`CartWeighting` that completes most held-out carts: edges ``src[i] → dst[i]``
    (item positions < ``n_items``) with ``score``, dst base rate ``base`` and title
    ``similarity``; each cart (item positions) misses its ``hidden`` item, which should be in the
    top 10 of the summed weights (cart items excluded). A coordinate search from summed
    probabilities: the exponent (:data:`CART_EXPONENTS`), then every power (:data:`CART_GAMMAS`)
    with every exponent, then the similarity boost (:data:`CART_SIMILARITY`);
    a step is taken only when it completes more carts, so ties keep the simpler weighting.
    Returns (weighting, {key: hit rate} of every weighting tried).

    Cart [0] hides 12, a rare add-on (P 0.2, base 0.01) behind eleven best sellers (P 0.5, base
    0.5): summed probabilities miss it, over base rate to the power 0.25 it is first:

    >>> w, rates = choose_cart_weighting(np.zeros(12, dtype=np.int64), np.arange(1, 13),
    ...     np.r_[np.full(11, 0.5), 0.2], np.r_[np.full(11, 0.5), 0.01], np.zeros(12),
    ...     [np.array([0])], np.array([12]), 13)
    >>> w, rates["a=0 g=1 s=0"]
    (CartWeighting(exponent=0.25, gamma=1.0, similarity=0.0), 0.0)
    """
    rates: dict[str, float] = {}
    if not carts:
        return CartWeighting(), rates
    cases = _CartCases(src, dst, carts, hidden, n_items)
    base = np.maximum(base, 1e-12)

    def rate(cw: CartWeighting) -> float:
        if cw.key() not in rates:
            w = cart_weight(score, base, np.ones_like(base), cw.exponent, cw.gamma, similarity, cw.similarity)
            rates[cw.key()] = round(cases.hit_rate(w), 4)
        return rates[cw.key()]

    best = CartWeighting()

    def step(options: list[CartWeighting]) -> None:
        nonlocal best
        for cw in options:
            if rate(cw) > rate(best) + 1e-12:
                best = cw

    step([CartWeighting(e, 1.0, 0.0) for e in CART_EXPONENTS])
    step([CartWeighting(e, g, 0.0) for g in CART_GAMMAS[1:] for e in CART_EXPONENTS])
    step([CartWeighting(best.exponent, best.gamma, s) for s in CART_SIMILARITY[1:]])
    return best, rates


def with_basket_weights(
    features: pa.Table, orders: pa.Table, max_basket: int, min_pair_count: int
) -> pa.Table:
    """``features`` with ``w_ab`` / ``w_src`` / ``w_dst``: orders holding both / src / dst, each
    weighing ``BASKET_UNIT // basket size`` (a pair in a 200-product wholesale order says less
    than in a 3-product one; baskets over ``max_basket`` are skipped, as the miner does; counted
    by :func:`tiein.mining.weighted.weighted_pair_counts`). Only rows with ``min_pair_count``
    co-purchases get them (0 elsewhere): complements need that."""
    n_ab = features.column("n_ab").to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(n_ab >= min_pair_count)
    w = {c: np.zeros(features.num_rows, dtype=np.int64) for c in ("w_ab", "w_src", "w_dst")}
    if idx.size and orders.num_rows:
        take = pa.array(idx)
        got = weighted_pair_counts(
            orders,
            features.column("src").take(take),
            features.column("dst").take(take),
            max_basket=max_basket,
            unit=BASKET_UNIT,
        )
        for c, v in zip(w, got, strict=True):
            w[c][idx] = v
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


def _sample_anchors(pairs: pa.Table, max_anchors: int) -> tuple[pa.Table, dict[str, Any] | None]:
    """The pair statistics the fit needs when it learns from at most ``max_anchors`` anchors
    (the ends of ``pairs``): every pair touching an anchor of the sample (:func:`fit_sample`),
    so the sampled anchors' candidate features are exactly those of all the pairs (a candidate
    depends on its anchor's pairs and the two products only; the same decomposition as
    tiein.spark_classify's buckets), and what was sampled (None: every anchor)."""
    if max_anchors <= 0 or pairs.num_rows == 0:
        return pairs, None
    import pyarrow.compute as pc

    ends = pa.chunked_array([*pairs.column("a").chunks, *pairs.column("b").chunks])
    anchors = pc.unique(ends)
    if len(anchors) <= max_anchors:
        return pairs, None
    share = max_anchors / len(anchors)
    keep = fit_sample(pairs.column("a"), share) | fit_sample(pairs.column("b"), share)
    sampled = int(fit_sample(anchors, share).sum())
    return pairs.filter(pa.array(keep)), {"share": share, "anchors": sampled, "of": len(anchors)}


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
    feature_baskets = int(mined.report.get("baskets", 0))
    pairs = mined.pairs
    del mined  # its timeline and counts: not needed here
    pairs, sample = _sample_anchors(pairs, cfg.max_anchors)
    table = features(pairs)
    del pairs
    if sample is not None:  # the sampled anchors' rows: exactly what all the pairs give them
        table = table.filter(pa.array(fit_sample(table.column("src"), sample["share"])))
    table = with_basket_weights(table, early, max_basket, min_pair_count)
    f = feature_dict(table, ids=False)
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
    held = held_anchors(table.column("src"))[i]
    model, report = fit_ranker(sub, k, n, baseline(sub), cfg, held=held)
    del sub
    report["feature_baskets"] = feature_baskets
    if sample is not None:
        report["anchor_sample"] = sample
    report["label_baskets"] = int(late.group_by("order_id").aggregate([]).num_rows)
    if model is None:
        return None, report
    weighting, report["cart_hit_rates"] = _cart_weighting(
        model,
        f,
        eligible,
        late,
        min_probability,
        keep_per_src,
        ids=(table.column("src"), table.column("dst")),
    )
    fitted = ComplementRanker(
        model.weights,
        model.intercept,
        model.mean,
        model.scale,
        report,
        weighting.exponent,
        names=model.names,
        cart_gamma=weighting.gamma,
        cart_similarity=weighting.similarity,
    )
    return fitted, fitted.describe()


def _cart_weighting(
    model: ComplementRanker,
    f: dict[str, np.ndarray],
    eligible: np.ndarray,
    late: pa.Table,
    min_probability: float,
    keep_per_src: int,
    ids: tuple[pa.ChunkedArray, pa.ChunkedArray],
    max_carts: int = 2000,
) -> tuple[CartWeighting, dict[str, float]]:
    """:func:`choose_cart_weighting` on the label baskets, with the relations the feature baskets
    give (each src's best ``keep_per_src`` complements scoring ≥ ``min_probability``); up to
    ``max_carts`` baskets (by md5 of the order id), each hiding one item (by crc32). ``ids``: the
    src and dst columns of the feature table ``f`` came from."""
    import hashlib

    import pyarrow.compute as pc

    idx = np.flatnonzero(eligible)
    p = model.predict({c: v[idx] for c, v in f.items()})
    keep = p >= min_probability
    idx, p = idx[keep], p[keep]
    # src and dst as codes in string order over one dictionary (sorting codes sorts the ids)
    (src_codes, dst_codes), names = shared_order_codes(list(ids))
    src, dst = src_codes[idx], dst_codes[idx]
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
    # the label baskets as sets of those items: distinct (order, item) sorted by order, then item
    item = pc.index_in(late.column("product_id").cast(pa.string()), value_set=names.take(pa.array(items)))
    known = pc.is_valid(item)
    orders, order_names = _encode_sorted(late.column("order_id").cast(pa.string()).filter(known))
    j = item.filter(known).to_numpy(zero_copy_only=False).astype(np.int64)
    pair = sorted_unique(orders * max(items.size, 1) + j)
    o, j = pair // max(items.size, 1), pair % max(items.size, 1)
    bounds = np.r_[0, np.flatnonzero(o[1:] != o[:-1]) + 1, o.size] if o.size else np.zeros(1, np.int64)
    sizes = np.diff(bounds)
    multi = np.flatnonzero(sizes >= 2)
    order_ids: list[str] = order_names.take(pa.array(o[bounds[multi]])).to_pylist() if multi.size else []
    chosen = sorted(
        (hashlib.md5(oid.encode("utf-8")).hexdigest(), oid, int(k))
        for oid, k in zip(order_ids, multi.tolist(), strict=True)
    )
    carts, hidden = [], []
    for _, oid, k in chosen[:max_carts]:
        b = j[bounds[k] : bounds[k + 1]].tolist()
        h = b.pop(zlib.crc32(oid.encode("utf-8")) % len(b))
        carts.append(np.array(b, dtype=np.int64))
        hidden.append(h)
    sim = f["similarity"][idx].astype(np.float64) if "similarity" in f else np.zeros(idx.size)
    return choose_cart_weighting(si, di, p, base, sim, carts, np.array(hidden, dtype=np.int64), len(items))

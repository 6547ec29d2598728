"""Complement ranking learnt from the shop's own baskets.

The hand-set complement score (:func:`tiein.relations.complement_score`: shrunk confidence ×
(1 − 1/lift) × category and title damping) has constants that suit no shop in particular, gives
staples (lift ≈ 1) nothing, and is not comparable across anchors, so summing it over a cart lets a
few items dominate. Instead, each build fits a small model of

    P(dst is in a basket | src is in it)

on a time split *inside* the shop's own orders, and the complement score becomes that
probability: calibrated (a cart's add-ons are ranked by the sum of the probabilities over its
items) and weighted for this shop.

How the fit works (:func:`fit_from_orders`, all deterministic: the same orders give the same
weights, so ``tiein update`` gives what a build gives):

1. split the baskets: the latest ``holdout_share`` of them by time (ties and baskets without a
   time by md5 of the order id) are the *label* baskets, the rest the *feature* baskets;
2. mine pair statistics from the feature baskets and build the same candidate features as a build
   (:func:`tiein.features.candidate_features`);
3. label every candidate src → dst whose src is in label baskets: ``k`` = label baskets holding
   both, ``n`` = label baskets holding src, each basket weighing 1 / its size (a binomial target:
   P(dst | src) with every basket counting once as a whole, as a cart does, instead of a
   500-product wholesale order counting as 250,000 pairs);
4. fit a logistic regression (Newton / IRLS with a small L2 penalty, numpy only) on the
   standardised :data:`FEATURES`; report the AUC on a held-out fifth of the anchors (by crc32 of
   the src id) next to the AUC of the hand-set score on the same rows.

Why logistic regression and not a gradient-boosted ranker: it gives probabilities (what summing
over a cart needs; a lambdarank score has no scale), it needs no new dependency, it fits in about
2 s on a million candidate pairs, it is deterministic, and its 21 weights can be read in the
build's meta (``complement_ranker``).

Fallback: a shop with fewer than ``min_positives`` labelled pairs bought together (or without
orders) keeps the documented hand-set score of :func:`tiein.relations.complement_score`; the meta
says ``{"fitted": false, "reason": ...}``.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = Any

#: The model's inputs, each computed by :func:`design_matrix` from a candidate feature table.
FEATURES = (
    "log_n_ab",  # log1p(bought together)
    "confidence",  # n_ab / (n_src + 5): P(dst | src), shrunk
    "reverse_confidence",  # n_ab / (n_dst + 5): P(src | dst), shrunk
    "cosine",  # n_ab / sqrt(n_src * n_dst)
    "jaccard",  # n_ab / (n_src + n_dst - n_ab)
    "log_lift",  # log lift (0 without co-purchase), clipped to ±5
    "log_pop_dst",  # log share of baskets holding dst
    "log_pop_src",  # log share of baskets holding src
    "similarity",  # title-embedding cosine (0 unknown)
    "cat_same",  # category relation one-hot (different = 0)
    "cat_sibling",
    "cat_unknown",
    "log_price_ratio",  # log(price dst / price src), clipped to ±3 (0 unknown)
    "price_unknown",
    "after_share",  # (after_sd + 1) / (after_sd + after_ds + 2) - 0.5: bought after src
    "log_after",  # log1p(after_sd)
    "log_co_view",  # log1p(viewed together)
    "listed_buy",  # the shop's own "also bought" lists (0/1/2)
    "same_line",  # same brand / product line
    "log_basket_weighted",  # log1p(co-purchases weighted 1 / basket size): BM25's signal
    "basket_weighted_cosine",  # the same over sqrt(src's and dst's weighted orders)
)


@dataclass(frozen=True)
class RankerConfig:
    """How the complement ranker is fitted (:func:`fit_from_orders`).

    enabled: fit at all (False: the hand-set score everywhere).
    holdout_share: share of the baskets, the latest by time, whose pairs are the labels.
    min_positives: labelled candidate pairs bought together a fit needs; below it the shop is too
        small to learn from and keeps the hand-set score.
    l2: L2 penalty on the standardised weights (the intercept is not penalised).
    max_iter: Newton steps at most.
    """

    enabled: bool = True
    holdout_share: float = 0.2
    min_positives: int = 200
    l2: float = 1.0
    max_iter: int = 30

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ComplementRanker:
    """Fitted weights: ``predict`` = sigmoid(intercept + Σ weights · (x − mean) / scale)."""

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)
    cart_exponent: float = 0.0  # see cart_weight; chosen per shop by choose_cart_exponent

    def predict(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """P(dst in basket | src in basket) for every row of a feature dict (columns of
        :data:`tiein.relations.FEATURE_COLUMNS`, optionally ``n_dst`` and ``n_baskets``)."""
        x = (design_matrix(f) - self.mean) / self.scale
        return _sigmoid(self.intercept + x @ self.weights)

    def describe(self) -> dict[str, Any]:
        """What the build's meta keeps: the standardised weights by feature, the intercept and
        the fit report (rows, positives, AUCs)."""
        return {
            "fitted": True,
            "model": "logistic regression (IRLS, L2) on standardised features",
            "weights": {n: round(float(w), 4) for n, w in zip(FEATURES, self.weights, strict=True)},
            "intercept": round(float(self.intercept), 4),
            "cart_exponent": self.cart_exponent,
            **self.report,
        }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0))))


def _col(f: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    v = f.get(name)
    if v is None:
        return np.full(n, np.nan)
    return np.asarray(v, dtype=np.float64)


def design_matrix(f: dict[str, np.ndarray]) -> np.ndarray:
    """The :data:`FEATURES` of every candidate row as a float matrix (rows × features), finite.

    ``n_dst`` (baskets holding dst), ``n_baskets`` (baskets counted) and the basket-size
    weighted counts ``w_ab``, ``w_src``, ``w_dst`` (:func:`with_basket_weights`) may be missing;
    their columns are then 0.

    >>> f = {"n_ab": np.array([10]), "n_src": np.array([20]), "n_dst": np.array([40]),
    ...      "n_baskets": np.array([1000]), "lift": np.array([12.5]), "similarity": np.array([np.nan]),
    ...      "cat_rel": np.array([2]), "price_ratio": np.array([0.5]), "after_sd": np.array([3]),
    ...      "after_ds": np.array([1]), "co_view": np.array([0]), "listed_buy": np.array([0]),
    ...      "same_line": np.array([False])}
    >>> dict(zip(FEATURES, design_matrix(f)[0].round(3).tolist()))["cosine"]
    0.354
    """
    n_ab = _col(f, "n_ab", len(f["n_ab"]))
    n = n_ab.size
    n_src, n_dst, total = _col(f, "n_src", n), _col(f, "n_dst", n), _col(f, "n_baskets", n)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = n_ab / (n_src + 5.0)
        rconf = n_ab / (n_dst + 5.0)
        cos = n_ab / np.sqrt(n_src * n_dst)
        jac = n_ab / (n_src + n_dst - n_ab)
        lift = _col(f, "lift", n)
        log_lift = np.where((n_ab > 0) & (lift > 0), np.log(lift), 0.0)
        pop_d = np.log((n_dst + 1.0) / (total + 1.0))
        pop_s = np.log((n_src + 1.0) / (total + 1.0))
        ratio = _col(f, "price_ratio", n)
        known = np.isfinite(ratio) & (ratio > 0)
        log_ratio = np.where(known, np.log(np.where(known, ratio, 1.0)), 0.0)
    a, b = _col(f, "after_sd", n), _col(f, "after_ds", n)
    w_ab, w_src, w_dst = (_col(f, c, n) / BASKET_UNIT for c in ("w_ab", "w_src", "w_dst"))
    with np.errstate(divide="ignore", invalid="ignore"):
        w_cos = w_ab / np.sqrt(w_src * w_dst)
    cat = np.nan_to_num(_col(f, "cat_rel", n), nan=3.0)
    cols = [
        np.log1p(np.maximum(n_ab, 0.0)),
        conf,
        rconf,
        cos,
        jac,
        np.clip(log_lift, -5.0, 5.0),
        pop_d,
        pop_s,
        np.nan_to_num(_col(f, "similarity", n), nan=0.0),
        (cat == 0).astype(np.float64),
        (cat == 1).astype(np.float64),
        (cat == 3).astype(np.float64),
        np.clip(log_ratio, -3.0, 3.0),
        (~known).astype(np.float64),
        (a + 1.0) / (a + b + 2.0) - 0.5,
        np.log1p(np.maximum(a, 0.0)),
        np.log1p(np.maximum(_col(f, "co_view", n), 0.0)),
        _col(f, "listed_buy", n),
        _col(f, "same_line", n),
        np.log1p(w_ab),
        w_cos,
    ]
    x = np.column_stack(cols)
    return cast(np.ndarray, np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))


def fit_logistic(
    x: np.ndarray, k: np.ndarray, n: np.ndarray, l2: float = 1.0, max_iter: int = 30
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Binomial logistic regression by Newton's method: row i saw ``k[i]`` successes in ``n[i]``
    trials. Features are standardised first (constant columns get scale 1). Returns
    (weights, intercept, mean, scale).

    One feature that separates the rows: its weight comes out positive, and the fitted
    probabilities follow the observed rates.

    >>> x = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> w, b, m, s = fit_logistic(x, np.array([1, 1, 8, 8]), np.array([10, 10, 10, 10]), l2=0.0)
    >>> bool(w[0] > 0), [round(float(p), 2) for p in _sigmoid(b + ((x - m) / s) @ w)]
    (True, [0.1, 0.1, 0.8, 0.8])
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = np.column_stack([np.ones(x.shape[0]), (x - mean) / scale])
    rate = min(max(k.sum() / max(n.sum(), 1.0), 1e-6), 1 - 1e-6)
    w = np.zeros(z.shape[1])
    w[0] = np.log(rate / (1 - rate))
    pen = np.full(z.shape[1], float(l2))
    pen[0] = 0.0

    def objective(w: np.ndarray) -> float:  # penalised log-likelihood, to be maximised
        eta = z @ w
        return float((k * eta - n * np.logaddexp(0.0, eta)).sum() - 0.5 * (pen * w * w).sum())

    current = objective(w)
    for _ in range(max_iter):
        p = _sigmoid(z @ w)
        grad = z.T @ (k - n * p) - pen * w
        hess = (z * (n * p * (1 - p))[:, None]).T @ z + np.diag(pen + 1e-6 * max(n.sum(), 1.0) / n.size)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-4:  # backtracking: a full Newton step can overshoot on collinear features
            trial = objective(w + t * step)
            if trial >= current:
                break
            t /= 2.0
        else:
            break
        w, gain, current = w + t * step, trial - current, trial
        if gain < 1e-9 * max(abs(current), 1.0):
            break
    return w[1:], float(w[0]), mean, scale


def auc(score: np.ndarray, label: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes.

    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    label = np.asarray(label, dtype=bool)
    pos, neg = int(label.sum()), int((~label).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(score, kind="stable")
    s = np.asarray(score, dtype=np.float64)[order]
    ranks = np.empty(s.size)
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(s) != 0) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[a:b] = (a + b + 1) / 2.0
    r = np.empty(s.size)
    r[order] = ranks
    return round(float((r[label].sum() - pos * (pos + 1) / 2) / (pos * neg)), 4)


def fit_ranker(
    f: dict[str, np.ndarray],
    k: np.ndarray,
    n: np.ndarray,
    baseline: np.ndarray,
    cfg: RankerConfig | None = None,
) -> tuple[ComplementRanker | None, dict[str, Any]]:
    """Fit on labelled candidate rows (feature dict ``f``; ``k`` label baskets with both, ``n``
    with src); ``baseline`` is the hand-set score of the same rows, for the report. Returns
    (None, report) when there are fewer than ``cfg.min_positives`` positive rows.

    The validation fifth is chosen by crc32 of the src id (whole anchors held out), the final
    weights are fitted on all rows."""
    cfg = cfg or RankerConfig()
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    positives = int((k > 0).sum())
    report: dict[str, Any] = {
        "rows": int(k.size),
        "positives": positives,
        "label_weight": round(float(n.sum()), 1),
    }
    if positives < cfg.min_positives:
        return None, {
            "fitted": False,
            "reason": f"{positives} labelled pairs bought together, below {cfg.min_positives}",
            **report,
        }
    x = design_matrix(f)
    src = f["src"]
    uniq, inv = np.unique(src.astype(str), return_inverse=True)
    held_src = np.array([zlib.crc32(s.encode("utf-8")) % 5 == 0 for s in uniq.tolist()], dtype=bool)
    held = held_src[inv]
    if (k[held] > 0).any() and (k[~held] > 0).any():
        w, b, m, s = fit_logistic(x[~held], k[~held], n[~held], cfg.l2, cfg.max_iter)
        pred = _sigmoid(b + ((x[held] - m) / s) @ w)
        report["validation_auc"] = auc(pred, k[held] > 0)
        report["validation_auc_hand_set"] = auc(np.asarray(baseline, dtype=np.float64)[held], k[held] > 0)
    w, b, m, s = fit_logistic(x, k, n, cfg.l2, cfg.max_iter)
    return ComplementRanker(w, b, m, s, report), report


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


BASKET_UNIT = 720720  # a basket of s products weighs BASKET_UNIT // s: integer sums are exact

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
) -> tuple[ComplementRanker | None, dict[str, Any]]:
    """Fit the ranker from ``orders`` (ORDERS) as the module docstring says. ``features(pairs)``
    returns the candidate feature table for pair statistics (the build's own
    :func:`tiein.features.candidate_features` with everything but the pairs bound), and
    ``baseline(f)`` the hand-set complement score of a feature dict. Candidates need
    ``min_pair_count`` co-purchases in the feature baskets (or a listed pair), as complements do.
    The cart exponent (:func:`cart_weight`) is then chosen on the label baskets with the
    relations classification would keep (``min_probability``, ``keep_per_src``)."""
    from tiein.mining import mine_pairs

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
    fitted = ComplementRanker(model.weights, model.intercept, model.mean, model.scale, report, exponent)
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


def feature_dict(features: pa.Table) -> dict[str, np.ndarray]:
    """A candidate feature table as numpy columns with the types classification uses (counts as
    int64, ratios as float64, NaN kept)."""
    f = {c: features.column(c).to_numpy(zero_copy_only=False) for c in features.column_names}
    for c in (
        "n_ab",
        "n_src",
        "n_dst",
        "n_baskets",
        "after_sd",
        "after_ds",
        "co_view",
        "listed_buy",
        "listed_view",
        "cat_rel",
        "w_ab",
        "w_src",
        "w_dst",
    ):
        if c in f:
            f[c] = np.nan_to_num(f[c].astype(np.float64)).astype(np.int64)
    for c in ("conf", "lift", "similarity", "price_ratio", "p_complement"):
        if c in f:
            f[c] = f[c].astype(np.float64)
    if "same_line" in f:
        f["same_line"] = f["same_line"].astype(bool)
    if "same_type" in f:  # 1 same product type, 0 different, NaN a type unknown
        f["same_type"] = pc.cast(features.column("same_type"), pa.float64()).to_numpy(zero_copy_only=False)
    return f

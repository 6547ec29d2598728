"""The complement ranker itself: features, the logistic fit, AUC, and the feature table as numpy
columns (see :mod:`tiein.ranker` for the method)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = Any

#: The model's inputs, each computed by :func:`design_matrix` from a candidate feature table.
PREDICT_ROWS = 1 << 15  # rows scored at a time by ComplementRanker.predict
BASKET_UNIT = 720720  # a basket of s products weighs BASKET_UNIT // s: integer sums are exact

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
# Added when the candidates come with content sets (tiein.content_sets; a build without sets
# fits FEATURES only, as before).
SET_FEATURES = (
    "log_shown_together",  # log1p(sets showing both, weighted)
    "shown_confidence",  # weighted sets showing both / (sets showing src + 5)
    "log_set_lift",  # log lift over sets (0 never shown together), clipped to ±5
)


def feature_names(f: dict[str, np.ndarray]) -> tuple[str, ...]:
    """The model's inputs for feature dict ``f``: :data:`FEATURES`, plus :data:`SET_FEATURES`
    when ``f`` has content-set columns."""
    return FEATURES + SET_FEATURES if "n_sets" in f else FEATURES


@dataclass(frozen=True)
class RankerConfig:
    """How the complement ranker is fitted (:func:`fit_from_orders`).

    enabled: fit at all (False: the hand-set score everywhere).
    holdout_share: share of the baskets, the latest by time, whose pairs are the labels.
    min_positives: labelled candidate pairs bought together a fit needs; below it the shop is too
        small to learn from and keeps the hand-set score.
    l2: L2 penalty on the standardised weights (the intercept is not penalised).
    max_iter: Newton steps at most.
    max_anchors: anchors (products bought with others in the feature baskets) the fit learns
        from at most; a bigger shop fits on a fixed sample of them (:func:`fit_sample`: by a hash
        of the id, the same in every run), which bounds the fit's time and memory. The weights
        then score every candidate as before. 0: no limit.
    """

    enabled: bool = True
    holdout_share: float = 0.2
    min_positives: int = 200
    l2: float = 1.0
    max_iter: int = 30
    max_anchors: int = 20_000

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
    cart_exponent: float = 0.0  # see tiein.ranker.cart_weight; chosen per shop by choose_cart_weighting
    names: tuple[str, ...] = FEATURES  # the inputs fitted on (feature_names)
    cart_gamma: float = 1.0  # the same: the power of the probability
    cart_similarity: float = 0.0  # the same: the boost of a title like a cart item's

    def predict(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """P(dst in basket | src in basket) for every row of a feature dict (columns of
        :data:`tiein.relations.FEATURE_COLUMNS`, optionally ``n_dst`` and ``n_baskets``)."""
        n = len(f["n_ab"])
        out = np.empty(n)
        for s in range(0, n, PREDICT_ROWS):  # in blocks: the temporaries stay in cache
            block = {c: v[s : s + PREDICT_ROWS] for c, v in f.items()}
            x = (design_matrix(block) - self.mean) / self.scale
            out[s : s + PREDICT_ROWS] = _sigmoid(self.intercept + x @ self.weights)
        return out

    def describe(self) -> dict[str, Any]:
        """What the build's meta keeps: the standardised weights by feature, the intercept and
        the fit report (rows, positives, AUCs)."""
        return {
            "fitted": True,
            "model": "logistic regression (IRLS, L2) on standardised features",
            "weights": {n: round(float(w), 4) for n, w in zip(self.names, self.weights, strict=True)},
            "intercept": round(float(self.intercept), 4),
            "cart_exponent": self.cart_exponent,
            "cart_gamma": self.cart_gamma,
            "cart_similarity": self.cart_similarity,
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
    if "n_sets" in f:  # content sets (SET_FEATURES)
        shown, lift = _col(f, "w_sets", n), _col(f, "set_lift", n)
        with np.errstate(divide="ignore", invalid="ignore"):
            cols += [
                np.log1p(np.maximum(shown, 0.0)),
                shown / (_col(f, "sets_src", n) + 5.0),
                np.clip(np.where((shown > 0) & (lift > 0), np.log(lift), 0.0), -5.0, 5.0),
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
    held: np.ndarray | None = None,
) -> tuple[ComplementRanker | None, dict[str, Any]]:
    """Fit on labelled candidate rows (feature dict ``f``; ``k`` label baskets with both, ``n``
    with src); ``baseline`` is the hand-set score of the same rows, for the report. Returns
    (None, report) when there are fewer than ``cfg.min_positives`` positive rows.

    The validation fifth is chosen by crc32 of the src id (whole anchors held out:
    :func:`held_anchors` of ``f["src"]``, or ``held`` when given), the final weights are fitted on
    all rows."""
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
    held = held_anchors(f["src"]) if held is None else held
    if (k[held] > 0).any() and (k[~held] > 0).any():
        w, b, m, s = fit_logistic(x[~held], k[~held], n[~held], cfg.l2, cfg.max_iter)
        pred = _sigmoid(b + ((x[held] - m) / s) @ w)
        report["validation_auc"] = auc(pred, k[held] > 0)
        report["validation_auc_hand_set"] = auc(np.asarray(baseline, dtype=np.float64)[held], k[held] > 0)
    w, b, m, s = fit_logistic(x, k, n, cfg.l2, cfg.max_iter)
    return ComplementRanker(w, b, m, s, report, names=feature_names(f)), report


def buckets_of(ids: np.ndarray | pa.Array | pa.ChunkedArray, buckets: int, salt: bytes = b"") -> np.ndarray:
    """Each id's bucket: crc32 of its UTF-8 bytes (after ``salt``: another, independent
    bucketing) modulo ``buckets``; the same on every machine and in every run; each distinct id
    hashed once.

    >>> buckets_of(pa.array(["tent", "chair", "tent"]), 4).tolist()
    [0, 1, 0]
    """
    arr = pa.array(ids.astype(str), pa.string()) if isinstance(ids, np.ndarray) else ids
    if isinstance(arr, pa.ChunkedArray):  # one dictionary over every chunk
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr)
    start = zlib.crc32(salt)
    of = np.array(
        [zlib.crc32(s.encode("utf-8"), start) % buckets for s in enc.dictionary.to_pylist()], np.int32
    )
    return cast(np.ndarray, of[enc.indices.to_numpy(zero_copy_only=False)])


FIT_SAMPLE_SALT = b"tiein-fit-sample:"  # independent of held_anchors' fifth (unsalted crc32)


def fit_sample(ids: np.ndarray | pa.Array | pa.ChunkedArray, share: float) -> np.ndarray:
    """Whether each id is among the ``share`` of ids the ranker's fit learns from (a salted
    crc32 of the id in millionths below ``share``: the same ids in every run, and a larger share
    holds every id a smaller one does).

    >>> fit_sample(pa.array(["tent", "chair", "lamp"]), 1.0).tolist()
    [True, True, True]
    """
    return cast(np.ndarray, buckets_of(ids, 1_000_000, FIT_SAMPLE_SALT) < round(share * 1_000_000))


def held_anchors(src: np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Whether each row's src id is in the validation fifth of the anchors (crc32 of the id)."""
    return cast(np.ndarray, buckets_of(src, 5) == 0)


# Candidate columns that are counts (int64 in the feature dict and in RELATIONS).
COUNT_COLUMNS = (
    "n_ab",
    "n_src",
    "n_dst",
    "n_baskets",
    "after_sd",
    "after_ds",
    "co_view",
    "listed_buy",
    "listed_view",
)


def feature_dict(features: pa.Table, *, ids: bool = True) -> dict[str, np.ndarray]:
    """A candidate feature table as numpy columns with the types classification uses (counts as
    int64, ratios as float64, NaN kept). ``ids=False`` leaves the src and dst ids out (as Python
    strings they cost seconds on millions of rows; who needs them takes them from the table)."""
    f = {c: _numpy(features.column(c)) for c in features.column_names if ids or c not in ("src", "dst")}
    for c in (
        *COUNT_COLUMNS,
        "cat_rel",
        "w_ab",
        "w_src",
        "w_dst",
    ):
        if c in f:  # integers without nulls as they are (the float round trip gives the same values)
            v = f[c]
            f[c] = (
                v.astype(np.int64)
                if v.dtype.kind in "iub"
                else np.nan_to_num(v.astype(np.float64)).astype(np.int64)
            )
    for c in ("conf", "lift", "similarity", "price_ratio", "p_complement"):
        if c in f:
            f[c] = f[c].astype(np.float64)
    if "same_line" in f:
        f["same_line"] = f["same_line"].astype(bool)
    if "same_type" in f:  # 1 same product type, 0 different, NaN a type unknown
        f["same_type"] = pc.cast(features.column("same_type"), pa.float64()).to_numpy(zero_copy_only=False)
    return f


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """``column.to_numpy(zero_copy_only=False)``; a string column without nulls through its
    dictionary, so that each distinct id is one Python string shared by its rows (the same values;
    3.5M candidate rows over 50k products: ~200 MB less per column than a string object per row)."""
    if column.null_count == 0 and len(column) and pa.types.is_string(column.type):
        enc = pc.dictionary_encode(column.combine_chunks())
        values = np.empty(len(enc.dictionary), dtype=object)
        values[:] = enc.dictionary.to_pylist()
        return cast(np.ndarray, values[enc.indices.to_numpy()])
    return cast(np.ndarray, column.to_numpy(zero_copy_only=False))

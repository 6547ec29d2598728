"""Relation type learnt from the shop's own labels: substitute or complement.

A shop that lists pairs itself (marketplace "also bought" / "also viewed" lists, or a merchant
file of curated complement / substitute pairs, ``tiein build --pairs FILE``) has labels: a pair
listed only as bought together is a complement, one listed only as viewed instead is a
substitute. :func:`with_type_probability` learns from them which pairs are which and gives every
candidate pair ``p_complement`` = P(complement | the pair is related), so products the lists do
not cover are typed by the shop's own pattern rather than by title similarity alone (on Amazon
gift cards similarity does not separate the two at all: AUC 0.47).

The features are symmetric in the pair (the type of a pair does not depend on its direction):

- content: title similarity, |log price ratio|, both priced, category relation, same line;
- list structure (second-order behaviour), each computed without the pair's own listing: shared
  bought-together partners (Jaccard and count), shared viewed-instead partners, partners one lists
  as bought and the other as viewed, how "complement-like" each product's listings are (share of
  bought-together among them) and how many it has;
- orders and sessions where the shop has them: bought together (log count, lift), viewed together.

Model: the numpy logistic regression of :mod:`tiein.ranker` on standardised features; quality is
the cross-validated AUC (five folds by a hash of the pair, so no pair is scored by a model that
saw it), kept in the build's meta as ``type_classifier``. Too few labels of either kind
(``min_each``): no model, and typing stays with the hand-set rules.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tiein.ranker import _sigmoid, auc, fit_logistic

FEATURES = (
    "similarity",
    "abs_log_price_ratio",
    "both_priced",
    "same_category",
    "sibling_category",
    "category_unknown",
    "same_line",
    "shared_bought_jaccard",
    "shared_bought",
    "shared_viewed_jaccard",
    "shared_viewed",
    "bought_vs_viewed_partners",
    "listing_bought_share_mean",
    "listing_bought_share_gap",
    "listings",
    "bought_together",
    "lift",
    "viewed_together",
)

# Per candidate pair (a < b): partners shared in the listed graph, each product's listings by kind,
# the pair's own listing left out everywhere.
_GRAPH_SQL = """
WITH
e AS (SELECT DISTINCT least(src, dst) AS a, greatest(src, dst) AS b, kind FROM lp WHERE src <> dst),
u AS (SELECT a AS x, b AS y, kind FROM e UNION ALL SELECT b, a, kind FROM e),
deg AS (
    SELECT x, count(*) FILTER (WHERE kind = 'co_purchase') AS nb,
              count(*) FILTER (WHERE kind = 'co_view') AS nv
    FROM u GROUP BY x
),
own AS (
    SELECT a, b, max((kind = 'co_purchase')::INT) AS eb, max((kind = 'co_view')::INT) AS ev
    FROM e GROUP BY a, b
),
pairs AS (SELECT DISTINCT least(src, dst) AS a, greatest(src, dst) AS b FROM cand),
common AS (
    SELECT p.a, p.b,
           count(*) FILTER (WHERE u1.kind = 'co_purchase' AND u2.kind = 'co_purchase') AS cb,
           count(*) FILTER (WHERE u1.kind = 'co_view' AND u2.kind = 'co_view') AS cv,
           count(*) FILTER (WHERE u1.kind <> u2.kind) AS cx
    FROM pairs p
    JOIN u u1 ON u1.x = p.a
    JOIN u u2 ON u2.x = p.b AND u2.y = u1.y
    GROUP BY p.a, p.b
)
SELECT c.src, c.dst,
       coalesce(m.cb, 0) AS cb, coalesce(m.cv, 0) AS cv, coalesce(m.cx, 0) AS cx,
       coalesce(da.nb, 0) - coalesce(o.eb, 0) AS nb_a, coalesce(da.nv, 0) - coalesce(o.ev, 0) AS nv_a,
       coalesce(db.nb, 0) - coalesce(o.eb, 0) AS nb_b, coalesce(db.nv, 0) - coalesce(o.ev, 0) AS nv_b,
       coalesce(o.eb, 0) AS eb, coalesce(o.ev, 0) AS ev
FROM cand c
LEFT JOIN common m ON m.a = least(c.src, c.dst) AND m.b = greatest(c.src, c.dst)
LEFT JOIN own o ON o.a = least(c.src, c.dst) AND o.b = greatest(c.src, c.dst)
LEFT JOIN deg da ON da.x = least(c.src, c.dst)
LEFT JOIN deg db ON db.x = greatest(c.src, c.dst)
ORDER BY c.row
"""


@dataclass(frozen=True)
class TyperConfig:
    """min_each: labelled pairs of each kind needed to learn; l2: ridge penalty of the fit.

    The penalty is strong on purpose: a listed product's own lists are complete, while a product
    the lists leave out is known only from others' mentions, so list-structure features look
    sharper in training than where the model is used. Amazon gift cards, half of the products'
    lists withheld, AUC on the withheld pairs for l2 = 10 / 30 / 100 / 300 / 1000:
    0.861 / 0.878 / 0.898 / 0.904 / 0.899 (cross-validated on the listed pairs: 0.95 throughout).
    """

    min_each: int = 30
    l2: float = 300.0

    def to_dict(self) -> dict[str, Any]:
        return {"min_each": self.min_each, "l2": self.l2}


@dataclass(frozen=True)
class TypeClassifier:
    """``predict`` = sigmoid(intercept + Σ weights · (x − mean) / scale) = P(complement)."""

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.intercept + ((x - self.mean) / self.scale) @ self.weights)


def _graph_columns(src: np.ndarray, dst: np.ndarray, listed: pa.Table) -> dict[str, np.ndarray]:
    con = duckdb.connect()
    try:
        con.register("lp", listed.select(["src", "dst", "kind"]))
        con.register(
            "cand",
            pa.table(
                {
                    "src": pa.array(src, pa.string()),
                    "dst": pa.array(dst, pa.string()),
                    "row": pa.array(np.arange(len(src)), pa.int64()),
                }
            ),
        )
        t = con.sql(_GRAPH_SQL).to_arrow_table()
    finally:
        con.close()
    return {c: t.column(c).to_numpy().astype(np.float64) for c in t.column_names if c not in ("src", "dst")}


def type_matrix(f: dict[str, np.ndarray], listed: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The :data:`FEATURES` of every candidate row of feature dict ``f`` (columns of
    :data:`tiein.relations.FEATURE_COLUMNS`) as a finite float matrix, and each row's label from
    the lists: 1 listed only as bought together, 0 only as viewed instead, -1 neither or both."""
    n = len(f["src"])
    g = _graph_columns(f["src"], f["dst"], listed)

    def col(name: str) -> np.ndarray:
        return np.nan_to_num(np.asarray(f.get(name, np.zeros(n)), dtype=np.float64), nan=0.0)

    ratio = np.asarray(f["price_ratio"], dtype=np.float64)
    priced = np.isfinite(ratio) & (ratio > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(priced, np.abs(np.log(np.where(priced, ratio, 1.0))), 0.0)
        share_a = (g["nb_a"] + 0.5) / (g["nb_a"] + g["nv_a"] + 1.0)
        share_b = (g["nb_b"] + 0.5) / (g["nb_b"] + g["nv_b"] + 1.0)
        jac_b = g["cb"] / np.maximum(g["nb_a"] + g["nb_b"] - g["cb"], 1.0)
        jac_v = g["cv"] / np.maximum(g["nv_a"] + g["nv_b"] - g["cv"], 1.0)
    cat = np.asarray(f["cat_rel"], dtype=np.int64)
    lift = col("lift")
    x = np.column_stack(
        [
            col("similarity"),
            log_ratio,
            priced.astype(np.float64),
            (cat == 0).astype(np.float64),
            (cat == 1).astype(np.float64),
            (cat == 3).astype(np.float64),
            np.asarray(f["same_line"], dtype=np.float64),
            jac_b,
            np.log1p(g["cb"]),
            jac_v,
            np.log1p(g["cv"]),
            np.log1p(g["cx"]),
            (share_a + share_b) / 2.0,
            np.abs(share_a - share_b),
            np.log1p(g["nb_a"] + g["nv_a"] + g["nb_b"] + g["nv_b"]),
            np.log1p(col("n_ab")),
            np.log1p(np.clip(lift, 0.0, None)),
            np.log1p(col("co_view")),
        ]
    )
    label = np.where((g["eb"] > 0) & (g["ev"] == 0), 1, np.where((g["ev"] > 0) & (g["eb"] == 0), 0, -1))
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), label


def _pair_fold(src: np.ndarray, dst: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each row by a hash of the unordered pair: both directions land in the same fold."""
    keys = [f"{min(a, b)}\x00{max(a, b)}" for a, b in zip(src.tolist(), dst.tolist(), strict=True)]
    return np.array([zlib.crc32(k.encode("utf-8")) % folds for k in keys], dtype=np.int64)


def fit_typer(
    x: np.ndarray,
    label: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    cfg: TyperConfig | None = None,
    folds: int = 5,
) -> tuple[TypeClassifier | None, dict[str, Any]]:
    """Fit on the labelled rows (label 0/1; -1 rows are ignored). Returns (None, report) when
    either kind has fewer than ``cfg.min_each`` labelled pairs. The report holds the
    cross-validated AUC (folds by pair) and the label counts; the returned model is fitted on all
    labelled rows."""
    cfg = cfg or TyperConfig()
    lab = label >= 0
    pos = int((label[lab] == 1).sum())
    neg = int((label[lab] == 0).sum())
    report: dict[str, Any] = {"labelled_rows": int(lab.sum()), "complement_rows": pos, "substitute_rows": neg}
    if min(pos, neg) < cfg.min_each:
        return None, {
            "fitted": False,
            "reason": f"{pos} complement and {neg} substitute labelled rows; {cfg.min_each} of each needed",
            **report,
        }
    xl, yl = x[lab], label[lab].astype(np.float64)
    fold = _pair_fold(src[lab], dst[lab], folds)
    pred = np.full(yl.size, np.nan)
    for k in range(folds):
        test = fold == k
        train = ~test
        if not test.any() or len(np.unique(yl[train])) < 2:
            continue
        w, b, m, s = fit_logistic(xl[train], yl[train], np.ones(int(train.sum())), cfg.l2)
        pred[test] = _sigmoid(b + ((xl[test] - m) / s) @ w)
    ok = np.isfinite(pred)
    report["cv_auc"] = auc(pred[ok], yl[ok] > 0) if ok.any() else None
    report["cv_folds"] = folds
    w, b, m, s = fit_logistic(xl, yl, np.ones(yl.size), cfg.l2)
    report["fitted"] = True
    report["model"] = "logistic regression (IRLS, L2) on standardised features"
    report["weights"] = {n: round(float(v), 4) for n, v in zip(FEATURES, w, strict=True)}
    return TypeClassifier(w, b, m, s, report), report


def type_probability(
    f: dict[str, np.ndarray], listed: pa.Table | None, cfg: TyperConfig | None = None
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """P(complement) for every row of feature dict ``f``, learnt from ``listed`` (LISTED_PAIRS):
    the label itself where a row's pair is listed as one kind only, the fitted model's probability
    elsewhere. (None, report) when there is nothing to learn from."""
    if listed is None or listed.num_rows == 0 or len(f["src"]) == 0:
        return None, {"fitted": False, "reason": "no listed pairs"}
    x, label = type_matrix(f, listed)
    model, report = fit_typer(x, label, f["src"], f["dst"], cfg)
    if model is None:
        return None, report
    p = model.predict(x)
    return np.where(label >= 0, label.astype(np.float64), p), report

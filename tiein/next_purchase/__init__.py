""" "Next purchase" relations: what customers buy next after a product, from their timelines.

A relation src → dst says: customers who bought src for the first time bought dst for the first
time afterwards (within the window) clearly more often than comparable customers in the same
weeks did, not clearly more often the other way round, and not reversed on the held-back latest
months. Counted
(:mod:`tiein.next_purchase.sequence`), per customer and first purchases only:

    after(s → d)    customers whose first d came after their first s, within the window;
    at_risk(s → d)  customers whose first s was followed by another order of theirs within the
                    window and who had not bought d by then (``exposed(s) - had(s, d)``);
    expected(s → d) what the time-matched base rate predicts for them: for each such customer,
                    the share of ALL customers active in the week of their first s (and back
                    within the window, d not yet bought) who bought d for the first time next.
                    So a product that sells later (a launch, a season) expects its buyers;
    together(s, d)  customers whose first d was in the same order as their first s, and
    expected_together what the same-order base rate of the same weeks predicts for them
                    (:meth:`SequenceStats.expected_together`);
    got             = after + same_order_weight * max(together - expected_together, 0): the
                    same-order buyers beyond their base rate add to the evidence (a customer who
                    bought both at once is evidence that the two go together, so the ones who
                    bought src alone are likely to come back for dst), never take from it;
    lift            = (got + 1) / (expected + 1),
    score           = (got - expected) / (at_risk + same_order_weight * together + prior): the
                    rate shrunk toward the base rate (``(got + prior * base) / (n + prior)``,
                    base = expected / n) minus the base rate; the chance of buying dst next that
                    having bought src adds, in probability units, so scores of different anchors
                    compare (calibrated). Without same-order buyers: (after - expected) /
                    (at_risk + prior);
    asymmetry       = (after(s → d) - after(d → s)) / (after(s → d) + after(d → s)), on the
                    later-order counts only.

Kept (:func:`classify_next`): ``after ≥ min_customers`` (at least that many came back for dst),
asymmetry ≥ ``min_asymmetry`` (-0.5: the other order at most 3 times as common; a pair bought in
either order about as often is "next" both ways, one bought mostly the other way round only that
way), lift > ``min_lift``, ``(got - expected) / sqrt(expected + 1) ≥ min_z`` and not reversed on
the held-back latest
``held_share`` of the months (``held_before < held_factor * held_after + held_margin``, counted
over the customers whose first purchase of the pair falls in those months); the relations
dropped by that direction check are counted in the report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.mining.kernels import order_codes
from tiein.model import RELATIONS
from tiein.next_purchase.sequence import SequenceStats, first_gaps, lookup, lookups, sequence_stats
from tiein.relations import CAT_NAMES

ArrayLike = Any  # numpy array or scalar

__all__ = [
    "NextConfig",
    "SequenceStats",
    "asymmetry",
    "classify_next",
    "next_confidence",
    "next_lift",
    "next_score",
    "sequence_stats",
]


@dataclass(frozen=True)
class NextConfig:
    """Thresholds of "next purchase" relations (:func:`classify_next`).

    min_customers: customers whose first dst followed their first src a relation needs
        (``tiein build --min-next``).
    min_asymmetry: asymmetry a relation needs (-0.5: at most 3 times as many customers the other
        way round; > 0: more customers in this order than in the other, so a pair is never kept
        in both directions). The default was chosen on validation splits inside the training
        months (bench/next_purchase.py, docs/relations.md).
    min_lift: shrunk lift ``(got + 1) / (expected + 1)`` a relation needs.
    prior: shrinkage strength (pseudo-customers at the base rate) of the score.
    keep_per_product: relations kept per src (the best ones).
    median_gap: also put ``median_gap_days`` (first src to first dst) in the evidence.
    min_z: ``(got - expected) / sqrt(expected + 1)`` a relation needs (small counts out).
    held_share: the latest share of the months whose customers check the direction (0: off).
    held_factor / held_margin: a relation is dropped as reversed when, on the held-back months,
        ``held_before >= held_factor * held_after + held_margin`` (customers the other way round
        vs in this order; the defaults: at least 2 more than twice as many).
    max_customer_items: customers with more distinct products (wholesalers) are not counted.
    week_days: days per period of the time-matched base rate.
    base_prior: (customer, week) slots of shrinkage of a week's base rate toward all weeks'.
    same_order_weight: weight of the same-order buyers beyond their base rate in ``got`` (0: the
        later-order counts only); chosen with min_asymmetry.
    """

    min_customers: int = 3
    min_asymmetry: float = -0.5
    min_lift: float = 1.2
    prior: float = 5.0
    keep_per_product: int = 50
    median_gap: bool = True
    min_z: float = 0.0
    held_share: float = 0.25
    held_factor: float = 2.0
    held_margin: int = 2
    max_customer_items: int = 1000
    week_days: int = 7
    base_prior: float = 1.0
    same_order_weight: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_confidence(after_sd: ArrayLike, at_risk: ArrayLike) -> ArrayLike:
    """Of the customers at risk (came back after their first src, dst not yet bought), the
    share whose first dst followed.

    >>> float(next_confidence(30, 120))
    0.25
    >>> float(next_confidence(0, 0))
    0.0
    """
    a = np.asarray(after_sd, dtype=np.float64)
    r = np.asarray(at_risk, dtype=np.float64)
    return np.where(r > 0, a / np.where(r > 0, r, 1.0), 0.0)


def next_lift(after_sd: ArrayLike, expected: ArrayLike) -> ArrayLike:
    """Shrunk lift ``(after + 1) / (expected + 1)`` over the time-matched expectation (finite when
    nobody else buys dst: expected 0).

    30 customers where the weeks' base rate expects 5: lift about 5.2; the same 30 where the
    season expects 30 (everyone buys it then): lift 1.

    >>> round(float(next_lift(30, 5)), 2), float(next_lift(30, 30))
    (5.17, 1.0)
    """
    a = np.asarray(after_sd, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return (a + 1.0) / (e + 1.0)


def asymmetry(after_sd: ArrayLike, after_ds: ArrayLike) -> ArrayLike:
    """``(after_sd - after_ds) / (after_sd + after_ds)``: 1 when customers only buy src first,
    -1 when only dst first, 0 when both orders are as common (or neither happens).

    >>> float(asymmetry(30, 0)), float(asymmetry(30, 10)), float(asymmetry(10, 30)), float(asymmetry(0, 0))
    (1.0, 0.5, -0.5, 0.0)
    """
    a = np.asarray(after_sd, dtype=np.float64)
    b = np.asarray(after_ds, dtype=np.float64)
    return np.where(a + b > 0, (a - b) / np.where(a + b > 0, a + b, 1.0), 0.0)


def next_score(after_sd: ArrayLike, at_risk: ArrayLike, expected: ArrayLike, prior: float = 5.0) -> ArrayLike:
    """ "Next purchase" score in [0, 1): ``(after - expected) / (at_risk + prior)``, which is the
    shrunk rate ``(after + prior * base) / (at_risk + prior)`` minus the time-matched base rate
    ``base = expected / at_risk``: the chance of buying dst next that having bought src adds, in
    probability units (comparable between anchors); 0 when it adds nothing.

    8 of 9 customers at risk bought the belt after the delivery kit where the base rate expects
    4.5: 0.25; a late-launched product that 8 of 9 bought, as every active customer did (expected
    8): nothing added.

    >>> round(float(next_score(8, 9, 4.5)), 4), float(next_score(8, 9, 8))
    (0.25, 0.0)
    """
    a = np.asarray(after_sd, dtype=np.float64)
    r = np.asarray(at_risk, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return np.clip((a - e) / np.maximum(r + float(prior), 1e-12), 0.0, 1.0)


def _codes(ids: pa.ChunkedArray | pa.Array, names: pa.Array) -> np.ndarray:
    """Positions of ``ids`` in ``names`` (-1 when absent)."""
    idx = pc.index_in(ids, value_set=names)
    return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), np.int64)


def next_stats(features: pa.Table, seq: SequenceStats, cfg: NextConfig) -> dict[str, np.ndarray]:
    """The counts, rates and tests of every candidate of ``features`` (arrays in row order)."""
    s = _codes(features.column("src"), seq.names)
    d = _codes(features.column("dst"), seq.names)
    known = (s >= 0) & (d >= 0)
    s0, d0 = np.where(known, s, 0), np.where(known, d, 0)
    fwd, rev = seq.keys(s0, d0), seq.keys(d0, s0)
    counted = (seq.after, seq.after_held)
    after, held_after = (np.where(known, v, 0) for v in lookups(seq.after_keys, counted, fwd))
    before, held_before = (np.where(known, v, 0) for v in lookups(seq.after_keys, counted, rev))
    exposed = np.where(known, seq.exposed[s0], 0)
    had = np.where(known, lookup(seq.had_keys, seq.had, fwd), 0)
    at_risk = np.maximum(exposed - had, 0)
    share = np.where(exposed > 0, at_risk / np.maximum(exposed, 1), 0.0)
    together = np.where(known, lookup(seq.together_keys, seq.together, fwd), 0)
    expected = np.zeros(after.size)
    expected_t = np.zeros(after.size)
    # only where the cheap tests pass: the time-matched expectation is a per-week computation
    todo = np.flatnonzero(
        known & (after >= cfg.min_customers) & (asymmetry(after, before) >= cfg.min_asymmetry)
    )
    expected[todo] = seq.expected(
        s0[todo], d0[todo], after[todo].astype(np.float64), share[todo], cfg.base_prior
    )
    w = float(cfg.same_order_weight)
    if w > 0:  # only needed where someone bought both at once (else nothing is added)
        tt = todo[together[todo] > 0]
        expected_t[tt] = seq.expected_together(
            s0[tt], d0[tt], together[tt].astype(np.float64), share[tt], cfg.base_prior
        )
    # same-order buyers beyond their time-matched expectation add (weighted) to the after count;
    # they never take anything away from it
    got = after + w * np.maximum(together - expected_t, 0.0)
    return {
        "after": after,
        "before": before,
        "held_after": held_after,
        "held_before": held_before,
        "at_risk": at_risk,
        "expected": expected,
        "together": together,
        "expected_together": expected_t,
        "conf": next_confidence(after, at_risk),
        "lift": next_lift(got, expected),
        "asym": asymmetry(after, before),
        "score": next_score(got, at_risk + w * together, expected, cfg.prior),
        "z": (got - expected) / np.sqrt(expected + 1.0),
    }


def classify_next(
    features: pa.Table,
    returning_all: int,
    cfg: NextConfig | None = None,
    *,
    window_days: int | None = None,
    orders: pa.Table | None = None,
    report: dict[str, Any] | None = None,
    seq: SequenceStats | None = None,
) -> pa.Table:
    """ "next" relations (RELATIONS rows, kind "next") from :func:`tiein.features.next_candidates`.

    The candidates' first-purchase statistics come from ``orders`` (ORDERS; or a precomputed
    ``seq`` from :func:`sequence_stats` with the same window); without either there are no
    relations. Kept as the module doc says, then each src's best ``cfg.keep_per_product`` by
    score (ties by dst). ``returning_all`` (mining's returning customers) is kept for callers
    and goes in the report. With a ``report`` dict, it is filled with the counts of candidates,
    relations kept, relations dropped by the held-back direction check and seconds.
    Columns: ``n_ab`` co-purchase count, ``lift`` / ``confidence`` the next-purchase lift /
    confidence, ``co_view`` and ``similarity`` null; the evidence holds every count.
    """
    cfg = cfg or NextConfig()
    t_start = time.perf_counter()
    rep: dict[str, Any] = report if report is not None else {}
    rep.update(
        candidates=features.num_rows, relations=0, dropped_by_direction=0, returning_customers=returning_all
    )
    if features.num_rows == 0 or (seq is None and (orders is None or orders.num_rows == 0)):
        return RELATIONS.empty_table()
    if seq is None:
        assert orders is not None
        seq = sequence_stats(
            orders,
            window_days=window_days,
            held_share=cfg.held_share,
            max_customer_items=cfg.max_customer_items,
            week_days=cfg.week_days,
            min_after=cfg.min_customers,  # what the relations can use (the counts kept are exact)
        )
    st = next_stats(features, seq, cfg)
    passes = (
        (st["after"] >= cfg.min_customers)
        & (st["asym"] >= cfg.min_asymmetry)
        & (st["lift"] > cfg.min_lift)
        & (st["z"] >= cfg.min_z)
        & (st["score"] > 0)
    )
    reversed_ = st["held_before"] >= cfg.held_factor * st["held_after"] + cfg.held_margin
    stable = ~reversed_ if cfg.held_share > 0 else np.ones(passes.size, bool)
    rep["dropped_by_direction"] = int((passes & ~stable).sum())
    rep["customers_skipped"] = seq.customers_skipped
    idx = np.flatnonzero(passes & stable)
    if idx.size == 0:
        rep["seconds"] = round(time.perf_counter() - t_start, 3)
        return RELATIONS.empty_table()
    # ids as codes in string order: sorting them sorts the ids (object arrays of strings: seconds)
    src = order_codes(features.column("src"))
    dst = order_codes(features.column("dst"))
    score = st["score"]
    order = np.lexsort((dst[idx], -score[idx], src[idx]))
    idx = idx[order]
    src_sorted = src[idx]
    starts = np.r_[0, np.flatnonzero(src_sorted[1:] != src_sorted[:-1]) + 1]
    rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.r_[starts, idx.size]))
    idx = idx[rank < cfg.keep_per_product]
    ints = {
        c: np.nan_to_num(features.column(c).to_numpy(zero_copy_only=False).astype(np.float64)).astype(
            np.int64
        )
        for c in ("n_ab", "cat_rel")
    }
    cols: dict[str, Any] = {
        "src": features.column("src").take(pa.array(idx)).combine_chunks().cast(pa.string()),
        "dst": features.column("dst").take(pa.array(idx)).combine_chunks().cast(pa.string()),
        "score": pa.array(np.round(score[idx], 6)),
        "n_ab": pa.array(ints["n_ab"][idx]),
        **{
            k: pa.array(st[k][idx])
            for k in ("after", "before", "held_after", "held_before", "at_risk", "together")
        },
        **{
            k: pa.array(st[k][idx].astype(np.float64))
            for k in ("expected", "expected_together", "conf", "lift", "asym")
        },
        "category_relation": pa.array(CAT_NAMES[ints["cat_rel"][idx]].tolist(), pa.string()),
        "price_ratio": pa.array(
            features.column("price_ratio").to_numpy(zero_copy_only=False)[idx].astype(np.float64)
        ),
    }
    sel = pa.table(cols)
    gaps = median_gaps(seq, sel) if cfg.median_gap else None
    out = _next_table(sel, gaps, window_days)
    rep["relations"] = out.num_rows
    rep["seconds"] = round(time.perf_counter() - t_start, 3)
    return out


def median_gaps(seq: SequenceStats, sel: pa.Table) -> pa.Table:
    """src, dst, median_gap_days: the median over the counted customers of the days from their
    first src to their first dst (the pairs of ``sel``)."""
    s = _codes(sel.column("src"), seq.names)
    d = _codes(sel.column("dst"), seq.names)
    med = first_gaps(seq, seq.keys(s, d))
    return pa.table({"src": sel.column("src"), "dst": sel.column("dst"), "median_gap_days": pa.array(med)})


_NEXT_EVIDENCE_SQL = """
SELECT s.src, s.dst, 'next' AS kind, s.score, s.n_ab,
       CASE WHEN isfinite(s.lift) THEN round(s.lift, 6) END AS lift,
       CASE WHEN isfinite(s.conf) THEN round(s.conf, 6) END AS confidence,
       NULL::BIGINT AS co_view, NULL::DOUBLE AS similarity, s.category_relation,
       CASE WHEN isfinite(s.price_ratio) THEN round(s.price_ratio, 6) END AS price_ratio,
       to_json({
           'kind': 'next',
           'after_count': s.after,
           'before_count': s.before,
           'returning_customers': s.at_risk,
           'expected_count': round(s.expected, 2),
           'same_order_count': s.together,
           'same_order_expected': CASE WHEN s.together > 0 THEN round(s.expected_together, 2) END,
           'confidence': round(s.conf, 4),
           'base_rate': CASE WHEN s.at_risk > 0 THEN round(s.expected / s.at_risk, 4) END,
           'lift': CASE WHEN isfinite(s.lift) THEN round(s.lift, 3) END,
           'asymmetry': round(s.asym, 3),
           'held_after_count': s.held_after,
           'held_before_count': s.held_before,
           'window_days': $window,
           'median_gap_days': round(g.median_gap_days, 1),
           'bought_together': s.n_ab,
           'category_relation': s.category_relation,
           'price_ratio': CASE WHEN isfinite(s.price_ratio) THEN round(s.price_ratio, 3) END
       })::VARCHAR AS evidence
FROM sel s LEFT JOIN g USING (src, dst)
ORDER BY s.src, s.score DESC, s.dst
"""


def _next_table(sel: pa.Table, gaps: pa.Table | None, window_days: int | None) -> pa.Table:
    """RELATIONS rows of the kept "next" pairs, evidence built column-wise by DuckDB."""
    import duckdb

    con = duckdb.connect()
    con.register("sel", sel)
    if gaps is None:
        gaps = pa.table(
            {
                "src": pa.array([], pa.string()),
                "dst": pa.array([], pa.string()),
                "median_gap_days": pa.array([], pa.float64()),
            }
        )
    con.register("g", gaps)
    out = con.sql(_NEXT_EVIDENCE_SQL, params={"window": window_days}).to_arrow_table()
    con.close()
    return out.cast(RELATIONS)

""" "Next purchase" relations that sales timing alone would fake, repeat purchases and the
held-back direction check (tests/fixtures/launch/README.md has the launch shop's numbers by hand).
"""

from __future__ import annotations

import datetime as dt
import doctest
import json
from pathlib import Path

import pyarrow as pa
import pytest

import tiein.next_purchase
import tiein.next_purchase.sequence
from tiein import loaders
from tiein.features import next_candidates
from tiein.mining import mine_pairs
from tiein.next_purchase import NextConfig, classify_next, next_stats, sequence_stats

FIX = Path(__file__).parent / "fixtures" / "launch"
MAPPING = {"catalog": {"category": ["department", "category"]}, "orders": {"timestamp": "date"}}


@pytest.fixture(scope="module")
def shop() -> loaders.Loaded:
    return loaders.load_files(
        catalog=FIX / "catalog.csv", orders=FIX / "orders.csv", mapping=loaders.Mapping.from_dict(MAPPING)
    )


def relations(
    orders: pa.Table, products: pa.Table, cfg: NextConfig | None = None, report: dict | None = None
) -> pa.Table:
    mined = mine_pairs(orders, min_count=1, after_window_days=90, threads=1)
    feats = next_candidates(products, mined.pairs, mined.timeline, min_count=1)
    return classify_next(
        feats, mined.report["returning_customers"], cfg, window_days=90, orders=orders, report=report
    )


def edges(rel: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r["src"], r["dst"]): {**r, "evidence": json.loads(r["evidence"])} for r in rel.to_pylist()}


def test_the_trap_is_there(shop: loaders.Loaded) -> None:
    """Counted the old way (any purchase, base rate over all returning customers), tent → bottle
    looks like a strong "next" relation: 8 of 8 tent buyers, never the other way, lift 1.5."""
    mined = mine_pairs(shop.orders, min_count=1, after_window_days=90, threads=1)
    cand = {
        (c["src"], c["dst"]): c
        for c in next_candidates(shop.products, mined.pairs, mined.timeline).to_pylist()
    }
    c = cand[("T01", "L01")]
    assert (c["after_sd"], c["after_ds"], c["returning_src"], c["later_dst"]) == (8, 0, 8, 16)
    assert mined.report["returning_customers"] == 24
    assert (c["after_sd"] / c["returning_src"]) / (c["later_dst"] / 24) == pytest.approx(1.5)


def test_late_launched_product_is_nobodys_next(shop: loaders.Loaded) -> None:
    rel = edges(relations(shop.orders, shop.products))
    assert ("T01", "L01") not in rel and ("Z01", "L01") not in rel
    assert not {d for s, d in rel if d == "L01"}
    kit = rel[("T01", "R01")]
    assert kit["score"] == pytest.approx(6 / 13, abs=1e-6)
    ev = kit["evidence"]
    assert (ev["after_count"], ev["before_count"], ev["returning_customers"], ev["expected_count"]) == (
        6,
        0,
        8,
        0,
    )
    assert ev["lift"] == 7.0


def test_time_matched_expectation_by_hand(shop: loaders.Loaded) -> None:
    mined = mine_pairs(shop.orders, min_count=1, after_window_days=90, threads=1)
    feats = next_candidates(shop.products, mined.pairs, mined.timeline, min_count=1)
    seq = sequence_stats(shop.orders, window_days=90)
    st = next_stats(feats, seq, NextConfig())
    pairs = list(zip(feats.column("src").to_pylist(), feats.column("dst").to_pylist(), strict=True))
    i = pairs.index(("T01", "L01"))
    assert (st["after"][i], st["at_risk"][i], st["expected"][i]) == (8, 8, pytest.approx(8 * 8.5 / 9))
    assert st["lift"][i] == pytest.approx(9 / (8 * 8.5 / 9 + 1))
    assert st["lift"][i] < NextConfig().min_lift


def _orders(rows: list[tuple[str, str, int]]) -> pa.Table:
    d0 = dt.datetime(2024, 1, 1)
    return pa.table(
        {
            "order_id": [f"{c}-{day}" for c, _, day in rows],
            "product_id": [p for _, p, _ in rows],
            "customer_id": [c for c, _, _ in rows],
            "ts": pa.array([d0 + dt.timedelta(days=day) for _, _, day in rows], pa.timestamp("us")),
        }
    )


def test_repeat_and_earlier_purchases_are_not_a_sequence() -> None:
    """b, then a, then b again: the repeat of b is no "a then b"; only first purchases count."""
    o = _orders([("1", "b", 0), ("1", "a", 5), ("1", "b", 10), ("2", "a", 0), ("2", "b", 3)])
    s = sequence_stats(o)
    got = dict(zip(s.after_keys.tolist(), s.after.tolist(), strict=True))
    a, b = 0, 1  # codes: sorted ids
    assert got.get(s.keys(pa.array([a]).to_numpy(), pa.array([b]).to_numpy()).item()) == 1  # customer 2 only
    assert got.get(s.keys(pa.array([b]).to_numpy(), pa.array([a]).to_numpy()).item()) == 1  # customer 1


def test_direction_reversed_on_held_back_months_is_dropped_and_reported() -> None:
    """x then y for 5 customers early on; y then x for 4 customers in the latest months."""
    rows = []
    for i in range(5):
        rows += [(f"c{i}", "x", i * 10), (f"c{i}", "y", i * 10 + 10)]
    for i in range(4):
        rows += [(f"d{i}", "y", 300 + i * 5), (f"d{i}", "x", 310 + i * 5)]
    o = _orders(rows)
    products = pa.table(
        {
            "product_id": ["x", "y"],
            "title": ["x", "y"],
            "brand": pa.array([None, None], pa.string()),
            "category_path": pa.array([None, None], pa.string()),
            "price": pa.array([None, None], pa.float64()),
        }
    )
    report: dict = {}
    rel = edges(relations(o, products, NextConfig(), report))
    # x → y reverses on the held-back months: dropped and reported. y → x (4 customers, all in the
    # latest months, 5 the other way: asymmetry -1/9 ≥ -0.5) is the order that holds now
    assert list(rel) == [("y", "x")] and report["dropped_by_direction"] == 1
    directed: dict = {}
    assert relations(o, products, NextConfig(min_asymmetry=0.05), directed).num_rows == 0
    assert directed["dropped_by_direction"] == 1
    kept = edges(relations(o, products, NextConfig(held_share=0)))
    assert sorted(kept) == [("x", "y"), ("y", "x")]  # bought in either order about as often
    ev = kept[("x", "y")]["evidence"]
    assert (ev["after_count"], ev["before_count"], ev["held_after_count"], ev["held_before_count"]) == (
        5,
        4,
        0,
        0,
    )


def _products(ids: list[str]) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "product_id": ids,
            "title": ids,
            "brand": pa.array([None] * n, pa.string()),
            "category_path": pa.array([None] * n, pa.string()),
            "price": pa.array([None] * n, pa.float64()),
        }
    )


def test_a_pair_bought_clearly_more_often_the_other_way_round_is_not_next() -> None:
    """3 customers buy x then y, 8 (then 10) buy y then x. asymmetry(x → y) = (3 - 8) / 11 =
    -0.45 ≥ -0.5: both orders are common, x → y and y → x are both "next"; with 10 the other way
    round it is (3 - 10) / 13 = -0.54: only y → x."""

    def shop(n_reverse: int) -> pa.Table:
        rows = []
        for i in range(3):
            rows += [(f"c{i}", "x", i), (f"c{i}", "y", i + 20)]
        for i in range(n_reverse):
            rows += [(f"d{i}", "y", i), (f"d{i}", "x", i + 20)]
        return _orders(rows)

    both = edges(relations(shop(8), _products(["x", "y"]), NextConfig(held_share=0)))
    assert sorted(both) == [("x", "y"), ("y", "x")]
    assert both[("x", "y")]["evidence"]["asymmetry"] == round(-5 / 11, 3)
    one = edges(relations(shop(10), _products(["x", "y"]), NextConfig(held_share=0)))
    assert list(one) == [("y", "x")]


def test_same_order_buyers_beyond_their_base_rate_add_to_the_score() -> None:
    """Everyone buys a on day 0 and comes back on day 30: b1-b5 for b, s1-s4 for s; t1-t3 buy s
    with a on day 0 and come back for z. No one else buys b or s, so the later-order expectation
    is 0 (the week-0 customers are all a's). a → b: 5 after, 12 at risk: 5 / 17 = 0.294118.
    a → s: 4 after, at risk 12 - 3 (t1-t3 had s with a) = 9, 3 in the same order. Same-order base
    rate (``expected_together``): week 0 holds a's 12 customers (own rate 3 / (12 × 9/12) = 1/3),
    so its 3 control slots (12 - 12 × 9/12) bought s at 0 and fall back on all weeks' control rate:
    week 4 (day 30), 12 slots of which 9 had not had s, 4 bought it: 4/12 = 1/3, shrunk by one
    slot: (0 + 1/3) / (3 + 1) = 1/12; expected 12 × 9/12 × 1/12 = 0.75. Score (4 + 0.5 × (3 -
    0.75)) / (9 + 0.5 × 3 + 5) = 5.125 / 15.5 = 0.330645: above a → b. Counting after only
    (``same_order_weight=0``): 4 / 14 = 0.285714, below a → b."""
    rows = []
    for i in range(5):
        rows += [(f"b{i}", "a", 0), (f"b{i}", "b", 30)]
    for i in range(4):
        rows += [(f"s{i}", "a", 0), (f"s{i}", "s", 30)]
    for i in range(3):
        rows += [(f"t{i}", "a", 0), (f"t{i}", "s", 0), (f"t{i}", "z", 30)]
    o = _orders(rows)
    products = _products(["a", "b", "s", "z"])
    rel = edges(relations(o, products, NextConfig(held_share=0)))
    assert rel[("a", "s")]["score"] == pytest.approx(5.125 / 15.5, abs=1e-6)
    assert rel[("a", "b")]["score"] == pytest.approx(5 / 17, abs=1e-6)
    ev = rel[("a", "s")]["evidence"]
    assert (ev["after_count"], ev["same_order_count"], ev["same_order_expected"]) == (4, 3, 0.75)
    assert (ev["returning_customers"], ev["expected_count"]) == (9, 0)
    plain = edges(relations(o, products, NextConfig(held_share=0, same_order_weight=0)))
    assert plain[("a", "s")]["score"] == pytest.approx(4 / 14, abs=1e-6)
    assert plain[("a", "s")]["score"] < plain[("a", "b")]["score"] == pytest.approx(5 / 17, abs=1e-6)


def test_config_roundtrip_and_old_states() -> None:
    cfg = NextConfig(min_customers=4)
    assert NextConfig(**cfg.to_dict()) == cfg
    old = {"min_customers": 3, "min_asymmetry": 0.2, "min_lift": 1.0, "prior": 5.0, "keep_per_product": 20}
    assert NextConfig(**old).held_share == 0.25  # a state written before: new fields get defaults


def test_sequence_doctests() -> None:
    for mod in (tiein.next_purchase, tiein.next_purchase.sequence):
        failures, tried = doctest.testmod(mod, verbose=False)
        assert failures == 0 and tried >= 3, mod.__name__

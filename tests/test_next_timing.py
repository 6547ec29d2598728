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
    rel = relations(o, products, NextConfig(), report)
    assert rel.num_rows == 0 and report["dropped_by_direction"] == 1
    kept = edges(relations(o, products, NextConfig(held_share=0)))
    assert list(kept) == [("x", "y")]
    ev = kept[("x", "y")]["evidence"]
    assert (ev["after_count"], ev["before_count"], ev["held_after_count"], ev["held_before_count"]) == (
        5,
        4,
        0,
        0,
    )


def test_config_roundtrip_and_old_states() -> None:
    cfg = NextConfig(min_customers=4)
    assert NextConfig(**cfg.to_dict()) == cfg
    old = {"min_customers": 3, "min_asymmetry": 0.2, "min_lift": 1.0, "prior": 5.0, "keep_per_product": 20}
    assert NextConfig(**old).held_share == 0.25  # a state written before: new fields get defaults


def test_sequence_doctests() -> None:
    for mod in (tiein.next_purchase, tiein.next_purchase.sequence):
        failures, tried = doctest.testmod(mod, verbose=False)
        assert failures == 0 and tried >= 3, mod.__name__

"""The feedback simulation (bench/feedback_sim.py) on a two-week slice of Online Retail I.

The replay is sound (arms split by user, the event log holds exactly what the arms report, a
re-ranker with a prior too strong to move reproduces the classifier's lists), and with every basket
item viewed the re-ranked lists sell more than the classifier's on the same invoices (paired 95 %
CI above 0), the item level adding to the pair level. The full Sep-Dec numbers are in docs/feedback.md.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from feedback_sim import load_orders, simulate, train_relations  # noqa: E402

from tiein.feedback import feedback_stats, read_log  # noqa: E402

CUT, END = datetime(2011, 11, 1), datetime(2011, 11, 15)


@pytest.fixture(scope="module")
def sliced(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("sim")
    products, orders = load_orders()
    rel = train_relations(products, orders, CUT, home)
    ts = orders.column("ts")
    held = orders.filter(pc.and_(pc.greater_equal(ts, CUT), pc.less(ts, END)))
    return home, rel, held


@pytest.mark.slow
def test_replay_is_consistent_with_the_log(sliced) -> None:  # type: ignore[no-untyped-def]
    home, rel, held = sliced
    assert rel.num_rows > 10_000 and set(rel.column("kind").to_pylist()) == {"complement"}
    res = simulate(rel, held, home, k=5, pool=20)
    c, r = res.arms["control"], res.arms["reranked"]
    assert c["requests"] > 300 and r["requests"] > 300
    assert 0.4 < c["requests"] / (c["requests"] + r["requests"]) < 0.6
    stats = feedback_stats(read_log(home / "sim-log"))
    kind = stats.kinds.to_pylist()[0]
    assert kind["impressions"] == c["impressions"] + r["impressions"]
    assert kind["purchases"] == kind["clicks"] == c["purchases"] + r["purchases"]
    for arm in (c, r):
        assert 0 < arm["conversion"]["value"] < 1 and arm["hits"] <= arm["requests"]
        assert arm["conversion"]["low"] < arm["conversion"]["value"] < arm["conversion"]["high"]
    assert res.paired["requests"] == c["requests"] + r["requests"]


@pytest.mark.slow
def test_immovable_prior_reproduces_the_classifier(sliced) -> None:  # type: ignore[no-untyped-def]
    home, rel, held = sliced
    res = simulate(rel, held, home, k=5, pool=20, prior_strength=1e12, item_strength=0, explore=0.0)
    p = res.paired
    assert p["invoices_with_different_purchases"] == 0
    assert p["lift"]["value"] == 0.0
    assert p["control_conversion"]["value"] == p["reranked_conversion"]["value"]


@pytest.mark.slow
def test_reranked_lists_sell_more_than_the_classifier(sliced) -> None:  # type: ignore[no-untyped-def]
    home, rel, held = sliced
    full = simulate(rel, held, home, k=5, pool=20, views=0)
    pairs_only = simulate(rel, held, home, k=5, pool=20, views=0, item_strength=0)
    for res in (full, pairs_only):
        p = res.paired
        assert p["requests"] > 1000 and p["invoices_with_different_purchases"] > 100
        assert p["lift"]["low"] > 0, p  # the re-ranked lists convert better, CI excludes 0
        assert p["reranked_conversion"]["value"] > p["control_conversion"]["value"]
    assert full.paired["lift"]["value"] > pairs_only.paired["lift"]["value"]

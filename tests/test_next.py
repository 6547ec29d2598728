""" "Next purchase" relations (kind "next", NEXT_PURCHASE): on the hand-made maternity shop
(tests/fixtures/maternity/README.md has every expected number worked out by hand) and on Online
Retail (slow).

The maternity rules: a delivery kit (待产包) leads to postpartum items, never to pregnancy items;
the reverse direction differs; popular items (wipes) are not "next"; too few customers, a
reversed order, a repeat purchase or a purchase outside the window keep a pair out.

The counts are first purchases (tiein.next_purchase.sequence); the expected counts are
time-matched: in the weeks the mothers buy the kit, no other customer is active, so each week's
base rate falls back on the other customers' rate over all weeks. For the belt B01 that is 8 of
16 slots (the mothers' pregnancy-order weeks, m01-m08 buy B01 within 90 days of them; m09-m10,
o01-o06 do not): base rate 1/2, expected 9 × 1/2 = 4.5 of the kit's 9 customers at risk, score
(8 - 4.5) / (9 + 5) = 0.25, lift (8 + 1) / (4.5 + 1) = 1.636.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tiein.next_purchase
import tiein.relations
from tiein import loaders
from tiein.explain import explain
from tiein.features import next_candidates
from tiein.graph import open_store
from tiein.mining import mine_pairs
from tiein.model import PRODUCTS, RELATIONS
from tiein.next_purchase import NextConfig, classify_next
from tiein.pipeline import BuildOptions, build

FIX = Path(__file__).parent / "fixtures" / "maternity"
MAPPING = {"catalog": {"category": ["department", "category"]}, "orders": {"timestamp": "date"}}
PREGNANCY = {"P01", "P02", "P03"}
POSTPARTUM = ["B01", "B03", "B02", "B04"]  # by score, ties by id (README)


def load() -> loaders.Loaded:
    return loaders.load_files(
        catalog=FIX / "catalog.csv", orders=FIX / "orders.csv", mapping=loaders.Mapping.from_dict(MAPPING)
    )


@pytest.fixture(scope="module")
def shop() -> loaders.Loaded:
    return load()


def next_relations(shop: loaders.Loaded, cfg: NextConfig | None = None, window: int | None = 90) -> pa.Table:
    """The library path the build takes: mine → candidates → classify_next."""
    cfg = cfg or NextConfig()
    mined = mine_pairs(shop.orders, min_count=1, after_window_days=window, threads=1)
    feats = next_candidates(shop.products, mined.pairs, mined.timeline, min_count=1)
    return classify_next(
        feats, mined.report["returning_customers"], cfg, window_days=window, orders=shop.orders
    )


def targets(rel: pa.Table, src: str) -> list[str]:
    return rel.filter(pc.equal(rel.column("src"), src)).column("dst").to_pylist()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The maternity shop built by the real pipeline into the embedded store."""
    home = tmp_path_factory.mktemp("maternity")
    summary = build(
        BuildOptions(
            catalog=FIX / "catalog.csv",
            orders=FIX / "orders.csv",
            mapping=loaders.Mapping.from_dict(MAPPING),
            home=home,
            embeddings=False,
            discover_scenes=False,
        )
    )
    store = open_store(str(home / "graph"))
    yield store, summary
    store.close()


def test_timeline_counts_by_hand(shop: loaders.Loaded) -> None:
    mined = mine_pairs(shop.orders, min_count=1, after_window_days=90, threads=1)
    assert mined.report["returning_customers"] == 17
    tl = {r["product_id"]: r for r in mined.timeline.to_pylist()}
    assert tl["K01"]["returning"] == 9 and tl["K01"]["customers"] == 11 and tl["K01"]["later"] == 10
    assert {p: tl[p]["later"] for p in ("B01", "B03", "B02", "B04", "B05", "W01", "P03", "P01", "C01")} == {
        "B01": 8,
        "B03": 8,
        "B02": 6,
        "B04": 6,
        "B05": 2,
        "W01": 10,
        "P03": 3,
        "P01": 1,
        "C01": 0,
    }


def test_delivery_kit_leads_to_postpartum_items_not_pregnancy_items(built: Any) -> None:
    store, summary = built
    assert summary.relations["next"] > 0
    # the store loaded them beside the season step, and they were final (graph/ladybug_staged.py)
    assert "NEXT_PURCHASE" in summary.staged["tables"] and summary.staged["reloaded"] is None
    rows = store.related("K01", "next", k=20)
    assert [r["product_id"] for r in rows] == POSTPARTUM
    assert not PREGNANCY & {r["product_id"] for r in rows}
    # (8 - 4.5) / 14 for B01, B03; (6 - 3.375) / 14 for B02, B04 (module doc)
    assert [r["score"] for r in rows] == [0.25, 0.25, 0.1875, 0.1875]
    belt = rows[0]
    assert belt["kind"] == "next" and belt["confidence"] == pytest.approx(8 / 9)
    assert belt["lift"] == pytest.approx(9 / 5.5, abs=1e-6)
    ev = belt["evidence"]
    assert {k: ev[k] for k in ("after_count", "before_count", "returning_customers", "window_days")} == {
        "after_count": 8,
        "before_count": 0,
        "returning_customers": 9,
        "window_days": 90,
    }
    assert ev["confidence"] == round(8 / 9, 4) and ev["lift"] == round(9 / 5.5, 3)
    assert ev["expected_count"] == 4.5 and ev["base_rate"] == 0.5 and ev["asymmetry"] == 1.0
    assert ev["median_gap_days"] == 35.0  # kit on day 45, postpartum order on day 80
    # nobody bought the belt with the kit: nothing added, no same-order expectation needed
    assert ev["same_order_count"] == 0 and ev["same_order_expected"] is None


def test_reverse_direction_differs(built: Any) -> None:
    store, _ = built
    pillow = store.related("P01", "next", k=20)
    # 10 of 10 mothers, nobody else ever buys the kit first: expected 0, score 10 / (10 + 5)
    assert pillow[0]["product_id"] == "K01" and pillow[0]["score"] == 0.666667
    assert pillow[0]["evidence"]["before_count"] == 1 and pillow[0]["evidence"]["asymmetry"] == round(
        9 / 11, 3
    )
    assert store.related("B01", "next") == []  # nobody comes back after the postpartum order
    # no pair is kept in both directions (every pair of this shop is bought in one order only)
    pairs = store.query(
        "MATCH (a:Product)-[:NEXT_PURCHASE]->(b:Product) RETURN a.product_id AS s, b.product_id AS d"
    )
    edges = {(r["s"], r["d"]) for r in pairs}
    assert edges and not {(d, s) for s, d in edges} & edges


def test_each_rule_keeps_its_pair_out(shop: loaders.Loaded) -> None:
    """Relax one rule at a time: the pair that rule keeps out comes in (so each rule is live)."""
    assert targets(next_relations(shop), "K01") == POSTPARTUM
    assert "B05" in targets(next_relations(shop, NextConfig(min_customers=2)), "K01")  # 2 customers
    assert targets(next_relations(shop, NextConfig(min_lift=1.7)), "K01") == []  # all at most 1.636
    # wipes: 4 customers after the kit, never before, but the other customers buy wipes too:
    # expected 3.6, lift 5 / 4.6 = 1.087 < 1.2
    assert "W01" not in targets(next_relations(shop), "K01")
    assert "W01" in targets(next_relations(shop, NextConfig(min_lift=1.05)), "K01")
    # prenatal vitamins again after the kit (m06-m08): a repeat, so no "kit then vitamins" at all,
    # whatever the thresholds (mining's any-purchase count says 3)
    mined = mine_pairs(shop.orders, min_count=1, after_window_days=90, threads=1)
    cand = next_candidates(shop.products, mined.pairs, mined.timeline).to_pylist()
    vit = next(c for c in cand if (c["src"], c["dst"]) == ("K01", "P03"))
    assert (vit["after_sd"], vit["after_ds"]) == (3, 5)
    loose = NextConfig(min_customers=1, min_asymmetry=-1.0, min_lift=0.0, min_z=-99.0, held_share=0.0)
    assert "P03" not in targets(next_relations(shop, loose), "K01")
    # baby rice 200 days after the kit: outside the window
    names = tiein.next_purchase.sequence_stats(shop.orders, window_days=90).names.to_pylist()
    k01, c01 = names.index("K01"), names.index("C01")
    for window, after in ((90, 0), (None, 6)):  # m01-m06
        seq = tiein.next_purchase.sequence_stats(shop.orders, window_days=window)
        key = seq.keys(np.array([k01]), np.array([c01]))
        assert int(tiein.next_purchase.sequence.lookup(seq.after_keys, seq.after, key)[0]) == after
    assert "C01" not in targets(next_relations(shop), "K01")
    assert targets(next_relations(shop, NextConfig(keep_per_product=2)), "K01") == POSTPARTUM[:2]


def test_relations_table_contract(shop: loaders.Loaded) -> None:
    rel = next_relations(shop)
    assert rel.schema == RELATIONS
    assert set(rel.column("kind").to_pylist()) == {"next"}
    assert (
        rel.column("co_view").null_count == rel.num_rows
        and rel.column("similarity").null_count == rel.num_rows
    )
    for ev in rel.column("evidence").to_pylist():
        keys = json.loads(ev)
        assert {"after_count", "before_count", "confidence", "lift", "window_days", "median_gap_days"} <= set(
            keys
        )
    none = mine_pairs(shop.orders.slice(0, 0), threads=1)
    empty = classify_next(next_candidates(shop.products, none.pairs, none.timeline), 0)
    assert empty.num_rows == 0 and empty.schema == RELATIONS


def test_explain_next(built: Any) -> None:
    store, _ = built
    row = store.related("K01", "next")[0]
    e = explain(row)
    # they bought THIS item afterwards (not "回购": re-bought the same one); no lift, no median
    assert e.zh.startswith("之后常买：8 位顾客买了主商品后 90 天内又买了它；回头客里有 89% 买了它")
    assert "通常隔 35 天左右" in e.zh and "提升度" not in e.zh and "回购" not in e.zh
    assert e.en.startswith("bought next: 8 customers bought it within 90 days after the main item")
    assert "usually about 35 days later" in e.en and "lift" not in e.en and "median" not in e.en


def test_scoring_doctests() -> None:
    """The scoring functions' examples pass and there are examples for each (pytest also runs
    every module's doctests through --doctest-modules)."""
    finder = doctest.DocTestFinder()
    for fn in (
        tiein.next_purchase.next_confidence,
        tiein.next_purchase.next_lift,
        tiein.next_purchase.asymmetry,
        tiein.next_purchase.next_score,
    ):
        tests = finder.find(fn, globs=dict(vars(tiein.next_purchase)))
        assert sum(len(t.examples) for t in tests) >= 1, fn.__name__
        runner = doctest.DocTestRunner(verbose=False)
        for t in tests:
            runner.run(t)
        assert runner.failures == 0, fn.__name__
    failures, tried = doctest.testmod(tiein.next_purchase, verbose=False)
    assert failures == 0 and tried >= 4
    failures, tried = doctest.testmod(tiein.relations, verbose=False)
    assert failures == 0 and tried > 10


@pytest.mark.slow
def test_cli_min_next_and_related(tmp_path: Path) -> None:
    """`tiein build --min-next 2` lets the 2-customer nursing pillow in; `tiein related --kind next`."""
    env_home = tmp_path / "home"
    run = [sys.executable, "-m", "tiein.cli"]
    b = subprocess.run(
        [
            *run,
            "build",
            "--catalog",
            str(FIX / "catalog.csv"),
            "--orders",
            str(FIX / "orders.csv"),
            "--map",
            "catalog.category=department,category",
            "--map",
            "orders.timestamp=date",
            "--no-embeddings",
            "--no-scenes",
            "--min-next",
            "2",
            "--home",
            str(env_home),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert b.returncode == 0, b.stderr
    r = subprocess.run(
        [*run, "related", "K01", "--kind", "next", "--json", "--home", str(env_home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["product"]["sales_role"] == "hero"
    got = [row["product_id"] for row in payload["related"]]
    assert got == [*POSTPARTUM, "B05"]
    assert payload["related"][0]["explanation_zh"].startswith("之后常买：8 位顾客")
    text = subprocess.run(
        [*run, "related", "K01", "--kind", "next", "--home", str(env_home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "hero item" in text.stdout and "bought next: 8 customers" in text.stdout


@pytest.mark.slow
def test_online_retail_next_purchase() -> None:
    """On UCI Online Retail: relations are directed, their first-purchase after counts equal an
    independent SQL recount within the 90-day window, and on the time split at 2011-09-01
    (relations from earlier orders only) tiein's next beats popularity (bench/next_purchase.py
    has the full comparison with every baseline)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import next_purchase as bench

    shop = loaders.load_dataset("online_retail")
    rel, report, _ = bench.next_relations(shop.orders, shop.products, 90, NextConfig())
    assert report["returning_customers"] > 1000
    assert report["next"]["relations"] == rel.num_rows and report["next"]["dropped_by_direction"] > 0
    chk = bench.checks(shop.orders, rel, 90, sample=100)
    assert chk["relations"] > 10_000
    # pairs bought in either order about as often are kept both ways; nothing bought mostly the
    # other way round (asymmetry below the threshold)
    assert chk["min_asymmetry"] >= NextConfig().min_asymmetry
    assert chk["mirrored_pairs"] > 0
    assert chk["gaps_within_window"] and chk["max_median_gap_days"] <= 90
    assert chk["recounted"] >= 100 and chk["recount_mismatches"] == 0
    split = bench.split_task(
        shop.orders, shop.products, bench.dt.datetime(2011, 9, 1), 90, 10, NextConfig(median_gap=False)
    )
    assert split["users"] > 500
    m = split["methods"]
    assert m["tiein_rr"]["p_at_k"] > m["popular"]["p_at_k"] > 0


def test_sequence_stats_kept_for_the_relations_are_exact() -> None:
    """``min_after`` keeps after of the pairs with after >= min and of their reverses, had and
    together of the former, each equal to the full count; the relations are the same."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from synthetic import synthetic_orders

    from tiein.next_purchase.sequence import lookup, sequence_stats

    orders = synthetic_orders(300_000, 3_000, 30)
    full = sequence_stats(orders, window_days=90)
    kept = sequence_stats(orders, window_days=90, min_after=3)
    strong = full.after_keys[full.after >= 3]
    bits = np.uint64(full.bits)
    reverse = ((strong & np.uint64((1 << full.bits) - 1)) << bits) | (strong >> bits)
    assert 1_000 < strong.size < full.after_keys.size // 3  # most pairs: one or two customers
    assert kept.after_keys.size < full.after_keys.size // 2
    for keys in (strong, reverse):
        for name in ("after", "after_held"):
            assert (
                lookup(kept.after_keys, getattr(kept, name), keys)
                == lookup(full.after_keys, getattr(full, name), keys)
            ).all()
        assert np.isin(keys[np.isin(keys, full.after_keys)], kept.after_keys).all()  # reverses bought
    assert (lookup(kept.had_keys, kept.had, strong) == lookup(full.had_keys, full.had, strong)).all()
    assert (
        lookup(kept.together_keys, kept.together, strong) == lookup(full.together_keys, full.together, strong)
    ).all()
    assert (
        lookup(full.had_keys, full.had, strong).sum() > 0
        and lookup(full.together_keys, full.together, strong).sum() > 0
    )
    assert set(kept.had_keys.tolist()) <= set(strong.tolist())
    # the relations: computed from the full statistics or from what min_after keeps
    ids = pc.unique(orders.column("product_id"))
    products = pa.table(
        {f.name: ids if f.name == "product_id" else pa.nulls(len(ids), f.type) for f in PRODUCTS},
        schema=PRODUCTS,
    )
    mined = mine_pairs(orders, min_count=2, after_window_days=90, threads=1)
    cand = next_candidates(products, mined.pairs, mined.timeline)
    cfg = NextConfig()
    mine = classify_next(cand, 0, cfg, window_days=90, orders=orders)
    everything = classify_next(cand, 0, cfg, window_days=90, seq=full)
    assert mine.num_rows > 50 and mine.equals(everything)


def brute_sequence(seq: Any, exposed: np.ndarray) -> dict[str, dict[tuple[int, int], Any]]:
    """after / held / had / together and the median gaps, by a loop over every customer's pairs
    of first purchases (the definitions of tiein/next_purchase/sequence.py); ``exposed``: which
    first purchases were followed by another order within the window."""
    from statistics import median

    window = seq.window_s
    by_c: dict[int, list[tuple[int, int, bool]]] = {}
    for c, p, t, e in zip(
        seq.first_c.tolist(), seq.first_p.tolist(), seq.first_t.tolist(), exposed, strict=True
    ):
        by_c.setdefault(c, []).append((p, t, bool(e)))
    out: dict[str, dict[tuple[int, int], Any]] = {k: {} for k in ("after", "held", "had", "together", "gaps")}

    def add(name: str, key: tuple[int, int]) -> None:
        out[name][key] = out[name].get(key, 0) + 1

    for rows in by_c.values():
        for a, ta, a_exposed in rows:
            for b, tb, _ in rows:
                if a == b:
                    continue
                if ta < tb <= ta + window:
                    add("after", (a, b))
                    out["gaps"].setdefault((a, b), []).append((tb - ta) / 86_400)
                    if ta >= seq.held_from:
                        add("held", (a, b))
                if ta == tb:
                    add("together", (a, b))
                if a_exposed and ta - window <= tb <= ta:
                    add("had", (a, b))
    out["gaps"] = {k: median(v) for k, v in out["gaps"].items()}
    return out


@pytest.mark.parametrize("min_after", [1, 3])
def test_sequence_stats_equal_a_loop_over_every_customer(min_after: int) -> None:
    """The compiled pair counts of the sequence statistics (after, held-back after, had,
    together) and the median gaps equal a plain loop over each customer's first purchases;
    with ``min_after`` had and together only for the pairs it keeps."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from synthetic import synthetic_orders

    from tiein.mining.kernels import _encode_nullable, _id_column, _ts_column
    from tiein.next_purchase import sequence

    orders = synthetic_orders(60_000, 400, 20)
    seq = sequence.sequence_stats(orders, window_days=60, min_after=min_after)
    # exposed: the customer ordered again (a repeat order counts too) within the window after it
    cust = _encode_nullable(_id_column(orders, "customer_id", nullable=True)).tolist()
    secs = ((_ts_column(orders, "ts") - seq.t0) // 1_000_000).tolist()
    times: dict[int, list[int]] = {}
    for c, t in zip(cust, secs, strict=True):
        times.setdefault(c, []).append(t)
    exposed = [
        any(t < u <= t + seq.window_s for u in times[c])
        for c, t in zip(seq.first_c.tolist(), seq.first_t.tolist(), strict=True)
    ]
    assert 0 < sum(exposed) < len(exposed)
    want = brute_sequence(seq, np.array(exposed))
    bits = seq.bits

    def as_dict(keys: np.ndarray, values: np.ndarray) -> dict[tuple[int, int], int]:
        return {
            (int(k) >> bits, int(k) & ((1 << bits) - 1)): int(v) for k, v in zip(keys, values, strict=True)
        }

    after = as_dict(seq.after_keys, seq.after)
    strong = {k for k, v in want["after"].items() if v >= min_after}
    kept_after = {k: v for k, v in want["after"].items() if k in strong or (k[1], k[0]) in strong}
    assert after == kept_after and len(strong) > 100
    assert as_dict(seq.after_keys, seq.after_held) == {k: want["held"].get(k, 0) for k in kept_after}
    for name in ("had", "together"):  # every pair, or with min_after those it keeps
        got = as_dict(getattr(seq, f"{name}_keys"), getattr(seq, name))
        assert got == {k: v for k, v in want[name].items() if min_after == 1 or k in strong}, name
    assert sum(want["had"].values()) > 0 and sum(want["together"].values()) > 0
    gaps = sequence.first_gaps(seq, seq.after_keys[::-1].copy())[::-1]  # any order of keys
    assert gaps.tolist() == pytest.approx([want["gaps"][k] for k in after])
    absent = seq.keys(np.array([0]), np.array([0]))  # a product never follows itself
    assert np.isnan(sequence.first_gaps(seq, absent)).all()

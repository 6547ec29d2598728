"""Tests of tiein.mining: hand-counted fixtures, a brute-force reference, edge cases."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tiein.mining.jit as mining_jit
import tiein.mining.kernels as mining
from tiein.errors import ConfigError, InputError
from tiein.mining import mine_pairs
from tiein.model import ORDERS, PAIR_STATS, VIEWS

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 1, 1, 10, 0, 0)


def orders(rows: list[tuple]) -> pa.Table:
    """ORDERS from (order, product) or (order, product, customer, time) tuples."""
    cols = list(zip(*rows, strict=True))
    n = len(rows)
    return pa.table(
        {
            "order_id": list(cols[0]),
            "product_id": list(cols[1]),
            "quantity": [1.0] * n,
            "customer_id": list(cols[2]) if len(cols) > 2 else [None] * n,
            "ts": list(cols[3]) if len(cols) > 3 else [None] * n,
        },
        schema=ORDERS,
    )


def by_pair(table: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r["a"], r["b"]): r for r in table.to_pylist()}


# Six baskets counted by hand:
#   O1 A B C | O2 A B | O3 A C | O4 B C D | O5 A B D | O6 D        (n = 6)
#   n_A = 4, n_B = 4, n_C = 3, n_D = 3
#   AB = 3 (O1 O2 O5), AC = 2 (O1 O3), AD = 1 (O5), BC = 2 (O1 O4), BD = 2 (O4 O5), CD = 1 (O4)
HAND = [
    ("O1", "A"),
    ("O1", "B"),
    ("O1", "C"),
    ("O2", "A"),
    ("O2", "B"),
    ("O3", "A"),
    ("O3", "C"),
    ("O4", "B"),
    ("O4", "C"),
    ("O4", "D"),
    ("O5", "A"),
    ("O5", "B"),
    ("O5", "D"),
    ("O6", "D"),
]


def test_hand_counts_support_confidence_lift() -> None:
    res = mine_pairs(orders(HAND), customer_col=None, ts_col=None, min_count=2)
    assert res.pairs.schema == PAIR_STATS
    got = by_pair(res.pairs)
    assert list(got) == [("A", "B"), ("A", "C"), ("B", "C"), ("B", "D")]
    ab = got[("A", "B")]
    assert (ab["n_ab"], ab["n_a"], ab["n_b"], ab["n"]) == (3, 4, 4, 6)
    assert ab["support"] == pytest.approx(3 / 6)
    assert ab["conf_ab"] == pytest.approx(3 / 4)
    assert ab["conf_ba"] == pytest.approx(3 / 4)
    assert ab["lift"] == pytest.approx(3 * 6 / (4 * 4))
    bd = got[("B", "D")]
    assert (bd["n_ab"], bd["n_a"], bd["n_b"]) == (2, 4, 3)
    assert bd["support"] == pytest.approx(2 / 6)
    assert bd["conf_ab"] == pytest.approx(2 / 4)
    assert bd["conf_ba"] == pytest.approx(2 / 3)
    assert bd["lift"] == pytest.approx(2 * 6 / (4 * 3))
    assert all(r["after_ab"] == 0 and r["after_ba"] == 0 for r in got.values())
    rep = res.report
    assert (rep["lines"], rep["baskets"], rep["n"], rep["items"]) == (14, 6, 6, 4)
    assert (rep["duplicate_lines"], rep["giant_baskets"], rep["pairs_co"], rep["pairs"]) == (0, 0, 6, 4)
    assert set(rep["seconds"]) >= {"encode", "pairs", "after", "assemble"}


def test_progress_and_untyped_null_columns() -> None:
    calls: list[tuple[str, int, int]] = []
    t = pa.table(
        {
            "order_id": [o for o, _ in HAND],
            "product_id": [p for _, p in HAND],
            "customer_id": [None] * len(HAND),  # pa.null() type: no customers known
            "ts": [None] * len(HAND),
        }
    )
    res = mine_pairs(t, min_count=2, progress=lambda step, done, total: calls.append((step, done, total)))
    assert res.pairs.num_rows == 4 and res.report["after_events"] == 0
    steps = [c[0] for c in calls]
    assert steps[0] == "encode" and steps[-1] == "assemble"
    assert [s for i, s in enumerate(steps) if s not in steps[:i]] == [
        "encode",
        "baskets",
        "after",
        "pairs",
        "assemble",
    ]
    assert all(0 < done <= total for _, done, total in calls)
    assert ("pairs", calls[steps.index("pairs")][2], calls[steps.index("pairs")][2]) in calls


def test_min_count() -> None:
    t = orders(HAND)
    all_pairs = by_pair(mine_pairs(t, customer_col=None, ts_col=None, min_count=1).pairs)
    assert {k: r["n_ab"] for k, r in all_pairs.items()} == {
        ("A", "B"): 3,
        ("A", "C"): 2,
        ("A", "D"): 1,
        ("B", "C"): 2,
        ("B", "D"): 2,
        ("C", "D"): 1,
    }
    top = mine_pairs(t, customer_col=None, ts_col=None, min_count=3).pairs
    assert top.column("a").to_pylist() == ["A"] and top.column("b").to_pylist() == ["B"]
    assert mine_pairs(t, customer_col=None, ts_col=None, min_count=4).pairs.num_rows == 0


def test_duplicate_lines_count_once() -> None:
    dup = HAND + [("O1", "A"), ("O1", "A"), ("O4", "D")]
    res = mine_pairs(orders(dup), customer_col=None, ts_col=None, min_count=2)
    base = mine_pairs(orders(HAND), customer_col=None, ts_col=None, min_count=2)
    assert res.pairs.equals(base.pairs)
    assert res.report["duplicate_lines"] == 3
    assert res.report["lines"] == 17


def test_giant_basket_skipped_and_reported() -> None:
    giant = [("G", p) for p in "ABCDE"] + [("G", "A")]
    res = mine_pairs(orders(HAND + giant), customer_col=None, ts_col=None, min_count=2, max_basket=4)
    base = mine_pairs(orders(HAND), customer_col=None, ts_col=None, min_count=2)
    # the giant basket counts nowhere: not in n, not in n_a, not in n_ab; E only occurs there
    assert res.pairs.equals(base.pairs)
    rep = res.report
    assert (rep["baskets"], rep["giant_baskets"], rep["giant_lines"], rep["n"]) == (7, 1, 5, 6)
    assert rep["items"] == 4
    # with a larger limit it is an ordinary basket
    big = mine_pairs(orders(HAND + giant), customer_col=None, ts_col=None, min_count=2, max_basket=5)
    assert big.report["giant_baskets"] == 0
    assert by_pair(big.pairs)[("A", "B")]["n_ab"] == 4


def test_chunked_input_gives_the_same_table() -> None:
    t = random_orders(3)
    chunked = pa.concat_tables([t.slice(0, 40), t.slice(40, 7), t.slice(47)])
    assert chunked.column("product_id").num_chunks == 3
    assert mine_pairs(chunked, min_count=1).pairs.equals(mine_pairs(t.combine_chunks(), min_count=1).pairs)


def test_kept_counts_equal_count_pairs() -> None:
    """``keep_counts`` hands back what count_pairs gives (a build's state reuses them)."""
    from tiein.mining import PairCounts, count_pairs

    t = pa.concat_tables([random_orders(5), orders([("G", p) for p in "ABCDEFGHIJ"])])
    for kw in ({}, {"customer_col": None, "ts_col": None}, {"after_window_days": None}):
        got = mine_pairs(t, min_count=2, max_basket=8, keep_counts=True, **kw).counts
        want = count_pairs(t, max_basket=8, **kw)
        assert got.names.equals(want.names)
        for k in PairCounts.ARRAYS:
            np.testing.assert_array_equal(getattr(got, k), getattr(want, k), err_msg=k)
            assert getattr(got, k).dtype == getattr(want, k).dtype, k
        assert (got.n, got.returning_customers, got.baskets) == (
            want.n,
            want.returning_customers,
            want.baskets,
        )
    assert mine_pairs(t).counts is None


def test_string_order_of_pairs() -> None:
    # "10" < "9" as strings: the pair is stored as a="10", b="9"
    t = orders([("1", "9"), ("1", "10"), ("2", "9"), ("2", "10"), ("3", "9")])
    rows = mine_pairs(t, customer_col=None, ts_col=None).pairs.to_pylist()
    assert [(r["a"], r["b"], r["n_a"], r["n_b"]) for r in rows] == [("10", "9", 2, 3)]


def test_after_counts_on_a_hand_timeline() -> None:
    d = timedelta(days=1)
    rows = [
        # c1: A, then B exactly 90 days later (window edge, included)
        ("o1", "A", "c1", T0),
        ("o2", "B", "c1", T0 + 90 * d),
        # c2: A, then B 90 days and 1 second later (outside)
        ("o3", "A", "c2", T0),
        ("o4", "B", "c2", T0 + 90 * d + timedelta(seconds=1)),
        # c3: A and B in the same order; C in another order at the same time (not later)
        ("o5", "A", "c3", T0),
        ("o5", "B", "c3", T0),
        ("o6", "C", "c3", T0),
        # c4: B, then A
        ("o7", "B", "c4", T0 + 5 * d),
        ("o8", "A", "c4", T0 + 10 * d),
        # c5: A, B, B, A: both directions, each customer counted once
        ("o9", "A", "c5", T0),
        ("o10", "B", "c5", T0 + d),
        ("o11", "B", "c5", T0 + 2 * d),
        ("o12", "A", "c5", T0 + 3 * d),
        # c6, c7: E then F, never in one basket
        ("o13", "E", "c6", T0),
        ("o14", "F", "c6", T0 + 7 * d),
        ("o15", "E", "c7", T0),
        ("o16", "F", "c7", T0 + 8 * d),
        # a guest buys A then B: no customer, no after count
        ("o17", "A", None, T0),
        ("o18", "B", None, T0 + d),
    ]
    res = mine_pairs(orders(rows), min_count=2)
    got = by_pair(res.pairs)
    assert set(got) == {("A", "B"), ("E", "F")}
    ab = got[("A", "B")]
    assert (ab["n_ab"], ab["after_ab"], ab["after_ba"]) == (1, 2, 2)  # c1 c5 / c4 c5
    ef = got[("E", "F")]
    assert (ef["n_ab"], ef["after_ab"], ef["after_ba"]) == (0, 2, 0)
    assert (ef["support"], ef["conf_ab"], ef["conf_ba"], ef["lift"]) == (0.0, 0.0, 0.0, 0.0)
    assert ab["n"] == 18  # the guest's orders count as baskets
    everything = by_pair(mine_pairs(orders(rows), min_count=1).pairs)
    # c3's C at the same time as A and B is not "later", and C shares no basket with them
    assert ("A", "C") not in everything and ("B", "C") not in everything
    # no window: c2's late purchase counts too
    unbounded = by_pair(mine_pairs(orders(rows), min_count=2, after_window_days=None).pairs)
    assert unbounded[("A", "B")]["after_ab"] == 3
    # a 0-day window: nothing is later and within it
    zero = by_pair(mine_pairs(orders(rows), min_count=1, after_window_days=0).pairs)
    assert all(r["after_ab"] == 0 and r["after_ba"] == 0 for r in zero.values())


def test_customer_cap_skips_wholesalers() -> None:
    d = timedelta(days=1)
    rows = [
        ("o1", "A", "shop", T0),
        ("o2", "B", "shop", T0 + d),
        ("o3", "C", "shop", T0 + 2 * d),
        ("o4", "A", "c1", T0),
        ("o5", "B", "c1", T0 + d),
    ]
    res = mine_pairs(orders(rows), min_count=1, max_customer_items=2)
    assert res.report["customers_skipped"] == 1
    assert res.report["after_customers"] == 1
    got = by_pair(res.pairs)
    assert got[("A", "B")]["after_ab"] == 1  # c1 only
    assert ("B", "C") not in got and ("A", "C") not in got
    full = by_pair(mine_pairs(orders(rows), min_count=1, max_customer_items=3).pairs)
    assert full[("A", "B")]["after_ab"] == 2
    assert full[("B", "C")]["after_ab"] == 1


def test_empty_input() -> None:
    res = mine_pairs(ORDERS.empty_table())
    assert res.pairs.schema == PAIR_STATS
    assert res.pairs.num_rows == 0
    assert res.report["n"] == 0 and res.report["pairs"] == 0


def test_sessions_without_customers() -> None:
    views = pa.table(
        {
            "session_id": ["s1", "s1", "s1", "s2", "s2", "s3"],
            "product_id": ["X", "Y", "X", "X", "Y", "Y"],
            "ts": [T0] * 6,
            "event": ["view"] * 6,
        },
        schema=VIEWS,
    )
    res = mine_pairs(views, basket_col="session_id", customer_col=None)
    rows = res.pairs.to_pylist()
    assert [(r["a"], r["b"], r["n_ab"], r["n_a"], r["n_b"], r["n"]) for r in rows] == [("X", "Y", 2, 2, 3, 3)]
    assert rows[0]["after_ab"] == 0 and rows[0]["after_ba"] == 0
    assert res.report["duplicate_lines"] == 1


def test_bad_input_is_reported() -> None:
    t = orders(HAND)
    with pytest.raises(InputError, match="'basket'"):
        mine_pairs(t, basket_col="basket")
    bad = t.set_column(1, "product_id", pa.array(["A", None] + ["B"] * 12, pa.string()))
    with pytest.raises(InputError) as err:
        mine_pairs(bad)
    assert err.value.row == 2 and err.value.column == "product_id"
    blank = t.set_column(0, "order_id", pa.array(["O1"] * 5 + [""] + ["O2"] * 8, pa.string()))
    with pytest.raises(InputError) as err:
        mine_pairs(blank)
    assert err.value.row == 6 and err.value.column == "order_id"
    with pytest.raises(InputError, match="timestamps"):
        mine_pairs(t.set_column(4, "ts", pa.array(["x"] * 14)))
    with pytest.raises(ConfigError):
        mine_pairs(t, min_count=0)
    # integer ids are accepted as strings
    ints = pa.table({"order_id": [1, 1, 2, 2], "product_id": [7, 8, 7, 8]})
    res = mine_pairs(ints, customer_col=None, ts_col=None)
    assert res.pairs.select(["a", "b", "n_ab"]).to_pylist() == [{"a": "7", "b": "8", "n_ab": 2}]


# --- brute-force reference -----------------------------------------------------------------


def brute_force(t: pa.Table, min_count: int, max_basket: int, window_days: int | None, cap: int) -> list:
    """PAIR_STATS rows by plain Python loops, straight from the definitions."""
    lines = t.to_pylist()
    items_of: dict[str, set] = defaultdict(set)
    for r in lines:
        items_of[r["order_id"]].add(r["product_id"])
    good = {o for o, s in items_of.items() if len(s) <= max_basket}
    n = len(good)
    n_item: dict[str, int] = defaultdict(int)
    n_pair: dict[tuple, int] = defaultdict(int)
    for o in good:
        for p in items_of[o]:
            n_item[p] += 1
        for a, b in itertools.combinations(sorted(items_of[o]), 2):
            n_pair[(a, b)] += 1
    events: dict[str, set] = defaultdict(set)
    for r in lines:
        if r["order_id"] in good and r["customer_id"] is not None and r["ts"] is not None:
            events[r["customer_id"]].add((r["ts"], r["product_id"]))
    after: dict[tuple, int] = defaultdict(int)
    for evs in events.values():
        if len({p for _, p in evs}) > cap:
            continue
        seen = set()
        for (t1, x), (t2, y) in itertools.product(evs, evs):
            if x != y and t2 > t1 and (window_days is None or t2 - t1 <= timedelta(days=window_days)):
                seen.add((x, y))
        for xy in seen:
            after[xy] += 1
    keys = set(n_pair) | {tuple(sorted(xy)) for xy in after}
    rows = []
    for a, b in sorted(keys):
        nab, ab, ba = n_pair.get((a, b), 0), after.get((a, b), 0), after.get((b, a), 0)
        if max(nab, ab, ba) < min_count:
            continue
        na, nb = n_item[a], n_item[b]
        rows.append(
            dict(
                a=a,
                b=b,
                n_ab=nab,
                n_a=na,
                n_b=nb,
                n=n,
                support=nab / n,
                conf_ab=nab / na,
                conf_ba=nab / nb,
                lift=nab * n / (na * nb),
                after_ab=ab,
                after_ba=ba,
            )
        )
    return rows


def random_orders(seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n_lines = int(rng.integers(50, 400))
    order = rng.integers(0, 60, n_lines)
    product = rng.zipf(1.4, n_lines) % 25
    customer_of_order = rng.integers(0, 12, 60)
    day_of_order = rng.integers(0, 200, 60)
    cust = [None if c == 0 else f"c{c}" for c in customer_of_order[order]]
    ts = [T0 + timedelta(days=int(d)) if d % 17 else None for d in day_of_order[order]]
    return pa.table(
        {
            "order_id": [f"o{o}" for o in order],
            "product_id": [f"p{p}" for p in product],
            "quantity": [1.0] * n_lines,
            "customer_id": cust,
            "ts": ts,
        },
        schema=ORDERS,
    )


def assert_same(got: pa.Table, want: list) -> None:
    rows = got.to_pylist()
    assert [(r["a"], r["b"]) for r in rows] == [(r["a"], r["b"]) for r in want]
    for g, w in zip(rows, want, strict=True):
        assert g == pytest.approx(w), (g, w)


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    t = random_orders(seed)
    params = dict(
        min_count=1 + seed % 3,
        max_basket=6 + seed % 5,
        window_days=[30, 90, None][seed % 3],
        cap=[4, 8, 1000][seed % 3],
    )
    want = brute_force(t, **params)
    kw = dict(
        min_count=params["min_count"],
        max_basket=params["max_basket"],
        after_window_days=params["window_days"],
        max_customer_items=params["cap"],
    )
    assert_same(mine_pairs(t, **kw).pairs, want)
    assert_same(mine_pairs(t, threads=1, **kw).pairs, want)
    # tiny chunks: many pair and after chunks (side by side, their regions closed up) must give
    # the same table
    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", 5)
    assert_same(mine_pairs(t, **kw).pairs, want)
    # no room for packed keys: the lexsort fallbacks must give the same table
    monkeypatch.setattr(mining, "_KEY_BITS", 8)
    assert_same(mine_pairs(t, **kw).pairs, want)


@pytest.mark.slow
def test_bench_quick_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mining.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "identical: no" not in out.stdout
    assert out.stdout.count("identical: yes") >= 4


# ---------------------------------------------------------------- basket-size weighted pair counts


def test_weighted_pair_counts_by_hand() -> None:
    """unit 12: basket o1 {a, b} weighs 6, o2 {a, b, c} 4 (a repeated line counts once), o3 {a}
    is a single product and o4 (5 products) is over max_basket 4: both skipped."""
    from tiein.mining.weighted import weighted_pair_counts

    t = orders(
        [("o1", "a"), ("o1", "b"), ("o2", "a"), ("o2", "b"), ("o2", "c"), ("o2", "a"), ("o3", "a")]
        + [("o4", x) for x in "abcde"]
    )
    src, dst = pa.array(["a", "b", "c", "a", "x", "a"]), pa.array(["b", "a", "a", "d", "a", "a"])
    w_ab, w_src, w_dst = weighted_pair_counts(t, src, dst, max_basket=4, unit=12)
    assert w_ab.tolist() == [10, 10, 4, 0, 0, 0]  # both ways alike; d only in o4; x never sold; a-a
    assert w_src.tolist() == [10, 10, 4, 10, 0, 10]
    assert w_dst.tolist() == [10, 10, 10, 0, 10, 10]


@pytest.mark.parametrize("n_products", [6, 400, 1500])
def test_weighted_pair_counts_match_brute_force(n_products: int) -> None:
    """Random shops against a Python loop over the baskets."""
    import tiein.mining.weighted as weighted

    rng = np.random.default_rng(n_products)
    rows = [
        (f"o{o}", f"p{int(rng.zipf(1.6)) % n_products}")
        for o in range(300)
        for _ in range(int(rng.integers(1, 9)))
    ]
    max_basket, unit = 6, 720720
    baskets: dict[str, set[str]] = defaultdict(set)
    for o, p in rows:
        baskets[o].add(p)
    want_ab: dict[tuple[str, str], int] = defaultdict(int)
    want_item: dict[str, int] = defaultdict(int)
    for items in baskets.values():
        if 2 <= len(items) <= max_basket:
            w = unit // len(items)
            for p in items:
                want_item[p] += w
            for x, y in itertools.permutations(items, 2):
                want_ab[x, y] += w
    products = [f"p{i}" for i in range(n_products)] + ["never"]
    asked = [(x, y) for x in products for y in products if rng.random() < 0.3]
    src, dst = pa.array([x for x, _ in asked]), pa.array([y for _, y in asked])
    w_ab, w_src, w_dst = weighted.weighted_pair_counts(
        orders(rows), src, dst, max_basket=max_basket, unit=unit
    )
    assert w_ab.tolist() == [want_ab.get(pair, 0) for pair in asked]
    assert w_src.tolist() == [want_item.get(x, 0) for x, _ in asked]
    assert w_dst.tolist() == [want_item.get(y, 0) for _, y in asked]
    assert w_ab.any()


@pytest.mark.parametrize("n_set", [0, 50, 5_000])  # hashed (set not larger than 2x the query) or searched
def test_member_and_index_of_agree_with_numpy(n_set: int) -> None:
    from tiein.mining.kernels import index_of, member

    rng = np.random.default_rng(n_set)
    keys = np.unique(rng.integers(0, 10_000, n_set).astype(np.uint64))
    query = rng.integers(0, 10_000, 1_000).astype(np.uint64)
    assert member(keys, query).tolist() == np.isin(query, keys).tolist()
    want = rng.permutation(keys).astype(np.int64)
    hit, at = index_of(query.astype(np.int64), want)
    assert hit.tolist() == np.isin(query, keys).tolist()
    assert want[at].tolist() == query[hit].astype(np.int64).tolist()


@pytest.mark.parametrize("chunk", [1000, 1 << 22])  # many chunks, or one
def test_pairs_of_a_catalog_over_65536_products(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Product codes past 16 bits: baskets {P2k, P2k+1} twice each over 70,000 products, plus
    two baskets of P0 and P69999 (a partner 69,999 codes away: the last word of the bitmap)."""
    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", chunk)
    n = 70_000
    rows = [(f"o{k}-{r}", f"P{i:05d}") for k in range(0, n, 2) for r in range(2) for i in (k, k + 1)]
    rows += [(f"x{r}", p) for r in range(2) for p in ("P00000", "P69999")]
    got = mine_pairs(orders(rows), customer_col=None, ts_col=None, min_count=2).pairs
    pairs = set(zip(got.column("a").to_pylist(), got.column("b").to_pylist(), strict=True))
    want = {(f"P{k:05d}", f"P{k + 1:05d}") for k in range(0, n, 2)} | {("P00000", "P69999")}
    assert pairs == want
    assert set(got.column("n_ab").to_pylist()) == {2}


@pytest.mark.parametrize("n", [0, 1, 7, 5_000, 200_000])
def test_keyset_answers_as_isin(n: int) -> None:
    """The hash set the next-purchase statistics build once answers membership like np.isin, for
    keys spread over 63 bits, keys crowded into a few slots (long probe runs) and absent keys;
    its filter never turns a key away and lets under 5 % of the absent ones through."""
    from tiein.mining.keyset import KeySet

    rng = np.random.default_rng(n)
    spread = np.unique(rng.integers(0, 1 << 63, n, dtype=np.int64).astype(np.uint64))
    crowded = np.arange(n, dtype=np.uint64) << np.uint64(40)  # multiples of 2**40
    for keys in (spread, crowded):
        s = KeySet(keys)
        assert s.nbytes >= 2 * keys.size * 8  # load factor at most 1/2
        query = np.concatenate([keys, rng.integers(0, 1 << 63, 3 * n + 5, dtype=np.int64).astype(np.uint64)])
        query = np.concatenate([query, keys[: n // 2] + np.uint64(1)])
        rng.shuffle(query)
        got = s.contains(query)
        assert got.tolist() == np.isin(query, keys).tolist()
        assert int(got.sum()) >= keys.size
        # the Bloom filter in front lets every key through and turns most absent ones away
        assert s.maybe(keys).tolist() == list(range(keys.size))
        absent = query[~got]
        if absent.size >= 10_000:
            assert s.maybe(absent).size < 0.05 * absent.size

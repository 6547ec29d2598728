"""bench/quality.py: metrics and baselines on baskets small enough to check by hand, then the bench
end to end on bread_basket (--quick). The real numbers are in README.md ("Relation quality")."""

from __future__ import annotations

import doctest
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import quality as bench  # noqa: E402
import quality_metrics as qm  # noqa: E402

# a:4 b:4 c:1 d:2 e:2 f:1 baskets; pairs ab 3, ac 1, de 2, bf 1
TRAIN = [["a", "b"], ["a", "b"], ["a", "b"], ["a", "c"], ["d", "e"], ["d", "e"], ["b", "f"]]
IDX = qm.ItemIndex("abcdef")
X = qm.basket_matrix(TRAIN, IDX)
POP = qm.popularity_order(X)
a, b, c, d, e, f = range(6)
# hide b from [a, b]; hide c from [c, d]
CASES = [qm.CartCase([a], b), qm.CartCase([d], c)]


def test_doctests() -> None:
    assert doctest.testmod(qm).failed == 0


def test_popularity_order_ties_by_id() -> None:
    assert POP.tolist() == [a, b, d, e, c, f]


def test_pair_baselines_by_hand() -> None:
    assert qm.cooccurrence(X)[a].toarray().ravel().tolist() == [0, 3, 1, 0, 0, 0]
    assert qm.sar_jaccard(X)[a, b] == pytest.approx(3 / 5) and qm.sar_jaccard(X)[d, e] == pytest.approx(1.0)
    assert qm.sar_lift(X)[a, b] == pytest.approx(3 / 16) and qm.sar_lift(X)[a, c] == pytest.approx(1 / 4)
    assert qm.item_cosine(X)[a, b] == pytest.approx(3 / 4) and qm.item_cosine(X)[b, f] == pytest.approx(1 / 2)
    bm = qm.item_bm25(X)
    assert (abs(bm - bm.T) > 1e-12).nnz == 0 and bm.diagonal().sum() == 0  # symmetric, no self pairs
    assert bm[a, b] > bm[a, c] > 0 and bm[a, d] == 0  # pairs only where baskets are shared


def test_cart_metrics_by_hand() -> None:
    # co-occurrence, k=3: [a] -> b 3, c 1, then d (popularity): hit at 1; [d] -> e 2, then a, b: miss
    lists = qm.cart_lists(qm.cooccurrence(X), CASES, POP, k=3)
    assert lists == [([b, c, d], 2), ([e, a, b], 1)]
    assert qm.cart_metrics(lists, CASES, k=3) == {"hr": 0.5, "mrr": 0.5, "own": 0.5, "n": 2}
    # lift prefers the rarer c for a: b drops to rank 2
    lift = qm.cart_metrics(qm.cart_lists(qm.sar_lift(X), CASES, POP, k=3), CASES, k=3)
    assert (lift["hr"], lift["mrr"]) == (0.5, 0.25)
    # popularity: [a] -> b, d, e (hit at 1); [d] -> a, b, e (miss); it fills every slot from popularity
    pop = qm.cart_metrics(qm.cart_lists(None, CASES, POP, k=3), CASES, k=3)
    assert pop == {"hr": 0.5, "mrr": 0.5, "own": 0.0, "n": 2}
    # k=10 (the bench's k): c is 4th for [d] (e, then a, b, c from popularity)
    full = qm.cart_metrics(qm.cart_lists(qm.cooccurrence(X), CASES, POP), CASES)
    assert full["hr"] == 1.0 and full["mrr"] == pytest.approx((1 + 1 / 4) / 2)


def test_anchor_metrics_by_hand() -> None:
    # test baskets {a, b, c} and {d, f}; co-occurrence top 3: a -> b c d, b -> a f d, c -> a b d,
    # d -> e a b, f -> b a d. Hits: a 2, b 1, c 2, d 0, f 1 (d is in f's list)
    lists = qm.anchor_lists(qm.cooccurrence(X), [a, b, c, d, f], POP, k=3)
    assert lists[a][0] == [b, c, d] and lists[d][0] == [e, a, b]
    m = qm.anchor_metrics(lists, [[a, b, c], [d, f], [e]], k=3)
    assert m["n"] == 5 and m["hr"] == pytest.approx(4 / 5) and m["p"] == pytest.approx(6 / 15)


def test_anchor_bound_by_hand() -> None:
    # the anchor-metrics baskets, k=1: each anchor has one basket, which any other item of it hits,
    # so the best possible lists hit all 5; co-occurrence's top 1 misses d (-> e) and f (-> b)
    lists = qm.anchor_lists(qm.cooccurrence(X), [a, b, c, d, f], POP, k=1)
    got = qm.anchor_metrics(lists, [[a, b, c], [d, f], [e]], k=1)["hr"]
    assert qm.anchor_bound([[a, b, c], [d, f], [e]], k=1, exact=True) == {"n": 5, "lp": 1.0, "ilp": 1.0}
    assert got == pytest.approx(3 / 5)
    # anchor 0 in [0, 1], [0, 2], [0, 2]: one product covers at most 2 of its 3 baskets -> 5 of 6
    assert qm.anchor_bound([[0, 1], [0, 2], [0, 2], [7]], k=1, exact=True) == {
        "n": 6,
        "lp": 0.8333,
        "ilp": 0.8333,
    }
    # anchor 0 with every pair of 1-4: two products miss one basket ({3, 4} when 1, 2 are chosen)
    # but half of each covers all six, so the LP bound (1.0) lies above the optimum (17 / 18)
    pairs = [[0, i, j] for i in range(1, 5) for j in range(i + 1, 5)]
    assert qm.anchor_bound(pairs, k=2, exact=True) == {"n": 18, "lp": 1.0, "ilp": 0.9444}


def test_relation_matrix_scores_and_reciprocal_rank() -> None:
    rels = [("a", "c", 0.2), ("a", "b", 0.9), ("a", "zz", 5.0), ("d", "e", 0.4)]  # zz: not in training
    S = qm.relation_matrix(rels, IDX)
    assert S[a].toarray().ravel().tolist() == [0, 0.9, 0.2, 0, 0, 0] and S.nnz == 3
    R = qm.relation_matrix(rels, IDX, reciprocal_rank=True)
    assert (R[a, b], R[a, c], R[d, e]) == (1.0, 0.5, 1.0)


def test_cart_cases_are_stable_and_sampled() -> None:
    baskets = {str(i): [i % 6, (i + 1) % 6, (i + 3) % 6] for i in range(40)} | {"single": [a]}
    cases = qm.cart_cases(baskets, seed=3, max_cases=None)
    assert len(cases) == 40 and cases == qm.cart_cases(baskets, seed=3, max_cases=None)
    assert qm.cart_cases(baskets, seed=3, max_cases=10) == cases[:10]
    assert all(c.hidden not in c.rest and len(c.rest) == 2 for c in cases)


def test_hash_split_keeps_orders_whole() -> None:
    import pyarrow as pa

    orders = pa.table({"order_id": [str(i // 3) for i in range(300)], "product_id": ["p"] * 300})
    train, test = bench.split_orders(orders, bench.Protocol(train_share=0.8))
    tr, te = set(train.column("order_id").to_pylist()), set(test.column("order_id").to_pylist())
    assert not tr & te and len(tr) + len(te) == 100 and 65 <= len(tr) <= 95


@pytest.mark.slow
def test_bench_end_to_end_bread_basket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ROOT.parent / "shared" / "data" / "bread_basket"
    if not data.is_dir():
        pytest.skip("shared data not here")
    out = bench.main(
        [
            "--datasets",
            "bread_basket",
            "--quick",
            "--home-root",
            str(tmp_path / "homes"),
            "--json",
            str(tmp_path / "q.json"),
        ]
    )
    r = out["datasets"]["bread_basket"]
    assert r["cart_cases"] == 500 and r["addons_cases"] == 150 and r["store_mismatches_top10"] == 0
    methods = r["methods"]
    assert set(qm.BASELINES) | {bench.TIEIN, "tiein addons"} <= set(methods)
    for row in methods.values():
        assert 0 <= row["cart"]["mrr"] <= row["cart"]["hr"] <= 1
    assert methods["popularity"]["cart"]["own"] == 0 and methods["co-occurrence"]["anchor"]["own"] > 0.9
    assert (
        json.loads((tmp_path / "q.json").read_text(encoding="utf-8"))["datasets"]["bread_basket"][
            "cart_cases"
        ]
        == 500
    )
    bound = r["anchor_bound"]["lp"]  # no method, baseline or tiein, passes the best possible lists
    assert 0.85 < bound < 1 and all(row["anchor"]["hr"] <= bound for row in methods.values() if row["anchor"])
    printed = capsys.readouterr().out
    assert "anchor HR@10 that no method can pass" in printed
    assert "| tiein complements |" in printed and "ratio tiein / best baseline" in printed

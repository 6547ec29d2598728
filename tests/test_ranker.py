"""The complement ranker (tiein/ranker.py): a logistic regression fitted on a time split of the
shop's own baskets, its fallback for small shops, the cart exponent, and determinism. Data small
enough to check by hand."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from tiein import ranker as rk
from tiein import relations as rel
from tiein.features import candidate_features
from tiein.model import ORDERS, PRODUCTS


def test_the_fit_prefers_the_feature_that_predicts_the_label() -> None:
    # two candidate rows per anchor: the one with the higher cosine is bought again 8 times in 10,
    # the other once in 10; the popularity columns are equal, so cosine must carry the weight
    f = {
        "src": np.array(["a", "a", "b", "b"], dtype=object),
        "n_ab": np.array([10, 10, 10, 10]),
        "n_src": np.array([20, 20, 20, 20]),
        "n_dst": np.array([20, 80, 20, 80]),
        "n_baskets": np.array([100, 100, 100, 100]),
        "lift": np.array([2.5, 0.625, 2.5, 0.625]),
    }
    x = rk.design_matrix(f)
    cosine = x[:, rk.FEATURES.index("cosine")]
    assert cosine[0] > cosine[1]
    w, b, m, s = rk.fit_logistic(
        x[:, [rk.FEATURES.index("cosine")]], np.array([8, 1, 8, 1]), np.full(4, 10), l2=0.0
    )
    assert w[0] > 0
    p = rk._sigmoid(b + ((x[:, [rk.FEATURES.index("cosine")]] - m) / s) @ w)
    assert p.round(3).tolist() == [0.8, 0.1, 0.8, 0.1]  # calibrated: the observed rates


def test_too_few_positives_fall_back_to_the_hand_set_score() -> None:
    f = {"src": np.array(["a", "b"], dtype=object), "n_ab": np.array([3, 3]), "n_src": np.array([5, 5])}
    model, report = rk.fit_ranker(
        f, np.array([1, 0]), np.array([4, 4]), np.zeros(2), rk.RankerConfig(min_positives=2)
    )
    assert model is None and report["fitted"] is False and "1 labelled pairs" in report["reason"]


def test_the_cart_exponent_is_the_one_that_completes_carts() -> None:
    # anchor 0: eleven best sellers (P 0.5, base rate 0.5) and one rare add-on 12 (P 0.2, base 0.01)
    # that the held-out cart [0] did take: summed probabilities rank it 12th (a miss), over base
    # rate to the power 0.25 already first
    src = np.zeros(12, dtype=np.int64)
    dst = np.arange(1, 13)
    score = np.r_[np.full(11, 0.5), 0.2]
    base = np.r_[np.full(11, 0.5), 0.01]
    w, rates = rk.choose_cart_weighting(
        src, dst, score, base, np.zeros(12), [np.array([0])], np.array([12]), 13
    )
    e = w.exponent
    assert e == 0.25 and rates["a=0 g=1 s=0"] == 0.0 and rates["a=1 g=1 s=0"] == 1.0
    assert rk.cart_weight(0.2, 1, 100, e) == pytest.approx(0.2 / 0.01**0.25)


def test_a_power_above_one_lets_one_strong_edge_beat_several_weak_ones() -> None:
    # cart [0, 1] hides 12: ten items 2..11 have a weak edge (P 0.3) from both cart items, the
    # hidden item one strong edge (P 0.5) from item 0; equal base rates, so no exponent helps.
    # Summed: 0.6 beats 0.5 (a miss); to the power 1.5: 2 * 0.3**1.5 = 0.329 < 0.5**1.5 = 0.354
    weak = np.arange(2, 12)
    src = np.r_[np.zeros(10, dtype=np.int64), np.ones(10, dtype=np.int64), 0]
    dst = np.r_[weak, weak, 12]
    score = np.r_[np.full(20, 0.3), 0.5]
    w, rates = rk.choose_cart_weighting(
        src, dst, score, np.full(21, 0.1), np.zeros(21), [np.array([0, 1])], np.array([12]), 13
    )
    assert w == rk.CartWeighting(exponent=0.0, gamma=1.5, similarity=0.0)
    assert rates["a=0 g=1 s=0"] == 0.0 and rates["a=0 g=1.5 s=0"] == 1.0
    assert rk.cart_weight(0.5, 1, 10, 0.0, 1.5) == pytest.approx(0.5**1.5)


def test_a_title_like_the_carts_can_count_more() -> None:
    # cart [0] hides 11: ten items with P 0.105 and no title likeness, the hidden item P 0.1 and a
    # title cosine of 0.5 to the cart item: boosted by exp(1 * 0.5) it comes first
    src = np.zeros(11, dtype=np.int64)
    sim = np.r_[np.zeros(10), 0.5]
    w, rates = rk.choose_cart_weighting(
        src,
        np.arange(1, 12),
        np.r_[np.full(10, 0.105), 0.1],
        np.full(11, 0.1),
        sim,
        [np.array([0])],
        np.array([11]),
        12,
    )
    assert w == rk.CartWeighting(exponent=0.0, gamma=1.0, similarity=1.0)
    assert rates["a=0 g=1 s=0"] == 0.0 and rates["a=0 g=1 s=1"] == 1.0
    # an unknown similarity (NaN) counts as none
    assert rk.cart_weight(0.1, 0, 0, 0.0, 1.0, np.nan, 1.0) == pytest.approx(0.1)


# --- fitting from orders -------------------------------------------------------------------------

ITEMS = [f"p{i}" for i in range(30)]


def _products() -> pa.Table:
    n = len(ITEMS)
    return pa.table(
        {
            "product_id": ITEMS,
            "title": [f"item {i}" for i in range(n)],
            "category": [f"c{i % 4}" for i in range(n)],
            "category_path": [f"c{i % 4}" for i in range(n)],
            "brand": pa.nulls(n, pa.string()),
            "price": pa.array([float(5 + i) for i in range(n)]),
            "stock": pa.array([10] * n, pa.int64()),
            "attributes": pa.nulls(n, pa.string()),
            "margin": pa.nulls(n, pa.float64()),
            "sales_role": pa.nulls(n, pa.string()),
            "product_type": pa.nulls(n, pa.string()),
        },
        schema=PRODUCTS,
    )


def _orders(n: int = 600) -> pa.Table:
    """Baskets of a fixed-seed shop: p0 goes with p1, p2 with p3, ... p8 with p9; one random item
    of 30 joins each basket; the staple p29 is in 40 % of them."""
    rng = np.random.default_rng(7)
    rows = []
    t0 = dt.datetime(2024, 1, 1)
    for o in range(n):
        pair = int(rng.integers(0, 5))
        items = {f"p{2 * pair}", f"p{2 * pair + 1}"} if rng.random() < 0.9 else {f"p{2 * pair}"}
        items.add(f"p{int(rng.integers(0, 30))}")
        if rng.random() < 0.4:
            items.add("p29")
        for p in sorted(items):
            rows.append(
                {
                    "order_id": f"o{o:04d}",
                    "product_id": p,
                    "quantity": 1.0,
                    "customer_id": f"c{o % 50}",
                    "ts": t0 + dt.timedelta(hours=o),
                }
            )
    return pa.Table.from_pylist(rows, schema=ORDERS)


def _fit(cfg: rk.RankerConfig) -> tuple[rk.ComplementRanker | None, dict]:
    products = _products()
    return rk.fit_from_orders(
        products,
        _orders(),
        features=lambda pairs: candidate_features(products, co_purchase=pairs),
        min_count=2,
        max_basket=500,
        after_window_days=90,
        min_pair_count=2,
        baseline=lambda f: rel.score_features(f, rel.RelationConfig())["complement"],
        cfg=cfg,
    )


def test_fit_from_orders_learns_the_shops_pairs_deterministically() -> None:
    cfg = rk.RankerConfig(min_positives=20)
    model, report = _fit(cfg)
    assert model is not None and report["fitted"] is True
    assert report["label_baskets"] == 120 and report["feature_baskets"] == 480  # the latest 20 % label
    assert report["validation_auc"] is not None and report["cart_exponent"] in rk.CART_EXPONENTS
    assert report["cart_gamma"] in rk.CART_GAMMAS and report["cart_similarity"] in rk.CART_SIMILARITY
    again, report2 = _fit(cfg)
    assert again is not None and np.array_equal(model.weights, again.weights) and report == report2
    json.dumps(report)  # goes into the graph's meta as it is
    # the fitted probabilities rank each anchor's true partner first: p0 → p1, p2 → p3
    products = _products()
    from tiein.mining import mine_pairs

    feats = candidate_features(products, co_purchase=mine_pairs(_orders()).pairs)
    out = rel.classify(feats, rel.RelationConfig(), model).to_pylist()
    comp = [r for r in out if r["kind"] == "complement"]
    for a, b in (("p0", "p1"), ("p2", "p3")):
        assert next(r["dst"] for r in comp if r["src"] == a) == b
    ev = json.loads(comp[0]["evidence"])
    assert {"orders_with_addon", "orders", "cart_weight", "bought_together", "lift"} <= set(ev)
    assert all(0 < r["score"] < 1 for r in comp)


def test_small_shops_and_switched_off_rankers_say_why() -> None:
    model, report = _fit(rk.RankerConfig(min_positives=10_000))
    assert model is None and report["fitted"] is False and "below 10000" in report["reason"]
    model, report = _fit(rk.RankerConfig(enabled=False))
    assert model is None and report == {"fitted": False, "reason": "disabled"}


def test_pairs_bought_together_well_above_chance_are_never_substitutes() -> None:
    base = {
        "src": np.array(["a"], dtype=object),
        "dst": np.array(["b"], dtype=object),
        "n_src": np.array([20]),
        "conf": np.array([0.3]),
        "after_sd": np.array([0]),
        "after_ds": np.array([0]),
        "co_view": np.array([0]),
        "listed_buy": np.array([0]),
        "listed_view": np.array([0]),
        "similarity": np.array([0.95]),
        "cat_rel": np.array([rel.CAT_SAME]),
        "price_ratio": np.array([1.0]),
        "same_line": np.array([False]),
    }
    rare = rel.score_features({**base, "n_ab": np.array([1]), "lift": np.array([0.5])}, rel.RelationConfig())
    together = rel.score_features(
        {**base, "n_ab": np.array([6]), "lift": np.array([2.0])}, rel.RelationConfig()
    )
    assert rare["substitute"][0] > 0 and together["substitute"][0] == 0


# --- the fit's anchor sample (RankerConfig.max_anchors) -------------------------------------------


def test_the_fit_sample_is_fixed_nested_proportional_and_apart_from_the_validation_fifth() -> None:
    from tiein.ranker.model import fit_sample, held_anchors

    ids = pa.array([f"sku-{i}" for i in range(20_000)])
    small, large = fit_sample(ids, 0.1), fit_sample(ids, 0.3)
    assert np.array_equal(small, fit_sample(ids, 0.1))  # the same ids in every run
    assert not (small & ~large).any()  # a larger share holds every id of a smaller one
    assert 1_800 <= small.sum() <= 2_200 and 5_600 <= large.sum() <= 6_400
    # an independent hash: a fifth of the sample is in the validation fifth, not all or none
    assert 0.15 < (small & held_anchors(ids)).sum() / small.sum() < 0.25
    assert fit_sample(ids, 1.0).all() and not fit_sample(ids, 0.0).any()


def test_the_sampled_anchors_get_the_features_all_the_pairs_give_them() -> None:
    """Only the pairs touching a sampled anchor go into the features, and the sampled anchors'
    candidate rows are exactly those of the full pair table (every column)."""
    from tiein.mining import mine_pairs
    from tiein.ranker.model import fit_sample
    from tiein.ranker.orders import _sample_anchors

    products = _products()
    pairs = mine_pairs(_orders(), min_count=1).pairs
    sampled, info = _sample_anchors(pairs, 12)
    assert info is not None and info["of"] == 30 and 0 < info["anchors"] < 30
    assert 0 < sampled.num_rows < pairs.num_rows
    assert _sample_anchors(pairs, 30) == (pairs, None) and _sample_anchors(pairs, 0) == (pairs, None)

    def rows_of_sample(table: pa.Table) -> pa.Table:
        keep = fit_sample(table.column("src"), info["share"])
        return table.filter(pa.array(keep)).sort_by([("src", "ascending"), ("dst", "ascending")])

    def cells(table: pa.Table) -> dict[str, list[object]]:  # NaN as "nan": equal to itself
        return {c: ["nan" if x != x else x for x in table.column(c).to_pylist()] for c in table.column_names}

    full = rows_of_sample(candidate_features(products, co_purchase=pairs))
    part = rows_of_sample(candidate_features(products, co_purchase=sampled))
    assert full.num_rows > 0 and part.schema == full.schema and cells(part) == cells(full)


def test_a_fit_on_a_sample_of_anchors_says_so_and_is_deterministic() -> None:
    cfg = rk.RankerConfig(min_positives=10, max_anchors=15)
    model, report = _fit(cfg)
    assert model is not None and report["fitted"] is True
    sample = report["anchor_sample"]
    assert sample["of"] == 30 and 0 < sample["anchors"] < 30 and sample["share"] == 0.5
    again, report2 = _fit(cfg)
    assert again is not None and np.array_equal(model.weights, again.weights) and report == report2
    whole, whole_report = _fit(rk.RankerConfig(min_positives=10))
    assert "anchor_sample" not in whole_report and whole is not None
    assert report["positives"] < whole_report["positives"]  # fewer anchors, fewer labelled pairs


def test_the_sample_keeps_real_anchors_features_exact(retail: tuple[pa.Table, pa.Table]) -> None:
    """The same on 60k lines of Online Retail, where each anchor's candidates are capped (the
    per-anchor windows of tiein.features bind)."""
    from tiein.mining import mine_pairs
    from tiein.ranker.model import fit_sample
    from tiein.ranker.orders import _sample_anchors

    products, orders = retail
    pairs = mine_pairs(orders, min_count=2).pairs
    sampled, info = _sample_anchors(pairs, 400)
    assert info is not None and info["of"] > 1_000 and 300 < info["anchors"] < 500

    def rows_of_sample(table: pa.Table) -> pa.Table:
        keep = fit_sample(table.column("src"), info["share"])
        return table.filter(pa.array(keep)).sort_by([("src", "ascending"), ("dst", "ascending")])

    full = rows_of_sample(candidate_features(products, co_purchase=pairs, per_product=20))
    part = rows_of_sample(candidate_features(products, co_purchase=sampled, per_product=20))
    assert full.num_rows > 5_000 and part.schema == full.schema
    for name in full.column_names:
        a, b = (
            full.column(name).to_numpy(zero_copy_only=False),
            part.column(name).to_numpy(zero_copy_only=False),
        )
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name

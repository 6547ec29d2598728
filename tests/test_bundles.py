"""Scenario bundles, cart add-ons and seller explanations (tiein.bundles, tiein.explain) on a real
embedded store built by the real pipeline from a hand-made camping shop (tests/fixtures/camping,
see its README.md for the orders and why each product is there).

The tent's complements in score order are pegs, chair, table, power, hammock, lamp_pro, lamp, bag,
bag_syn; with the default rules only the chair and the lamp pass, and each relaxed rule lets a
different one in. Expected prices are read from catalog.csv here, not from the code under test.
"""

from __future__ import annotations

import csv
import doctest
import json
import math
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import tiein.bundles
import tiein.explain
from graph import open_store
from graph.base import GraphStore
from tiein.bundles import BundleRules, addons, bundle, charm_price
from tiein.errors import ConfigError, ProductNotFound
from tiein.explain import explain
from tiein.model import PRODUCTS, RELATIONS, GraphData
from tiein.pipeline import BuildOptions, build

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def _catalog() -> dict[str, dict[str, str]]:
    with open(CAMPING / "catalog.csv", encoding="utf-8", newline="") as f:
        return {r["product_id"]: r for r in csv.DictReader(f)}


CATALOG = _catalog()
PRICE = {pid: float(r["price"]) for pid, r in CATALOG.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    home = tmp_path_factory.mktemp("camping")
    summary = build(
        BuildOptions(catalog=CAMPING / "catalog.csv", orders=CAMPING / "orders.csv", home=home, threads=1)
    )
    s = open_store(summary.store)
    yield s
    s.close()


def ids(b: tiein.bundles.Bundle) -> list[str]:
    return [i.product["product_id"] for i in b.items]


def subs(store: GraphStore, pid: str) -> set[str]:
    return {r["product_id"] for r in store.related(pid, "substitute", 50)}


# ----------------------------------------------------------------------------- the fixture
def test_fixture_has_the_relations_the_rules_need(store: GraphStore) -> None:
    """Preconditions the rule tests rely on, read from the store, so a model or classifier change
    shows up here first and plainly."""
    comp = [r["product_id"] for r in store.related("tent", "complement", 50)]
    assert set(comp) == {"pegs", "chair", "table", "power", "hammock", "lamp_pro", "lamp", "bag", "bag_syn"}
    assert comp.index("pegs") < comp.index("chair") < comp.index("table") < comp.index("power")
    assert (
        comp.index("power")
        < comp.index("lamp_pro")
        < comp.index("lamp")
        < comp.index("bag")
        < comp.index("bag_syn")
    )
    assert comp.index("table") < comp.index("hammock") < comp.index("lamp")
    assert {"tent_b", "tent_c"} <= subs(store, "tent")
    assert "table" in subs(store, "chair") and "hammock" not in subs(store, "chair")
    assert "lamp_pro" in subs(store, "lamp")
    chair = store.related("tent", "complement", 50)[comp.index("chair")]
    assert chair["n_ab"] == 8 and chair["lift"] == pytest.approx(8 * 254 / (55 * 15), rel=1e-4)


# ----------------------------------------------------------------------------- bundles
def test_tent_bundle_is_tent_chair_lamp(store: GraphStore) -> None:
    b = bundle(store, "tent")
    assert b.reason is None and b.ok
    assert b.product_ids == ["tent", "chair", "lamp"]
    assert [i.relation for i in b.items] == ["complement of anchor"] * 2
    assert [i.role for i in b.items] == ["Camp furniture", "Lighting"]
    for item in b.items:
        assert 0.3 * PRICE["tent"] <= PRICE[item.product["product_id"]] <= 0.8 * PRICE["tent"]
        assert item.evidence["kind"] == "complement" and item.score > 0
    assert b.skipped == {"outside_price_band": 2, "category_taken": 2, "out_of_stock": 1}


def test_bundle_price_maths_and_pitches(store: GraphStore) -> None:
    b = bundle(store, "tent")
    total = PRICE["tent"] + PRICE["chair"] + PRICE["lamp"]  # 299 + 129 + 99
    assert b.total == total == 527
    # 10 % off: 474.30; the largest price ending in 8 below it is 468, 6.30 under (≤ 3 % of 527)
    assert b.suggested_price == 468 and b.saving == 59 and b.discount == 0.1
    assert b.pitch_zh == "分开买 527，一起拿 468，省 59"
    assert b.pitch_en == "527 apart, 468 together, save 59"
    plain = bundle(store, "tent", rules=BundleRules(discount=0))
    assert (plain.suggested_price, plain.saving) == (527, 0)
    assert bundle(store, "tent", rules=BundleRules(charm_digit=9)).suggested_price == 469
    assert bundle(store, "tent", rules=BundleRules(charm_digit=None)).suggested_price == 470
    assert bundle(store, "tent", rules=BundleRules(discount=0.2)).suggested_price == 418  # 421.60 -> 418


@pytest.mark.parametrize(
    ("amount", "total", "digit", "expected"),
    [(403.2, 448, 8, 398), (474.3, 527, 8, 468), (474.3, 527, 9, 469), (474.3, 527, None, 470),
     (45.0, 50, 8, 45), (13.5, 15, 8, 13.5), (0.9, 1, 8, 0.9), (1078.2, 1198, 8, 1078)],
)  # fmt: skip
def test_charm_price_rule(amount: float, total: float, digit: int | None, expected: float) -> None:
    got = charm_price(amount, total, charm_digit=digit, slack=0.03)
    assert got == expected
    assert amount - 0.03 * total - 1e-9 <= got <= amount  # never more than 3 % extra off, never above


# rules relaxed one at a time: (bundle kwargs, expected add-ons, what the default answer skips and why)
RULE_CASES = [
    pytest.param({"rules": BundleRules(min_price_ratio=0.0)}, ["pegs", "chair"], id="price-band-low"),
    pytest.param({"rules": BundleRules(max_price_ratio=4.0)}, ["chair", "power"], id="price-band-high"),
    pytest.param({"rules": BundleRules(require_in_stock=False)}, ["chair", "lamp_pro"], id="stock"),
    pytest.param({"rules": BundleRules(max_per_category=2)}, ["chair", "hammock"], id="one-per-category"),
    pytest.param({"rules": BundleRules(max_per_category=2, exclude_substitutes=False)}, ["chair", "table"],
                 id="substitutes-of-each-other"),
    pytest.param({"size": 2}, ["chair"], id="size-2"),
    pytest.param({"size": 4}, ["chair", "lamp", "bag"], id="size-4"),
    pytest.param({"budget": 450}, ["chair"], id="budget-450"),  # + lamp would be 527
    pytest.param({"budget": 420}, ["hammock"], id="budget-420"),  # chair 428 > 420; hammock 408; + lamp 507
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "expected"), RULE_CASES)
def test_each_rule_changes_the_answer(store: GraphStore, kwargs: dict[str, Any], expected: list[str]) -> None:
    default = bundle(store, "tent")
    b = bundle(store, "tent", **kwargs)
    assert ids(b) == expected
    assert ids(b) != ids(default)
    assert b.total == PRICE["tent"] + sum(PRICE[p] for p in expected)
    if "budget" in kwargs:
        assert b.total <= kwargs["budget"] and b.skipped["over_budget"] > 0


def test_substitute_rule_is_what_keeps_the_table_out(store: GraphStore) -> None:
    """With two per category the table (ranked above the hammock) is refused only as a substitute
    of the chair."""
    b = bundle(store, "tent", rules=BundleRules(max_per_category=2))
    assert ids(b) == ["chair", "hammock"] and b.skipped.get("substitute_of_chosen") == 1


def test_never_a_substitute_of_the_anchor_or_of_each_other(store: GraphStore) -> None:
    loose = BundleRules(min_price_ratio=0, max_price_ratio=10, require_in_stock=False, max_per_category=5)
    for size in range(2, 7):
        b = bundle(store, "tent", size=size, rules=loose)
        chosen = b.product_ids
        assert not {"tent_b", "tent_c"} & set(chosen)
        for i, a in enumerate(chosen):
            for c in chosen[i + 1 :]:
                assert c not in subs(store, a) and a not in subs(store, c), (a, c)
    everything = bundle(store, "tent", size=6, rules=loose)
    assert "table" not in ids(everything) and "lamp" not in ids(everything)  # subs of chair / lamp_pro


def test_roles_fill_slots_in_scene_order(store: GraphStore) -> None:
    b = bundle(store, "tent", roles=[{"Sleeping bags"}, {"lighting"}])
    assert ids(b) == ["bag", "lamp"] and [i.role for i in b.items] == ["Sleeping bags", "lighting"]
    # the cooler is not bought with the tent, only with the chair: it joins as the chair's complement
    b = bundle(store, "tent", roles=[{"Camp furniture"}, {"Coolers"}])
    assert ids(b) == ["chair", "cooler"]
    assert [i.relation for i in b.items] == ["complement of anchor", "complement of chair"]
    assert (
        "Folding camping chair" in b.items[1].explanation_en
        and "“Folding camping chair”" in b.items[1].explanation_zh
    )
    # a product id as a role; unknown stock (empty in the catalog) counts as in stock
    b = bundle(store, "tent", roles=[{"bag_syn"}])
    assert ids(b) == ["bag_syn"] and b.items[0].product["stock"] is None
    assert len(bundle(store, "tent", size=2, roles=[{"Lighting"}, {"Sleeping bags"}]).items) == 1


@pytest.mark.parametrize(
    ("anchor", "kwargs", "code"),
    [
        ("repellent", {}, "no_complements"),
        ("stove", {}, "none_in_stock"),  # gas and pot have stock 0
        ("chair", {}, "outside_price_band"),  # cooler 123 %, tent 232 % of 129
        ("lamp_pro", {}, "anchor_out_of_stock"),
        ("tent", {"budget": 380}, "over_budget"),  # the cheapest in-band add-on (lamp) makes 398
        ("tent", {"budget": 250}, "anchor_over_budget"),
        ("tent", {"roles": [{"Fuel"}]}, "no_role_match"),
    ],
)
def test_reasons_when_no_bundle(store: GraphStore, anchor: str, kwargs: dict[str, Any], code: str) -> None:
    b = bundle(store, anchor, **kwargs)
    assert b.items == [] and not b.ok
    assert b.reason is not None and b.reason.code == code
    assert b.reason.zh and b.reason.en and b.reason.zh != b.reason.en and "{" not in b.reason.en + b.reason.zh
    assert b.suggested_price is None and b.pitch_zh is None and b.total == PRICE[anchor]
    assert b.to_dict()["reason"] == {"code": code, "zh": b.reason.zh, "en": b.reason.en}
    if "budget" in kwargs:
        assert str(kwargs["budget"]) in b.reason.en and str(kwargs["budget"]) in b.reason.zh


def test_out_of_stock_complements_come_back_when_allowed(store: GraphStore) -> None:
    b = bundle(store, "stove", rules=BundleRules(require_in_stock=False))
    assert ids(b) == ["gas", "pot"] and b.total == PRICE["stove"] + PRICE["gas"] + PRICE["pot"]


def test_bad_input_is_a_clear_error(store: GraphStore) -> None:
    with pytest.raises(ProductNotFound, match="no-such"):
        bundle(store, "no-such")
    for size in (1, 7, "3", True, 2.5):
        with pytest.raises(ConfigError, match="size"):
            bundle(store, "tent", size=size)  # type: ignore[arg-type]
    for budget in (0, -5, math.nan, math.inf, "100", True):
        with pytest.raises(ConfigError, match="budget"):
            bundle(store, "tent", budget=budget)  # type: ignore[arg-type]
    bad_roles: list[Any] = [[], [set()], [{""}], "Lighting"]
    for roles in bad_roles:
        with pytest.raises(ConfigError, match="role"):
            bundle(store, "tent", roles=roles)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_price_ratio <= max_price_ratio"):
        BundleRules(min_price_ratio=0.9, max_price_ratio=0.5)
    with pytest.raises(ConfigError, match="discount"):
        BundleRules(discount=1.0)


def test_bundle_json_is_stable(store: GraphStore) -> None:
    a, b = bundle(store, "tent").to_dict(), bundle(store, "tent").to_dict()
    text = json.dumps(a, ensure_ascii=False)
    assert text == json.dumps(b, ensure_ascii=False) and json.loads(text) == a
    assert list(a) == ["anchor", "items", "total", "suggested_price", "saving", "discount", "pitch",
                       "budget", "reason", "skipped"]  # fmt: skip
    assert list(a["items"][0]) == ["product", "role", "relation", "score", "evidence", "explanation"]
    assert a["anchor"]["product_id"] == "tent" and a["pitch"]["en"] == "527 apart, 468 together, save 59"


# ----------------------------------------------------------------------------- one-way substitutes
@pytest.fixture(scope="module")
def one_way_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """A hand-loaded graph where substitutes are listed one way only: B names the anchor A, C names B.
    A reader of A's or B's own substitute list alone would miss both."""
    products = [
        {"product_id": p, "title": t, "category": c, "category_path": c, "brand": None, "price": price,
         "stock": 5, "attributes": None}
        for p, t, c, price in [("A", "Anchor", "K1", 100.0), ("B", "Twin of A", "K2", 50.0),
                               ("C", "Twin of B", "K3", 40.0), ("D", "Other", "K4", 35.0)]
    ]  # fmt: skip

    def rel(src: str, dst: str, kind: str, score: float) -> dict[str, Any]:
        return {"src": src, "dst": dst, "kind": kind, "score": score, "n_ab": 3, "lift": 2.0,
                "confidence": 0.3, "co_view": 0, "similarity": 0.5, "category_relation": "different",
                "price_ratio": 0.5, "evidence": json.dumps({"kind": kind, "bought_together": 3})}  # fmt: skip

    relations = [rel("A", "B", "complement", 0.9), rel("A", "C", "complement", 0.8), rel("A", "D", "complement", 0.7),
                 rel("B", "A", "substitute", 0.6), rel("C", "B", "substitute", 0.6)]  # fmt: skip
    s = open_store(tmp_path_factory.mktemp("oneway") / "graph")
    s.replace(GraphData(products=pa.Table.from_pylist(products, schema=PRODUCTS),
                        relations=pa.Table.from_pylist(relations, schema=RELATIONS)))  # fmt: skip
    yield s
    s.close()


def test_substitutes_are_checked_both_ways(one_way_store: GraphStore) -> None:
    assert ids(bundle(one_way_store, "A")) == ["C", "D"]  # B names A; (C names B, but B is out)
    fwd = BundleRules(reverse_substitutes=False)
    assert ids(bundle(one_way_store, "A", rules=fwd)) == ["B", "C"]  # what a one-way check lets through
    assert ids(bundle(one_way_store, "A", size=4)) == ["C", "D"]
    assert [i.product["product_id"] for i in addons(one_way_store, ["A"]).items] == ["C", "D"]


# ----------------------------------------------------------------------------- add-ons
def test_addons_for_a_cart(store: GraphStore) -> None:
    a = addons(store, ["tent", "chair"])
    got = [i.product["product_id"] for i in a.items]
    # cooler (chair's complement) leads; table is a substitute of the chair, hammock shares its
    # category, lamp_pro is out of stock, tent/chair are in the cart
    assert got == ["cooler", "pegs", "power", "lamp", "bag"]
    assert a.total == PRICE["tent"] + PRICE["chair"] and a.reason is None and a.threshold is None
    assert a.items[0].relation == "complement of chair" and a.items[1].sources == ["tent"]
    assert a.skipped == {"substitute_of_anchor": 1, "category_taken": 1, "out_of_stock": 1}
    assert len(addons(store, ["tent", "chair"], k=2).items) == 2
    assert json.loads(json.dumps(a.to_dict())) == a.to_dict()


def test_addons_sum_scores_over_the_cart(store: GraphStore) -> None:
    # the table and the hammock both complement the tent: its cart score is the sum
    a = addons(store, ["table", "hammock"])
    expected = sum(
        r["score"]
        for p in ("table", "hammock")
        for r in store.related(p, "complement")
        if r["product_id"] == "tent"
    )
    assert [i.product["product_id"] for i in a.items] == ["tent"]
    assert a.items[0].score == pytest.approx(expected) and a.items[0].sources == ["table", "hammock"]
    assert a.items[0].relation == "complement of table, hammock"


def test_addons_threshold_top_up(store: GraphStore) -> None:
    # 299 of 300: the 19 pegs, not a 279 second tent nor the 129 chair
    a = addons(store, ["tent"], threshold=300)
    assert a.gap == 1
    first = a.top_ups[0]
    assert (
        first.product["product_id"] == "pegs"
        and first.overspend == PRICE["pegs"] - 1
        and first.new_total == 318
    )
    overspends = [t.overspend or 0.0 for t in a.top_ups]
    assert overspends == sorted(overspends) and None not in [t.overspend for t in a.top_ups]
    assert not {"tent_b", "tent_c", "lamp_pro"} & {t.product["product_id"] for t in a.top_ups}
    # 428 of 500: gap 72; pegs (19) cannot close it, the 99 lamp does with 27 over
    a = addons(store, ["tent", "chair"], threshold=500)
    assert a.gap == 72 and a.top_ups[0].product["product_id"] == "lamp" and a.top_ups[0].overspend == 27
    assert all(t.new_total is not None and t.new_total >= 500 for t in a.top_ups)
    # already over: nothing to add
    a = addons(store, ["tent", "chair"], threshold=400)
    assert a.gap == 0 and a.top_ups == [] and a.top_up_reason is None
    # no single complement reaches 2000
    a = addons(store, ["tent", "chair"], threshold=2000)
    assert a.top_ups == [] and a.top_up_reason is not None and a.top_up_reason.code == "threshold_unreachable"
    assert "2000" in a.top_up_reason.en


def test_addons_reasons_and_errors(store: GraphStore) -> None:
    a = addons(store, ["repellent"], threshold=50)
    assert a.items == [] and a.reason is not None and a.reason.code == "no_complements"
    assert a.top_up_reason is not None and a.top_up_reason.code == "no_complements"
    assert addons(store, ["stove"]).reason.code == "none_in_stock"  # type: ignore[union-attr]
    with pytest.raises(ProductNotFound):
        addons(store, ["tent", "nope"])
    for cart in ([], "tent", [""]):
        with pytest.raises(ConfigError, match="cart"):
            addons(store, cart)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="k must"):
        addons(store, ["tent"], k=0)
    with pytest.raises(ConfigError, match="threshold"):
        addons(store, ["tent"], threshold=-1)


# ----------------------------------------------------------------------------- explanations
def test_explanations_for_every_kind(store: GraphStore) -> None:
    def row(src: str, kind: str, dst: str) -> dict[str, Any]:
        return next(r for r in store.related(src, kind, 50) if r["product_id"] == dst)

    e = explain(row("tent", "complement", "chair"))
    assert e.zh == "常一起购买：8 单，提升度 2.5；不同品类；价格为主商品的 43%"  # 129 / 299
    assert e.en == "bought together in 8 orders, lift 2.5; different category; 43% of the main item's price"
    e = explain(row("tent", "substitute", "tent_b"))
    assert e.zh.startswith("可替代商品：标题相似度 ") and "同一品类" in e.zh and "价格为主商品的 93%" in e.zh
    assert e.en.startswith("alternative: title similarity ") and "93% of the main item's price" in e.en
    e = explain(row("tent", "upsell", "tent_c"))
    assert e.zh.startswith("升级款：价格为主商品的 154%") and e.en.startswith(
        "step up: 154% of the main item's price"
    )
    e = explain(row("tent", "series", "tent_c"))
    assert e.zh.startswith("同系列：同一品牌或产品线") and e.en.startswith(
        "same series: same brand or product line"
    )
    assert bundle(store, "tent").items[0].explanation_zh == explain(row("tent", "complement", "chair")).zh
    with pytest.raises(ConfigError, match="kind"):
        explain({"bought_together": 1}, "bestseller")


def test_doctests() -> None:
    assert doctest.testmod(tiein.explain).failed == 0
    assert doctest.testmod(tiein.bundles).failed == 0


# ----------------------------------------------------------------------------- timing (printed)
def test_bundle_latency_is_printed(store: GraphStore, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion on time (shared machines vary): prints p50/p99 of one bundle and one cart."""

    def timed(fn: Any, n: int = 200) -> tuple[float, float]:
        for _ in range(10):
            fn()
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1000)
        ms.sort()
        return statistics.median(ms), ms[int(0.99 * n) - 1]

    b50, b99 = timed(lambda: bundle(store, "tent"))
    f50, f99 = timed(lambda: bundle(store, "tent", rules=BundleRules(reverse_substitutes=False)))
    a50, a99 = timed(lambda: addons(store, ["tent", "chair"], threshold=500), n=100)
    with capsys.disabled():
        print(f"\nbundle(tent) p50 {b50:.2f} ms p99 {b99:.2f} ms; one-way substitutes p50 {f50:.2f} ms "
              f"p99 {f99:.2f} ms; addons(tent, chair) p50 {a50:.2f} ms p99 {a99:.2f} ms")  # fmt: skip
    assert b50 > 0

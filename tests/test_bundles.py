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
from tiein.bundles import BundleRules, addons, bundle, charm_price
from tiein.errors import ConfigError, NotFound, ProductNotFound
from tiein.explain import explain
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.model import PRODUCTS, RELATIONS, SCENE_MEMBERS, SCENES, GraphData
from tiein.pipeline import BuildOptions, build

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def _catalog() -> dict[str, dict[str, str]]:
    with open(CAMPING / "catalog.csv", encoding="utf-8", newline="") as f:
        return {r["product_id"]: r for r in csv.DictReader(f)}


CATALOG = _catalog()
PRICE = {pid: float(r["price"]) for pid, r in CATALOG.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """The camping shop without scenes: bundles go by complement score."""
    home = tmp_path_factory.mktemp("camping")
    summary = build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            discover_scenes=False,
        )
    )
    s = open_store(summary.store)
    yield s
    s.close()


@pytest.fixture(scope="module")
def scene_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """The same shop with the user scenes of tests/fixtures/camping/scenes.yaml."""
    home = tmp_path_factory.mktemp("camping-scenes")
    summary = build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            scenes=CAMPING / "scenes.yaml",
        )
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
    assert b.pitch_zh == "分开买 ¥527.00，一起拿 ¥468.00，省 ¥59.00"
    assert b.pitch_en == "¥527.00 separately, ¥468.00 together, save ¥59.00"
    plain = bundle(store, "tent", rules=BundleRules(discount=0))
    assert (plain.suggested_price, plain.saving) == (527, 0)
    assert bundle(store, "tent", rules=BundleRules(charm_digit=9)).suggested_price == 469
    assert bundle(store, "tent", rules=BundleRules(charm_digit=None)).suggested_price == 470
    assert bundle(store, "tent", rules=BundleRules(discount=0.2)).suggested_price == 418  # 421.60 -> 418


@pytest.mark.parametrize(
    ("amount", "total", "digit", "expected"),
    [
        (403.2, 448, 8, 398),
        (474.3, 527, 8, 468),
        (474.3, 527, 9, 469),
        (474.3, 527, None, 470),
        (45.0, 50, 8, 45),
        (13.5, 15, 8, 13.5),
        (0.9, 1, 8, 0.9),
        (1078.2, 1198, 8, 1078),
    ],
)
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
    pytest.param(
        {"rules": BundleRules(max_per_category=2, exclude_substitutes=False)},
        ["chair", "table"],
        id="substitutes-of-each-other",
    ),
    pytest.param({"size": 2}, ["chair"], id="size-2"),
    pytest.param({"size": 4}, ["chair", "lamp", "bag"], id="size-4"),
    pytest.param({"budget": 450}, ["chair"], id="budget-450"),  # + lamp would be 527
    pytest.param({"budget": 420}, ["hammock"], id="budget-420"),  # chair 428 > 420; hammock 408; + lamp 507
]


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
        money = f"¥{kwargs['budget']}.00"  # the shop's currency (default ¥), two decimals
        assert money in b.reason.en and money in b.reason.zh


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
    assert list(a) == [
        "anchor",
        "items",
        "total",
        "suggested_price",
        "saving",
        "discount",
        "pitch",
        "budget",
        "reason",
        "skipped",
        "scene",
        "skipped_roles",
        "mix",
        "scene_fallback",
        "priced",
    ]
    assert a["scene"] is None and a["skipped_roles"] == [] and a["mix"] is None and a["priced"] is True
    assert list(a["items"][0]) == ["product", "role", "relation", "score", "evidence", "explanation"]
    assert a["anchor"]["product_id"] == "tent"
    assert a["pitch"]["en"] == "¥527.00 separately, ¥468.00 together, save ¥59.00"


# ----------------------------------------------------------------------------- one-way substitutes
@pytest.fixture(scope="module")
def one_way_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """A hand-loaded graph where substitutes are listed one way only: B names the anchor A, C names B.
    A reader of A's or B's own substitute list alone would miss both."""
    products = [
        {
            "product_id": p,
            "title": t,
            "category": c,
            "category_path": c,
            "brand": None,
            "price": price,
            "stock": 5,
            "attributes": None,
        }
        for p, t, c, price in [
            ("A", "Anchor", "K1", 100.0),
            ("B", "Twin of A", "K2", 50.0),
            ("C", "Twin of B", "K3", 40.0),
            ("D", "Other", "K4", 35.0),
        ]
    ]

    def rel(src: str, dst: str, kind: str, score: float) -> dict[str, Any]:
        return {
            "src": src,
            "dst": dst,
            "kind": kind,
            "score": score,
            "n_ab": 3,
            "lift": 2.0,
            "confidence": 0.3,
            "co_view": 0,
            "similarity": 0.5,
            "category_relation": "different",
            "price_ratio": 0.5,
            "evidence": json.dumps({"kind": kind, "bought_together": 3}),
        }

    relations = [
        rel("A", "B", "complement", 0.9),
        rel("A", "C", "complement", 0.8),
        rel("A", "D", "complement", 0.7),
        rel("B", "A", "substitute", 0.6),
        rel("C", "B", "substitute", 0.6),
    ]
    s = open_store(tmp_path_factory.mktemp("oneway") / "graph")
    s.replace(
        GraphData(
            products=pa.Table.from_pylist(products, schema=PRODUCTS),
            relations=pa.Table.from_pylist(relations, schema=RELATIONS),
        )
    )
    yield s
    s.close()


def test_substitutes_are_checked_both_ways(one_way_store: GraphStore) -> None:
    assert ids(bundle(one_way_store, "A")) == ["C", "D"]  # B names A; (C names B, but B is out)
    fwd = BundleRules(reverse_substitutes=False)
    assert ids(bundle(one_way_store, "A", rules=fwd)) == ["B", "C"]  # what a one-way check lets through
    assert ids(bundle(one_way_store, "A", size=4)) == ["C", "D"]
    # in a cart, B (which names A a substitute) is also A's complement: bought together, so not a
    # true substitute, and it stays; C is no substitute of the cart item A either way
    assert [i.product["product_id"] for i in addons(one_way_store, ["A"]).items] == ["B", "C", "D"]


# ----------------------------------------------------------------------------- add-ons
def test_addons_for_a_cart(store: GraphStore) -> None:
    a = addons(store, ["tent", "chair"])
    got = [i.product["product_id"] for i in a.items]
    # cooler (chair's complement) leads; table is a substitute of the chair, lamp_pro is out of
    # stock, tent/chair are in the cart; the hammock shares the chair's category, which only
    # limits the suggested items among themselves (a cart item's category does not count)
    assert got == ["cooler", "pegs", "power", "hammock", "lamp"]
    assert a.total == PRICE["tent"] + PRICE["chair"] and a.reason is None and a.threshold is None
    assert a.items[0].relation == "complement of chair" and a.items[1].sources == ["tent"]
    assert a.skipped == {"substitute_of_anchor": 1, "out_of_stock": 1}
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
    assert "¥2,000.00" in a.top_up_reason.en and "¥2,000.00" in a.top_up_reason.zh


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

    e = explain(row("tent", "complement", "chair"))  # lift 2.46: "often"; the lift stays in evidence
    assert e.zh == "经常一起买：8 单；不同品类；价格只有主商品的 43%"  # 129 / 299
    assert e.en == "often bought together: 8 orders; different category; 43% of the price of the main item"
    e = explain(row("tent", "substitute", "tent_b"))
    assert e.zh.startswith("可替代商品：两件") and "同一品类" in e.zh and e.zh.endswith("价格相近")  # 93 %
    assert (
        e.en.startswith("alternative: ") and "similar item" in e.en and e.en.endswith("about the same price")
    )
    e = explain(row("tent", "upsell", "tent_c"))
    assert e.zh.startswith("升级款：比主商品贵 54%") and e.en.startswith(
        "upgrade: 54% more than the main item"
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
        print(
            f"\nbundle(tent) p50 {b50:.2f} ms p99 {b99:.2f} ms; one-way substitutes p50 {f50:.2f} ms "
            f"p99 {f99:.2f} ms; addons(tent, chair) p50 {a50:.2f} ms p99 {a99:.2f} ms"
        )
    assert b50 > 0


# ----------------------------------------------------------------------------- scene-driven bundles
def roles_of(b: tiein.bundles.Bundle) -> list[str | None]:
    return [i.role for i in b.items]


def test_tent_bundle_follows_its_own_scene(scene_store: GraphStore) -> None:
    """Asked for nothing, the tent follows 露营 (its role comes first there and in the smaller
    night hike; it comes second in power camping): tent → chair → lamp, never the second tent."""
    mine = scene_store.product_scenes("tent")
    # by the tent's role position, then scene_id ("camping" < "night-hike")
    assert [(s["scene_id"], s["role"], s["weight"]) for s in mine] == [
        ("camping", "tent", 1.0),
        ("night-hike", "tent", 1.0),
        ("power-camping", "tent", 2.0),
    ]
    assert scene_store.scene_summary("露营")["members"] > scene_store.scene_summary("night hike")["members"]
    b = bundle(scene_store, "tent")
    assert b.scene == {"scene_id": "camping", "name": "露营"}
    assert b.product_ids == ["tent", "chair", "lamp"]
    assert roles_of(b) == ["folding chair", "camp lamp"] and b.skipped_roles == []
    assert b.to_dict()["scene"] == {"scene_id": "camping", "name": "露营"}
    assert b.pitch_en == "¥527.00 separately, ¥468.00 together, save ¥59.00"
    b4 = bundle(scene_store, "tent", size=4)
    assert b4.product_ids == ["tent", "chair", "lamp", "bag"] and roles_of(b4)[-1] == "sleeping bag"
    assert not {"tent_b", "tent_c"} & set(b4.product_ids)


def test_scene_order_beats_score_order(scene_store: GraphStore) -> None:
    """By score the tent's in-band add-ons are chair, then lamp; night hike has no chair role, so
    the lamp comes first and alone."""
    b = bundle(scene_store, "tent", scene="night hike")
    assert b.scene is not None and b.scene["name"] == "night hike"
    assert ids(b) == ["lamp"] and roles_of(b) == ["lamp"] and b.skipped_roles == []
    assert bundle(scene_store, "tent", scene="CAMPING").product_ids == [
        "tent",
        "chair",
        "lamp",
    ]  # by id, any case
    assert ids(bundle(scene_store, "tent", scene="露营", size=4)) == ["chair", "lamp", "bag"]


def test_roles_nothing_can_fill_are_skipped_and_said(scene_store: GraphStore) -> None:
    # power camping after the tent: the power station is 301 % of the tent, the pegs 6 %: skipped
    b = bundle(scene_store, "tent", scene="power camping")
    assert ids(b) == ["lamp"] and b.skipped_roles == ["power station", "pegs"]
    assert b.to_dict()["skipped_roles"] == ["power station", "pegs"]
    # a budget of 450 takes the chair (428) and leaves no room for the lamp or a sleeping bag
    b = bundle(scene_store, "tent", scene="camping", budget=450)
    assert ids(b) == ["chair"] and b.skipped_roles == ["camp lamp", "sleeping bag"]
    # nothing fills any role: the reason is the furthest rule a candidate reached
    b = bundle(scene_store, "chair", scene="night hike")  # the tent is 232 % of the chair
    assert b.items == [] and b.reason is not None and b.reason.code == "outside_price_band"
    assert b.skipped_roles == ["tent", "lamp"] and b.scene is not None


def test_anchor_in_no_scene_goes_by_score(scene_store: GraphStore, store: GraphStore) -> None:
    assert scene_store.product_scenes("stove") == []
    a, b = (
        bundle(scene_store, "stove", rules=BundleRules(require_in_stock=False)),
        bundle(store, "stove", rules=BundleRules(require_in_stock=False)),
    )
    assert a.scene is None and ids(a) == ids(b) == ["gas", "pot"]


def test_scene_errors(scene_store: GraphStore) -> None:
    with pytest.raises(NotFound, match="skiing"):
        bundle(scene_store, "tent", scene="skiing")
    for bad in ("", "  ", 3):
        with pytest.raises(ConfigError, match="scene"):
            bundle(scene_store, "tent", scene=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scene or roles"):
        bundle(scene_store, "tent", scene="camping", roles=[{"Lighting"}])
    with pytest.raises(ProductNotFound):
        bundle(scene_store, "no-such", scene="camping")


# ----------------------------------------------------------------------------- hand-made scenes and sales roles
@pytest.fixture(scope="module")
def mix_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """Anchors A (in scenes S and T) and G (in none), each complemented by B..F (scores 0.9..0.5),
    all in band (40-70 % of 100), each in its own category. Sales roles: B hero, C regular,
    D profit, E hero, F profit. Scene S: B r1, A r2, C r3, D and F r4 (5 members); scene T: A x,
    E y (2 members) — A's role is second in both, so the larger S is A's scene."""
    roles = {"A": "hero", "G": "hero", "B": "hero", "C": "regular", "D": "profit", "E": "hero", "F": "profit"}
    prices = {"A": 100.0, "G": 100.0, "B": 50.0, "C": 60.0, "D": 40.0, "E": 45.0, "F": 70.0}
    products = [
        {
            "product_id": p,
            "title": f"Item {p}",
            "category": f"K{p}",
            "category_path": f"K{p}",
            "price": prices[p],
            "stock": 5,
            "sales_role": roles[p],
        }
        for p in roles
    ]

    def comp(src: str, dst: str, score: float) -> dict[str, Any]:
        return {
            "src": src,
            "dst": dst,
            "kind": "complement",
            "score": score,
            "n_ab": 3,
            "lift": 2.0,
            "evidence": json.dumps({"kind": "complement", "bought_together": 3}),
        }

    relations = [
        comp(a, d, s) for a in ("A", "G") for d, s in zip("BCDEF", (0.9, 0.8, 0.7, 0.6, 0.5), strict=True)
    ]
    members = [
        ("B", "S", "r1", 1.0),
        ("A", "S", "r2", 2.0),
        ("C", "S", "r3", 3.0),
        ("D", "S", "r4", 4.0),
        ("F", "S", "r4", 4.0),
        ("A", "T", "x", 2.0),
        ("E", "T", "y", 3.0),
    ]
    s = open_store(tmp_path_factory.mktemp("mix") / "graph")
    s.replace(
        GraphData(
            products=pa.Table.from_pylist(products, schema=PRODUCTS),
            relations=pa.Table.from_pylist(relations, schema=RELATIONS),
            scenes=pa.Table.from_pylist(
                [
                    {"scene_id": "S", "name": "Scene S", "source": "user"},
                    {"scene_id": "T", "name": "Scene T", "source": "discovered"},
                ],
                schema=SCENES,
            ),
            scene_members=pa.Table.from_pylist(
                [dict(zip(("product_id", "scene_id", "role", "weight"), m, strict=True)) for m in members],
                schema=SCENE_MEMBERS,
            ),
        )
    )
    yield s
    s.close()


def test_scene_roles_after_the_anchor_then_wrapping_round(mix_store: GraphStore) -> None:
    b = bundle(mix_store, "A")  # S: roles after r2 are r3, r4, then r1
    assert (
        b.scene == {"scene_id": "S", "name": "Scene S"}
        and ids(b) == ["C", "D"]
        and roles_of(b) == ["r3", "r4"]
    )
    assert ids(bundle(mix_store, "A", size=4)) == ["C", "D", "B"]
    assert ids(bundle(mix_store, "A", size=5)) == ["C", "D", "B"]  # one item per role
    assert ids(bundle(mix_store, "A", scene="T")) == ["E"]
    assert ids(bundle(mix_store, "G")) == ["B", "C"]  # no scene: by score


def test_picked_scene_with_no_fillable_role_falls_back_to_score_order(mix_store: GraphStore) -> None:
    """A band of 42-48 % of A's 100 lets only E (45) in; E is not in A's scene S. Picked by us, S
    gives way to the best complements by score; named by the caller, S is followed strictly."""
    band = BundleRules(min_price_ratio=0.42, max_price_ratio=0.48)
    b = bundle(mix_store, "A", rules=band)
    assert b.scene == {"scene_id": "S", "name": "Scene S"} and b.scene_fallback and ids(b) == ["E"]
    assert (
        b.skipped_roles == ["r3", "r4", "r1"] and b.reason is None and b.to_dict()["scene_fallback"] is True
    )
    strict = bundle(mix_store, "A", scene="S", rules=band)
    assert strict.items == [] and not strict.scene_fallback and strict.reason is not None
    assert strict.reason.code == "no_scene_role_match"  # E passed the band but has no role in S
    assert not bundle(mix_store, "A").scene_fallback  # the scene fills: no fallback


def test_sales_role_mix(mix_store: GraphStore) -> None:
    def sales(b: tiein.bundles.Bundle) -> list[str]:
        return [i.product["sales_role"] for i in b.items]

    b = bundle(mix_store, "G", mix=("hero", "profit"))
    assert ids(b) == ["B", "D"] and sales(b) == ["hero", "profit"] and b.mix == ["hero", "profit"]
    assert b.to_dict()["mix"] == ["hero", "profit"]
    assert ids(bundle(mix_store, "G", mix="profit+hero")) == ["D", "B"]  # in the order asked
    assert ids(bundle(mix_store, "G", mix=["hero", "hero"], size=4)) == ["B", "E"]  # at most len(mix)
    assert ids(bundle(mix_store, "G", mix="hero+traffic")) == ["B"]
    none = bundle(mix_store, "G", mix="traffic")
    assert none.items == [] and none.reason is not None and none.reason.code == "no_mix_match"
    assert "traffic" in none.reason.en and "traffic" in none.reason.zh
    assert none.skipped["sales_role_mismatch"] == 5
    # with a scene the mix applies to the scene's roles: r3 (regular C) and r4 (profit D, F) hold no hero
    b = bundle(mix_store, "A", mix="hero")
    assert ids(b) == ["B"] and b.skipped_roles == ["r3", "r4"]
    for bad in ("vip", "", ["hero", 1], 5):
        with pytest.raises(ConfigError, match="mix"):
            bundle(mix_store, "G", mix=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- CLI
def _cli(store: GraphStore, *args: str) -> Any:
    from click.testing import CliRunner

    from tiein.cli import cli

    result = CliRunner().invoke(cli, [*args, "--store", str(store.path)])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_cli_bundle_table(scene_store: GraphStore) -> None:
    out = _cli(scene_store, "bundle", "tent").output
    assert "scene: 露营 (camping)" in out
    lines = out.splitlines()
    chair = next(i for i, line in enumerate(lines) if "[folding chair] chair" in line)
    lamp = next(i for i, line in enumerate(lines) if "[camp lamp] lamp" in line)
    assert chair < lamp and "complement of anchor" in lines[chair] and "129.00" in lines[chair]
    assert lines[chair + 1].strip().startswith("often bought together: 8 orders")
    assert lines[chair + 2].strip().startswith("经常一起买：8 单")
    assert "total 527.00 → bundle price 468.00" in out and "save 59.00" in out
    assert "分开买 ¥527.00，一起拿 ¥468.00，省 ¥59.00" in out
    assert "¥527.00 separately, ¥468.00 together, save ¥59.00" in out
    assert "tent_b" not in out


def test_cli_bundle_options_and_json(scene_store: GraphStore) -> None:
    from tiein.service import bundle_payload

    got = json.loads(_cli(scene_store, "bundle", "tent", "--json", "--discount", "0.2", "--size", "4").output)
    assert got == bundle_payload(scene_store, "tent", size=4, discount=0.2)
    assert [i["product"]["product_id"] for i in got["items"]] == ["chair", "lamp", "bag"]
    assert got["discount"] == 0.2 and got["total"] == 299 + 129 + 99 + 189
    got = json.loads(
        _cli(scene_store, "bundle", "tent", "--json", "--scene", "night hike", "--budget", "450").output
    )
    assert [i["product"]["product_id"] for i in got["items"]] == ["lamp"] and got["budget"] == 450
    got = json.loads(
        _cli(scene_store, "bundle", "tent", "--json", "--mix", "hero+profit", "--scene", "camping").output
    )
    assert got["mix"] == ["hero", "profit"]
    assert [i["product"]["sales_role"] for i in got["items"]] == ["hero", "profit"][: len(got["items"])]


def test_cli_no_bundle_is_an_answer(scene_store: GraphStore) -> None:
    out = _cli(scene_store, "bundle", "repellent").output
    assert "no bundle: no add-ons are known for this product yet" in out
    assert "还没有常和它一起买的搭配商品" in out and "pitch" not in out
    out = _cli(scene_store, "bundle", "tent", "--budget", "250").output
    assert "over the budget of ¥250.00" in out


def test_cli_addons(scene_store: GraphStore) -> None:
    from tiein.service import addons_payload

    got = json.loads(
        _cli(scene_store, "addons", "tent", "chair", "--threshold", "500", "-k", "3", "--json").output
    )
    assert got == addons_payload(scene_store, ["tent", "chair"], threshold=500, k=3)
    assert got["top_ups"][0]["product"]["product_id"] == "lamp" and len(got["items"]) == 3
    out = _cli(scene_store, "addons", "tent", "chair", "--threshold", "500").output
    assert "cart: tent (299.00), chair (129.00) — total 428.00" in out
    assert "gap 72.00" in out and "→ 527.00 (over by 27.00)" in out
    out = _cli(scene_store, "addons", "repellent", "--threshold", "50").output
    assert "no add-ons: no add-ons are known for this product yet" in out and "no top-up:" in out

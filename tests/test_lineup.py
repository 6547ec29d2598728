"""The livestream lineup (直播排品) and 组货 (tiein.lineup) on a real embedded store built by the real
pipeline from tests/fixtures/lineup, whose README.md works out every expected order by hand;
also through the CLI, the API and the export. Prices and stock are read from catalog.csv here."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tiein.errors import ConfigError, NotFound
from tiein.explain import explain_complement
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.lineup import LineupOptions, order_counts
from tiein.lineup import lineup_payload as _lineup_payload
from tiein.options import BuildOptions
from tiein.pipeline import build
from tiein.rules import RuleSet
from tiein.service import bundle_payload

FIXTURE = Path(__file__).parent / "fixtures" / "lineup"


def _catalog() -> dict[str, dict[str, str]]:
    with open(FIXTURE / "catalog.csv", encoding="utf-8", newline="") as f:
        return {r["product_id"]: r for r in csv.DictReader(f)}


CATALOG = _catalog()
ALL = sorted(CATALOG)
PRICE = {pid: float(r["price"]) for pid, r in CATALOG.items()}
A: dict[str, Any] = {"length_min": 60, "slot_min": 5, "welfare_every_min": 20}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lineup")
    build(
        BuildOptions(
            catalog=FIXTURE / "catalog.csv",
            orders=FIXTURE / "orders.csv",
            home=home,
            threads=1,
            discover_scenes=False,
        )
    )
    return home


@pytest.fixture(scope="module")
def store(home: Path) -> Iterator[GraphStore]:
    s = open_store(str(home / "graph"))
    yield s
    s.close()


def lineup_payload(store: GraphStore, **kwargs: Any) -> Any:
    """The service's answer, untyped for the tests' indexing."""
    return _lineup_payload(store, **kwargs)


def order(payload: Any) -> list[tuple[str, str]]:
    return [(s["role"], "+".join(p["product_id"] for p in s["products"])) for s in payload["slots"]]


def left(payload: Any) -> list[tuple[str, str]]:
    return [(x["product"]["product_id"], x["reason"]["code"]) for x in payload["left_out"]]


def codes(slot: Any) -> list[str]:
    return [c["code"] for c in slot["checks"]]


# ----------------------------------------------------------------------------- the fixture
def test_fixture_holds_what_the_readme_says(store: GraphStore) -> None:
    roles = {pid: store.product(pid)["sales_role"] for pid in ALL}
    assert {p for p, r in roles.items() if r == "traffic"} == {"fan", "towel"}
    assert {p for p, r in roles.items() if r == "hero"} == {"shades", "sunscreen"}
    assert {p for p, r in roles.items() if r == "profit"} == {"umbrella", "umbrella_b"}
    counts = order_counts(store)
    assert counts == {
        "fan": 37, "towel": 33, "shades": 28, "sunscreen": 25, "bottle": 14, "aftersun": 11,
        "hat": 11, "case": 9, "strap": 8, "sunscreen_b": 8, "umbrella_b": 7,
    }  # fmt: skip
    assert order_counts(store, ["umbrella", "fan"]) == {"fan": 37}
    assert [r["product_id"] for r in store.related("shades", "complement", 10)] == ["strap", "case", "hat"]
    assert [r["product_id"] for r in store.related("sunscreen", "complement", 10)] == ["aftersun", "hat"]
    for a, b in (("shades", "shades_b"), ("sunscreen", "sunscreen_b"), ("umbrella", "umbrella_b")):
        assert b in {r["product_id"] for r in store.related(a, "substitute", 10)}
    assert store.product("case")["stock"] == 0


# ----------------------------------------------------------------------------- README A, B, C
def test_readme_a_lineup_order(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, **A)
    assert order(p) == [
        ("opener", "fan"),
        ("hero", "shades"),
        ("complement", "strap"),
        ("hold", "towel"),
        ("welfare", "fan"),
        ("hero", "sunscreen"),
        ("complement", "aftersun"),
        ("profit", "umbrella_b"),
        ("welfare", "towel"),
        ("profit", "umbrella"),
        ("regular", "bottle"),
        ("closing", "shades+hat+sunscreen"),
    ]
    assert [s["start_min"] for s in p["slots"]] == list(range(0, 60, 5))
    assert all(s["duration_min"] == 5 and s["end_min"] == s["start_min"] + 5 for s in p["slots"])
    assert (p["slots_available"], p["slots_used"], p["spare_min"]) == (12, 12, 0)
    assert left(p) == [
        ("case", "out_of_stock"),
        ("hat", "no_slot"),
        ("sunscreen_b", "no_slot"),
        ("shades_b", "no_slot"),
    ]
    # the complements say which hero they go with, from the store's relation
    strap = p["slots"][2]
    assert strap["relation"]["with_id"] == "shades" and strap["relation"]["kind"] == "complement"
    assert strap["relation"]["evidence"]["bought_together"] == 6
    # price jumps of 5 times or more, from catalog prices
    flagged = [s["products"][0]["product_id"] for s in p["slots"] if "price_jump" in codes(s)]
    assert flagged == ["shades", "umbrella"]
    assert PRICE["shades"] / PRICE["fan"] >= 5 and PRICE["sunscreen"] / PRICE["fan"] < 5
    assert p["warnings"] == 2 and p["reason"] is None and p["closing_reason"] is None


def test_closing_bundle_is_the_first_heros_bundle(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, **A)
    closing = p["slots"][-1]
    expected = bundle_payload(store, "shades")
    assert closing["bundle"]["pitch"] == expected["pitch"]
    assert [x["product_id"] for x in closing["products"]] == ["shades"] + [
        i["product"]["product_id"] for i in expected["items"]
    ]
    assert closing["talking_points"]["zh"][-1] == expected["pitch"]["zh"]


def test_readme_b_substitutes_never_back_to_back(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, length_min=60, slot_min=5)
    assert [x for _, x in order(p)] == [
        "fan", "shades", "strap", "towel", "sunscreen", "aftersun", "umbrella_b", "bottle",
        "umbrella", "hat", "sunscreen_b", "shades+hat+sunscreen",
    ]  # fmt: skip
    assert left(p) == [("case", "out_of_stock"), ("shades_b", "no_slot")]
    ids = [s["products"][0]["product_id"] for s in p["slots"]]
    for a, b in zip(ids, ids[1:], strict=False):
        subs = {r["product_id"] for r in store.related(a, "substitute", 50)}
        back = {r["product_id"] for r in store.related(b, "substitute", 50)}
        assert b not in subs and a not in back, (a, b)
    assert not any("substitutes_adjacent" in codes(s) for s in p["slots"])


def test_readme_c_compare_is_a_deliberate_comparison(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, length_min=60, slot_min=5, compare=True)
    assert order(p)[:8] == [
        ("opener", "fan"),
        ("hero", "shades"),
        ("complement", "strap"),
        ("compare", "shades_b"),
        ("hold", "towel"),
        ("hero", "sunscreen"),
        ("complement", "aftersun"),
        ("compare", "sunscreen_b"),
    ]
    compare = p["slots"][3]
    assert compare["relation"]["kind"] == "substitute" and compare["relation"]["with_id"] == "shades"
    assert "comparison" in codes(compare) and "substitutes_adjacent" not in codes(compare)
    assert any("对比" in t for t in compare["talking_points"]["zh"])


# ----------------------------------------------------------------------------- stock, rules, pools
def test_stock_zero_is_never_scheduled_and_low_stock_is_said(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, length_min=240, slot_min=5)
    scheduled = {x["product_id"] for s in p["slots"] if s["role"] != "closing" for x in s["products"]}
    assert "case" not in scheduled and ("case", "out_of_stock") in left(p)
    hat = next(s for s in p["slots"] if s["products"][0]["product_id"] == "hat")
    assert "low_stock" in codes(hat) and "库存只剩 3 件" in hat["talking_points"]["zh"]
    # min_stock 5: the hat (3 in stock) is left out too, and says why
    p5 = lineup_payload(store, ids=ALL, length_min=240, min_stock=5)
    assert ("hat", "low_stock") in left(p5)
    assert "3" in next(x for x in p5["left_out"] if x["product"]["product_id"] == "hat")["reason"]["en"]
    # nothing in stock: an answer that says so, not an error
    none = lineup_payload(store, ids=["case"])
    assert none["slots"] == [] and none["reason"]["code"] == "nothing_in_stock"


def test_a_blocked_pair_is_never_placed_next_to_the_hero(store: GraphStore) -> None:
    rules = RuleSet.of(
        [{"rule_id": 1, "anchor": "sunscreen", "item": "aftersun", "kind": "complement", "action": "block"}]
    )
    p = lineup_payload(store, ids=ALL, length_min=240, curation=rules)
    slots = p["slots"]
    at = next(
        i
        for i, s in enumerate(slots)
        if s["role"] == "hero" and s["products"][0]["product_id"] == "sunscreen"
    )
    assert slots[at + 1]["role"] == "complement" and slots[at + 1]["products"][0]["product_id"] == "hat"
    aftersun = next(s for s in slots if s["products"][0]["product_id"] == "aftersun")
    assert aftersun["role"] == "regular"
    for i in range(len(slots) - 1):
        pair = {slots[i]["products"][0]["product_id"], slots[i + 1]["products"][0]["product_id"]}
        assert pair != {"sunscreen", "aftersun"}


def test_layout_keeps_blocked_pairs_apart_and_flags_what_it_cannot(store: GraphStore) -> None:
    rules = RuleSet.of(
        [{"rule_id": 1, "anchor": "bottle", "item": "umbrella", "kind": "complement", "action": "block"}]
    )
    p = lineup_payload(store, ids=ALL, length_min=60, curation=rules)
    assert [x for _, x in order(p)][6:11] == ["umbrella_b", "bottle", "hat", "umbrella", "sunscreen_b"]
    assert p["warnings"] == 2  # the two price jumps, nothing else
    forced = lineup_payload(store, ids=["umbrella", "bottle"], curation=rules, closing_bundle=False)
    assert [x for _, x in order(forced)] == ["umbrella", "bottle"]
    assert codes(forced["slots"][1]) == ["blocked_adjacent"]
    subs = lineup_payload(store, ids=["umbrella", "umbrella_b"], closing_bundle=False)
    assert [x for _, x in order(subs)] == ["umbrella_b", "umbrella"]
    assert "substitutes_adjacent" in codes(subs["slots"][1]) and subs["warnings"] == 1


def test_pools_top_n_and_category(store: GraphStore) -> None:
    top = lineup_payload(store, top=4, length_min=30)
    assert top["pool"] == {"source": "top", "value": 4, "size": 4, "truncated": False, "limit": 200}
    assert [x for _, x in order(top)][:4] == ["fan", "shades", "towel", "sunscreen"]
    cat = lineup_payload(store, category="eyewear", length_min=30)  # case-insensitive
    assert cat["pool"]["size"] == 2
    assert [x for _, x in order(cat)][:2] == ["shades", "shades_b"]  # shades_b is a regular item


def test_extend_pool_brings_complements_from_the_store_and_flags_them(store: GraphStore) -> None:
    inside = lineup_payload(store, ids=["shades", "fan"], length_min=30)
    assert [r for r, _ in order(inside)][:2] == ["opener", "hero"] and "complement" not in [
        r for r, _ in order(inside)
    ]
    out = lineup_payload(store, ids=["shades", "fan"], length_min=30, extend_pool=True)
    strap = next(s for s in out["slots"] if s["role"] == "complement")
    assert strap["products"][0]["product_id"] == "strap" and "outside_pool" in codes(strap)
    assert strap["orders"] == 8


def test_readme_d_assort_picks(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, mode="assort", picks=5, length_min=60)
    picks = [(k["product"]["product_id"], k["gain"]) for k in p["picks"]]
    assert picks == [("fan", 37), ("towel", 33), ("shades", 28), ("sunscreen", 25), ("aftersun", 19)]
    last = p["picks"][-1]
    assert (last["orders"], last["together"], last["complements"]) == (11, 8, ["sunscreen"])
    assert "8 单" in last["explanation"]["zh"] and "8 orders" in last["explanation"]["en"]
    chosen = [k["product"]["product_id"] for k in p["picks"]]
    for a in chosen:
        assert not {r["product_id"] for r in store.related(a, "substitute", 50)} & set(chosen)
    assert [x for _, x in order(p)][:5] == ["fan", "shades", "towel", "sunscreen", "aftersun"]
    # all 12 in stock: the substitutes come last, with their penalty
    every = lineup_payload(store, ids=ALL, mode="assort", picks=12)
    sub = next(k for k in every["picks"] if k["product"]["product_id"] == "sunscreen_b")
    assert sub["substitutes"] == ["sunscreen"] and sub["penalty"] == 8


def test_talking_points_are_sayable_and_built_from_evidence(store: GraphStore) -> None:
    p = lineup_payload(store, ids=ALL, **A)
    aftersun = next(
        s for s in p["slots"] if s["role"] == "complement" and s["products"][0]["product_id"] == "aftersun"
    )
    e = explain_complement(aftersun["relation"]["evidence"], "“清透防晒霜 SPF50”", "清透防晒霜 SPF50")
    assert aftersun["talking_points"]["zh"][-1] == f"搭配清透防晒霜 SPF50：{e.zh}"
    assert aftersun["talking_points"]["en"][-1] == f"goes with 清透防晒霜 SPF50: {e.en}"
    for s in p["slots"]:
        for text in s["talking_points"]["en"] + s["talking_points"]["zh"]:
            assert "lift" not in text.lower() and "提升度" not in text and "None" not in text
        assert (
            s["why"]["zh"]
            and s["why"]["en"]
            and len(s["talking_points"]["zh"]) == len(s["talking_points"]["en"])
        )


def test_deterministic_whatever_the_id_order(store: GraphStore) -> None:
    a = lineup_payload(store, ids=ALL, **A)
    b = lineup_payload(store, ids=list(reversed(ALL)), **A)
    assert order(a) == order(b) and left(a) == left(b)


def test_an_in_memory_snapshot_answers_alike(store: GraphStore) -> None:
    """The service reads only GraphReader methods: the snapshot the API serves gives the same."""
    from tiein.graph.snapshot import SnapshotStore

    snap = SnapshotStore(store, follow=False)
    for kwargs in ({"ids": ALL, **A}, {"top": 6, "mode": "assort", "picks": 4}, {"category": "Sun care"}):
        assert lineup_payload(snap, **kwargs) == lineup_payload(store, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"ids": ["fan", "nope", "zzz"]}, NotFound, ["'nope'", "'zzz'"]),
        ({"ids": []}, ConfigError, ["empty"]),
        ({"ids": ["fan"], "top": 3}, ConfigError, ["exactly one"]),
        ({}, ConfigError, ["exactly one"]),
        ({"category": "Spaceships"}, NotFound, ["Spaceships"]),
        ({"top": 3, "slot_min": 90, "length_min": 60}, ConfigError, ["longer than the broadcast"]),
        ({"top": 3, "welfare_every_min": 5}, ConfigError, ["welfare_every_min"]),
        ({"top": 3, "mode": "party"}, ConfigError, ["mode"]),
        ({"top": 3, "slots_per_hour": 2}, ConfigError, ["slots_per_hour"]),
        ({"top": 0}, ConfigError, ["top"]),
    ],
)
def test_bad_input_is_a_plain_error(
    store: GraphStore, kwargs: dict[str, Any], error: type, words: list[str]
) -> None:
    with pytest.raises(error) as exc:
        lineup_payload(store, **kwargs)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_options_check_themselves() -> None:
    assert LineupOptions(length_min=61, slot_min=5).slots == 12
    with pytest.raises(ConfigError, match="max_price_jump"):
        LineupOptions(max_price_jump=1)


# ----------------------------------------------------------------------------- CLI, API, export
def test_cli_json_is_the_payload_and_the_table_reads(home: Path, store: GraphStore, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tiein.cli import cli

    runner = CliRunner()
    args = ["lineup", *ALL, "--length", "60", "--slot", "5", "--welfare-every", "20", "--home", str(home)]
    r = runner.invoke(cli, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == json.loads(json.dumps(lineup_payload(store, ids=ALL, **A)))
    table = runner.invoke(cli, args)
    assert table.exit_code == 0 and "开场引流款" in table.output and "left out: case" in table.output
    out = tmp_path / "lineup.csv"
    r = runner.invoke(cli, [*args, "--out", str(out)])
    assert r.exit_code == 0 and out.exists()
    bad = runner.invoke(cli, ["lineup", "fan", "ghost", "--home", str(home)])
    assert bad.exit_code != 0 and "ghost" in str(bad.exception)
    helped = runner.invoke(cli, ["lineup", "--help"])
    assert "tiein lineup --top" in helped.output and "--mode" in helped.output


def test_api_answers_the_same_payload(home: Path, store: GraphStore) -> None:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=home)), raise_server_exceptions=False) as c:
        r = c.post("/v1/lineup", json={"product_ids": ALL, **A})
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(json.dumps(lineup_payload(store, ids=ALL, **A)))
        r = c.post("/v1/lineup?format=csv", json={"product_ids": ALL, **A})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(r.text.splitlines()))
        assert [x["product_id"] for x in rows][:4] == ["fan", "shades", "strap", "towel"] and len(rows) == 14
        r = c.post("/v1/lineup?fromat=csv", json={"top": 5})
        assert r.status_code == 422 and "fromat" in r.json()["error"]["message"]
        r = c.post("/v1/lineup", json={"top": 5, "mode": "assort", "picks": 3})
        assert r.status_code == 200 and len(r.json()["picks"]) == 3
        r = c.post("/v1/lineup", json={"product_ids": ["fan", "ghost"]})
        assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
        r = c.post("/v1/lineup", json={"top": 5, "lenght_min": 30})
        assert r.status_code == 422 and "lenght_min" in r.json()["error"]["message"]
        r = c.post("/v1/lineup", json={"top": 5, "slot_min": 90, "length_min": 60})
        assert r.status_code == 422 and "longer than the broadcast" in r.json()["error"]["message"]


def test_openapi_documents_the_route(home: Path) -> None:
    from fastapi import APIRouter, FastAPI

    from tiein.api import Settings
    from tiein.api.lineup_routes import add_lineup_routes
    from tiein.api.params import _operation_id

    router = APIRouter(prefix="/v1", generate_unique_id_function=_operation_id)
    add_lineup_routes(router, Settings(home=home), [])
    app = FastAPI()
    app.include_router(router)
    op = app.openapi()["paths"]["/v1/lineup"]["post"]
    assert op["operationId"] == "lineup" and op["summary"]
    schemas = app.openapi()["components"]["schemas"]
    assert schemas["LineupRequest"]["additionalProperties"] is False
    assert "talking_points" in schemas["LineupSlotModel"]["properties"]


def test_export_csv_xlsx_json(store: GraphStore, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from tiein.export.lineup import lineup_rows, write_lineup

    p = lineup_payload(store, ids=ALL, **A)
    rows = list(lineup_rows(p))
    assert len(rows) == 11 + 3  # 11 one-product slots, the closing bundle's 3 products
    n = write_lineup(p, tmp_path / "l.csv")
    with open(tmp_path / "l.csv", encoding="utf-8", newline="") as f:
        read = list(csv.DictReader(f))
    assert n == len(read) == 14
    assert [(r["position"], r["product_id"]) for r in read[:3]] == [
        ("1", "fan"),
        ("2", "shades"),
        ("3", "strap"),
    ]
    assert read[1]["checks"] == "price_jump" and read[2]["with_id"] == "shades"
    write_lineup(p, tmp_path / "l.xlsx")
    ws = load_workbook(tmp_path / "l.xlsx").active
    assert ws.cell(1, 1).value == "序号 / position" and ws.cell(2, 8).value == "fan"
    write_lineup(p, tmp_path / "l.json")
    assert json.loads((tmp_path / "l.json").read_text(encoding="utf-8"))["slots"][0]["role"] == "opener"
    with pytest.raises(ConfigError, match="format"):
        write_lineup(p, tmp_path / "l.txt")

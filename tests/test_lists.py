"""Merchant lists (tiein.lists): 搭配榜 pairings, 品类热销榜 trending, the trending fallback of an
empty related list; from the library, the CLI, the API and export.

The shop is tests/fixtures/trending (a coffee shop built by the real build); its README.md works
out every expected list below by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import doctest
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

import tiein.lists.pairings
import tiein.lists.trending
from tiein.cli import cli
from tiein.errors import ConfigError, NotFound
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.lists import Lists, Sales, trend_score, window
from tiein.model import ORDERS
from tiein.options import BuildOptions
from tiein.pipeline import build
from tiein.rules import Filters, RuleSet
from tiein.service import related_payload

FIX = Path(__file__).parent / "fixtures" / "trending"
JUNE_30 = dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("coffee")
    build(
        BuildOptions(
            catalog=FIX / "catalog.csv",
            orders=FIX / "orders.csv",
            home=home,
            threads=1,
            embeddings=False,
            discover_scenes=False,
        )
    )
    return home


@pytest.fixture(scope="module")
def shop(home: Path) -> Iterator[GraphStore]:
    s = open_store(str(home / "graph"))
    yield s
    s.close()


def ids(payload: Any) -> list[str]:
    return [r["product_id"] for r in payload["items"]]


def pairs(payload: Any) -> list[tuple[str, str]]:
    return [(r["anchor"]["product_id"], r["item"]["product_id"]) for r in payload["items"]]


# ----------------------------------------------------------------------------- pure parts
def test_doctests() -> None:
    for mod in (tiein.lists.trending, tiein.lists.pairings):
        assert doctest.testmod(mod).failed == 0


def test_window_arithmetic() -> None:
    w = window(JUNE_30, 7)
    assert (w.start, w.end) == (dt.date(2024, 6, 24), JUNE_30)
    assert (w.previous_start, w.previous_end) == (dt.date(2024, 6, 17), dt.date(2024, 6, 23))
    assert (w.end - w.start).days + 1 == 7 == (w.previous_end - w.previous_start).days + 1
    one = window(JUNE_30, 1)
    assert (one.start, one.previous_start, one.previous_end) == (
        JUNE_30,
        dt.date(2024, 6, 29),
        dt.date(2024, 6, 29),
    )
    leap = window(dt.date(2024, 3, 1), 2)  # over February 29
    assert (leap.start, leap.previous_start) == (dt.date(2024, 2, 29), dt.date(2024, 2, 27))
    with pytest.raises(ConfigError, match="days"):
        window(JUNE_30, 0)
    with pytest.raises(ConfigError, match="before the year 1"):
        window(dt.date(1, 1, 5), 30)


def test_shrinkage_keeps_a_few_orders_from_topping_the_list() -> None:
    # raw growth: 1 -> 3 is x3, 6 -> 14 is x2.33; shrunk, the steadier riser wins
    assert 3 / 1 > 14 / 6
    assert trend_score(3, 1) == pytest.approx(8 / 6)
    assert trend_score(14, 6) == pytest.approx(19 / 11)
    assert trend_score(14, 6) > trend_score(3, 1)
    assert trend_score(5, 5) == 1.0


def test_sales_count_orders_not_lines_and_skip_undated_lines() -> None:
    t = pa.table(
        {
            "order_id": ["o1", "o1", "o2", "o3"],
            "product_id": ["a", "a", "a", "b"],  # o1 holds a twice: one order
            "quantity": [2.0, None, 1.0, 1.0],  # no quantity: one unit
            "customer_id": ["c", "c", "c", "c"],
            "ts": [dt.datetime(2024, 6, 30, 9), dt.datetime(2024, 6, 30, 18), dt.datetime(2024, 6, 29), None],
        },
        schema=ORDERS,
    )
    sales = Sales.from_orders(t)
    assert (sales.undated, sales.last_day, sales.ids) == (1, JUNE_30, ["a"])
    orders, units = sales.counts(JUNE_30, JUNE_30)
    assert (orders.tolist(), units.tolist()) == ([1], [3.0])
    orders, units = sales.counts(dt.date(2024, 6, 29), JUNE_30)
    assert (orders.tolist(), units.tolist()) == ([2], [4.0])


# ----------------------------------------------------------------------------- trending
def test_trending_last_week_by_hand(home: Path, shop: GraphStore) -> None:
    p = Lists(home).trending(shop, days=7)
    assert p["window"] == {
        "days": 7,
        "at": "2024-06-30",
        "start": "2024-06-24",
        "end": "2024-06-30",
        "previous_start": "2024-06-17",
        "previous_end": "2024-06-23",
    }
    assert ids(p) == ["dripper", "beans_b", "kettle", "mug"]
    got = {r["product_id"]: (r["orders"], r["previous_orders"], r["units"], r["growth"]) for r in p["items"]}
    assert got == {
        "dripper": (8, 2, 8.0, 3.0),
        "beans_b": (4, 0, 4.0, None),
        "kettle": (14, 6, 14.0, pytest.approx(14 / 6 - 1)),
        "mug": (3, 1, 52.0, 2.0),  # the bulk order of 50 mugs is one order
    }
    assert [r["rank"] for r in p["items"]] == [1, 2, 3, 4]
    assert [r["score"] for r in p["items"]] == pytest.approx([13 / 7, 9 / 5, 19 / 11, 8 / 6])
    assert p["items"][0]["explanation"] == {
        "zh": "近 7 天 8 单，之前 7 天 2 单",
        "en": "8 orders in the last 7 days, up from 2 in the 7 days before",
    }
    assert p["items"][1]["explanation"]["en"] == "4 orders in the last 7 days, none in the 7 days before"
    assert (p["total"], p["note"]) == (4, None)
    # an explicit at equal to the last order's day is the same answer
    assert Lists(home).trending(shop, days=7, at="2024-06-30") == p


def test_trending_two_weeks_and_ties(home: Path, shop: GraphStore) -> None:
    p = Lists(home).trending(shop, days=14)
    assert p["window"] is not None
    assert (p["window"]["start"], p["window"]["previous_start"]) == ("2024-06-17", "2024-06-03")
    assert ids(p) == ["kettle", "beans_a", "dripper", "paper"]  # dripper and paper tie: by id
    assert [(r["orders"], r["previous_orders"]) for r in p["items"]] == [(20, 4), (16, 10), (10, 6), (10, 6)]


def test_trending_min_orders_category_and_per_category(home: Path, shop: GraphStore) -> None:
    lists = Lists(home)
    assert ids(lists.trending(shop, days=7, min_orders=2)) == [
        "dripper",
        "beans_b",
        "kettle",
        "grinder",
        "mug",
    ]
    assert ids(lists.trending(shop, days=7, category="Equipment")) == ["dripper", "kettle"]
    assert ids(lists.trending(shop, days=7, category="brewing")) == [
        "dripper",
        "kettle",
    ]  # any level, any case
    per = lists.trending(shop, days=7, per_category=True)
    assert [(r["category"], r["product_id"], r["rank"]) for r in per["items"]] == [
        ("Coffee > Beans", "beans_b", 1),
        ("Cups > Mugs", "mug", 1),
        ("Equipment > Brewing", "dripper", 1),
        ("Equipment > Brewing", "kettle", 2),
    ]
    assert ids(lists.trending(shop, days=7, per_category=True, k=1)) == ["beans_b", "mug", "dripper"]
    quiet = lists.trending(shop, days=7, category="Tea")
    assert quiet["items"] == [] and "nothing trending in 'Tea'" in str(quiet["note"])


def test_trending_after_the_data_and_bad_input(home: Path, shop: GraphStore) -> None:
    lists = Lists(home)
    later = lists.trending(shop, days=7, at=dt.date(2024, 7, 31))
    assert later["items"] == [] and "2024-07-25" in str(later["note"])
    with pytest.raises(NotFound, match=r"category 'Coffe' is not in the catalog; did you mean"):
        lists.trending(shop, category="Coffe")
    with pytest.raises(ConfigError, match="at must be a date"):
        lists.trending(shop, at="30/06/2024")
    with pytest.raises(ConfigError, match="days"):
        lists.trending(shop, days=0)
    with pytest.raises(ConfigError, match="min_orders"):
        lists.trending(shop, min_orders=0)


def test_trending_needs_the_orders_of_a_build(home: Path, shop: GraphStore, tmp_path: Path) -> None:
    from tiein.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="trending needs the orders of a build"):
        Lists(tmp_path).trending(shop)


# ----------------------------------------------------------------------------- pairings
def test_pairings_by_hand(home: Path, shop: GraphStore) -> None:
    p = Lists(home).pairings(shop)
    assert pairs(p) == [
        ("grinder", "beans_a"),
        ("dripper", "paper"),
        ("beans_b", "mug"),
        ("beans_b", "kettle"),
    ]
    assert [r["n_ab"] for r in p["items"]] == [8, 6, 3, 4]
    assert [r["rank"] for r in p["items"]] == [1, 2, 3, 4]
    # the scores are the relations' own, in the store's order
    for r in p["items"]:
        rel = {x["product_id"]: x for x in shop.related(r["anchor"]["product_id"], "complement", 50)}
        assert r["score"] == rel[r["item"]["product_id"]]["score"]
    scores = [r["score"] for r in p["items"]]
    assert scores == sorted(scores, reverse=True)
    first = p["items"][0]
    assert first["explanation"]["zh"].startswith("经常一起买：8 单")
    assert first["explanation"]["en"].startswith("often bought together: 8 orders")
    assert "lift" not in first["explanation"]["en"] and first["lift"] > 1
    assert (p["total"], p["min_orders"], p["note"]) == (4, 3, None)


def test_pairings_min_orders_categories(home: Path, shop: GraphStore) -> None:
    lists = Lists(home)
    assert pairs(lists.pairings(shop, min_orders=2))[-1] == ("mug", "beans_a")
    assert len(lists.pairings(shop, min_orders=2)["items"]) == 5
    assert pairs(lists.pairings(shop, category="Coffee")) == [
        ("beans_b", "mug"),
        ("beans_a", "grinder"),
        ("beans_b", "kettle"),
    ]
    assert pairs(lists.pairings(shop, category="Coffee", with_category="Equipment")) == [
        ("beans_a", "grinder"),
        ("beans_b", "kettle"),
    ]
    per = lists.pairings(shop, per_category=True, k=1)
    assert [(r["category"], r["anchor"]["product_id"]) for r in per["items"]] == [
        ("Coffee > Beans", "beans_b"),
        ("Equipment > Brewing", "dripper"),
        ("Equipment > Grinders", "grinder"),
    ]
    none = lists.pairings(shop, category="Tea")
    assert none["items"] == [] and "anchor in 'Tea'" in str(none["note"])
    with pytest.raises(NotFound, match="with_category 'Nope'"):
        lists.pairings(shop, with_category="Nope")


def test_every_store_answers_the_same_lists(home: Path, shop: GraphStore, store: GraphStore) -> None:
    """The contract stores (embedded, snapshot, Neo4j when configured) loaded with the same graph
    give the same pairings and trending lists."""
    from tiein.state import load_state

    store.replace(load_state(home).graph)
    for fn, kw in (
        ("pairings", {}),
        ("pairings", {"per_category": True, "min_orders": 2}),
        ("trending", {"days": 7}),
    ):
        assert getattr(Lists(home), fn)(store, **kw) == getattr(Lists(home), fn)(shop, **kw)


# ----------------------------------------------------------------------------- fallback
def test_empty_complements_get_trending_items_flagged(home: Path, shop: GraphStore) -> None:
    lists = Lists(home, days=7)
    saucer = related_payload(shop, "saucer", "complement", trending=lists)
    assert saucer["fallback"] == "trending"
    assert ids(saucer) == ["mug"] and saucer["related"] == saucer["items"]  # Cups > Saucers -> Cups
    row = saucer["items"][0]
    assert row["fallback"] == "trending" and row["kind"] == "complement"
    assert row["explanation"]["zh"] == "同类热销：近 7 天 3 单，之前 7 天 1 单"
    assert row["explanation"]["en"].startswith("trending in this category: 3 orders")
    assert row["evidence"]["trending"]["orders"] == 3
    tin = related_payload(shop, "tea_tin", "complement", trending=lists)
    assert ids(tin) == ["dripper", "beans_b", "kettle", "mug"]  # nothing in Tea: the shop's list
    assert tin["items"][0]["explanation"]["zh"].startswith("全店热销")
    assert ids(related_payload(shop, "tea_tin", "complement", k=2, trending=lists)) == ["dripper", "beans_b"]
    instock = related_payload(
        shop, "tea_tin", "complement", trending=lists, filters=Filters(exclude=frozenset({"dripper"}))
    )
    assert ids(instock) == ["beans_b", "kettle", "mug"]
    # the merchant's block of (tea_tin, kettle) keeps the kettle out of the stand-in list too
    block = RuleSet.of(
        [{"rule_id": 1, "anchor": "tea_tin", "item": "kettle", "kind": "complement", "action": "block"}]
    )
    assert ids(related_payload(shop, "tea_tin", "complement", trending=lists, rules=block)) == [
        "dripper",
        "beans_b",
        "mug",
    ]


def test_no_fallback_where_it_does_not_belong(home: Path, shop: GraphStore) -> None:
    lists = Lists(home, days=7)
    scale = related_payload(shop, "scale", "complement", trending=lists)  # has a complement
    assert "fallback" not in scale and ids(scale) == ["paper"]
    assert "fallback" not in related_payload(shop, "saucer", "substitute", trending=lists)
    assert related_payload(shop, "saucer", "complement")["items"] == []  # no lists given
    paged = related_payload(shop, "saucer", "complement", trending=lists, filters=Filters(offset=5))
    assert paged["items"] == [] and "fallback" not in paged


# ----------------------------------------------------------------------------- CLI
def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True, terminal_width=200)
    return result


def test_cli_lists(home: Path, shop: GraphStore) -> None:
    h = ["--home", str(home)]
    out = run("pairings", *h, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == Lists(home).pairings(shop)
    table = run("trending", *h, "--days", "7", "--category", "Equipment").output
    lines = table.splitlines()
    assert lines[0] == "2024-06-24 – 2024-06-30 (7 days) against 2024-06-17 – 2024-06-23"
    assert [line.split()[1] for line in lines[2:]] == ["dripper", "kettle"]
    assert "近 7 天 8 单" in lines[2]
    text = run("pairings", *h, "--category", "Coffee").output
    assert text.splitlines()[1].split()[:2] == ["1", "beans_b"]
    js = json.loads(
        run("trending", *h, "--days", "7", "--at", "2024-06-30", "--per-category", "-k", "1", "--json").output
    )
    assert ids(js) == ["beans_b", "mug", "dripper"]
    related = run("related", "saucer", *h).output
    assert "trending items instead" in related and "mug" in related
    assert "tiein trending --days 7" in run("trending", "--help").output
    assert "tiein pairings -k 20" in run("pairings", "--help").output
    bad = run("trending", *h, "--category", "Nope")
    assert isinstance(bad.exception, NotFound)


def test_cli_error_is_one_line(home: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "tiein.cli", "pairings", "--home", str(home), "--category", "Cofee"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "error: category 'Cofee' is not in the catalog; did you mean 'Coffee > Beans'?"


# ----------------------------------------------------------------------------- API
@pytest.fixture(scope="module")
def api(home: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=home)), raise_server_exceptions=False) as c:
        yield c


def test_api_lists(api: Any, home: Path, shop: GraphStore) -> None:
    r = api.get("/v1/pairings", params={"category": "Coffee", "k": 2})
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(Lists(home).pairings(shop, category="Coffee", k=2)))
    r = api.get("/v1/trending", params={"days": 7, "at": "2024-06-30"})
    assert r.status_code == 200 and ids(r.json()) == ["dripper", "beans_b", "kettle", "mug"]
    assert api.get("/v1/trending", params={"days": 7}).json() == r.json()  # the cached answer
    r = api.get("/v1/products/saucer/related")
    assert r.status_code == 200 and r.json()["fallback"] == "trending"
    assert all(i["fallback"] == "trending" for i in r.json()["items"])
    assert "fallback" not in api.get("/v1/products/scale/related").json()  # the key only when it is one


def test_api_bad_input(api: Any, shop: GraphStore, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    r = api.get("/v1/pairings", params={"categry": "Coffee"})
    assert r.status_code == 422 and "categry" in r.text
    assert api.get("/v1/trending", params={"at": "June"}).status_code == 422
    assert api.get("/v1/trending", params={"days": 0}).status_code == 422
    assert api.get("/v1/trending", params={"at": "0001-01-02"}).status_code == 422
    r = api.get("/v1/trending", params={"category": "Nope"})
    assert r.status_code == 404 and "Nope" in r.json()["error"]["message"]
    # a store served from a home without a build state: no orders to trend, pairings still work
    with TestClient(create_app(Settings(home=tmp_path), store=shop), raise_server_exceptions=False) as bare:
        r = bare.get("/v1/trending")
        assert r.status_code == 503 and "orders" in r.json()["error"]["message"]
        assert bare.get("/v1/pairings").json()["total"] == 4
        assert bare.get("/v1/products/saucer/related").json()["items"] == []  # no fallback to give


def test_openapi_documents_the_lists(api: Any) -> None:
    spec = api.get("/openapi.json").json()
    ops = {p: spec["paths"][p]["get"] for p in ("/v1/pairings", "/v1/trending")}
    assert [o["operationId"] for o in ops.values()] == ["pairings", "trending"]
    params = {p["name"] for p in ops["/v1/trending"]["parameters"]}
    assert {"category", "days", "at", "k", "min_orders", "per_category", "in_stock"} <= params
    assert 'fallback: "trending"' in spec["components"]["schemas"]["RelatedResponse"]["description"]


# ----------------------------------------------------------------------------- export
def test_export_lists(home: Path, shop: GraphStore, tmp_path: Path) -> None:
    h = ["--home", str(home)]
    out = tmp_path / "trending.csv"
    r = run("export", "trending", "--format", "csv", "--days", "7", "--out", str(out), *h)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
    assert [x["product_id"] for x in rows] == ["dripper", "beans_b", "kettle", "mug"]
    assert (rows[3]["orders"], rows[3]["units"], rows[3]["window_start"]) == ("3", "52", "2024-06-24")
    xlsx = tmp_path / "搭配榜.xlsx"
    r = run("export", "pairings", "--format", "xlsx", "--out", str(xlsx), "--category", "Coffee", *h)
    assert r.exit_code == 0, r.output
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx).active
    values = list(sheet.values)
    assert values[0][:3] == ("排名 / rank", "主商品ID / anchor_product_id", "主商品标题 / anchor_title")
    assert [v[1] for v in values[1:]] == ["beans_b", "beans_a", "beans_b"]
    jsonl = tmp_path / "pairings.jsonl"
    run("export", "pairings", "--format", "jsonl", "--out", str(jsonl), *h)
    assert json.loads(jsonl.read_text("utf-8")) == json.loads(json.dumps(Lists(home).pairings(shop)))
    refused = run("export", "pairings", "--format", "csv", "--kind", "substitute", "--out", str(out), *h)
    assert refused.exit_code == 2 and "--kind is not for pairings" in refused.output

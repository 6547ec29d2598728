"""Query filters (tiein.rules.Filters) on related, add-ons, bundles and search, through the
service, the API (query parameters, unknown ones refused, readable operation ids) and the CLI;
unknown cart ids answered around; bundle rules from parameters; the one list shape (``items``,
each with ``explanation: {zh, en}``) beside the older keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from test_store_contract import catalog

from tiein.cli import cli
from tiein.errors import ConfigError, ProductNotFound
from tiein.graph.ladybug_store import EmbeddedStore
from tiein.rules import Filters
from tiein.service import addons_payload, bundle_payload, related_payload, search_payload


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    st = EmbeddedStore(tmp_path_factory.mktemp("filters") / "home" / "graph")
    st.replace(catalog())
    yield st
    st.close()


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r.get("product_id") or r["product"]["product_id"] for r in rows]


def _related(store: EmbeddedStore, kind: str = "complement", k: int = 10, **kw: Any) -> list[str]:
    return _ids(related_payload(store, "phone-a", kind, k, filters=Filters.make(**kw))["items"])


# ----------------------------------------------------------------------------- service
def test_related_filters(shop: EmbeddedStore) -> None:
    assert _related(shop) == ["case-a", "charger", "film-a"]
    assert _related(shop, "substitute") == ["phone-b"]
    assert _related(shop, "substitute", in_stock=True) == []  # phone-b has stock 0
    assert _related(shop, exclude=["case-a"]) == ["charger", "film-a"]
    assert _related(shop, exclude="case-a, charger") == ["film-a"]
    assert _related(shop, category="accessories") == ["case-a", "charger", "film-a"]  # a level of the path
    assert _related(shop, category="Cases") == ["case-a"]
    assert _related(shop, brand="acme") == ["case-a"]
    assert _related(shop, min_price=10, max_price=30) == ["case-a", "charger"]  # film-a is 9.99
    assert _related(shop, min_score=0.8) == ["case-a"]
    assert _related(shop, k=1, offset=1) == ["charger"]
    assert _related(shop, k=2, offset=2) == ["film-a"]
    got = related_payload(shop, "phone-a", "complement", 1, filters=Filters.make(offset=1, brand="Bolt"))
    assert got["offset"] == 1 and got["limit"] == 1 and got["filters"] == {"brand": "Bolt", "offset": 1}
    assert got["items"] == []


def test_every_row_has_the_one_shape(shop: EmbeddedStore) -> None:
    got = related_payload(shop, "phone-a", "complement")
    assert got["items"] == got["related"]
    for row in got["items"]:
        assert row["explanation"] == {"zh": row["explanation_zh"], "en": row["explanation_en"]}
    cart = addons_payload(shop, ["phone-a"])
    assert all(set(i["explanation"]) == {"zh", "en"} for i in cart["items"])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"min_price": 5, "max_price": 1}, "above max_price"),
        ({"offset": -1}, "offset"),
        ({"min_score": float("nan")}, "min_score"),
        ({"brand": "  "}, "brand"),
    ],
)
def test_bad_filters(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Filters.make(**kw)


def test_addons_unknown_ids_filters_and_offset(shop: EmbeddedStore) -> None:
    got = addons_payload(shop, ["ghost", "phone-a", "nope"], k=10)
    assert got["unknown_ids"] == ["ghost", "nope"] and [p["product_id"] for p in got["cart"]] == ["phone-a"]
    assert _ids(got["items"]) == ["case-a", "charger", "film-a"]
    assert _ids(addons_payload(shop, ["phone-a"], k=1, filters=Filters.make(offset=1))["items"]) == [
        "charger"
    ]
    assert _ids(addons_payload(shop, ["phone-a"], filters=Filters.make(max_price=20))["items"]) == [
        "case-a",
        "film-a",
    ]
    with pytest.raises(ProductNotFound, match="ghost"):
        addons_payload(shop, ["ghost"])


def test_bundle_filters_and_rules_from_parameters(shop: EmbeddedStore) -> None:
    loose = {"min_price_ratio": 0.0, "max_price_ratio": 1.0}
    assert bundle_payload(shop, "phone-a", **loose)["items"][0]["product"]["product_id"] == "case-a"
    b = bundle_payload(shop, "phone-a", filters=Filters.make(exclude=["case-a"]), **loose)
    assert "case-a" not in {i["product"]["product_id"] for i in b["items"]} and b["filters"] == {
        "exclude": ["case-a"]
    }
    # the default band (30-80 % of 699) admits none of these cheap add-ons
    assert bundle_payload(shop, "phone-a")["reason"]["code"] == "outside_price_band"
    priced = bundle_payload(shop, "phone-a", currency="USD", charm_digit=-1, discount=0.2, **loose)
    assert priced["pitch"]["en"].startswith("$") and priced["suggested_price"] % 10 == 0
    with pytest.raises(ConfigError, match="price ratios"):
        bundle_payload(shop, "phone-a", min_price_ratio=0.9, max_price_ratio=0.1)


class _Searcher:
    def search(self, text: str, k: int) -> tuple[str, list[tuple[str, float]]]:
        return "minilm", [("case-a", 0.9), ("phone-b", 0.8), ("charger", 0.7), ("film-a", 0.6)][:k]


def test_search_filters(shop: EmbeddedStore) -> None:
    got = search_payload(shop, _Searcher(), "phone case", 10)
    assert _ids(got["items"]) == _ids(got["results"]) == ["case-a", "phone-b", "charger", "film-a"]
    assert got["items"][0]["explanation"]["en"] == "a title like it (similarity 0.90)"
    assert _ids(search_payload(shop, _Searcher(), "x", 10, filters=Filters.make(in_stock=True))["items"]) == [
        "case-a",
        "charger",
        "film-a",
    ]
    assert _ids(
        search_payload(shop, _Searcher(), "x", 10, filters=Filters.make(min_score=0.75))["items"]
    ) == [
        "case-a",
        "phone-b",
    ]
    assert _ids(search_payload(shop, _Searcher(), "x", 2, filters=Filters.make(offset=1))["items"]) == [
        "phone-b",
        "charger",
    ]


# ----------------------------------------------------------------------------- API
@pytest.fixture(scope="module")
def api(shop: EmbeddedStore) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=shop.path.parent)), raise_server_exceptions=False) as c:
        yield c


def test_api_filters(api: Any) -> None:
    def related(**params: Any) -> list[str]:
        r = api.get("/v1/products/phone-a/related", params=params)
        assert r.status_code == 200, r.text
        return _ids(r.json()["items"])

    assert related(kind="substitute", in_stock="true") == []
    assert related(exclude=["case-a", "charger"]) == ["film-a"]
    assert related(exclude="case-a,film-a") == ["charger"]
    assert related(category="cases") == ["case-a"]
    assert related(brand="Acme", min_price=1, max_price=100) == ["case-a"]
    assert related(min_score=0.8) == ["case-a"]
    assert related(k=1, offset=2) == ["film-a"]
    bad = api.get("/v1/products/phone-a/related", params={"min_price": 9, "max_price": 1})
    assert bad.status_code == 422 and "above max_price" in bad.json()["error"]["message"]
    cart = api.post(
        "/v1/cart/addons",
        json={"cart": ["phone-a", "ghost"], "exclude": ["case-a"], "offset": 0, "max_price": 20},
    ).json()
    assert cart["unknown_ids"] == ["ghost"] and _ids(cart["items"]) == ["film-a"]
    bundle = api.get(
        "/v1/products/phone-a/bundle",
        params={
            "min_price_ratio": 0,
            "max_price_ratio": 1,
            "currency": "USD",
            "charm_digit": -1,
            "exclude": "case-a",
        },
    ).json()
    assert "case-a" not in {i["product"]["product_id"] for i in bundle["items"]}
    assert bundle["pitch"]["en"].startswith("$")
    assert api.post("/v1/cart/addons", json={"cart": ["ghost"]}).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v1/products/phone-a/related",
        "/v1/products/phone-a/bundle",
        "/v1/products/phone-a",
        "/v1/scenes",
        "/v1/health",
        "/v1/search?q=x",
        "/v1/rules",
    ],
)
def test_unknown_query_parameters_are_named(api: Any, path: str) -> None:
    sep = "&" if "?" in path else "?"
    r = api.get(f"{path}{sep}instock=1&offst=2")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_parameter"
    assert [e["parameter"] for e in err["details"]["errors"]] == ["instock", "offst"]
    assert "unknown query parameter" in err["message"]
    post = api.post("/v1/cart/addons?x=1", json={"cart": ["phone-a"]})
    assert post.status_code == 422 and post.json()["error"]["details"]["errors"][0]["parameter"] == "x"


def test_operation_ids_are_readable(api: Any) -> None:
    spec = api.get("/openapi.json").json()
    ops = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert {"related", "bundle", "cart_addons", "search", "rules_list", "rules_put", "rules_delete"} <= ops
    assert not [o for o in ops if "_v1_" in o]
    params = {p["name"] for p in spec["paths"]["/v1/products/{product_id}/related"]["get"]["parameters"]}
    assert {
        "in_stock",
        "exclude",
        "category",
        "brand",
        "min_price",
        "max_price",
        "min_score",
        "offset",
    } <= params
    params = {p["name"] for p in spec["paths"]["/v1/products/{product_id}/bundle"]["get"]["parameters"]}
    assert {
        "min_price_ratio",
        "max_price_ratio",
        "charm_digit",
        "rounding_slack",
        "currency",
        "size",
    } <= params


# ----------------------------------------------------------------------------- CLI
def test_cli_filters(shop: EmbeddedStore) -> None:
    def tiein(*args: str) -> Any:
        result = CliRunner().invoke(cli, [*args, "--store", str(shop.path)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return json.loads(result.output)

    assert _ids(
        tiein("related", "phone-a", "--exclude", "case-a", "--max-price", "20", "--json")["items"]
    ) == ["film-a"]
    assert _ids(tiein("related", "phone-a", "--kind", "substitute", "--in-stock", "--json")["items"]) == []
    assert _ids(tiein("related", "phone-a", "-k", "1", "--offset", "1", "--json")["items"]) == ["charger"]
    assert _ids(tiein("addons", "phone-a", "ghost", "--brand", "Bolt", "--json")["items"]) == ["charger"]
    b = tiein(
        "bundle",
        "phone-a",
        "--min-price-ratio",
        "0",
        "--max-price-ratio",
        "1",
        "--exclude",
        "case-a",
        "--json",
    )
    assert "case-a" not in {i["product"]["product_id"] for i in b["items"]}
    out = CliRunner().invoke(cli, ["addons", "phone-a", "ghost", "--store", str(shop.path)]).output
    assert "not in the graph (left out): ghost" in out


def test_help_is_fast() -> None:
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tiein.cli", "--help"], check=True, capture_output=True, timeout=60)
    assert time.perf_counter() - start < 3.0  # 1.5 s on a quiet machine; this one is shared
    text = subprocess.run(
        [sys.executable, "-m", "tiein.cli", "rules", "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "import" in text and "remove" in text

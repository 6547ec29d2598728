"""Merchant rules (tiein/rules.py): the merchant file, each action (pin, block, boost) on every
read surface (service, CLI, API), validity windows, and the rules surviving a rebuild and an
update. The stores' own keeping of rules is in the shared suite (tests/test_store_contract.py);
the Neo4j statements are checked here against the Bolt stub of tests/test_neo4j_store.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_store_contract import catalog

from tiein.cli import cli
from tiein.errors import ConfigError, InputError
from tiein.graph.ladybug_store import EmbeddedStore
from tiein.rules import (
    PINNED_EN,
    PINNED_ZH,
    RuleSet,
    import_rules,
    is_active,
    normalize_rule,
    read_rules_file,
    remove_rules,
    rules_payload,
)
from tiein.service import addons_payload, bundle_payload, related_payload, stats_payload

CAMPING = Path(__file__).parent / "fixtures" / "camping"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A home whose embedded store holds the contract suite's hand-made catalog."""
    st = EmbeddedStore(tmp_path / "home" / "graph")
    st.replace(catalog())
    yield st
    st.close()


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["product_id"] for r in rows]


def _rule(**kw: Any) -> dict[str, Any]:
    return normalize_rule(kw)


# ----------------------------------------------------------------------------- the merchant file
def test_csv_with_chinese_columns_in_gbk(tmp_path: Path) -> None:
    text = (
        "主商品,推荐商品,关系,动作,位置,权重,开始时间,结束时间,备注\n"
        "phone-a,tent,搭配,置顶,1,,2026-01-01,2026-12-31,露营促销\n"
        "phone-a,film-a,,屏蔽,,,,,品牌\n"
        "phone-b,charger,complement,加权,,2,,,\n"
        ",,,,,,,,\n"
    )
    path = tmp_path / "rules.csv"
    path.write_bytes(text.encode("gbk"))  # what Excel saves on a Chinese Windows
    rules = read_rules_file(path)
    assert [(r["anchor"], r["item"], r["kind"], r["action"]) for r in rules] == [
        ("phone-a", "tent", "complement", "pin"),
        ("phone-a", "film-a", None, "block"),
        ("phone-b", "charger", "complement", "boost"),
    ]
    assert rules[0]["position"] == 1 and rules[0]["note"] == "露营促销"
    assert rules[0]["valid_from"] == "2026-01-01T00:00:00+00:00"
    assert rules[0]["valid_to"] == "2027-01-01T00:00:00+00:00"  # a date-only end lasts the day
    assert rules[2]["boost"] == 2.0


def test_xlsx_and_yaml(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["anchor", "item", "action", "position"])
    sheet.append([123456789012, "tent", "pin", 2])  # a 12-digit id read as a number stays whole
    book.save(tmp_path / "r.xlsx")
    (rule,) = read_rules_file(tmp_path / "r.xlsx")
    assert rule["anchor"] == "123456789012" and rule["position"] == 2 and rule["kind"] == "complement"

    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {anchor: '*', item: tent, action: block}\n  - {anchor: a, item: b, action: boost, kind: upsell}\n",
        encoding="utf-8",
    )
    block, boost = read_rules_file(tmp_path / "r.yaml")
    assert block["anchor"] == "*" and block["kind"] is None and boost["boost"] == 1.5


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"anchor": "a", "item": "b", "action": "star"}, "action must be one of"),
        ({"anchor": "a", "action": "pin"}, "needs an anchor"),
        ({"anchor": "a", "item": "a", "action": "pin"}, "two different products"),
        ({"anchor": "*", "item": "b", "action": "pin"}, "for block rules only"),
        ({"anchor": "a", "item": "b", "action": "pin", "kind": "cousin"}, "kind must be one of"),
        ({"anchor": "a", "item": "b", "action": "pin", "position": 0}, "position"),
        ({"anchor": "a", "item": "b", "action": "block", "boost": 2}, "boost is for boost rules"),
        ({"anchor": "a", "item": "b", "action": "boost", "boost": -1}, "positive factor"),
        ({"anchor": "a", "item": "b", "action": "pin", "valid_from": "soon"}, "valid_from"),
        ({"anchor": "a", "item": "b", "action": "pin", "colour": "red"}, "unknown rule field"),
        (
            {
                "anchor": "a",
                "item": "b",
                "action": "pin",
                "valid_from": "2026-02-01",
                "valid_to": "2026-01-01",
            },
            "must come after",
        ),
    ],
)
def test_bad_rules_are_named(row: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_rule(row)


def test_bad_file_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("anchor,item,action\na,b,pin\na,c,explode\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"r.csv, row 2: action must be one of") as err:
        read_rules_file(path)
    assert err.value.row == 2
    with pytest.raises(InputError, match="rules come as"):
        (tmp_path / "r.pdf").write_text("x")
        read_rules_file(tmp_path / "r.pdf")


# ----------------------------------------------------------------------------- managing rules
def test_import_merges_by_pair_and_kind_and_versions(shop: EmbeddedStore) -> None:
    first = import_rules(shop, [_rule(anchor="phone-a", item="tent", action="pin")])
    assert first == {"version": 1, "added": 1, "updated": 0, "removed": 0, "count": 1}
    again = import_rules(
        shop,
        [
            _rule(anchor="phone-a", item="tent", action="pin", position=2),  # same pair: replaced
            _rule(anchor="phone-a", item="film-a", action="block"),
        ],
    )
    assert again == {"version": 2, "added": 1, "updated": 1, "removed": 0, "count": 2}
    listed = rules_payload(shop)
    assert [(r["rule_id"], r["position"]) for r in listed["rules"]] == [(1, 2), (2, None)]
    replaced = import_rules(shop, [_rule(anchor="phone-b", item="charger", action="boost")], replace=True)
    assert replaced["removed"] == 2 and replaced["count"] == 1 and replaced["version"] == 3
    assert remove_rules(shop, remove_all=True) == {"version": 4, "removed": 1, "count": 0}
    with pytest.raises(ConfigError, match="no rule with id 9"):
        remove_rules(shop, ids=[9])
    with pytest.raises(ConfigError, match="say which rules"):
        remove_rules(shop)


def test_validity_window() -> None:
    rule = _rule(anchor="a", item="b", action="pin", valid_from="2026-06-01", valid_to="2026-06-30")
    assert is_active(rule, datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    assert not is_active(rule, datetime(2026, 7, 1, tzinfo=UTC))
    assert not is_active(rule, datetime(2026, 5, 31, tzinfo=UTC))
    rules = [{**rule, "rule_id": 1}]
    assert RuleSet.of(rules, now=datetime(2026, 6, 2, tzinfo=UTC)).pins
    assert not RuleSet.of(rules, now=datetime(2026, 7, 2, tzinfo=UTC))


# ----------------------------------------------------------------------------- each action, service
def test_pin_comes_first_with_the_shops_explanation(shop: EmbeddedStore) -> None:
    assert _ids(related_payload(shop, "phone-a", "complement")["items"]) == ["case-a", "charger", "film-a"]
    import_rules(
        shop,
        [
            _rule(anchor="phone-a", item="tent", action="pin", position=2),  # not related in the graph
            _rule(anchor="phone-a", item="film-a", action="pin", position=1),  # related, ranked third
        ],
    )
    got = related_payload(shop, "phone-a", "complement")
    assert _ids(got["items"]) == ["film-a", "tent", "case-a", "charger"]
    assert got["related"] == got["items"] and got["rules_version"] == 1
    film, tent = got["items"][:2]
    assert film["pinned"] and film["evidence"] == {"n_ab": 12}  # the graph's row, kept
    assert tent["score"] == 0.0 and tent["evidence"] == {} and tent["rule_id"] == 1
    for row in (film, tent):
        assert (
            row["explanation"]
            == {"zh": PINNED_ZH, "en": PINNED_EN}
            == {"zh": "商家推荐", "en": "picked by the shop"}
        )
        assert row["explanation_zh"] == PINNED_ZH
    assert _ids(related_payload(shop, "phone-a", "complement", 1)["items"]) == ["film-a"]
    assert "pinned" not in related_payload(shop, "phone-a", "upsell")["items"][0]  # other kinds untouched


def test_block_removes_everywhere(shop: EmbeddedStore) -> None:
    import_rules(
        shop,
        [
            _rule(anchor="phone-a", item="case-a", action="block"),  # every kind
            _rule(anchor="*", item="charger", action="block", kind="complement"),
        ],
    )
    assert _ids(related_payload(shop, "phone-a", "complement")["items"]) == ["film-a"]
    assert "case-a" not in _ids(related_payload(shop, "phone-a", "next")["items"])
    assert _ids(related_payload(shop, "phone-b", "complement")["items"]) == []
    assert _ids(related_payload(shop, "phone-a", "next")["items"]) == [
        "charger"
    ]  # '*' blocked complements only
    cart = addons_payload(shop, ["phone-a"], k=10)
    assert not {"case-a", "charger"} & set(_ids([i["product"] for i in cart["items"]]))
    b = bundle_payload(shop, "phone-a", size=4, min_price_ratio=0.0, max_price_ratio=1.0)
    assert not {"case-a", "charger"} & {i["product"]["product_id"] for i in b["items"]}


def test_block_keeps_two_add_ons_apart_in_bundles_and_carts(shop: EmbeddedStore) -> None:
    loose = {"min_price_ratio": 0.0, "max_price_ratio": 1.0, "roles": [{"case-a"}, {"film-a"}]}
    before = {i["product"]["product_id"] for i in bundle_payload(shop, "phone-a", size=4, **loose)["items"]}
    assert {"case-a", "film-a"} <= before
    import_rules(
        shop, [_rule(anchor="film-a", item="case-a", action="block")]
    )  # the two add-ons, not the anchor
    after = {i["product"]["product_id"] for i in bundle_payload(shop, "phone-a", size=4, **loose)["items"]}
    assert not {"case-a", "film-a"} <= after
    cart = addons_payload(shop, ["case-a"], k=10)
    assert "film-a" not in {i["product"]["product_id"] for i in cart["items"]}


def test_pin_in_bundles_and_add_ons(shop: EmbeddedStore) -> None:
    import_rules(shop, [_rule(anchor="phone-a", item="tent", action="pin")])
    b = bundle_payload(shop, "phone-a", min_price_ratio=0.0, max_price_ratio=1.0)
    first = b["items"][0]
    assert first["product"]["product_id"] == "tent"
    assert first["explanation"] == {"zh": PINNED_ZH, "en": PINNED_EN}
    cart = addons_payload(shop, ["phone-a"], k=3)
    assert cart["items"][0]["product"]["product_id"] == "tent"
    assert cart["items"][0]["explanation"]["en"] == PINNED_EN
    # the bundle rules still hold for a pin: outside the default price band, it is passed over
    assert "tent" not in {i["product"]["product_id"] for i in bundle_payload(shop, "phone-a")["items"]}


def test_boost_raises_a_pairs_score(shop: EmbeddedStore) -> None:
    assert _ids(related_payload(shop, "phone-a", "complement")["items"])[-1] == "film-a"
    import_rules(shop, [_rule(anchor="phone-a", item="film-a", action="boost", boost=2)])
    rows = related_payload(shop, "phone-a", "complement")["items"]
    assert _ids(rows)[0] == "film-a" and rows[0]["score"] == 1.5 and rows[0]["boost"] == 2.0


def test_expired_rule_is_listed_but_not_applied(shop: EmbeddedStore) -> None:
    import_rules(shop, [_rule(anchor="phone-a", item="case-a", action="block", valid_to="2000-01-01")])
    assert "case-a" in _ids(related_payload(shop, "phone-a", "complement")["items"])
    listed = rules_payload(shop)
    assert listed["count"] == 1 and listed["active"] == 0 and listed["rules"][0]["active"] is False
    assert stats_payload(shop)["rules"]["count"] == 1


# ----------------------------------------------------------------------------- CLI
def _tiein(store: EmbeddedStore, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--store", str(store.path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_cli_import_list_remove_and_every_action(shop: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(
        "主商品,推荐商品,关系,动作,位置,备注\n"
        "phone-a,tent,搭配,置顶,1,露营\n"
        "phone-a,case-a,,屏蔽,,\n"
        "phone-a,film-a,,加权,,\n",
        encoding="utf-8-sig",
    )
    out = _tiein(shop, "rules", "import", str(path)).output
    assert "3 rules read — 3 added" in out and "(version 1)" in out
    listed = _tiein(shop, "rules", "list").output
    assert "pin   phone-a → tent  [complement] (position 1)  # 露营" in listed
    assert "block phone-a → case-a  [every kind]" in listed
    related = json.loads(_tiein(shop, "related", "phone-a", "--json").output)
    assert _ids(related["items"]) == ["tent", "film-a", "charger"]  # pinned, boosted 0.75 × 1.5, the rest
    assert "[pinned]" in _tiein(shop, "related", "phone-a").output
    assert "merchant rules: 3 (3 in force, version 1" in _tiein(shop, "stats").output
    bundle = json.loads(
        _tiein(shop, "bundle", "phone-a", "--min-price-ratio", "0", "--max-price-ratio", "1", "--json").output
    )
    assert "case-a" not in {i["product"]["product_id"] for i in bundle["items"]}
    addons = json.loads(_tiein(shop, "addons", "phone-a", "--json").output)
    assert addons["items"][0]["product"]["product_id"] == "tent"
    out = _tiein(shop, "rules", "remove", "2").output
    assert "removed 1 rules; 2 left (version 2)" in out
    assert "case-a" in _ids(json.loads(_tiein(shop, "related", "phone-a", "--json").output)["items"])
    assert "removed 2 rules" in _tiein(shop, "rules", "remove", "--anchor", "phone-a").output
    bad = CliRunner().invoke(cli, ["rules", "remove", "--store", str(shop.path)])
    assert isinstance(bad.exception, ConfigError) and "say which rules" in str(bad.exception)


# ----------------------------------------------------------------------------- API
@pytest.fixture
def api(shop: EmbeddedStore) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=shop.path.parent)), raise_server_exceptions=False) as c:
        yield c


def test_api_get_put_delete_and_every_action(api: Any) -> None:
    assert api.get("/v1/rules").json() == {
        "version": 0,
        "updated_at": None,
        "count": 0,
        "active": 0,
        "rules": [],
    }
    body = {
        "rules": [
            {"anchor": "phone-a", "item": "tent", "action": "置顶", "kind": "搭配", "position": 1},
            {"anchor": "phone-a", "item": "case-a", "action": "block"},
            {"anchor": "phone-a", "item": "film-a", "action": "boost", "boost": 2},
        ],
        "version": 0,
    }
    r = api.put("/v1/rules", json=body)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["added"] == 3
    conflict = api.put("/v1/rules", json=body)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "rules_conflict"
    listed = api.get("/v1/rules", params={"anchor": "phone-a"}).json()
    assert listed["count"] == 3 and listed["rules"][0]["action"] == "pin" and listed["rules"][0]["active"]
    related = api.get("/v1/products/phone-a/related").json()
    assert _ids(related["items"]) == ["tent", "film-a", "charger"]
    assert related["items"][0]["explanation"] == {"zh": "商家推荐", "en": "picked by the shop"}
    assert _ids(related["related"]) == _ids(related["items"])  # the deprecated key, kept
    bundle = api.get(
        "/v1/products/phone-a/bundle", params={"min_price_ratio": 0, "max_price_ratio": 1}
    ).json()
    assert bundle["items"][0]["product"]["product_id"] == "tent" and bundle["rules_version"] == 1
    assert "case-a" not in {i["product"]["product_id"] for i in bundle["items"]}
    cart = api.post("/v1/cart/addons", json={"cart": ["phone-a"]}).json()
    assert cart["items"][0]["product"]["product_id"] == "tent"
    assert api.get("/v1/health").json()["graph"]["rules"]["count"] == 3
    gone = api.delete("/v1/rules", params={"id": [2], "version": 1})
    assert gone.status_code == 200 and gone.json() == {
        "version": 2,
        "removed": 1,
        "count": 2,
        "added": None,
        "updated": None,
    }
    assert "case-a" in _ids(api.get("/v1/products/phone-a/related").json()["items"])
    assert api.delete("/v1/rules", params={"all": True}).json()["count"] == 0


def test_api_rule_errors(api: Any) -> None:
    bad = api.put("/v1/rules", json={"rules": [{"anchor": "a", "item": "a", "action": "pin"}]})
    assert (
        bad.status_code == 422
        and "rules[0]: a rule relates two different products" in bad.json()["error"]["message"]
    )
    extra = api.put("/v1/rules", json={"rules": [{"anchor": "a", "item": "b", "action": "pin", "colour": 1}]})
    assert extra.status_code == 422
    assert api.delete("/v1/rules").status_code == 422
    assert api.delete("/v1/rules", params={"id": [7]}).status_code == 422
    assert api.get("/v1/rules", params={"anchr": "x"}).status_code == 422


# ----------------------------------------------------------------------------- rebuild and update
def test_rules_hold_through_a_rebuild_and_an_update(tmp_path: Path) -> None:
    from tiein.pipeline import BuildOptions, build
    from tiein.update import UpdateOptions, update

    home = tmp_path / "home"
    opts = BuildOptions(
        catalog=CAMPING / "catalog.csv",
        orders=CAMPING / "orders.csv",
        home=home,
        threads=1,
        embeddings=False,
        discover_scenes=False,
    )
    build(opts)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- {anchor: tent, item: stove, action: pin, position: 1}\n"
        "- {anchor: tent, item: pegs, action: block}\n",
        encoding="utf-8",
    )

    def tiein(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args, "--home", str(home)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    def holds() -> None:
        related = json.loads(tiein("related", "tent", "--json"))
        assert _ids(related["items"])[0] == "stove" and "pegs" not in _ids(related["items"])
        addons = json.loads(tiein("addons", "tent", "-k", "10", "--json"))
        assert addons["items"][0]["product"]["product_id"] == "stove"
        assert "pegs" not in {i["product"]["product_id"] for i in addons["items"]}
        bundle = json.loads(tiein("bundle", "tent", "--json"))
        assert "pegs" not in {i["product"]["product_id"] for i in bundle["items"]}

    before = json.loads(tiein("related", "tent", "--json"))
    assert "pegs" in _ids(before["items"])  # what the block will hide
    tiein("rules", "import", str(rules))
    holds()
    build(opts)  # a rebuild: a new generation of the graph
    holds()
    stock = tmp_path / "stock.csv"
    stock.write_text("product_id,stock\nchair,0\n", encoding="utf-8")
    summary = update(UpdateOptions(catalog=stock, home=home))
    assert summary.counts["products_changed"] == 1
    holds()
    assert json.loads(tiein("rules", "list", "--json"))["version"] == 1


# ----------------------------------------------------------------------------- Neo4j statements
def test_neo4j_rules_are_one_write_transaction() -> None:
    """The Neo4j code path, on the real driver against the Bolt stub (no server runs here):
    saving locks the version node, replaces the :Rule nodes and writes the version in ONE
    transaction; reading takes the version and the rules in one READ transaction."""
    from test_neo4j_store import BoltStub

    from tiein.graph import cypher_neo4j as cy
    from tiein.graph.base import RulesConflict
    from tiein.graph.neo4j_store import Neo4jStore

    state: dict[str, Any] = {"version": 2, "rules": []}

    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if query == cy.RULES_LOCK:
            return [{"version": state["version"]}]
        if query == cy.RULES_CREATE:
            state["rules"] = params["rows"]
            return [{"created": len(params["rows"])}]
        if query == cy.RULES_VERSION:
            return [{"version": state["version"], "updated_at": "2026-01-01T00:00:00+00:00"}]
        if query == cy.RULES_ALL:
            return [{"rule": {k: v for k, v in r.items() if v is not None}} for r in state["rules"]]
        return []

    stub = BoltStub(handler)
    store = Neo4jStore.from_url(
        stub.url, "neo4j", "secret", connection_timeout=2.0, max_transaction_retry_time=0.0
    )
    try:
        rows = [{**_rule(anchor="a", item="b", action="pin"), "rule_id": 1}]
        saved = store.save_rules(rows, expected_version=2)
        assert saved["version"] == 3 and saved["rules"] == rows
        names = stub.names()
        assert names.count("BEGIN") == 1 and names[-1] == "COMMIT"
        queries = [q for q, _ in stub.runs()]
        assert queries == [cy.RULES_LOCK, cy.RULES_DELETE, cy.RULES_CREATE, cy.RULES_SET_VERSION]
        params = stub.runs()[-1][1]
        assert params["version"] == 3 and isinstance(params["updated_at"], str)
        assert stub.runs()[2][1]["rows"] == rows  # null fields travel, SET r = row drops them
        got = store.rules()
        assert got["version"] == 2 and got["rules"] == [
            {"rule_id": 1, "anchor": "a", "item": "b", "kind": "complement", "action": "pin"}
        ]
        with pytest.raises(RulesConflict):
            store.save_rules([], expected_version=0)
        assert stub.names()[-1] == "ROLLBACK" or "COMMIT" not in stub.names()[len(names) :]
    finally:
        store.close()
        stub.close()

"""THE shared suite every graph store must pass (parametrised over tests/stores.py).

Part 1 checks a hand-made catalog small enough to check by hand: two phones (substitutes of each
other), the phone's Pro model (upsell, same series), a case, a screen film, a charger and a tent.
Part 2 is the reference check: on a random GraphData of a few hundred products, every answer of
the store equals the answer computed independently with plain Python / networkx from the
GraphData — this is what proves that every store gives identical answers.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow as pa
import pytest
from stores import STORE_FACTORIES, StoreKind

from tiein.errors import (
    ConfigError,
    CypherError,
    InputError,
    NotFound,
    ProductNotFound,
    StoreError,
    WriteRefused,
)
from tiein.graph.base import PRODUCT_FIELDS, RELATED_FIELDS, SCENE_FIELDS, GraphStore
from tiein.model import (
    CATEGORY_SEP,
    PAIR_STATS,
    PRODUCTS,
    REL_TYPE,
    RELATION_KINDS,
    RELATIONS,
    SCENE_MEMBERS,
    SCENES,
    GraphData,
)

SCHEMA_MD = Path(__file__).resolve().parents[1] / "docs" / "schema.md"

# ----------------------------------------------------------------------------- hand-made catalog
# id, title, category, category_path, brand, price, stock, attributes
CATALOG = [
    (
        "phone-a",
        "Phone A 128GB",
        "phones",
        "electronics > phones",
        "Acme",
        699.0,
        10,
        '{"color": "black", "storage": "128GB"}',
    ),
    (
        "phone-b",
        "Phone B 128GB",
        "phones",
        "electronics > phones",
        "Bolt",
        649.5,
        0,
        '{"color": "black", "storage": "128GB"}',
    ),
    (
        "phone-a-pro",
        "Phone A Pro 256GB",
        "phones",
        "electronics > phones",
        "Acme",
        999.0,
        2,
        '{"color": "black", "storage": "256GB"}',
    ),
    (
        "case-a",
        "Phone A case 手机壳",
        "cases",
        "electronics > accessories > cases",
        "Acme",
        19.99,
        100,
        '{"color": "black"}',
    ),
    (
        "film-a",
        "Screen film for Phone A",
        "films",
        "electronics > accessories > films",
        None,
        9.99,
        None,
        None,
    ),
    (
        "charger",
        "USB-C charger 20W",
        "chargers",
        "electronics > accessories > chargers",
        "Bolt",
        25.0,
        5,
        '{"power": 20}',
    ),
    (
        "tent",
        "2-person tent 帐篷",
        "tents",
        "outdoor > camping > tents",
        "Trail",
        129.0,
        3,
        '{"color": ["green", "orange"]}',
    ),
]

THIRD = 1 / 3
TENTH_SUM = 0.1 + 0.2  # 0.30000000000000004: floats must come back bit-exact
EVIDENCE = {
    "why": "bought together 30 times",
    "lift": THIRD,
    "path": ["phone-a", "case-a"],
    "nested": {"理由": "配件", "ok": True, "none": None},
}

# src, dst, kind, score, lift, evidence
RELS = [
    ("phone-a", "case-a", "complement", 0.9, THIRD, EVIDENCE),
    ("phone-a", "film-a", "complement", 0.75, 1.25, {"n_ab": 12}),
    ("phone-a", "charger", "complement", 0.75, 1.5, {"n_ab": 10}),  # tie with film-a: by id
    ("phone-b", "charger", "complement", 0.6, TENTH_SUM, {}),
    ("case-a", "film-a", "complement", 0.5, 2.0, None),
    ("phone-a", "phone-b", "substitute", 0.8, None, {"similarity": 0.93}),
    ("phone-b", "phone-a", "substitute", 0.8, None, {"similarity": 0.93}),
    ("phone-a", "phone-a-pro", "upsell", 0.7, None, {"price_ratio": 999.0 / 699.0}),
    ("phone-a", "phone-a-pro", "series", 0.6, None, {}),
    ("phone-a-pro", "phone-a", "series", 0.6, None, {}),
    # bought next: after the phone, customers come back for the case, then the charger
    (
        "phone-a",
        "case-a",
        "next",
        0.4,
        4.0,
        {"kind": "next", "after_count": 7, "before_count": 0, "window_days": 90, "median_gap_days": 12.5},
    ),
    ("phone-a", "charger", "next", 0.4, 2.0, {"kind": "next", "after_count": 3, "before_count": 1}),
]

# Sales roles of the hand-made catalog (the other products: None).
ROLES = {"phone-a": "hero", "case-a": "traffic", "phone-a-pro": "profit", "charger": "regular"}

# a, b (a < b), n_ab, n_a, n_b, n
CO_PURCHASED = [
    ("case-a", "phone-a", 30, 40, 100, 1000),
    ("charger", "phone-a", 10, 60, 100, 1000),
    ("film-a", "phone-a", 12, 50, 100, 1000),
    ("charger", "phone-b", 5, 60, 80, 1000),
    ("phone-a", "tent", 1, 100, 20, 1000),
]
CO_VIEWED = [("phone-a", "phone-b", 50, 300, 200, 5000)]


def pair_table(rows: list[tuple]) -> pa.Table:
    out = []
    for a, b, n_ab, n_a, n_b, n in rows:
        out.append(
            {
                "a": a,
                "b": b,
                "n_ab": n_ab,
                "n_a": n_a,
                "n_b": n_b,
                "n": n,
                "support": n_ab / n,
                "conf_ab": n_ab / n_a,
                "conf_ba": n_ab / n_b,
                "lift": n_ab * n / (n_a * n_b),
                "after_ab": n_ab // 10,
                "after_ba": 0,
            }
        )
    return pa.Table.from_pylist(out, schema=PAIR_STATS)


def relation_row(src: str, dst: str, kind: str, score: float, lift: float | None, ev: Any) -> dict[str, Any]:
    return {
        "src": src,
        "dst": dst,
        "kind": kind,
        "score": score,
        "n_ab": len(src) + len(dst),
        "lift": lift,
        "confidence": None if lift is None else lift / 10,
        "co_view": 3 if kind == "substitute" else None,
        "similarity": 0.93 if kind == "substitute" else None,
        "category_relation": "same" if src[:5] == dst[:5] else "different",
        "price_ratio": 0.5 if kind == "complement" else None,
        "evidence": None if ev is None else json.dumps(ev, ensure_ascii=False),
    }


def catalog(meta: dict[str, Any] | None = None) -> GraphData:
    return GraphData(
        products=pa.Table.from_pylist(
            [
                {**dict(zip(PRODUCTS.names[:8], r, strict=True)), "sales_role": ROLES.get(r[0])}
                for r in CATALOG
            ],
            schema=PRODUCTS,
        ),
        co_purchased=pair_table(CO_PURCHASED),
        co_viewed=pair_table(CO_VIEWED),
        relations=pa.Table.from_pylist([relation_row(*r) for r in RELS], schema=RELATIONS),
        scenes=pa.Table.from_pylist(
            [
                {"scene_id": "mobile-setup", "name": "新手机套装", "source": "user"},
                {"scene_id": "camping", "name": "camping weekend", "source": "discovered"},
            ],
            schema=SCENES,
        ),
        scene_members=pa.Table.from_pylist(
            [
                {"product_id": "phone-a", "scene_id": "mobile-setup", "role": "core", "weight": 1.0},
                {"product_id": "film-a", "scene_id": "mobile-setup", "role": "accessory", "weight": 0.8},
                {"product_id": "case-a", "scene_id": "mobile-setup", "role": "accessory", "weight": 0.8},
                {"product_id": "tent", "scene_id": "camping", "role": None, "weight": 1.0},
            ],
            schema=SCENE_MEMBERS,
        ),
        meta=meta
        if meta is not None
        else {"built_at": "2024-05-01T12:00:00", "sources": ["hand-made"], "min_count": 2, "ratio": THIRD},
    )


EXPECTED_COUNTS = {
    "nodes": {"Product": 7, "Category": 9, "Brand": 3, "Attribute": 6, "Scene": 2, "Evidence": 12},
    "relationships": {
        "IN_CATEGORY": 7,
        "CHILD_OF": 7,
        "HAS_BRAND": 6,
        "HAS_ATTRIBUTE": 10,
        "IN_SCENE": 4,
        "CO_PURCHASED": 5,
        "CO_VIEWED": 1,
        "COMPLEMENT": 5,
        "SUBSTITUTE": 2,
        "UPSELL": 1,
        "SAME_SERIES": 2,
        "NEXT_PURCHASE": 2,
    },
}


@pytest.fixture(scope="module", params=STORE_FACTORIES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GraphStore:
    """A store holding the hand-made catalog, shared by the read-only tests of this module."""
    kind: StoreKind = request.param
    s = kind.make(tmp_path_factory.mktemp(kind.name))
    s.replace(catalog())
    yield s
    s.close()


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["product_id"] for r in rows]


def answers(s: GraphStore) -> dict[str, Any]:
    """Everything a client can ask, to compare two states of a store."""
    return {
        "stats": s.stats(),
        "products": {p[0]: s.product(p[0]) for p in CATALOG},
        "related": {(p[0], k): s.related(p[0], k, k=10) for p in CATALOG for k in RELATION_KINDS},
    }


# ----------------------------------------------------------------------------- part 1: by hand
def test_product_fields(loaded: GraphStore) -> None:
    assert loaded.product("case-a") == {
        "product_id": "case-a",
        "title": "Phone A case 手机壳",
        "category": "cases",
        "category_path": "electronics > accessories > cases",
        "brand": "Acme",
        "price": 19.99,
        "stock": 100,
        "sales_role": "traffic",
        "product_type": None,  # the catalog fixture leaves it to the build
    }
    film = loaded.product("film-a")
    assert list(film) == list(PRODUCT_FIELDS)
    assert film["brand"] is None and film["stock"] is None and film["sales_role"] is None


def test_sales_roles_in_product_and_related_rows(loaded: GraphStore) -> None:
    assert {p[0]: loaded.product(p[0])["sales_role"] for p in CATALOG} == {
        p[0]: ROLES.get(p[0]) for p in CATALOG
    }
    rows = loaded.related("phone-a", "complement")
    assert {r["product_id"]: r["sales_role"] for r in rows} == {
        "case-a": "traffic",
        "charger": "regular",
        "film-a": None,
    }
    assert loaded.query(
        "MATCH (p:Product) WHERE p.sales_role = $role RETURN p.product_id AS id", {"role": "hero"}
    ) == [{"id": "phone-a"}]


def test_unknown_sales_role_is_refused(store: GraphStore) -> None:
    d = catalog()
    roles = d.products.column("sales_role").to_pylist()
    roles[2] = "bestseller"
    d.products = d.products.set_column(
        PRODUCTS.names.index("sales_role"), "sales_role", pa.array(roles, pa.string())
    )
    with pytest.raises(InputError) as info:
        store.replace(d)
    assert (info.value.row, info.value.column) == (3, "sales_role") and "bestseller" in str(info.value)


def test_related_next(loaded: GraphStore) -> None:
    """ "next" relations are directed: after the phone comes the case, not the phone after the case."""
    rows = loaded.related("phone-a", "next")
    assert ids(rows) == ["case-a", "charger"]  # 0.4 tie broken by id
    assert rows[0]["kind"] == "next" and rows[0]["lift"] == 4.0
    assert rows[0]["evidence"]["after_count"] == 7 and rows[0]["evidence"]["median_gap_days"] == 12.5
    assert loaded.related("case-a", "next") == []
    assert loaded.query(
        "MATCH (x:Product)-[r:NEXT_PURCHASE]->(y:Product) RETURN x.product_id AS src, y.product_id AS dst "
        "ORDER BY src, dst"
    ) == [{"src": "phone-a", "dst": "case-a"}, {"src": "phone-a", "dst": "charger"}]


def test_related_complement_order_ties_broken_by_id(loaded: GraphStore) -> None:
    rows = loaded.related("phone-a", "complement")
    assert ids(rows) == ["case-a", "charger", "film-a"]  # 0.9, then the 0.75 tie by id
    assert [r["score"] for r in rows] == [0.9, 0.75, 0.75]
    assert all(list(r) == [*PRODUCT_FIELDS, *RELATED_FIELDS] for r in rows)
    assert all(r["kind"] == "complement" for r in rows)


def test_related_each_kind(loaded: GraphStore) -> None:
    assert ids(loaded.related("phone-a", "substitute")) == ["phone-b"]
    assert ids(loaded.related("phone-a", "upsell")) == ["phone-a-pro"]
    assert ids(loaded.related("phone-a", "series")) == ["phone-a-pro"]
    assert ids(loaded.related("phone-a-pro", "series")) == ["phone-a"]
    assert ids(loaded.related("phone-b", "complement")) == ["charger"]
    assert loaded.related("tent", "complement") == []


def test_k_limits(loaded: GraphStore) -> None:
    assert ids(loaded.related("phone-a", "complement", k=2)) == ["case-a", "charger"]
    assert ids(loaded.related("phone-a", "complement", k=1)) == ["case-a"]
    with pytest.raises(ConfigError):
        loaded.related("phone-a", "complement", k=0)


def test_direction(loaded: GraphStore) -> None:
    """phone-a -> case-a is a complement; case-a's only complement is the film, not the phone."""
    assert ids(loaded.related("case-a", "complement")) == ["film-a"]
    assert loaded.related("film-a", "complement") == []  # only incoming edges
    assert loaded.related("phone-a-pro", "upsell") == []  # upsell is one-way


def test_relation_properties_round_trip_exactly(loaded: GraphStore) -> None:
    top = loaded.related("phone-a", "complement")[0]
    assert top["evidence"] == EVIDENCE
    assert top["lift"] == THIRD and top["confidence"] == THIRD / 10  # bit-exact floats
    assert {k: top[k] for k in ("n_ab", "co_view", "similarity", "category_relation", "price_ratio")} == {
        "n_ab": 13,
        "co_view": None,
        "similarity": None,
        "category_relation": "different",
        "price_ratio": 0.5,
    }
    assert top["title"] == "Phone A case 手机壳" and top["price"] == 19.99
    charger = loaded.related("phone-b", "complement")[0]
    assert charger["lift"] == TENTH_SUM and charger["evidence"] == {}
    assert loaded.related("case-a", "complement")[0]["evidence"] == {}  # null evidence
    sub = loaded.related("phone-a", "substitute")[0]
    assert (sub["co_view"], sub["similarity"], sub["lift"]) == (3, 0.93, None)
    assert loaded.related("phone-a", "upsell")[0]["evidence"] == {"price_ratio": 999.0 / 699.0}


def test_unknown_product_and_kind(loaded: GraphStore) -> None:
    with pytest.raises(ProductNotFound) as info:
        loaded.product("nope")
    assert info.value.product_id == "nope"
    with pytest.raises(ProductNotFound):
        loaded.related("nope", "complement")
    with pytest.raises(ConfigError) as cfg:
        loaded.related("phone-a", "bundle")
    assert all(k in str(cfg.value) for k in RELATION_KINDS)
    with pytest.raises(ProductNotFound):  # quotes are data, not query text
        loaded.product("x' OR 1=1 //")


def test_stats(loaded: GraphStore) -> None:
    st = loaded.stats()
    assert st["nodes"] == EXPECTED_COUNTS["nodes"]
    assert st["relationships"] == EXPECTED_COUNTS["relationships"]
    assert st["meta"] == catalog().meta


def _schema_examples() -> list[tuple[str, dict[str, Any]]]:
    blocks = re.findall(r"```cypher\n(.*?)```", SCHEMA_MD.read_text(encoding="utf-8"), re.DOTALL)
    out = []
    for block in blocks:
        first, _, body = block.partition("\n")
        assert first.startswith("// params: "), block
        out.append((body.strip(), json.loads(first.removeprefix("// params: "))))
    return out


def test_schema_md_has_examples() -> None:
    assert len(_schema_examples()) >= 6


@pytest.mark.parametrize("example", range(len(_schema_examples())))
def test_schema_md_examples_run(loaded: GraphStore, example: int) -> None:
    cypher, params = _schema_examples()[example]
    rows = loaded.query(cypher, params)
    assert rows, cypher  # every example has an answer on this catalog


def test_schema_md_examples_answers(loaded: GraphStore) -> None:
    ex = {c.split("\n")[0]: (c, p) for c, p in _schema_examples()}

    def run(prefix: str) -> list[dict[str, Any]]:
        (c, p), *_ = [v for k, v in ex.items() if k.startswith(prefix)]
        return loaded.query(c, p)

    assert ids(run("MATCH (p:Product {product_id: $product_id})-[r:COMPLEMENT]")) == [
        "case-a",
        "charger",
        "film-a",
    ]
    subtree = run("MATCH (p:Product)-[:IN_CATEGORY]")
    assert ids(subtree) == sorted(p[0] for p in CATALOG if p[3].startswith("electronics"))
    assert [(r["a"], r["b"]) for r in run("MATCH (x:Product)-[r:CO_PURCHASED]")] == [
        ("case-a", "phone-a"),
        ("film-a", "phone-a"),
        ("charger", "phone-a"),
        ("charger", "phone-b"),
    ]  # lift 7.5, 2.4, 1.666.., 1.0416..; the n_ab=1 pair is filtered out
    assert run("MATCH (p:Product)-[:HAS_BRAND]") == [
        {"brand": "Acme", "products": 3},
        {"brand": "Bolt", "products": 2},
        {"brand": "Trail", "products": 1},
    ]
    assert run("MATCH (p:Product)-[m:IN_SCENE]") == [
        {"product_id": "phone-a", "role": "core", "weight": 1.0},
        {"product_id": "case-a", "role": "accessory", "weight": 0.8},
        {"product_id": "film-a", "role": "accessory", "weight": 0.8},
    ]


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (:Product {product_id: 'evil'})",
        "MATCH (p:Product) SET p.price = 0",
        "MATCH (p:Product) DETACH DELETE p",
        "MATCH (p:Product {product_id: 'tent'}) REMOVE p.title",
        "MERGE (b:Brand {name: 'evil'})",
        "DROP TABLE Product",
        "match (p:Product) set p.stock = 0 return p",
        "MATCH (p:Product) RETURN p.product_id; MATCH (p:Product) DELETE p",
    ],
)
def test_query_refuses_writes(loaded: GraphStore, cypher: str) -> None:
    with pytest.raises(CypherError):  # WriteRefused is a CypherError
        loaded.query(cypher)
    assert loaded.stats()["nodes"] == EXPECTED_COUNTS["nodes"]
    assert loaded.product("tent")["title"] == "2-person tent 帐篷"


def test_query_refuses_writes_with_write_refused(loaded: GraphStore) -> None:
    with pytest.raises(WriteRefused):
        loaded.query("MATCH (p:Product {product_id: $id}) SET p.price = 0", {"id": "tent"})


def test_query_reads(loaded: GraphStore) -> None:
    rows = loaded.query(
        "MATCH (p:Product) WHERE p.title CONTAINS $word RETURN p.product_id AS id ORDER BY id",
        {"word": "SET"},  # a write keyword inside a parameter is just data
    )
    assert rows == []
    assert loaded.query("MATCH (p:Product {product_id: 'set'}) RETURN p.title AS t") == []
    assert loaded.query("MATCH (p:Product) WHERE p.title CONTAINS 'Pro' RETURN p.price AS price") == [
        {"price": 999.0}
    ]


def test_query_invalid_cypher(loaded: GraphStore) -> None:
    with pytest.raises(CypherError):
        loaded.query("MATCH (p:Product RETURN p")
    with pytest.raises(CypherError):
        loaded.query("MATCH (p:Product) RETURN q")  # unknown variable
    with pytest.raises(CypherError, match="id"):
        loaded.query("MATCH (p:Product {product_id: $id}) RETURN p.title AS t")  # missing parameter
    assert loaded.query(
        "MATCH (p:Product {product_id: $id}) RETURN p.title AS t", {"id": "tent", "x": 1}
    ) == [{"t": "2-person tent 帐篷"}]  # unused parameters are fine


def test_scenes_list(loaded: GraphStore) -> None:
    # roles by weight ascending (the role's position), so "accessory" (0.8) comes before "core" (1.0)
    assert loaded.scenes() == [
        {
            "scene_id": "camping",
            "name": "camping weekend",
            "source": "discovered",
            "members": 1,
            "roles": [None],
        },
        {
            "scene_id": "mobile-setup",
            "name": "新手机套装",
            "source": "user",
            "members": 3,
            "roles": ["accessory", "core"],
        },
    ]


def test_scene_by_id_or_name(loaded: GraphStore) -> None:
    sc = loaded.scene("mobile-setup")
    assert {f: sc[f] for f in SCENE_FIELDS} == {
        "scene_id": "mobile-setup",
        "name": "新手机套装",
        "source": "user",
    }
    assert sc["members"] == 3
    assert [(r["role"], r["weight"], [p["product_id"] for p in r["products"]]) for r in sc["roles"]] == [
        ("accessory", 0.8, ["case-a", "film-a"]),  # equal weights: by product id
        ("core", 1.0, ["phone-a"]),
    ]
    case = sc["roles"][0]["products"][0]
    assert case == {**loaded.product("case-a"), "weight": 0.8}
    assert loaded.scene("新手机套装") == sc  # by name
    assert loaded.scene("MOBILE-SETUP") == sc  # case-insensitive
    camping = loaded.scene("Camping Weekend")
    assert camping["scene_id"] == "camping" and camping["roles"][0]["role"] is None
    with pytest.raises(NotFound, match="'skiing'"):
        loaded.scene("skiing")


# ----------------------------------------------------------------------------- mutation tests
def test_replace_twice_is_idempotent(store: GraphStore) -> None:
    store.replace(catalog())
    first = answers(store)
    store.replace(catalog())
    assert answers(store) == first
    assert first["stats"]["relationships"] == EXPECTED_COUNTS["relationships"]


def test_replace_swaps_the_whole_graph(store: GraphStore) -> None:
    store.replace(catalog())
    d = catalog(meta={"version": 2})
    d.products = d.products.filter(pa.compute.not_equal(d.products.column("product_id"), "tent"))
    d.co_purchased = d.co_purchased.filter(pa.compute.not_equal(d.co_purchased.column("b"), "tent"))
    d.scene_members = d.scene_members.slice(0, 3)
    d.relations = d.relations.slice(0, 1)
    store.replace(d)
    st = store.stats()
    assert st["meta"] == {"version": 2}
    assert st["nodes"]["Product"] == 6 and st["nodes"]["Category"] == 6  # outdoor > camping > tents gone
    assert st["relationships"]["COMPLEMENT"] == 1 and st["relationships"]["SUBSTITUTE"] == 0
    with pytest.raises(ProductNotFound):
        store.product("tent")
    assert ids(store.related("phone-a", "complement")) == ["case-a"]


class Boom(RuntimeError):
    pass


def test_failed_replace_leaves_the_old_graph(store: GraphStore) -> None:
    store.replace(catalog())
    before = answers(store)
    calls = []

    def fail_midway(step: str, done: int, total: int) -> None:
        calls.append(step)
        if len(calls) == 4:  # after some tables were written
            raise Boom("interrupted")

    bigger = catalog(meta={"version": "never"})
    bigger.relations = bigger.relations.slice(0, 2)
    with pytest.raises(Boom):
        store.replace(bigger, progress=fail_midway)
    assert answers(store) == before
    store.replace(catalog())  # and the store still loads afterwards
    assert answers(store) == before


def test_invalid_data_leaves_the_old_graph(store: GraphStore) -> None:
    from tiein.errors import InputError

    store.replace(catalog())
    before = answers(store)
    bad = catalog()
    bad.relations = pa.Table.from_pylist(
        [relation_row("phone-a", "ghost", "complement", 1.0, None, {})], schema=RELATIONS
    )
    with pytest.raises(InputError):
        store.replace(bad)
    assert answers(store) == before


def test_persistence_across_reopen(store: GraphStore, store_kind: StoreKind) -> None:
    store.replace(catalog())
    before = answers(store)
    store.close()
    again = store_kind.reopen(store)
    try:
        assert answers(again) == before
    finally:
        again.close()


def test_second_handle_sees_a_replace(store: GraphStore, store_kind: StoreKind) -> None:
    """A server's handle picks up a rebuild made through another handle (another process)."""
    store.replace(catalog())
    server = store_kind.reopen(store)
    try:
        assert server.stats()["meta"] == catalog().meta
        store.replace(catalog(meta={"version": 2}))
        assert server.stats()["meta"] == {"version": 2}
        assert ids(server.related("phone-a", "complement")) == ["case-a", "charger", "film-a"]
    finally:
        server.close()


# ----------------------------------------------------------------------------- embedded only
def _embedded(store: GraphStore) -> Path:
    from tiein.graph.ladybug_store import EmbeddedStore

    if not isinstance(store, EmbeddedStore):
        pytest.skip("embedded store only")
    return store.path


def test_embedded_killed_load_leaves_the_old_graph(store: GraphStore, store_kind: StoreKind) -> None:
    """A loader process killed midway (os._exit: no cleanup runs) leaves CURRENT on the old
    generation; the half-built generation is removed by the next replace."""
    path = _embedded(store)
    store.replace(catalog())
    before = answers(store)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}]
        from test_store_contract import catalog
        from tiein.graph.ladybug_store import EmbeddedStore
        def die(step, done, total):
            if done == 6:
                os._exit(9)
        EmbeddedStore({str(path)!r}).replace(catalog(meta={{"v": "killed"}}), progress=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    gens = sorted(p.name for p in path.iterdir() if p.name.startswith("gen-"))
    assert len(gens) == 2  # the old one and the half-built one
    assert answers(store) == before
    assert answers(store_kind.reopen(store)) == before
    old = (path / "CURRENT").read_text().strip()
    store.replace(catalog())
    # the half-built one is gone; the one replaced stays (a rollback points back at it)
    gens = sorted(p.name for p in path.iterdir() if p.name.startswith("gen-"))
    assert len(gens) == 2 and old in gens, gens
    assert answers(store) == before


def test_embedded_keeps_the_generation_before_and_switches_back_to_it(store: GraphStore) -> None:
    """``switch_to_state`` (what ``tiein rollback`` uses) points CURRENT back at the kept
    generation holding a build: no reload; older generations and unknown builds are refused."""
    from test_snapshot_switch import renamed

    from tiein.graph.ladybug_store import EmbeddedStore

    path = _embedded(store)
    assert isinstance(store, EmbeddedStore)
    assert store.switch_to_state("s1") is False  # nothing loaded yet
    store.replace(catalog(meta={"state_id": "s1"}))
    first = store.generation()
    store.replace(renamed(catalog(meta={"state_id": "s2"}), "tent", "new tent"))
    second = store.generation()
    assert store.switch_to_state("s1") is True
    assert store.generation() == first and store.product("tent")["title"] == "2-person tent 帐篷"
    assert store.stats()["meta"] == {"state_id": "s1"}
    assert store.switch_to_state("s1") is False  # it answers already: nothing else holds it
    assert store.switch_to_state("s9") is False and store.generation() == first
    store.clean()  # keeps the current generation and the one before it
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("gen-")) == sorted([first, second])
    assert store.switch_to_state("s2") is True and store.product("tent")["title"] == "new tent"
    store.replace(catalog(meta={"state_id": "s3"}))  # s1 is two builds back now: deleted
    assert store.switch_to_state("s1") is False
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("gen-")) == sorted(
        [second, store.generation()]
    )


def test_embedded_server_process_reads_while_rebuilding(store: GraphStore) -> None:
    """Another process keeps the graph open read-only (a server) while this one rebuilds."""
    path = _embedded(store)
    store.replace(catalog())
    script = textwrap.dedent(
        f"""
        import sys, time
        from tiein.graph.ladybug_store import EmbeddedStore
        s = EmbeddedStore({str(path)!r})
        print(s.stats()["meta"], flush=True)
        sys.stdin.readline()  # wait for the rebuild
        print(s.stats()["meta"], s.product("phone-a")["title"], flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline()
        store.replace(catalog(meta={"version": 2}))  # while the server holds the old generation open
        out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    assert "hand-made" in first
    assert out.strip() == "{'version': 2} Phone A 128GB"


def test_embedded_one_loader_at_a_time(store: GraphStore) -> None:
    from tiein.graph.ladybug_store import _WriterLock

    path = _embedded(store)
    store.replace(catalog())
    with _WriterLock(path / ".lock"), pytest.raises(StoreError, match="in progress"):
        store.replace(catalog(meta={"v": 2}))
    assert store.stats()["meta"] == catalog().meta
    store.replace(catalog(meta={"v": 3}))  # the lock is released
    assert store.stats()["meta"] == {"v": 3}


def test_embedded_empty_store(store: GraphStore) -> None:
    _embedded(store)
    st = store.stats()
    assert st["meta"] == {} and set(st["nodes"].values()) == {0}
    with pytest.raises(ProductNotFound):
        store.product("phone-a")
    assert store.scenes() == []
    with pytest.raises(NotFound):
        store.scene("camping")


def test_embedded_query_is_read_only_even_past_the_keyword_check(loaded: GraphStore) -> None:
    """The keyword check is a courtesy; the database itself is opened read-only."""
    from tiein.graph.ladybug_store import EmbeddedStore

    if not isinstance(loaded, EmbeddedStore):
        pytest.skip("embedded store only")
    with loaded._lock:
        conn = loaded._connection()
        with pytest.raises(RuntimeError, match="read-only"):
            conn.execute("CREATE (:Brand {name: 'evil'})")


def test_open_store_urls(tmp_path: Path) -> None:
    from tiein.graph import open_store
    from tiein.graph.ladybug_store import EmbeddedStore

    for url in (str(tmp_path / "a"), f"embedded:{tmp_path / 'b'}"):
        s = open_store(url)
        assert isinstance(s, EmbeddedStore)
        s.close()
    assert open_store(f"embedded:{tmp_path / 'b'}").path == tmp_path / "b"
    neo = open_store("bolt://localhost:7687")  # no connection is made until the first call
    assert type(neo).__name__ == "Neo4jStore"
    neo.close()
    with pytest.raises(ConfigError):
        open_store("http://localhost:7474")
    with pytest.raises(ConfigError):
        open_store("")


def test_import_graph_is_light() -> None:
    code = "import sys, graph; print(any(m.split('.')[0] in ('ladybug', 'neo4j') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- part 2: reference
def random_graph(seed: int, n_products: int = 300) -> GraphData:
    """A random GraphData with ties in scores, missing values, a category tree and attributes."""
    rng = random.Random(seed)
    roots = ["家电", "outdoor", "electronics"]
    paths = [
        CATEGORY_SEP.join([r, f"{r}-{i}", f"{r}-{i}-{j}"]) for r in roots for i in range(3) for j in range(2)
    ]
    pids = [f"P{i:04d}" for i in range(n_products)]
    prows = []
    for pid in pids:
        path = rng.choice([*paths, None])
        attrs = {"color": rng.choice(["red", "blue", "green"])} if rng.random() < 0.7 else None
        if attrs and rng.random() < 0.3:
            attrs["size"] = rng.choice([38, 40, 42])
        prows.append(
            {
                "product_id": pid,
                "title": f"item {pid} 商品",
                "category": path.split(CATEGORY_SEP)[-1] if path else None,
                "category_path": path,
                "brand": rng.choice(["A", "B", "C", None]),
                "price": round(rng.uniform(1, 500), 2) if rng.random() < 0.9 else None,
                "stock": rng.choice([0, 1, 5, None]),
                "attributes": json.dumps(attrs) if attrs else None,
                "margin": rng.choice([0.1, 0.35, None]),
                "sales_role": rng.choice(["traffic", "hero", "profit", None]),
            }
        )
    rng.shuffle(prows)
    rels, seen = [], set()
    for _ in range(n_products * 6):
        src, dst = rng.sample(pids, 2)
        kind = rng.choice(RELATION_KINDS)
        if (src, dst, kind) in seen:
            continue
        seen.add((src, dst, kind))
        score = rng.choice([0.5, 0.25, 0.125]) if rng.random() < 0.4 else rng.random()  # many ties
        ev = {"n": rng.randint(0, 9), "x": rng.random()} if rng.random() < 0.8 else None
        rels.append(relation_row(src, dst, kind, score, rng.random() * 3, ev))
    pairs = {}
    for _ in range(n_products * 4):
        a, b = sorted(rng.sample(pids, 2))
        pairs[(a, b)] = (a, b, rng.randint(1, 9), rng.randint(10, 20), rng.randint(10, 20), 1000)
    scenes = [{"scene_id": f"S{i}", "name": f"scene {i}", "source": "discovered"} for i in range(5)]
    members = {(rng.choice(pids), f"S{rng.randrange(5)}") for _ in range(60)}
    return GraphData(
        products=pa.Table.from_pylist(prows, schema=PRODUCTS),
        co_purchased=pair_table(list(pairs.values())),
        co_viewed=pair_table(list(pairs.values())[: n_products // 2]),
        relations=pa.Table.from_pylist(rels, schema=RELATIONS),
        scenes=pa.Table.from_pylist(scenes, schema=SCENES),
        scene_members=pa.Table.from_pylist(
            [
                {
                    "product_id": p,
                    "scene_id": s,
                    "role": rng.choice(["a", "b", "c", None]),
                    "weight": rng.choice([1.0, 2.0, 3.0]),
                }
                for p, s in sorted(members)
            ],
            schema=SCENE_MEMBERS,
        ),
        meta={"seed": seed},
    )


def reference_answers(d: GraphData) -> dict[str, Any]:
    """What every store must answer, computed from the GraphData alone (networkx, plain Python)."""
    products = {r["product_id"]: r for r in d.products.to_pylist()}
    g = nx.MultiDiGraph()
    for r in d.relations.to_pylist():
        g.add_edge(r["src"], r["dst"], key=r["kind"], **r)
    related: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pid in products:
        for kind in RELATION_KINDS:
            edges = (
                [e for _, _, key, e in g.out_edges(pid, keys=True, data=True) if key == kind]
                if pid in g
                else []
            )
            edges.sort(key=lambda e: (-e["score"], e["dst"]))
            related[(pid, kind)] = [
                {
                    **{f: products[e["dst"]][f] for f in PRODUCT_FIELDS},
                    **{f: e[f] for f in RELATED_FIELDS if f not in ("evidence",)},
                    "evidence": json.loads(e["evidence"]) if e["evidence"] else {},
                }
                for e in edges[:10]
            ]
    cats: set[str] = set()
    for r in products.values():
        parts = (r["category_path"] or "").split(CATEGORY_SEP)
        cats |= (
            {CATEGORY_SEP.join(parts[:i]) for i in range(1, len(parts) + 1)} if r["category_path"] else set()
        )
    attr_edges = {
        (pid, f"{k}={v}")
        for pid, r in products.items()
        if r["attributes"]
        for k, v in json.loads(r["attributes"]).items()
    }
    kinds = Counter(r["kind"] for r in d.relations.to_pylist())
    # scenes: roles by (smallest weight, name), None last; products by (weight, id)
    scene_rows = {r["scene_id"]: r for r in d.scenes.to_pylist()}
    by_scene: dict[str, dict[Any, list[tuple[float, str]]]] = {sid: {} for sid in scene_rows}
    for m in d.scene_members.to_pylist():
        by_scene[m["scene_id"]].setdefault(m["role"], []).append((m["weight"], m["product_id"]))
    scenes = {}
    for sid, roles in by_scene.items():
        order = sorted(roles, key=lambda role: (min(roles[role])[0], role is None, role or ""))
        scenes[sid] = {
            **scene_rows[sid],
            "members": sum(len(v) for v in roles.values()),
            "roles": [
                {
                    "role": role,
                    "weight": min(roles[role])[0],
                    "products": [
                        {**{f: products[pid][f] for f in PRODUCT_FIELDS}, "weight": w}
                        for w, pid in sorted(roles[role])
                    ],
                }
                for role in order
            ],
        }
    return {
        "scenes": scenes,
        "products": {pid: {f: r[f] for f in PRODUCT_FIELDS} for pid, r in products.items()},
        "related": related,
        "nodes": {
            "Product": len(products),
            "Category": len(cats),
            "Brand": len({r["brand"] for r in products.values() if r["brand"]}),
            "Attribute": len({a for _, a in attr_edges}),
            "Scene": d.scenes.num_rows,
            "Evidence": d.relations.num_rows,  # one per relation
        },
        "relationships": {
            "IN_CATEGORY": sum(1 for r in products.values() if r["category_path"]),
            "CHILD_OF": sum(1 for c in cats if CATEGORY_SEP in c),
            "HAS_BRAND": sum(1 for r in products.values() if r["brand"]),
            "HAS_ATTRIBUTE": len(attr_edges),
            "IN_SCENE": d.scene_members.num_rows,
            "CO_PURCHASED": d.co_purchased.num_rows,
            "CO_VIEWED": d.co_viewed.num_rows,
            **{REL_TYPE[k]: kinds[k] for k in RELATION_KINDS},
        },
    }


def test_reference_answers_on_a_random_graph(store: GraphStore) -> None:
    d = random_graph(seed=7)
    ref = reference_answers(d)
    store.replace(d)
    st = store.stats()
    assert st["nodes"] == ref["nodes"]
    assert st["relationships"] == ref["relationships"]
    assert st["meta"] == {"seed": 7}
    for pid, expected in ref["products"].items():
        assert store.product(pid) == expected
    mismatches = [key for key, expected in ref["related"].items() if store.related(*key) != expected]
    assert mismatches == []
    assert sum(len(v) for v in ref["related"].values()) > 1000  # the check is not vacuous
    assert store.scenes() == [
        {**{k: v for k, v in sc.items() if k != "roles"}, "roles": [r["role"] for r in sc["roles"]]}
        for _, sc in sorted(ref["scenes"].items())
    ]
    for sid, expected_scene in ref["scenes"].items():
        assert store.scene(sid) == expected_scene
    assert sum(len(sc["roles"]) for sc in ref["scenes"].values()) >= 12  # roles, not one None group
    # k smaller than the list keeps the reference order
    busy = max(ref["related"], key=lambda key: len(ref["related"][key]))
    assert store.related(*busy, k=3) == ref["related"][busy][:3]


# ----------------------------------------------------------------------------- bundle reads (issue 3)
def test_product_scenes(loaded: GraphStore) -> None:
    assert loaded.product_scenes("phone-a") == [
        {"scene_id": "mobile-setup", "name": "新手机套装", "source": "user", "role": "core", "weight": 1.0}
    ]
    assert loaded.product_scenes("tent") == [
        {
            "scene_id": "camping",
            "name": "camping weekend",
            "source": "discovered",
            "role": None,
            "weight": 1.0,
        }
    ]
    assert loaded.product_scenes("charger") == []
    with pytest.raises(ProductNotFound, match="nope"):
        loaded.product_scenes("nope")


def test_scene_summary_is_the_scenes_entry(loaded: GraphStore) -> None:
    listed = {s["scene_id"]: s for s in loaded.scenes()}
    for sid, expected in listed.items():
        assert loaded.scene_summary(sid) == expected
        assert loaded.scene_summary(expected["name"].upper()) == expected  # by name, any case
    with pytest.raises(NotFound, match="'skiing'"):
        loaded.scene_summary("skiing")


def test_scene_roles_of(loaded: GraphStore) -> None:
    got = loaded.scene_roles_of("mobile-setup", ["film-a", "phone-a", "case-a", "tent", "nope", "film-a"])
    assert got == {"case-a": "accessory", "film-a": "accessory", "phone-a": "core"}
    assert list(got) == sorted(got)
    assert loaded.scene_roles_of("camping", ["tent"]) == {"tent": None}  # a member without a role
    assert loaded.scene_roles_of("mobile-setup", []) == {}
    assert loaded.scene_roles_of("no-such-scene", ["phone-a"]) == {}
    with pytest.raises(ConfigError, match="product_ids"):
        loaded.scene_roles_of("mobile-setup", "phone-a")  # type: ignore[arg-type]


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("substitutes", "scene_roles")}


def test_bundle_candidates_by_hand(loaded: GraphStore) -> None:
    for pid in [p[0] for p in CATALOG]:
        c = loaded.bundle_candidates(pid, 50)
        assert c["product"] == loaded.product(pid)
        assert c["scenes"] == loaded.product_scenes(pid)
        assert [_strip(r) for r in c["complements"]] == loaded.related(pid, "complement", 50)
        assert c["substitutes"] == sorted(ids(loaded.related(pid, "substitute", 50)))
        for r in c["complements"]:
            assert r["substitutes"] == sorted(ids(loaded.related(r["product_id"], "substitute", 50)))
            if "scene_roles" in r:  # optional (tiein.graph.base.candidates_answer)
                assert r["scene_roles"] == {
                    s["scene_id"]: s["role"] for s in loaded.product_scenes(r["product_id"])
                }
    c = loaded.bundle_candidates("phone-b", 50)  # phone-b -> charger; phone-b's substitute is phone-a
    assert ids(c["complements"]) == ["charger"] and c["substitutes"] == ["phone-a"]
    assert c["complements"][0]["substitutes"] == []
    c = loaded.bundle_candidates("phone-a", 50)
    assert ids(c["complements"]) == ["case-a", "charger", "film-a"] and c["substitutes"] == ["phone-b"]
    assert len(loaded.bundle_candidates("phone-a", 1)["complements"]) == 1
    with pytest.raises(ProductNotFound, match="nope"):
        loaded.bundle_candidates("nope")
    for k in (0, -1, True, "5"):
        with pytest.raises(ConfigError, match="k must"):
            loaded.bundle_candidates("phone-a", k)  # type: ignore[arg-type]


def test_bundle_reads_on_a_random_graph(store: GraphStore) -> None:
    """bundle_candidates / product_scenes / scene_summary / scene_roles_of against answers computed
    from the GraphData alone."""
    d = random_graph(seed=11)
    ref = reference_answers(d)
    store.replace(d)
    rels = d.relations.to_pylist()
    subs: dict[str, set[str]] = {}
    for r in rels:
        if r["kind"] == "substitute":
            subs.setdefault(r["src"], set()).add(r["dst"])
    members = d.scene_members.to_pylist()
    scenes = {s["scene_id"]: s for s in d.scenes.to_pylist()}
    in_scene: dict[str, list[dict[str, Any]]] = {}
    for m in members:
        in_scene.setdefault(m["product_id"], []).append(
            {**scenes[m["scene_id"]], "role": m["role"], "weight": m["weight"]}
        )
    with_roles = 0
    for pid in ref["products"]:
        c = store.bundle_candidates(pid, 10)
        expected_scenes = sorted(in_scene.get(pid, []), key=lambda s: (s["weight"], s["scene_id"]))
        assert c["product"] == ref["products"][pid]
        assert c["scenes"] == store.product_scenes(pid) == expected_scenes
        assert [_strip(r) for r in c["complements"]] == ref["related"][(pid, "complement")]
        assert c["substitutes"] == sorted(subs.get(pid, ()))
        for r in c["complements"]:
            assert r["substitutes"] == sorted(subs.get(r["product_id"], ()))
            if "scene_roles" in r:
                assert r["scene_roles"] == {
                    s["scene_id"]: s["role"] for s in in_scene.get(r["product_id"], [])
                }
                with_roles += bool(r["scene_roles"])
    assert with_roles > 5 or store.name not in ("embedded", "neo4j")  # the check is not vacuous
    for sid, sc in ref["scenes"].items():
        assert store.scene_summary(sid) == {
            **{k: v for k, v in sc.items() if k != "roles"},
            "roles": [r["role"] for r in sc["roles"]],
        }
        expected = {m["product_id"]: m["role"] for m in members if m["scene_id"] == sid}
        assert store.scene_roles_of(sid, sorted(ref["products"])) == dict(sorted(expected.items()))


# ----------------------------------------------------------------------------- apply (issue 5)
def mutated(d: GraphData, seed: int) -> GraphData:
    """``d`` after an "update": products removed, added and changed (price, stock, title, brand,
    category, attributes), relations dropped / rescored / added, pairs recounted, a scene gone
    and one new, meta changed."""
    rng = random.Random(seed)
    prows = d.products.to_pylist()
    gone = {r["product_id"] for r in rng.sample(prows, 10)}
    prows = [r for r in prows if r["product_id"] not in gone]
    for r in rng.sample(prows, 40):
        r["price"] = round(rng.uniform(1, 500), 2)
        r["stock"] = rng.choice([0, 3, None])
        if rng.random() < 0.3:
            r["title"] = r["title"] + " v2"
            r["brand"] = rng.choice(["A", "D", None])
        if rng.random() < 0.3:
            r["category"], r["category_path"] = "new-leaf", CATEGORY_SEP.join(["新类", "new-leaf"])
            r["attributes"] = json.dumps({"color": "purple"})
    new_ids = [f"N{i:03d}" for i in range(10)]
    prows += [
        {
            "product_id": pid,
            "title": f"new {pid}",
            "category": None,
            "category_path": None,
            "brand": "E",
            "price": 9.5,
            "stock": 1,
            "attributes": None,
            "margin": None,
            "sales_role": "hero",
        }
        for pid in new_ids
    ]
    pids = [r["product_id"] for r in prows]
    rels = []
    for r in d.relations.to_pylist():
        if r["src"] in gone or r["dst"] in gone or rng.random() < 0.15:
            continue
        if rng.random() < 0.2:
            r = {**r, "score": rng.choice([0.5, rng.random()]), "evidence": json.dumps({"v": 2})}
        rels.append(r)
    seen = {(r["src"], r["dst"], r["kind"]) for r in rels}
    for _ in range(200):
        src, dst = rng.choice(new_ids + pids), rng.choice(new_ids)
        kind = rng.choice(RELATION_KINDS)
        if src != dst and (src, dst, kind) not in seen:
            seen.add((src, dst, kind))
            rels.append(relation_row(src, dst, kind, rng.choice([0.5, rng.random()]), 1.5, {"new": True}))
    pairs = [r for r in d.co_purchased.to_pylist() if r["a"] not in gone and r["b"] not in gone]
    for r in pairs[::7]:
        r["n_ab"] += 1
    members = [
        r for r in d.scene_members.to_pylist() if r["product_id"] not in gone and r["scene_id"] != "S4"
    ]
    for r in members[::5]:
        r["role"] = "changed"
    members.append({"product_id": new_ids[0], "scene_id": "S5", "role": "x", "weight": 1.0})
    scenes = [s for s in d.scenes.to_pylist() if s["scene_id"] != "S4"]
    scenes.append({"scene_id": "S5", "name": "scene 5", "source": "user"})
    co_viewed = d.co_viewed.filter(
        pa.compute.invert(
            pa.compute.or_(
                pa.compute.is_in(d.co_viewed["a"], pa.array(sorted(gone))),
                pa.compute.is_in(d.co_viewed["b"], pa.array(sorted(gone))),
            )
        )
    )
    return GraphData(
        products=pa.Table.from_pylist(prows, schema=PRODUCTS),
        co_purchased=pa.Table.from_pylist(pairs, schema=PAIR_STATS),
        co_viewed=co_viewed,
        relations=pa.Table.from_pylist(rels, schema=RELATIONS),
        scenes=pa.Table.from_pylist(scenes, schema=SCENES),
        scene_members=pa.Table.from_pylist(members, schema=SCENE_MEMBERS),
        meta={"seed": seed, "updated": True},
    )


def assert_answers(store: GraphStore, d: GraphData) -> None:
    """The store answers exactly what the reference computes from ``d``."""
    ref = reference_answers(d)
    st = store.stats()
    assert st["nodes"] == ref["nodes"]
    assert st["relationships"] == ref["relationships"]
    assert st["meta"] == d.meta
    for pid, expected in ref["products"].items():
        assert store.product(pid) == expected
    assert [key for key, expected in ref["related"].items() if store.related(*key) != expected] == []
    for sid, expected_scene in ref["scenes"].items():
        assert store.scene(sid) == expected_scene


def test_apply_equals_replace_with_the_new_data(
    store: GraphStore, tmp_path: Path, store_kind: StoreKind
) -> None:
    from tiein.graph.base import graph_delta
    from tiein.graph.build import graph_tables

    old, new = random_graph(seed=7), None
    new = mutated(old, seed=11)
    delta = graph_delta(old, new)
    c = delta.counts()
    assert c["added_nodes"] >= 10 and c["changed_nodes"] >= 40 and c["removed_nodes"] >= 10
    assert c["upserted_rels"] > 100 and c["removed_rels"] > 100
    # a delta is much smaller than the graph: unchanged rows are never written
    # (the Evidence nodes aside: the mutation rewrites most relations' evidence)
    evidence = sum(
        getattr(delta, part)["Evidence"].num_rows
        for part in ("added_nodes", "changed_nodes", "removed_nodes")
    )
    assert delta.size() - evidence < sum(graph_tables(new).counts()["relationships"].values()) / 2
    store.replace(old)
    store.apply(delta)
    assert_answers(store, new)
    with pytest.raises(ProductNotFound):
        store.product(
            sorted(set(old.products["product_id"].to_pylist()) - set(new.products["product_id"].to_pylist()))[
                0
            ]
        )
    # the same answers as a store loaded with replace(new), category / attribute nodes included
    q = "MATCH (c:Category)-[:CHILD_OF]->(p:Category) RETURN c.category_id AS child, p.category_id AS parent ORDER BY child, parent"
    applied = store.query(q)
    store.replace(new)
    assert store.query(q) == applied
    # applying a delta with nothing in it changes nothing but the meta
    empty = graph_delta(new, new)
    assert empty.size() == 0
    store.apply(empty)
    assert_answers(store, new)


def test_failed_apply_leaves_the_old_graph(store: GraphStore) -> None:
    from tiein.graph.base import GraphDelta

    old = random_graph(seed=7)
    store.replace(old)
    bad = GraphDelta(
        changed_nodes={"Product": old.products.slice(0, 1)},
        upserted_rels={
            "COMPLEMENT": pa.table(
                {
                    "src": ["P0001"],
                    "dst": ["nope"],
                    **{
                        f.name: pa.nulls(1, f.type) for f in RELATIONS if f.name not in ("src", "dst", "kind")
                    },
                }
            )
        },
        meta={"broken": True},
    )
    with pytest.raises(StoreError):
        store.apply(bad)
    assert_answers(store, old)


def test_every_store_has_the_whole_reader_and_writer_interface(store: GraphStore) -> None:
    """query_rows, read_table, generation and clean are part of the interface (graph/base.py),
    answered by every store, not reached through fallbacks."""
    from tiein.graph.snapshot import SnapshotStore

    before = store.generation()
    store.replace(catalog())
    after = store.generation()
    assert after is None or (isinstance(after, str) and after != before)
    for s in (store, SnapshotStore(store)):
        cols, rows = s.query_rows("MATCH (p:Product) RETURN p.product_id AS id ORDER BY id", limit=2)
        assert cols == ["id"] and len(rows) == 2 and rows[0][0] < rows[1][0]
        table = s.read_table("MATCH (p:Product) RETURN p.product_id AS id ORDER BY id")
        assert table.column_names == ["id"] and table.num_rows == len(catalog().products)
        assert s.generation() == after
    answer = store.related(catalog().products.column("product_id")[0].as_py(), "complement")
    store.clean()  # nothing interrupted: nothing changes
    assert store.related(catalog().products.column("product_id")[0].as_py(), "complement") == answer


# ----------------------------------------------------------------------------- merchant rules
RULES = [
    {"rule_id": 1, "anchor": "phone-a", "item": "tent", "kind": "complement", "action": "pin", "position": 1},
    {
        "rule_id": 2,
        "anchor": "phone-a",
        "item": "film-a",
        "kind": None,
        "action": "block",
        "note": "品牌问题",
    },
    {
        "rule_id": 3,
        "anchor": "phone-b",
        "item": "charger",
        "kind": "complement",
        "action": "boost",
        "boost": 1.5,
    },
]


def _rules_of(s: GraphStore) -> list[dict[str, Any]]:
    """The stored rules with null fields left out (Neo4j keeps no null properties)."""
    return [{k: v for k, v in r.items() if v is not None} for r in s.rules()["rules"]]


def test_rules_start_empty_and_every_save_is_a_version(store: GraphStore) -> None:
    assert store.rules() == {"version": 0, "updated_at": None, "rules": []}
    saved = store.save_rules(RULES[::-1])
    assert saved["version"] == 1 and isinstance(saved["updated_at"], str)
    assert [r["rule_id"] for r in saved["rules"]] == [1, 2, 3]
    assert _rules_of(store) == [{k: v for k, v in r.items() if v is not None} for r in RULES]
    assert store.save_rules(RULES[:1])["version"] == 2
    assert [r["rule_id"] for r in store.rules()["rules"]] == [1] and store.rules()["version"] == 2


def test_rules_survive_replace_and_apply(store: GraphStore) -> None:
    """Rules live outside the graph: a rebuild (replace) or an update (apply) never touches them."""
    from tiein.graph.base import graph_delta

    store.replace(catalog())
    store.save_rules(RULES)
    before = store.rules()
    store.replace(catalog(meta={"built_at": "later"}))
    assert store.rules() == before
    store.apply(graph_delta(catalog(meta={"built_at": "later"}), catalog(meta={"built_at": "update"})))
    assert store.rules() == before
    assert store.stats()["meta"] == {"built_at": "update"}  # the update did land
    store.save_rules([])
    assert store.rules()["rules"] == [] and store.rules()["version"] == before["version"] + 1


def test_rules_conflict_and_bad_rows(store: GraphStore) -> None:
    from tiein.graph.base import RulesConflict

    store.save_rules(RULES)
    with pytest.raises(RulesConflict, match="version 1 is stored"):
        store.save_rules([], expected_version=0)
    assert store.save_rules([], expected_version=1)["version"] == 2
    for bad in ("rules", [{"anchor": "a"}], [{"rule_id": 1}, {"rule_id": 1}], [{"rule_id": 1, "x": [1]}]):
        with pytest.raises(ConfigError):
            store.save_rules(bad)  # type: ignore[arg-type]
    assert store.rules()["version"] == 2  # a refused save changes nothing


def test_rules_seen_by_a_second_handle(store: GraphStore, store_kind: StoreKind) -> None:
    store.replace(catalog())
    other = store_kind.reopen(store)
    try:
        assert other.rules()["version"] == 0
        store.save_rules(RULES)
        assert other.rules() == store.rules()  # a server sees a CLI's import on its next request
        other.save_rules(RULES[:2], expected_version=1)
        assert [r["rule_id"] for r in store.rules()["rules"]] == [1, 2]
    finally:
        other.close()

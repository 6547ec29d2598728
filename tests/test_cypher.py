"""Cypher for analysts (tiein/cypher.py, ``tiein cypher``) on the embedded store holding the
hand-made catalog of tests/test_store_contract.py: read-only, row cap, time limit, JSON values."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store_contract import CATALOG, EXPECTED_COUNTS, catalog

from tiein.cypher import (
    CypherResult,
    iso_duration,
    parse_param,
    run_cypher,
)
from tiein.errors import ConfigError, CypherError, WriteRefused
from tiein.graph.base import GraphStore
from tiein.graph.cypher_guard import parameters, refuse_writes, tokens

IDS = sorted(p[0] for p in CATALOG)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    from tiein.graph.ladybug_store import EmbeddedStore

    s = EmbeddedStore(tmp_path_factory.mktemp("cypher") / "graph")
    s.replace(catalog())
    yield s
    s.close()


# ----------------------------------------------------------------------------- the write check
WRITES = [
    "CREATE (:Product {product_id: 'evil'})",
    "MATCH (p:Product) SET p.price = 0",
    "match (p:Product) set p.stock = 0 return p",
    "MATCH (p:Product) DETACH DELETE p",
    "MATCH (p:Product {product_id: 'tent'}) REMOVE p.title",
    "MERGE (b:Brand {name: 'evil'})",
    "DROP TABLE Product",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
    "COPY Product FROM 'evil.csv'",
    "CALL db.createLabel('Evil')",
    "CALL apoc.create.node(['Evil'], {})",
    "CALL threads=1",
    "MATCH (p:Product) FOREACH (x IN [1] | SET p.price = x)",
    "MATCH (p:Product) CALL { WITH p SET p.price = 0 } RETURN p",
    "WITH 1 AS set MATCH (p:Product) SET p.price = set",
    "MATCH (p:Product) WITH p SET p.price = 0",
]
SEVERAL = ["MATCH (p:Product) RETURN p.product_id; MATCH (p:Product) DELETE p", "RETURN 1; RETURN 2"]


@pytest.mark.parametrize("query", WRITES)
def test_writes_are_refused(store: GraphStore, query: str) -> None:
    with pytest.raises(WriteRefused) as info:
        run_cypher(store, query)
    assert info.value.status == 403 and "read-only" in str(info.value)
    assert store.stats()["nodes"] == EXPECTED_COUNTS["nodes"]
    assert store.product("tent")["price"] == 129.0


@pytest.mark.parametrize("query", SEVERAL)
def test_one_statement_at_a_time(store: GraphStore, query: str) -> None:
    with pytest.raises(CypherError, match="one statement"):
        run_cypher(store, query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("RETURN 1 AS set", [{"set": 1}]),
        ("RETURN 'CREATE (n) SET n.x = 1' AS text", [{"text": "CREATE (n) SET n.x = 1"}]),
        ("// DELETE everything\nRETURN 2 AS n /* SET n = 3 */", [{"n": 2}]),
        ("MATCH (set:Product {product_id: 'tent'}) RETURN set.price AS delete", [{"delete": 129.0}]),
        ("WITH 5 AS merge RETURN merge + 1 AS n", [{"n": 6}]),
        (
            "MATCH (p:Product) WHERE p.title CONTAINS 'Pro' RETURN p.product_id AS id;",
            [{"id": "phone-a-pro"}],
        ),
    ],
)
def test_write_words_as_names_or_data_are_fine(store: GraphStore, query: str, expected: list) -> None:
    """The false positives of a plain keyword search: aliases, variables, strings, comments, map keys."""
    assert run_cypher(store, query).records() == expected


def test_read_only_procedures_may_be_called(store: GraphStore) -> None:
    rows = run_cypher(store, "CALL show_tables() RETURN name ORDER BY name").records()
    assert {"name": "Product"} in rows and {"name": "COMPLEMENT"} in rows


def test_tokenizer() -> None:
    kinds = [
        (t.kind, t.text) for t in tokens("MATCH (n:`Odd Label`) WHERE n.x = $p AND n.s = 'a\\'b' RETURN n")
    ]
    assert ("ident", "`Odd Label`") in kinds and ("param", "$p") in kinds and ("string", "'a\\'b'") in kinds
    assert parameters("MATCH (n {id: $id}) WHERE n.t = '$notaparam' // $nor\nRETURN $k") == {"id", "k"}
    refuse_writes("MATCH (n)-[:SET]->(m:Delete) RETURN n.create, m {.merge, x: 1}")
    refuse_writes("RETURN {create: 1, drop: 'x'} AS m")  # map keys (Neo4j; LadybugDB's parser refuses them)
    with pytest.raises(CypherError, match="empty"):
        refuse_writes("  // only a comment")


# ----------------------------------------------------------------------------- answers
def test_columns_rows_and_records(store: GraphStore) -> None:
    r = run_cypher(
        store,
        "MATCH (p:Product) WHERE p.price > $min RETURN p.product_id AS id, p.price AS price "
        "ORDER BY price DESC",
        {"min": 600},
    )
    assert isinstance(r, CypherResult)
    assert r.columns == ["id", "price"]
    assert r.rows == [["phone-a-pro", 999.0], ["phone-a", 699.0], ["phone-b", 649.5]]
    assert r.records()[0] == {"id": "phone-a-pro", "price": 999.0}
    assert not r.truncated and r.elapsed_ms > 0 and r.store == "embedded"
    doc = r.to_dict()
    assert doc["row_count"] == 3 and doc["limit"] == 1000 and json.loads(json.dumps(doc)) == doc


def test_empty_answer_keeps_its_columns(store: GraphStore) -> None:
    r = run_cypher(
        store, "MATCH (p:Product) WHERE p.price > 10000 RETURN p.product_id AS id, p.title AS title"
    )
    assert r.columns == ["id", "title"] and r.rows == [] and not r.truncated


@pytest.mark.parametrize("limit", [1, 3, 6, 7, 8])
def test_row_cap_says_truncated(store: GraphStore, limit: int) -> None:
    r = run_cypher(store, "MATCH (p:Product) RETURN p.product_id AS id ORDER BY id", limit=limit)
    assert [row[0] for row in r.rows] == IDS[:limit]
    assert r.truncated is (limit < len(IDS))


def test_time_limit_interrupts_and_the_store_recovers(store: GraphStore) -> None:
    slow = "UNWIND range(1, 200000) AS x UNWIND range(1, 200000) AS y RETURN sum(x * y) AS s"
    with pytest.raises(CypherError, match="time limit"):
        run_cypher(store, slow, timeout_s=0.2)
    assert run_cypher(store, "MATCH (p:Product) RETURN count(p) AS n").rows == [[len(CATALOG)]]


def test_values_are_json_on_every_store(store: GraphStore) -> None:
    r = run_cypher(
        store,
        "MATCH (p:Product {product_id: 'film-a'})<-[r:COMPLEMENT]-(q:Product {product_id: 'case-a'}) "
        "RETURN p AS node, r AS rel, date('2024-02-29') AS d, timestamp('2024-01-02 03:04:05') AS t, "
        "interval('1 day 2 hours') AS i, 1.0 / 0 AS inf",
    )
    node, rel, d, t, i, inf = r.rows[0]
    from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS

    # every property, nulls included, then the ids a client draws with (opaque text)
    assert list(node) == ["_LABEL", *NODE_SCHEMAS["Product"].names, "_ID"]
    assert node["_LABEL"] == "Product" and node["product_id"] == "film-a" and node["brand"] is None
    # the evidence (in its Evidence node) right after its key
    assert list(rel) == ["_LABEL", *REL_SCHEMAS["COMPLEMENT"].names[2:], "evidence", "_ID", "_START", "_END"]
    assert rel["score"] == 0.5 and rel["evidence"] is None
    assert rel["_END"] == node["_ID"] and isinstance(rel["_START"], str) and rel["_START"] != node["_ID"]
    assert (d, t, i, inf) == ("2024-02-29", "2024-01-02T03:04:05", "P1DT2H", None)
    json.dumps(r.to_dict(), allow_nan=False)  # strict JSON


def test_paths_are_nodes_and_relationships(store: GraphStore) -> None:
    r = run_cypher(
        store, "MATCH path = (a:Product {product_id: 'phone-a'})-[:UPSELL*1..2]->(b:Product) RETURN path"
    )
    (path,) = r.rows[0]
    assert [n["product_id"] for n in path["_NODES"]] == ["phone-a", "phone-a-pro"]
    assert [x["_LABEL"] for x in path["_RELS"]] == ["UPSELL"] and path["_RELS"][0]["score"] == 0.7
    assert "category_id" not in path["_NODES"][0]  # only the label's own properties
    (rel,) = path["_RELS"]
    assert (rel["_START"], rel["_END"]) == (path["_NODES"][0]["_ID"], path["_NODES"][1]["_ID"])


def test_evidence_is_an_object_not_json_text(store: GraphStore) -> None:
    from test_store_contract import EVIDENCE

    r = run_cypher(
        store,
        "MATCH (:Product {product_id: 'phone-a'})-[r:COMPLEMENT]->(:Product {product_id: 'case-a'}) "
        "RETURN r, r.score AS score",
    )
    rel, score = r.rows[0]
    assert rel["evidence"] == json.loads(json.dumps(EVIDENCE)) and score == 0.9
    assert json.loads(json.dumps(r.to_dict()))["rows"][0][0]["evidence"]["why"] == EVIDENCE["why"]


def test_evidence_is_read_from_its_node(store: GraphStore) -> None:
    """The evidence lives in Evidence nodes (docs/schema.md): an analyst looks it up by the
    relationship's key; relationships in paths get it too; ``r.evidence`` says where it went."""
    from test_store_contract import EVIDENCE

    r = run_cypher(
        store,
        "MATCH (:Product {product_id: 'phone-a'})-[r:COMPLEMENT]->(q:Product) "
        "WITH q, r.evidence_id AS i MATCH (e:Evidence {evidence_id: i}) "
        "RETURN q.product_id AS id, e.evidence AS evidence, e ORDER BY id",
    )
    rows = {row[0]: row[1:] for row in r.rows}
    text, node = rows["case-a"]
    assert json.loads(text) == json.loads(json.dumps(EVIDENCE)) and node["evidence"] == json.loads(text)
    assert list(node) == ["_LABEL", "evidence_id", "evidence", "_ID"]
    path = run_cypher(
        store,
        "MATCH p = (:Product {product_id: 'phone-a'})-[:COMPLEMENT]->(:Product {product_id: 'case-a'}) RETURN p",
    ).rows[0][0]
    assert path["_RELS"][0]["evidence"] == node["evidence"]
    with pytest.raises(CypherError, match="Evidence node"):
        run_cypher(store, "MATCH ()-[r:COMPLEMENT]->() RETURN r.evidence")
    # an analyst's own map that looks like a relationship is returned as it is (it crashed the
    # worker when its key was text)
    for fake in ("{_START: 'x', evidence_id: 'abc'}", "{_START: 'x', evidence_id: 5}"):
        assert "evidence" not in run_cypher(store, f"RETURN {fake} AS m").rows[0][0]


def test_neo4j_values_carry_ids_and_evidence_objects() -> None:
    """Neo4j's nodes and relationships as the embedded store gives them: element ids as _ID, a
    relationship's _START / _END, evidence as an object (no server needed: the driver's types)."""
    from neo4j.graph import Graph, Node

    from tiein.graph.neo4j_support import _plain

    g = Graph()
    a = Node(g, "4:db:1", 1, ["Product"], {"product_id": "phone-a"})
    b = Node(g, "4:db:2", 2, ["Product"], {"product_id": "case-a"})
    rel = g.relationship_type("COMPLEMENT")(g, "5:db:9", 9, {"score": 0.9, "evidence": '{"why": "x"}'})
    rel._start_node, rel._end_node = a, b
    node, r = _plain(a), _plain(rel)
    assert node["product_id"] == "phone-a" and node["_ID"] == "4:db:1" and list(node)[-1] == "_ID"
    assert (r["_ID"], r["_START"], r["_END"]) == ("5:db:9", "4:db:1", "4:db:2")
    assert r["evidence"] == {"why": "x"} and r["score"] == 0.9


def test_iso_duration_matches_neo4j() -> None:
    import datetime as dt

    from neo4j.time import Duration

    for td in (
        dt.timedelta(0),
        dt.timedelta(days=3),
        dt.timedelta(hours=5, minutes=1),
        dt.timedelta(seconds=1.25),
        dt.timedelta(days=2, seconds=59, microseconds=5),
    ):
        neo = Duration(days=td.days, seconds=td.seconds, microseconds=td.microseconds).iso_format()
        assert iso_duration(td) == neo, td


def test_user_mistakes(store: GraphStore) -> None:
    with pytest.raises(CypherError, match=r"\$id"):
        run_cypher(store, "MATCH (p:Product {product_id: $id}) RETURN p.title")
    with pytest.raises(CypherError, match="invalid Cypher"):
        run_cypher(store, "MATCH (p:Product RETURN p")
    for bad in (0, -1, True, 100_001, 2.5):
        with pytest.raises(ConfigError, match="limit"):
            run_cypher(store, "RETURN 1", limit=bad)  # type: ignore[arg-type]
    for bad_t in (0, -1.0, float("nan"), 601):
        with pytest.raises(ConfigError, match="timeout"):
            run_cypher(store, "RETURN 1", timeout_s=bad_t)
    with pytest.raises(ConfigError, match="params"):
        run_cypher(store, "RETURN 1", ["x"])  # type: ignore[arg-type]


def test_parse_param() -> None:
    assert parse_param("n=3") == ("n", 3)
    assert parse_param('$ids=["a","b"]') == ("ids", ["a", "b"])
    assert parse_param("code=85123A") == ("code", "85123A")
    assert parse_param('code="0042"') == ("code", "0042")
    assert parse_param("title=帐篷 tent") == ("title", "帐篷 tent")
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_param("no-equals-sign")


# ----------------------------------------------------------------------------- CLI
def _tiein(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TIEIN_STORE", "TIEIN_HOME")}
    return subprocess.run(
        [sys.executable, "-m", "tiein.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_json_csv_and_refusal(store: GraphStore) -> None:
    path = str(store.path)  # type: ignore[attr-defined]
    q = "MATCH (p:Product)-[r:COMPLEMENT]->(q:Product) WHERE r.score >= $min RETURN p.product_id AS a, q.product_id AS b ORDER BY a, b"
    out = _tiein("cypher", q, "--param", "min=0.6", "--limit", "2", "--json", "--store", path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["columns"] == ["a", "b"] and doc["rows"] == [["phone-a", "case-a"], ["phone-a", "charger"]]
    assert doc["truncated"] is True  # phone-a -> film-a (0.75) and phone-b -> charger (0.6) are left out
    out = _tiein("cypher", q, "--param", "min=0.6", "--csv", "--store", path)
    assert list(csv.reader(io.StringIO(out.stdout))) == [
        ["a", "b"],
        ["phone-a", "case-a"],
        ["phone-a", "charger"],
        ["phone-a", "film-a"],
        ["phone-b", "charger"],
    ]
    out = _tiein("cypher", q, "--param", "min=0.6", "--csv", "--store", path, "--bom")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("\ufeffa,b\n")  # Excel then reads UTF-8 (Chinese titles) right
    assert _tiein("cypher", q, "--param", "min=0.6", "--bom", "--store", path).returncode == 2
    out = _tiein("cypher", "MATCH (p:Product) DETACH DELETE p", "--store", path)
    assert out.returncode == 2 and out.stderr.startswith("error: queries are read-only: DETACH")
    assert "Traceback" not in out.stderr


def test_cli_table_output(store: GraphStore, tmp_path: Path) -> None:
    out = _tiein(
        "cypher", "MATCH (b:Brand) RETURN b.name AS brand ORDER BY brand", "--store", str(store.path)
    )  # type: ignore[attr-defined]
    lines = out.stdout.splitlines()
    assert [ln.strip() for ln in lines[:4]] == ["brand", "Acme", "Bolt", "Trail"] and lines[-1].startswith(
        "(3 rows"
    )
    empty = _tiein("cypher", "RETURN 1", "--store", str(tmp_path / "nothing"))
    assert empty.returncode == 1 and "no graph has been loaded" in empty.stderr

"""A relationship table too big to ``COPY`` both ways in the memory left is stored forward only
(graph/ladybug_load.py ``plan_copy``) instead of the load being refused: every answer the same as
a store holding it both ways, directed Cypher the same, an undirected pattern over it refused
with what to write instead (docs/scale-out.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from test_snapshot_files import everything
from test_staged_load import dump, early_part
from test_store_contract import catalog

from tiein.errors import CypherError, NotEnoughMemory
from tiein.graph import ladybug_load
from tiein.graph.base import graph_delta
from tiein.graph.build import GraphTables, graph_tables
from tiein.graph.ladybug_load import (
    COPY_TEXT_FACTOR,
    FORWARD_ONLY,
    FORWARD_TEXT_FACTOR,
    SKIP_CHECK_ENV,
    plan_copy,
)
from tiein.graph.ladybug_store import EmbeddedStore
from tiein.model import GraphData


def texts(tables: GraphTables) -> dict[str, int]:
    return {name: ladybug_load._text_bytes(rows) for name, rows in tables.rels.items()}


def tight(data: GraphData) -> int:
    """Memory that holds every relationship table's COPY both ways but COMPLEMENT's (the biggest)."""
    t = texts(graph_tables(data))
    others = max(v for k, v in t.items() if k != "COMPLEMENT")
    left = max(COPY_TEXT_FACTOR * others, FORWARD_TEXT_FACTOR * t["COMPLEMENT"])
    assert left < COPY_TEXT_FACTOR * t["COMPLEMENT"]  # the catalog's complements carry the most text
    return left


def test_plan_copy_stores_forward_only_what_does_not_fit_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    t = graph_tables(catalog())
    size = texts(t)["COMPLEMENT"]
    left = tight(catalog())
    assert plan_copy(t, lambda: left) == {"COMPLEMENT"}
    assert plan_copy(t, lambda: COPY_TEXT_FACTOR * max(texts(t).values())) == frozenset()
    assert plan_copy(t, lambda: None) == frozenset()  # cannot tell: both ways
    assert plan_copy(t, lambda: left, skip=frozenset({"COMPLEMENT"})) == frozenset()
    with pytest.raises(NotEnoughMemory) as err:
        plan_copy(t, lambda: FORWARD_TEXT_FACTOR * size - 1)
    assert "COMPLEMENT relationships" in str(err.value) and "even stored forward only" in str(err.value)
    assert "Nothing was switched" in str(err.value) and err.value.status == 507
    monkeypatch.setenv(SKIP_CHECK_ENV, "1")  # the user's call: both ways, whatever the memory
    assert plan_copy(t, lambda: 0) == frozenset()


def without_storage(out: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(out))
    out["stats"]["meta"].pop(FORWARD_ONLY, None)
    return out


@pytest.fixture
def both(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "both")
    s.replace(catalog())
    yield s
    s.close()


@pytest.fixture
def forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedStore:
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    monkeypatch.setattr(ladybug_load, "available_memory", lambda: tight(catalog()))
    s = EmbeddedStore(tmp_path / "forward")
    s.replace(catalog())
    yield s
    s.close()


def rows(store: EmbeddedStore, cypher: str, params: dict[str, Any] | None = None) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in store.query(cypher, params))


def test_a_forward_only_store_answers_as_one_stored_both_ways(
    both: EmbeddedStore, forward: EmbeddedStore
) -> None:
    assert forward.stats()["meta"][FORWARD_ONLY] == ["COMPLEMENT"]
    assert FORWARD_ONLY not in both.stats()["meta"]
    assert without_storage(everything(forward)) == without_storage(everything(both))
    directed = [
        "MATCH (a:Product)-[r:COMPLEMENT]->(b:Product) RETURN a.product_id, b.product_id, r.score, r.evidence",
        "MATCH (b:Product {product_id: 'case-a'})<-[r:COMPLEMENT]-(a:Product) RETURN a.product_id, r.score",
        "MATCH (a:Product {product_id: 'phone-a'})-[:COMPLEMENT*1..2]->(b:Product) RETURN b.product_id",
        "MATCH (p:Product {product_id: 'phone-a'})-[r:CO_PURCHASED]-(q:Product) RETURN q.product_id, r.n_ab",
    ]
    for cypher in directed:
        assert rows(forward, cypher) == rows(both, cypher), cypher
    assert rows(forward, directed[0])  # not vacuous
    from tiein.api.page import NEIGHBOURS_QUERY  # the product page's link to the query page

    neighbours = [rows(s, NEIGHBOURS_QUERY, {"id": "phone-a"}) for s in (forward, both)]
    assert neighbours[0] and [json.loads(r)["r"]["_LABEL"] for r in neighbours[0]].count("COMPLEMENT") >= 1
    strip = [sorted(r.replace(json.loads(r)["r"]["_ID"], "") for r in n) for n in neighbours]
    assert strip[0] == strip[1]
    for undirected in (
        "MATCH (a:Product {product_id: 'phone-a'})-[r:COMPLEMENT]-(b) RETURN b.product_id",
        "MATCH (a:Product {product_id: 'phone-a'})-[r]-(b) RETURN b.product_id",
    ):
        with pytest.raises(CypherError, match="forward only.*give the pattern a direction"):
            forward.query(undirected)
        assert both.query(undirected)


def test_staged_and_updated_forward_only_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, both: EmbeddedStore
) -> None:
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    monkeypatch.setattr(ladybug_load, "available_memory", lambda: tight(catalog()))
    data = catalog()
    with EmbeddedStore(tmp_path / "staged") as s:
        load = s.stage(early_part(data), ("next",))
        assert load is not None
        load.finish(data)
        assert load.reloaded is None and s.stats()["meta"][FORWARD_ONLY] == ["COMPLEMENT"]
        strip = [{k: v for k, v in dump(x).items() if k != "COMPLEMENT"} for x in (s, both)]
        assert strip[0] == strip[1]
        assert without_storage(everything(s)) == without_storage(everything(both))
        # an update applied to it (a complement dropped, one rescored): as a fresh load of the result
        rel = data.relations
        keep = pc.invert(
            pc.and_(pc.equal(rel.column("kind"), "complement"), pc.equal(rel.column("dst"), "case-a"))
        )
        new_rel = rel.filter(keep)
        new = GraphData(
            data.products,
            data.co_purchased,
            data.co_viewed,
            new_rel,
            data.scenes,
            data.scene_members,
            {"v": 2},
        )
        s.apply(graph_delta(data, new))
        assert s.stats()["meta"] == {"v": 2, FORWARD_ONLY: ["COMPLEMENT"]}  # still says how it is stored
        with EmbeddedStore(tmp_path / "fresh") as fresh:
            monkeypatch.setattr(ladybug_load, "available_memory", lambda: None)
            fresh.replace(new)
            assert without_storage(everything(s)) == without_storage(everything(fresh))
            cypher = (
                "MATCH (a:Product)-[r:COMPLEMENT]->(b:Product) RETURN a.product_id, b.product_id, r.score"
            )
            assert rows(s, cypher) == rows(fresh, cypher)

"""The embedded store's load in two parts (graph/ladybug_staged.py): the tables a build knows
early are COPY-ed on a thread while it computes the rest, and the store ends exactly as after
``replace`` — same nodes, same relationships, same internal ids — or, on any failure, as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_store_contract import answers, catalog

from tiein.errors import InputError, NotEnoughMemory, StoreError
from tiein.graph import ladybug_load, ladybug_staged
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS
from tiein.graph.ladybug_staged import EARLY_STATIC, early_fits
from tiein.graph.ladybug_store import EmbeddedStore
from tiein.model import GraphData


def early_part(data: GraphData) -> GraphData:
    """What a build hands ``stage``: the products and pair edges (the very tables), the "next" rows."""
    nxt = data.relations.filter(pc.equal(data.relations.column("kind"), "next"))
    return GraphData(data.products, co_purchased=data.co_purchased, co_viewed=data.co_viewed, relations=nxt)


def dump(store: EmbeddedStore) -> dict[str, Any]:
    """Every node (with its internal id) and relationship (with its ends' ids) of the current
    generation, sorted. A relationship's own id names its table by the order the tables were
    created in, which a staged load changes (the late ones are created when they are known).
    An Evidence node's id is left out: its table is COPY-ed from several chunks (one per
    relation type at least), which LadybugDB takes in parallel, in no fixed order."""
    out: dict[str, Any] = {}
    for label in NODE_SCHEMAS:
        rows = store.query(f"MATCH (n:{label}) RETURN n")
        if label == "Evidence":
            for r in rows:
                assert r["n"].pop("_ID")
        out[label] = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    for rel in REL_SCHEMAS:
        rows = store.query(f"MATCH (a)-[r:{rel}]->(b) RETURN a, r, b")
        for r in rows:
            assert r["r"].pop("_ID")
        out[rel] = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    return out


def generations(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("gen-"))


@pytest.fixture
def plain(tmp_path: Path) -> dict[str, Any]:
    """The hand-made catalog loaded by ``replace``: what a staged load must equal."""
    with EmbeddedStore(tmp_path / "plain") as s:
        s.replace(catalog())
        return {"dump": dump(s), "answers": answers(s)}


def test_staged_load_equals_replace(tmp_path: Path, plain: dict[str, Any]) -> None:
    data = catalog()
    with EmbeddedStore(tmp_path / "staged") as s:
        load = s.stage(early_part(data), ("next",))
        assert load is not None
        load.finish(data)
        assert load.reloaded is None  # the early part was used, not loaded again
        assert load.names >= set(EARLY_STATIC) | {"NEXT_PURCHASE"} and "COMPLEMENT" not in load.names
        assert dump(s) == plain["dump"]  # node ids included: every table COPY-ed once
        assert answers(s) == plain["answers"]
        assert len(generations(s.path)) == 1
        assert not list((s.path / generations(s.path)[0]).glob(".building"))
        load.discard()  # after finish: nothing happens
        assert answers(s) == plain["answers"]
        with pytest.raises(StoreError, match="ended already"):
            load.finish(data)


def test_an_early_table_that_changed_is_loaded_again(tmp_path: Path, plain: dict[str, Any]) -> None:
    data = catalog()
    early = early_part(data)
    scores = pc.multiply(early.relations.column("score"), 2.0)
    changed = early.relations.set_column(early.relations.schema.get_field_index("score"), "score", scores)
    with EmbeddedStore(tmp_path / "s") as s:
        load = s.stage(
            GraphData(data.products, data.co_purchased, data.co_viewed, relations=changed), ("next",)
        )
        assert load is not None
        load.finish(data)
        assert load.reloaded == "NEXT_PURCHASE"
        assert dump(s) == plain["dump"]
        # products that are not the very table staged: loaded again too
        load = s.stage(early_part(catalog()), ("next",))
        assert load is not None
        load.finish(data)
        assert load.reloaded == "products" and dump(s) == plain["dump"]


def test_discarded_or_failed_loads_leave_the_previous_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmbeddedStore(tmp_path / "s") as s:
        s.replace(catalog(meta={"v": "old"}))
        before, gens = answers(s), generations(s.path)
        data = catalog(meta={"v": "new"})
        # discarded (the build failed between the two parts)
        load = s.stage(early_part(data), ("next",))
        assert load is not None
        with pytest.raises(StoreError, match="in progress"):  # the writer lock is held meanwhile
            s.replace(data)
        load.discard()
        assert answers(s) == before and generations(s.path) == gens
        # invalid data at the end: the first row at fault named, nothing switched
        load = s.stage(early_part(data), ("next",))
        assert load is not None
        bad = data.relations.set_column(
            data.relations.schema.get_field_index("evidence"),
            "evidence",
            pa.array(["oops"] * data.relations.num_rows),
        )
        with pytest.raises(InputError, match="evidence must be a JSON object"):
            load.finish(GraphData(data.products, data.co_purchased, data.co_viewed, relations=bad))
        assert answers(s) == before and generations(s.path) == gens
        # refused for memory after the early COPY: nothing switched either
        load = s.stage(early_part(data), ("next",))
        assert load is not None
        monkeypatch.setattr(ladybug_load, "available_memory", lambda: 1)
        with pytest.raises(NotEnoughMemory):
            load.finish(data)
        monkeypatch.undo()
        assert answers(s) == before and generations(s.path) == gens
        s.replace(data)  # the lock was released each time
        assert s.stats()["meta"] == {"v": "new"}


def test_a_failing_early_copy_fails_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def broken(*args: Any, **kw: Any) -> None:
        calls.append("early")
        raise StoreError("disk full")

    with EmbeddedStore(tmp_path / "s") as s:
        s.replace(catalog(meta={"v": "old"}))
        before, gens = answers(s), generations(s.path)
        monkeypatch.setattr(ladybug_staged, "build_database", broken)
        load = s.stage(early_part(catalog()), ("next",))
        assert load is not None
        with pytest.raises(StoreError, match="disk full"):
            load.finish(catalog())
        assert calls == ["early"] and answers(s) == before and generations(s.path) == gens


def test_early_fits_a_quarter_of_the_memory_left() -> None:
    data = catalog()
    early = early_part(data)
    rows = early.co_purchased.num_rows + early.co_viewed.num_rows + early.relations.num_rows
    need = ladybug_staged.EARLY_BYTES_PER_ROW * rows + ladybug_staged.EARLY_TEXT_FACTOR * (
        early.relations.column("evidence").nbytes
    )
    assert early_fits(early, lambda: 4 * need)
    assert not early_fits(early, lambda: 4 * need - 1)
    assert early_fits(early, lambda: None)  # unknown: loaded in two parts


def test_stage_returns_none_when_it_would_not_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladybug_staged, "available_memory", lambda: 1)
    with EmbeddedStore(tmp_path / "s") as s:
        assert s.stage(early_part(catalog()), ("next",)) is None
        assert not (tmp_path / "s").exists() or generations(tmp_path / "s") == []

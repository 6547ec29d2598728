"""The API's snapshot switches generations without a stall: the call that sees a rebuild starts
reading it in the background and gets the previous graph; once the new one is whole, every call
answers from it (graph/snapshot.py, ``background=True``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_store_contract import catalog

from tiein.graph.ladybug_store import EmbeddedStore
from tiein.graph.snapshot import SnapshotStore
from tiein.model import GraphData


def renamed(data: GraphData, product_id: str, title: str) -> GraphData:
    p = data.products
    titles = pc.if_else(pc.equal(p.column("product_id"), product_id), title, p.column("title"))
    return dataclasses.replace(
        data, products=p.set_column(p.schema.get_field_index("title"), "title", titles)
    )


def test_a_new_generation_is_read_aside_and_swapped(tmp_path: Path) -> None:
    writer = EmbeddedStore(tmp_path / "graph")
    writer.replace(catalog())
    first = writer.generation()
    snap = SnapshotStore(EmbeddedStore(tmp_path / "graph"), background=True)
    try:
        old = snap.product("tent")["title"]
        writer.replace(renamed(catalog(), "tent", "新帐篷 New tent"))
        assert writer.generation() != first
        # the call that notices the switch answers from the previous graph, at once
        assert snap.product("tent")["title"] == old
        assert snap.wait_reloaded(60)
        assert snap.product("tent")["title"] == "新帐篷 New tent"
        assert snap.reloads == 1 and snap.generation() == writer.generation()
        # related lists come from the same new generation
        assert snap.related("tent", "complement", 5) == writer.related("tent", "complement", 5)
    finally:
        snap.close()
        writer.close()


def test_a_failed_background_read_keeps_the_old_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = EmbeddedStore(tmp_path / "graph", snapshot_files=False)  # the server reads the store
    writer.replace(catalog())
    snap = SnapshotStore(EmbeddedStore(tmp_path / "graph"), background=True)
    try:
        old = snap.product("tent")["title"]
        calls = []

        def broken(cypher: str) -> pa.Table:
            calls.append(cypher)
            raise OSError("disk went away")

        monkeypatch.setattr(snap, "_read_table", broken)
        writer.replace(renamed(catalog(), "tent", "other"))
        assert snap.product("tent")["title"] == old
        assert snap.wait_reloaded(60) and calls  # it tried, failed, and logged
        assert snap.product("tent")["title"] == old and snap.reloads == 0
        monkeypatch.undo()
        snap._next_try = 0.0  # the retry pause has passed
        snap.product("tent")
        assert snap.wait_reloaded(60)
        assert snap.product("tent")["title"] == "other"
    finally:
        snap.close()
        writer.close()

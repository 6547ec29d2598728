"""The snapshot's files beside each embedded generation (graph/snapshot_arrow.py): written once by
the first process that needs them, then memory-mapped by every other one (the workers of `tiein
serve --workers N` share one copy); a crash while writing leaves nothing half-written in use; a
damaged or copied file is never answered from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_snapshot_switch import renamed
from test_store_contract import CATALOG, answers, catalog

from tiein.graph.ladybug_store import EmbeddedStore
from tiein.graph.snapshot import SnapshotStore
from tiein.graph.snapshot_arrow import DIR_PREFIX, TABLES
from tiein.model import RELATION_KINDS

TESTS = Path(__file__).resolve().parent


def everything(s: Any) -> dict[str, Any]:
    """Every answer a client can get from the catalog, as JSON (byte-level comparison)."""
    out = answers(s)
    out["related"] = {f"{p}/{k}": rows for (p, k), rows in out["related"].items()}
    out["scenes"] = s.scenes()
    out["scene"] = {x["scene_id"]: s.scene(x["name"]) for x in out["scenes"]}
    out["summary"] = {x["scene_id"]: s.scene_summary(x["scene_id"]) for x in out["scenes"]}
    out["product_scenes"] = {p[0]: s.product_scenes(p[0]) for p in CATALOG}
    out["bundle"] = {p[0]: s.bundle_candidates(p[0], 3) for p in CATALOG}
    for b in out["bundle"].values():  # optional: the embedded store reads them in the same trip
        for c in b["complements"]:
            c.pop("scene_roles", None)
    return json.loads(json.dumps(out, sort_keys=True))


class NoReads(EmbeddedStore):
    """An embedded store whose bulk reads fail: a snapshot over it can answer only from files."""

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        raise AssertionError(f"the snapshot queried the store: {cypher[:40]}")


def files_of(snapshot_dir: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(snapshot_dir.iterdir())}


def mapped_files() -> set[str]:
    with open(f"/proc/{os.getpid()}/maps", encoding="utf-8") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    """A store loaded without the files (``snapshot_files=False``): the first snapshot writes them."""
    with EmbeddedStore(tmp_path / "graph", snapshot_files=False) as writer:
        writer.replace(catalog())
    return tmp_path / "graph"


def test_a_load_writes_its_files_before_the_switch(tmp_path: Path) -> None:
    """``replace`` and ``apply`` write the new generation's files before CURRENT names it, so a
    server opens them at the switch (no store read, no write while it serves)."""
    from tiein.graph.base import graph_delta

    with EmbeddedStore(tmp_path / "graph") as writer:
        writer.replace(catalog())
        first = writer.generation() or ""
        assert (tmp_path / "graph" / first / f"{DIR_PREFIX}{first}").is_dir()
        snap = SnapshotStore(NoReads(tmp_path / "graph"), background=True)
        try:
            assert everything(snap) == everything(writer)
            writer.apply(graph_delta(catalog(), renamed(catalog(), "tent", "new tent")))
            second = writer.generation() or ""
            assert second != first and (tmp_path / "graph" / second / f"{DIR_PREFIX}{second}").is_dir()
            assert snap.product("tent")["title"] != "new tent"  # noticed: opened in the background
            assert snap.wait_reloaded(60) and snap.reloads == 1
            assert snap.product("tent")["title"] == "new tent" and everything(snap) == everything(writer)
        finally:
            snap.close()


def test_written_once_per_generation_and_reused(graph: Path) -> None:
    plain = EmbeddedStore(graph)
    first = SnapshotStore(EmbeddedStore(graph))
    try:
        gen = plain.generation()
        assert gen is not None
        source = first.source
        assert source == graph / gen / f"{DIR_PREFIX}{gen}"
        assert sorted(p.name for p in source.iterdir()) == sorted(
            [*(f"{t}.arrow" for t in TABLES), "stats.json"]
        )
        stamps = files_of(source)
        expected = everything(plain)
        assert everything(first) == expected
        # a second snapshot opens the same files (no store query, no rewrite)
        second = SnapshotStore(NoReads(graph))
        try:
            assert second.source == source
            assert everything(second) == expected
            assert files_of(source) == stamps
        finally:
            second.close()
        # in memory (Neo4j's way, or files=False): the same answers, nothing written
        memory = SnapshotStore(EmbeddedStore(graph), files=False)
        try:
            assert memory.source is None and everything(memory) == expected
        finally:
            memory.close()
    finally:
        first.close()
        plain.close()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_the_files_are_memory_mapped_not_copied(graph: Path) -> None:
    SnapshotStore(EmbeddedStore(graph)).close()  # writes them
    before = pa.total_allocated_bytes()
    snap = SnapshotStore(NoReads(graph))
    try:
        assert snap.source is not None
        maps = mapped_files()
        assert {str(snap.source / f"{t}.arrow") for t in TABLES} <= maps
        # the columns' buffers are the mapped file's pages: Arrow allocated nothing for them
        table = snap._graph.tables["rel_complement"]  # type: ignore[union-attr]
        evidence = table.column("evidence").chunk(0).buffers()[2]
        with open(f"/proc/{os.getpid()}/maps", encoding="utf-8") as f:
            spans = [
                tuple(int(x, 16) for x in line.split()[0].split("-"))
                for line in f
                if line.rstrip().endswith("rel_complement.arrow")
            ]
        assert any(lo <= evidence.address < hi for lo, hi in spans)
        assert pa.total_allocated_bytes() - before < 4096
        assert snap.related("phone-a", "complement", 10) == EmbeddedStore(graph).related(
            "phone-a", "complement", 10
        )
    finally:
        snap.close()


def _python(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS), **env},
        timeout=120,
    )


DUMP = """
    import json, sys
    from test_snapshot_files import everything
    from tiein.graph.ladybug_store import EmbeddedStore
    from tiein.graph.snapshot import SnapshotStore
    snap = SnapshotStore(EmbeddedStore(sys.argv[1] if len(sys.argv) > 1 else {graph!r}))
    print(json.dumps({{"source": str(snap.source), "answers": everything(snap)}}))
"""


def test_a_second_process_sees_the_same_answers(graph: Path) -> None:
    snap = SnapshotStore(EmbeddedStore(graph))
    try:
        source = snap.source
        assert source is not None
        stamps = files_of(source)
        run = _python(DUMP.format(graph=str(graph)))
        assert run.returncode == 0, run.stderr
        other = json.loads(run.stdout)
        assert other["source"] == str(source)
        assert other["answers"] == everything(snap) == everything(EmbeddedStore(graph))
        assert files_of(source) == stamps  # opened, not written again
    finally:
        snap.close()


def test_a_crash_while_writing_leaves_no_half_snapshot(graph: Path) -> None:
    crash = """
        import os
        import tiein.graph.snapshot_arrow as sa
        from tiein.graph.ladybug_store import EmbeddedStore
        from tiein.graph.snapshot import SnapshotStore
        written = []
        real = sa.write_table
        def dying(path, table, metadata):
            if len(written) == 2:
                os._exit(137)  # like kill -9 in the middle of the files: no cleanup
            real(path, table, metadata)
            written.append(path)
        sa.write_table = dying
        SnapshotStore(EmbeddedStore({graph!r}))
    """
    run = _python(crash.format(graph=str(graph)))
    assert run.returncode == 137, run.stderr
    gen_dir = graph / (EmbeddedStore(graph).generation() or "")
    names = [p.name for p in gen_dir.iterdir()]
    assert not [n for n in names if n.startswith(DIR_PREFIX)]  # nothing under the final name
    (debris,) = [gen_dir / n for n in names if n.startswith(f".{DIR_PREFIX}") and n.endswith(".tmp")]
    assert len(list(debris.iterdir())) == 2  # the half-written files stayed aside
    snap = SnapshotStore(EmbeddedStore(graph))  # the next process writes them whole
    try:
        assert snap.source is not None and snap.source.parent == gen_dir
        assert everything(snap) == everything(EmbeddedStore(graph))
        assert not debris.exists()  # its writer is dead: removed
    finally:
        snap.close()


def test_damaged_files_are_not_answered_from(graph: Path) -> None:
    SnapshotStore(EmbeddedStore(graph)).close()
    gen = EmbeddedStore(graph).generation() or ""
    damaged = graph / gen / f"{DIR_PREFIX}{gen}" / "rel_complement.arrow"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    snap = SnapshotStore(EmbeddedStore(graph))
    try:
        assert snap.source is None  # read from the store into memory instead
        assert everything(snap) == everything(EmbeddedStore(graph))
    finally:
        snap.close()


def test_apply_does_not_copy_the_old_files(graph: Path) -> None:
    from tiein.graph.base import graph_delta

    SnapshotStore(EmbeddedStore(graph)).close()
    old_gen = EmbeddedStore(graph).generation() or ""
    with EmbeddedStore(graph) as writer:
        writer.apply(graph_delta(catalog(), renamed(catalog(), "tent", "new tent")))
        new_gen = writer.generation() or ""
    copied = graph / new_gen / f"{DIR_PREFIX}{old_gen}"
    assert not copied.exists()  # apply copied the database, not the old generation's snapshot
    assert (graph / old_gen / f"{DIR_PREFIX}{old_gen}").is_dir()  # kept with its generation
    snap = SnapshotStore(EmbeddedStore(graph))
    try:
        assert snap.source == graph / new_gen / f"{DIR_PREFIX}{new_gen}"
        assert snap.product("tent")["title"] == "new tent"
        assert everything(snap) == everything(EmbeddedStore(graph))
        assert not copied.exists()
    finally:
        snap.close()


def test_a_switch_opens_the_new_files_beside_the_old(graph: Path) -> None:
    snap = SnapshotStore(EmbeddedStore(graph), background=True)
    writer = EmbeddedStore(graph)
    try:
        old_graph, old_source = snap._graph, snap.source
        assert old_graph is not None and old_source is not None
        old_answers = everything(snap)
        writer.replace(renamed(catalog(), "tent", "新帐篷"))
        assert old_source.is_dir()  # the generation replaced is kept (a rollback points back at it) ...
        writer.replace(renamed(catalog(), "tent", "新帐篷"))
        assert not old_source.exists()  # ... until the next one: then it is gone from the disk ...
        assert snap.product("tent")["title"] == "2-person tent 帐篷"  # ... still answered: the previous graph
        assert snap.wait_reloaded(60) and snap.reloads == 1
        assert snap.source is not None and snap.source != old_source and snap.source.is_dir()
        assert snap.product("tent")["title"] == "新帐篷"
        assert everything(snap) == everything(writer)
        # the previous graph's mapping stays whole while someone still reads it
        assert old_graph.product(old_graph.ids["tent"])["title"] == "2-person tent 帐篷"
        kinds = {k: old_graph.span(k, old_graph.ids["phone-a"]) for k in RELATION_KINDS}
        assert kinds["complement"][1] > kinds["complement"][0]
        assert old_answers["products"]["tent"]["title"] == "2-person tent 帐篷"
        if Path("/proc/self/maps").exists():  # ... and goes with its last reference
            assert any(str(old_source) in m for m in mapped_files())
            del old_graph
            assert not any(str(old_source) in m for m in mapped_files())
    finally:
        snap.close()
        writer.close()


def test_rows_read_from_the_buffers_equal_to_pylist() -> None:
    from tiein.graph.snapshot_arrow import RowCode

    table = pa.table(
        {
            "s": pa.array(["a", None, "", "dé 帐篷", "x"]),
            "ls": pa.array(["a", "b", None, "ccc", ""], pa.large_string()),
            "f": pa.array([1.5, None, 3.0, -0.0, float("inf")]),
            "i": pa.array([1, 2, None, -(2**62), 0], pa.int64()),
            "i32": pa.array([1, None, 3, 4, 5], pa.int32()),
            "n": pa.array([None] * 5, pa.null()),
            "all_null": pa.array([None] * 5, pa.string()),
            "b": pa.array([True, None, False, True, False]),  # no fast path: the general one
        }
    )
    names = tuple(table.column_names)
    for t in (table, table.slice(1, 3), pa.concat_tables([table.slice(0, 2), table.slice(2)])):
        row = RowCode().columns(t, names).constant("kind", "complement").function()
        assert [row(i) for i in range(t.num_rows)] == [{**r, "kind": "complement"} for r in t.to_pylist()]


def _files_equal_the_store(graph: Path) -> None:
    """The files ``replace`` wrote (from the tables it loaded) hold exactly what reading the
    generation back gives: every table, row for row, and the stats."""
    from tiein.graph.snapshot import read_graph
    from tiein.graph.snapshot_arrow import open_files, snapshot_dir

    reader = EmbeddedStore(graph)
    try:
        gen = reader.generation() or ""
        written, written_stats = open_files(snapshot_dir(graph / gen, gen), gen)
        read, stats = read_graph(reader)
    finally:
        reader.close()
    assert sorted(written) == sorted(read) == sorted(TABLES)
    for name in TABLES:
        assert written[name].num_rows == read[name].num_rows, name
        assert written[name].equals(read[name]), name
    assert written_stats == json.loads(json.dumps(stats))


def test_files_written_from_the_loaded_tables_equal_the_stores_answers(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "graph") as writer:
        writer.replace(catalog())
    _files_equal_the_store(tmp_path / "graph")


def test_a_builds_files_equal_the_stores_answers(tmp_path: Path) -> None:
    """A real build (the hand-made shop: every relation kind with evidence, scenes, types)."""
    from tiein.pipeline import BuildOptions, build

    shop = TESTS / "fixtures" / "shop"
    summary = build(
        BuildOptions(catalog=shop / "catalog.csv", orders=shop / "orders.csv", home=tmp_path, min_count=2)
    )
    assert summary.relations.get("complement", 0) > 0
    _files_equal_the_store(tmp_path / "graph")

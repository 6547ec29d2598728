"""The memory the build can still take (tiein/sysmem.py: /proc/meminfo and the container's cgroup
limit, read from stand-in files here) and the embedded store's check before its ``COPY``
(graph/ladybug_load.py): a load whose heaviest relationship table cannot fit is refused before
anything is written. The refusal through ``tiein build`` (the old graph still answering) is in
tests/test_home_safety.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tiein.errors import NotEnoughMemory
from tiein.graph.build import GraphTables
from tiein.graph.ladybug_load import (
    COPY_TEXT_FACTOR,
    FORWARD_TEXT_FACTOR,
    SKIP_CHECK_ENV,
    copy_memory_need,
    plan_copy,
)
from tiein.sysmem import available_memory, cgroup_available

MEMINFO = "MemTotal:       24683784 kB\nMemFree:        10693220 kB\nMemAvailable:   23113232 kB\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_meminfo_alone_without_a_container_limit(tmp_path: Path) -> None:
    assert available_memory(MEMINFO, cgroup=None) == 23113232 * 1024
    # cgroup v1 "unlimited" (2^63 rounded to a page) and v2 "max" are no limit
    v1 = write(
        tmp_path / "v1",
        {"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "5"},
    )
    v2 = write(tmp_path / "v2", {"memory.max": "max\n", "memory.current": "123\n"})
    assert cgroup_available(v1) is None and cgroup_available(v2) is None
    assert available_memory(MEMINFO, cgroup=v1) == available_memory(MEMINFO, cgroup=v2) == 23113232 * 1024
    assert available_memory("", cgroup=None) is None  # nothing to tell: no check
    assert cgroup_available(tmp_path / "none") is None


def test_a_container_limit_below_the_machine_wins(tmp_path: Path) -> None:
    gb = 1 << 30
    v2 = write(
        tmp_path / "v2",
        {
            "memory.max": f"{4 * gb}\n",
            "memory.current": f"{3 * gb}\n",
            "memory.stat": f"anon 5\ninactive_file {gb // 2}\n",
        },
    )
    # what the group allows: limit - used + the file cache it can drop
    assert cgroup_available(v2) == gb + gb // 2
    assert available_memory(MEMINFO, cgroup=v2) == gb + gb // 2
    v1 = write(
        tmp_path / "v1",
        {
            "memory/memory.limit_in_bytes": f"{8 * gb}\n",
            "memory/memory.usage_in_bytes": f"{6 * gb}\n",
            "memory/memory.stat": f"cache 9\ntotal_inactive_file {gb}\n",
        },
    )
    assert cgroup_available(v1) == 3 * gb
    # a group over its limit has nothing left, never a negative amount
    over = write(tmp_path / "over", {"memory.max": "100\n", "memory.current": "250\n"})
    assert cgroup_available(over) == 0


def tables(evidence: dict[str, list[str]]) -> GraphTables:
    rels = {
        name: pa.table(
            {
                "src": [f"p{i}" for i in range(len(texts))],
                "dst": [f"q{i}" for i in range(len(texts))],
                "score": [1.0] * len(texts),
                "evidence": texts,
            }
        )
        for name, texts in evidence.items()
    }
    return GraphTables(nodes={}, rels=rels, meta={})


def test_the_heaviest_relationship_table_sets_the_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    t = tables({"COMPLEMENT": ["x" * 600] * 1000, "NEXT": ["y" * 300] * 1000, "UPSELL": []})
    need, table, text = copy_memory_need(t)
    # 600 kB of evidence text and its offsets; the ids are looked up, not counted
    assert table == "COMPLEMENT" and text == t.rels["COMPLEMENT"].column("evidence").nbytes
    assert 600_000 < text < 610_000 and need == COPY_TEXT_FACTOR * text
    assert plan_copy(t, available=lambda: need) == frozenset()  # fits both ways exactly
    assert plan_copy(t, available=lambda: None) == frozenset()  # cannot tell: both ways
    # not both ways: stored forward only (tests/test_forward_only.py), the lighter table both ways
    assert plan_copy(t, available=lambda: need - 1) == {"COMPLEMENT"}
    assert plan_copy(t, available=lambda: FORWARD_TEXT_FACTOR * text) == {"COMPLEMENT"}
    # each table decided on its own: NEXT forward only where its both-ways COPY does not fit
    next_text = t.rels["NEXT"].column("evidence").nbytes
    skip = frozenset({"COMPLEMENT"})
    assert plan_copy(t, available=lambda: COPY_TEXT_FACTOR * next_text - 1, skip=skip) == {"NEXT"}
    with pytest.raises(NotEnoughMemory) as err:
        plan_copy(t, available=lambda: FORWARD_TEXT_FACTOR * text - 1)
    msg = str(err.value)
    assert f"COMPLEMENT relationships carry {text / 1024:.0f} KB of evidence text" in msg
    assert "Nothing was switched" in msg and "bolt://" in msg and SKIP_CHECK_ENV in msg
    assert err.value.status == 507
    monkeypatch.setenv(SKIP_CHECK_ENV, "1")  # the user's call
    assert plan_copy(t, available=lambda: 0) == frozenset()


def test_the_heaviest_relationship_table_is_copied_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_database COPYs the node tables first, then the relationship tables heaviest first
    (most text, then most rows): LadybugDB keeps what each COPY loaded until the database closes,
    so the heaviest COPY — the one the memory check sizes — never runs on top of the others'.
    A real database; the graph it holds is the contract catalog's."""
    from test_store_contract import catalog

    from tiein.graph import ladybug_load
    from tiein.graph.build import NODE_SCHEMAS, graph_tables

    copied: list[str] = []
    load = ladybug_load._load

    def recorded(conn: Any, statement: str, params: Any, gen_dir: Path) -> Any:
        if statement.startswith("COPY "):
            copied.append(statement.split()[1])
        return load(conn, statement, params, gen_dir)

    monkeypatch.setattr(ladybug_load, "_load", recorded)
    t = graph_tables(catalog())
    evidence = t.rels["COMPLEMENT"].column("evidence")
    heavy = t.rels["COMPLEMENT"].set_column(  # the complements carry the most text by far
        t.rels["COMPLEMENT"].schema.get_field_index("evidence"),
        "evidence",
        pa.array(['{"note":"' + "x" * 5000 + '"}'] * len(evidence)),
    )
    t = GraphTables(nodes=t.nodes, rels={**t.rels, "COMPLEMENT": heavy}, meta=t.meta)
    ladybug_load.build_database(tmp_path / "db", t, 1, None)
    nodes = [n for n in copied if n in NODE_SCHEMAS]
    rels = [r for r in copied if r not in NODE_SCHEMAS]
    assert copied[: len(nodes)] == nodes and nodes == [n for n in NODE_SCHEMAS if t.nodes[n].num_rows]
    weights = [(ladybug_load._text_bytes(t.rels[r]), t.rels[r].num_rows) for r in rels]
    assert rels[0] == "COMPLEMENT" and weights == sorted(weights, reverse=True)
    assert len(rels) == sum(1 for r in t.rels.values() if r.num_rows) > 3

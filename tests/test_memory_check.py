"""The memory the build can still take (tiein/sysmem.py: /proc/meminfo and the container's cgroup
limit, read from stand-in files here) and the embedded store's check before its ``COPY``
(graph/ladybug_load.py): a load whose heaviest ``COPY`` cannot fit is refused before anything is
written. The refusal through ``tiein build`` (the old graph still answering) is in
tests/test_home_safety.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tiein.errors import NotEnoughMemory
from tiein.graph.build import GraphTables
from tiein.graph.ladybug_load import (
    NODE_TEXT_FACTOR,
    REL_BYTES_PER_ROW,
    SKIP_CHECK_ENV,
    check_copy,
    copy_memory_need,
    copy_needs,
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


def tables(evidence: dict[str, list[str]], rows: dict[str, int] | None = None) -> GraphTables:
    """Evidence nodes with these texts, and relationship tables of these sizes (no text)."""
    rels = {
        name: pa.table(
            {"src": [f"p{i}" for i in range(n)], "dst": [f"q{i}" for i in range(n)], "score": [1.0] * n}
        )
        for name, n in (rows or {}).items()
    }
    nodes = {
        label: pa.table({"evidence_id": list(range(len(texts))), "evidence": texts})
        for label, texts in evidence.items()
    }
    return GraphTables(nodes=nodes, rels=rels, meta={})


def test_the_heaviest_copy_sets_the_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    t = tables({"Evidence": ["x" * 600] * 1000}, {"CO_PURCHASED": 100, "COMPLEMENT": 0})
    text = t.nodes["Evidence"].column("evidence").nbytes  # 600 kB of text and its offsets
    assert 600_000 < text < 610_000
    assert copy_needs(t) == {"Evidence": NODE_TEXT_FACTOR * text, "CO_PURCHASED": REL_BYTES_PER_ROW * 100}
    need, table = copy_memory_need(t)
    assert table == "Evidence" and need == NODE_TEXT_FACTOR * text
    check_copy(t, available=lambda: need)  # fits exactly
    check_copy(t, available=lambda: None)  # cannot tell: loaded
    check_copy(t, available=lambda: REL_BYTES_PER_ROW * 100, skip=frozenset({"Evidence"}))
    # a relationship table of many rows, or one with text, outweighs the evidence
    heavy = tables({"Evidence": ["x" * 600] * 1000}, {"CO_PURCHASED": 5000})
    assert copy_memory_need(heavy) == (REL_BYTES_PER_ROW * 5000, "CO_PURCHASED")
    with pytest.raises(NotEnoughMemory) as err:
        check_copy(t, available=lambda: need - 1)
    msg = str(err.value)
    assert "loading its Evidence table (1,000 rows) takes about 1 MB" in msg
    assert "Nothing was switched" in msg and "bolt://" in msg and SKIP_CHECK_ENV in msg
    assert err.value.status == 507
    monkeypatch.setenv(SKIP_CHECK_ENV, "1")  # the user's call
    check_copy(t, available=lambda: 0)


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
    ladybug_load.build_database(tmp_path / "db", t, 1, None)
    nodes = [n for n in copied if n in NODE_SCHEMAS]
    rels = [r for r in copied if r not in NODE_SCHEMAS]
    assert copied[: len(nodes)] == nodes and nodes == [n for n in NODE_SCHEMAS if t.nodes[n].num_rows]
    assert "Evidence" in nodes
    weights = [(ladybug_load._text_bytes(t.rels[r]), t.rels[r].num_rows) for r in rels]
    assert weights == sorted(weights, reverse=True)
    assert len(rels) == sum(1 for r in t.rels.values() if r.num_rows) > 3

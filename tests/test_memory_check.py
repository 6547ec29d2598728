"""The memory the build can still take (tiein/sysmem.py: /proc/meminfo and the container's cgroup
limit, read from stand-in files here) and the embedded store's check before its ``COPY``
(graph/ladybug_load.py): a load whose heaviest relationship table cannot fit is refused before
anything is written. The refusal through ``tiein build`` (the old graph still answering) is in
tests/test_home_safety.py."""

from __future__ import annotations

from pathlib import Path

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

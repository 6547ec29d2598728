"""The user's memory budget (``tiein build --memory-budget 6G`` / ``TIEIN_MEMORY_BUDGET``,
tiein/sysmem.py): sizes read, the memory left computed as the budget less what the process holds,
and the embedded store keeping its load within it (a load that would not fit refused before
anything is written). The refusal through ``tiein build`` with a budget too small, and bad
budgets refused before anything runs, are in tests/test_home_safety.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_staged_load import early_part
from test_store_contract import catalog

from tiein import sysmem
from tiein.errors import ConfigError, NotEnoughMemory
from tiein.graph.build import graph_tables
from tiein.graph.ladybug_load import SKIP_CHECK_ENV, check_copy, copy_memory_need
from tiein.graph.ladybug_staged import early_fits
from tiein.graph.ladybug_store import EmbeddedStore
from tiein.sysmem import (
    BUDGET_ENV,
    available_memory,
    current_budget,
    memory_budget,
    parse_size,
    peak_memory,
    reset_peak_memory,
    resident_bytes,
)

GB = 1 << 30
MEMINFO = "MemAvailable:   23113232 kB\n"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("6G", 6 * GB),
        ("6g", 6 * GB),
        ("6 GB", 6 * GB),
        ("1.5GiB", 3 * GB // 2),
        ("800M", 800 << 20),
        ("512K", 512 << 10),
        ("2T", 2 << 40),
        ("4096", 4096),
        (" 3G ", 3 * GB),
        (".5G", GB // 2),
    ],
)
def test_sizes_are_read_in_units_of_1024(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad", ["", "G", "6X", "-1G", "0", "0.0G", "6 G B", "1e9", "six", "6G\u200b", "9" * 400]
)
def test_a_size_that_is_not_one_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_size(bad, "--memory-budget")
    assert str(err.value).startswith(f"--memory-budget {bad!r} is not a size") and "e.g. 6G" in str(err.value)


def test_the_budget_comes_from_the_build_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert current_budget() is None
    monkeypatch.setenv(BUDGET_ENV, "3G")
    assert current_budget() == 3 * GB
    with memory_budget(2 * GB) as inside:  # a build's own budget wins while it runs
        assert inside == current_budget() == 2 * GB
        with memory_budget(None) as nested:  # none given: the environment's
            assert nested == 3 * GB
        assert current_budget() == 2 * GB
    assert current_budget() == 3 * GB  # restored after
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{BUDGET_ENV} 'lots' is not a size"):
        current_budget()
    with pytest.raises(RuntimeError), memory_budget(GB):  # restored after an error too
        raise RuntimeError("boom")
    monkeypatch.delenv(BUDGET_ENV)
    assert current_budget() is None


def test_the_memory_left_is_the_budget_less_what_the_process_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    machine = 23113232 * 1024
    assert available_memory(MEMINFO, cgroup=None, resident=GB) == machine  # no budget
    assert available_memory(MEMINFO, cgroup=None, budget=6 * GB, resident=2 * GB) == 4 * GB
    # a budget above what the machine has left does not add memory
    assert available_memory(MEMINFO, cgroup=None, budget=64 * GB, resident=2 * GB) == machine
    # holding more than the budget already: nothing left
    assert available_memory(MEMINFO, cgroup=None, budget=GB, resident=2 * GB) == 0
    # the budget alone, where the machine's free memory cannot be read
    assert available_memory("", cgroup=None, budget=6 * GB, resident=GB) == 5 * GB
    with memory_budget(6 * GB):  # the one in force, and this process's real resident memory
        held = resident_bytes()
        assert held is not None and 10 << 20 < held < 6 * GB
        left = available_memory(MEMINFO, cgroup=None)
        assert left is not None and 6 * GB - held - (64 << 20) <= left <= 6 * GB - held + (64 << 20)


def test_resident_and_peak_memory_of_this_process() -> None:
    assert resident_bytes("1000 250 3 4 5 6 7") == 250 * sysmem.os.sysconf("SC_PAGE_SIZE")
    assert resident_bytes("") is None and resident_bytes("1 x") is None
    assert peak_memory("VmHWM:\t  2048 kB\n") == 2 << 20 and peak_memory("") is None
    reset_peak_memory()
    base = peak_memory()
    assert base is not None and base >= (resident_bytes() or 0) // 2
    block = bytearray(b"\x01") * (256 << 20)  # written: 256 MB resident
    assert (peak_memory() or 0) >= base + (200 << 20)
    del block
    reset_peak_memory()  # counted afresh: the block is gone from the peak
    after = peak_memory()
    assert after is not None and after < base + (200 << 20)


def test_the_store_keeps_its_load_within_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real check (tiein.sysmem.available_memory through check_copy) with a budget: the budget
    less what the process holds, which a double fixes here so that the test does not depend on
    this process's size. A budget that leaves the heaviest COPY room loads the graph; one that
    does not refuses before anything is written, and the graph before it still answers."""
    monkeypatch.delenv(SKIP_CHECK_ENV, raising=False)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    held = 3 * GB
    monkeypatch.setattr(sysmem, "resident_bytes", lambda: held)
    data = catalog()
    need, _ = copy_memory_need(graph_tables(data))
    store = EmbeddedStore(tmp_path / "budget")
    with memory_budget(held + need):
        check_copy(graph_tables(data))
        store.replace(data)
        within = store.related("phone-a", "complement", 10)
    assert [r["product_id"] for r in within] == ["case-a", "charger", "film-a"]
    with memory_budget(held + need - 1):
        with pytest.raises(NotEnoughMemory) as err:
            store.replace(catalog())
    assert store.related("phone-a", "complement", 10) == within  # the graph before still answers
    store.close()
    msg = str(err.value)
    assert "within the memory budget of 3.0 GB" in msg and f"raise --memory-budget / {BUDGET_ENV}" in msg


def test_the_early_part_is_loaded_beside_the_last_steps_only_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-part load (graph/ladybug_staged.py) asks the same memory left: a budget that leaves
    less than its estimate loads the graph in one part at the end instead."""
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    held = 3 * GB
    monkeypatch.setattr(sysmem, "resident_bytes", lambda: held)
    early = early_part(catalog())
    assert early_fits(early)  # the machine's free memory holds it
    with memory_budget(held + 1024), EmbeddedStore(tmp_path / "s") as store:
        assert not early_fits(early)
        assert store.stage(early, ("next",)) is None  # the build then loads it all at the end
    with memory_budget(held + 64 * GB), EmbeddedStore(tmp_path / "t") as store:
        load = store.stage(early, ("next",))
        assert load is not None
        load.discard()


def test_the_build_summary_line_reports_the_peak_against_the_budget() -> None:
    from tiein.cli.base import _memory_line

    assert _memory_line({}) == ""
    assert _memory_line({"peak": 3 * GB // 2, "budget": None}) == "peak 1.5 GB"
    within = _memory_line({"peak": 3 * GB, "budget": 4 * GB, "embedding_peak": GB // 2})
    assert within == "peak 3.0 GB · budget 4.0 GB · embedding worker 0.5 GB"
    over = _memory_line({"peak": 5 * GB, "budget": 4 * GB})
    assert over.startswith("peak 5.0 GB · budget 4.0 GB (exceeded: the steps before the store")


BIG_BLOCKS = """
import sys
from contextlib import nullcontext
import numpy as np
from tiein.sysmem import big_blocks_mapped, resident_bytes

warm = np.ones(1 << 20)
del warm  # an 8 MiB block mapped and freed: glibc's threshold grows past it (as in any build)
with big_blocks_mapped() if sys.argv[1] == "mapped" else nullcontext(None) as ok:
    big = np.ones(1 << 20)  # 8 MiB, written
    after = np.ones((1 << 17) - 1024)  # just under 1 MiB: from the heap, after it
    held = resident_bytes()
    del big
    print(ok, held - resident_bytes())
"""


def test_big_blocks_go_back_to_the_system_when_freed() -> None:
    """Within ``big_blocks_mapped`` (a build, an update) a freed 8 MiB array leaves the RSS at
    once, though a block allocated after it is still held; by default glibc, its threshold
    grown past 8 MiB, puts it in its heap and keeps it there (each in a fresh process)."""

    def given_back(how: str) -> tuple[str, int]:
        cmd = [sys.executable, "-c", BIG_BLOCKS, how]
        ok, freed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        return ok, int(freed)

    mapped_ok, mapped = given_back("mapped")
    if mapped_ok != "True":
        pytest.skip("not glibc: mallopt unavailable")
    assert given_back("default")[1] < 1 << 20  # the default keeps it: the test tells them apart
    assert mapped >= 7 << 20


def test_small_pages_turn_numpy_huge_pages_off_and_back_on() -> None:
    """``small_pages`` (a build, an update, mine_pairs) switches numpy's huge-page advice off for
    its block and back to what it was after, also when the block fails."""
    from numpy._core.multiarray import _set_madvise_hugepage as flip  # returns the old setting

    before = flip(True)
    try:
        with sysmem.small_pages():
            assert flip(False) is False  # off inside
        assert flip(True) is True  # on again after
        with pytest.raises(RuntimeError), sysmem.small_pages():
            raise RuntimeError("a failing step")
        assert flip(True) is True
    finally:
        flip(before)

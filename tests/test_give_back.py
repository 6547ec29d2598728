"""tiein.stages.give_back_memory: memory a build step freed leaves the process's RSS."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tiein import stages


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


@pytest.mark.skipif(not sys.platform.startswith("linux") or stages._TRIM is None, reason="glibc only")
def test_freed_heap_goes_back_to_the_system() -> None:
    # 2 kB blocks come from glibc's heap; freed, they stay in the RSS until the heap is trimmed
    blocks = [bytes(2000) + bytes([i % 256]) for i in range(200_000)]
    last = blocks[-1]  # a live block above the freed ones: the heap cannot just shrink from the top
    held = _rss_mb()
    del blocks
    freed = _rss_mb()
    stages.give_back_memory()
    after = _rss_mb()
    assert len(last) == 2001
    assert freed > held - 100  # freeing alone returned (almost) nothing
    assert after < freed - 300  # ~400 MB of blocks: most of it is back


def test_each_timed_step_gives_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(stages, "give_back_memory", lambda **kw: calls.append(f"gave back {kw}"))
    timer = stages._Timer()
    with timer.step("mine"):
        calls.append("mine")
    with pytest.raises(ValueError), timer.step("rank"):
        raise ValueError("a failing step gives back too")
    # without a cycle collection: it costs ~0.25 s once torch is loaded, ~3 s a build over 14 steps
    assert calls == ["mine", "gave back {}", "gave back {}"] and set(timer.seconds) == {"mine", "rank"}


def test_the_inputs_are_not_held_through_the_store_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build takes what its summary needs of the read files (counts, the demo's top products)
    before the store load and lets them go: no Loaded (the orders: 16M lines ~0.7 GB) is alive
    while the store loads, the step that peaks; the summary still says it all."""
    import gc

    from tiein.graph.ladybug_store import EmbeddedStore
    from tiein.loaders.load import Loaded
    from tiein.options import BuildOptions
    from tiein.pipeline import build

    alive: list[int] = []
    replace = EmbeddedStore.replace

    def watched(self: EmbeddedStore, *args: Any, **kwargs: Any) -> None:
        gc.collect()
        alive.append(sum(isinstance(o, Loaded) for o in gc.get_objects()))
        replace(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddedStore, "replace", watched)
    monkeypatch.setattr(EmbeddedStore, "stage", lambda *a, **k: None)  # the whole load in replace
    shop = Path(__file__).parent / "fixtures" / "shop"
    summary = build(
        BuildOptions(
            catalog=shop / "catalog.csv", orders=shop / "orders.csv", home=tmp_path, embeddings=False
        )
    )
    assert alive == [0]
    assert summary.counts["order_lines"] > 0 and summary.relations and summary.load_report


def test_the_pair_counts_are_written_then_let_go_after_mining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unfiltered pair counts (what an update merges, tiein/state.py) go into the new
    generation's state right after mining and are let go: no PairCounts is alive when the
    relations are classified, and the state holds counts equal to a fresh count of the orders."""
    import gc

    import numpy as np

    from tiein import stages as st
    from tiein.home import gen_dir, read_pointer
    from tiein.mining import PairCounts
    from tiein.options import BuildOptions
    from tiein.pipeline import build
    from tiein.state import load_state

    alive: list[int] = []
    classify = st.classify

    def watched(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive.append(sum(isinstance(o, PairCounts) for o in gc.get_objects()))
        return classify(*args, **kwargs)

    monkeypatch.setattr(st, "classify", watched)
    shop = Path(__file__).parent / "fixtures" / "shop"
    build(
        BuildOptions(
            catalog=shop / "catalog.csv", orders=shop / "orders.csv", home=tmp_path, embeddings=False
        )
    )
    assert alive == [0]
    current = read_pointer(tmp_path).current
    assert current is not None and gen_dir(tmp_path, current).is_dir()
    assert not list((tmp_path / "gens").glob(".tmp-*"))  # the early state directory was committed
    state = load_state(tmp_path)
    assert state.counts_orders.n > 0 and len(state.counts_orders.co_keys) > 0
    assert state.build["returning_customers"] == state.counts_orders.returning_customers
    assert np.array_equal(state.counts_views.co_keys, np.zeros(0, np.uint64))


def test_the_pair_statistics_and_candidate_features_are_let_go_before_the_season_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classification and season steps are the build's peaks: the pair statistics (handed to
    the later steps, tiein.basket_pairs.Handed: gone once the pair edges are made beside the
    ranker's fit) and the candidates' features (a job's result, handed over when read) are no
    longer alive when they run (4M lines: ~1.3 GB between them)."""
    import gc
    import weakref

    from tiein import stages as st
    from tiein.options import BuildOptions
    from tiein.pipeline import build

    refs: list[weakref.ref[Any]] = []  # the features (made first, on their thread), then the pairs
    top_pairs, features, season = st.top_pairs, st._classify_features, st.season_evidence

    def watched_pairs(pairs: Any, k: int) -> Any:
        refs.append(weakref.ref(pairs))  # the pair statistics themselves
        return top_pairs(pairs, k)

    def watched_features(*args: Any, **kwargs: Any) -> Any:
        out = features(*args, **kwargs)
        refs.extend(weakref.ref(t) for t in out)
        return out

    alive: list[list[bool]] = []
    types = st.type_complements

    def watched_types(*args: Any, **kwargs: Any) -> Any:  # right after classification
        gc.collect()
        alive.append([r() is not None for r in refs])
        return types(*args, **kwargs)

    def watched_season(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive.append([r() is not None for r in refs])
        return season(*args, **kwargs)

    monkeypatch.setattr(st, "top_pairs", watched_pairs)
    monkeypatch.setattr(st, "_classify_features", watched_features)
    monkeypatch.setattr(st, "season_evidence", watched_season)
    monkeypatch.setattr(st, "type_complements", watched_types)
    shop = Path(__file__).parent / "fixtures" / "shop"
    summary = build(
        BuildOptions(
            catalog=shop / "catalog.csv", orders=shop / "orders.csv", home=tmp_path, embeddings=False
        )
    )
    assert len(refs) == 3 and alive == [[False, False, False], [False, False, False]]
    assert summary.counts["co_purchase_pairs"] > 0 and summary.relations.get("complement")

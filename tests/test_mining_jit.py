"""The compiled pair-counting kernels (tiein/mining/jit.py) against plain Python counting."""

from __future__ import annotations

import itertools
import mmap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tiein.mining.jit as mining_jit
import tiein.mining.kernels as mining
from tiein.jit import Scratch
from tiein.mining.jit import (
    frequent_pair_counts,
    group_lines,
    group_ranges,
    pair_bound,
    pair_counts,
    range_pair_counts,
)
from tiein.mining.jit_keys import unordered_keys


def baskets_of(seed: int, n_items: int, n_baskets: int, max_size: int) -> list[list[int]]:
    """Random baskets (sorted, distinct codes), some of them holding many products, with a
    few products bought everywhere (dense rows) and codes spread over many bitmap words."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_baskets):
        size = int(rng.integers(0, max_size + 1))
        hot = rng.integers(0, min(n_items, 5), size=size // 3)
        rest = rng.integers(0, n_items, size=size - hot.size)
        out.append(sorted(set(hot.tolist()) | set(rest.tolist())))
    return out


def lines_of(baskets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lines sorted by basket, then product, and the products after each line in its basket."""
    item = np.array([p for b in baskets for p in b], np.int32)
    rem = np.array([len(b) - 1 - k for b in baskets for k in range(len(b))], np.int64)
    return item, rem


def brute(baskets: list[list[int]]) -> Counter[tuple[int, int]]:
    return Counter(pair for b in baskets for pair in itertools.combinations(b, 2))


@pytest.mark.parametrize(
    ("seed", "n_items", "n_baskets", "max_size"),
    # 9,000 products: more than 64 words of 64 products, so several words of the touched-word bitmap
    [
        (0, 3, 10, 3),
        (1, 64, 200, 12),
        (2, 65, 200, 40),
        (3, 1000, 400, 60),
        (4, 130, 50, 130),
        (5, 9000, 300, 60),
    ],
)
def test_co_pair_counts_equal_brute_force(seed: int, n_items: int, n_baskets: int, max_size: int) -> None:
    baskets = baskets_of(seed, n_items, n_baskets, max_size)
    item, rem = lines_of(baskets)
    index = group_lines(item, rem, n_items)
    want = brute(baskets)
    shift = mining._bits(n_items)
    # the whole range at once, then in slices of products (every cut point for small catalogues)
    cuts = [0, n_items] if n_items > 70 else list(range(n_items + 1))
    for lo, hi in [(0, n_items), *zip(cuts[:-1], cuts[1:], strict=True)]:
        room = pair_bound(lo, hi, index, n_items)
        keys, counts = np.empty(room, np.uint64), np.empty(room, np.int64)
        w = pair_counts(lo, hi, index, item, shift, (keys, counts))
        got = {
            (int(k) >> shift, int(k) & ((1 << shift) - 1)): int(c)
            for k, c in zip(keys[:w], counts[:w], strict=True)
        }
        part = {p: c for p, c in want.items() if lo <= p[0] < hi}
        assert got == part
        assert keys[:w].tolist() == sorted(keys[:w].tolist())  # sorted, hence distinct
        assert w <= room


def test_group_lines_is_an_inverted_index() -> None:
    baskets = baskets_of(5, 90, 60, 20)
    item, rem = lines_of(baskets)
    head, start, end = group_lines(item, rem, 90)
    for a in range(90):
        lines = [j for j in range(item.size) if item[j] == a and rem[j] > 0]
        assert start[head[a] : head[a + 1]].tolist() == [j + 1 for j in lines]
        assert (end - start)[head[a] : head[a + 1]].tolist() == [int(rem[j]) for j in lines]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 22])
def test_co_counts_in_chunks_side_by_side(monkeypatch: pytest.MonkeyPatch, threads: int, chunk: int) -> None:
    """Many chunks counted on two threads, each in its own region, closed up in order."""
    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", chunk)
    baskets = baskets_of(6, 300, 300, 30)
    item, rem = lines_of(baskets)
    ticks: list[tuple[int, int]] = []
    with ThreadPoolExecutor(threads) as pool:
        keys, counts, total, distinct = mining._co_counts(
            item.astype(np.int64), rem, 300, pool, lambda step, d=1, t=1: ticks.append((d, t))
        )
    want = brute(baskets)
    shift = mining._bits(300)
    assert total == sum(want.values())
    assert distinct == len(want)
    assert keys.tolist() == sorted((a << shift) | b for a, b in want)
    assert counts.tolist() == [want[(int(k) >> shift, int(k) & ((1 << shift) - 1))] for k in keys]
    assert ticks[-1][0] == ticks[-1][1]  # progress ends complete


def test_scratch_hands_back_the_pages_not_kept() -> None:
    n = 64 * mmap.PAGESIZE // 8  # 64 pages of int64
    s = Scratch(n, np.int64)
    s.array[:] = 7  # every page written
    kept = s.keep(10)
    assert kept.tolist() == [7] * 10
    # the pages after the first are zero again: handed back, then mapped afresh on reading
    assert int(s.array[mmap.PAGESIZE // 8 :].max()) == 0
    assert int(s.array[: mmap.PAGESIZE // 8].min()) == 7


def ranges_of(seed: int, n_rows: int, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of random products (repeating) with random partner ranges, the row itself among
    its partners for some."""
    rng = np.random.default_rng(seed)
    item = rng.integers(0, n_items, n_rows).astype(np.int32)
    lo = rng.integers(0, n_rows, n_rows)
    hi = np.minimum(lo + rng.integers(0, 12, n_rows), n_rows)
    return item, lo, hi


def brute_ranges(item: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Counter[tuple[int, int]]:
    got: Counter[tuple[int, int]] = Counter()
    for j in range(item.size):
        for p in range(lo[j], hi[j]):
            if item[p] != item[j]:  # a partner holding the row's own product is no pair
                got[(int(item[j]), int(item[p]))] += 1
    return got


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("chunk", [3, 1 << 22])
def test_range_pair_counts_equal_brute_force(monkeypatch: pytest.MonkeyPatch, seed: int, chunk: int) -> None:
    """Partners before and after the row, the row itself in its range, products in either
    order; every pair, then only a wanted set (some of them never seen)."""
    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", chunk)
    n_items = [5, 70, 200, 1000, 9000][seed]
    item, lo, hi = ranges_of(seed, 400, n_items)
    want = brute_ranges(item, lo, hi)
    shift = mining._bits(n_items)
    index = group_ranges(item, lo, hi, n_items)
    with ThreadPoolExecutor(2) as pool:
        keys, counts = range_pair_counts(index, item, n_items, shift, pool)
        got = {
            (int(k) >> shift, int(k) & ((1 << shift) - 1)): int(c) for k, c in zip(keys, counts, strict=True)
        }
        assert got == dict(want)
        assert keys.tolist() == sorted(keys.tolist())
        rng = np.random.default_rng(seed)
        some = sorted(
            set(rng.choice(keys, size=keys.size // 3, replace=False).tolist()) | {(1 << 2 * shift) - 1}
        )
        wanted = np.array(some, np.uint64)
        k2, c2 = range_pair_counts(index, item, n_items, shift, pool, want=wanted)
    assert k2.tolist() == [k for k in some if k in set(keys.tolist())]
    assert c2.tolist() == [got[(k >> shift, k & ((1 << shift) - 1))] for k in k2.tolist()]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [3, 1 << 22])
def test_frequent_pair_counts_write_only_the_frequent_and_wanted(
    monkeypatch: pytest.MonkeyPatch, seed: int, chunk: int
) -> None:
    """Only pairs counted at least ``at_least`` times, plus the wanted keys seen (rare ones
    among them), in key order; the distinct pairs are counted whether written or not."""
    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", chunk)
    n_items = [20, 130, 1000, 9000][seed]
    baskets = baskets_of(10 + seed, n_items, 400, 30)
    item, rem = lines_of(baskets)
    every = brute(baskets)
    shift = mining._bits(n_items)
    key = {pair: (pair[0] << shift) | pair[1] for pair in every}
    at_least = max(2, int(np.median(list(every.values()))))  # about half the pairs are rare
    rare = sorted(key[p] for p, c in every.items() if c < at_least)
    assert rare and any(c >= at_least for c in every.values())  # both kinds are there
    # some rare pairs; two never seen, one of them past the last product code
    wanted = sorted(set(rare[::3]) | {(1 << 2 * shift) - 1, (1 << shift) - 1})
    index = group_lines(item, rem, n_items)
    with ThreadPoolExecutor(2) as pool:
        for want in (None, np.array(wanted, np.uint64)):
            keys, counts, seen = frequent_pair_counts(index, item, n_items, shift, pool, at_least, want=want)
            extra = set(wanted) if want is not None else set()
            expect = sorted((k, every[p]) for p, k in key.items() if every[p] >= at_least or k in extra)
            assert list(zip(keys.tolist(), counts.tolist(), strict=True)) == expect
            assert seen == len(every)


def test_group_ranges_leaves_out_rows_without_partners() -> None:
    item, lo, hi = ranges_of(9, 300, 40)
    head, start, end = group_ranges(item, lo, hi, 40)
    for a in range(40):
        rows = [j for j in range(item.size) if item[j] == a and hi[j] > lo[j]]
        assert start[head[a] : head[a + 1]].tolist() == [int(lo[j]) for j in rows]
        assert end[head[a] : head[a + 1]].tolist() == [int(hi[j]) for j in rows]


@pytest.mark.parametrize("n_items", [2, 50, 3000])
def test_unordered_keys_equal_numpy(n_items: int) -> None:
    """Directed keys as unordered keys with a direction bit, sorted: what a sort of the
    recomputed keys gives."""
    rng = np.random.default_rng(n_items)
    shift = mining._bits(n_items)
    a, b = rng.integers(0, n_items, 5000), rng.integers(0, n_items, 5000)
    keys = np.unique(((a << shift) | b)[a != b].astype(np.uint64))
    counts = rng.integers(1, 9, keys.size)
    got_k, got_c = unordered_keys(keys, counts, shift, n_items)
    x, y = keys >> np.uint64(shift), keys & np.uint64((1 << shift) - 1)
    want = (((np.minimum(x, y) << np.uint64(shift)) | np.maximum(x, y)) << np.uint64(1)) | (x > y).astype(
        np.uint64
    )
    order = np.argsort(want)
    assert got_k.tolist() == want[order].tolist()
    assert got_c.tolist() == counts[order].tolist()


def test_compiled_without_a_cache_folder_compiles_anyway() -> None:
    """numba refuses to cache a function it finds no folder for (here: no source file at all,
    as with a read-only package and no writable home); the kernel is compiled uncached instead
    of failing the import."""
    from tiein.jit import compiled

    namespace: dict[str, object] = {}
    exec("def f(x):\n    return x + 1\n", namespace)  # noqa: S102 - a function with no file
    kernel = compiled(namespace["f"])  # type: ignore[arg-type]
    assert kernel(41) == 42

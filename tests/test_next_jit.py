"""The compiled kernels of next purchase (tiein/next_purchase/jit.py) and the key search
(tiein.mining.jit.positions) against numpy written the plain way."""

from __future__ import annotations

import numpy as np
import pytest

from tiein.mining.jit_keys import positions
from tiein.next_purchase.jit import matched, slot_counts


def matched_numpy(
    weeks: np.ndarray,
    new: np.ndarray,
    risk: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    count: np.ndarray,
    risk_share: np.ndarray,
    prior: float,
) -> np.ndarray:
    """The time-matched expectation as whole arrays of candidates x weeks (what the kernel
    replaced; ``[product, week]`` matrices)."""
    na = weeks[src]
    share = risk_share[:, None]
    at_risk = na.sum(axis=1) * risk_share
    own = np.where(at_risk > 0, count / np.maximum(at_risk, 1e-12), 0.0)[:, None]
    ctrl_risk = np.maximum(risk[dst] - na * share, 0.0)
    ctrl_new = np.minimum(np.maximum(new[dst] - na * share * own, 0.0), ctrl_risk)
    total = ctrl_risk.sum(axis=1, keepdims=True)
    glob = np.where(total > 0, ctrl_new.sum(axis=1, keepdims=True) / np.maximum(total, 1e-12), 0.0)
    with np.errstate(invalid="ignore"):  # 0 / 0 with no prior: nan, as in the kernel
        rate = (ctrl_new + prior * glob) / (ctrl_risk + prior)
    out: np.ndarray = (na * share * rate).sum(axis=1)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_matched_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n_weeks, n = 30, 17, 500
    weeks = rng.poisson(1.0, (n_items, n_weeks)).astype(np.float64)
    weeks[3] = 0  # a product nobody was exposed to: no customers at risk
    risk = rng.poisson(6.0, (n_items, n_weeks)).astype(np.float64)
    new = np.minimum(rng.poisson(2.0, (n_items, n_weeks)), risk).astype(np.float64)
    risk[5] = 0  # no control slots at all: the global rate falls to 0
    src = rng.integers(0, n_items, n)
    dst = rng.integers(0, n_items, n)
    count = rng.integers(0, 6, n).astype(np.float64)
    share = rng.random(n)
    for prior in (0.0, 1.0, 25.0):
        got = matched(weeks, new, risk, src, dst, count, share, prior)
        want = matched_numpy(weeks, new, risk, src, dst, count, share, prior)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12, nan_ok=True)
    assert np.count_nonzero(got) > n // 2


def test_slot_counts_equal_a_loop() -> None:
    rng = np.random.default_rng(4)
    fp = rng.integers(0, 9, 300)
    x = rng.integers(0, 300, 80)
    y = np.minimum(x + rng.integers(0, 20, 80), 300)
    sw = rng.integers(0, 5, 80)
    want = np.zeros(9 * 5, np.int64)
    for i in range(80):
        for j in range(x[i], y[i]):
            want[fp[j] * 5 + sw[i]] += 1
    assert slot_counts(x, y, sw, fp, 5, 9).tolist() == want.tolist()


@pytest.mark.parametrize("n_keys", [0, 1, 3, 1000, 100_000])
def test_positions_equal_a_binary_search(n_keys: int) -> None:
    rng = np.random.default_rng(n_keys)
    keys = np.unique(rng.integers(0, 1 << 40, n_keys).astype(np.uint64))
    query = np.concatenate(
        [rng.choice(keys, 500) if keys.size else keys, rng.integers(0, 1 << 41, 500).astype(np.uint64)]
    )
    query = np.concatenate([query, np.array([0, (1 << 64) - 1], np.uint64)])
    at = np.minimum(np.searchsorted(keys, query), max(keys.size - 1, 0))
    want = np.where(
        (keys.size > 0) & (keys[at] == query) if keys.size else np.zeros(query.size, bool), at, -1
    )
    assert positions(keys, query).tolist() == want.tolist()

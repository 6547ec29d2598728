"""Re-ranking by observed performance: Thompson sampling on calibrated Beta posteriors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tiein.errors import ConfigError
from tiein.feedback.stats import FeedbackStats


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process and Python version (unlike
    ``hash()``, which is salted per process)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rerank(
    rows: Sequence[dict[str, Any]],
    stats: FeedbackStats,
    *,
    anchor_id: str,
    explore: float = 0.1,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """``rows`` (``related`` rows of one anchor: ``product_id``, ``kind``, ``score``) re-ranked by
    observed performance, best first (ties by product id). Thompson sampling (module docstring):
    ``feedback_score`` = a rate θ drawn from the pair's Beta posterior, its spread scaled by
    ``explore`` in [0, 1]. The posterior's prior mean is the kind's rate × the row's score / the
    mean score of the shown rows × the item's factor (how much better than the kind's rate the
    item sells for the *other* anchors it was shown for, smoothed with ``stats.item_strength``).
    ``seed`` makes the draw reproducible (default: from anchor and kind).

    Each returned row is a copy with ``feedback_score`` and ``feedback`` = {impressions,
    successes (of this pair), item_impressions, item_successes (other anchors), item_factor,
    rate (posterior mean), draw, metric} added; ``score`` stays the classifier's.
    """
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"explore must be between 0 and 1, got {explore!r}")
    if not rows:
        return []
    kinds = {r["kind"] for r in rows}
    out: list[dict[str, Any]] = []
    for kind in sorted(kinds):
        group = [r for r in rows if r["kind"] == kind]
        items = [r["product_id"] for r in group]
        n, s = stats.counts(anchor_id, items, kind)
        score = np.array([float(r["score"]) for r in group])
        # prior mean: the kind's rate, scaled by the row's score against the shown rows' mean score
        ref = float(score[n > 0].mean()) if (n > 0).any() else float(score.mean())
        p = stats.prior_rate(kind)
        q = np.clip(p * score / ref, 1e-6, None) if ref > 0 else np.full(score.size, p)
        # ... and by the item's factor: its smoothed rate over the other anchors / the kind's rate
        ni, si = stats.item_counts(items, kind)
        ni, si = np.maximum(ni - n, 0.0), np.maximum(si - s, 0.0)
        mi = stats.item_strength
        factor = (si + mi * p) / (ni + mi) / p if mi > 0 else np.ones(score.size)
        q = np.clip(q * factor, 1e-6, 1 - 1e-6)
        m = stats.prior_strength
        alpha, beta = m * q + s, m * (1.0 - q) + (n - s)
        mean = alpha / (alpha + beta)
        rng = np.random.default_rng(
            stable_hash(anchor_id, kind) if seed is None else [seed, stable_hash(anchor_id, kind)]
        )
        draw = rng.beta(alpha, beta)
        theta = np.clip(mean + explore * (draw - mean), 0.0, 1.0)
        for r, nj, sj, inj, isj, fj, mj, tj in zip(group, n, s, ni, si, factor, mean, theta, strict=True):
            out.append(
                {
                    **r,
                    "feedback_score": round(float(tj), 6),
                    "feedback": {
                        "metric": stats.metric,
                        "impressions": int(nj),
                        "successes": int(sj),
                        "item_impressions": int(inj),
                        "item_successes": int(isj),
                        "item_factor": round(float(fj), 6),
                        "rate": round(float(mj), 6),
                        "draw": round(float(tj), 6),
                    },
                }
            )
    out.sort(key=lambda r: (-r["feedback_score"], r["product_id"]))
    return out

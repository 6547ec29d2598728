"""Relations per customer segment (用户画像细分): country, channel, member tier, new vs returning.

The orders say which segment each order belongs to (``tiein build --map segment=COLUMN``). For
every related pair the baskets holding both are counted per segment (baskets as the miner counts
them: 2 to ``max_basket`` distinct products). A segment's *lift* for the pair is its count over
the count expected if the pair sold in that segment at its overall rate, shrunk to 1 by a prior
of ``prior`` co-purchases at the overall rate::

    expected_s = n × baskets_s / baskets          (n: the pair's co-purchases, all segments)
    lift_s     = (observed_s + prior) / (expected_s + prior)

so a small segment (few baskets, small ``expected_s``) stays close to the global answer, and a
pair that a large segment buys far more (or far less) than the rest moves up (or down) there.
Segments with fewer than ``min_baskets`` baskets get no statistics of their own: a query for
them answers globally, as for an unknown segment, and says so.

Each relation's evidence gets ``segments: {"n": n, "by": {segment: [observed, lift]}}`` for the
segments that bought the pair; a segment that never did has ``lift = prior / (expected + prior)``,
computed at query time from the segment's share of baskets (kept in the graph's meta,
:func:`segment_meta`). A query with ``segment=S`` multiplies each row's score by its lift in S
(:func:`segment_weight`) and re-ranks a pool of rows (:func:`segment_rerank`), like ``at=`` does
for seasons (tiein.season.rank).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.basket_pairs import append_evidence, basket_pairs
from tiein.errors import ConfigError

MAX_SEGMENT_NAME = 100
CLAUSE_LIFT = 1.3  # from this shrunk lift an explanation names the segment ("solo customers buy it")


@dataclass(frozen=True)
class SegmentConfig:
    """``prior``: co-purchases at the overall rate each segment's count is shrunk with;
    ``min_baskets``: a segment with fewer baskets answers globally; ``max_segments``: only the
    largest segments (by baskets) get statistics; ``strength``: exponent of the lift in the
    re-ranking; ``enabled``: False leaves relations without segment evidence."""

    enabled: bool = True
    prior: float = 10.0
    min_baskets: int = 30
    max_segments: int = 64
    strength: float = 1.0

    def __post_init__(self) -> None:
        if not self.prior > 0:
            raise ConfigError(f"segment prior must be above 0 co-purchases, got {self.prior}")
        if self.min_baskets < 1 or self.max_segments < 1:
            raise ConfigError("segment min_baskets and max_segments must be at least 1")
        if not self.strength >= 0:
            raise ConfigError(f"segment strength must be 0 or more, got {self.strength}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "prior": self.prior,
            "min_baskets": self.min_baskets,
            "max_segments": self.max_segments,
            "strength": self.strength,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SegmentConfig:
        return cls(
            enabled=bool(d.get("enabled", True)),
            prior=float(d.get("prior", 10.0)),
            min_baskets=int(d.get("min_baskets", 30)),
            max_segments=int(d.get("max_segments", 64)),
            strength=float(d.get("strength", 1.0)),
        )


def segment_evidence(
    orders: pa.Table,
    relations: pa.Table,
    cfg: SegmentConfig | None = None,
    *,
    max_basket: int,
    threads: int | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """``relations`` with ``segments`` evidence (module docstring) for every pair bought together
    in a basket of a kept segment, and the build's segment meta (:func:`segment_meta`'s
    shape plus counts). ``orders`` needs a ``segment`` column (null: no segment); without one, or
    without segments, ``relations`` as they are and an empty meta."""
    cfg = cfg or SegmentConfig()
    meta: dict[str, Any] = {"prior": cfg.prior, "strength": cfg.strength, "segments": {}, "small": []}
    if not cfg.enabled or "segment" not in orders.column_names or not relations.num_rows:
        return relations, {**meta, "pairs": 0, "with_segments": 0}
    # one segment per basket: the order's (the smallest name if an order's lines disagree)
    bp = basket_pairs(orders, relations, "min(segment)", "segment", max_basket=max_basket, threads=threads)
    sizes = Counter(str(a) for a in bp.attrs)
    baskets = len(bp.attrs)
    ranked = sorted(sizes.items(), key=lambda sn: (-sn[1], sn[0]))
    kept = [(seg, n) for seg, n in ranked if n >= cfg.min_baskets][: cfg.max_segments]
    meta["small"] = sorted(seg for seg, n in ranked if (seg, n) not in kept)
    meta["baskets"] = baskets
    meta["segments"] = {seg: {"baskets": n, "share": round(n / baskets, 6)} for seg, n in kept}
    if not kept or not len(bp.row):
        return relations, {**meta, "pairs": 0, "with_segments": 0}
    index = {seg: i for i, (seg, _) in enumerate(kept)}
    seg_of_basket = np.array([index.get(str(a), -1) for a in bp.attrs], dtype=np.int64)
    n_pairs = len(bp.ai)
    n = np.bincount(bp.pid, minlength=n_pairs).astype(np.float64)  # co-purchases, all segments
    mine = seg_of_basket[bp.j] >= 0
    obs = np.zeros((n_pairs, len(kept)), dtype=np.float64)
    np.add.at(obs, (bp.pid[mine], seg_of_basket[bp.j][mine]), 1.0)
    share = np.array([k / baskets for _, k in kept])
    lift = (obs + cfg.prior) / (n[:, None] * share[None, :] + cfg.prior)
    texts = pa.array(_segment_json([seg for seg, _ in kept], n, obs, lift), pa.string())
    row_pid = bp.row_pid
    table, with_segments = append_evidence(
        relations, bp.row, lambda lo, hi: texts.take(pa.array(row_pid[lo:hi])), "segments"
    )
    return table, {**meta, "pairs": int((n > 0).sum()), "with_segments": with_segments}


def _segment_json(names: list[str], n: np.ndarray, obs: np.ndarray, lift: np.ndarray) -> list[str | None]:
    """The ``segments`` JSON text of each pair (None for a pair no kept segment bought)."""
    out: list[str | None] = []
    counts = n.astype(np.int64).tolist()
    for i in range(len(n)):
        if counts[i] == 0:
            out.append(None)
            continue
        seen = np.nonzero(obs[i])[0]
        by = {names[j]: [int(obs[i, j]), round(float(lift[i, j]), 3)] for j in seen.tolist()}
        out.append(json.dumps({"n": counts[i], "by": by}, ensure_ascii=False, separators=(",", ":")))
    return out


# ----------------------------------------------------------------------------- query side
@dataclass(frozen=True)
class Segment:
    """A query's segment as the graph knows it: ``name`` asked; ``known``: the build kept
    statistics for it (else the answer is the global one); ``share`` of the baskets; ``prior``
    and ``strength`` of the build."""

    name: str
    known: bool
    share: float = 0.0
    prior: float = 10.0
    strength: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "known": self.known}
        if not self.known:
            out["note"] = {
                "zh": f"没有“{self.name}”人群的统计，按全部顾客回答",
                "en": f"no statistics for the segment {self.name!r}: answered for all customers",
            }
        return out


def check_segment(name: str | None) -> str | None:
    """``name`` stripped (None for None or blank); ConfigError for an over-long or control-character
    name."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise ConfigError(f"segment must be a text, got {name!r}")
    text = name.strip()
    if not text:
        return None
    if len(text) > MAX_SEGMENT_NAME or any(ord(c) < 32 for c in text):
        raise ConfigError(f"segment must be a name of at most {MAX_SEGMENT_NAME} printable characters")
    return text


def resolve_segment(name: str | None, meta: Mapping[str, Any] | None) -> Segment | None:
    """The :class:`Segment` ``name`` is in a graph whose build ``meta`` (GraphData.meta, the
    store's ``stats()["meta"]``) holds ``segments``: :func:`segment_evidence`'s report; None when
    no segment is asked.

    >>> m = {"segments": {"prior": 10.0, "segments": {"France": {"baskets": 300, "share": 0.05}}}}
    >>> resolve_segment("France", m).known, resolve_segment("Mars", m).known, resolve_segment(None, m)
    (True, False, None)
    """
    name = check_segment(name)
    if name is None:
        return None
    seg_meta = (meta or {}).get("segments") if isinstance(meta, Mapping) else None
    known = seg_meta.get("segments") if isinstance(seg_meta, Mapping) else None
    info = known.get(name) if isinstance(known, Mapping) else None
    if not isinstance(info, Mapping) or not isinstance(seg_meta, Mapping):
        return Segment(name, False)
    return Segment(
        name,
        True,
        float(info.get("share", 0.0)),
        float(seg_meta.get("prior", 10.0)),
        float(seg_meta.get("strength", 1.0)),
    )


def segment_weight(evidence: Any, segment: Segment) -> float:
    """The factor a relation's score is multiplied by for ``segment``: its shrunk lift there (to
    the power ``strength``); 1 for an unknown segment or a relation without segment evidence.

    >>> s = Segment("FR", True, share=0.1, prior=10.0)
    >>> ev = {"segments": {"n": 50, "by": {"FR": [20, 2.0]}}}
    >>> segment_weight(ev, s), round(segment_weight(ev, Segment("DE", True, 0.1, 10.0)), 3)
    (2.0, 0.667)
    """
    if not segment.known:
        return 1.0
    seg = evidence.get("segments") if isinstance(evidence, Mapping) else None
    if not isinstance(seg, Mapping):
        return 1.0
    by = seg.get("by")
    hit = by.get(segment.name) if isinstance(by, Mapping) else None
    if isinstance(hit, list) and len(hit) == 2 and isinstance(hit[1], int | float) and hit[1] > 0:
        lift = float(hit[1])
    else:
        n = seg.get("n")
        if isinstance(n, bool) or not isinstance(n, int | float) or n <= 0:
            return 1.0
        lift = segment.prior / (float(n) * segment.share + segment.prior)
    return float(lift**segment.strength)


def segment_clause(evidence: Any, segment: Segment | None) -> tuple[str, str] | None:
    """(zh, en) "法国顾客常一起买 12 单" / "often bought together by France customers (12 orders)"
    when the segment buys the pair clearly more than average (shrunk lift ≥ CLAUSE_LIFT, at least
    3 orders); None otherwise."""
    if segment is None or not segment.known:
        return None
    seg = evidence.get("segments") if isinstance(evidence, Mapping) else None
    by = seg.get("by") if isinstance(seg, Mapping) else None
    hit = by.get(segment.name) if isinstance(by, Mapping) else None
    if not (isinstance(hit, list) and len(hit) == 2 and float(hit[1]) >= CLAUSE_LIFT and int(hit[0]) >= 3):
        return None
    return (
        f"“{segment.name}”顾客常一起买（{int(hit[0])} 单）",
        f"often bought together by {segment.name} customers ({int(hit[0])} orders)",
    )


def segment_rerank(
    rows: list[dict[str, Any]], segment: Segment, *, score_key: str = "score"
) -> list[dict[str, Any]]:
    """``rows`` (best first) each with ``segment_weight`` and ``segment_score`` (``score_key`` ×
    weight) added, sorted by ``segment_score`` descending; ties keep the given order.

    >>> s = Segment("FR", True, share=0.1, prior=10.0)
    >>> rows = [{"product_id": "a", "score": 0.5, "evidence": {}},
    ...         {"product_id": "b", "score": 0.3, "evidence": {"segments": {"n": 40, "by": {"FR": [30, 2.0]}}}}]
    >>> [(r["product_id"], r["segment_score"]) for r in segment_rerank(rows, s)]
    [('b', 0.6), ('a', 0.5)]
    """
    out = []
    for r in rows:
        w = segment_weight(r.get("evidence"), segment)
        out.append({**r, "segment_weight": round(w, 6), "segment_score": round(float(r[score_key]) * w, 6)})
    order = sorted(range(len(out)), key=lambda i: (-out[i]["segment_score"], i))
    return [out[i] for i in order]


_META: dict[int, tuple[str | None, dict[str, Any]]] = {}  # id(store) -> (generation, {"segments": …})


def store_segment(store: Any, name: str | None) -> Segment | None:
    """:func:`resolve_segment` against ``store``'s build meta (read once per generation; a store
    without generations, Neo4j, is read each time). None when no segment is asked."""
    name = check_segment(name)
    if name is None:
        return None
    generation = store.generation()
    hit = _META.get(id(store))
    if hit is None or generation is None or hit[0] != generation:
        meta = (store.stats().get("meta") or {}).get("segments")
        hit = (generation, {"segments": meta} if isinstance(meta, Mapping) else {})
        _META[id(store)] = hit
    return resolve_segment(name, hit[1])


def context_rerank(rows: list[dict[str, Any]], at: Any, segment: Segment | None) -> list[dict[str, Any]]:
    """``rows`` re-ranked for a query date (tiein.season: ``season_score``) and then for a known
    segment (``segment_score``, from the season score when there is one); as they are otherwise."""
    from tiein.season import seasonal_rerank

    if at is not None:
        rows = seasonal_rerank(rows, at)
    if segment is not None and segment.known:
        rows = segment_rerank(rows, segment, score_key="season_score" if at is not None else "score")
    return rows

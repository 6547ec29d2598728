"""Pair statistics per season window for the relations a build keeps, as ``season`` evidence.

For each related pair (``next`` relations excepted: their signal is a later order, not the same
basket) the baskets holding both are counted per window (baskets as the miner counts them: 2 to
``max_basket`` distinct products, with a time). A relation src → dst weighs P(dst | src, window)
/ P(dst | src), shrunk to 1 by a prior of ``prior`` co-purchases::

    expected_w = n × src_w / src_all       (n: the pair's co-purchases; src_w: src's own baskets)
    lift_w     = (observed_w + prior) / (expected_w + prior)

so a pair seen 3 times, all in December, stays about year-round ((3 + 10) / (0.25 + 10) ≈ 1.27
when src sells evenly), one seen 26 times, 14 of them in December, is seasonal (≈ 1.97), and two
products that only ever sell in autumn are not seasonal together (src's own season is divided
out). The twelve monthly lifts are the weights a query re-ranks with
(:func:`tiein.season.rank.season_weight`); the peak window (a month, or a named window of the
calendar) with its share of the pair's co-purchases and its lift names the season (``seasonal``
when the lift reaches ``min_lift``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.basket_pairs import append_evidence, basket_pairs
from tiein.errors import ConfigError
from tiein.season.calendar import Window, month_windows


@dataclass(frozen=True)
class SeasonConfig:
    """``prior``: co-purchases at the year-round rate each window's count is shrunk with;
    ``min_lift``: the shrunk peak lift from which a relation is called seasonal; ``calendar``:
    named windows (empty: the twelve months) and ``calendar_name`` where they came from
    (a file, ``"builtin"``); ``enabled``: False leaves relations without season evidence."""

    enabled: bool = True
    prior: float = 10.0
    min_lift: float = 1.5
    calendar: tuple[Window, ...] = ()
    calendar_name: str | None = None

    def __post_init__(self) -> None:
        if not self.prior > 0:
            raise ConfigError(f"season prior must be above 0 co-purchases, got {self.prior}")
        if not self.min_lift >= 1:
            raise ConfigError(f"season min_lift must be 1 or more, got {self.min_lift}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "prior": self.prior,
            "min_lift": self.min_lift,
            "calendar": [w.to_dict() for w in self.calendar],
            "calendar_name": self.calendar_name,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeasonConfig:
        return cls(
            enabled=bool(d.get("enabled", True)),
            prior=float(d.get("prior", 10.0)),
            min_lift=float(d.get("min_lift", 1.5)),
            calendar=tuple(Window.from_dict(w) for w in d.get("calendar") or ()),
            calendar_name=d.get("calendar_name"),
        )


def shrunk_lift(observed: np.ndarray, expected: np.ndarray, prior: float) -> np.ndarray:
    """(observed + prior) / (expected + prior), element-wise: 1 where a window saw nothing.

    >>> shrunk_lift(np.array([3.0, 25.0]), np.array([0.4, 4.5]), 10.0).round(2).tolist()
    [1.25, 2.41]
    """
    return (observed + prior) / (expected + prior)


def _membership(days: list[date], windows: tuple[Window, ...]) -> Any:
    """Baskets x windows 0/1 matrix (scipy CSR) from each basket's day; windows may overlap."""
    import scipy.sparse as sp

    rows: list[int] = []
    cols: list[int] = []
    seen: dict[date, list[int]] = {}
    for j, day in enumerate(days):
        ws = seen.get(day)
        if ws is None:
            ws = seen[day] = [i for i, w in enumerate(windows) if w.contains(day)]
        rows.extend([j] * len(ws))
        cols.extend(ws)
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(days), len(windows)))


def _per_window(keys: np.ndarray, baskets: np.ndarray, n_keys: int, member: Any) -> np.ndarray:
    """Dense (n_keys x windows) counts of (key, basket) rows by the baskets' windows."""
    import scipy.sparse as sp

    hits = sp.csr_matrix(
        (np.ones(len(keys), dtype=np.float64), (keys, baskets)), shape=(n_keys, member.shape[0])
    )
    return np.asarray((hits @ member).todense())


def season_evidence(
    orders: pa.Table,
    relations: pa.Table,
    cfg: SeasonConfig | None = None,
    *,
    max_basket: int,
    threads: int | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """``relations`` with a ``season`` object added to the evidence of each relation whose pair
    was bought together in a dated basket (see the module docstring and docs/relations.md), and a
    report: {"by": "month" | "calendar", "windows", "pairs" counted, "with_season" relations,
    "seasonal" relations, "baskets" dated}. Without dated orders, ``relations`` as they are."""
    cfg = cfg or SeasonConfig()
    by = "calendar" if cfg.calendar else "month"
    report: dict[str, Any] = {"by": by, "calendar": cfg.calendar_name, "windows": len(cfg.calendar) or 12}
    nothing = {**report, "baskets": 0, "pairs": 0, "with_season": 0, "seasonal": 0}
    if not cfg.enabled or not relations.num_rows or not orders.num_rows:
        return relations, nothing
    bp = basket_pairs(
        orders, relations, "CAST(min(ts) AS DATE)", "ts", max_basket=max_basket, threads=threads
    )
    days: list[date] = bp.attrs
    if not days or not len(bp.row):
        return relations, {**nothing, "baskets": len(days)}
    ai, bi, li, lj, n_prod = bp.ai, bp.bi, bp.li, bp.lj, bp.n_prod
    pid, j = bp.pid, bp.j
    windows = cfg.calendar or month_windows()
    member_m = _membership(days, month_windows())
    member_c = _membership(days, cfg.calendar) if cfg.calendar else member_m
    obs_m = _per_window(pid, j, len(ai), member_m)
    obs_c = _per_window(pid, j, len(ai), member_c) if cfg.calendar else obs_m
    # each product's dated baskets per window: what a pair shows when only its source product
    # is seasonal (a relation's weights are P(dst | src, window) / P(dst | src))
    own_m = _per_window(li, lj, n_prod, member_m)
    own_c = _per_window(li, lj, n_prod, member_c) if cfg.calendar else own_m
    own_all = np.bincount(li, minlength=n_prod).astype(np.float64)

    row, rp = bp.row, bp.row_pid
    src_i = np.where(bp.src_is_a, ai[rp], bi[rp])
    n = obs_m.sum(axis=1)[rp]
    share_src = (n / np.maximum(own_all[src_i], 1.0))[:, None]
    lift_m = shrunk_lift(obs_m[rp], own_m[src_i] * share_src, cfg.prior)
    lift_c = shrunk_lift(obs_c[rp], own_c[src_i] * share_src, cfg.prior) if cfg.calendar else lift_m
    texts = _season_json(windows, by, n, obs_c[rp], lift_c, lift_m, cfg.min_lift)
    table, with_season = append_evidence(relations, row, texts, "season")
    n_seasonal = sum('"seasonal":true' in t for t in texts if t is not None)
    return table, {
        **report,
        "baskets": len(days),
        "pairs": int((obs_m.sum(axis=1) > 0).sum()),
        "with_season": with_season,
        "seasonal": n_seasonal,
    }


_HUNDREDTHS = pa.array(["0", *(f"{k // 10}" if k % 10 == 0 else f"{k:02d}" for k in range(1, 100))])

_SMALL = pc.binary_join_element_wise(
    pc.cast(pa.array(np.arange(10_000) // 100), pa.string()),
    _HUNDREDTHS.take(pa.array(np.arange(10_000) % 100)),
    ".",
)


def _number_rows(x: np.ndarray) -> list[str]:
    """Each row of ``x`` (2-D, values rounded to 2 decimals) as comma-separated JSON numbers,
    exactly as ``json.dumps`` writes them (``1.0``, ``0.96``, ``1.5``): from integer hundredths
    with Arrow kernels (under 100: a table lookup), 1M rows of 12 in ~0.8 s where ``json.dumps`` of
    the lists took 5.6 s.
    Values outside [0, 1e12) or not finite go through ``json.dumps``."""
    if x.shape[0] == 0:
        return []
    if not (np.isfinite(x).all() and (x >= 0).all() and (x < 1e12).all()):
        return [json.dumps(r, separators=(",", ":"))[1:-1] for r in x.tolist()]
    v = np.rint(x * 100).astype(np.int64)
    if (v < len(_SMALL)).all():  # every value under 100 (lifts): one table lookup per value
        small = [_SMALL.take(pa.array(v[:, k])) for k in range(x.shape[1])]
        return cast(list[str], pc.binary_join_element_wise(*small, ",").to_pylist())
    whole, frac = np.divmod(v, 100)
    cols = [
        pc.binary_join_element_wise(
            pc.cast(pa.array(whole[:, k]), pa.string()), _HUNDREDTHS.take(pa.array(frac[:, k])), "."
        )
        for k in range(x.shape[1])
    ]
    return cast(list[str], pc.binary_join_element_wise(*cols, ",").to_pylist())


def _season_json(
    windows: tuple[Window, ...],
    by: str,
    n: np.ndarray,
    obs: np.ndarray,
    lift: np.ndarray,
    lift_m: np.ndarray,
    min_lift: float,
) -> list[str | None]:
    """The ``season`` JSON text of each relation row (None for a pair never bought together in a
    dated basket). Built as text: ~100k relations in a fraction of a second."""
    rows = np.arange(len(n))
    peak = lift.argmax(axis=1) if len(n) else np.zeros(0, dtype=np.int64)
    share = np.round(obs[rows, peak] / np.maximum(n, 1), 3).tolist()
    peak_lift = np.round(lift[rows, peak], 3).tolist()
    months = _number_rows(np.round(lift_m, 2))
    counts = n.astype(np.int64).tolist()
    labels = [
        f'"peak":{json.dumps(w.key, ensure_ascii=False)},"peak_zh":{json.dumps(w.zh, ensure_ascii=False)},'
        f'"peak_en":{json.dumps(w.en, ensure_ascii=False)}'
        for w in windows
    ]
    spans = [json.dumps([list(s) for s in w.spans]) for w in windows]
    out: list[str | None] = []
    for i, w in enumerate(peak.tolist()):
        if counts[i] == 0:
            out.append(None)
            continue
        seasonal = peak_lift[i] >= min_lift
        extra = f',"spans":{spans[w]}' if by == "calendar" and seasonal else ""
        out.append(
            f'{{"by":"{by}",{labels[w]},"share":{share[i]!r},"lift":{peak_lift[i]!r},'
            f'"seasonal":{"true" if seasonal else "false"},"bought_together":{counts[i]},'
            f'"months":[{months[i]}]{extra}}}'
        )
    return out


def most_seasonal(relations: pa.Table, n: int = 10, kind: str = "complement") -> list[dict[str, Any]]:
    """The ``n`` relations of ``kind`` with the highest seasonal lift, one per unordered pair:
    {"src", "dst", "peak_en", "peak_zh", "share", "lift", "bought_together"}."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for s, d, k, ev in zip(
        relations.column("src").to_pylist(),
        relations.column("dst").to_pylist(),
        relations.column("kind").to_pylist(),
        relations.column("evidence").to_pylist(),
        strict=True,
    ):
        if k != kind or not ev or '"season"' not in ev:
            continue
        season = json.loads(ev).get("season") or {}
        key = (s, d) if s < d else (d, s)
        row = {
            "src": s,
            "dst": d,
            **{f: season.get(f) for f in ("peak_en", "peak_zh", "share", "lift", "bought_together")},
        }
        if key not in best or row["lift"] > best[key]["lift"]:
            best[key] = row
    return sorted(best.values(), key=lambda r: (-r["lift"], -r["bought_together"], r["src"], r["dst"]))[:n]

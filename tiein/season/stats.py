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

import functools
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.basket_pairs import Handed, append_evidence, basket_pairs
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


COUNT_ROWS = 1 << 21  # (key, basket) rows counted at a time (_per_window)


def _per_window(keys: np.ndarray, baskets: np.ndarray, n_keys: int, member: Any) -> np.ndarray:
    """Dense (n_keys x windows) counts of (key, basket) rows by the baskets' windows: one count
    per row where no basket is in two windows (months), else a sparse product (4M lines' 9.5M
    co-purchase rows: +0.08 GB where the product took +0.25 GB)."""
    import scipy.sparse as sp

    n_win = member.shape[1]
    per_basket = np.diff(member.indptr)
    if (per_basket <= 1).all():
        window = np.full(member.shape[0], -1, np.int64)
        one = per_basket == 1
        window[one] = member.indices[member.indptr[:-1][one]]
        counts = np.zeros(n_keys * n_win, np.int64)
        for start in range(0, len(keys), COUNT_ROWS):  # in slices: the flat keys stay small
            w = window[baskets[start : start + COUNT_ROWS]]
            flat = keys[start : start + COUNT_ROWS].astype(np.int64) * n_win + w
            counts += np.bincount(flat[w >= 0], minlength=n_keys * n_win)
        return counts.reshape(n_keys, n_win).astype(np.float64)
    hits = sp.csr_matrix(
        (np.ones(len(keys), dtype=np.float64), (keys, baskets)), shape=(n_keys, member.shape[0])
    )
    return np.asarray((hits @ member).todense())


def season_evidence(
    orders: pa.Table,
    relations: pa.Table | Handed,
    cfg: SeasonConfig | None = None,
    *,
    max_basket: int,
    threads: int | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """``relations`` with a ``season`` object added to the evidence of each relation whose pair
    was bought together in a dated basket (see the module docstring and docs/relations.md), and a
    report: {"by": "month" | "calendar", "windows", "pairs" counted, "with_season" relations,
    "seasonal" relations, "baskets" dated}. Without dated orders, ``relations`` as they are.
    ``relations`` :class:`~tiein.basket_pairs.Handed` over: the old evidence is let go as the new
    is written."""
    cfg = cfg or SeasonConfig()
    table = relations.table if isinstance(relations, Handed) else relations

    def unchanged() -> pa.Table:
        return relations.take() if isinstance(relations, Handed) else relations

    by = "calendar" if cfg.calendar else "month"
    report: dict[str, Any] = {"by": by, "calendar": cfg.calendar_name, "windows": len(cfg.calendar) or 12}
    nothing = {**report, "baskets": 0, "pairs": 0, "with_season": 0, "seasonal": 0}
    if not cfg.enabled or not table.num_rows or not orders.num_rows:
        return unchanged(), nothing
    bp = basket_pairs(orders, table, "CAST(min(ts) AS DATE)", "ts", max_basket=max_basket, threads=threads)
    del table  # no reference of this function's past the hand-over
    days: list[date] = bp.attrs
    if not days or not len(bp.row):
        return unchanged(), {**nothing, "baskets": len(days)}
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
    n_pair = obs_m.sum(axis=1)
    json_of = _SeasonJson(windows, by, cfg.min_lift)

    def texts_of(lo: int, hi: int) -> pa.Array:
        """The season texts of counted relations lo:hi (their lifts computed for them only)."""
        rp = bp.row_pid[lo:hi]
        src_i = np.where(bp.src_is_a[lo:hi], ai[rp], bi[rp])
        n = n_pair[rp]
        share_src = (n / np.maximum(own_all[src_i], 1.0))[:, None]
        lift_m = shrunk_lift(obs_m[rp], own_m[src_i] * share_src, cfg.prior)
        lift_c = shrunk_lift(obs_c[rp], own_c[src_i] * share_src, cfg.prior) if cfg.calendar else lift_m
        return json_of(n, obs_c[rp], lift_c, lift_m)

    out, with_season = append_evidence(relations, bp.row, texts_of, "season")
    return out, {
        **report,
        "baskets": len(days),
        "pairs": int((n_pair > 0).sum()),
        "with_season": with_season,
        "seasonal": json_of.seasonal,
    }


@functools.cache
def _decimal_table(places: int) -> tuple[pa.Array, pa.Array]:
    """(the text of each fraction 0 .. 10^places - 1 after the point, trailing zeros cut: "0"
    for 0; the text of every value k / 10^places under 100) as ``repr`` writes them."""
    scale = 10**places
    frac = pa.array(["0", *(f"{k:0{places}d}".rstrip("0") for k in range(1, scale))])
    k = np.arange(100 * scale)
    small = pc.binary_join_element_wise(
        pc.cast(pa.array(k // scale), pa.string()), frac.take(pa.array(k % scale)), "."
    )
    return frac, small


def _decimals(x: np.ndarray, places: int) -> pa.Array:
    """Each value of ``x`` (any shape, read flat), rounded to ``places`` decimals, as the text
    ``json.dumps`` (``repr``) writes: ``1.0``, ``0.96``, ``0.333``. From integer units of
    10^-places with Arrow kernels (under 100: a table lookup), 1M rows of 12 in ~0.8 s where
    ``json.dumps`` of the lists took 5.6 s. Values outside [0, 1e12) or not finite go through
    ``json.dumps``."""
    flat = np.round(np.asarray(x, dtype=np.float64).ravel(), places)
    if not (np.isfinite(flat).all() and (flat >= 0).all() and (flat < 1e12).all()):
        return pa.array([json.dumps(v) for v in flat.tolist()], pa.string())
    v = np.rint(flat * 10**places).astype(np.int64)
    frac, small = _decimal_table(places)
    if (v < len(small)).all():  # every value under 100 (lifts): one lookup per value
        return small.take(pa.array(v))
    whole, part = np.divmod(v, 10**places)
    return pc.binary_join_element_wise(pc.cast(pa.array(whole), pa.string()), frac.take(pa.array(part)), ".")


def _number_rows(x: np.ndarray, places: int = 2) -> pa.Array:
    """Each row of 2-D ``x`` as comma-separated JSON numbers (:func:`_decimals`)."""
    if x.shape[0] == 0:
        return pa.array([], pa.string())
    cols = _decimals(np.ascontiguousarray(x.T), places)  # column by column
    n = x.shape[0]
    return pc.binary_join_element_wise(*(cols.slice(k * n, n) for k in range(x.shape[1])), ",")


class _SeasonJson:
    """The ``season`` JSON text of relation rows from their co-purchases and lifts, built with
    Arrow kernels (no Python string per row); counts the seasonal ones it writes."""

    def __init__(self, windows: tuple[Window, ...], by: str, min_lift: float) -> None:
        self.min_lift = min_lift
        self.seasonal = 0
        head, tail = [], []
        for w in windows:
            labels = ",".join(
                f'"{k}":{json.dumps(v, ensure_ascii=False)}'
                for k, v in (("peak", w.key), ("peak_zh", w.zh), ("peak_en", w.en))
            )
            head.append(f'{{"by":"{by}",{labels},"share":')
            spans = (
                f',"spans":{json.dumps([list(s) for s in w.spans], separators=(",", ":"))}'
                if by == "calendar"
                else ""
            )
            tail += ["]}", f"]{spans}}}"]  # index 2 w + seasonal
        self.head, self.tail = pa.array(head), pa.array(tail)
        self.flag = pa.array([',"seasonal":false,"bought_together":', ',"seasonal":true,"bought_together":'])

    def __call__(self, n: np.ndarray, obs: np.ndarray, lift: np.ndarray, lift_m: np.ndarray) -> pa.Array:
        """Texts for rows with ``n`` co-purchases (null where 0), per-window counts ``obs`` and
        lifts ``lift`` (the peak is taken from these) and monthly lifts ``lift_m``."""
        rows = np.arange(len(n))
        peak = lift.argmax(axis=1) if len(n) else np.zeros(0, dtype=np.int64)
        peak_lift = np.round(lift[rows, peak], 3)
        seasonal = (peak_lift >= self.min_lift).astype(np.int64)
        bought = n > 0
        self.seasonal += int((seasonal.astype(bool) & bought).sum())
        text = pc.binary_join_element_wise(
            self.head.take(pa.array(peak)),
            _decimals(obs[rows, peak] / np.maximum(n, 1), 3),
            ',"lift":',
            _decimals(peak_lift, 3),
            self.flag.take(pa.array(seasonal)),
            pc.cast(pa.array(n.astype(np.int64)), pa.string()),
            ',"months":[',
            _number_rows(lift_m),
            self.tail.take(pa.array(2 * peak + seasonal)),
            "",
        )
        return pc.if_else(pa.array(bought), text, pa.scalar(None, pa.string()))


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

"""A/B statistics: deterministic assignment, intervals, p-values, the sample-ratio check and the
sample size a test needs (used by :mod:`tiein.feedback.ab`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from tiein.errors import ConfigError
from tiein.feedback.rerank import stable_hash
from tiein.feedback.stats import Z95


def assign(
    user_id: str,
    experiment: str,
    variants: Sequence[str] = ("A", "B"),
    weights: Sequence[float] | None = None,
) -> str:
    """The variant of ``user_id`` in ``experiment``: a stable hash (SHA-256, not ``hash()``) of
    both mapped to [0, 1) and cut by ``weights`` (default equal). The same user always gets the
    same variant of one experiment, and independent ones across experiments.

    >>> assign("u-1", "exp") == assign("u-1", "exp")
    True
    >>> assign("u-1", "exp", variants=("only",))
    'only'
    """
    if not variants:
        raise ConfigError("assign needs at least one variant")
    w = np.ones(len(variants)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(variants),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(
            f"weights must be {len(variants)} non-negative numbers with a positive sum, got {weights!r}"
        )
    u = stable_hash("assign", experiment, user_id) / 2.0**64
    i = int(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right"))
    return variants[min(i, len(variants) - 1)]


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson's score interval of a proportion ``successes / n`` (None, None when n = 0).

    >>> [round(x, 4) for x in wilson(5, 10)]
    [0.2366, 0.7634]
    """
    if n <= 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def ratio_ci(y: np.ndarray, x: np.ndarray, z: float = Z95) -> dict[str, float | None]:
    """``sum(y) / sum(x)`` over independent units with its normal-approximation CI by the delta
    method: ``se² = Σ(y - r·x)² / (n - 1) / (n · mean(x)²)``. With ``x = 1`` this is the mean of
    ``y`` with ``sd / √n``. Returns {"value", "se", "low", "high"} (low clipped at 0; se, low,
    high None with fewer than 2 units; all None when sum(x) = 0).

    >>> ratio_ci(np.array([1.0, 3.0]), np.array([1.0, 1.0]))["se"]   # sd 1.414 / √2
    1.0
    """
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    sx = float(x.sum())
    if x.size == 0 or sx == 0:
        return {"value": None, "se": None, "low": None, "high": None}
    r = float(y.sum()) / sx
    n = x.size
    if n < 2:
        return {"value": r, "se": None, "low": None, "high": None}
    d = y - r * x
    se = math.sqrt(float((d * d).sum()) / (n - 1) / (n * (sx / n) ** 2))
    return {"value": r, "se": se, "low": max(0.0, r - z * se), "high": r + z * se}


def lift_ci(
    b: dict[str, float | None], a: dict[str, float | None], z: float = Z95
) -> dict[str, float | None]:
    """Lift ``b / a - 1`` of two independent estimates ({"value", "se"}) with a CI by the delta
    method on ``log(b / a)``: ``se² = (se_b / b)² + (se_a / a)²``. None where undefined."""
    va, vb, sa, sb = a.get("value"), b.get("value"), a.get("se"), b.get("se")
    if not va or vb is None:
        return {"value": None, "low": None, "high": None}
    lift = vb / va - 1.0
    if not vb or sa is None or sb is None:
        return {"value": lift, "low": None, "high": None}
    se = math.sqrt((sb / vb) ** 2 + (sa / va) ** 2)
    ratio = vb / va
    return {"value": lift, "low": ratio * math.exp(-z * se) - 1.0, "high": ratio * math.exp(z * se) - 1.0}


SRM_THRESHOLD = 0.001  # a sample-ratio p-value below this flags a broken split
PRIMARY_METRICS = ("conversion", "add_on_rate", "aov")


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal ``z``.

    >>> round(normal_p(1.959963984540054), 4)
    0.05
    """
    return math.erfc(abs(z) / math.sqrt(2.0))


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with ``df`` degrees of freedom (the regularized upper incomplete
    gamma Q(df/2, x/2): series below a + 1, Lentz's continued fraction above).

    >>> round(chi2_sf(3.841458820694124, 1), 4), round(chi2_sf(5.991464547107979, 2), 4)
    (0.05, 0.05)
    """
    if df < 1:
        raise ConfigError(f"degrees of freedom must be >= 1, got {df}")
    if x <= 0:
        return 1.0
    a, y = df / 2.0, x / 2.0
    log_front = -y + a * math.log(y) - math.lgamma(a)
    if y < a + 1.0:  # P by its series, Q = 1 - P
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= y / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = y + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def parse_split(
    split: str | Sequence[float] | Mapping[str, float] | None, variants: Sequence[str]
) -> dict[str, float]:
    """The planned share of each of ``variants`` (summing to 1): None = equal; weights in the
    variants' order (``"50/50"``, ``"90/10"``, ``[0.9, 0.1]``); or per name (``"A=90,B=10"``,
    ``{"A": 0.9, "B": 0.1}``). Raises ConfigError when it does not fit the variants.

    >>> parse_split("90/10", ["A", "B"])
    {'A': 0.9, 'B': 0.1}
    >>> parse_split("B=1,A=3", ["A", "B"])
    {'A': 0.75, 'B': 0.25}
    """
    names = list(variants)
    if split is None:
        return {v: 1.0 / len(names) for v in names}
    weights: dict[str, float]
    try:
        if isinstance(split, str):
            if "=" in split:
                pairs = [p.partition("=") for p in split.replace(";", ",").split(",") if p.strip()]
                weights = {k.strip(): float(w) for k, _, w in pairs}
            else:
                parts = [float(w) for w in split.replace(":", "/").replace(",", "/").split("/") if w.strip()]
                weights = dict(zip(names, parts, strict=True))
        elif isinstance(split, Mapping):
            weights = {str(k): float(w) for k, w in split.items()}
        else:
            weights = dict(zip(names, (float(w) for w in split), strict=True))
    except ValueError:
        raise ConfigError(
            f"planned split {split!r}: give one weight per variant ({', '.join(names)}), e.g. "
            + "/".join(["50"] * len(names))
            + " or "
            + ",".join(f"{v}=1" for v in names)
        ) from None
    if set(weights) != set(names):
        raise ConfigError(
            f"planned split {split!r} names {', '.join(weights)}; the variants are {', '.join(names)}"
        )
    total = sum(weights.values())
    if not all(math.isfinite(w) and w >= 0 for w in weights.values()) or total <= 0:
        raise ConfigError(f"planned split {split!r}: weights must be non-negative with a positive sum")
    return {v: weights[v] / total for v in names}


def srm_check(observed: Mapping[str, int], planned: Mapping[str, float]) -> dict[str, Any]:
    """Sample-ratio mismatch: Pearson's chi-square of the units per variant against the planned
    shares. ``mismatch`` when p < :data:`SRM_THRESHOLD` (then the split is broken and the lifts
    are not to be trusted).

    >>> r = srm_check({"A": 5000, "B": 5000}, {"A": 0.5, "B": 0.5})
    >>> r["p_value"], r["mismatch"]
    (1.0, False)
    >>> srm_check({"A": 5300, "B": 4700}, {"A": 0.5, "B": 0.5})["mismatch"]   # chi² 36, p 2e-9
    True
    """
    total = sum(observed.values())
    expected = {v: total * planned[v] for v in observed}
    cells = [(observed[v], expected[v]) for v in observed if expected[v] > 0]
    chi2 = sum((o - e) ** 2 / e for o, e in cells)
    df = len(cells) - 1
    p = chi2_sf(chi2, df) if df >= 1 and total > 0 else None
    # a variant planned at 0 % but seen is a mismatch by itself
    stray = any(expected[v] == 0 and observed[v] > 0 for v in observed)
    return {
        "unit": "users",
        "observed": dict(observed),
        "planned": dict(planned),
        "expected": {v: round(e, 2) for v, e in expected.items()},
        "chi2": chi2,
        "df": df,
        "p_value": p,
        "threshold": SRM_THRESHOLD,
        "mismatch": stray or (p is not None and p < SRM_THRESHOLD),
    }


def needed_per_arm(
    sd_a: float, sd_b: float, delta: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Units per arm for a two-sided z-test at ``alpha`` to detect a difference ``delta`` with
    ``power``, given each arm's standard deviation per unit:
    ``n = (z[1 - alpha/2] + z[power])² (sd_a² + sd_b²) / delta²`` (None when delta is 0).

    >>> needed_per_arm(math.sqrt(0.02 * 0.98), math.sqrt(0.025 * 0.975), 0.005)   # 2 % -> 2.5 %
    13807
    """
    if not delta or not math.isfinite(delta):
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return math.ceil(z * z * (sd_a * sd_a + sd_b * sd_b) / (delta * delta))


def compare(
    b: Mapping[str, Any], a: Mapping[str, Any], n_b: int, n_a: int, *, alpha: float = 0.05, power: float = 0.8
) -> dict[str, Any]:
    """Test of a variant's estimate ``b`` ({"value", "se"}, over ``n_b`` units) against the
    control's ``a``: {"p_value", "significant", "needed_per_arm"} (module docstring); None where
    a value or its standard error is missing."""
    va, vb, sa, sb = a.get("value"), b.get("value"), a.get("se"), b.get("se")
    out: dict[str, Any] = {"p_value": None, "significant": None, "needed_per_arm": None}
    if va is None or vb is None or sa is None or sb is None:
        return out
    if va > 0 and vb > 0:
        se = math.sqrt((sb / vb) ** 2 + (sa / va) ** 2)
        z = math.log(vb / va) / se if se > 0 else (0.0 if vb == va else math.inf)
    else:
        se = math.sqrt(sa * sa + sb * sb)
        z = (vb - va) / se if se > 0 else (0.0 if vb == va else math.inf)
    p = normal_p(z) if math.isfinite(z) else 0.0
    out["p_value"], out["significant"] = p, p < alpha
    out["needed_per_arm"] = needed_per_arm(
        sa * math.sqrt(n_a), sb * math.sqrt(n_b), vb - va, alpha=alpha, power=power
    )
    return out

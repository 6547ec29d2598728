"""A/B tests: deterministic assignment, the report with 95 % intervals, and its files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

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


_USERS_SQL = """
SELECT variant, user_id,
       count(*) FILTER (WHERE event = 'impression') AS impressions,
       count(*) FILTER (WHERE event = 'click') AS clicks,
       count(*) FILTER (WHERE event = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE event = 'purchase') AS purchases
FROM ev GROUP BY ALL HAVING count(*) FILTER (WHERE event = 'impression') > 0
ORDER BY variant, user_id
"""
# One row per order of an impression-user with a valued purchase: the order amount once.
_ORDERS_SQL = """
SELECT variant, order_key, max(value) AS value FROM (
    SELECT ev.variant, coalesce('order:' || ev.order_id, 'event:' || row_number() OVER ()) AS order_key, ev.value
    FROM ev SEMI JOIN users u ON u.variant = ev.variant AND u.user_id = ev.user_id
    WHERE ev.event = 'purchase' AND ev.value IS NOT NULL
) GROUP BY ALL ORDER BY 1, 2
"""


def ab_report(
    events: pa.Table, *, experiment: str | None = None, control: str | None = None
) -> dict[str, Any]:
    """Compare the variants of ``experiment`` (None: the only experiment in ``events``; events
    without an experiment when there is none). Per variant: users with an impression, event
    counts, CTR and conversion per impression, **add-on rate** = purchases of recommended items
    per impression-user, and **AOV** = mean amount of the orders holding such a purchase (each
    order once); each with a 95 % CI (module docstring). ``lift``: every other variant against
    ``control`` (default: the first variant by name) for add-on rate, conversion and AOV.
    Purchases by users without an impression in that variant are not attributed to it.
    """
    import duckdb
    import pyarrow.compute as pc

    exps = sorted({e for e in events.column("experiment").to_pylist() if e is not None})
    if experiment is None:
        if len(exps) > 1:
            raise ConfigError(
                f"several experiments in the log, name one with --experiment: {', '.join(exps)}"
            )
        experiment = exps[0] if exps else None
    elif experiment not in exps:
        raise ConfigError(f"no events of experiment {experiment!r}; experiments: {', '.join(exps) or 'none'}")
    exp_col = events.column("experiment")
    mask = pc.is_null(exp_col) if experiment is None else pc.equal(exp_col, experiment)
    ev = events.filter(pc.and_(pc.fill_null(mask, False), pc.is_valid(events.column("variant"))))
    con = duckdb.connect()
    try:
        con.register("ev", ev)
        users = con.sql(_USERS_SQL).to_arrow_table()
        con.register("users", users)
        orders = con.sql(_ORDERS_SQL).to_arrow_table()
        multi = con.execute(
            "SELECT count(*) FROM (SELECT user_id FROM users GROUP BY user_id HAVING count(*) > 1)"
        ).fetchall()[0][0]
    finally:
        con.close()
    variants = sorted(set(users.column("variant").to_pylist()))
    if not variants:
        raise ConfigError(f"no impressions with a variant for experiment {experiment!r}: nothing to compare")
    if control is None:
        control = variants[0]
    elif control not in variants:
        raise ConfigError(f"control variant {control!r} has no impressions; variants: {', '.join(variants)}")
    u = {c: users.column(c).to_numpy() for c in ("impressions", "clicks", "add_to_carts", "purchases")}
    uv = np.asarray(users.column("variant").to_pylist(), dtype=object)
    ov = np.asarray(orders.column("variant").to_pylist(), dtype=object)
    oval = orders.column("value").to_numpy()
    rows: dict[str, dict[str, Any]] = {}
    for v in variants:
        sel, osel = uv == v, ov == v
        imp, pur, clk = u["impressions"][sel], u["purchases"][sel], u["clicks"][sel]
        rows[v] = {
            "variant": v,
            "users": int(sel.sum()),
            "impressions": int(imp.sum()),
            "clicks": int(clk.sum()),
            "add_to_carts": int(u["add_to_carts"][sel].sum()),
            "purchases": int(pur.sum()),
            "orders": int(osel.sum()),
            "ctr": ratio_ci(clk, imp),
            "conversion": ratio_ci(pur, imp),
            "add_on_rate": ratio_ci(pur, np.ones(imp.size)),
            "aov": ratio_ci(oval[osel], np.ones(int(osel.sum()))),
        }
    lifts = [
        {"variant": v, "vs": control, "metric": metric, **lift_ci(rows[v][metric], rows[control][metric])}
        for v in variants
        if v != control
        for metric in ("add_on_rate", "conversion", "aov")
    ]
    return {
        "experiment": experiment,
        "control": control,
        "ci": "95% normal approximation; ratios by the delta method over users; lift by the delta method on log(ratio)",
        "users_in_several_variants": int(multi),
        "variants": [rows[v] for v in variants],
        "lift": lifts,
    }


def write_report(report: dict[str, Any], out: Path | str) -> dict[str, Path]:
    """Write ``report`` (:func:`ab_report`) into ``out``: ``report.json``, ``report.png`` (add-on
    rate and AOV per variant with CI bars; matplotlib, Agg) and ``report.html`` (self-contained:
    the chart embedded, tables of variants and lifts). Returns {"json", "png", "html"} paths."""
    import base64
    import html

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from tiein.errors import MissingDependency

        raise MissingDependency("matplotlib", "report") from exc
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "png": out / "report.png", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    variants = report["variants"]
    names = [v["variant"] for v in variants]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
    for ax, metric, title in zip(
        axes, ("add_on_rate", "aov"), ("add-on rate (purchases per user)", "average order value"), strict=True
    ):
        vals = [v[metric]["value"] or 0.0 for v in variants]
        lo = [
            max(0.0, val - (v[metric]["low"] if v[metric]["low"] is not None else val))
            for val, v in zip(vals, variants, strict=True)
        ]
        hi = [
            (v[metric]["high"] if v[metric]["high"] is not None else val) - val
            for val, v in zip(vals, variants, strict=True)
        ]
        ax.bar(
            names,
            vals,
            yerr=[lo, hi],
            capsize=6,
            color=["#4C72B0", "#DD8452", "#55A868", "#C44E52"][: len(names)],
        )
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"experiment {report['experiment'] or '(none)'} — 95% CI", fontsize=11)
    fig.tight_layout()
    fig.savefig(paths["png"])
    plt.close(fig)

    def fmt(x: float | None, pct: bool = False) -> str:
        if x is None:
            return "–"
        return f"{x * 100:+.1f}%" if pct else f"{x:,.4g}"

    def ci(m: dict[str, Any]) -> str:
        return f"{fmt(m['value'])} [{fmt(m['low'])}, {fmt(m['high'])}]"

    head = "<tr><th>variant</th><th>users</th><th>impressions</th><th>clicks</th><th>purchases</th><th>orders</th><th>conversion</th><th>add-on rate</th><th>AOV</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(v['variant']))}</td><td>{v['users']:,}</td><td>{v['impressions']:,}</td><td>{v['clicks']:,}</td>"
        f"<td>{v['purchases']:,}</td><td>{v['orders']:,}</td><td>{ci(v['conversion'])}</td><td>{ci(v['add_on_rate'])}</td><td>{ci(v['aov'])}</td></tr>"
        for v in variants
    )
    lifts = "".join(
        f"<tr><td>{html.escape(str(x['variant']))} vs {html.escape(str(x['vs']))}</td><td>{x['metric']}</td>"
        f"<td>{fmt(x['value'], True)} [{fmt(x['low'], True)}, {fmt(x['high'], True)}]</td></tr>"
        for x in report["lift"]
    )
    png = base64.b64encode(paths["png"].read_bytes()).decode("ascii")
    title = html.escape(f"A/B report: {report['experiment'] or '(no experiment)'}")
    paths["html"].write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>{title}</h1><p>control: {html.escape(str(report["control"]))}. {html.escape(report["ci"])}.</p>
<img alt="add-on rate and AOV per variant" src="data:image/png;base64,{png}">
<table>{head}{body}</table><h2>lift</h2><table><tr><th>variants</th><th>metric</th><th>lift [95% CI]</th></tr>{lifts}</table>
</body></html>""",
        encoding="utf-8",
    )
    return paths

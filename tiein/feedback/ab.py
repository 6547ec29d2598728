"""A/B tests: deterministic assignment, the report with 95 % intervals, and its files.

The report says in plain words whether each variant beat the control on the **primary metric**
(default: conversion = purchases / impressions): the lift, its p-value and whether it is
significant at the chosen level (``alpha``, default 0.05), and, when it is not, how many users per
arm a test would need to detect a lift that size (two-sided, 80 % power). The p-value is that of
the lift's z = ln(b / a) / se, the same delta method as its confidence interval, so at alpha 0.05
a lift is significant exactly when its 95 % CI excludes 0 (a difference z-test where a rate is 0).

It also checks the **sample ratio** (SRM): a chi-square test of the users per variant against the
planned split (default equal); p < 0.001 means the assignment or the logging is broken and the
lifts should not be trusted (Kohavi et al., *Trustworthy Online Controlled Experiments*, ch. 21).
``daily`` is each variant's conversion per day in the shop's time zone, drawn as a trend.

Labels are Chinese and English (``lang``: "zh", "en" or "both"); the chart needs a CJK font
(:mod:`tiein.feedback.fonts`) and falls back to English labels when the system has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError
from tiein.feedback.ab_stats import (
    PRIMARY_METRICS,
    SRM_THRESHOLD,
    assign,
    chi2_sf,
    compare,
    lift_ci,
    needed_per_arm,
    normal_p,
    parse_split,
    ratio_ci,
    srm_check,
    wilson,
)
from tiein.loaders.events import shop_timezone

__all__ = [  # the statistics are importable from here too, as before the split
    "PRIMARY_METRICS",
    "SRM_THRESHOLD",
    "ab_report",
    "assign",
    "chi2_sf",
    "compare",
    "fmt_p",
    "fmt_value",
    "lift_ci",
    "needed_per_arm",
    "normal_p",
    "parse_split",
    "pct",
    "ratio_ci",
    "srm_check",
    "srm_text",
    "verdict",
    "wilson",
]


_USERS_SQL = """
SELECT variant, user_id,
       count(*) FILTER (WHERE event = 'impression') AS impressions,
       count(*) FILTER (WHERE event = 'click') AS clicks,
       count(*) FILTER (WHERE event = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE event = 'purchase') AS purchases
FROM ev GROUP BY ALL HAVING count(*) FILTER (WHERE event = 'impression') > 0
ORDER BY variant, user_id
"""
# Per day in the shop's zone and variant, the events of users with an impression in that variant.
_DAILY_SQL = """
SELECT ev.variant, CAST(timezone($zone, timezone('UTC', ev.ts)) AS DATE) AS day,
       count(DISTINCT ev.user_id) FILTER (WHERE ev.event = 'impression') AS users,
       count(*) FILTER (WHERE ev.event = 'impression') AS impressions,
       count(*) FILTER (WHERE ev.event = 'purchase') AS purchases
FROM ev SEMI JOIN users u ON u.variant = ev.variant AND u.user_id = ev.user_id
GROUP BY ALL ORDER BY day, variant
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
    events: pa.Table,
    *,
    experiment: str | None = None,
    control: str | None = None,
    metric: str = "conversion",
    alpha: float = 0.05,
    power: float = 0.8,
    split: str | Sequence[float] | Mapping[str, float] | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """Compare the variants of ``experiment`` (None: the only experiment in ``events``; events
    without an experiment when there is none). Per variant: users with an impression, event
    counts, CTR and conversion per impression, **add-on rate** = purchases of recommended items
    per impression-user, and **AOV** = mean amount of the orders holding such a purchase (each
    order once); each with a 95 % CI (module docstring). ``lift``: every other variant against
    ``control`` (default: the first variant by name) for add-on rate, conversion and AOV, each
    with its p-value, ``significant`` at ``alpha`` and the units per arm needed to detect it with
    ``power`` (users; orders for AOV). ``verdict``: one per variant on ``metric``, in words
    ({"zh", "en"}). ``srm``: the sample-ratio check against the planned ``split``
    (:func:`parse_split`; default equal). ``daily``: per day (in ``timezone``, default the
    shop's, :func:`tiein.loaders.events.shop_timezone`) and variant: users, impressions,
    purchases and conversion. Purchases by users without an impression in that variant are not
    attributed to it.
    """

    if metric not in PRIMARY_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; metrics: {', '.join(PRIMARY_METRICS)}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"alpha and power must be between 0 and 1, got {alpha!r} and {power!r}")
    zone = shop_timezone(timezone)
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
        daily = con.sql(_DAILY_SQL, params={"zone": zone}).to_arrow_table().to_pylist()
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

    def units(v: str, m: str) -> int:
        return int(rows[v]["orders"] if m == "aov" else rows[v]["users"])

    lifts = [
        {
            "variant": v,
            "vs": control,
            "metric": m,
            **lift_ci(rows[v][m], rows[control][m]),
            **compare(rows[v][m], rows[control][m], units(v, m), units(control, m), alpha=alpha, power=power),
            "unit": "orders" if m == "aov" else "users",
        }
        for v in variants
        if v != control
        for m in ("add_on_rate", "conversion", "aov")
    ]
    for d in daily:
        d["day"] = d["day"].isoformat()
        d["conversion"] = d["purchases"] / d["impressions"] if d["impressions"] else None
    srm = srm_check({v: rows[v]["users"] for v in variants}, parse_split(split, variants))
    report: dict[str, Any] = {
        "experiment": experiment,
        "control": control,
        "ci": "95% normal approximation; ratios by the delta method over users; lift by the delta method on log(ratio)",
        "metric": metric,
        "alpha": alpha,
        "power": power,
        "timezone": zone,
        "users_in_several_variants": int(multi),
        "variants": [rows[v] for v in variants],
        "lift": lifts,
        "srm": srm,
        "daily": daily,
    }
    report["verdict"] = [verdict(x, report) for x in lifts if x["metric"] == metric]
    return report


METRIC_LABELS = {
    "conversion": ("转化率", "conversion"),
    "add_on_rate": ("人均连带购买", "add-on rate"),
    "aov": ("客单价", "AOV"),
    "ctr": ("点击率", "CTR"),
}


def pct(x: float | None, digits: int = 2, sign: bool = False) -> str:
    """A rate as a percentage: ``pct(0.02478)`` = ``'2.48%'`` ("–" for None)."""
    if x is None:
        return "–"
    return f"{x * 100:{'+' if sign else ''}.{digits}f}%"


def fmt_value(metric: str, x: float | None) -> str:
    """A metric's value as shown: rates as percentages (conversion, CTR, and the add-on rate as
    purchases per 100 users: ``2.48%``, not ``0.02478``), AOV with 2 decimals."""
    if x is None:
        return "–"
    if metric in ("conversion", "ctr", "add_on_rate"):
        return pct(x)
    return f"{x:,.2f}" if metric == "aov" else f"{x:,.3f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def verdict(lift: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """One variant's result on one metric in words: {"variant", "vs", "metric", "significant",
    "p_value", "needed_per_arm", "zh", "en"}."""
    m, v, c = lift["metric"], lift["variant"], lift["vs"]
    rows = {r["variant"]: r for r in report["variants"]}
    zh_m, en_m = METRIC_LABELS[m]
    level = f"{report['alpha'] * 100:g}%"
    a, b = rows[c][m]["value"], rows[v][m]["value"]
    change = f"{fmt_value(m, a)} → {fmt_value(m, b)}"
    lift_s = pct(lift["value"], 1, sign=True) if lift["value"] is not None else "–"
    p, need = lift["p_value"], lift["needed_per_arm"]
    have = min(rows[v]["orders" if m == "aov" else "users"], rows[c]["orders" if m == "aov" else "users"])
    unit_en, unit_zh = ("orders", "个订单") if m == "aov" else ("users", "位用户")
    if p is None:
        en = f"{v} vs {c}: {en_m} {change}: too little data to test"
        zh = f"{v} 对比 {c}：{zh_m} {change}，数据太少，无法检验"
    elif lift["significant"]:
        word = "better" if (b or 0) > (a or 0) else "worse"
        zh_word = "更好" if word == "better" else "更差"
        en = f"{v} vs {c}: {en_m} {change} ({lift_s}), significantly {word} at the {level} level (p = {fmt_p(p)})"
        zh = f"{v} 对比 {c}：{zh_m} {change}（{lift_s}），在 {level} 水平上显著{zh_word}（p = {fmt_p(p)}）"
    else:
        en = f"{v} vs {c}: {en_m} {change} ({lift_s}), not significant at the {level} level (p = {fmt_p(p)})"
        zh = f"{v} 对比 {c}：{zh_m} {change}（{lift_s}），在 {level} 水平上不显著（p = {fmt_p(p)}）"
        if need is not None:
            pw = f"{report['power'] * 100:g}%"
            en += f"; detecting a {lift_s} lift needs about {need:,} {unit_en} per arm ({pw} power), the smaller arm has {have:,}"
            zh += f"；要测出 {lift_s} 的变化，每组约需 {need:,} {unit_zh}（检验力 {pw}），目前较小的一组只有 {have:,}"
    if report["srm"]["mismatch"]:
        en += " — but the sample ratio is off (SRM): do not trust this result"
        zh += "——但样本比例异常（SRM），结果不可信"
    return {
        "variant": v,
        "vs": c,
        "metric": m,
        "significant": lift["significant"],
        "p_value": p,
        "needed_per_arm": need,
        "zh": zh,
        "en": en,
    }


def srm_text(srm: Mapping[str, Any]) -> dict[str, str]:
    """The sample-ratio check in words, {"zh", "en"}."""
    obs = " / ".join(f"{v} {n:,}" for v, n in srm["observed"].items())
    plan = " / ".join(f"{w * 100:g}%" for w in srm["planned"].values())
    p = fmt_p(srm["p_value"])
    if srm["mismatch"]:
        return {
            "en": f"sample ratio MISMATCH: users {obs} against a planned {plan} split (chi-square p = {p} < {srm['threshold']:g}): check the assignment and the logging",
            "zh": f"样本比例异常（SRM）：用户 {obs}，计划分流 {plan}（卡方检验 p = {p} < {srm['threshold']:g}），请检查分流和埋点",
        }
    return {
        "en": f"sample ratio OK: users {obs} against a planned {plan} split (chi-square p = {p})",
        "zh": f"样本比例正常：用户 {obs}，计划分流 {plan}（卡方检验 p = {p}）",
    }

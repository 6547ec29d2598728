"""The A/B report's files: the chart (PNG, CJK labels), the HTML page and the JSON
(:func:`write_report`; the numbers come from :func:`tiein.feedback.ab.ab_report`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tiein.errors import ConfigError, MissingDependency
from tiein.feedback.ab import METRIC_LABELS, fmt_p, fmt_value, pct, srm_text
from tiein.feedback.fonts import cjk_font, font_rc

LANGS = ("both", "zh", "en")
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
_WORDS = {
    "variant": ("组别", "variant"),
    "users": ("用户数", "users"),
    "impressions": ("曝光", "impressions"),
    "clicks": ("点击", "clicks"),
    "purchases": ("购买", "purchases"),
    "orders": ("订单", "orders"),
    "lift": ("提升", "lift"),
    "p_value": ("p 值", "p-value"),
    "significant": ("显著", "significant"),
    "needed": ("每组所需样本", "needed per arm"),
    "day": ("日期", "day"),
    "daily": ("每日转化率", "daily conversion"),
    "verdict": ("结论", "verdict"),
    "srm": ("样本比例检查", "sample ratio check"),
    "control": ("对照组", "control"),
    "report": ("A/B 实验报告", "A/B report"),
    "ci": ("95% 置信区间", "95% CI"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
}


def label(key: str, lang: str) -> str:
    """A label in ``lang``: "zh", "en" or "both" ("转化率 conversion")."""
    zh, en = METRIC_LABELS.get(key) or _WORDS[key]
    if key == "ci" and lang == "both":
        return en
    return zh if lang == "zh" else en if lang == "en" else f"{zh} {en}"


def write_report(report: dict[str, Any], out: Path | str, *, lang: str = "both") -> dict[str, Path]:
    """Write ``report`` (:func:`ab_report`) into ``out``: ``report.json``, ``report.png``
    (conversion, add-on rate and AOV per variant with 95 % CI bars, and the daily conversion
    trend; matplotlib, Agg) and ``report.html`` (self-contained: the verdict, the sample-ratio
    check, the chart embedded, tables of variants, lifts with p-values and days). Labels in
    ``lang`` ("both", "zh", "en"); the chart falls back to English when no CJK font is installed
    (``report["chart_lang"]`` says which was drawn). Returns {"json", "png", "html"} paths."""
    import base64
    import html

    if lang not in LANGS:
        raise ConfigError(f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency("matplotlib", "report") from exc

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "png": out / "report.png", "html": out / "report.html"}
    font = cjk_font()
    chart_lang = lang if font is not None else "en"
    report["chart_lang"] = chart_lang
    report["chart_font"] = font[0] if font else None
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    variants = report["variants"]
    names = [str(v["variant"]) for v in variants]
    colors = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}
    rc: Any = font_rc()  # matplotlib types rc keys as literals
    with matplotlib.rc_context(rc):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
        for ax, metric in zip(axes.flat, ("conversion", "add_on_rate", "aov"), strict=False):
            scale = 1.0 if metric == "aov" else 100.0
            vals = [(v[metric]["value"] or 0.0) * scale for v in variants]
            lo = [
                max(0.0, val - (v[metric]["low"] * scale if v[metric]["low"] is not None else val))
                for val, v in zip(vals, variants, strict=True)
            ]
            hi = [
                (v[metric]["high"] * scale if v[metric]["high"] is not None else val) - val
                for val, v in zip(vals, variants, strict=True)
            ]
            bars = ax.bar(names, vals, yerr=[lo, hi], capsize=6, color=[colors[n] for n in names])
            ax.bar_label(
                bars,
                labels=[fmt_value(metric, v[metric]["value"]) for v in variants],
                label_type="center",
                color="white",
                fontsize=9,
            )
            ax.set_title(f"{label(metric, chart_lang)} ({label('ci', chart_lang)})", fontsize=10)
            if metric != "aov":
                ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(decimals=1))
            ax.grid(axis="y", alpha=0.3)
        ax = axes.flat[3]
        days = sorted({d["day"] for d in report.get("daily", [])})
        for n in names:
            pts = [
                (d["day"], d["conversion"] * 100)
                for d in report.get("daily", [])
                if str(d["variant"]) == n and d["conversion"] is not None
            ]
            if pts:
                ax.plot(
                    [days.index(day) for day, _ in pts],
                    [y for _, y in pts],
                    marker="o",
                    color=colors[n],
                    label=n,
                )
        step = max(1, len(days) // 8)
        ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]], fontsize=8)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(decimals=1))
        ax.set_title(f"{label('daily', chart_lang)} ({report.get('timezone', 'UTC')})", fontsize=10)
        ax.grid(alpha=0.3)
        if names and days:
            ax.legend(fontsize=8)
        head = [x[chart_lang if chart_lang != "both" else "zh"] for x in report.get("verdict", [])[:2]]
        if chart_lang == "both":
            head += [x["en"] for x in report.get("verdict", [])[:1]]
        title = f"{label('report', chart_lang)}: {report['experiment'] or '(none)'}"
        fig.suptitle("\n".join([title, *(_wrap(h, 130) for h in head)]), fontsize=9)
        fig.tight_layout()
        fig.savefig(paths["png"])
        plt.close(fig)

    esc = html.escape

    def lab(key: str) -> str:
        return esc(label(key, lang))

    def ci(metric: str, m: dict[str, Any]) -> str:
        if m["low"] is None:
            return fmt_value(metric, m["value"])
        return (
            f"{fmt_value(metric, m['value'])} [{fmt_value(metric, m['low'])}, {fmt_value(metric, m['high'])}]"
        )

    def words(d: Mapping[str, str]) -> str:
        if lang == "both":
            return f"{esc(d['zh'])}<br><span class=en>{esc(d['en'])}</span>"
        return esc(d[lang])

    cols = ("users", "impressions", "clicks", "purchases", "orders")
    head_row = (
        f"<tr><th>{lab('variant')}</th>"
        + "".join(f"<th>{lab(c)}</th>" for c in cols)
        + "".join(f"<th>{lab(m)}</th>" for m in ("conversion", "ctr", "add_on_rate", "aov"))
        + "</tr>"
    )
    body = "".join(
        f"<tr><td>{esc(str(v['variant']))}</td>"
        + "".join(f"<td>{v[c]:,}</td>" for c in cols)
        + "".join(f"<td>{ci(m, v[m])}</td>" for m in ("conversion", "ctr", "add_on_rate", "aov"))
        + "</tr>"
        for v in variants
    )
    yes, no = lab("yes"), lab("no")
    lifts = "".join(
        f"<tr><td>{esc(str(x['variant']))} vs {esc(str(x['vs']))}</td><td>{lab(x['metric'])}</td>"
        f"<td>{pct(x['value'], 1, True)} [{pct(x['low'], 1, True)}, {pct(x['high'], 1, True)}]</td>"
        f"<td>{fmt_p(x['p_value'])}</td><td>{'–' if x['significant'] is None else yes if x['significant'] else no}</td>"
        f"<td>{'–' if x['needed_per_arm'] is None else format(x['needed_per_arm'], ',')} {esc(x['unit'])}</td></tr>"
        for x in report["lift"]
    )
    daily = "".join(
        f"<tr><td>{esc(d['day'])}</td><td>{esc(str(d['variant']))}</td><td>{d['users']:,}</td>"
        f"<td>{d['impressions']:,}</td><td>{d['purchases']:,}</td><td>{pct(d['conversion'])}</td></tr>"
        for d in report.get("daily", [])
    )
    verdicts = "".join(f"<li>{words(x)}</li>" for x in report.get("verdict", []))
    srm = report["srm"]
    png = base64.b64encode(paths["png"].read_bytes()).decode("ascii")
    title = esc(f"{label('report', lang)}: {report['experiment'] or '(no experiment)'}")
    level = f"α = {report['alpha']:g}"
    paths["html"].write_text(
        f"""<!doctype html><html lang="{"en" if lang == "en" else "zh"}"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:2em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
.en{{color:#555}}.srm-bad{{color:#b00;font-weight:bold}}img{{max-width:100%}}</style></head><body>
<h1>{title}</h1><p>{lab("control")}: {esc(str(report["control"]))} · {level} · {esc(report["ci"])}</p>
<h2>{lab("verdict")}</h2><ul>{verdicts}</ul>
<h2>{lab("srm")}</h2><p class="{"srm-bad" if srm["mismatch"] else "srm-ok"}">{words(srm_text(srm))}</p>
<img alt="conversion, add-on rate, AOV and daily conversion per variant" src="data:image/png;base64,{png}">
<table>{head_row}{body}</table>
<h2>{lab("lift")}</h2><table><tr><th>{lab("variant")}</th><th></th><th>{lab("lift")} [95%]</th><th>{lab("p_value")}</th><th>{lab("significant")}</th><th>{lab("needed")}</th></tr>{lifts}</table>
<h2>{lab("daily")} ({esc(report.get("timezone", "UTC"))})</h2><table><tr><th>{lab("day")}</th><th>{lab("variant")}</th><th>{lab("users")}</th><th>{lab("impressions")}</th><th>{lab("purchases")}</th><th>{lab("conversion")}</th></tr>{daily}</table>
</body></html>""",
        encoding="utf-8",
    )
    return paths


def _wrap(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` display columns (a CJK character counts 2), cut at
    spaces, or anywhere inside a run of CJK text."""
    import unicodedata

    def cols(ch: str) -> int:
        return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1

    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        sep = " " if line else ""
        if sum(map(cols, line + sep + word)) <= width:
            line += sep + word
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:  # a word longer than a line (Chinese has no spaces): cut by characters
            if sum(map(cols, line + ch)) > width:
                lines.append(line)
                line = ""
            line += ch
    return "\n".join([*lines, line])

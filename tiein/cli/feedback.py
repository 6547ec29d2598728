"""Commands for the feedback loop and A/B tests: feedback ingest, feedback stats, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tiein.cli.base import (
    _home,
    cli,
    home_option,
    json_option,
)


@cli.group()
def feedback() -> None:
    """Recommendation events (impression, click, add_to_cart, purchase): ingest and statistics.

    \b
    tiein feedback ingest events.csv          # CSV/TSV, JSON lines, Parquet, XLSX; re-ingesting adds nothing
    tiein feedback ingest 埋点.csv --map user_id=会员ID --timezone Asia/Shanghai
    tiein feedback stats --kind complement    # CTR and conversion per kind and per pair (smoothed)
    tiein report --experiment exp-1 --out ab/ # A/B report: verdict, p-value, sample ratio, daily trend
    """


@feedback.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "map_pairs",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Map one column, e.g. --map user_id=会员ID --map ts=日期,时间 (repeatable). Fields: event_id, ts, "
    "user_id, anchor_id, item_id, kind, surface, experiment, variant, event, value, order_id; "
    "unmapped fields are found by name.",
)
@click.option(
    "--timezone",
    "zone",
    metavar="ZONE",
    help="Time zone of times written without one, e.g. Asia/Shanghai, Europe/Berlin, UTC "
    "[default: $TIEIN_TIMEZONE, else timezone in HOME/shop.toml, else Asia/Shanghai]. Times with a "
    "zone (Z, +08:00) keep theirs.",
)
@home_option
@json_option()
def feedback_ingest(
    file: Path, map_pairs: tuple[str, ...], zone: str | None, home: str | None, as_json: bool
) -> None:
    """Append the events of FILE to the event log (HOME/feedback); events already there are skipped.
    Event names may be English or Chinese: 曝光 impression, 点击 click, 加购 add_to_cart, 购买/下单 purchase.

    \b
      tiein feedback ingest events.csv
      tiein feedback ingest 埋点.xlsx --map ts=时间 --map user_id=会员ID --map event=行为 --timezone Asia/Shanghai"""
    from tiein.feedback import ingest, read_events
    from tiein.loaders.events import parse_map, shop_timezone

    zone = shop_timezone(zone, _home(home))
    result = ingest(_home(home), read_events(file, columns=parse_map(map_pairs), timezone=zone))
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "timezone": zone}, indent=2))
        return
    click.echo(
        f"{result.added:,} of {result.received:,} events added ({result.duplicates:,} already in the log); "
        f"times without a zone read as {zone}"
    )


@feedback.command("stats")
@click.option("--kind", help="Only this relation kind (complement, substitute, …).")
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(0, 100000),
    help="Pairs shown, best smoothed conversion first.",
)
@click.option(
    "--prior-strength",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Pseudo-impressions of the kind's rate added to each pair (smoothing).",
)
@click.option(
    "--item-strength",
    default=200.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Pseudo-impressions of the item level of the re-ranker's prior (0: off); listed in --json.",
)
@home_option
@json_option()
def feedback_stats_cmd(
    kind: str | None, top: int, prior_strength: float, item_strength: float, home: str | None, as_json: bool
) -> None:
    """Impressions, clicks, add-to-carts, purchases, CTR and conversion per kind, per pair and per
    recommended item (all its anchors together: what the re-ranker's item level learns from)."""
    import pyarrow.compute as pc

    from tiein.feedback import feedback_stats, read_log

    events = read_log(_home(home))
    if kind is not None:
        events = events.filter(pc.equal(events.column("kind"), kind))
    stats = feedback_stats(events, prior_strength=prior_strength, item_strength=item_strength)
    if as_json:
        click.echo(json.dumps(stats.to_dict(top=top), ensure_ascii=False, indent=2))
        return
    if not events.num_rows:
        click.echo(
            "no events"
            + (f" of kind {kind}" if kind else "")
            + ": ingest some with `tiein feedback ingest FILE`"
        )
        return
    d = stats.to_dict(top=top)
    click.echo(
        f"{'kind':<12} {'impressions':>11} {'clicks':>8} {'carts':>7} {'purchases':>9} {'CTR':>7} {'conv.':>7}"
    )
    for r in d["kinds"]:
        click.echo(
            f"{r['kind']:<12} {r['impressions']:>11,} {r['clicks']:>8,} {r['add_to_carts']:>7,} {r['purchases']:>9,} "
            f"{_pct(r['ctr']):>7} {_pct(r['conversion']):>7}"
        )
    if d["pairs"]:
        click.echo(f"\ntop pairs by smoothed conversion (prior strength {prior_strength:g} impressions):")
        for r in d["pairs"]:
            click.echo(
                f"  {r['anchor_id']:<12} → {r['item_id']:<12} {r['kind']:<11} {r['impressions']:>7,} shown "
                f"{r['purchases']:>6,} bought  conv. {_pct(r['conversion'])} → {_pct(r['conversion_smoothed'])}"
            )
    if d["items"]:
        click.echo("\ntop recommended items by purchases (all anchors):")
        for r in d["items"]:
            rate = r["purchases"] / r["impressions"] if r["impressions"] else None
            click.echo(
                f"  {r['item_id']:<12} {r['kind']:<11} {r['anchors']:>5,} anchors {r['impressions']:>7,} shown "
                f"{r['purchases']:>6,} bought  conv. {_pct(rate)}"
            )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


@cli.command()
@click.option("--experiment", help="The experiment to report [default: the only one in the log].")
@click.option("--control", help="The variant the others are compared with [default: the first by name].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.json, report.png and report.html.",
)
@click.option(
    "--metric",
    default="conversion",
    show_default=True,
    type=click.Choice(["conversion", "add_on_rate", "aov"]),
    help="The metric the verdict is about.",
)
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Significance level of the verdict.",
)
@click.option(
    "--power",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Power for the sample size needed to detect the observed lift.",
)
@click.option(
    "--split",
    metavar="SPLIT",
    help="Planned traffic split for the sample-ratio check: 50/50, 90/10 (variants by name) or A=90,B=10 "
    "[default: equal].",
)
@click.option(
    "--timezone",
    "zone",
    metavar="ZONE",
    help="Time zone of the days in the daily trend [default: $TIEIN_TIMEZONE, else timezone in "
    "HOME/shop.toml, else Asia/Shanghai].",
)
@click.option(
    "--lang",
    default="both",
    show_default=True,
    type=click.Choice(["both", "zh", "en"]),
    help="Language of the labels and the verdict (both: 中文 and English).",
)
@home_option
@json_option("Print the report as JSON.")
def report(
    experiment: str | None,
    control: str | None,
    out: Path,
    metric: str,
    alpha: float,
    power: float,
    split: str | None,
    zone: str | None,
    lang: str,
    home: str | None,
    as_json: bool,
) -> None:
    """A/B report from the event log: a plain verdict (significant or not, p-value, the sample size
    a lift that size needs), a sample-ratio check, per variant conversion, add-on rate (purchases
    of recommended items per user shown them) and average order value with 95% confidence
    intervals, the lifts and a daily trend; Chinese and English labels.

    \b
      tiein report --experiment exp-1 --out ab/
      tiein report --experiment exp-1 --split 90/10 --alpha 0.1 --lang zh --out ab/"""
    from tiein.feedback import ab_report, read_log, write_report
    from tiein.feedback.ab import fmt_p, fmt_value, srm_text
    from tiein.loaders.events import shop_timezone

    rep = ab_report(
        read_log(_home(home)),
        experiment=experiment,
        control=control,
        metric=metric,
        alpha=alpha,
        power=power,
        split=split,
        timezone=shop_timezone(zone, _home(home)),
    )
    paths = write_report(rep, out, lang=lang)
    if as_json:
        click.echo(json.dumps(rep, ensure_ascii=False, indent=2))
        return

    def ci(metric: str, m: dict[str, Any]) -> str:
        if m["value"] is None or m["low"] is None:
            return fmt_value(metric, m["value"])
        return (
            f"{fmt_value(metric, m['value'])} [{fmt_value(metric, m['low'])}, {fmt_value(metric, m['high'])}]"
        )

    langs = ("zh", "en") if lang == "both" else (lang,)
    click.echo(f"experiment {rep['experiment'] or '(none)'} · control {rep['control']} · {rep['ci']}")
    for v in rep["variants"]:
        click.echo(
            f"  {v['variant']:<10} {v['users']:>7,} users {v['impressions']:>8,} shown {v['purchases']:>6,} bought  "
            f"conversion {ci('conversion', v['conversion'])}  add-on rate {ci('add_on_rate', v['add_on_rate'])}  "
            f"AOV {ci('aov', v['aov'])}"
        )
    for x in rep["lift"]:
        lo = "-" if x["low"] is None else f"{x['low'] * 100:+.1f}%"
        hi = "-" if x["high"] is None else f"{x['high'] * 100:+.1f}%"
        val = "-" if x["value"] is None else f"{x['value'] * 100:+.1f}%"
        click.echo(
            f"  lift {x['variant']} vs {x['vs']} {x['metric']:<12} {val} [{lo}, {hi}]  p = {fmt_p(x['p_value'])}"
        )
    srm = srm_text(rep["srm"])
    for lg in langs:
        click.echo(srm[lg])
    for vd in rep["verdict"]:
        for lg in langs:
            click.echo(vd[lg])
    if rep["chart_font"] is None and lang != "en":
        click.echo(
            "note: no CJK font found, the chart is labelled in English "
            "(install one: apt-get install fonts-noto-cjk)",
            err=True,
        )
    click.echo(f"wrote {paths['html']} (and report.png, report.json)")

"""Commands for analysts and ops: cypher, export, feedback, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tiein.cli.base import (
    TqdmProgress,
    _home,
    _open_store,
    cli,
    home_option,
    json_option,
    where_options,
)
from tiein.model import RELATION_KINDS


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
    "[default: $TIEIN_TIMEZONE, else Asia/Shanghai]. Times with a zone (Z, +08:00) keep theirs.",
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

    zone = shop_timezone(zone)
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
    help="Time zone of the days in the daily trend [default: $TIEIN_TIMEZONE, else Asia/Shanghai].",
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

    rep = ab_report(
        read_log(_home(home)),
        experiment=experiment,
        control=control,
        metric=metric,
        alpha=alpha,
        power=power,
        split=split,
        timezone=zone,
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


@cli.command()
@click.argument("query")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help='A query parameter ($NAME), repeatable; VALUE is read as JSON when it parses (3, true, "007"), else as text.',
)
@click.option(
    "--limit",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Row cap; the answer says when it was truncated.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 600, min_open=True),
    help="Time limit in seconds.",
)
@json_option("JSON: {columns, rows, truncated, limit, row_count, elapsed_ms, store}.")
@click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    help="CSV with a header row (nested values as JSON; text cells starting with = + - @ tab or CR get a leading ' so spreadsheets do not run them).",
)
@click.option(
    "--no-formula-escape",
    "raw_csv",
    is_flag=True,
    help="--csv: write text cells as they are (no leading ' before = + - @ tab CR).",
)
@click.option(
    "--bom",
    is_flag=True,
    help="--csv: start with a UTF-8 byte order mark, so Excel reads Chinese text right.",
)
@click.option(
    "--memory",
    "memory_mb",
    default=2048,
    show_default=True,
    type=click.IntRange(512, 1_048_576),
    help="Embedded store: memory (MB of address space) of the worker process that runs the query.",
)
@where_options
def cypher(
    query: str,
    params: tuple[str, ...],
    limit: int,
    timeout_s: float,
    as_json: bool,
    as_csv: bool,
    raw_csv: bool,
    bom: bool,
    memory_mb: int,
    home: str | None,
    store: str | None,
) -> None:
    """Run a read-only Cypher QUERY (analysts; the graph model and examples: docs/schema.md).

    \b
      tiein cypher "MATCH (p:Product)-[r:COMPLEMENT]->(q) RETURN p.title, q.title, r.score ORDER BY r.score DESC" --limit 20
      tiein cypher "MATCH (p:Product {product_id: $id})-[:SUBSTITUTE]->(q) RETURN q.product_id, q.price" --param id=85123A --csv

    Read queries only: writes, files, extensions, transactions and settings (CREATE, MERGE, SET,
    DELETE, REMOVE, DROP, LOAD, COPY, EXPORT, INSTALL, BEGIN, CHECKPOINT, ...) are refused. On the
    embedded store the query runs in a worker process with --memory and is killed at --timeout."""
    import csv

    from tiein.cypher import parse_param, run_cypher
    from tiein.cypher_worker import WorkerLimits
    from tiein.export import escape_formula

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if bom and not as_csv:
        raise click.UsageError("--bom goes with --csv")
    values = dict(parse_param(p) for p in params)
    st = _open_store(home, store)
    try:
        result = run_cypher(
            st, query, values, limit=limit, timeout_s=timeout_s, worker=WorkerLimits(memory_mb)
        )
    finally:
        st.close()
    note = f"truncated: showing the first {limit:,} rows (raise --limit)" if result.truncated else ""
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    if as_csv:
        if bom:
            sys.stdout.write("\ufeff")
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        cell = (lambda v: v) if raw_csv else escape_formula
        for row in result.rows:
            writer.writerow(
                [
                    ""
                    if v is None
                    else json.dumps(v, ensure_ascii=False)
                    if isinstance(v, dict | list)
                    else cell(v)
                    for v in row
                ]
            )
        if note:
            click.echo(note, err=True)
        return
    cells = [
        [
            json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else ("" if v is None else str(v))
            for v in row
        ]
        for row in result.rows
    ]
    widths = [min(60, max([len(c), *(len(r[i]) for r in cells)])) for i, c in enumerate(result.columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v[:60].ljust(w) for v, w in zip(r, widths, strict=True)))
    click.echo(
        f"({len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}, {result.elapsed_ms:.1f} ms){'  ' + note if note else ''}"
    )


@cli.command("export")
@click.argument("what", type=click.Choice(["bundles", "related"]))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["csv", "jsonl", "parquet", "xlsx"]),
    help="csv / parquet / xlsx: flat, one row per item (or per bundle: --layout bundle); jsonl: one nested "
    "answer per anchor. xlsx (Excel): ids kept as text, headers in Chinese and English.",
)
@click.option(
    "--layout",
    default="item",
    show_default=True,
    type=click.Choice(["item", "bundle"]),
    help="bundles: item = one row per bundle item; bundle = one row per bundle, its items side by side "
    "(item1_product_id, item1_title, ..., item2_...).",
)
@click.option(
    "--headers",
    type=click.Choice(["en", "zh-en"]),
    help="Column headers of csv / xlsx: en (column names) or zh-en (主商品ID / anchor_product_id) "
    "[default: zh-en for xlsx, en for csv].",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file (written atomically; a rerun resumes an interrupted export).",
)
@click.option("--scene", help="Only this scene's products (id or name); bundles follow its role order.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(RELATION_KINDS),
    help="related: relation kind(s), repeatable [default: complement].",
)
@click.option(
    "-k",
    "k",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="related: items per anchor and kind.",
)
@click.option(
    "--size",
    default=3,
    show_default=True,
    type=click.IntRange(2, 6),
    help="bundles: items per bundle, anchor included.",
)
@click.option("--budget", type=float, help="bundles: the most a bundle may cost at full price.")
@click.option("--mix", help="bundles: sales roles of the add-ons in order, e.g. hero+profit.")
@click.option("--discount", type=float, help="bundles: discount for the suggested price (0.1 = 10 %).")
@click.option(
    "--chunk-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Anchors per resumable chunk.",
)
@click.option(
    "--bom",
    is_flag=True,
    help="csv: start with a UTF-8 byte-order mark, so Excel opens Chinese titles right.",
)
@click.option(
    "--no-formula-escape",
    "raw_csv",
    is_flag=True,
    help="csv: write text cells as they are; by default a text cell starting with = + - @ tab or CR gets a leading ' so spreadsheets do not run it as a formula (numbers are never changed).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option("Print the export summary as JSON.")
@where_options
def export_cmd(
    what: str,
    fmt: str,
    layout: str,
    headers: str | None,
    out: Path,
    scene: str | None,
    kinds: tuple[str, ...],
    k: int,
    size: int,
    budget: float | None,
    mix: str | None,
    discount: float | None,
    chunk_size: int,
    bom: bool,
    raw_csv: bool,
    quiet: bool,
    as_json: bool,
    home: str | None,
    store: str | None,
) -> None:
    """Export WHAT (bundles or related) for every product, in product_id order, through the same
    code path as `tiein bundle` / `tiein related` and the API. Columns: docs/export.md.

    \b
      tiein export bundles --format parquet --out bundles.parquet
      tiein export related --format csv --out related.csv --kind complement --kind substitute -k 5
      tiein export bundles --format xlsx --layout bundle --out 套餐.xlsx"""
    from tiein.export import export

    st = _open_store(home, store)
    bar = TqdmProgress(enabled=not quiet)
    try:
        result = export(
            st,
            what,
            out,
            fmt=fmt,
            kinds=list(kinds) or None,
            k=k,
            size=size,
            scene=scene,
            budget=budget,
            mix=mix,
            discount=discount,
            chunk_size=chunk_size,
            bom=bom,
            formula_escape=not raw_csv,
            layout=layout,
            headers=headers,
            progress=bar,
        )
    finally:
        bar.close()
        st.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    resumed = f", {result.chunks_reused} of {result.chunks} chunks resumed" if result.chunks_reused else ""
    click.echo(
        f"wrote {result.path}: {result.rows:,} rows for {result.anchors:,} products in {result.seconds:.1f} s{resumed}"
    )

"""Commands for analysts and ops: cypher, export."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tiein.cli.base import (
    _home,
    _open_store,
    cli,
    json_option,
    where_options,
)
from tiein.cli.display import TqdmProgress
from tiein.cli.query import filter_options
from tiein.model import RELATION_KINDS
from tiein.rules import Filters


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
        cell: Callable[[Any], Any] = (lambda v: v) if raw_csv else escape_formula
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
@click.argument("what", type=click.Choice(["bundles", "related", "pairings", "trending"]))
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
    type=click.IntRange(2, 6),
    help="bundles: items per bundle, anchor included [default: size in HOME/shop.toml, else 3].",
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
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3660),
    help="trending: the window in days.",
)
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%d"]),
    help="trending: the window's last day [default: the last order's]; related / bundles: rank for this "
    "date's season, as `tiein related --at` [default: the year-round order].",
)
@click.option(
    "--segment",
    metavar="NAME",
    help="related / bundles: rank for this customer segment, as `tiein related --segment`.",
)
@click.option(
    "--min-orders",
    default=3,
    show_default=True,
    type=click.IntRange(1),
    help="pairings / trending: orders an item needs.",
)
@click.option("--per-category", is_flag=True, help="pairings / trending: the top k of every category.")
@json_option("Print the export summary as JSON.")
@filter_options(offset=False)
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
    size: int | None,
    budget: float | None,
    mix: str | None,
    discount: float | None,
    chunk_size: int,
    bom: bool,
    raw_csv: bool,
    quiet: bool,
    as_json: bool,
    days: int,
    at: Any,
    segment: str | None,
    min_orders: int,
    per_category: bool,
    filters: Filters,
    home: str | None,
    store: str | None,
) -> None:
    """Export WHAT (bundles or related) for every product, in product_id order, through the same
    code path as `tiein bundle` / `tiein related` and the API. Columns: docs/export.md.

    \b
      tiein export bundles --format parquet --out bundles.parquet
      tiein export related --format csv --out related.csv --kind complement --kind substitute -k 5
      tiein export bundles --format xlsx --layout bundle --out 套餐.xlsx
      tiein export trending --format xlsx --days 7 --per-category --out 热销榜.xlsx   # one list (docs/lists.md)"""
    from tiein.export import export

    if what in ("pairings", "trending"):  # one list, not one answer per product (tiein.cli.lists)
        from tiein.cli.lists import export_list_cmd

        export_list_cmd(
            what,
            out,
            fmt,
            headers,
            bom,
            raw_csv,
            as_json,
            k,
            days,
            at,
            min_orders,
            per_category,
            filters,
            home,
            store,
            scene=scene,
            kinds=kinds,
            layout=layout,
            size=size,
            budget=budget,
            mix=mix,
            discount=discount,
        )
        return
    from tiein.model import QueryContext
    from tiein.segments import check_segment
    from tiein.service import shop_bundle_rules

    rules = shop_bundle_rules(_home(home)) if what == "bundles" else None
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
            filters=filters,
            rules=rules,
            progress=bar,
            context=None
            if at is None and segment is None
            else QueryContext(at=at.date() if at is not None else None, segment=check_segment(segment)),
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
    if result.no_bundle:
        _print_no_bundle(result.no_bundle, result.anchors, rules, budget, mix)


def _print_no_bundle(
    counts: dict[str, int], anchors: int, rules: Any, budget: float | None, mix: str | None
) -> None:
    """Why products got no bundle, most frequent reason first (the rows carry reason_code)."""
    from tiein.bundles import Reason

    total = sum(counts.values())
    click.echo(f"no bundle for {total:,} of {anchors:,} products ({100 * total / max(anchors, 1):.0f} %):")
    fill: dict[str, Any] = {
        "lo": f"{rules.min_price_ratio:.0%}",
        "hi": f"{rules.max_price_ratio:.0%}",
        "budget": budget if budget is not None else "…",
        "mix": mix or "…",
        "scene": "…",
    }
    currency = getattr(rules, "currency", None)
    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        why = Reason.of(code, currency, **fill)
        click.echo(f"  {n:>8,}  {why.en} / {why.zh}  [{code}]")

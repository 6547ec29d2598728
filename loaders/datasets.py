"""The ready datasets of /work/shared/data (see its README) and how each one is loaded.

Mappings live in ``loaders/mappings/<name>.yaml``; code here handles what a mapping cannot say
(joins, snapshots, list columns, junk values). Data is read in place from ``data_dir``
(default: ``$TIEIN_DATA``, else ``<repo>/../shared/data``) and never copied.
"""

from __future__ import annotations

import html
import io
import os
import re
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from tiein.errors import ConfigError, InputError
from tiein.loaders import sql
from tiein.loaders.load import Loaded, Progress, load_files, load_raw, read_file
from tiein.loaders.mapping import Mapping, ready_mapping
from tiein.loaders.read import ROW, RawTable, _read_bytes, decode
from tiein.loaders.report import FileRead, LoadReport

DATASETS: dict[str, str] = {
    "online_retail": "UCI Online Retail I: UK giftware invoices 2010-2011, 542k lines; catalog derived from the lines",
    "instacart": "Instacart 2017: 49,688 products (department > aisle) and ~19.8k orders",
    "groceries": "Groceries (R arules): 9,835 baskets of 169 items, one basket per line",
    "groceries_zh": "Groceries with Chinese item names and a Chinese category map (GBK)",
    "taobao_makeup": "Taobao/Tmall cosmetics listings, Double 11 2016: ~3.5k products, 22 brands (GBK), no orders",
    "amazon_gift_cards": "Amazon 2018 Gift Cards metadata: 1,547 products with also_buy / also_view lists",
    "bread_basket": "Bakery transactions: 9.5k baskets of ~95 items with date and time",
}


def default_data_dir() -> Path:
    env = os.environ.get("TIEIN_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_dataset(name: str, data_dir: Path | None = None, progress: Progress | None = None) -> Loaded:
    """Load one of :data:`DATASETS` from ``data_dir``."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; ready datasets: {', '.join(DATASETS)}")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if not root.is_dir():
        raise ConfigError(f"data folder {root} not found: pass data_dir or set TIEIN_DATA")
    mapping = ready_mapping(name)
    special = {"instacart": _instacart, "taobao_makeup": _taobao, "amazon_gift_cards": _amazon}
    if name in special:
        return special[name](root, mapping, progress)
    files = {role: root / f for role, f in mapping.files.items()}
    return load_files(
        catalog=files.get("catalog"),
        orders=files.get("orders"),
        views=files.get("views"),
        mapping=mapping,
        progress=progress,
        name=name,
    )


def _instacart(root: Path, mapping: Mapping, progress: Progress | None) -> Loaded:
    """products + aisles (leaf) + departments (top) -> "department > aisle"; the last order of the
    order_products head file is dropped (the cut may have split it)."""
    t0 = time.perf_counter()
    report = LoadReport(name="instacart")
    f = {role: root / p for role, p in mapping.files.items()}
    products = read_file(f["catalog"], "catalog", mapping, report)
    aisles = read_file(f["aisles"], "extra", mapping, report)
    departments = read_file(f["departments"], "extra", mapping, report)
    for raw, cols in (
        (products, ("aisle_id", "department_id")),
        (aisles, ("aisle_id", "aisle")),
        (departments, ("department_id", "department")),
    ):
        for c in cols:
            sql.resolve(raw, c, c, required=True, mapped_as=c)
    con = sql.connect()
    try:
        con.register("p", products.table)
        con.register("a", aisles.table)
        con.register("d", departments.table)
        joined = sql.fetch(
            con,
            f"""SELECT p.* EXCLUDE ({ROW}), a.aisle, d.department, p.{ROW} FROM p
                LEFT JOIN a ON trim(a.aisle_id) = trim(p.aisle_id)
                LEFT JOIN d ON trim(d.department_id) = trim(p.department_id) ORDER BY p.{ROW}""",
        )
        report.extra["products whose aisle id is not in aisles.csv"] = sql.scalar(
            con, "SELECT count(*) FROM p ANTI JOIN a ON trim(a.aisle_id) = trim(p.aisle_id)"
        )
    finally:
        con.close()
    catalog = RawTable(joined, products.file, products.format, products.encoding, products.delimiter)
    orders = read_file(f["orders"], "orders", mapping, report)
    if progress:
        progress("read files", 1, 4)
    oid = sql.resolve(orders, "order_id", mapping.orders.order_id, required=True, mapped_as="orders.order_id")
    ids = orders.table.column(oid)
    last = ids[len(ids) - 1]
    keep = pc.invert(pc.fill_null(pc.equal(ids, last), False))
    report.extra[f"lines of the last, possibly incomplete order {last.as_py()} dropped"] = (
        len(ids) - pc.sum(keep).as_py()
    )
    orders.table = orders.table.filter(keep)
    if not report.extra["products whose aisle id is not in aisles.csv"]:
        del report.extra["products whose aisle id is not in aisles.csv"]
    return load_raw(
        "instacart", catalog, orders, None, mapping, report, progress=progress, step=1, total=4, started=t0
    )


_BRAND_PREFIX = r"^\s*([A-Za-z][A-Za-z0-9 &'.\-]*)/(\p{Han}+)"


def _taobao(root: Path, mapping: Mapping, progress: Progress | None) -> Loaded:
    """Ten daily snapshots -> one product per id from the latest snapshot (options.latest_by).
    brand = the 店名 (shop) column, which is the brand's flagship store here; where it is blank, the
    Chinese part of a leading ``BRAND/品牌`` in the title. The Latin part becomes attribute ``brand_en``."""
    t0 = time.perf_counter()
    report = LoadReport(name="taobao_makeup")
    raw = read_file(root / mapping.files["catalog"], "catalog", mapping, report)
    for c in ("title", "店名"):
        sql.resolve(raw, c, c, required=True, mapped_as=c)
    con = sql.connect()
    try:
        con.register("t", raw.table)
        table = sql.fetch(
            con,
            f"""SELECT * EXCLUDE ({ROW}),
                  coalesce(nullif(trim("店名"), ''), nullif(regexp_extract(title, {sql.lit(_BRAND_PREFIX)}, 2), '')) brand,
                  nullif(trim(regexp_extract(title, {sql.lit(_BRAND_PREFIX)}, 1)), '') brand_en, {ROW}
                FROM t ORDER BY {ROW}""",
        )
    finally:
        con.close()
    report.notes.append(
        "one product per id from its latest snapshot (update_time); brand from 店名, else the title"
    )
    raw.table = table
    return load_raw("taobao_makeup", raw, None, None, mapping, report, progress=progress, started=t0)


_AMAZON_SCHEMA = pa.schema(
    [
        ("asin", pa.string()),
        ("title", pa.string()),
        ("brand", pa.string()),
        ("price", pa.string()),
        ("category", pa.list_(pa.string())),
        ("also_buy", pa.list_(pa.string())),
        ("also_view", pa.list_(pa.string())),
        ("main_cat", pa.string()),
    ]
)
_PRICE = re.compile(r"^\$\s*(\d{1,3}(?:,\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?)$")


def _category_levels(levels: list[str] | None) -> tuple[list[str], int]:
    """Keep the leading levels that look like category names; the source appends feature
    sentences and HTML fragments to some lists. Returns (levels, number dropped)."""
    out: list[str] = []
    for level in levels or []:
        v = html.unescape(level or "").strip()
        if not v or len(v) > 40 or re.search(r"[<>{}]|\.$|\. |^['\"]", v):
            break
        out.append(v)
    return out, len(levels or []) - len(out)


def _amazon(root: Path, mapping: Mapping, progress: Progress | None) -> Loaded:
    """Meta JSON lines: asin, title (HTML entities decoded), brand, price ("$25.00"; ranges and
    page junk -> null), category list -> path, also_buy -> co_purchase and also_view -> co_view
    listed pairs (both ends must be in the catalog). The 5-core reviews file is not used."""
    t0 = time.perf_counter()
    report = LoadReport(name="amazon_gift_cards")
    path = root / mapping.files["catalog"]
    body, enc = decode(_read_bytes(path), str(path))
    try:
        table = pajson.read_json(
            io.BytesIO(body),
            parse_options=pajson.ParseOptions(
                explicit_schema=_AMAZON_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"not the Amazon metadata JSON lines expected: {exc}", file=str(path)) from exc
    report.files.append(FileRead("catalog", str(path), "json", table.num_rows, enc))
    # ~1.5k rows: per-row Python for HTML entities and junk levels is cheap here.
    titles = [
        None if t is None else html.unescape(t).strip() or None for t in table.column("title").to_pylist()
    ]
    prices, junk = [], 0
    for p in table.column("price").to_pylist():
        m = _PRICE.match((p or "").strip())
        prices.append(float(m.group(1).replace(",", "")) if m else None)
        junk += bool((p or "").strip()) and not m
    cats, dropped = [], 0
    for levels in table.column("category").to_pylist():
        kept, n = _category_levels(levels)
        cats.append(kept)
        dropped += n > 0
    if junk:
        report.extra["prices that are not one amount (ranges, page fragments) set to null"] = junk
    if dropped:
        report.extra["category lists with trailing non-category text cut"] = dropped
    rows = pa.array(range(1, table.num_rows + 1), pa.int64())
    raw = RawTable(
        pa.table(
            {
                "asin": table.column("asin"),
                "title": pa.array(titles, pa.string()),
                "brand": table.column("brand"),
                "price": pa.array(prices, pa.float64()),
                "category": pa.array(cats, pa.list_(pa.string())),
                "main_cat": table.column("main_cat"),
                ROW: rows,
            }
        ),
        str(path),
        "json",
        enc,
    )
    pairs = []
    for column, kind in (("also_buy", "co_purchase"), ("also_view", "co_view")):
        lists = table.column(column).combine_chunks()
        parents = pc.list_parent_indices(lists)
        pairs.append(
            pa.table(
                {
                    "src": pc.take(table.column("asin"), parents),
                    "dst": pc.list_flatten(lists),
                    "kind": pa.array([kind] * len(parents), pa.string()),
                }
            )
        )
    if progress:
        progress("read files", 1, 4)
    return load_raw(
        "amazon_gift_cards",
        raw,
        None,
        None,
        mapping,
        report,
        listed_pairs=pa.concat_tables(pairs),
        progress=progress,
        step=1,
        total=4,
        started=t0,
    )

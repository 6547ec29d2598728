"""Raw tables + mapping -> the Arrow tables of :mod:`tiein.model`, in DuckDB (columnar, no row loops).

Parsing is strict: a price, quantity, stock or timestamp that cannot be read raises
:class:`~tiein.errors.InputError` naming the file, the first offending row (see
:mod:`tiein.loaders.read` for how rows are numbered: header = row 1 in CSV/XLSX) and the column.
Quality problems (duplicates, unknown ids, cancellations, empty/giant baskets) are counted in
the :class:`~tiein.loaders.report.LoadReport` and never fail a load.

Order-line cleaning, in this order:
1. lines without a product id / order id are dropped;
2. product ids matching ``options.exclude_product_regex`` (searched, not full-matched) are dropped;
3. lines with quantity 0 are dropped; with ``options.zero_price: drop`` lines with price 0 too;
4. cancellations = lines whose order id starts with ``options.cancel_prefix`` or whose quantity
   is negative. Their quantity is netted against the same customer's purchases of the same
   product made at or before the (last) cancellation, latest purchase first; purchase lines
   brought to 0 are dropped. Cancellations without such a purchase (or without a customer) are
   only counted. Cancellation lines never form baskets themselves;
5. lines whose product is not in the catalog are dropped;
6. repeated (order, product) lines are merged (quantities summed, earliest time);
7. orders with more than ``options.giant_basket`` products are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from tiein import model
from tiein.errors import ConfigError, InputError
from tiein.loaders.mapping import CatalogColumns, Options, OrderColumns, ViewColumns
from tiein.loaders.read import ROW, RawTable
from tiein.loaders.report import LoadReport

_CURRENCY = r"^(?:[$€£¥￥]|RMB|CNY|USD|EUR|GBP)\s*|\s*(?:元|RMB|CNY|USD|EUR|GBP)$"
MAX_ID_CHARS = 1000  # ids are keys, held many times over in memory: longer ones are refused
# Whole numbers (stock, integer attributes) must stay below this; BIGINT overflows at 9.2e18.
_INT_LIMIT = "1e15"
_TS_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d/%m/%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y%m%d",
]  # fmt: skip


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with UTC as session time zone."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def fetch(con: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema | None = None) -> pa.Table:
    table = con.sql(sql).to_arrow_table()
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    return table


def one(rows: list) -> tuple | None:
    """The first row of a fully fetched result (DuckDB 2 refuses work while a result is unfinished)."""
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = one(con.execute(sql).fetchall())
    return int(row[0] or 0) if row else 0


def check_options(con: duckdb.DuckDBPyConnection, opts: Options) -> None:
    """Reject an exclude regex or a timestamp format that DuckDB (RE2, strptime) cannot use."""
    if opts.exclude_product_regex:
        try:
            con.execute(f"SELECT regexp_matches('', {lit(opts.exclude_product_regex)})").fetchall()
        except duckdb.Error as exc:
            raise ConfigError(
                f"options.exclude_product_regex {opts.exclude_product_regex!r} is not supported "
                f"(RE2 syntax: no look-around or back-references): {exc}"
            ) from exc
    if opts.timestamp_format:
        try:
            con.execute(f"SELECT TRY_STRPTIME('2020-01-01', {lit(opts.timestamp_format)})").fetchall()
        except duckdb.Error as exc:
            raise ConfigError(
                f"options.timestamp_format {opts.timestamp_format!r} is invalid: {exc}"
            ) from exc


# ---------------------------------------------------------------- column resolution


def resolve(
    raw: RawTable,
    field: str,
    column: str | None,
    *,
    required: bool,
    mapped_as: str,
    aliases: Sequence[str] = (),
) -> str | None:
    """The source column for ``field``: the mapped one (must exist), else one named like the field
    (or like one of ``aliases``)."""
    if column is not None:
        if column not in raw.columns:
            raise InputError(
                f"column {column!r} ({mapped_as}) is missing; the file has columns: {', '.join(raw.columns)}",
                file=raw.file,
                column=column,
            )
        return column
    for name in (field, *aliases):
        if name in raw.columns:
            return name
    if required:
        raise InputError(
            f"no column is mapped to {mapped_as}; the file has columns: {', '.join(raw.columns)} "
            f"(map one with {mapped_as}=COLUMN)",
            file=raw.file,
        )
    return None


def resolve_many(raw: RawTable, field: str, columns: Sequence[str], *, mapped_as: str) -> list[str]:
    if columns:
        return [resolve(raw, field, c, required=True, mapped_as=mapped_as) or c for c in columns]
    found = resolve(raw, field, None, required=False, mapped_as=mapped_as)
    return [found] if found else []


# ---------------------------------------------------------------- typed expressions


def _type(raw: RawTable, column: str) -> pa.DataType:
    return raw.table.schema.field(column).type


def id_expr(raw: RawTable, column: str) -> str:
    """A product/order/customer id as a trimmed string (17850.0 and '17850.0' -> '17850')."""
    t, c = _type(raw, column), q(column)
    if pa.types.is_floating(t):
        return (
            f"CASE WHEN isnan({c}) THEN NULL WHEN {c} = floor({c}) AND abs({c}) < 1e18 "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) ELSE CAST({c} AS VARCHAR) END"
        )
    if pa.types.is_string(t) or pa.types.is_large_string(t):  # "17850.0" (a float id written as text)
        return _null_words(f"regexp_replace(trim({c}), '^(\\d+)\\.0+$', '\\1')")
    return f"nullif(trim(CAST({c} AS VARCHAR)), '')"


def _null_words(e: str) -> str:
    """NULL for the texts that stand for a missing value (as pandas exports write them)."""
    return f"(CASE WHEN {e} IN ('', 'nan', 'NaN', 'NULL', 'null') THEN NULL ELSE {e} END)"


def pid_expr(raw: RawTable, column: str, opts: Options) -> str:
    """A product id, case-folded per ``options.id_case``."""
    e = id_expr(raw, column)
    return {"upper": f"upper({e})", "lower": f"lower({e})"}.get(opts.id_case, e)


def text_expr(raw: RawTable, column: str) -> str:
    t, c = _type(raw, column), q(column)
    if pa.types.is_floating(t):
        return id_expr(raw, column)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _null_words(f"trim(regexp_replace({c}, '\\s+', ' ', 'g'))")
    return f"nullif(trim(CAST({c} AS VARCHAR)), '')"


def number_expr(raw: RawTable, column: str, *, price: bool = False) -> str:
    """A float; strings may carry thousands separators (1,250.00), a decimal comma (12,50) and,
    for prices, a currency sign ($ ¥ € £ 元 ...). Non-finite values become NULL (and fail)."""
    t, c = _type(raw, column), q(column)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        v = f"CAST({c} AS DOUBLE)"
    elif pa.types.is_boolean(t):
        v = f"CAST(CAST({c} AS INTEGER) AS DOUBLE)"
    else:
        s = f"trim(CAST({c} AS VARCHAR))"
        if price:
            s = f"regexp_replace({s}, {lit(_CURRENCY)}, '', 'g')"
        v = (
            f"(CASE WHEN regexp_full_match({s}, '[+-]?\\d{{1,3}}(,\\d{{3}})+(\\.\\d+)?') "
            f"THEN TRY_CAST(replace({s}, ',', '') AS DOUBLE) "
            f"WHEN regexp_full_match({s}, '[+-]?\\d+,\\d{{1,2}}') THEN TRY_CAST(replace({s}, ',', '.') AS DOUBLE) "
            f"ELSE TRY_CAST({s} AS DOUBLE) END)"
        )
    return f"(CASE WHEN isfinite({v}) THEN {v} END)"


def is_present(raw: RawTable, column: str) -> str:
    t, c = _type(raw, column), q(column)
    if pa.types.is_floating(t):
        return f"({c} IS NOT NULL AND NOT isnan({c}))"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return f"nullif(trim({c}), '') IS NOT NULL"
    return f"{c} IS NOT NULL"


def check(
    con: duckdb.DuckDBPyConnection, raw: RawTable, view: str, column: str, expr: str, what: str
) -> None:
    """Raise InputError at the first row where ``column`` has a value but ``expr`` is NULL."""
    bad = one(
        con.execute(
            f"SELECT {ROW}, CAST({q(column)} AS VARCHAR) FROM {view} "
            f"WHERE {is_present(raw, column)} AND ({expr}) IS NULL ORDER BY {ROW} LIMIT 1"
        ).fetchall()
    )
    if bad:
        raise InputError(f"cannot read {bad[1]!r} as {what}", file=raw.file, row=int(bad[0]), column=column)


def check_id_length(
    con: duckdb.DuckDBPyConnection, raw: RawTable, table: str, fields: dict[str, str | None]
) -> None:
    """Refuse the first id longer than ``MAX_ID_CHARS`` in ``table`` (field -> source column)."""
    for field, column in fields.items():
        if column is None:
            continue
        bad = one(
            con.execute(
                f"SELECT {ROW}, length({field}) FROM {table} WHERE length({field}) > {MAX_ID_CHARS} "
                f"ORDER BY {ROW} LIMIT 1"
            ).fetchall()
        )
        if bad:
            raise InputError(
                f"an id of {bad[1]:,} characters: ids are limited to {MAX_ID_CHARS:,}",
                file=raw.file,
                row=int(bad[0]),
                column=column,
            )


def timestamp_expr(
    con: duckdb.DuckDBPyConnection, raw: RawTable, view: str, columns: list[str], fmt: str | None
) -> str:
    """A naive-UTC TIMESTAMP from one typed column or from string column(s) joined by a space.

    Without ``fmt`` the format is detected on up to 2,000 distinct values: ISO 8601 (with or
    without offset), epoch seconds/milliseconds, then the common day/month orders in
    ``_TS_FORMATS`` (month-first before day-first); the first that reads every sample wins."""
    if len(columns) == 1:
        t, c = _type(raw, columns[0]), q(columns[0])
        if pa.types.is_timestamp(t):
            return f"timezone('UTC', {c})" if t.tz else f"CAST({c} AS TIMESTAMP)"
        if pa.types.is_date(t):
            return f"CAST({c} AS TIMESTAMP)"
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return (
                f"(CASE WHEN abs({c}) >= 1e14 THEN NULL WHEN abs({c}) >= 1e11 THEN epoch_ms(CAST({c} AS BIGINT)) "
                f"ELSE timezone('UTC', to_timestamp(CAST({c} AS DOUBLE))) END)"
            )
        s = f"nullif(trim(CAST({c} AS VARCHAR)), '')"
    else:
        s = (
            "nullif(trim(concat_ws(' ', "
            + ", ".join(f"trim(CAST({q(c)} AS VARCHAR))" for c in columns)
            + ")), '')"
        )
    if fmt:
        return f"TRY_STRPTIME({s}, {lit(fmt)})"
    candidates = [
        f"timezone('UTC', TRY_CAST({s} AS TIMESTAMPTZ))",
        f"(CASE WHEN regexp_full_match({s}, '\\d{{9,10}}') THEN timezone('UTC', to_timestamp(CAST({s} AS BIGINT))) "
        f"WHEN regexp_full_match({s}, '\\d{{12,13}}') THEN epoch_ms(CAST({s} AS BIGINT)) END)",
    ] + [f"TRY_STRPTIME({s}, {lit(f)})" for f in _TS_FORMATS]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __ts_sample AS SELECT DISTINCT {s} AS v FROM {view} LIMIT 2000"
    )
    n = scalar(con, "SELECT count(*) FROM __ts_sample WHERE v IS NOT NULL")
    if n == 0:
        return candidates[0]
    best, best_ok = candidates[0], -1
    for cand in candidates:
        expr = cand.replace(s, "v")
        ok = scalar(con, f"SELECT count(*) FROM __ts_sample WHERE v IS NOT NULL AND ({expr}) IS NOT NULL")
        if ok == n:
            return cand
        if ok > best_ok:
            best, best_ok = cand, ok
    return best


def check_timestamp(
    con: duckdb.DuckDBPyConnection, raw: RawTable, view: str, columns: list[str], expr: str
) -> None:
    present = " OR ".join(is_present(raw, c) for c in columns)
    shown = " || ' ' || ".join(f"coalesce(CAST({q(c)} AS VARCHAR), '')" for c in columns)
    bad = one(
        con.execute(
            f"SELECT {ROW}, {shown} FROM {view} WHERE ({present}) AND ({expr}) IS NULL ORDER BY {ROW} LIMIT 1"
        ).fetchall()
    )
    if bad:
        raise InputError(
            f"cannot read {bad[1].strip()!r} as a date/time (give options.timestamp_format, e.g. %d/%m/%Y %H:%M)",
            file=raw.file,
            row=int(bad[0]),
            column=",".join(columns),
        )


def _register(con: duckdb.DuckDBPyConnection, raw: RawTable, view: str) -> None:
    con.register(view, raw.table)


def _excluded(con: duckdb.DuckDBPyConnection, table: str, regex: str | None, report: LoadReport) -> str:
    """Move rows whose product id matches ``regex`` out of ``table``; return a WHERE condition."""
    if not regex:
        return "TRUE"
    cond = f"regexp_matches(product_id, {lit(regex)})"
    for pid, n in con.execute(
        f"SELECT product_id, count(*) n FROM {table} WHERE {cond} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20"
    ).fetchall():
        report.excluded_codes[pid] = report.excluded_codes.get(pid, 0) + int(n)
    return f"NOT {cond}"


# ---------------------------------------------------------------- products


def build_products(
    con: duckdb.DuckDBPyConnection, raw: RawTable, cols: CatalogColumns, opts: Options, report: LoadReport
) -> pa.Table:
    """A PRODUCTS table from a catalog file."""
    view = "__cat_raw"
    _register(con, raw, view)
    pid = resolve(raw, "product_id", cols.product_id, required=True, mapped_as="catalog.product_id",
                  aliases=("id", "sku"))  # fmt: skip
    assert pid is not None
    title = resolve(raw, "title", cols.title, required=False, mapped_as="catalog.title",
                    aliases=("name", "product_name"))  # fmt: skip
    cats = resolve_many(raw, "category", cols.category, mapped_as="catalog.category")
    brand = resolve(raw, "brand", cols.brand, required=False, mapped_as="catalog.brand")
    price = resolve(raw, "price", cols.price, required=False, mapped_as="catalog.price")
    stock = resolve(raw, "stock", cols.stock, required=False, mapped_as="catalog.stock")
    margin = resolve(raw, "margin", cols.margin, required=False, mapped_as="catalog.margin")
    cost = resolve(raw, "cost", cols.cost, required=False, mapped_as="catalog.cost")
    if margin and cost:
        raise ConfigError(
            f"{raw.file}: both a margin column ({margin!r}) and a cost column ({cost!r}) are mapped; "
            "map one of them (catalog.margin or catalog.cost)"
        )
    attrs = [resolve(raw, a, a, required=True, mapped_as="catalog.attributes") or a for a in cols.attributes]
    latest = (
        resolve(raw, "latest_by", opts.latest_by, required=True, mapped_as="options.latest_by")
        if opts.latest_by
        else None
    )

    price_e = number_expr(raw, price, price=True) if price else "NULL::DOUBLE"
    if price:
        check(con, raw, view, price, price_e, "a price (a number like 12.50)")
        if pa.types.is_floating(_type(raw, price)):  # NaN read from JSON/Parquet: not "missing" here
            nan = one(con.execute(f"SELECT {ROW} FROM {view} WHERE isnan({q(price)}) ORDER BY {ROW} LIMIT 1").fetchall())
            if nan:
                raise InputError(
                    "NaN is not a price: leave it empty (null) for an unknown price",
                    file=raw.file, row=int(nan[0]), column=price,
                )  # fmt: skip
        bad = one(
            con.execute(
                f"SELECT {ROW}, {price_e} FROM {view} WHERE {price_e} < 0 ORDER BY {ROW} LIMIT 1"
            ).fetchall()
        )
        if bad:
            raise InputError(f"negative price {bad[1]}", file=raw.file, row=int(bad[0]), column=price)
    stock_e = "NULL::BIGINT"
    if stock:
        num = number_expr(raw, stock)
        whole = f"{num} = floor({num}) AND abs({num}) < {_INT_LIMIT}"
        stock_e = f"(CASE WHEN {whole} THEN CAST({num} AS BIGINT) END)"
        check(con, raw, view, stock, stock_e, f"a stock count (a whole number below {_INT_LIMIT})")
    margin_e = _margin_expr(con, raw, view, margin, cost, price, price_e)
    order_key = ROW
    if latest:
        order_key = _sort_key(con, raw, view, latest, opts)

    levels = _levels_expr(raw, cats, opts)
    attr_e = _attributes_expr(con, raw, view, attrs)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __cat AS SELECT {ROW}, {pid_expr(raw, pid, opts)} AS product_id,
        {text_expr(raw, title) if title else "NULL::VARCHAR"} AS title,
        {levels} AS levels,
        {text_expr(raw, brand) if brand else "NULL::VARCHAR"} AS brand,
        {price_e} AS price, {stock_e} AS stock, {attr_e} AS attributes, {margin_e} AS margin,
        {order_key} AS __key
        FROM {view}"""
    )
    check_id_length(con, raw, "__cat", {"product_id": pid})
    report.blank_product_ids += scalar(con, "SELECT count(*) FROM __cat WHERE product_id IS NULL")
    keep = _excluded(con, "__cat", opts.exclude_product_regex, report)
    report.excluded_products += scalar(
        con, f"SELECT count(*) FROM __cat WHERE product_id IS NOT NULL AND NOT ({keep})"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __cat1 AS SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY
              {"__key DESC NULLS LAST, " if latest else ""}{ROW} {"DESC" if latest else "ASC"}) rn
            FROM __cat WHERE product_id IS NOT NULL AND {keep}) WHERE rn = 1"""
    )
    dropped = scalar(con, f"SELECT count(*) FROM __cat WHERE product_id IS NOT NULL AND {keep}") - scalar(
        con, "SELECT count(*) FROM __cat1"
    )
    if latest:
        report.older_snapshot_rows += dropped
    else:
        report.duplicate_products += dropped
    report.missing_titles += scalar(con, "SELECT count(*) FROM __cat1 WHERE title IS NULL")
    products = fetch(
        con,
        f"""WITH lv AS (
              SELECT {ROW}, v, min(pos) pos FROM (
                SELECT {ROW}, nullif(trim(unnest(levels)), '') v, generate_subscripts(levels, 1) pos FROM __cat1)
              WHERE v IS NOT NULL GROUP BY ALL),
            paths AS (
              SELECT {ROW}, string_agg(v, {lit(model.CATEGORY_SEP)} ORDER BY pos) path, arg_max(v, pos) leaf
              FROM lv GROUP BY {ROW})
            SELECT c.product_id, coalesce(c.title, c.product_id) title, p.leaf category, p.path category_path,
                   c.brand, c.price, c.stock, c.attributes, c.margin, NULL::VARCHAR sales_role
            FROM __cat1 c LEFT JOIN paths p USING ({ROW}) ORDER BY c.{ROW}""",
        model.PRODUCTS,
    )
    con.unregister(view)
    return products


def _margin_expr(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    view: str,
    margin: str | None,
    cost: str | None,
    price: str | None,
    price_e: str,
) -> str:
    """The margin, ``(price - cost) / price``, as a DOUBLE expression, from a margin column (a
    fraction like 0.35, or a percentage like "35%") or a cost column (needs the price; a price of
    0 gives no margin). Bad values raise InputError naming the row and column."""
    if margin:
        t = _type(raw, margin)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            s = f"trim(CAST({q(margin)} AS VARCHAR))"
            pct = f"ends_with({s}, '%')"
            num = f"TRY_CAST(trim(rtrim({s}, '%')) AS DOUBLE)"
            expr = f"(CASE WHEN {pct} THEN {num} / 100.0 ELSE {num} END)"
            is_pct = pct
        else:
            expr = number_expr(raw, margin)
            is_pct = "FALSE"
        expr = f"(CASE WHEN isfinite({expr}) THEN {expr} END)"
        check(con, raw, view, margin, expr, "a margin (a fraction like 0.35 or a percentage like 35%)")
        bad = one(
            con.execute(
                f"SELECT {ROW}, CAST({q(margin)} AS VARCHAR), {is_pct} FROM {view} "
                f"WHERE NOT ({expr} BETWEEN -1 AND 1) ORDER BY {ROW} LIMIT 1"
            ).fetchall()
        )
        if bad:
            why = (
                "a percentage margin must be between -100% and 100%"
                if bad[2]
                else "a margin is a fraction of the price between -1 and 1 (write 35% or 0.35, not 35)"
            )
            raise InputError(f"{why}, got {bad[1]!r}", file=raw.file, row=int(bad[0]), column=margin)
        return expr
    if cost:
        if not price:
            raise InputError(
                f"a cost column ({cost!r}) needs a price column to give a margin; map catalog.price",
                file=raw.file,
                column=cost,
            )
        cost_e = number_expr(raw, cost, price=True)
        check(con, raw, view, cost, cost_e, "a cost (a number like 12.50)")
        bad = one(
            con.execute(f"SELECT {ROW}, {cost_e} FROM {view} WHERE {cost_e} < 0 ORDER BY {ROW} LIMIT 1").fetchall()
        )
        if bad:
            raise InputError(f"negative cost {bad[1]}", file=raw.file, row=int(bad[0]), column=cost)
        return f"(CASE WHEN {price_e} > 0 THEN ({price_e} - {cost_e}) / {price_e} END)"
    return "NULL::DOUBLE"


def _sort_key(con: duckdb.DuckDBPyConnection, raw: RawTable, view: str, column: str, opts: Options) -> str:
    """``latest_by`` as something orderable: a timestamp if it reads as one, else a number, else text."""
    t = _type(raw, column)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return q(column)
    ts = timestamp_expr(con, raw, view, [column], opts.timestamp_format)
    num = number_expr(raw, column)
    for expr in (ts, num):
        if not one(
            con.execute(
                f"SELECT 1 FROM {view} WHERE {is_present(raw, column)} AND ({expr}) IS NULL LIMIT 1"
            ).fetchall()
        ):
            return expr
    return text_expr(raw, column)


def _levels_expr(raw: RawTable, cats: list[str], opts: Options) -> str:
    """Category levels top -> leaf as a VARCHAR list."""
    if not cats:
        return "CAST([] AS VARCHAR[])"
    if len(cats) > 1:
        return "[" + ", ".join(text_expr(raw, c) for c in cats) + "]"
    t, c = _type(raw, cats[0]), q(cats[0])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"CAST({c} AS VARCHAR[])"
    if opts.category_sep:
        return f"string_split({text_expr(raw, cats[0])}, {lit(opts.category_sep)})"
    return f"[{text_expr(raw, cats[0])}]"


def _attributes_expr(con: duckdb.DuckDBPyConnection, raw: RawTable, view: str, attrs: list[str]) -> str:
    """A JSON object string of the attribute columns; numeric-looking text columns become numbers."""
    if not attrs:
        return "NULL::VARCHAR"
    parts, present = [], []
    for a in attrs:
        t = _type(raw, a)
        val = q(a)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            num = number_expr(raw, a)
            text = text_expr(raw, a)
            if not one(
                con.execute(
                    f"SELECT 1 FROM {view} WHERE {text} IS NOT NULL AND {num} IS NULL LIMIT 1"
                ).fetchall()
            ):
                all_int = not one(
                    con.execute(f"SELECT 1 FROM {view} WHERE {num} <> floor({num}) LIMIT 1").fetchall()
                )
                all_int = all_int and not one(
                    con.execute(f"SELECT 1 FROM {view} WHERE abs({num}) >= {_INT_LIMIT} LIMIT 1").fetchall()
                )
                val = f"CAST({num} AS BIGINT)" if all_int else num
            else:
                val = text
        elif pa.types.is_floating(t):
            val = f"(CASE WHEN isfinite({val}) THEN {val} END)"
        parts.append(f"{lit(a)}, {val}")
        present.append(f"{val} IS NOT NULL")
    return f"(CASE WHEN {' OR '.join(present)} THEN CAST(json_object({', '.join(parts)}) AS VARCHAR) END)"


# ---------------------------------------------------------------- orders


def stage_orders(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    cols: OrderColumns,
    opts: Options,
    report: LoadReport,
    *,
    derive_catalog: bool,
) -> bool:
    """Parse order lines into the temp table ``__ol1`` with flags, and the view ``__ol`` of the
    lines that pass steps 1-3 of the module docstring. Returns whether a title column was read."""
    view = "__ord_raw"
    _register(con, raw, view)
    oid = resolve(raw, "order_id", cols.order_id, required=True, mapped_as="orders.order_id")
    pid = resolve(raw, "product_id", cols.product_id, required=True, mapped_as="orders.product_id")
    assert oid is not None and pid is not None
    qty = resolve(raw, "quantity", cols.quantity, required=False, mapped_as="orders.quantity")
    cust = resolve(raw, "customer", cols.customer, required=False, mapped_as="orders.customer")
    if cust is None and "customer_id" in raw.columns:
        cust = "customer_id"
    tss = resolve_many(raw, "timestamp", cols.timestamp, mapped_as="orders.timestamp")
    if not tss and "ts" in raw.columns:
        tss = ["ts"]
    title = price = None
    if derive_catalog or cols.price or opts.zero_price == "drop":
        # With a catalog file, title/price columns of the order file are optional extras: a flat
        # `--map title=名称` meant for the catalog must not fail on an order file without it.
        t_col = cols.title if derive_catalog or cols.title in raw.columns else None
        p_col = cols.price if derive_catalog or cols.price in raw.columns else None
        title = resolve(raw, "title", t_col, required=False, mapped_as="orders.title")
        price = resolve(raw, "price", p_col, required=False, mapped_as="orders.price")
    if opts.zero_price == "drop" and price is None:
        raise InputError(
            "options.zero_price is 'drop' but no column is mapped to orders.price", file=raw.file
        )

    qty_e = number_expr(raw, qty) if qty else "1.0::DOUBLE"
    if qty and not _is_numeric(raw, qty):
        check(con, raw, view, qty, qty_e, "a quantity (a number)")
    price_e = number_expr(raw, price, price=True) if price else "NULL::DOUBLE"
    if price and not _is_numeric(raw, price):
        check(con, raw, view, price, price_e, "a price (a number like 12.50)")
    ts_e = "NULL::TIMESTAMP"
    if tss:
        ts_e = timestamp_expr(con, raw, view, tss, opts.timestamp_format)
        check_timestamp(con, raw, view, tss, ts_e)
    cancel = "quantity < 0" + (
        f" OR starts_with(order_id, {lit(opts.cancel_prefix)})" if opts.cancel_prefix else ""
    )
    excluded = (
        f"regexp_matches(product_id, {lit(opts.exclude_product_regex)})"
        if opts.exclude_product_regex
        else "FALSE"
    )
    title_e = _null_words(f"trim(CAST({q(title)} AS VARCHAR))") if title else "NULL::VARCHAR"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __ol1 AS SELECT *, coalesce({cancel}, FALSE) is_cancel,
              coalesce({excluded}, FALSE) excluded FROM (
            SELECT {ROW}, {id_expr(raw, oid)} order_id, {pid_expr(raw, pid, opts)} product_id, {qty_e} quantity,
              {id_expr(raw, cust) if cust else "NULL::VARCHAR"} customer_id, {ts_e} ts, {title_e} title,
              {price_e} price FROM {view})"""
    )
    check_id_length(con, raw, "__ol1", {"order_id": oid, "product_id": pid, "customer_id": cust})
    con.unregister(view)
    zero_price = "price = 0" if opts.zero_price == "drop" else "FALSE"
    counts = one(
        con.execute(
            f"""SELECT count(*) FILTER (WHERE product_id IS NULL),
              count(*) FILTER (WHERE product_id IS NOT NULL AND order_id IS NULL),
              count(*) FILTER (WHERE product_id IS NOT NULL AND order_id IS NOT NULL AND excluded),
              count(*) FILTER (WHERE product_id IS NOT NULL AND order_id IS NOT NULL AND NOT excluded AND quantity = 0),
              count(*) FILTER (WHERE product_id IS NOT NULL AND order_id IS NOT NULL AND NOT excluded AND quantity <> 0
                               AND {zero_price})
            FROM __ol1"""
        ).fetchall()
    )
    assert counts is not None
    report.blank_product_ids += int(counts[0])
    report.blank_order_ids += int(counts[1])
    report.excluded_lines += int(counts[2])
    report.zero_quantity_lines += int(counts[3])
    report.zero_price_lines += int(counts[4])
    if counts[2]:
        for code, n in con.execute(
            "SELECT product_id, count(*) n FROM __ol1 WHERE excluded AND order_id IS NOT NULL "
            "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20"
        ).fetchall():
            report.excluded_codes[code] = report.excluded_codes.get(code, 0) + int(n)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW __ol AS SELECT * FROM __ol1 WHERE product_id IS NOT NULL
            AND order_id IS NOT NULL AND NOT excluded AND quantity <> 0 AND NOT ({zero_price})"""
    )
    return title is not None


def _is_numeric(raw: RawTable, column: str) -> bool:
    t = _type(raw, column)
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def derive_products(con: duckdb.DuckDBPyConnection, source: str) -> pa.Table:
    """A catalog from order lines (``source`` = ``__ol1``: every line with a product id that is not
    excluded) or from view rows: title = the most frequent title on purchase lines with a positive
    price (then on any line; ties: alphabetical; whitespace collapsed), price = median positive
    price of purchase lines; no category/brand."""
    if source == "__ol1":
        where = "WHERE product_id IS NOT NULL AND NOT excluded"
        good = "(NOT is_cancel AND coalesce(price > 0, TRUE) AND quantity > 0)"
        title_cte = f"""t AS (SELECT product_id, title, row_number() OVER (
                PARTITION BY product_id ORDER BY n_good DESC, n DESC, title) rn
              FROM (SELECT product_id, nullif(trim(regexp_replace(title, '\\s+', ' ', 'g')), '') title,
                      sum(n_good) n_good, sum(n) n
                    FROM (SELECT product_id, title, count(*) FILTER (WHERE {good}) n_good, count(*) n
                          FROM __ol1 {where} AND title IS NOT NULL GROUP BY ALL)
                    GROUP BY ALL) WHERE title IS NOT NULL)"""
        price = f"median(price) FILTER (WHERE {good} AND price > 0)"
    else:
        where = ""
        title_cte = "t AS (SELECT NULL::VARCHAR product_id, NULL::VARCHAR title, 1 rn WHERE FALSE)"
        price = "NULL::DOUBLE"
    return fetch(
        con,
        f"""WITH p AS (SELECT product_id, min({ROW}) first_row, {price} price FROM {source} {where} GROUP BY 1),
            {title_cte}
            SELECT p.product_id, coalesce(t.title, p.product_id) title, NULL::VARCHAR category,
              NULL::VARCHAR category_path, NULL::VARCHAR brand, p.price, NULL::BIGINT stock, NULL::VARCHAR attributes,
              NULL::DOUBLE margin, NULL::VARCHAR sales_role
            FROM p LEFT JOIN t ON t.product_id = p.product_id AND t.rn = 1 ORDER BY p.first_row, p.product_id""",
        model.PRODUCTS,
    )


def finish_orders(
    con: duckdb.DuckDBPyConnection, products: pa.Table, opts: Options, report: LoadReport
) -> pa.Table:
    """Steps 4-7 of the module docstring on ``__ol``; returns an ORDERS table."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __orders_in AS SELECT DISTINCT order_id FROM __ol1 "
        "WHERE NOT is_cancel AND order_id IS NOT NULL AND product_id IS NOT NULL"
    )
    # 4. cancellations: absorbed units per purchase line, latest eligible purchase first.
    stats = one(
        con.execute("SELECT count(*), coalesce(sum(abs(quantity)), 0) FROM __ol WHERE is_cancel").fetchall()
    )
    assert stats is not None
    report.cancellation_lines += int(stats[0])
    report.cancelled_quantity += float(stats[1])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE __canc AS SELECT customer_id, product_id, sum(abs(quantity)) cq,
           max(ts) cts FROM __ol WHERE is_cancel AND customer_id IS NOT NULL GROUP BY ALL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __absorb AS
        SELECT {ROW}, customer_id, product_id, quantity,
          greatest(0, least(quantity, cq - coalesce(sum(quantity) OVER (
            PARTITION BY customer_id, product_id ORDER BY ts DESC NULLS LAST, {ROW} DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) absorbed
        FROM (SELECT o.{ROW}, o.customer_id, o.product_id, o.quantity, o.ts, c.cq
              FROM __ol o JOIN __canc c ON o.customer_id = c.customer_id AND o.product_id = c.product_id
              WHERE NOT o.is_cancel AND (o.ts IS NULL OR c.cts IS NULL OR o.ts <= c.cts))"""
    )
    netted = one(
        con.execute(
            "SELECT coalesce(sum(absorbed), 0), count(*) FILTER (WHERE absorbed >= quantity) FROM __absorb"
        ).fetchall()
    )
    assert netted is not None
    report.netted_quantity += float(netted[0])
    report.purchase_lines_cancelled += int(netted[1])
    if stats[0]:
        report.unmatched_cancellation_lines += scalar(
            con,
            """SELECT count(*) FROM __ol o WHERE is_cancel AND NOT EXISTS (SELECT 1 FROM __absorb b
               WHERE b.customer_id = o.customer_id AND b.product_id = o.product_id)""",
        )
    # 5. unknown products; 6. merge repeated (order, product) lines
    con.register("__products", products.select(["product_id"]))
    unknown = one(
        con.execute(
            """SELECT count(*), count(DISTINCT product_id) FROM __ol o
               WHERE NOT is_cancel AND product_id NOT IN (SELECT product_id FROM __products)"""
        ).fetchall()
    )
    assert unknown is not None
    report.unknown_product_lines += int(unknown[0])
    report.unknown_product_ids += int(unknown[1])
    if unknown[0] and len(report.unknown_product_samples) < 5:
        report.unknown_product_samples += [
            str(r[0])
            for r in con.execute(
                """SELECT DISTINCT product_id FROM __ol WHERE NOT is_cancel AND product_id IS NOT NULL
                   AND product_id NOT IN (SELECT product_id FROM __products) ORDER BY 1 LIMIT 5"""
            ).fetchall()
        ][: 5 - len(report.unknown_product_samples)]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __merged AS SELECT order_id, product_id, sum(q) quantity,
          min(customer_id) customer_id, min(ts) ts, min({ROW}) {ROW}, count(*) n
        FROM (SELECT o.*, o.quantity - coalesce(a.absorbed, 0) q FROM __ol o LEFT JOIN __absorb a USING ({ROW})
              WHERE NOT o.is_cancel AND o.product_id IN (SELECT product_id FROM __products))
        WHERE q > 0 GROUP BY order_id, product_id"""
    )
    con.unregister("__products")
    report.merged_duplicate_lines += scalar(con, "SELECT coalesce(sum(n - 1), 0) FROM __merged")
    # 7. giant baskets
    limit = int(opts.giant_basket)
    report.giant_basket_limit = limit
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __giant AS SELECT order_id, count(*) k FROM __merged GROUP BY 1
            HAVING {limit} > 0 AND count(*) > {limit}"""
    )
    g = one(con.execute("SELECT count(*), coalesce(sum(k), 0) FROM __giant").fetchall())
    assert g is not None
    report.giant_baskets += int(g[0])
    report.giant_basket_lines += int(g[1])
    report.empty_baskets += scalar(
        con, "SELECT count(*) FROM __orders_in WHERE order_id NOT IN (SELECT order_id FROM __merged)"
    )
    return fetch(
        con,
        f"""SELECT order_id, product_id, quantity, customer_id, ts FROM __merged
            WHERE order_id NOT IN (SELECT order_id FROM __giant) ORDER BY {ROW}, order_id, product_id""",
        model.ORDERS,
    )


def basket_lines_table(lines: pa.Array, file: str, delimiter: str) -> RawTable:
    """One basket per line (``a,b,c``) -> a RawTable with order_id (= line number), product_id."""
    import pyarrow.compute as pc

    items = pc.split_pattern(lines, delimiter)
    flat = pc.list_flatten(items)
    parent = pc.list_parent_indices(items)
    row = pc.add(pc.cast(parent, pa.int64()), 1)
    table = pa.table(
        {
            "order_id": pc.cast(row, pa.string()),
            "product_id": pc.utf8_trim(flat, ' \t\r"'),
            ROW: row,
        }
    )
    return RawTable(table, file, "csv", delimiter=delimiter, header=False)


# ---------------------------------------------------------------- views


def build_views(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    cols: ViewColumns,
    opts: Options,
    report: LoadReport,
    products: pa.Table | None,
) -> pa.Table:
    """A VIEWS table; rows without session/product or with an unknown product are dropped and counted."""
    view = "__views_raw"
    _register(con, raw, view)
    sess = resolve(raw, "session", cols.session, required=False, mapped_as="views.session")
    if sess is None and "session_id" in raw.columns:
        sess = "session_id"
    if sess is None:
        resolve(raw, "session", None, required=True, mapped_as="views.session")
    pid = resolve(raw, "product_id", cols.product_id, required=True, mapped_as="views.product_id")
    assert sess is not None and pid is not None
    tss = resolve_many(raw, "timestamp", cols.timestamp, mapped_as="views.timestamp")
    if not tss and "ts" in raw.columns:
        tss = ["ts"]
    event = resolve(raw, "event", cols.event, required=False, mapped_as="views.event")
    ts_e = "NULL::TIMESTAMP"
    if tss:
        ts_e = timestamp_expr(con, raw, view, tss, opts.timestamp_format)
        check_timestamp(con, raw, view, tss, ts_e)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __v0 AS SELECT {ROW}, {id_expr(raw, sess)} session_id,
        {pid_expr(raw, pid, opts)} product_id, {ts_e} ts,
        coalesce({text_expr(raw, event) if event else "NULL"}, 'view') event FROM {view}"""
    )
    check_id_length(con, raw, "__v0", {"session_id": sess, "product_id": pid})
    con.unregister(view)
    report.blank_product_ids += scalar(
        con, "SELECT count(*) FROM __v0 WHERE product_id IS NULL OR session_id IS NULL"
    )
    con.execute("DELETE FROM __v0 WHERE product_id IS NULL OR session_id IS NULL")
    keep = _excluded(con, "__v0", opts.exclude_product_regex, report)
    report.excluded_lines += scalar(con, f"SELECT count(*) FROM __v0 WHERE NOT ({keep})")
    con.execute(f"DELETE FROM __v0 WHERE NOT ({keep})")
    if products is not None:
        con.register("__products", products.select(["product_id"]))
        unknown = one(
            con.execute(
                "SELECT count(*), count(DISTINCT product_id) FROM __v0 ANTI JOIN __products USING (product_id)"
            ).fetchall()
        )
        assert unknown is not None
        report.unknown_product_lines += int(unknown[0])
        report.unknown_product_ids += int(unknown[1])
        con.execute("DELETE FROM __v0 WHERE product_id NOT IN (SELECT product_id FROM __products)")
        con.unregister("__products")
    return fetch(con, f"SELECT session_id, product_id, ts, event FROM __v0 ORDER BY {ROW}", model.VIEWS)


# ---------------------------------------------------------------- listed pairs


def build_listed_pairs(
    con: duckdb.DuckDBPyConnection, pairs: pa.Table, products: pa.Table, report: LoadReport
) -> pa.Table:
    """Keep listed pairs (src, dst, kind) whose both ends are catalog products; drop self pairs and repeats."""
    con.register("__pairs", pairs)
    con.register("__products", products.select(["product_id"]))
    total = pairs.num_rows
    out = fetch(
        con,
        """SELECT DISTINCT src, dst, kind FROM __pairs
           WHERE src IN (SELECT product_id FROM __products) AND dst IN (SELECT product_id FROM __products)
             AND src <> dst ORDER BY kind, src, dst""",
        model.LISTED_PAIRS,
    )
    outside = scalar(
        con,
        """SELECT count(*) FROM __pairs WHERE src NOT IN (SELECT product_id FROM __products)
           OR dst NOT IN (SELECT product_id FROM __products)""",
    )
    report.dropped_listed_pairs += outside
    if total - outside - out.num_rows:
        report.extra["listed pairs repeated or pointing to themselves (dropped)"] = (
            total - outside - out.num_rows
        )
    agg = out.group_by("kind").aggregate([("src", "count")])
    for kind, n in zip(agg["kind"].to_pylist(), agg["src_count"].to_pylist(), strict=True):
        report.listed_pairs[str(kind)] = report.listed_pairs.get(str(kind), 0) + int(n)
    con.unregister("__pairs")
    con.unregister("__products")
    return out

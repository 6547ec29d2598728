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

import duckdb
import pyarrow as pa

from tiein import model
from tiein.errors import ConfigError, InputError
from tiein.loaders.mapping import CatalogColumns, Options, ViewColumns
from tiein.loaders.read import ROW, RawTable
from tiein.loaders.report import LoadReport
from tiein.loaders.sql import (
    _INT_LIMIT,
    _excluded,
    _register,
    _type,
    check,
    check_id_length,
    check_timestamp,
    fetch,
    id_expr,
    is_present,
    lit,
    number_expr,
    one,
    pid_expr,
    q,
    resolve,
    resolve_many,
    scalar,
    text_expr,
    timestamp_expr,
)

# ---------------------------------------------------------------- products


def build_products(
    con: duckdb.DuckDBPyConnection, raw: RawTable, cols: CatalogColumns, opts: Options, report: LoadReport
) -> pa.Table:
    """A PRODUCTS table from a catalog file."""
    view = "__cat_raw"
    _register(con, raw, view)
    pid = resolve(
        raw,
        "product_id",
        cols.product_id,
        required=True,
        mapped_as="catalog.product_id",
        aliases=("id", "sku"),
    )
    assert pid is not None
    title = resolve(
        raw, "title", cols.title, required=False, mapped_as="catalog.title", aliases=("name", "product_name")
    )
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
            nan = one(
                con.execute(
                    f"SELECT {ROW} FROM {view} WHERE isnan({q(price)}) ORDER BY {ROW} LIMIT 1"
                ).fetchall()
            )
            if nan:
                raise InputError(
                    "NaN is not a price: leave it empty (null) for an unknown price",
                    file=raw.file,
                    row=int(nan[0]),
                    column=price,
                )
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
                   c.brand, c.price, c.stock, c.attributes, c.margin, NULL::VARCHAR sales_role,
                   NULL::VARCHAR product_type
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
            con.execute(
                f"SELECT {ROW}, {cost_e} FROM {view} WHERE {cost_e} < 0 ORDER BY {ROW} LIMIT 1"
            ).fetchall()
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

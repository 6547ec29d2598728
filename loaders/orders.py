"""Order lines: staging, cleaning (cancellations netted, unknown products dropped, repeated lines
merged, giant baskets dropped; the steps are listed in :mod:`tiein.loaders.build`), deriving a
catalog from them when there is none."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from tiein import model
from tiein.errors import InputError
from tiein.loaders.mapping import Options, OrderColumns
from tiein.loaders.read import ROW, RawTable
from tiein.loaders.report import LoadReport
from tiein.loaders.sql import (
    _null_words,
    _register,
    _type,
    check,
    check_id_length,
    check_timestamp,
    fetch,
    id_expr,
    lit,
    number_expr,
    one,
    pid_expr,
    q,
    resolve,
    resolve_many,
    scalar,
    timestamp_expr,
)


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
    seg = resolve(raw, "segment", cols.segment, required=False, mapped_as="orders.segment")
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
              {price_e} price, {_segment_expr(seg)} segment FROM {view})"""
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
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


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
              NULL::DOUBLE margin, NULL::VARCHAR sales_role, NULL::VARCHAR product_type
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
            """SELECT count(*), count(DISTINCT product_id), (list(DISTINCT product_id ORDER BY product_id))[1:5]
               FROM __ol o WHERE NOT is_cancel AND product_id NOT IN (SELECT product_id FROM __products)"""
        ).fetchall()
    )
    assert unknown is not None
    report.unknown_product_lines += int(unknown[0])
    report.unknown_order_lines += int(unknown[0])
    report.unknown_product_ids += int(unknown[1])
    report.unknown_product_samples += list(unknown[2] or [])[: 5 - len(report.unknown_product_samples)]
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


def order_segments(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """After :func:`finish_orders`: the segment of every kept order that has one (an order whose
    lines name several gets the smallest), an :data:`tiein.model.ORDER_SEGMENTS` table."""
    return fetch(
        con,
        """SELECT o.order_id, min(l.segment) AS segment FROM (SELECT DISTINCT order_id FROM __merged
             WHERE order_id NOT IN (SELECT order_id FROM __giant)) o
           JOIN __ol1 l ON l.order_id = o.order_id AND NOT l.is_cancel AND l.segment IS NOT NULL
           GROUP BY o.order_id ORDER BY o.order_id""",
        model.ORDER_SEGMENTS,
    )


def _segment_expr(col: str | None) -> str:
    """The segment of a line: the column's text trimmed, blank as null (NULL without a column)."""
    if col is None:
        return "NULL::VARCHAR"
    return f"nullif(trim(CAST({q(col)} AS VARCHAR)), '')"


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

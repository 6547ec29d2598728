"""Load catalog / order / browsing files with a :class:`~tiein.loaders.mapping.Mapping` into a :class:`Loaded`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tiein import model
from tiein.errors import ConfigError, InputError
from tiein.loaders import build, sql
from tiein.loaders import orders as order_lines
from tiein.loaders.limits import read_input
from tiein.loaders.mapping import Mapping
from tiein.loaders.pairs import read_pairs
from tiein.loaders.read import RawTable, decode, read_lines, read_table, sniff_delimiter
from tiein.loaders.report import FileRead, LoadReport

Progress = Callable[[str, int, int], None]


@dataclass
class Loaded:
    """Everything one load produced; every table follows its :mod:`tiein.model` schema."""

    name: str
    products: pa.Table  # model.PRODUCTS
    orders: pa.Table  # model.ORDERS (maybe empty)
    views: pa.Table  # model.VIEWS (maybe empty)
    listed_pairs: pa.Table  # model.LISTED_PAIRS (maybe empty)
    report: LoadReport
    sets: pa.Table = field(default_factory=model.SETS.empty_table)  # content sets (loaders/sets.py)
    # each order's customer segment (``--map segment=COLUMN``; empty without one): tiein.segments
    segments: pa.Table = field(default_factory=model.ORDER_SEGMENTS.empty_table)


def read_file(path: Path, role: str, mapping: Mapping, report: LoadReport) -> RawTable:
    """Read one file per the mapping's options and note it in the report."""
    o = mapping.options
    if role == "orders" and o.basket_per_line:
        raw = read_basket_lines(Path(path), encoding=o.encoding, delimiter=o.delimiter)
    else:
        raw = read_table(
            Path(path), encoding=o.encoding, delimiter=o.delimiter, header=o.header, sheet=o.sheet
        )
    report.files.append(FileRead(role, raw.file, raw.format, raw.num_rows, raw.encoding, raw.delimiter))
    return raw


def read_basket_lines(path: Path, *, encoding: str | None = None, delimiter: str | None = None) -> RawTable:
    """A file with one basket per line (``milk,bread``): order id = line number."""
    data = read_input(path)
    lines, enc = read_lines(data, str(path), encoding=encoding)
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    if not delimiter:
        head, _ = decode(data[: 1 << 16], str(path), encoding)
        delimiter = sniff_delimiter(head.decode("utf-8", errors="ignore"))
    raw = order_lines.basket_lines_table(lines, str(path), delimiter)
    raw.encoding = enc
    return raw


def load_files(
    *,
    catalog: Path | None,
    orders: Path | None,
    views: Path | None = None,
    pairs: Path | None = None,
    mapping: Mapping | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    sets: Path | None = None,
) -> Loaded:
    """Load any catalog / orders / views files (at least one) with ``mapping``.

    Without a catalog the products are derived from the order lines (title = most frequent
    ``orders.title``, price = median positive ``orders.price``; title = id when unmapped), or
    from the views. Raises :class:`InputError` (file, row, column) for bad input and
    :class:`ConfigError` for a bad mapping; nothing half-loaded is ever returned. ``pairs``: a file
    of listed pairs (:func:`tiein.loaders.pairs.read_pairs`), kept where both ends are products.
    ``sets``: a file of content sets (:mod:`tiein.loaders.sets`), every product a catalog product.
    Rows in errors: header = row 1 for CSV/XLSX, record number for JSON lines/Parquet.
    """
    mapping = mapping or Mapping()
    if catalog is None and orders is None and views is None:
        raise ConfigError("nothing to load: give a catalog, an orders or a views file")
    t0 = time.perf_counter()
    label = name or Path(catalog or orders or views or "load").name.split(".")[0]
    report = LoadReport(name=label)
    roles = [(r, p) for r, p in (("catalog", catalog), ("orders", orders), ("views", views)) if p is not None]
    total = len(roles) + 3
    raws: dict[str, RawTable] = {}
    for i, (role, path) in enumerate(roles, start=1):
        raws[role] = read_file(Path(path), role, mapping, report)
        if progress:
            progress(f"read {role}", i, total)
    loaded = load_raw(
        label,
        raws.get("catalog"),
        raws.get("orders"),
        raws.get("views"),
        mapping,
        report,
        listed_pairs=read_pairs(Path(pairs)) if pairs is not None else None,
        progress=progress,
        step=len(roles),
        total=total,
        started=t0,
    )
    if sets is not None:
        from tiein.loaders.sets import read_sets

        loaded.sets = read_sets(Path(sets), mapping, loaded.products, report)
    return loaded


def load_raw(
    name: str,
    catalog: RawTable | None,
    orders: RawTable | None,
    views: RawTable | None,
    mapping: Mapping,
    report: LoadReport,
    *,
    listed_pairs: pa.Table | None = None,
    progress: Progress | None = None,
    step: int = 0,
    total: int = 3,
    started: float | None = None,
) -> Loaded:
    """Build the model tables from tables already read (dataset loaders pre-process them)."""
    t0 = started if started is not None else time.perf_counter()
    report.name = name
    o = mapping.options

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(what, min(step, total), total)

    con = sql.connect()
    try:
        sql.check_options(con, o)
        products: pa.Table | None = None
        if catalog is not None:
            products = build.build_products(con, catalog, mapping.catalog, o, report)
        tick("catalog")
        order_table = model.empty(model.ORDERS)
        segment_table = model.empty(model.ORDER_SEGMENTS)
        if orders is not None:
            titled = order_lines.stage_orders(
                con, orders, mapping.orders, o, report, derive_catalog=products is None
            )
            if products is None:
                products = order_lines.derive_products(con, "__ol1")
                report.products_derived_from = "orders"
                if titled:
                    report.missing_titles += (
                        pc.sum(pc.equal(products["title"], products["product_id"])).as_py() or 0
                    )
            order_table = order_lines.finish_orders(con, products, o, report)
            if mapping.orders.segment is not None:
                segment_table = order_lines.order_segments(con)
        tick("orders")
        view_table = model.empty(model.VIEWS)
        if views is not None:
            view_table = build.build_views(con, views, mapping.views, o, report, products)
            if products is None:
                con.register("__vt", view_table)
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE __vsrc AS SELECT product_id, row_number() OVER () __row FROM __vt"
                )
                products = order_lines.derive_products(con, "__vsrc")
                report.products_derived_from = "views"
        assert products is not None
        pairs = model.empty(model.LISTED_PAIRS)
        if listed_pairs is not None and listed_pairs.num_rows:
            pairs = build.build_listed_pairs(con, listed_pairs, products, report)
        tick("views")
    except pa.ArrowInvalid as exc:  # a value the schema cannot hold, found late
        raise InputError(f"invalid data: {exc}") from exc
    except duckdb.Error as exc:  # a value DuckDB cannot convert that no check above caught
        files = ", ".join(r.file for r in (catalog, orders, views) if r is not None)
        raise InputError(f"invalid data: {str(exc).splitlines()[0]}", file=files or None) from None
    finally:
        con.close()
    report.products = products.num_rows
    report.order_lines = order_table.num_rows
    if order_table.num_rows:
        report.orders = len(order_table.column("order_id").unique())
        report.customers = len(order_table.column("customer_id").drop_null().unique())
    report.views = view_table.num_rows
    if view_table.num_rows:
        report.sessions = len(view_table.column("session_id").unique())
    report.seconds = time.perf_counter() - t0
    report.segments = len(segment_table.column("segment").unique()) if segment_table.num_rows else 0
    return Loaded(name, products, order_table, view_table, pairs, report, segments=segment_table)

"""Merging new inputs into a home's stored ones for `tiein update`: catalog upserts by the columns a
file has, new order and view rows deduplicated, and the baskets a change touches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.loaders import sql
from tiein.loaders.load import read_file
from tiein.loaders.report import LoadReport
from tiein.model import (
    PRODUCTS,
)

# Columns of a catalog file and the PRODUCTS columns each one sets.
_CATALOG_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "category": ("category", "category_path"),
    "brand": ("brand",),
    "price": ("price",),
    "stock": ("stock",),
    "attributes": ("attributes",),
    "margin": ("margin",),
}


def _catalog_columns(path: Path, mapping: Any) -> set[str]:
    """The PRODUCTS columns a catalog file sets (those of its columns the loader maps)."""

    raw = read_file(Path(path), "catalog", mapping, LoadReport(name="update"))
    cols = mapping.catalog
    found: set[str] = set()
    checks: dict[str, Callable[[], object]] = {
        "title": lambda: sql.resolve(
            raw,
            "title",
            cols.title,
            required=False,
            mapped_as="catalog.title",
            aliases=("name", "product_name"),
        ),
        "category": lambda: sql.resolve_many(raw, "category", cols.category, mapped_as="catalog.category"),
        "brand": lambda: sql.resolve(raw, "brand", cols.brand, required=False, mapped_as="catalog.brand"),
        "price": lambda: sql.resolve(raw, "price", cols.price, required=False, mapped_as="catalog.price"),
        "stock": lambda: sql.resolve(raw, "stock", cols.stock, required=False, mapped_as="catalog.stock"),
        "attributes": lambda: cols.attributes,
        "margin": lambda: (
            sql.resolve(raw, "margin", cols.margin, required=False, mapped_as="catalog.margin")
            or sql.resolve(raw, "cost", cols.cost, required=False, mapped_as="catalog.cost")
        ),
    }
    for name, check in checks.items():
        if check():
            found.update(_CATALOG_FIELDS[name])
    return found


def _upsert_products(old: pa.Table, rows: pa.Table, columns: set[str]) -> tuple[pa.Table, int, int]:
    """``old`` with ``rows`` upserted by product id: existing ids get the ``columns`` of their row,
    new ids their whole row (appended in file order). Returns (products, changed rows, new rows)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("o", old.append_column("__i", pa.array(range(old.num_rows), pa.int64())))
        con.register("r", rows.append_column("__j", pa.array(range(rows.num_rows), pa.int64())))
        sets = ", ".join(
            f"CASE WHEN r.product_id IS NOT NULL THEN r.{c} ELSE o.{c} END AS {c}"
            if c in columns
            else f"o.{c} AS {c}"
            for c in PRODUCTS.names[1:]
        )
        kept = con.sql(
            f"SELECT o.__i AS k, o.product_id, {sets} FROM o LEFT JOIN r USING (product_id)"
        ).to_arrow_table()
        added = con.sql(
            "SELECT r.__j + (SELECT count(*) FROM o) AS k, r.* EXCLUDE (__j) FROM r "
            "WHERE product_id NOT IN (SELECT product_id FROM o)"
        ).to_arrow_table()
    finally:
        con.close()
    both = pa.concat_tables(
        [
            kept.select(["k", *PRODUCTS.names]).cast(pa.schema([("k", pa.int64()), *PRODUCTS])),
            added.select(["k", *PRODUCTS.names]).cast(pa.schema([("k", pa.int64()), *PRODUCTS])),
        ]
    )
    both = both.sort_by("k").drop(["k"])
    changed = _changed_ids(old, both.slice(0, old.num_rows), PRODUCTS.names[1:])
    return both, len(changed), added.num_rows


def _changed_ids(old: pa.Table, new: pa.Table, columns: list[str] | tuple[str, ...]) -> set[str]:
    """Ids of products whose ``columns`` differ between ``old`` and ``new`` (NULL-safe)."""
    import duckdb

    if not columns:
        return set()
    con = duckdb.connect()
    try:
        con.register("o", old.select(["product_id", *columns]))
        con.register("n", new.select(["product_id", *columns]))
        cond = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in columns)
        rows = con.sql(f"SELECT n.product_id FROM n JOIN o USING (product_id) WHERE {cond}").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def _line_keys(t: pa.Table, cols: list[str]) -> pa.ChunkedArray:
    parts = [pc.fill_null(t.column(c).cast(pa.string()), "\x00") for c in cols]
    return pc.binary_join_element_wise(*parts, "\x1f")


def _new_rows(stored: pa.Table, new: pa.Table, cols: list[str]) -> tuple[pa.Table, int]:
    """Rows of ``new`` whose key ``cols`` is neither stored nor repeated earlier in ``new``;
    and how many were skipped as duplicates."""
    if new.num_rows == 0:
        return new, 0
    keys = _line_keys(new, cols)
    fresh = pc.invert(pc.is_in(keys, value_set=_line_keys(stored, cols).combine_chunks()))
    # a key repeated inside ``new``: the loader already merged (order, product) lines, so only
    # view rows can repeat; keep the first
    first_pos = pc.index_in(pc.unique(keys), value_set=keys).to_numpy(zero_copy_only=False)
    is_first = np.zeros(new.num_rows, bool)
    is_first[first_pos] = True
    keep = pc.and_(fresh, pa.array(is_first))
    kept = new.filter(keep)
    return kept, new.num_rows - kept.num_rows


def _touched(union: pa.Table, new_lines: pa.Table) -> pa.Array:
    """Order ids whose counts an update changes: the orders of the new lines and every order of a
    customer who has a line in one of them (see the module docstring)."""
    orders = pc.unique(new_lines.column("order_id"))
    in_orders = pc.is_in(union.column("order_id"), value_set=orders)
    customers = pc.unique(union.filter(in_orders).column("customer_id").drop_null())
    hit = pc.or_(in_orders, pc.fill_null(pc.is_in(union.column("customer_id"), value_set=customers), False))
    return pc.unique(union.filter(hit).column("order_id"))

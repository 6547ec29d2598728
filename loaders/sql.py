"""DuckDB helpers of the loaders: quoting, typed column expressions that refuse what cannot be
read (naming file, row and column), column resolution and the shared checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from tiein.errors import ConfigError, InputError
from tiein.loaders.mapping import Options
from tiein.loaders.read import ROW, RawTable
from tiein.loaders.report import LoadReport

_CURRENCY = r"^(?:[$€£¥￥]|RMB|CNY|USD|EUR|GBP)\s*|\s*(?:元|RMB|CNY|USD|EUR|GBP)$"
MAX_ID_CHARS = 1000  # ids are keys, held many times over in memory: longer ones are refused
# Whole numbers (stock, integer attributes) must stay below this; BIGINT overflows at 9.2e18.
_INT_LIMIT = "1e15"
_TS_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y%m%d",
]


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


def one(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
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

"""Recommendation event files and request bodies: the EVENTS contract, reading and validating
them (strict: every problem named by file or position, row and field)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import InputError
from tiein.model import RELATION_KINDS

EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase")
# Kinds an event may carry: the relation kinds, plus bundles and cart add-ons (tiein.bundles).
EVENT_KINDS = (*RELATION_KINDS, "bundle", "addon")

# One row per event. Required (never null): ts, user_id, anchor_id, item_id, kind, event.
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.timestamp("us")),  # naive UTC
        ("user_id", pa.string()),
        ("anchor_id", pa.string()),
        ("item_id", pa.string()),
        ("kind", pa.string()),  # EVENT_KINDS
        ("surface", pa.string()),  # page | live | service | … (lower case, free)
        ("experiment", pa.string()),
        ("variant", pa.string()),
        ("event", pa.string()),  # EVENT_TYPES
        ("value", pa.float64()),  # order amount, >= 0
        ("order_id", pa.string()),
    ]
)
REQUIRED = ("ts", "user_id", "anchor_id", "item_id", "kind", "event")
# Input column names accepted for each field (case-insensitive), first match wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "id"),
    "ts": ("ts", "time", "timestamp", "event_time"),
    "user_id": ("user_id", "user", "customer_id"),
    "anchor_id": ("anchor_id", "anchor"),
    "item_id": ("item_id", "item", "product_id"),
    "kind": ("kind", "relation"),
    "surface": ("surface",),
    "experiment": ("experiment",),
    "variant": ("variant",),
    "event": ("event", "event_type", "type"),
    "value": ("value", "order_value", "amount"),
    "order_id": ("order_id",),
}
_MAX_SHOWN = 5  # problems listed in one InputError


def read_events(path: Path | str) -> pa.Table:
    """The events of one file (CSV/TSV, JSON lines, Parquet or XLSX; encodings as in
    :mod:`tiein.loaders.read`) as an :data:`EVENTS` table in file order.

    Columns are found by name (:data:`ALIASES`, case-insensitive); unknown columns are ignored.
    Raises :class:`InputError` naming the file, the first bad row, the column and why, listing up
    to five problems: a missing required column or value, an unreadable time, an unknown event
    type or kind, a value that is not a non-negative number.
    """
    from tiein.loaders.read import read_table

    return _normalise(read_table(Path(path)))


def records_table(records: Sequence[Any], source: str = "request") -> pa.Table:
    """A list of JSON objects (a POST body) as an :data:`EVENTS` table; ``row`` in errors is the
    1-based position in the list and ``source`` stands for the file name."""
    from tiein.loaders.read import ROW, RawTable

    if not isinstance(records, (list, tuple)):
        raise InputError("expected a list of event objects", file=source)
    if not records:
        raise InputError("no events given", file=source)
    names: dict[str, None] = {}
    for i, r in enumerate(records, start=1):
        if not isinstance(r, dict):
            raise InputError(f"each event must be a JSON object, got {type(r).__name__}", file=source, row=i)
        names.update(dict.fromkeys(r))
    columns: dict[str, pa.Array] = {}
    for n in names:
        values = []
        for i, r in enumerate(records, start=1):
            v = r.get(n)
            if isinstance(v, (dict, list)):
                raise InputError(
                    "must be a single value, not an object or list", file=source, row=i, column=n
                )
            values.append(None if v is None else str(v))
        columns[str(n)] = pa.array(values, pa.string())
    columns[ROW] = pa.array(range(1, len(records) + 1), pa.int64())
    return _normalise(RawTable(pa.table(columns), source, "json"))


def _normalise(raw: Any) -> pa.Table:
    """RawTable -> EVENTS, strictly (see :func:`read_events`)."""
    from tiein.loaders import sql
    from tiein.loaders.read import ROW

    lower = {c.lower(): c for c in reversed(raw.columns)}
    found: dict[str, str] = {}
    for fld, names in ALIASES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is not None:
            found[fld] = col
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the file has columns: {', '.join(raw.columns)}",
            file=raw.file,
            column=missing[0],
        )
    con = sql.connect()
    try:
        con.register("raw", raw.table)

        def text(fld: str) -> str:
            return sql.id_expr(raw, found[fld]) if fld in found else "CAST(NULL AS VARCHAR)"

        def token(fld: str) -> str:  # lower case, '-' and ' ' -> '_'
            return f"nullif(regexp_replace(lower({text(fld)}), '[\\s-]+', '_', 'g'), '')"

        ts = sql.timestamp_expr(con, raw, "raw", [found["ts"]], None)
        value = sql.number_expr(raw, found["value"]) if "value" in found else "CAST(NULL AS DOUBLE)"
        select = {
            "event_id": text("event_id"),
            "ts": ts,
            "user_id": text("user_id"),
            "anchor_id": text("anchor_id"),
            "item_id": text("item_id"),
            "kind": token("kind"),
            "surface": token("surface"),
            "experiment": text("experiment"),
            "variant": text("variant"),
            "event": token("event"),
            "value": value,
            "order_id": text("order_id"),
        }
        cols = ", ".join(f"{e} AS {sql.q(n)}" for n, e in select.items())
        # the raw text and presence of each source column, for the messages
        raws = ", ".join(
            f"CAST({sql.q(c)} AS VARCHAR) AS {sql.q('raw_' + f)}, ({sql.is_present(raw, c)}) AS {sql.q('has_' + f)}"
            for f, c in found.items()
        )
        con.execute(f"CREATE TEMP TABLE ev AS SELECT {cols}, {raws}, {ROW} FROM raw")
        problems: list[tuple[int, str, str]] = []

        def bad(where: str, fld: str, why: str) -> None:
            sql = f"SELECT {ROW}, raw_{fld} FROM ev WHERE {where} ORDER BY 1 LIMIT {_MAX_SHOWN}"
            for row, v in con.execute(sql).fetchall():
                problems.append((int(row), found[fld], why.format(v=v)))

        for fld in REQUIRED:  # an unreadable time is reported below, as such
            bad(f"{fld} IS NULL" + (" AND NOT has_ts" if fld == "ts" else ""), fld, "a value is required")
        bad("ts IS NULL AND has_ts", "ts", "cannot read {v!r} as a date/time")
        allowed = ", ".join(sql.lit(e) for e in EVENT_TYPES)
        bad(f"event NOT IN ({allowed})", "event", "unknown event {v!r}; events: " + ", ".join(EVENT_TYPES))
        kinds = ", ".join(sql.lit(k) for k in EVENT_KINDS)
        bad(f"kind NOT IN ({kinds})", "kind", "unknown kind {v!r}; kinds: " + ", ".join(EVENT_KINDS))
        if "value" in found:
            bad("value IS NULL AND has_value", "value", "cannot read {v!r} as a number")
            bad("value < 0", "value", "the value {v!r} is negative")
        if problems:
            problems.sort()
            row, column, why = problems[0]
            more = "; ".join(f"row {r} column {c!r}: {w}" for r, c, w in problems[1:_MAX_SHOWN])
            raise InputError(why + (f" (also {more})" if more else ""), file=raw.file, row=row, column=column)
        table = con.sql(
            f"SELECT {', '.join(sql.q(n) for n in EVENTS.names)} FROM ev ORDER BY {ROW}"
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(EVENTS)

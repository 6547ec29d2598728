"""Recommendation event files and request bodies: the EVENTS contract, reading and validating
them (strict: every problem named by file or position, row and field).

Columns are found by name (:data:`ALIASES`, case-insensitive) or mapped explicitly
(``columns={"user_id": "会员ID"}``, the CLI's ``--map user_id=会员ID``; :func:`parse_map`).

Event names are folded (lower case, ``-`` and spaces -> ``_``: ``Add-To-Cart``) and the Chinese
names of :data:`EVENT_NAMES` are accepted: 曝光/展现 = impression, 点击 = click, 加购/加入购物车 =
add_to_cart, 购买/下单/支付 = purchase.

**Time zones.** The log holds naive UTC. A time with a zone (``2024-03-01T10:00:00+08:00``,
``…Z``, epoch seconds / milliseconds, a zone-aware Parquet column) is converted from its zone; a
time *without* one (``2024-03-01 10:00``, an Excel date, a naive Parquet column) is read in the
shop's zone: ``timezone`` when given, else the ``TIEIN_TIMEZONE`` environment variable, else
``timezone`` in ``HOME/shop.toml`` (:mod:`tiein.shop_config`), else :data:`DEFAULT_TIMEZONE`
(``Asia/Shanghai``: most tiein shops sell in China; a shop elsewhere sets ``timezone =
"Europe/London"`` in shop.toml, ``TIEIN_TIMEZONE`` or passes ``--timezone``). ``POST /v1/events``
reads its zone-less times the same way (its body may name a ``timezone``); :func:`records_table`
itself takes the zone it is given (UTC by default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError, InputError
from tiein.model import RELATION_KINDS
from tiein.shop_config import check_zone, load_shop_config

EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase")
# Other names of the event types (after folding), Chinese shop/analytics wording first.
EVENT_NAMES: dict[str, str] = {
    "曝光": "impression",
    "展现": "impression",
    "点击": "click",
    "加购": "add_to_cart",
    "加入购物车": "add_to_cart",
    "购买": "purchase",
    "下单": "purchase",
    "支付": "purchase",
}
# Kinds an event may carry: the relation kinds, plus bundles and cart add-ons (tiein.bundles).
EVENT_KINDS = (*RELATION_KINDS, "bundle", "addon")
DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_ENV = "TIEIN_TIMEZONE"

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
# Other names of the fields in a --map FIELD=COLUMN.
_FIELD_ALIASES = {"time": "ts", "timestamp": "ts", "user": "user_id", "customer_id": "user_id"}
_MAX_SHOWN = 5  # problems listed in one InputError
# The end of a time string that carries its zone: Z, UTC/GMT, +08, +0800, +08:00, or a zone name.
_ZONED_RE = r"(?i)(\d:\d\d(:\d\d(\.\d+)?)?\s*(z|utc|gmt|[+-]\d\d(:?\d\d)?)|\s[a-z_]+/[a-z_]+)$"
_EPOCH_RE = r"\d{9,10}|\d{12,13}"


def shop_timezone(zone: str | None = None, home: Path | str | None = None) -> str:
    """The time zone zone-less event times are read in: ``zone``, else ``$TIEIN_TIMEZONE``, else
    the ``timezone`` of ``HOME/shop.toml`` (:mod:`tiein.shop_config`), else
    :data:`DEFAULT_TIMEZONE`; an IANA name (``Asia/Shanghai``, ``Europe/Berlin``, ``UTC``).
    Raises ConfigError for a name the time zone database does not know.

    >>> shop_timezone("Europe/Berlin")
    'Europe/Berlin'
    """
    if zone:
        return check_zone(zone.strip(), "--timezone")
    env = (os.environ.get(TIMEZONE_ENV) or "").strip()
    if env:
        return check_zone(env, TIMEZONE_ENV)
    from_file = load_shop_config(home).timezone
    if from_file:
        return from_file  # checked when the file was read
    return DEFAULT_TIMEZONE


def parse_map(pairs: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``FIELD=COLUMN`` strings (the CLI's ``--map``) as {field: column}; ``ts`` may name several
    columns, comma-separated (``ts=date,time``: joined by a space). Raises ConfigError for an
    unknown field or a pair without ``=``.

    >>> parse_map(["user_id=会员ID", "time=日期,时间"])
    {'user_id': '会员ID', 'ts': '日期,时间'}
    """
    items = pairs.items() if isinstance(pairs, Mapping) else [p.partition("=")[::2] for p in pairs]
    out: dict[str, str] = {}
    for i, (key, column) in enumerate(items):
        key, column = str(key).strip(), str(column).strip()
        if not isinstance(pairs, Mapping) and "=" not in pairs[i]:
            raise ConfigError(f"--map {pairs[i]!r}: expected FIELD=COLUMN, e.g. user_id=会员ID")
        fld = _FIELD_ALIASES.get(key.lower(), key.lower())
        if fld not in ALIASES:
            raise ConfigError(f"--map {key}={column}: unknown field {key!r}; fields: {', '.join(ALIASES)}")
        if not column:
            raise ConfigError(f"--map {key}=: give the column name after '='")
        out[fld] = column
    return out


def read_events(
    path: Path | str, *, columns: Mapping[str, str] | None = None, timezone: str | None = None
) -> pa.Table:
    """The events of one file (CSV/TSV, JSON lines, Parquet or XLSX; encodings as in
    :mod:`tiein.loaders.read`) as an :data:`EVENTS` table in file order.

    Columns are found by name (:data:`ALIASES`, case-insensitive) unless ``columns`` maps a field
    to a column ({field: column}, :func:`parse_map`); unknown columns are ignored. Times without a
    zone are read in ``timezone`` (default :func:`shop_timezone`; module docstring).
    Raises :class:`InputError` naming the file, the first bad row, the column and why, listing up
    to five problems: a missing required column or value, an unreadable time, an unknown event
    type or kind, a value that is not a non-negative number. ConfigError for an unknown field in
    ``columns`` or an unknown time zone.
    """
    from tiein.loaders.read import read_table

    mapped = parse_map(columns) if columns else {}
    zone = shop_timezone(timezone)
    return _normalise(read_table(Path(path)), mapped, zone)


def records_table(records: Sequence[Any], source: str = "request", *, timezone: str = "UTC") -> pa.Table:
    """A list of JSON objects (a POST body) as an :data:`EVENTS` table; ``row`` in errors is the
    1-based position in the list and ``source`` stands for the file name. Times without a zone
    are read in ``timezone`` (default UTC, as ``POST /v1/events`` documents)."""
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
    return _normalise(RawTable(pa.table(columns), source, "json"), {}, shop_timezone(timezone))


def _events_help() -> str:
    names: dict[str, list[str]] = {e: [] for e in EVENT_TYPES}
    for zh, e in EVENT_NAMES.items():
        names[e].append(zh)
    return ", ".join(f"{e} ({'/'.join(n)})" if n else e for e, n in names.items())


def _find_columns(raw: Any, mapped: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """{field: source column} (mapped first, then by :data:`ALIASES`) and the time's columns."""
    lower = {c.lower(): c for c in reversed(raw.columns)}

    def named(fld: str, name: str) -> str:
        if name in raw.columns:
            return name
        if name.lower() in lower:
            return str(lower[name.lower()])
        raise InputError(
            f"column {name!r} (--map {fld}={mapped[fld]}) is missing; the file has columns: "
            + ", ".join(raw.columns),
            file=raw.file,
            column=name,
        )

    given = {
        fld: [named(fld, c.strip()) for c in (spec.split(",") if fld == "ts" else [spec]) if c.strip()]
        for fld, spec in mapped.items()
    }
    used = {c for cols in given.values() for c in cols}
    found = {fld: cols[0] for fld, cols in given.items() if cols}
    for fld, names in ALIASES.items():
        if fld not in found:
            col = next((lower[n] for n in names if n in lower and lower[n] not in used), None)
            if col is not None:
                found[fld] = col
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the file has columns: {', '.join(raw.columns)} "
            f"(map one with --map {missing[0]}=COLUMN)",
            file=raw.file,
            column=missing[0],
        )
    return found, given.get("ts") or [found["ts"]]


def _zoneless(raw: Any, columns: list[str]) -> str:
    """SQL: true where the time in ``columns`` carries no zone (so it is the shop's local time)."""
    from tiein.loaders import sql

    if len(columns) == 1:
        t = raw.table.schema.field(columns[0]).type
        if pa.types.is_timestamp(t):
            return "FALSE" if t.tz else "TRUE"
        if pa.types.is_date(t):
            return "TRUE"
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return "FALSE"  # epoch seconds / milliseconds
        s = f"trim(CAST({sql.q(columns[0])} AS VARCHAR))"
    else:
        s = "trim(concat_ws(' ', " + ", ".join(f"trim(CAST({sql.q(c)} AS VARCHAR))" for c in columns) + "))"
    return f"NOT (regexp_full_match({s}, {sql.lit(_EPOCH_RE)}) OR regexp_matches({s}, {sql.lit(_ZONED_RE)}))"


def _normalise(raw: Any, mapped: Mapping[str, str], zone: str) -> pa.Table:
    """RawTable -> EVENTS, strictly (see :func:`read_events`)."""
    from tiein.loaders import sql
    from tiein.loaders.read import ROW

    found, ts_cols = _find_columns(raw, mapped)
    con = sql.connect()
    try:
        con.register("raw", raw.table)

        def text(fld: str) -> str:
            return sql.id_expr(raw, found[fld]) if fld in found else "CAST(NULL AS VARCHAR)"

        def token(fld: str) -> str:  # lower case, '-' and ' ' -> '_'
            return f"nullif(regexp_replace(lower(trim({text(fld)})), '[\\s-]+', '_', 'g'), '')"

        ts = sql.timestamp_expr(con, raw, "raw", ts_cols, None)
        if zone != "UTC":
            ts = f"(CASE WHEN {_zoneless(raw, ts_cols)} THEN timezone('UTC', timezone({sql.lit(zone)}, {ts})) ELSE {ts} END)"
        value = sql.number_expr(raw, found["value"]) if "value" in found else "CAST(NULL AS DOUBLE)"
        event = token("event")
        names = " ".join(f"WHEN {sql.lit(k)} THEN {sql.lit(v)}" for k, v in EVENT_NAMES.items())
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
            "event": f"(CASE {event} {names} ELSE {event} END)",
            "value": value,
            "order_id": text("order_id"),
        }
        cols = ", ".join(f"{e} AS {sql.q(n)}" for n, e in select.items())

        def shown(f: str, c: str) -> tuple[str, str]:  # the raw text and presence of a source field
            if f == "ts" and len(ts_cols) > 1:
                text = "concat_ws(' ', " + ", ".join(f"CAST({sql.q(x)} AS VARCHAR)" for x in ts_cols) + ")"
                return text, " OR ".join(f"({sql.is_present(raw, x)})" for x in ts_cols)
            return f"CAST({sql.q(c)} AS VARCHAR)", sql.is_present(raw, c)

        raws = ", ".join(
            f"{shown(f, c)[0]} AS {sql.q('raw_' + f)}, ({shown(f, c)[1]}) AS {sql.q('has_' + f)}"
            for f, c in found.items()
        )
        con.execute(f"CREATE TEMP TABLE ev AS SELECT {cols}, {raws}, {ROW} FROM raw")
        problems: list[tuple[int, str, str]] = []

        def bad(where: str, fld: str, why: str) -> None:
            query = f"SELECT {ROW}, raw_{fld} FROM ev WHERE {where} ORDER BY 1 LIMIT {_MAX_SHOWN}"
            for row, v in con.execute(query).fetchall():
                problems.append((int(row), found[fld], why.format(v=v)))

        for fld in REQUIRED:  # an unreadable time is reported below, as such
            bad(f"{fld} IS NULL" + (" AND NOT has_ts" if fld == "ts" else ""), fld, "a value is required")
        bad("ts IS NULL AND has_ts", "ts", "cannot read {v!r} as a date/time")
        allowed = ", ".join(sql.lit(e) for e in EVENT_TYPES)
        bad(f"event NOT IN ({allowed})", "event", "unknown event {v!r}; events: " + _events_help())
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

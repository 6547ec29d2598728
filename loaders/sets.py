"""Content sets (内容场景数据): products shown together in one short video, livestream, styled
outfit or hand-made list (``tiein build --sets FILE``).

One row per (set, product). Columns, found by name (case-insensitive) or mapped with ``--map
sets.FIELD=COLUMN`` (a flat ``--map product_id=sku`` maps the product column here too):

- ``set_id`` (or ``set``, ``content_id``, ``video_id``, ``live_id``, ``outfit_id``, 内容ID, 视频ID,
  直播ID, 穿搭ID, 场景ID): required, never empty;
- ``product_id`` (or ``item_id``, ``sku``, 商品ID): required, must be a catalog product;
- ``kind`` (or ``type``, 类型): video / live / outfit / manual, or 视频 / 直播 / 穿搭 / 手动 (also
  短视频, 搭配); empty or no column: manual. A set has one kind;
- ``weight`` (or 权重): a number > 0, default 1; a set's weight is the largest on its rows, so it
  may be written on one row only;
- ``timestamp`` (or ``ts``, ``time``, ``date``, 时间, 日期): optional, kept with the set.

Strict like every loader: a missing column, an empty id, a product the catalog does not have, an
unknown kind, a weight that is not a positive number, an unreadable time or a set given two kinds
raise :class:`~tiein.errors.InputError` naming the file, the (first) row, the column and why. Rows:
header = row 1 for CSV/XLSX (see :mod:`tiein.loaders.read`). Repeated (set, product) rows count once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tiein import model
from tiein.errors import InputError
from tiein.loaders import sql
from tiein.loaders.mapping import Mapping
from tiein.loaders.read import ROW, RawTable
from tiein.loaders.report import LoadReport

# Input names of each kind (after lower-casing and trimming).
KIND_NAMES: dict[str, str] = {
    **{k: k for k in model.SET_KINDS},
    "short_video": "video",
    "livestream": "live",
    "broadcast": "live",
    "look": "outfit",
    "list": "manual",
    "视频": "video",
    "短视频": "video",
    "直播": "live",
    "穿搭": "outfit",
    "搭配": "outfit",
    "手动": "manual",
}
DEFAULT_KIND = "manual"
ALIASES: dict[str, tuple[str, ...]] = {
    "set_id": (
        "set",
        "content_id",
        "video_id",
        "live_id",
        "outfit_id",
        "内容id",
        "视频id",
        "直播id",
        "穿搭id",
        "场景id",
    ),
    "product_id": ("item_id", "sku", "商品id", "商品"),
    "kind": ("type", "类型"),
    "weight": ("权重",),
    "timestamp": ("ts", "time", "date", "时间", "日期"),
}


def _column(raw: RawTable, field: str, mapped: str | None, *, required: bool) -> str | None:
    """The mapped column (must exist), else the field's own name or an alias, case-insensitive."""
    if mapped is not None:
        return sql.resolve(raw, field, mapped, required=True, mapped_as=f"sets.{field}")
    lower = {c.strip().lower(): c for c in reversed(raw.columns)}
    for name in (field, *ALIASES.get(field, ())):
        if name in lower:
            return lower[name]
    if required:
        names = ", ".join((field, *ALIASES[field]))
        raise InputError(
            f"no {field} column (one of: {names}; or --map sets.{field}=COLUMN); "
            f"the file has columns: {', '.join(raw.columns)}",
            file=raw.file,
            column=field,
        )
    return None


def _first(con: duckdb.DuckDBPyConnection, query: str) -> tuple[int, str] | None:
    row = sql.one(con.execute(query + f" ORDER BY {ROW} LIMIT 1").fetchall())
    return (int(row[0]), str(row[1])) if row else None


def build_sets(raw: RawTable, mapping: Mapping, products: pa.Table, report: LoadReport) -> pa.Table:
    """The SETS table (tiein.model.SETS) of a content-set file as read; see the module docstring."""
    cols, opts = mapping.sets, mapping.options
    sid = _column(raw, "set_id", cols.set_id, required=True)
    pid = _column(raw, "product_id", cols.product_id, required=True)
    kind = _column(raw, "kind", cols.kind, required=False)
    weight = _column(raw, "weight", cols.weight, required=False)
    if cols.timestamp:
        tss = [c for c in (_column(raw, "timestamp", t, required=True) for t in cols.timestamp) if c]
    else:
        found = _column(raw, "timestamp", None, required=False)
        tss = [found] if found else []
    assert sid is not None and pid is not None
    con = sql.connect()
    try:
        con.register("__sets_raw", raw.table)
        ts_e = "NULL::TIMESTAMP"
        if tss:
            ts_e = sql.timestamp_expr(con, raw, "__sets_raw", tss, opts.timestamp_format)
            sql.check_timestamp(con, raw, "__sets_raw", tss, ts_e)
        weight_e = sql.number_expr(raw, weight) if weight else "1.0::DOUBLE"
        if weight:
            weight_e = f"(CASE WHEN isfinite({weight_e}) THEN {weight_e} END)"
        kind_e = f"lower(trim(CAST({sql.q(kind)} AS VARCHAR)))" if kind else "NULL::VARCHAR"
        con.execute(
            f"""CREATE TEMP TABLE __s0 AS SELECT {ROW}, {sql.id_expr(raw, sid)} AS set_id,
            {sql.pid_expr(raw, pid, opts)} AS product_id, nullif({kind_e}, '') AS kind_raw,
            {weight_e} AS weight, {sql.is_present(raw, weight) if weight else "TRUE"} AS has_weight,
            {ts_e} AS ts FROM __sets_raw"""
        )
        sql.check_id_length(con, raw, "__s0", {"set_id": sid, "product_id": pid})
        for column, name in ((sid, "set_id"), (pid, "product_id")):
            bad = _first(con, f"SELECT {ROW}, '' FROM __s0 WHERE {name} IS NULL")
            if bad:
                raise InputError(f"empty {name.replace('_', ' ')}", file=raw.file, row=bad[0], column=column)
        if weight:
            bad = _first(
                con,
                f"SELECT {ROW}, CAST(r.{sql.q(weight)} AS VARCHAR) FROM __s0 s JOIN __sets_raw r USING ({ROW}) "
                "WHERE s.has_weight AND (s.weight IS NULL OR s.weight <= 0)",
            )
            if bad:
                raise InputError(
                    f"a weight is a number above 0 (1 = an ordinary set), got {bad[1]!r}",
                    file=raw.file,
                    row=bad[0],
                    column=weight,
                )
        names = " ".join(f"WHEN {sql.lit(k)} THEN {sql.lit(v)}" for k, v in KIND_NAMES.items())
        con.execute(f"CREATE TEMP TABLE __s1 AS SELECT *, (CASE kind_raw {names} END) AS kind FROM __s0")
        bad = _first(con, f"SELECT {ROW}, kind_raw FROM __s1 WHERE kind IS NULL AND kind_raw IS NOT NULL")
        if bad and kind:
            raise InputError(
                f"unknown kind {bad[1]!r}; kinds: video (视频), live (直播), outfit (穿搭), manual (手动)",
                file=raw.file,
                row=bad[0],
                column=kind,
            )
        bad = _first(
            con,
            f"""SELECT {ROW}, set_id FROM __s1 WHERE set_id IN (
                SELECT set_id FROM __s1 GROUP BY set_id HAVING count(DISTINCT kind) > 1)""",
        )
        if bad and kind:
            raise InputError(
                f"set {bad[1]!r} is given two kinds; a set (one video, one outfit) has one kind",
                file=raw.file,
                row=bad[0],
                column=kind,
            )
        con.register("__products", products.select(["product_id"]))
        unknown = con.execute(
            f"SELECT {ROW}, product_id, count(*) OVER () FROM __s1 ANTI JOIN __products USING (product_id) "
            f"ORDER BY {ROW} LIMIT 3"
        ).fetchall()
        if unknown:
            ids = ", ".join(repr(u[1]) for u in unknown)
            raise InputError(
                f"{unknown[0][2]:,} rows name products the catalog does not have (such as {ids}): "
                "is --map sets.product_id the same id as the catalog's?",
                file=raw.file,
                row=int(unknown[0][0]),
                column=pid,
            )
        table = sql.fetch(
            con,
            f"""SELECT set_id, product_id, coalesce(max(kind) OVER w, {sql.lit(DEFAULT_KIND)}) AS kind,
                       coalesce(max(weight) OVER w, 1.0) AS weight, min(ts) OVER w AS ts
                FROM __s1 WINDOW w AS (PARTITION BY set_id)
                QUALIFY row_number() OVER (PARTITION BY set_id, product_id ORDER BY {ROW}) = 1
                ORDER BY {ROW}""",
            model.SETS,
        )
    except duckdb.Error as exc:  # a value DuckDB cannot convert that no check above caught
        raise InputError(f"invalid data: {str(exc).splitlines()[0]}", file=raw.file) from None
    finally:
        con.close()
    n_sets = len(table.column("set_id").unique())
    report.extra["content sets"] = n_sets
    report.extra["content set rows"] = table.num_rows
    return table


def read_sets(path: Path, mapping: Mapping, products: pa.Table, report: LoadReport) -> pa.Table:
    """Read a content-set file (formats and encodings as every input) into SETS rows."""
    from tiein.loaders.load import read_file

    return build_sets(read_file(Path(path), "sets", mapping, report), mapping, products, report)


def merge_sets(stored: pa.Table, new: pa.Table) -> tuple[pa.Table, int, int]:
    """``stored`` SETS with ``new`` merged in (``tiein update --sets``): a set id in ``new``
    replaces that set whole (an outfit re-edited, a lineup changed), other stored sets stay.
    Returns (merged, sets replaced, sets added); stored sets first, in their order."""
    new_ids = new.column("set_id").unique()
    old_ids = stored.column("set_id").unique()
    kept = stored.filter(pc.invert(pc.is_in(stored.column("set_id"), value_set=new_ids)))
    replaced = int(pc.sum(pc.is_in(new_ids, value_set=old_ids)).as_py() or 0)
    return pa.concat_tables([kept, new.cast(model.SETS)]), replaced, len(new_ids) - replaced

"""A lineup as a file: CSV or XLSX (one row per slot and product, the closing bundle's products
one row each) or JSON (the payload as the API answers it). The rows come from
:func:`tiein.lineup.lineup_payload`, the one data path of ``tiein lineup`` and ``POST /v1/lineup``;
CSV text cells that a spreadsheet would run as formulas get a leading ``'``
(:func:`tiein.export.rows.escape_formula`); XLSX keeps ids as text (:func:`~tiein.export.files.write_xlsx`).
The file is written atomically (a temp file moved onto ``out``)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.export.files import atomic_write, write_xlsx
from tiein.export.rows import escape_formula_table, rows_table, zh_name
from tiein.graph.base import PRODUCT_FIELDS
from tiein.model import PRODUCTS

LINEUP_FORMATS = ("csv", "xlsx", "json")
_ZH = {
    "position": "序号",
    "start_min": "开始（分钟）",
    "end_min": "结束（分钟）",
    "duration_min": "时长（分钟）",
    "role": "环节",
    "role_zh": "环节（中文）",
    "item": "件序",
    "orders": "订单数",
    "with_id": "搭配主推",
    "why_zh": "排序理由（中文）",
    "why_en": "排序理由（英文）",
    "talking_points_zh": "讲解要点（中文）",
    "talking_points_en": "讲解要点（英文）",
    "checks": "检查",
    "checks_zh": "检查说明（中文）",
    "checks_en": "检查说明（英文）",
}


def lineup_columns() -> pa.Schema:
    """The flat columns of a lineup file, in order."""
    s, i = pa.string(), pa.int64()
    return pa.schema(
        [
            ("position", i),
            ("start_min", i),
            ("end_min", i),
            ("duration_min", i),
            ("role", s),
            ("role_zh", s),
            ("item", i),
            *[pa.field(f, PRODUCTS.field(f).type) for f in PRODUCT_FIELDS],
            ("orders", i),
            ("with_id", s),
            ("why_zh", s),
            ("why_en", s),
            ("talking_points_zh", s),
            ("talking_points_en", s),
            ("checks", s),
            ("checks_zh", s),
            ("checks_en", s),
        ]
    )


def lineup_rows(payload: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per slot and product (the closing slot: one per bundle item, ``item`` 1, 2, …)."""
    for slot in payload["slots"]:
        relation = slot.get("relation") or {}
        head = {
            "position": slot["position"],
            "start_min": slot["start_min"],
            "end_min": slot["end_min"],
            "duration_min": slot["duration_min"],
            "role": slot["role"],
            "role_zh": slot["role_name"]["zh"],
            "orders": slot["orders"],
            "with_id": relation.get("with_id"),
            "why_zh": slot["why"]["zh"],
            "why_en": slot["why"]["en"],
            "talking_points_zh": "；".join(slot["talking_points"]["zh"]),
            "talking_points_en": "; ".join(slot["talking_points"]["en"]),
            "checks": ",".join(c["code"] for c in slot["checks"]) or None,
            "checks_zh": "；".join(c["zh"] for c in slot["checks"]) or None,
            "checks_en": "; ".join(c["en"] for c in slot["checks"]) or None,
        }
        for n, product in enumerate(slot["products"], 1):
            yield {**head, "item": n, **{f: product.get(f) for f in PRODUCT_FIELDS}}


def lineup_header(column: str, headers: str) -> str:
    # the product columns are named as in every other export (tiein.export.rows.zh_name)
    zh = (_ZH.get(column) or zh_name(column, "lineup")) if headers == "zh-en" else None
    return f"{zh} / {column}" if zh else column


def lineup_csv(
    payload: Mapping[str, Any], *, headers: str = "en", bom: bool = False, formula_escape: bool = True
) -> bytes:
    """The lineup's CSV file as bytes (UTF-8, a header row; ``bom``: start with a byte-order mark
    so that Excel reads Chinese right)."""
    import pyarrow.csv as pcsv

    schema = lineup_columns()
    table = rows_table(list(lineup_rows(payload)), schema)
    named = table.rename_columns([lineup_header(f.name, headers) for f in schema])
    sink = pa.BufferOutputStream()
    pcsv.write_csv(escape_formula_table(named) if formula_escape else named, sink)
    data: bytes = sink.getvalue().to_pybytes()
    return (b"\xef\xbb\xbf" if bom else b"") + data


def write_lineup(
    payload: Mapping[str, Any],
    out: Path | str,
    fmt: str | None = None,
    *,
    headers: str | None = None,
    bom: bool = False,
    formula_escape: bool = True,
) -> int:
    """Write ``payload`` to ``out`` as ``fmt`` (default from the file's suffix: .csv, .xlsx,
    .json); rows written (slots for json). ``headers``: "en" or "zh-en" (default zh-en for xlsx);
    ``bom``: csv only. ConfigError for a bad format or path."""
    out = Path(out)
    fmt = fmt or out.suffix.lower().lstrip(".")
    if fmt not in LINEUP_FORMATS:
        raise ConfigError(f"unknown lineup file format {fmt!r}; choose one of: {', '.join(LINEUP_FORMATS)}")
    if out.is_dir() or not out.parent.is_dir():
        raise ConfigError(f"--out {out}: give a file path in an existing directory")
    headers = headers or ("zh-en" if fmt == "xlsx" else "en")
    if headers not in ("en", "zh-en"):
        raise ConfigError(f"unknown headers {headers!r}; choose one of: en, zh-en")
    if bom and fmt != "csv":
        raise ConfigError(f"a byte-order mark is for csv only, not {fmt}")
    if fmt == "json":
        atomic_write(out, json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8"))
        return len(payload["slots"])
    schema = lineup_columns()
    table = rows_table(list(lineup_rows(payload)), schema)
    names = [lineup_header(f.name, headers) for f in schema]
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "xlsx":
            write_xlsx(tmp, iter([table]), schema, names, "lineup")
            os.replace(tmp, out)
        else:
            atomic_write(out, lineup_csv(payload, headers=headers, bom=bom, formula_escape=formula_escape))
    finally:
        tmp.unlink(missing_ok=True)
    return int(table.num_rows)

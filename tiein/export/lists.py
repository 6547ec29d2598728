"""Export of the merchant lists (``tiein export pairings|trending``): the answer of
:class:`tiein.lists.Lists` — the same one the CLI and the API give — as one file.

- **csv** / **parquet** / **xlsx**: one row per list item (:func:`list_columns`): a pairing's
  anchor as ``anchor_*`` and its item as ``item_*`` columns, a trending item's product fields
  and its window; ``evidence`` as a JSON string. Headers as in the other exports: ``en`` (the
  column names; csv's default) or ``zh-en`` (``排名 / rank``; xlsx's default); csv text cells
  that a spreadsheet would run get a leading ``'`` unless ``formula_escape`` is off.
- **jsonl**: one line, the whole answer, as the API gives it.

A list is small (k per category at most), so it is written in one go: a temp file beside the
output, then ``os.replace`` (the output is the previous file or the complete new one).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.export.files import write_xlsx
from tiein.export.rows import HEADERS, _prefixed, _product_fields, escape_formula_table, rows_table, zh_name

LIST_WHATS = ("pairings", "trending")
LIST_FORMATS = ("csv", "jsonl", "parquet", "xlsx")
_ZH = {
    "rank": "排名",
    "orders": "近期订单数",
    "units": "近期件数",
    "previous_orders": "上期订单数",
    "previous_units": "上期件数",
    "growth": "增长",
    "trend_score": "趋势得分",
    "window_start": "统计开始",
    "window_end": "统计结束",
    "previous_start": "上期开始",
    "previous_end": "上期结束",
}


def list_columns(what: str) -> pa.Schema:
    """The flat columns of a list export, in order."""
    s, f, i = pa.string(), pa.float64(), pa.int64()
    if what == "pairings":
        return pa.schema(
            [
                ("rank", i),
                *_product_fields("anchor_"),
                *_product_fields("item_"),
                ("score", f),
                ("n_ab", i),
                ("lift", f),
                ("confidence", f),
                ("category_relation", s),
                ("price_ratio", f),
                ("evidence", s),
                ("explanation_zh", s),
                ("explanation_en", s),
            ]
        )
    if what == "trending":
        return pa.schema(
            [
                ("rank", i),
                *_product_fields(""),
                ("orders", i),
                ("units", f),
                ("previous_orders", i),
                ("previous_units", f),
                ("growth", f),
                ("trend_score", f),
                ("window_start", s),
                ("window_end", s),
                ("previous_start", s),
                ("previous_end", s),
                ("explanation_zh", s),
                ("explanation_en", s),
            ]
        )
    raise ConfigError(f"unknown list {what!r}; choose one of: {', '.join(LIST_WHATS)}")


def list_rows(what: str, payload: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The flat rows of a pairings or trending answer."""
    win = payload.get("window") or {}
    for r in payload["items"]:
        row: dict[str, Any] = {
            "rank": r["rank"],
            "explanation_zh": r["explanation"]["zh"],
            "explanation_en": r["explanation"]["en"],
        }
        if what == "pairings":
            row |= _prefixed(r["anchor"], "anchor_") | _prefixed(r["item"], "item_")
            row |= {
                c: r.get(c)
                for c in ("score", "n_ab", "lift", "confidence", "category_relation", "price_ratio")
            }
            row["evidence"] = json.dumps(r["evidence"], ensure_ascii=False, sort_keys=True)
        else:
            row |= _prefixed(r, "")
            row |= {c: r[c] for c in ("orders", "units", "previous_orders", "previous_units", "growth")}
            row |= {
                "trend_score": r["score"],
                "window_start": win.get("start"),
                "window_end": win.get("end"),
                "previous_start": win.get("previous_start"),
                "previous_end": win.get("previous_end"),
            }
        yield row


def list_header(column: str, headers: str, what: str) -> str:
    """``column`` as it is ("en") or "中文 / english" ("zh-en")."""
    if headers not in HEADERS:
        raise ConfigError(f"unknown headers {headers!r}; choose one of: {', '.join(HEADERS)}")
    zh = (_ZH.get(column) or zh_name(column, "bundles")) if headers == "zh-en" else None
    return f"{zh} / {column}" if zh else column


def write_list(
    what: str,
    payload: Mapping[str, Any],
    out: Path | str,
    *,
    fmt: str,
    headers: str | None = None,
    bom: bool = False,
    formula_escape: bool = True,
) -> dict[str, Any]:
    """Write ``payload`` (a pairings or trending answer) to ``out`` in ``fmt`` atomically; the
    summary ``{path, what, format, rows, seconds}``. ConfigError for bad options, before anything
    is written."""
    started = time.perf_counter()
    schema = list_columns(what)
    if fmt not in LIST_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(LIST_FORMATS)}")
    headers = headers or ("zh-en" if fmt == "xlsx" else "en")
    if headers != "en" and fmt not in ("csv", "xlsx"):
        raise ConfigError(f"bilingual headers are for csv and xlsx, not {fmt}")
    if bom and fmt != "csv":
        raise ConfigError(f"a byte-order mark is for csv only, not {fmt}")
    out = Path(out)
    if out.is_dir() or not out.parent.is_dir():
        raise ConfigError(f"--out {out}: give a file path in an existing directory")
    table = rows_table(list(list_rows(what, payload)), schema)
    names = [list_header(c, headers, what) for c in schema.names]
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "jsonl":
            tmp.write_text(json.dumps(payload, ensure_ascii=False, sort_keys=True) + "\n", "utf-8")
        elif fmt == "xlsx":
            write_xlsx(tmp, iter([table]), schema, names, what)
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            named = table.rename_columns(names)
            with open(tmp, "wb") as f:
                if bom:
                    f.write(b"\xef\xbb\xbf")
                pcsv.write_csv(escape_formula_table(named) if formula_escape else named, f)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, str(tmp), compression="zstd")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    rows = 1 if fmt == "jsonl" else table.num_rows
    return {
        "path": str(out),
        "what": what,
        "format": fmt,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 3),
    }

"""The files of an export: the resumable parts directory (its manifest and lock), atomic writes,
and the join of the parts onto the output path."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.export.rows import escape_formula_table, header

MANIFEST = "manifest.json"


@contextmanager
def parts_dir(parts: Path, manifest: dict[str, Any]) -> Iterator[bool]:
    """The parts directory for ``manifest`` (yields True when parts of another export were
    discarded), locked against a second export to the same path."""
    parts.mkdir(exist_ok=True)
    fd = os.open(parts / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows: one export at a time is assumed
            pass
        except OSError as exc:
            raise ConfigError(f"another export to {parts.with_suffix('')} is running") from exc
        path = parts / MANIFEST
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        restarted = False
        if old != json.loads(json.dumps(manifest)):
            stale = [p for p in parts.iterdir() if p.name.startswith("part-")]
            restarted = bool(stale)
            for p in stale:
                p.unlink()
            atomic_write(path, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
        yield restarted
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_arrow(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def assemble(
    parts: Path,
    out: Path,
    fmt: str,
    schema: pa.Schema,
    n_chunks: int,
    ext: str,
    *,
    bom: bool = False,
    formula_escape: bool = True,
    headers: str = "en",
    what: str = "related",
) -> int:
    """Join the parts into a temp file beside ``out`` and move it onto ``out``; rows written.
    ``headers`` ("en" or "zh-en") names the columns of a csv or xlsx file (:func:`header`)."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    rows = 0
    names = [parts / f"part-{c:06d}.{ext}" for c in range(n_chunks)]
    named = pa.schema([f.with_name(header(f.name, headers, what)) for f in schema])
    try:
        if fmt == "xlsx":
            rows = write_xlsx(tmp, (_read_arrow(name) for name in names), schema, named.names, what)
            os.replace(tmp, out)
            return rows
        if fmt == "jsonl":
            with open(tmp, "wb") as f:
                for name in names:
                    data = name.read_bytes()
                    rows += data.count(b"\n")
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            with open(tmp, "wb") as f:
                if bom:
                    f.write(b"\xef\xbb\xbf")
                with pcsv.CSVWriter(f, named) as writer:
                    for name in names:
                        table = _read_arrow(name).rename_columns(named.names)
                        rows += table.num_rows
                        writer.write_table(escape_formula_table(table) if formula_escape else table)
                f.flush()
                os.fsync(f.fileno())
        else:
            import pyarrow.parquet as pq

            with pq.ParquetWriter(str(tmp), schema, compression="zstd") as pwriter:
                for name in names:
                    table = _read_arrow(name)
                    rows += table.num_rows
                    if table.num_rows:
                        pwriter.write_table(table)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
XLSX_MAX_TEXT = 32_767  # characters per cell
# A fixed time for the file's properties and zip entries: the same export gives the same bytes
# (a resumed export equals an uninterrupted one).
_XLSX_TIME = (2000, 1, 1, 0, 0, 0)


def write_xlsx(
    path: Path, tables: Iterator[pa.Table], schema: pa.Schema, headers: list[str], what: str
) -> int:
    """Write ``tables`` (of ``schema``) as one XLSX sheet named ``what`` (``what 2``, ... past
    Excel's 1,048,576 rows) with the header row ``headers``, frozen. Text cells are stored as text
    (never run as formulas, so no ``'`` is added) in columns formatted as text (``@``), so an id
    like ``123456789012`` or ``00123`` stays as it is, never ``1.23457E+11``, also when edited;
    numbers stay numbers.
    Characters XML cannot hold (control characters) are dropped and cells are cut to Excel's
    32,767 characters. Returns the data rows written."""
    import datetime as dt

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    fixed = dt.datetime(*_XLSX_TIME)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "tiein"
    text = [pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema]
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    widths = [min(40, max(10, len(h.encode("utf-8")) * 2 // 3 + 2)) for h in headers]

    def new_sheet(n: int) -> Any:
        ws = wb.create_sheet(title=what if n == 1 else f"{what} {n}")
        ws.freeze_panes = "A2"
        for i, (w, is_text) in enumerate(zip(widths, text, strict=True), 1):
            dim = ws.column_dimensions[get_column_letter(i)]
            dim.width = w
            if is_text:  # what is typed or pasted into a text column later stays text too
                dim.number_format = "@"
        cells = []
        for h in headers:
            c = WriteOnlyCell(ws, value=h)
            c.font, c.alignment = bold, wrap
            cells.append(c)
        ws.append(cells)
        return ws

    def cell(ws: Any, value: Any, is_text: bool) -> Any:
        if value is None or not is_text:
            return value
        if len(value) > XLSX_MAX_TEXT or ILLEGAL_CHARACTERS_RE.search(value):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_MAX_TEXT]
        if not value.startswith("="):
            return value  # a str is written as a text cell
        c = WriteOnlyCell(ws, value=value)
        c.data_type = "s"  # "=..." too is text, not a formula
        c.number_format = "@"
        return c

    sheet, ws, on_sheet, rows = 1, new_sheet(1), 1, 0
    for table in tables:
        for row in table.to_pylist():
            if on_sheet >= XLSX_MAX_ROWS:
                sheet += 1
                ws, on_sheet = new_sheet(sheet), 1
            ws.append([cell(ws, row[f.name], t) for f, t in zip(schema, text, strict=True)])
            on_sheet += 1
            rows += 1
    wb.save(str(path))
    _fix_zip_times(path)
    return rows


def _fix_zip_times(path: Path) -> None:
    """Rewrite the zip at ``path`` with every entry dated :data:`_XLSX_TIME`, and the file's
    "modified" property too (openpyxl stamps the time of saving), so one content has one set of
    bytes."""
    import re
    import zipfile

    stamp = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*_XLSX_TIME).encode("ascii")

    tmp = path.with_name(path.name + ".zip")
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                fixed = zipfile.ZipInfo(info.filename, date_time=_XLSX_TIME)
                fixed.compress_type = zipfile.ZIP_DEFLATED
                fixed.external_attr = info.external_attr
                data = src.read(info.filename)
                if info.filename == "docProps/core.xml":
                    data = re.sub(
                        rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + stamp + rb"\2", data
                    )
                dst.writestr(fixed, data)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

"""Reading one input file into an Arrow table, whatever its format and encoding.

Formats: CSV/TSV/TXT (delimiter sniffed), JSON lines (also a JSON array), Parquet, XLSX; any of
them may be gzip-compressed (``.gz``). Text encodings are detected (UTF-8, UTF-8/16 with a BOM,
GBK/GB18030, Big5; mixed or ambiguous files refused): see :mod:`tiein.loaders.encoding`. Every file is
read within the caps of :mod:`tiein.loaders.limits` (regular files only, decompressed size, line
length, cells, JSON nesting).

Row numbers. Every table read here carries an int64 column ``__row`` with the number a user
finds the record under in the file: for CSV/TSV with a header and for XLSX the row number a
spreadsheet shows, so **the header is row 1 and the first data row is row 2**; for CSV without
a header, JSON lines and Parquet, the 1-based record number (the first record is row 1).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from tiein.errors import InputError
from tiein.loaders.encoding import detect
from tiein.loaders.limits import Limits, check_json_depth, check_lines, check_zip, read_input

ROW = "__row"
NULL_STRINGS = ["", "nan", "NaN", "NULL", "null"]
FORMATS = ("csv", "json", "parquet", "xlsx")
_DELIMITERS = [",", "\t", ";", "|"]
_SAMPLE_BYTES = 1 << 20


@dataclass
class RawTable:
    """A file's records as read, every column as in the file (CSV columns as strings).

    ``table`` has the extra int64 column ``__row`` (see the module docstring)."""

    table: pa.Table
    file: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: bool = True

    @property
    def columns(self) -> list[str]:
        """The file's own column names (without ``__row``)."""
        return [c for c in self.table.column_names if c != ROW]

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)


def detect_format(path: Path, head: bytes) -> str:
    """The format of ``path`` from its extension (``.gz`` looked through), else from its first bytes."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    by_ext = {
        ".csv": "csv",
        ".tsv": "csv",
        ".tab": "csv",
        ".txt": "csv",
        ".jsonl": "json",
        ".ndjson": "json",
        ".json": "json",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".xlsx": "xlsx",
        ".xlsm": "xlsx",
    }
    if suffix in by_ext:
        return by_ext[suffix]
    if suffix == ".xls":
        raise InputError(
            "old Excel .xls files are not supported: save the sheet as .xlsx or .csv", file=str(path)
        )
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        return "json"
    if head and b"\x00" not in head[:4096]:
        return "csv"
    raise InputError(
        f"unknown file format {suffix or '(no extension)'!r}: expected CSV/TSV, JSON lines, Parquet or XLSX",
        file=str(path),
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped), within the limits; see :func:`tiein.loaders.limits.read_input`."""
    return read_input(path)


def decode(data: bytes, file: str, encoding: str | None = None) -> tuple[bytes, str]:
    """Return ``(utf8_bytes_without_bom, encoding_name)``.

    With ``encoding`` given, that encoding is used strictly; otherwise it is detected by
    :func:`tiein.loaders.encoding.detect`. Undecodable bytes raise :class:`InputError` naming the
    line (= spreadsheet row) of the first bad byte; so does a line over the length limit.
    """
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}", file=file) from None
        enc = encoding
    else:
        enc = detect(data, file)
    try:
        if enc == "utf-8":
            data.decode("utf-8")  # validate only: the bytes are already what pyarrow wants
            body = data
        else:
            body = data.decode(enc).encode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 4].hex(" ")
        raise InputError(
            f"undecodable bytes ({bad}) at byte {exc.start}: the file is not {enc}; "
            "pass the right encoding (option encoding=...)",
            file=file,
            row=data.count(b"\n", 0, exc.start) + 1,
        ) from None
    check_lines(body, file, Limits.from_env())
    return body, enc


def sniff_delimiter(text_head: str) -> str:
    """The delimiter among ``, TAB ; |`` that splits the first lines most consistently."""
    lines = [ln for ln in text_head.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not text_head.endswith("\n"):
        lines = lines[:-1]  # the sample may cut the last line
    if not lines:
        return ","
    unquoted = [re.sub(r'"[^"]*"', "", ln) for ln in lines]
    best, best_score = ",", (0, 0)
    for d in _DELIMITERS:
        counts = [ln.count(d) for ln in unquoted]
        if counts[0] == 0:
            continue
        mode_count, freq = Counter(counts).most_common(1)[0]
        score = (freq, mode_count) if mode_count else (0, 0)
        if score > best_score:
            best, best_score = d, score
    return best


def _header_names(text_head: str, delimiter: str, file: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text_head), delimiter=delimiter), [])
    names = [n.strip() for n in first]
    if not any(names):
        raise InputError("the first line (the header) is empty", file=file, row=1)
    return _unique(names, file, 1)


def read_csv(
    data: bytes, file: str, *, encoding: str | None = None, delimiter: str | None = None, header: bool = True
) -> RawTable:
    """Read CSV/TSV bytes; every column is read as a string (ids keep their leading zeros)."""
    body, enc = decode(data, file, encoding)
    if not body.strip():
        raise InputError("the file is empty", file=file)
    head = body[:_SAMPLE_BYTES].decode("utf-8", errors="ignore")
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    if not delimiter:
        delimiter = (
            "\t" if file.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else sniff_delimiter(head)
        )
    if header:
        names = _header_names(head, delimiter, file)
        _check_width(len(names), file, 1)
        skip = 1
    else:
        width = max(
            len(r) for r in csv.reader(io.StringIO("\n".join(head.splitlines()[:50])), delimiter=delimiter)
        )
        _check_width(width, file, 1)
        names = [f"column{i}" for i in range(1, width + 1)]
        skip = 0
    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = row.number
        if number is None and row.text:  # pyarrow does not always know it: find the line
            at = body.find(row.text.encode("utf-8"))
            number = body.count(b"\n", 0, at) + 1 if at >= 0 else None
        bad.append((number, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "error"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=NULL_STRINGS,
            ),
        )
    except pa.ArrowInvalid as exc:
        if bad:
            line, why = bad[0]
            raise InputError(f"malformed line: {why} (delimiter {delimiter!r})", file=file, row=line) from exc
        raise InputError(f"cannot parse as CSV: {exc}", file=file) from exc
    if table.num_rows == 0:
        raise InputError("the file has a header but no data rows", file=file)
    _check_cells(table, file)
    rows = pa.array(range(1 + skip, table.num_rows + 1 + skip), pa.int64())
    return RawTable(table.append_column(ROW, rows), file, "csv", enc, delimiter, header)


def read_lines(data: bytes, file: str, *, encoding: str | None = None) -> tuple[pa.Array, str]:
    """Every line of a text file as one string array (for one-basket-per-line files)."""
    body, enc = decode(data, file, encoding)
    if not body.strip():
        raise InputError("the file is empty", file=file)
    table = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(column_names=["line"], block_size=8 << 20),
        parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False),
    )
    return table.column("line").combine_chunks(), enc


def read_json(data: bytes, file: str, *, encoding: str | None = None) -> RawTable:
    """Read JSON lines (one object per line) or a JSON array of objects."""
    body, enc = decode(data, file, encoding)
    if not body.strip():
        raise InputError("the file is empty", file=file)
    if body.lstrip()[:1] == b"[":
        try:
            records = json.loads(body, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", file=file, row=exc.lineno) from exc
        except RecursionError:
            raise InputError("JSON nested too deeply", file=file) from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InputError("a JSON file must hold objects, one per line or in one array", file=file)
        table = _from_records(records, file)
    else:
        check_json_depth(body, file, Limits.from_env())  # before pyarrow, which crashes on it
        try:
            table = pajson.read_json(io.BytesIO(body), read_options=pajson.ReadOptions(block_size=16 << 20))
        except pa.ArrowInvalid:
            # Inconsistent types between lines (a field once a string, once a list) or a bad line:
            # parse line by line, which also finds the bad line's number.
            table = _json_lines_slow(body, file)
    if table.num_rows == 0:
        raise InputError("the file holds no records", file=file)
    _check_cells(table, file)
    rows = pa.array(range(1, table.num_rows + 1), pa.int64())
    return RawTable(table.append_column(ROW, rows), file, "json", enc)


def _json_lines_slow(body: bytes, file: str) -> pa.Table:
    records = []
    for i, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", file=file, row=i) from exc
        except RecursionError:
            raise InputError("JSON nested too deeply", file=file, row=i) from None
        if not isinstance(obj, dict):
            raise InputError("each line must be a JSON object", file=file, row=i)
        records.append(obj)
    return _from_records(records, file)


def _no_constant(name: str) -> float:
    """NaN / Infinity are not JSON (RFC 8259); a value must be a number or null."""
    raise json.JSONDecodeError(f"{name} is not valid JSON (write null or a number)", name, 0)


def _check_width(columns: int, file: str, row: int | None) -> None:
    cap = Limits.from_env().max_columns
    if columns > cap:
        raise InputError(f"{columns:,} columns, over the limit of {cap:,}", file=file, row=row)


def _check_cells(table: pa.Table, file: str) -> None:
    _check_width(table.num_columns, file, None)
    cap = Limits.from_env().max_cells
    if table.num_rows * table.num_columns > cap:
        raise InputError(
            f"{table.num_rows:,} rows x {table.num_columns:,} columns, over the limit of {cap:,} cells",
            file=file,
        )


def _from_records(records: list[dict[str, Any]], file: str) -> pa.Table:
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))
    columns = {}
    for n in names:
        values = [r.get(n) for r in records]
        try:
            columns[n] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            columns[n] = pa.array(
                [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values],
                pa.string(),
            )
    return pa.table(columns)


def read_parquet(data: bytes, file: str) -> RawTable:
    try:
        table = pq.ParquetFile(pa.BufferReader(data)).read()  # no pyarrow.dataset (it imports pandas)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=file) from exc
    if table.num_rows == 0:
        raise InputError("the file holds no rows", file=file)
    rows = pa.array(range(1, table.num_rows + 1), pa.int64())
    return RawTable(table.append_column(ROW, rows), file, "parquet")


def read_xlsx(data: bytes, file: str, *, sheet: str | None = None, header: bool = True) -> RawTable:
    """Read the first (or the named) sheet; the first non-empty row is the header."""
    import openpyxl

    limits = Limits.from_env()
    check_zip(data, file, limits)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _XLSX_ERRORS as exc:
        raise InputError(f"not a readable XLSX file: {type(exc).__name__}: {exc}", file=file) from None
    cells = 0
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InputError(f"no sheet {sheet!r}; the sheets are {wb.sheetnames}", file=file)
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        names: list[str] | None = None
        columns: list[list[object]] = []
        row_numbers: list[int] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells += len(values)
            if cells > limits.max_cells or len(values) > limits.max_columns:
                raise InputError(
                    f"the sheet is over the limit of {limits.max_cells:,} cells or {limits.max_columns:,} columns",
                    file=file,
                    row=number,
                )
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            if names is None:
                if header:
                    names = _unique([str(v).strip() if v is not None else "" for v in values], file, number)
                    columns = [[] for _ in names]
                    continue
                names = [f"column{i}" for i in range(1, len(values) + 1)]
                columns = [[] for _ in names]
            if len(values) > len(names):
                extra = [v for v in values[len(names) :] if v is not None]
                if extra:
                    raise InputError(
                        f"a value {extra[0]!r} stands right of the last header column", file=file, row=number
                    )
            for col, v in zip(columns, values, strict=False):
                col.append(v.strip() or None if isinstance(v, str) else v)
            for col in columns[len(values) :]:
                col.append(None)
            row_numbers.append(number)
    except _XLSX_ERRORS as exc:  # malformed sheet XML, found while reading rows
        raise InputError(f"not a readable XLSX file: {type(exc).__name__}: {exc}", file=file) from None
    finally:
        wb.close()
    if names is None:
        raise InputError("the sheet is empty", file=file)
    if not row_numbers:
        raise InputError("the sheet has a header but no data rows", file=file)
    arrays = {}
    for n, col in zip(names, columns, strict=True):
        try:
            arrays[n] = pa.array(col)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # mixed cell types in one column
            arrays[n] = pa.array([None if v is None else _cell_text(v) for v in col], pa.string())
    table = pa.table(arrays).append_column(ROW, pa.array(row_numbers, pa.int64()))
    return RawTable(table, file, "xlsx", header=header)


# What openpyxl raises on a malformed workbook (broken XML is a SyntaxError: ParseError).
_XLSX_ERRORS = (
    zipfile.BadZipFile,
    KeyError,
    IndexError,
    OSError,
    ValueError,
    TypeError,
    AttributeError,
    SyntaxError,
    EOFError,
    zlib.error,
)


def _cell_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _unique(names: list[str], file: str, row: int) -> list[str]:
    """Header names, a blank one named ``column<i>``; a repeated name is refused (which of the
    columns would a mapping mean?)."""
    first: dict[str, int] = {}
    out = []
    for i, n in enumerate(names, start=1):
        n = n or f"column{i}"
        if n in first:
            raise InputError(
                f"duplicate column name {n!r} (columns {first[n]} and {i}): rename one of them",
                file=file,
                row=row,
            )
        first[n] = i
        out.append(n)
    return out


def read_table(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    header: bool = True,
    sheet: str | None = None,
) -> RawTable:
    """Read one file of any supported format into a :class:`RawTable`."""
    path = Path(path)
    data = _read_bytes(path)
    file = str(path)
    if not data.strip():
        raise InputError("the file is empty", file=file)
    fmt = detect_format(path, data[:4096])
    if fmt == "csv":
        return read_csv(data, file, encoding=encoding, delimiter=delimiter, header=header)
    if fmt == "json":
        return read_json(data, file, encoding=encoding)
    if fmt == "parquet":
        return read_parquet(data, file)
    return read_xlsx(data, file, sheet=sheet, header=header)

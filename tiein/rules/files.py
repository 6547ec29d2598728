"""The merchant's rules file: CSV (UTF-8 or GBK as Excel saves it), XLSX or YAML, read into rules
with errors naming the file and row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tiein.errors import ConfigError, InputError
from tiein.rules.model import MAX_RULES, _text, normalize_rule, rule_key


# ----------------------------------------------------------------------------- the merchant file
def read_rules_file(path: Path | str) -> list[dict[str, Any]]:
    """The rules of a merchant file (CSV, XLSX, YAML; see the module doc), normalised. InputError
    naming the file, row and problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    if suffix in (".yaml", ".yml", ".json"):
        rows = _yaml_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise InputError("rules come as .csv, .xlsx or .yaml", file=str(path))
    return rows_to_rules(rows, source=str(path))


def rows_to_rules(rows: Iterable[Mapping[str, Any]], *, source: str = "rules") -> list[dict[str, Any]]:
    """Normalised rules from raw rows (1-based data rows named in errors); a later row for the
    same anchor, item and kind wins."""
    out: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for n, raw in enumerate(rows, 1):
        if not isinstance(raw, Mapping):
            raise InputError(f"a rule must be a mapping of fields, got {raw!r}", file=source, row=n)
        if all(_text(v) is None for v in raw.values()):
            continue  # a blank spreadsheet row
        try:
            rule = normalize_rule(raw)
        except ConfigError as exc:
            raise InputError(str(exc), file=source, row=n) from None
        out.pop(rule_key(rule), None)
        out[rule_key(rule)] = rule
    if len(out) > MAX_RULES:
        raise InputError(f"{len(out):,} rules; at most {MAX_RULES:,}", file=source)
    return list(out.values())


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise InputError("is neither UTF-8 nor GBK text", file=str(path))
    dialect = (
        csv.excel_tab if path.suffix.lower() == ".tsv" or ("\t" in text.split("\n", 1)[0]) else csv.excel
    )
    return [dict(r) for r in csv.DictReader(io.StringIO(text), dialect=dialect)]


def _xlsx_rows(path: Path) -> list[dict[str, Any]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a base dependency
        raise InputError("reading .xlsx needs openpyxl", file=str(path)) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise InputError(f"is not a readable XLSX workbook: {exc}", file=str(path)) from None
    try:
        sheet = book.worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    if not values:
        return []
    header = [_text(h) or f"column{i + 1}" for i, h in enumerate(values[0])]
    return [dict(zip(header, row, strict=False)) for row in values[1:]]


def _yaml_rows(path: Path) -> list[Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"is not valid YAML: {exc}", file=str(path)) from None
    if isinstance(doc, Mapping) and "rules" in doc:
        doc = doc["rules"]
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InputError("must hold a list of rules (or rules: [...])", file=str(path))
    return doc

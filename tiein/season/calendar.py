"""Season windows: the twelve calendar months (the default) or named windows from a calendar file.

A calendar file is CSV or YAML/JSON, one row per span of a window::

    name,zh,en,from,to
    christmas,圣诞季,Christmas,11-15,12-25
    spring_festival,春节,Spring Festival,2024-01-20,2024-02-16
    spring_festival,春节,Spring Festival,2025-01-08,2025-02-04

``from`` / ``to`` (inclusive) are ``MM-DD`` (every year; a span may wrap the new year,
``12-26`` to ``01-02``) or ``YYYY-MM-DD`` (that year only: a moving feast such as 春节 gets one
row per year). Rows with the same ``name`` are one window; ``zh`` / ``en`` label it (default the
name; give them on the first row of a window, later rows may leave them empty). YAML: a list of
such mappings, or ``{"windows": [...]}``. Windows may overlap (双12 lies inside Christmas).

:data:`BUILTIN` (``--calendar builtin``) is a small shop calendar: 春节 (the three weeks before
the festival and its first week, 2010-2035), Valentine's Day, 618, 双11, 双12, Christmas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tiein.errors import ConfigError, InputError

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
COLUMNS = ("name", "zh", "en", "from", "to")


@dataclass(frozen=True)
class Window:
    """A named season window: ``key`` (the calendar's name), labels, and its spans, each a pair
    of ``MM-DD`` (every year) or ``YYYY-MM-DD`` (one year) strings, inclusive.

    >>> xmas = Window("christmas", "圣诞季", "Christmas", (("11-15", "12-25"),))
    >>> xmas.contains(date(2011, 12, 1)), xmas.contains(date(2011, 7, 1))
    (True, False)
    >>> Window("ny", "新年", "New Year", (("12-26", "01-02"),)).contains(date(2012, 1, 1))
    True
    """

    key: str
    zh: str
    en: str
    spans: tuple[tuple[str, str], ...]

    def contains(self, day: date) -> bool:
        return spans_contain(self.spans, day)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "zh": self.zh, "en": self.en, "spans": [list(s) for s in self.spans]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Window:
        return cls(str(d["key"]), str(d["zh"]), str(d["en"]), tuple((str(a), str(b)) for a, b in d["spans"]))


def spans_contain(spans: Sequence[Sequence[str]], day: date) -> bool:
    """Whether ``day`` lies in one of ``spans`` (``MM-DD`` pairs recur every year and may wrap the
    new year; ``YYYY-MM-DD`` pairs are one stretch of days).

    >>> spans_contain([["2024-01-20", "2024-02-16"]], date(2024, 2, 1)), spans_contain([["02-01", "02-14"]], date(2030, 2, 14))
    (True, True)
    """
    md = day.strftime("%m-%d")
    iso = day.isoformat()
    for a, b in spans:
        if len(a) == 5:
            if (a <= md <= b) if a <= b else (md >= a or md <= b):
                return True
        elif a <= iso <= b:
            return True
    return False


def month_windows() -> tuple[Window, ...]:
    """The default windows: the twelve months (``m01`` … ``m12``, 1月 / January …)."""
    out = []
    for m in range(1, 13):
        last = (date(2001 if m < 12 else 2000, m % 12 + 1, 1) - timedelta(days=1)).day
        out.append(Window(f"m{m:02d}", f"{m}月", MONTHS_EN[m - 1], ((f"{m:02d}-01", f"{m:02d}-{last:02d}"),)))
    return tuple(out)


# First day of the Chinese New Year (春节), by year.
SPRING_FESTIVAL = {
    2010: "02-14", 2011: "02-03", 2012: "01-23", 2013: "02-10", 2014: "01-31", 2015: "02-19",
    2016: "02-08", 2017: "01-28", 2018: "02-16", 2019: "02-05", 2020: "01-25", 2021: "02-12",
    2022: "02-01", 2023: "01-22", 2024: "02-10", 2025: "01-29", 2026: "02-17", 2027: "02-06",
    2028: "01-26", 2029: "02-13", 2030: "02-03", 2031: "01-23", 2032: "02-11", 2033: "01-31",
    2034: "02-19", 2035: "02-08",
}  # fmt: skip


def _spring_festival_spans() -> tuple[tuple[str, str], ...]:
    spans = []
    for year, md in SPRING_FESTIVAL.items():
        day = date.fromisoformat(f"{year}-{md}")
        spans.append(((day - timedelta(days=21)).isoformat(), (day + timedelta(days=6)).isoformat()))
    return tuple(spans)


BUILTIN: tuple[Window, ...] = (
    Window("spring_festival", "春节", "Spring Festival", _spring_festival_spans()),
    Window("valentines", "情人节", "Valentine's Day", (("02-01", "02-14"),)),
    Window("618", "618", "the 618 sale", (("06-01", "06-18"),)),
    Window("double11", "双11", "Singles' Day", (("11-01", "11-11"),)),
    Window("double12", "双12", "the 12.12 sale", (("12-01", "12-12"),)),
    Window("christmas", "圣诞季", "Christmas", (("11-15", "12-25"),)),
)


def _check_day(value: Any, file: str, row: int, column: str) -> str:
    """``value`` as ``MM-DD`` or ``YYYY-MM-DD`` text, else InputError naming the cell."""
    text = (value.isoformat() if isinstance(value, date) else str(value if value is not None else "")).strip()
    try:
        if len(text) == 5:
            date.fromisoformat(f"2000-{text}")  # 2000 is a leap year: 02-29 is a day
            return text
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise InputError(
        f"{text!r} is not a date: write MM-DD (every year) or YYYY-MM-DD", file=file, row=row, column=column
    )


def parse_calendar(rows: Sequence[Mapping[str, Any]], file: str = "calendar") -> tuple[Window, ...]:
    """Windows from calendar rows (dicts with :data:`COLUMNS`), in first-seen order. InputError
    naming ``file``, the 1-based row and the column: a missing name, a bad date, ``from`` and
    ``to`` of different forms, a one-year span that ends before it starts, an unknown column.

    >>> [w.key for w in parse_calendar([{"name": "x", "from": "11-01", "to": "11-11"}])]
    ['x']
    >>> parse_calendar([{"name": "x", "from": "2024-02-10", "to": "2024-01-01"}], "cal.csv")
    Traceback (most recent call last):
    ...
    tiein.errors.InputError: cal.csv, row 1, column 'to': 2024-01-01 is before from (2024-02-10)
    """
    if not rows:
        raise InputError("no windows: give rows of name, zh, en, from, to", file=file)
    labels: dict[str, tuple[str, str]] = {}
    spans: dict[str, list[tuple[str, str]]] = {}
    for i, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            raise InputError(f"expected a mapping of {', '.join(COLUMNS)}, got {row!r}", file=file, row=i)
        unknown = sorted(str(k) for k in row if str(k) not in COLUMNS)
        if unknown:
            raise InputError(
                f"unknown column(s) {', '.join(unknown)}; columns: {', '.join(COLUMNS)}", file=file, row=i
            )
        name = str(row.get("name") or "").strip()
        if not name:
            raise InputError("a window needs a name", file=file, row=i, column="name")
        a = _check_day(row.get("from"), file, i, "from")
        b = _check_day(row.get("to"), file, i, "to")
        if len(a) != len(b):
            raise InputError(
                f"from ({a}) and to ({b}) must both be MM-DD or both YYYY-MM-DD",
                file=file,
                row=i,
                column="to",
            )
        if len(a) == 10 and b < a:
            raise InputError(f"{b} is before from ({a})", file=file, row=i, column="to")
        zh, en = str(row.get("zh") or "").strip(), str(row.get("en") or "").strip()
        if name not in labels:
            labels[name] = (zh or name, en or name)
        spans.setdefault(name, []).append((a, b))
    return tuple(Window(k, labels[k][0], labels[k][1], tuple(spans[k])) for k in labels)


def load_calendar(path: Path | str) -> tuple[Window, ...]:
    """The windows of a calendar file (``.csv`` / ``.tsv``, else YAML or JSON), or :data:`BUILTIN`
    for ``"builtin"``. ConfigError when the file cannot be read; InputError (file, row, column)
    for a bad row (:func:`parse_calendar`)."""
    if str(path) == "builtin":
        return BUILTIN
    from tiein.loaders.limits import require_regular_file

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"calendar file {p} does not exist (or use --calendar builtin)")
    require_regular_file(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read calendar file {p}: {exc}") from exc
    if p.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
        missing = [c for c in ("name", "from", "to") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"the header lacks column(s) {', '.join(missing)}; columns: {', '.join(COLUMNS)}", file=str(p)
            )
        rows: Any = [{k: v for k, v in r.items() if k is not None} for r in reader]
    else:
        import yaml

        try:
            rows = yaml.safe_load(text)  # JSON is YAML
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML/JSON: {exc}", file=str(p)) from exc
        if isinstance(rows, dict) and set(rows) == {"windows"}:
            rows = rows["windows"]
        if not isinstance(rows, list):
            raise InputError(
                "expected a list of windows (name, zh, en, from, to) or {windows: [...]}", file=str(p)
            )
    return parse_calendar(rows, str(p))

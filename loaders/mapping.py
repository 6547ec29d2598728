"""Which source column is which field: the mapping from any catalog/order/browsing file to tiein.

A :class:`Mapping` has four sections. Columns not mapped fall back to a column literally named
like the field (``product_id``, ``title``, ``order_id``, ...) when the file has one; in a catalog
also ``id``/``sku`` for the product id and ``name``/``product_name`` for the title.

YAML (or JSON) form, sections optional::

    catalog:
      product_id: StockCode
      title: Description
      category: [department, aisle]     # one column, or several = hierarchy top -> leaf
      attributes: [sale_count, comment_count]
      margin: 毛利率                     # optional: 0.35 or 35%; or cost: 成本价 (margin = (price - cost) / price)
    orders:
      order_id: InvoiceNo
      product_id: StockCode
      timestamp: [Date, Time]           # several columns are joined with a space
    views: {session: user_id, product_id: item_id, timestamp: ts, event: behavior}
    sets: {set_id: 视频ID, kind: 类型, weight: 权重}   # content sets (tiein build --sets)
    options:
      exclude_product_regex: "^(POST|DOT)$"
      cancel_prefix: C

Flat ``field=column`` pairs (CLI, or top-level YAML keys) set a field in every section that has
it (``product_id=sku`` maps the id in catalog, orders and views); ``orders.title=Description``
sets one section only. List fields take comma-separated columns (``category=department,aisle``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from tiein.errors import ConfigError, InputError


@dataclass
class CatalogColumns:
    """Catalog columns. ``category``: one column (leaf, or a list-valued column, or a string split
    by ``options.category_sep``) or several columns ordered top -> leaf."""

    product_id: str | None = None
    title: str | None = None
    category: list[str] = field(default_factory=list)
    brand: str | None = None
    price: str | None = None
    stock: str | None = None
    attributes: list[str] = field(default_factory=list)
    # Optional, for product sales roles ("profit" items): the margin as a fraction of the price
    # (0.35, or "35%"), or the unit cost in the price's currency (margin = (price - cost) / price).
    # Map one of the two, not both.
    margin: str | None = None
    cost: str | None = None


@dataclass
class OrderColumns:
    """Order-line columns. ``title`` and ``price`` are only used to derive the catalog when no
    catalog file is given (title = most frequent, price = median positive)."""

    order_id: str | None = None
    product_id: str | None = None
    quantity: str | None = None
    customer: str | None = None
    timestamp: list[str] = field(default_factory=list)
    title: str | None = None
    price: str | None = None
    segment: str | None = None  # the order's customer segment (country, channel, tier; tiein.segments)


@dataclass
class ViewColumns:
    """Browsing-event columns; ``event`` defaults to ``"view"`` when not mapped."""

    session: str | None = None
    product_id: str | None = None
    timestamp: list[str] = field(default_factory=list)
    event: str | None = None


@dataclass
class SetColumns:
    """Content-set columns (``tiein build --sets``, :mod:`tiein.loaders.sets`): the set (a video,
    a livestream, an outfit), the product, and optionally its kind, weight and time."""

    set_id: str | None = None
    product_id: str | None = None
    kind: str | None = None
    weight: str | None = None
    timestamp: list[str] = field(default_factory=list)


@dataclass
class Options:
    """Reading and cleaning options (all optional)."""

    encoding: str | None = None  # override detection (utf-8, gb18030, latin-1, ...)
    delimiter: str | None = None  # override sniffing ("," "\t" ";" "|"; "tab" accepted)
    header: bool = True  # CSV/XLSX: the first row holds column names
    sheet: str | None = None  # XLSX sheet name (default: the first sheet)
    exclude_product_regex: str | None = None  # product ids matching it are dropped (and counted)
    timestamp_format: str | None = None  # strptime format; default: detected
    category_sep: str | None = None  # split a one-column category path, e.g. " > " or "/"
    cancel_prefix: str | None = None  # order ids starting with it are cancellations
    zero_price: Literal["keep", "drop"] = "keep"  # order lines with price 0 (needs orders.price)
    giant_basket: int = 500  # orders with more distinct products are dropped (0 = no limit)
    latest_by: str | None = None  # catalog: keep the row with the largest value per product id
    basket_per_line: bool = False  # orders file: one basket per line, items split by delimiter
    id_case: Literal["keep", "upper", "lower"] = "keep"  # fold product ids ("85123a" = "85123A")


_SECTIONS: dict[str, type] = {
    "catalog": CatalogColumns,
    "orders": OrderColumns,
    "views": ViewColumns,
    "sets": SetColumns,
    "options": Options,
}
_LIST_FIELDS = {"category", "attributes", "timestamp"}
_ALIASES = {
    "exclude": "exclude_product_regex",
    "customer_id": "customer",
    "session_id": "session",
    "ts": "timestamp",
}


@dataclass
class Mapping:
    """Column mapping plus options for one load (see the module docstring)."""

    catalog: CatalogColumns = field(default_factory=CatalogColumns)
    orders: OrderColumns = field(default_factory=OrderColumns)
    views: ViewColumns = field(default_factory=ViewColumns)
    sets: SetColumns = field(default_factory=SetColumns)
    options: Options = field(default_factory=Options)
    files: dict[str, str] = field(default_factory=dict)  # ready datasets: role -> file name

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "mapping") -> Mapping:
        """Build from nested sections and/or flat/dotted ``field: column`` keys."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections/fields, got {type(data).__name__}")
        m = cls()
        flat: list[tuple[str, Any]] = []
        for key, value in data.items():
            if key in _SECTIONS:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: section {key!r} must be a mapping of field: column")
                flat.extend((f"{key}.{k}", v) for k, v in value.items())
            elif key == "files":
                if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                    raise ConfigError(f"{source}: 'files' must map a role to a file name")
                m.files = dict(value)
            else:
                flat.append((str(key), value))
        for key, value in flat:
            m.set(key, value, source=source)
        return m

    @classmethod
    def from_file(cls, path: str | Path) -> Mapping:
        """Read a YAML (``.yaml``/``.yml``) or JSON mapping file."""
        from tiein.loaders.limits import MAX_CONFIG_BYTES, Limits, read_input

        path = Path(path)
        try:
            text = read_input(path, Limits(max_input_bytes=MAX_CONFIG_BYTES)).decode("utf-8")
        except InputError as exc:
            raise ConfigError(f"{path}: cannot read the mapping file: {exc.reason}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: the mapping file is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        import yaml

        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except yaml.YAMLError as exc:  # one line: where and what, not PyYAML's multi-line excerpt
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{path}: not valid YAML{where}: {what}") from None
        return cls.from_dict(data or {}, source=str(path))

    @classmethod
    def from_cli(cls, pairs: list[str], base: Mapping | None = None) -> Mapping:
        """Parse ``field=column`` strings (``product_id=StockCode``, ``orders.title=Description``,
        ``category=department,aisle``, ``encoding=gbk``) on top of ``base``."""
        import copy

        m = copy.deepcopy(base) if base is not None else cls()
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"mapping {pair!r}: expected field=column, e.g. product_id=StockCode")
            m.set(key.strip(), value.strip(), source="command line")
        return m

    def set(self, key: str, value: Any, *, source: str = "mapping") -> None:
        """Set one field; ``key`` is ``field`` (every section having it) or ``section.field``."""
        section, _, name = key.rpartition(".")
        name = _ALIASES.get(name, name)
        if section and section not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section {section!r} in {key!r}; sections: {', '.join(_SECTIONS)}"
            )
        targets = [section] if section else [s for s, t in _SECTIONS.items() if name in _field_names(t)]
        if not targets or name not in _field_names(_SECTIONS[targets[0]]):
            valid = sorted({f for t in _SECTIONS.values() for f in _field_names(t)})
            raise ConfigError(f"{source}: unknown field {key!r}; fields: {', '.join(valid)}")
        for s in targets:
            obj = getattr(self, s)
            setattr(obj, name, _coerce(s, name, value, source))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _field_names(t: type) -> set[str]:
    return {f.name for f in fields(t)}


def _coerce(section: str, name: str, value: Any, source: str) -> Any:
    where = f"{source}: {section}.{name}"
    if section == "options":
        default = getattr(Options(), name)
        if name == "header" or name == "basket_per_line":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1"):
                return True
            if str(value).lower() in ("false", "no", "0"):
                return False
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        if name == "giant_basket":
            try:
                n = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
            if n < 0:
                raise ConfigError(f"{where}: must be 0 (no limit) or more")
            return n
        if name in ("zero_price", "id_case"):
            allowed = ("keep", "drop") if name == "zero_price" else ("keep", "upper", "lower")
            if value not in allowed:
                raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
            return value
        if name == "exclude_product_regex" and value:
            import re

            try:
                re.compile(str(value))
            except re.error as exc:
                raise ConfigError(f"{where}: invalid regular expression: {exc}") from exc
        if value is None or value == "":
            return default
        return str(value)
    if name in _LIST_FIELDS:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: expected a column name or a list of column names, got {value!r}")
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise ConfigError(f"{where}: expected one column name, got {value!r}")
    return str(value)


def ready_mapping(name: str) -> Mapping:
    """The shipped mapping ``loaders/mappings/<name>.yaml``."""
    return Mapping.from_file(Path(__file__).parent / "mappings" / f"{name}.yaml")

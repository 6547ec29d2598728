"""Merchant rules (手动设置与智能推荐结合): the relations a shop sets by hand, kept beside the
graph and applied on every read.

A rule names an ``anchor`` product, an ``item``, a relation ``kind`` and an ``action``:

- ``pin``: the item comes first among the anchor's ``kind`` rows (``position`` 1, 2, … orders
  several pins; pins without a position follow the numbered ones), whether or not the graph
  relates them, explained as "商家推荐 / picked by the shop"; in bundles and cart add-ons a pinned
  complement is the first candidate (it still passes the bundle rules: stock, price band, …);
- ``block``: the item never appears for the anchor (related rows, bundles, add-ons, export); in
  bundles and carts the two are never put together, either way round. ``anchor`` ``*`` blocks the
  item for every anchor; a block without a kind blocks every kind;
- ``boost``: the pair's score is multiplied by ``boost`` (default 1.5) before ranking.

Optional ``valid_from`` / ``valid_to`` (ISO dates or times, UTC; a date-only ``valid_to`` lasts
the whole day) bound when a rule holds; ``note`` is free text. Rules are stored by the graph
store beside the graph (:meth:`tiein.graph.base.GraphReader.rules`: ``rules.json`` next to the
embedded store's generations, ``:Rule`` nodes in Neo4j), so ``tiein build`` and ``tiein update``
never wipe them; each save increments the rules' ``version``.

The merchant file (:func:`read_rules_file`) is CSV (UTF-8 or GBK/GB18030, as Excel saves it),
XLSX or YAML (a list of rules, or ``{rules: [...]}``); column names in English or Chinese
(:data:`COLUMN_ALIASES`: 主商品, 推荐商品, 关系, 动作, 位置, 权重, 开始时间, 结束时间, 备注), actions
and kinds too (置顶 / 屏蔽 / 加权, 搭配 / 替代 / 升级 / 同系列 / 复购).

Layer: service (tiein.service, tiein.bundles and the API/CLI use it; it reads only the store).
Filters on list answers (in stock, exclude, category, brand, price range, min score, offset) are
:class:`Filters`, applied together with the rules by :mod:`tiein.service`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError, InputError, ProductNotFound
from tiein.model import RELATION_KINDS

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore

ACTIONS = ("pin", "block", "boost")
ANY_ANCHOR = "*"
DEFAULT_BOOST = 1.5
MAX_RULES = 100_000
PINNED_ZH = "商家推荐"
PINNED_EN = "picked by the shop"

# the fields of a stored rule, in this order
RULE_FIELDS = (
    "rule_id",
    "anchor",
    "item",
    "kind",
    "action",
    "position",
    "boost",
    "valid_from",
    "valid_to",
    "note",
)
# merchant file column -> field (compared case-insensitively, spaces / dashes as underscores)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "rule_id": ("rule_id", "id", "规则id", "规则编号"),
    "anchor": (
        "anchor",
        "anchor_id",
        "product",
        "product_id",
        "主商品",
        "主商品id",
        "商品",
        "商品id",
        "商品编码",
    ),
    "item": (
        "item",
        "item_id",
        "related",
        "related_id",
        "target",
        "推荐商品",
        "推荐商品id",
        "关联商品",
        "搭配商品",
    ),
    "kind": ("kind", "relation", "relation_kind", "关系", "关系类型", "类型"),
    "action": ("action", "rule", "动作", "操作", "规则"),
    "position": ("position", "rank", "pos", "位置", "排序", "顺序", "排名"),
    "boost": ("boost", "weight", "factor", "权重", "加权", "倍数"),
    "valid_from": ("valid_from", "from", "start", "开始", "开始时间", "开始日期", "生效时间", "生效日期"),
    "valid_to": ("valid_to", "to", "until", "end", "结束", "结束时间", "结束日期", "失效时间", "失效日期"),
    "note": ("note", "comment", "remark", "备注", "说明"),
}
ACTION_ALIASES = {
    "pin": "pin",
    "置顶": "pin",
    "固定": "pin",
    "推荐": "pin",
    "block": "block",
    "hide": "block",
    "屏蔽": "block",
    "禁止": "block",
    "隐藏": "block",
    "boost": "boost",
    "加权": "boost",
    "提升": "boost",
}
KIND_ALIASES = {
    **{k: k for k in RELATION_KINDS},
    "搭配": "complement",
    "互补": "complement",
    "加购": "complement",
    "替代": "substitute",
    "替换": "substitute",
    "升级": "upsell",
    "同系列": "series",
    "系列": "series",
    "复购": "next",
    "下次购买": "next",
    "any": None,
    "all": None,
    "*": None,
    "全部": None,
    "所有": None,
}


def _key(name: Any) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


_COLUMN_OF = {_key(alias): name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}


# ----------------------------------------------------------------------------- one rule
def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 12-digit ids read from a spreadsheet as numbers
    text = str(value).strip()
    return text or None


def _when(value: Any, what: str, *, end: bool = False) -> str | None:
    """An ISO time (UTC) from a date, a datetime or ISO text; a date-only end lasts the day."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time()) + (timedelta(days=1) if end else timedelta())
    else:
        text = str(value).strip().replace("/", "-")
        try:
            if len(text) <= 10:
                day = date.fromisoformat(text)
                moment = datetime.combine(day, time()) + (timedelta(days=1) if end else timedelta())
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{what} must be a date or time such as 2026-12-01, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def normalize_rule(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One rule as stored (RULE_FIELDS; ``rule_id`` as given, None when new) from a mapping
    whose keys are field names or merchant column names. ConfigError naming what is wrong."""
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        col = _COLUMN_OF.get(_key(name))
        if col is None:
            raise ConfigError(
                f"unknown rule field {name!r}; known: {', '.join(f for f in RULE_FIELDS)} "
                "(or their Chinese names: 主商品, 推荐商品, 关系, 动作, 位置, 权重, 开始时间, 结束时间, 备注)"
            )
        fields[col] = value
    action_text = _text(fields.get("action"))
    action = ACTION_ALIASES.get(_key(action_text)) if action_text else None
    if action is None:
        raise ConfigError(f"action must be one of pin, block, boost (置顶, 屏蔽, 加权), got {action_text!r}")
    anchor, item = _text(fields.get("anchor")), _text(fields.get("item"))
    if anchor is None or item is None:
        raise ConfigError("a rule needs an anchor (主商品) and an item (推荐商品)")
    if anchor == ANY_ANCHOR and action != "block":
        raise ConfigError(f"anchor '*' (every product) is for block rules only, not {action}")
    if anchor == item:
        raise ConfigError(f"a rule relates two different products, got {anchor!r} twice")
    kind_text = _text(fields.get("kind"))
    if kind_text is None:
        kind = None if action == "block" else "complement"
    elif _key(kind_text) in KIND_ALIASES:
        kind = KIND_ALIASES[_key(kind_text)]
    else:
        raise ConfigError(
            f"kind must be one of {', '.join(RELATION_KINDS)} (or empty / any for a block), got {kind_text!r}"
        )
    if kind is None and action != "block":
        raise ConfigError(f"a {action} rule needs one kind ({', '.join(RELATION_KINDS)})")
    position = _number(fields.get("position"), "position", integer=True)
    if position is not None and (action != "pin" or position < 1):
        raise ConfigError(f"position is a pin's place, 1 or more, got {position!r} on a {action} rule")
    boost = _number(fields.get("boost"), "boost")
    if action == "boost":
        boost = DEFAULT_BOOST if boost is None else boost
        if not boost > 0:
            raise ConfigError(f"boost must be a positive factor (1.5 = half as much again), got {boost!r}")
    elif boost is not None:
        raise ConfigError(f"boost is for boost rules only, not {action}")
    valid_from = _when(fields.get("valid_from"), "valid_from")
    valid_to = _when(fields.get("valid_to"), "valid_to", end=True)
    if valid_from and valid_to and valid_to <= valid_from:
        raise ConfigError(f"valid_to ({valid_to}) must come after valid_from ({valid_from})")
    rid = fields.get("rule_id")
    if rid is not None and _text(rid) is not None:
        rid = _number(rid, "rule_id", integer=True)
    else:
        rid = None
    return {
        "rule_id": rid,
        "anchor": anchor,
        "item": item,
        "kind": kind,
        "action": action,
        "position": position,
        "boost": boost,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "note": _text(fields.get("note")),
    }


def _number(value: Any, what: str, *, integer: bool = False) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (integer and not number.is_integer()):
        raise ConfigError(f"{what} must be {'a whole number' if integer else 'a number'}, got {value!r}")
    return int(number) if integer else number


def rule_key(rule: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """What makes two rules the same rule: one per anchor, item and kind (a new one replaces it)."""
    return (rule["anchor"], rule["item"], rule["kind"])


def is_active(rule: Mapping[str, Any], now: datetime | None = None) -> bool:
    """Whether ``rule`` holds at ``now`` (default: the current time)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    start, end = rule.get("valid_from"), rule.get("valid_to")
    return (start is None or start <= stamp) and (end is None or stamp < end)


def stored(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A stored rule with every field (a store may leave null fields out)."""
    return {f: rule.get(f) for f in RULE_FIELDS}


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


# ----------------------------------------------------------------------------- managing rules
def rules_payload(
    store: GraphStore, *, anchor: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``{"version", "updated_at", "count", "active", "rules": [rule + "active"]}``, optionally
    only the rules of one ``anchor`` (those of ``*`` included)."""
    read = getattr(store, "rules", None)
    answer = read() if read is not None else {"version": 0, "updated_at": None, "rules": []}
    rules = [stored(r) for r in answer["rules"]]
    if anchor is not None:
        rules = [r for r in rules if r["anchor"] in (anchor, ANY_ANCHOR)]
    listed = [{**r, "active": is_active(r, now)} for r in rules]
    return {
        "version": answer["version"],
        "updated_at": answer["updated_at"],
        "count": len(listed),
        "active": sum(r["active"] for r in listed),
        "rules": listed,
    }


def import_rules(
    store: GraphStore,
    rules: Sequence[Mapping[str, Any]],
    *,
    replace: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Add ``rules`` (normalised, :func:`normalize_rule` / :func:`read_rules_file`) to the
    store's: a rule for an anchor, item and kind that already has one replaces it (keeping its
    id); ``replace``: the given rules become the whole set. Returns ``{"version", "added",
    "updated", "removed", "count"}``."""
    incoming = rows_to_rules(rules)  # checked (again), the last per anchor, item and kind wins
    current = store.rules()
    version = current["version"] if expected_version is None else expected_version
    old = {rule_key(stored(r)): stored(r) for r in current["rules"]}
    next_id = max((r["rule_id"] for r in current["rules"]), default=0) + 1
    merged: dict[tuple[str, str, str | None], dict[str, Any]] = {} if replace else dict(old)
    added = updated = 0
    for rule in incoming:
        key = rule_key(rule)
        before = old.get(key)
        if before is not None:
            rule = {**rule, "rule_id": before["rule_id"]}
            updated += before != rule
        else:
            rule = {**rule, "rule_id": next_id}
            next_id += 1
            added += 1
        merged[key] = rule
    removed = len(old.keys() - merged.keys())
    if len(merged) > MAX_RULES:
        raise ConfigError(f"{len(merged):,} rules; at most {MAX_RULES:,}")
    saved = store.save_rules(list(merged.values()), expected_version=version)
    forget(store)
    return {
        "version": saved["version"],
        "added": added,
        "updated": updated,
        "removed": removed,
        "count": len(saved["rules"]),
    }


def remove_rules(
    store: GraphStore,
    *,
    ids: Iterable[int] = (),
    anchor: str | None = None,
    item: str | None = None,
    remove_all: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Remove rules by id, by anchor (and item), or all. ConfigError when nothing selects rules;
    NotFound-like ConfigError for ids that do not exist. Returns ``{"version", "removed",
    "count"}``."""
    wanted = {int(i) for i in ids}
    if not (wanted or anchor or item or remove_all):
        raise ConfigError("say which rules to remove: ids, an anchor (and item), or all")
    current = store.rules()
    rules = [stored(r) for r in current["rules"]]
    missing = wanted - {r["rule_id"] for r in rules}
    if missing:
        raise ConfigError(
            f"no rule with id {', '.join(str(i) for i in sorted(missing))} (see `tiein rules list`)"
        )

    def goes(r: dict[str, Any]) -> bool:
        if remove_all or r["rule_id"] in wanted:
            return True
        if anchor is None and item is None:
            return False
        return (anchor is None or r["anchor"] == anchor) and (item is None or r["item"] == item)

    keep = [r for r in rules if not goes(r)]
    removed = len(rules) - len(keep)
    version = current["version"] if expected_version is None else expected_version
    if removed == 0 and expected_version is None:
        return {"version": current["version"], "removed": 0, "count": len(rules)}
    saved = store.save_rules(keep, expected_version=version)
    forget(store)
    return {"version": saved["version"], "removed": removed, "count": len(keep)}


# ----------------------------------------------------------------------------- applying rules
@dataclass
class RuleSet:
    """The rules in force at one moment, indexed for reads (:meth:`load` per request)."""

    version: int = 0
    blocks: set[tuple[str, str, str | None]] = field(default_factory=set)  # (anchor | *, item, kind | None)
    pins: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (anchor, kind) -> rules
    boosts: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (anchor, item, kind) -> factor
    pair_blocks: set[frozenset[str]] = field(default_factory=set)  # pairs never together in a bundle / cart
    item_blocks: set[str] = field(default_factory=set)  # items blocked for every anchor (complements)
    touched: set[tuple[str, str | None]] = field(default_factory=set)  # (anchor | *, kind | None) with a rule

    @classmethod
    def of(cls, rules: Iterable[Mapping[str, Any]], version: int = 0, now: datetime | None = None) -> RuleSet:
        out = cls(version=version)
        for raw in rules:
            r = stored(raw)
            if not is_active(r, now):
                continue
            a, i, kind = r["anchor"], r["item"], r["kind"]
            out.touched.add((a, kind))
            if r["action"] == "block":
                out.blocks.add((a, i, kind))
                if kind in (None, "complement"):
                    if a == ANY_ANCHOR:
                        out.item_blocks.add(i)
                    else:
                        out.pair_blocks.add(frozenset((a, i)))
            elif r["action"] == "pin":
                out.pins.setdefault((a, kind), []).append(r)
            elif r["action"] == "boost":
                out.boosts[(a, i, kind)] = out.boosts.get((a, i, kind), 1.0) * float(
                    r["boost"] or DEFAULT_BOOST
                )
        for pins in out.pins.values():
            pins.sort(key=lambda r: (r["position"] is None, r["position"] or 0, r["rule_id"] or 0))
        return out

    @classmethod
    def load(cls, store: GraphStore, now: datetime | None = None) -> RuleSet:
        """The store's rules in force now. Without ``now``, memoised per store for
        :data:`RULES_TTL_S` (a rule change made through this process — :func:`import_rules`,
        :func:`remove_rules` — is seen at once, one made by another process within that time),
        so a batch export or a busy server does not re-read the rules per answer."""
        read = getattr(store, "rules", None)
        if read is None:  # a reader without rules (an older or a test double): none apply
            return cls()
        if now is not None:
            answer = read()
            return cls.of(answer["rules"], answer["version"], now)
        tick = monotonic()
        try:
            cached = _LOADED.get(store)
        except TypeError:  # not weak-referenceable: no memo
            cached = None
        if cached is not None and tick - cached[0] < RULES_TTL_S:
            return cached[1]
        answer = read()
        loaded = cls.of(answer["rules"], answer["version"])
        with contextlib.suppress(TypeError):
            _LOADED[store] = (tick, loaded)
        return loaded

    def __bool__(self) -> bool:
        return bool(self.blocks or self.pins or self.boosts)

    def touches(self, anchor: str, kind: str) -> bool:
        """Whether any rule may change ``anchor``'s ``kind`` rows."""
        t = self.touched
        return bool(t) and any((a, k) in t for a in (anchor, ANY_ANCHOR) for k in (kind, None))

    def blocked(self, anchor: str, item: str, kind: str) -> bool:
        """Whether ``item`` must not appear among ``anchor``'s ``kind`` rows."""
        return any((a, item, k) in self.blocks for a in (anchor, ANY_ANCHOR) for k in (kind, None))

    def together_blocked(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` may not be in one bundle or cart suggestion (either way)."""
        return frozenset((a, b)) in self.pair_blocks or a in self.item_blocks or b in self.item_blocks

    def curate(
        self,
        anchor: str,
        kind: str,
        rows: list[dict[str, Any]],
        product: Callable[[str], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """``rows`` (a store's ``related`` rows of ``anchor``, best first) with the rules applied:
        blocked items out, boosted scores multiplied and the rows re-sorted (score descending,
        then product_id), pinned items first in pin order (``pinned``: True, ``rule_id``; an item
        the graph does not relate gets the row of ``product(item)`` with score 0 and no
        evidence; an item no longer in the graph is left out)."""
        out = []
        boosted = False
        for row in rows:
            pid = row["product_id"]
            if self.blocked(anchor, pid, kind):
                continue
            factor = self.boosts.get((anchor, pid, kind))
            if factor is not None:
                row = {**row, "score": float(row["score"]) * factor, "boost": factor}
                boosted = True
            out.append(row)
        if boosted:
            out.sort(key=lambda r: (-float(r["score"]), r["product_id"]))
        pins = self.pins.get((anchor, kind))
        if not pins:
            return out
        by_id = {r["product_id"]: r for r in out}
        first: list[dict[str, Any]] = []
        for rule in pins:
            pid = rule["item"]
            if self.blocked(anchor, pid, kind) or any(p["product_id"] == pid for p in first):
                continue
            found = by_id.get(pid)
            if found is None:
                try:
                    found = pinned_row(product(pid), kind)
                except ProductNotFound:
                    continue
            first.append({**found, "pinned": True, "rule_id": rule["rule_id"]})
        taken = {p["product_id"] for p in first}
        return first + [r for r in out if r["product_id"] not in taken]


# RuleSet.load's memo: store -> (monotonic time read, rules in force); validity windows are
# re-checked at each read, i.e. at most RULES_TTL_S late
RULES_TTL_S = 1.0
_LOADED: weakref.WeakKeyDictionary[Any, tuple[float, RuleSet]] = weakref.WeakKeyDictionary()


def forget(store: Any) -> None:
    """Drop ``store``'s memoised rules (after a change through this process)."""
    with contextlib.suppress(TypeError):
        _LOADED.pop(store, None)


def pinned_row(product: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A related row for a pinned product the graph does not relate to the anchor."""
    from tiein.graph.base import RELATED_FIELDS

    row = {**product, **dict.fromkeys(RELATED_FIELDS)}
    row.update(kind=kind, score=0.0, evidence={})
    return row


def pinned_explanation() -> dict[str, str]:
    """The explanation of a pinned row."""
    return {"zh": PINNED_ZH, "en": PINNED_EN}


# ----------------------------------------------------------------------------- query filters
@dataclass(frozen=True)
class Filters:
    """What a caller narrows a list answer to (related, add-ons, bundle add-ons, search, export):

    in_stock: only products with stock > 0 or unknown stock; exclude: product ids left out;
    category: the leaf category or any level of the category path (case-insensitive); brand
    (case-insensitive); min_price / max_price: the price range (an unpriced product is left out
    when a bound is set); min_score: the relation score (similarity for search) at least this
    (pinned rows are kept); offset: rows skipped before the ``k`` returned (not for bundles)."""

    in_stock: bool = False
    exclude: frozenset[str] = frozenset()
    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    min_score: float | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        for name in ("min_price", "max_price", "min_score"):
            v = getattr(self, name)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            ):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ConfigError(f"min_price {self.min_price} is above max_price {self.max_price}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ConfigError(f"offset must be a whole number >= 0, got {self.offset!r}")
        if isinstance(self.exclude, str) or not all(isinstance(x, str) for x in self.exclude):
            raise ConfigError(f"exclude must be product ids, got {self.exclude!r}")
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        for name in ("category", "brand"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"{name} must be a non-empty text, got {v!r}")

    @classmethod
    def make(
        cls,
        *,
        in_stock: bool | None = None,
        exclude: Iterable[str] | str | None = None,
        category: str | None = None,
        brand: str | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        min_score: float | None = None,
        offset: int | None = None,
    ) -> Filters:
        """Filters from optional values; ``exclude`` also as one text of ids joined by commas."""
        ids: list[str] = []
        for part in [exclude] if isinstance(exclude, str) else list(exclude or ()):
            ids += [p.strip() for p in str(part).split(",") if p.strip()]
        return cls(
            in_stock=bool(in_stock),
            exclude=frozenset(ids),
            category=category,
            brand=brand,
            min_price=min_price,
            max_price=max_price,
            min_score=min_score,
            offset=offset or 0,
        )

    @property
    def narrows(self) -> bool:
        """Whether any filter but the offset is set."""
        return bool(
            self.in_stock
            or self.exclude
            or self.category
            or self.brand
            or self.min_price is not None
            or self.max_price is not None
            or self.min_score is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """The filters set, as JSON (what an answer reports it applied)."""
        out: dict[str, Any] = {}
        if self.in_stock:
            out["in_stock"] = True
        if self.exclude:
            out["exclude"] = sorted(self.exclude)
        for name in ("category", "brand", "min_price", "max_price", "min_score"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.offset:
            out["offset"] = self.offset
        return out

    def allows(self, product: Mapping[str, Any]) -> bool:
        """Whether ``product`` (a product dict or a row holding its fields) passes every filter
        but the score."""
        if product.get("product_id") in self.exclude:
            return False
        if self.in_stock:
            stock = product.get("stock")
            if stock is not None and stock <= 0:
                return False
        if (
            self.brand is not None
            and str(product.get("brand") or "").casefold() != self.brand.strip().casefold()
        ):
            return False
        if self.category is not None:
            want = self.category.strip().casefold()
            names = {str(product.get("category") or "").casefold()}
            names |= {p.strip().casefold() for p in str(product.get("category_path") or "").split(">")}
            if want not in names:
                return False
        if self.min_price is not None or self.max_price is not None:
            price = product.get("price")
            if price is None or isinstance(price, bool) or not math.isfinite(float(price)):
                return False
            if self.min_price is not None and price < self.min_price - 1e-9:
                return False
            if self.max_price is not None and price > self.max_price + 1e-9:
                return False
        return True

    def allows_score(self, score: float | None, *, pinned: bool = False) -> bool:
        return pinned or self.min_score is None or (score is not None and score >= self.min_score - 1e-12)

    def keep(self, rows: Iterable[dict[str, Any]], score: str = "score") -> list[dict[str, Any]]:
        """The rows that pass every filter (``score``: the row's score field)."""
        return [
            r
            for r in rows
            if self.allows(r) and self.allows_score(r.get(score), pinned=bool(r.get("pinned")))
        ]


NO_FILTERS = Filters()

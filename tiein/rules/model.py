"""One merchant rule: its fields, the Chinese and English aliases of columns, actions and kinds,
and the checks that turn a raw row into a rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tiein.errors import ConfigError
from tiein.model import RELATION_KINDS

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

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

from tiein.rules.apply import _LOADED, RULES_TTL_S, RuleSet, forget, pinned_explanation, pinned_row
from tiein.rules.files import _csv_rows, _xlsx_rows, _yaml_rows, read_rules_file, rows_to_rules
from tiein.rules.filters import NO_FILTERS, Filters
from tiein.rules.manage import import_rules, remove_rules, rules_payload
from tiein.rules.model import (
    _COLUMN_OF,
    ACTION_ALIASES,
    ACTIONS,
    ANY_ANCHOR,
    COLUMN_ALIASES,
    DEFAULT_BOOST,
    KIND_ALIASES,
    MAX_RULES,
    PINNED_EN,
    PINNED_ZH,
    RULE_FIELDS,
    _key,
    _number,
    _text,
    _when,
    is_active,
    normalize_rule,
    rule_key,
    stored,
)

__all__ = [
    "ACTIONS",
    "ACTION_ALIASES",
    "ANY_ANCHOR",
    "COLUMN_ALIASES",
    "DEFAULT_BOOST",
    "Filters",
    "KIND_ALIASES",
    "MAX_RULES",
    "NO_FILTERS",
    "PINNED_EN",
    "PINNED_ZH",
    "RULES_TTL_S",
    "RULE_FIELDS",
    "RuleSet",
    "_COLUMN_OF",
    "_LOADED",
    "_csv_rows",
    "_key",
    "_number",
    "_text",
    "_when",
    "_xlsx_rows",
    "_yaml_rows",
    "forget",
    "import_rules",
    "is_active",
    "normalize_rule",
    "pinned_explanation",
    "pinned_row",
    "read_rules_file",
    "remove_rules",
    "rows_to_rules",
    "rule_key",
    "rules_payload",
    "stored",
]

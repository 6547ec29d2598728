"""Why there is no bundle or no add-on: reason codes, their sentences and the skip order.

Last step of a refused request: while :mod:`tiein.bundles.assembly` and :mod:`tiein.bundles.cart`
pass candidates over they count a SKIP_ORDER code per candidate; when nothing is chosen, the
furthest check any candidate reached becomes the answer's :class:`Reason` (SKIP_REASON), a stable
``code`` with a sentence in Chinese and English. Budgets and thresholds are money: shown with the
shop's currency and two decimals (:func:`tiein.explain.format_money`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiein.money import format_amount, format_money

# code -> (zh, en); {budget}, {threshold} (money), {lo}, {hi} (percentages), {scene}, {mix} are
# filled in.
REASONS: dict[str, tuple[str, str]] = {
    "anchor_out_of_stock": ("主商品缺货，无法组合套装", "the main item is out of stock"),
    "anchor_price_unknown": (
        "主商品没有价格，无法核对预算 {budget}",
        "the main item has no price, so the budget of {budget} cannot be checked",
    ),
    "budget_price_unknown": (
        "搭配商品没有价格，无法核对预算 {budget}",
        "the add-ons have no price, so the budget of {budget} cannot be checked",
    ),
    "anchor_over_budget": (
        "主商品价格已超出预算 {budget}",
        "the main item alone is over the budget of {budget}",
    ),
    "no_complements": ("还没有常和它一起买的搭配商品", "no add-ons are known for this product yet"),
    "only_substitutes": (
        "候选商品都能互相替代，不适合一起卖",
        "every candidate is an alternative to it, not an add-on",
    ),
    "none_in_stock": ("搭配商品都缺货", "every add-on is out of stock"),
    "outside_price_band": (
        "有货的搭配商品价格都不在主商品价格的 {lo}–{hi} 之间",
        "no in-stock add-on costs {lo}-{hi} of the main item's price",
    ),
    "no_role_match": ("没有符合指定角色的搭配商品", "no add-on fits the requested roles"),
    "no_scene_role_match": (
        "没有搭配商品属于场景“{scene}”的其他角色",
        "no add-on fills another role of the scene {scene}",
    ),
    "scene_has_no_roles": (
        "场景“{scene}”除主商品的角色外没有其他角色",
        "the scene {scene} has no roles besides the main item's",
    ),
    "no_mix_match": (
        "没有符合“{mix}”组合的搭配商品",
        "no add-on has the sales roles asked for ({mix})",
    ),
    "category_taken": (
        "搭配商品都与已选商品同一品类",
        "every add-on is in a category already taken",
    ),
    "over_budget": (
        "加任何一件搭配商品都会超出预算 {budget}",
        "every add-on takes the bundle over the budget of {budget}",
    ),
    "cart_price_unknown": (
        "购物车中有商品没有价格，无法计算凑单",
        "an item in the cart has no price, so the gap cannot be computed",
    ),
    "threshold_unreachable": (
        "没有一件搭配商品能让购物车达到 {threshold}",
        "no single add-on brings the cart up to {threshold}",
    ),
}

# Why a single candidate was passed over (counted in ``skipped``), in check order. When nothing is
# chosen, the reason is the one of the furthest check any candidate reached.
SKIP_ORDER = (
    "substitute_of_anchor",
    "out_of_stock",
    "outside_price_band",
    "role_mismatch",
    "sales_role_mismatch",
    "category_taken",
    "substitute_of_chosen",
    "price_unknown",
    "over_budget",
)
SKIP_REASON = {
    "substitute_of_anchor": "only_substitutes",
    "out_of_stock": "none_in_stock",
    "outside_price_band": "outside_price_band",
    "role_mismatch": "no_role_match",
    "sales_role_mismatch": "no_mix_match",
    "category_taken": "category_taken",
    "substitute_of_chosen": "only_substitutes",
    "price_unknown": "budget_price_unknown",
    "over_budget": "over_budget",
}

# The same codes in words, for "left out: ..." lines under a refused bundle (the CLI table).
SKIP_WORDS: dict[str, tuple[str, str]] = {
    "substitute_of_anchor": ("可替代主商品", "alternatives to the main item"),
    "out_of_stock": ("缺货", "out of stock"),
    "outside_price_band": ("价格不在主商品价格区间内", "outside the price band"),
    "role_mismatch": ("不属于场景的其他角色", "in no other role of the scene"),
    "sales_role_mismatch": ("销售角色不符", "not the sales role asked for"),
    "category_taken": ("品类已有商品", "in a category already taken"),
    "substitute_of_chosen": ("可替代已选商品", "alternatives to an item already chosen"),
    "price_unknown": ("没有价格", "without a price"),
    "over_budget": ("超出预算", "over the budget"),
}


def skipped_lines(skipped: dict[str, int]) -> list[str]:
    """Two lines (English, then Chinese) saying which candidates were left out and why, in check
    order, from a bundle's or add-ons' ``skipped`` counts; [] when none were.

    >>> skipped_lines({"outside_price_band": 4, "substitute_of_anchor": 1})
    ['left out: 1 alternatives to the main item, 4 outside the price band', '未选用：可替代主商品 1 件，价格不在主商品价格区间内 4 件']
    """
    codes = [c for c in SKIP_ORDER if skipped.get(c)] + sorted(
        c for c in skipped if c not in SKIP_ORDER and skipped[c]
    )
    if not codes:
        return []
    en = ", ".join(f"{skipped[c]:,} {SKIP_WORDS.get(c, (c, c))[1]}" for c in codes)
    zh = "，".join(f"{SKIP_WORDS.get(c, (c, c))[0]} {skipped[c]:,} 件" for c in codes)
    return [f"left out: {en}", f"未选用：{zh}"]


@dataclass(frozen=True)
class Reason:
    """Why there is no bundle / no add-on: a stable ``code`` (keys of REASONS) and a sentence in
    Chinese and English."""

    code: str
    zh: str
    en: str

    @classmethod
    def of(cls, code: str, currency: str | None = None, **values: Any) -> Reason:
        """The reason ``code`` with ``values`` filled in; money keys (MONEY_KEYS) are written with
        ``currency`` (default ``TIEIN_CURRENCY`` or ¥) and two decimals.

        >>> Reason.of("anchor_over_budget", budget=50, currency="¥").zh
        '主商品价格已超出预算 ¥50.00'
        >>> Reason.of("outside_price_band", lo="30%", hi="80%").en
        "no in-stock add-on costs 30%-80% of the main item's price"
        """
        zh, en = REASONS[code]
        text = {k: _fill(k, v, currency) for k, v in values.items()}
        return cls(code, zh.format_map(_Blank(text)), en.format_map(_Blank(text)))

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


MONEY_KEYS = frozenset({"budget", "threshold"})


def _fill(key: str, value: Any, currency: str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return format_money(value, currency) if key in MONEY_KEYS else format_amount(value)


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"

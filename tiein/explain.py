"""Seller explanations: a related row's evidence as one plain line in Chinese and in English.

Pure functions over the evidence dict every store returns in ``related`` rows (keys documented in
docs/schema.md: ``bought_together``, ``lift``, ``bought_after``, ``viewed_together``,
``listed_also_bought``, ``similarity``, ``category_relation``, ``price_ratio``, ``same_line``, …).
Missing or null keys are left out of the sentence, never rendered as "None".

The sentences are meant to be said out loud by a seller: no analyst numbers (lift, similarity
scores, confidence, medians stay in ``evidence``, which every answer carries next to the text),
no long product titles (a long name of the item the price is compared with becomes "主商品" /
"the main item" or "所搭配商品" / "the item it goes with"), prices as "价格相近" / "about the
same price", "只有主商品的 45%" or "2 倍". Money (bundle pitches, budgets) is written by
:func:`format_money`: the shop's currency symbol (``TIEIN_CURRENCY``, default ¥) and always two
decimals.

>>> ev = {"bought_together": 312, "lift": 8.2, "category_relation": "different", "price_ratio": 0.45}
>>> e = explain(ev, "complement")
>>> e.zh
'经常一起买：312 单；不同品类；价格只有主商品的 45%'
>>> e.en
'often bought together: 312 orders; different category; 45% of the price of the main item'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tiein.content_sets import shown_parts
from tiein.errors import ConfigError
from tiein.model import RELATION_KINDS
from tiein.money import (  # noqa: F401  (re-exported: bundles, settings and the CLI import them from here)
    CURRENCY_ENV,
    CURRENCY_SYMBOLS,
    DEFAULT_CURRENCY,
    MAX_CURRENCY_CHARS,
    SUFFIX_SYMBOLS,
    currency_symbol,
    format_amount,
    format_money,
    format_percent,
)
from tiein.season.rank import season_clause

# category_relation value -> (zh, en); "unknown" says nothing.
CATEGORY_TEXT: dict[str, tuple[str, str]] = {
    "same": ("同一品类", "same category"),
    "sibling": ("相近品类", "related category"),
    "different": ("不同品类", "different category"),
}

MAIN_ZH = "主商品"
MAIN_EN = "the main item"
# What a long name of the compared item becomes when it is not the main item (a cart item, the
# bundle item an add-on goes with): the sentence stays sayable and still true.
OTHER_ZH = "所搭配商品"
OTHER_EN = "the item it goes with"
# The longest name said in a sentence, in terminal columns (a Chinese character is two): 8 Chinese
# characters, or 24 Latin letters in at most 4 words. Longer titles are not read out.
MAX_NAME_COLUMNS_ZH = 16
MAX_NAME_COLUMNS = 24
MAX_NAME_WORDS = 4

# Lift at which "bought together" becomes "often bought together" (the lift itself stays in
# evidence); at least this many orders too, so one lucky order is never "often".
OFTEN_LIFT = 2.0
OFTEN_MIN_ORDERS = 3


@dataclass(frozen=True)
class Explanation:
    """One relation explained in Chinese (``zh``) and English (``en``)."""

    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


def text_columns(text: str) -> int:
    """Terminal columns of ``text`` (wcwidth): two for a Chinese (wide) character, none for a
    combining mark; a control character counts as none.

    >>> text_columns("折叠椅"), text_columns("chair"), text_columns("L'OREAL欧莱雅")
    (6, 5, 13)
    """
    from wcwidth import wcswidth, wcwidth

    n = wcswidth(text)
    return n if n >= 0 else sum(max(wcwidth(c), 0) for c in text)


def sayable_name(name: str, fallback: str, *, zh: bool) -> str:
    """``name`` as given when it is short enough to say (see MAX_NAME_COLUMNS*), else
    ``fallback``; the “quotes” a caller put around it do not count.

    >>> sayable_name("“折叠椅”", MAIN_ZH, zh=True), sayable_name("Folding chair", MAIN_EN, zh=False)
    ('“折叠椅”', 'Folding chair')
    >>> sayable_name("“L'OREAL欧莱雅丝柔雾感唇粉膏棒 哑光口红唇膏”", OTHER_ZH, zh=True)
    '所搭配商品'
    >>> sayable_name("WHITE HANGING HEART T-LIGHT HOLDER", OTHER_EN, zh=False)
    'the item it goes with'
    """
    bare = name.strip().strip("“”\"'‘’「」《》")
    if not bare:
        return fallback
    limit = MAX_NAME_COLUMNS_ZH if zh and text_columns(bare) > len(bare) else MAX_NAME_COLUMNS
    if text_columns(bare) > limit or len(bare.split()) > MAX_NAME_WORDS:
        return fallback
    return name.strip()


def _names(main_zh: str, main_en: str) -> tuple[str, str]:
    """The two names of the compared item, each sayable (long ones fall back together, so the
    Chinese and the English sentence always name the same thing)."""
    if main_zh == MAIN_ZH and main_en == MAIN_EN:
        return main_zh, main_en
    zh, en = sayable_name(main_zh, "", zh=True), sayable_name(main_en, "", zh=False)
    if zh and en:
        return zh, en
    if main_zh == MAIN_ZH or main_en == MAIN_EN:
        return MAIN_ZH, MAIN_EN
    return OTHER_ZH, OTHER_EN


def _num(evidence: Mapping[str, Any], key: str) -> float | None:
    value = evidence.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(evidence: Mapping[str, Any], key: str) -> int:
    value = _num(evidence, key)
    return int(value) if value is not None and value > 0 else 0


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _category(evidence: Mapping[str, Any]) -> tuple[str, str] | None:
    rel = evidence.get("category_relation")
    return CATEGORY_TEXT.get(rel) if isinstance(rel, str) else None


def _times(ratio: float) -> str:
    """1.96 -> '2', 2.46 -> '2.5'."""
    text = f"{ratio:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _price(evidence: Mapping[str, Any], main_zh: str, main_en: str) -> tuple[str, str] | None:
    """The price against the compared item's, as a seller says it: about the same (±10 %), a share
    of it (cheaper), a percentage more, or so many times it.

    >>> [_price({"price_ratio": r}, MAIN_ZH, MAIN_EN)[0] for r in (0.3, 0.95, 1.0, 1.54, 2.46)]
    ['价格只有主商品的 30%', '价格相近', '价格相近', '比主商品贵 54%', '价格是主商品的 2.5 倍']
    >>> [_price({"price_ratio": r}, MAIN_ZH, MAIN_EN)[1] for r in (0.3, 1.0, 1.54, 2.46)]
    ['30% of the price of the main item', 'about the same price', '54% more than the main item', '2.5 times the price of the main item']
    """
    ratio = _num(evidence, "price_ratio")
    if ratio is None or ratio <= 0:
        return None
    if 0.9 <= ratio <= 1.1:
        return "价格相近", "about the same price"
    if ratio < 0.9:
        pct = format_percent(ratio)
        return f"价格只有{main_zh}的 {pct}", f"{pct} of the price of {main_en}"
    if ratio < 2:
        more = f"{round(ratio * 100) - 100:d}%"
        return f"比{main_zh}贵 {more}", f"{more} more than {main_en}"
    times = _times(ratio)
    return f"价格是{main_zh}的 {times} 倍", f"{times} times the price of {main_en}"


def _similar(evidence: Mapping[str, Any]) -> tuple[str, str] | None:
    """Title similarity in words ("两件很像" / "very similar item"); the number stays in evidence."""
    sim = _num(evidence, "similarity")
    if sim is None or sim <= 0:
        return None
    if sim >= 0.8:
        return "两件很像", "very similar item"
    if sim >= 0.6:
        return "两件比较像", "similar item"
    return "两件有点像", "somewhat similar item"


def _join(parts: list[tuple[str, str]], head: tuple[str, str] | None = None) -> Explanation:
    """Join (zh, en) clauses with '；' / '; ' after an optional head clause."""
    clauses = ([head] if head else []) + parts
    if not clauses:
        return Explanation("暂无购买或浏览记录", "no purchases or views recorded yet")
    return Explanation("；".join(c[0] for c in clauses), "; ".join(c[1] for c in clauses))


def explain_complement(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` is an add-on of ``src``: co-purchases ("often" when the lift is high), customers
    who bought it afterwards, the shop's own "also bought" list, category relation and price.

    >>> e = explain_complement({"bought_together": 5, "lift": 2.46, "bought_after": 3, "bought_before": 1,
    ...                         "category_relation": "sibling", "price_ratio": 0.297})
    >>> e.zh
    '经常一起买：5 单；3 位顾客买了主商品之后又买了它；相近品类；价格只有主商品的 30%'
    >>> e.en
    'often bought together: 5 orders; 3 customers bought it after the main item; related category; 30% of the price of the main item'
    >>> explain_complement({"bought_together": 1, "lift": 0.9, "bought_after": 1}).en
    'bought together in 1 order; 1 customer bought it after the main item'
    >>> explain_complement({"bought_together": 0, "listed_also_bought": 1}).zh
    '在店铺“一起买”列表中'
    """
    main_zh, main_en = _names(main_zh, main_en)
    parts: list[tuple[str, str]] = []
    together = _count(evidence, "bought_together")
    lift = _num(evidence, "lift")
    if together:
        if lift is not None and lift >= OFTEN_LIFT and together >= OFTEN_MIN_ORDERS:
            parts.append(
                (f"经常一起买：{together} 单", f"often bought together: {_plural(together, 'order')}")
            )
        else:
            parts.append((f"一起买过 {together} 单", f"bought together in {_plural(together, 'order')}"))
    after, before = _count(evidence, "bought_after"), _count(evidence, "bought_before")
    if after > before:
        parts.append(
            (
                f"{after} 位顾客买了{main_zh}之后又买了它",
                f"{_plural(after, 'customer')} bought it after {main_en}",
            )
        )
    if _count(evidence, "listed_also_bought"):
        parts.append(("在店铺“一起买”列表中", "on the shop's also-bought list"))
    parts.extend(shown_parts(evidence))  # content sets: outfits, videos, livestreams
    if evidence.get("level") == "type":
        parts.append(_type_level(evidence))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    return _join(parts)


def _zh_spaced(name: str) -> str:
    """A name inside Chinese text: Latin words get a space on each side ("Tops 和 Trousers")."""
    return name if text_columns(name) > len(name) else f" {name} "


def _type_level(evidence: Mapping[str, Any]) -> tuple[str, str]:
    """A type-level complement (tiein.type_fallback): the two kinds of product are often bought
    together, and this is a good seller of its kind; the kinds are named when short.

    >>> _type_level({"level": "type", "anchor_type": "Tops", "addon_type": "Trousers", "types_bought_together": 40})
    ('Tops 和 Trousers 常一起买（40 单），这是同类里的热销款', 'Tops and Trousers often go together (40 orders); a good seller of its kind')
    >>> _type_level({"level": "type", "anchor_type": "帐篷", "addon_type": "防潮垫"})[0]
    '帐篷和防潮垫常一起买，这是同类里的热销款'
    """
    n = _count(evidence, "types_bought_together")
    orders_zh, orders_en = (f"（{n} 单）", f" ({_plural(n, 'order')})") if n else ("", "")
    a, b = str(evidence.get("anchor_type") or ""), str(evidence.get("addon_type") or "")
    if a and b and all(sayable_name(t, "", zh=True) and sayable_name(t, "", zh=False) for t in (a, b)):
        zh = f"{_zh_spaced(a)}和{_zh_spaced(b)}常一起买".strip().replace("  ", " ") + orders_zh
        en = f"{a} and {b} often go together{orders_en}"
    else:
        zh, en = f"这两类商品常一起买{orders_zh}", f"these two kinds of product often go together{orders_en}"
    return f"{zh}，这是同类里的热销款", f"{en}; a good seller of its kind"


def _similar_parts(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    sim = _similar(evidence)
    if sim:
        parts.append(sim)
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    viewed = _count(evidence, "viewed_together")
    if viewed:
        parts.append((f"一起浏览过 {viewed} 次", f"viewed together {_plural(viewed, 'time')}"))
    if _count(evidence, "listed_also_viewed"):
        parts.append(("在店铺“看了又看”列表中", "on the shop's also-viewed list"))
    return parts


def explain_substitute(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` can replace ``src``: a similar item of the same kind, viewed together, rarely
    bought together (shoppers pick one of the two).

    >>> e = explain_substitute({"similarity": 0.816, "category_relation": "same", "bought_together": 0,
    ...                         "viewed_together": 12, "price_ratio": 0.933})
    >>> e.zh
    '可替代商品：两件很像；同一品类；一起浏览过 12 次；顾客一般二选一；价格相近'
    >>> e.en
    'alternative: very similar item; same category; viewed together 12 times; customers usually pick one of the two; about the same price'
    """
    main_zh, main_en = _names(main_zh, main_en)
    parts = _similar_parts(evidence)
    if _count(evidence, "bought_together") == 0:
        parts.append(("顾客一般二选一", "customers usually pick one of the two"))
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    return _head(parts, "可替代商品", "alternative")


def _head(parts: list[tuple[str, str]], zh: str, en: str) -> Explanation:
    """Prefix the first clause with a label ("可替代商品：…" / "alternative: …")."""
    if not parts:
        return Explanation(zh, en)
    first = (f"{zh}：{parts[0][0]}", f"{en}: {parts[0][1]}")
    return _join(parts[1:], first)


def explain_upsell(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` is a step up from ``src``: a similar item of the same kind, clearly pricier.

    >>> e = explain_upsell({"similarity": 0.718, "category_relation": "same", "price_ratio": 1.535})
    >>> e.zh
    '升级款：比主商品贵 54%；两件比较像；同一品类'
    >>> e.en
    'upgrade: 54% more than the main item; similar item; same category'
    """
    main_zh, main_en = _names(main_zh, main_en)
    parts: list[tuple[str, str]] = []
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    parts.extend(_similar_parts(evidence))
    return _head(parts, "升级款", "upgrade")


def explain_series(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` is in the same series as ``src``: same brand or product line, similar titles.

    >>> e = explain_series({"same_line": True, "similarity": 0.7, "category_relation": "different"})
    >>> e.zh, e.en
    ('同系列：同一品牌或产品线；两件比较像；不同品类', 'same series: same brand or product line; similar item; different category')
    """
    parts: list[tuple[str, str]] = []
    if evidence.get("same_line") is True:
        parts.append(("同一品牌或产品线", "same brand or product line"))
    sim = _similar(evidence)
    if sim:
        parts.append(sim)
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    return _head(parts, "同系列", "same series")


def explain_next(evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN) -> Explanation:
    """Why customers buy ``dst`` after ``src``: how many bought src, then dst within the window,
    what share of src's returning customers that is, the usual gap and how one-sided the order is
    (keys of a "next" relation's evidence, see docs/schema.md; the lift stays in evidence).

    >>> e = explain_next({"after_count": 312, "before_count": 12, "window_days": 90, "confidence": 0.124,
    ...                   "lift": 3.42, "median_gap_days": 21.0, "category_relation": "different"})
    >>> e.zh
    '之后常买：312 位顾客买了主商品后 90 天内又买了它；回头客里有 12% 买了它；通常隔 21 天左右；反过来先买它的只有 12 位；不同品类'
    >>> e.en
    'bought next: 312 customers bought it within 90 days after the main item; 12% of returning customers bought it; usually about 21 days later; only 12 bought them the other way round; different category'
    >>> explain_next({"after_count": 5, "median_gap_days": 0.2}, main_zh="待产包", main_en="the delivery kit").en
    'bought next: 5 customers bought it after the delivery kit; usually the same day'
    """
    main_zh, main_en = _names(main_zh, main_en)
    after = _count(evidence, "after_count")
    window = _num(evidence, "window_days")
    if window is not None and window > 0:
        days = format_amount(window)
        head_zh = f"{after} 位顾客买了{main_zh}后 {days} 天内又买了它"
        head_en = f"{_plural(after, 'customer')} bought it within {days} days after {main_en}"
    else:
        head_zh = f"{after} 位顾客买了{main_zh}之后又买了它"
        head_en = f"{_plural(after, 'customer')} bought it after {main_en}"
    parts: list[tuple[str, str]] = [(head_zh, head_en)]
    conf = _num(evidence, "confidence")
    if conf is not None and conf > 0:
        pct = format_percent(conf)
        if pct == "100%":
            parts.append(("回头客都买了它", "every returning customer bought it"))
        else:
            parts.append((f"回头客里有 {pct} 买了它", f"{pct} of returning customers bought it"))
    gap = _num(evidence, "median_gap_days")
    if gap is not None and gap >= 0:
        days_gap = round(gap)
        if days_gap == 0:
            parts.append(("通常当天就买", "usually the same day"))
        else:
            parts.append((f"通常隔 {days_gap} 天左右", f"usually about {_plural(days_gap, 'day')} later"))
    before = _count(evidence, "before_count")
    if before:
        parts.append((f"反过来先买它的只有 {before} 位", f"only {before} bought them the other way round"))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    return _head(parts, "之后常买", "bought next")


EXPLAINERS: dict[str, Callable[..., Explanation]] = {
    "complement": explain_complement,
    "substitute": explain_substitute,
    "upsell": explain_upsell,
    "series": explain_series,
    "next": explain_next,
}


def explain(
    row_or_evidence: Mapping[str, Any],
    kind: str | None = None,
    *,
    main_zh: str = MAIN_ZH,
    main_en: str = MAIN_EN,
    at: date | None = None,
) -> Explanation:
    """Explain a relation. Takes either a ``related`` row (with ``kind`` and ``evidence``) or an
    evidence dict; ``kind`` defaults to the row's / the evidence's own ``kind``. ``main_zh`` /
    ``main_en`` name the item the price and the buying order refer to (default "主商品" / "the
    main item"); a name too long to say is not used (see :func:`sayable_name`). With a query
    date ``at`` inside the relation's peak season window the sentence starts with it ("圣诞季常一起买"
    / "often bought together at Christmas", :func:`tiein.season.season_clause`). Raises
    ConfigError for an unknown kind.

    >>> row = {"kind": "series", "evidence": {"same_line": True}}
    >>> explain(row).en
    'same series: same brand or product line'
    >>> explain({"price_ratio": 0.5}, "complement", main_zh="折叠椅", main_en="Folding chair").zh
    '价格只有折叠椅的 50%'
    >>> title = "L'OREAL欧莱雅丝柔雾感唇粉膏棒 哑光口红唇膏 咬唇妆 姨妈色多色"
    >>> explain({"price_ratio": 1.0}, "complement", main_zh=f"“{title}”", main_en=title).zh
    '价格相近'
    >>> explain({"price_ratio": 0.5}, "complement", main_zh=f"“{title}”", main_en=title).en
    '50% of the price of the item it goes with'
    >>> xmas = {"season": {"by": "calendar", "peak": "christmas", "peak_zh": "圣诞季", "peak_en": "Christmas",
    ...                    "seasonal": True, "spans": [["11-15", "12-25"]]}, "bought_together": 4, "lift": 3.0}
    >>> e = explain(xmas, "complement", at=date(2024, 12, 10))
    >>> e.zh, e.en
    ('圣诞季常一起买；经常一起买：4 单', 'often bought together at Christmas; often bought together: 4 orders')
    """
    evidence = row_or_evidence.get("evidence")
    if isinstance(evidence, Mapping):
        kind = kind or row_or_evidence.get("kind")
    else:
        evidence = row_or_evidence
    kind = kind or evidence.get("kind")
    if kind not in EXPLAINERS:
        raise ConfigError(f"cannot explain relation kind {kind!r}; valid kinds: {', '.join(RELATION_KINDS)}")
    said = EXPLAINERS[kind](evidence, main_zh, main_en)
    season = season_clause(evidence, at)
    if season is None:
        return said
    return Explanation(f"{season[0]}；{said.zh}", f"{season[1]}; {said.en}")

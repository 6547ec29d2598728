"""Seller explanations: a related row's evidence as one plain line in Chinese and in English.

Pure functions over the evidence dict every store returns in ``related`` rows (keys documented in
docs/schema.md: ``bought_together``, ``lift``, ``bought_after``, ``viewed_together``,
``listed_also_bought``, ``similarity``, ``category_relation``, ``price_ratio``, ``same_line``, …).
Missing or null keys are left out of the sentence, never rendered as "None".

>>> ev = {"bought_together": 312, "lift": 8.2, "category_relation": "different", "price_ratio": 0.45}
>>> e = explain(ev, "complement")
>>> e.zh
'常一起购买：312 单，提升度 8.2；不同品类；价格为主商品的 45%'
>>> e.en
"bought together in 312 orders, lift 8.2; different category; 45% of the main item's price"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tiein.errors import ConfigError
from tiein.model import RELATION_KINDS

# category_relation value -> (zh, en); "unknown" says nothing.
CATEGORY_TEXT: dict[str, tuple[str, str]] = {
    "same": ("同一品类", "same category"),
    "sibling": ("相近品类", "related category"),
    "different": ("不同品类", "different category"),
}

MAIN_ZH = "主商品"
MAIN_EN = "the main item"


@dataclass(frozen=True)
class Explanation:
    """One relation explained in Chinese (``zh``) and English (``en``)."""

    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


def format_amount(value: float) -> str:
    """A price or count as a seller says it: whole numbers without decimals, else two decimals.

    >>> format_amount(398.0), format_amount(13.5), format_amount(0.1 + 0.2)
    ('398', '13.50', '0.30')
    """
    rounded = round(float(value), 2)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.2f}"


def format_percent(ratio: float) -> str:
    """A price ratio as a whole percent.

    >>> format_percent(0.4514), format_percent(1.5)
    ('45%', '150%')
    """
    return f"{round(ratio * 100):d}%"


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


def _lift(value: float) -> str:
    return f"{value:.1f}"


def _similarity(value: float) -> str:
    return f"{value:.2f}"


def _category(evidence: Mapping[str, Any]) -> tuple[str, str] | None:
    rel = evidence.get("category_relation")
    return CATEGORY_TEXT.get(rel) if isinstance(rel, str) else None


def _price(evidence: Mapping[str, Any], main_zh: str, main_en: str) -> tuple[str, str] | None:
    ratio = _num(evidence, "price_ratio")
    if ratio is None or ratio <= 0:
        return None
    pct = format_percent(ratio)
    return f"价格为{main_zh}的 {pct}", f"{pct} of {main_en}'s price"


def _join(parts: list[tuple[str, str]], head: tuple[str, str] | None = None) -> Explanation:
    """Join (zh, en) clauses with '；' / '; ' after an optional head clause."""
    clauses = ([head] if head else []) + parts
    if not clauses:
        return Explanation("暂无证据", "no evidence recorded")
    return Explanation("；".join(c[0] for c in clauses), "; ".join(c[1] for c in clauses))


def explain_complement(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` is an add-on of ``src``: co-purchases and lift, buying sequence, the shop's own
    "also bought" list, category relation and price ratio.

    >>> explain_complement({"bought_together": 5, "lift": 2.46, "bought_after": 3, "bought_before": 1,
    ...                     "category_relation": "sibling", "price_ratio": 0.297}).en
    "bought together in 5 orders, lift 2.5; bought afterwards by 3 customers; related category; 30% of the main item's price"
    >>> explain_complement({"bought_together": 0, "listed_also_bought": 1}).zh
    '在店铺“一起买”列表中'
    """
    parts: list[tuple[str, str]] = []
    together = _count(evidence, "bought_together")
    lift = _num(evidence, "lift")
    if together:
        if lift is not None and lift > 0:
            parts.append(
                (
                    f"常一起购买：{together} 单，提升度 {_lift(lift)}",
                    f"bought together in {together} orders, lift {_lift(lift)}",
                )
            )
        else:
            parts.append((f"常一起购买：{together} 单", f"bought together in {together} orders"))
    after, before = _count(evidence, "bought_after"), _count(evidence, "bought_before")
    if after > before:
        parts.append((f"{after} 位顾客购买后回购", f"bought afterwards by {after} customers"))
    if _count(evidence, "listed_also_bought"):
        parts.append(("在店铺“一起买”列表中", "on the shop's also-bought list"))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    return _join(parts)


def _similar_parts(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    sim = _num(evidence, "similarity")
    if sim is not None:
        parts.append((f"标题相似度 {_similarity(sim)}", f"title similarity {_similarity(sim)}"))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    viewed = _count(evidence, "viewed_together")
    if viewed:
        parts.append((f"一起浏览 {viewed} 次", f"viewed together in {viewed} sessions"))
    if _count(evidence, "listed_also_viewed"):
        parts.append(("在店铺“看了又看”列表中", "on the shop's also-viewed list"))
    return parts


def explain_substitute(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` can replace ``src``: similar titles, same kind, viewed together, rarely bought
    together.

    >>> e = explain_substitute({"similarity": 0.816, "category_relation": "same", "bought_together": 0,
    ...                         "viewed_together": 12, "price_ratio": 0.933})
    >>> e.zh
    '可替代商品：标题相似度 0.82；同一品类；一起浏览 12 次；很少一起购买；价格为主商品的 93%'
    >>> e.en
    "alternative: title similarity 0.82; same category; viewed together in 12 sessions; rarely bought together; 93% of the main item's price"
    """
    parts = _similar_parts(evidence)
    if _count(evidence, "bought_together") == 0:
        parts.append(("很少一起购买", "rarely bought together"))
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
    '升级款：价格为主商品的 154%；标题相似度 0.72；同一品类'
    >>> e.en
    "step up: 154% of the main item's price; title similarity 0.72; same category"
    """
    parts: list[tuple[str, str]] = []
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    parts.extend(_similar_parts(evidence))
    return _head(parts, "升级款", "step up")


def explain_series(
    evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN
) -> Explanation:
    """Why ``dst`` is in the same series as ``src``: same brand or product line, similar titles.

    >>> e = explain_series({"same_line": True, "similarity": 0.7, "category_relation": "different"})
    >>> e.zh, e.en
    ('同系列：同一品牌或产品线；标题相似度 0.70；不同品类', 'same series: same brand or product line; title similarity 0.70; different category')
    """
    parts: list[tuple[str, str]] = []
    if evidence.get("same_line") is True:
        parts.append(("同一品牌或产品线", "same brand or product line"))
    sim = _num(evidence, "similarity")
    if sim is not None:
        parts.append((f"标题相似度 {_similarity(sim)}", f"title similarity {_similarity(sim)}"))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    return _head(parts, "同系列", "same series")


def explain_next(evidence: Mapping[str, Any], main_zh: str = MAIN_ZH, main_en: str = MAIN_EN) -> Explanation:
    """Why customers buy ``dst`` after ``src``: how many bought src, then dst within the window,
    what share of src's returning customers that is, the lift, the usual gap and how one-sided
    the order is (keys of a "next" relation's evidence, see docs/schema.md).

    >>> e = explain_next({"after_count": 312, "before_count": 12, "window_days": 90, "confidence": 0.124,
    ...                   "lift": 3.42, "median_gap_days": 21.0, "category_relation": "different"})
    >>> e.zh
    '之后常买：312 位顾客在 90 天内先买主商品再买它（占回购顾客的 12%），提升度 3.4；中位间隔 21 天；反过来只有 12 位；不同品类'
    >>> e.en
    'bought next: 312 customers bought it within 90 days after the main item (12% of returning customers), lift 3.4; median gap 21 days; only 12 the other way round; different category'
    >>> explain_next({"after_count": 5}, main_zh="待产包", main_en="the delivery kit").en
    'bought next: 5 customers bought it after the delivery kit'
    """
    after = _count(evidence, "after_count")
    window = _num(evidence, "window_days")
    zh_when = f"在 {format_amount(window)} 天内" if window is not None else ""
    en_when = f" within {format_amount(window)} days" if window is not None else ""
    head_zh = f"{after} 位顾客{zh_when}先买{main_zh}再买它"
    head_en = f"{after} customers bought it{en_when} after {main_en}"
    conf = _num(evidence, "confidence")
    if conf is not None and conf > 0:
        head_zh += f"（占回购顾客的 {format_percent(conf)}）"
        head_en += f" ({format_percent(conf)} of returning customers)"
    lift = _num(evidence, "lift")
    if lift is not None and lift > 0:
        head_zh += f"，提升度 {_lift(lift)}"
        head_en += f", lift {_lift(lift)}"
    parts: list[tuple[str, str]] = []
    gap = _num(evidence, "median_gap_days")
    if gap is not None:
        days = format_amount(round(gap))
        parts.append((f"中位间隔 {days} 天", f"median gap {days} days"))
    before = _count(evidence, "before_count")
    if before:
        parts.append((f"反过来只有 {before} 位", f"only {before} the other way round"))
    cat = _category(evidence)
    if cat:
        parts.append(cat)
    price = _price(evidence, main_zh, main_en)
    if price:
        parts.append(price)
    return _head([(head_zh, head_en), *parts], "之后常买", "bought next")


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
) -> Explanation:
    """Explain a relation. Takes either a ``related`` row (with ``kind`` and ``evidence``) or an
    evidence dict; ``kind`` defaults to the row's / the evidence's own ``kind``. ``main_zh`` /
    ``main_en`` name the item the price ratio refers to (default "主商品" / "the main item").
    Raises ConfigError for an unknown kind.

    >>> row = {"kind": "series", "evidence": {"same_line": True}}
    >>> explain(row).en
    'same series: same brand or product line'
    >>> explain({"price_ratio": 0.5}, "complement", main_zh="折叠椅", main_en="Folding chair").zh
    '价格为折叠椅的 50%'
    """
    evidence = row_or_evidence.get("evidence")
    if isinstance(evidence, Mapping):
        kind = kind or row_or_evidence.get("kind")
    else:
        evidence = row_or_evidence
    kind = kind or evidence.get("kind")
    if kind not in EXPLAINERS:
        raise ConfigError(f"cannot explain relation kind {kind!r}; valid kinds: {', '.join(RELATION_KINDS)}")
    return EXPLAINERS[kind](evidence, main_zh, main_en)

"""What the host says and why each slot is where it is: slot role names, the ordering reasons,
talking points built from the product's numbers and the relations' evidence (the seller tone of
:mod:`tiein.explain`: no analyst words, long titles not read out), checks and left-out reasons,
each in Chinese and English."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiein.explain import MAIN_EN, MAIN_ZH, explain_complement, explain_substitute, sayable_name
from tiein.money import format_money

# slot role -> (zh, en)
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "opener": ("开场引流款", "opener"),
    "hero": ("主推爆款", "hero item"),
    "complement": ("搭配款", "goes with the hero"),
    "compare": ("对比讲解", "comparison"),
    "hold": ("引流留人", "keeps the room"),
    "profit": ("利润款", "profit item"),
    "regular": ("常规款", "regular item"),
    "welfare": ("福利加推", "welfare drop"),
    "closing": ("收尾套餐", "closing bundle"),
}

# why a slot is where it is: role -> (zh, en); {hero} is the hero's id
WHY: dict[str, tuple[str, str]] = {
    "opener": (
        "开场：订单最多的引流款（低价、买的人多），先把人气带起来",
        "opener: the most-ordered traffic item (low price, many buyers) warms up the room",
    ),
    "hero": (
        "主推：爆款按订单数从多到少，每款后面紧跟它的搭配",
        "hero: best sellers by orders, most first, each followed by its complements",
    ),
    "complement": (
        "搭配：{hero} 的搭配商品，紧跟着讲",
        "complement of {hero}, placed right after it",
    ),
    "compare": (
        "对比：{hero} 的可替代款，特意放在一起对比讲",
        "a substitute of {hero}, placed on purpose for a side-by-side comparison",
    ),
    "hold": (
        "留人：主推讲完后，再上一款引流款把人留住",
        "after a hero, another traffic item keeps people watching",
    ),
    "profit": ("利润款：主推之后，按订单数排", "profit items come after the heroes, by orders"),
    "regular": ("其余商品：按订单数排", "the other items, by orders"),
    "welfare": (
        "福利加推：每隔 {every} 分钟（在一组商品讲完后）再上一次引流款",
        "welfare drop: every {every} minutes (after a product group ends) a traffic item again",
    ),
    "closing": (
        "收尾：用第一款能组成套装的主推商品做套餐",
        "closing: the bundle of the first hero that has one",
    ),
}

# left-out reasons and lineup-level reasons: code -> (zh, en)
REASONS: dict[str, tuple[str, str]] = {
    "out_of_stock": ("缺货，不排进直播", "out of stock: not scheduled"),
    "low_stock": (
        "库存 {stock} 件，少于 {min} 件，不排进直播",
        "{stock} in stock, fewer than {min}: not scheduled",
    ),
    "no_slot": ("时长排满了，没有位置", "no slot left in the broadcast"),
    "nothing_in_stock": (
        "选品都缺货，排不出直播",
        "every product of the pool is out of stock: nothing to schedule",
    ),
    "no_closing_slot": ("直播太短，没有收尾套餐的位置", "the broadcast is too short for a closing bundle"),
    "no_bundle": ("排进直播的商品都组不成套装：{why}", "none of the scheduled items makes a bundle: {why}"),
}

# checks: code -> (level, zh, en)
CHECKS: dict[str, tuple[str, str, str]] = {
    "price_jump": (
        "warning",
        "价格从 {prev} 跳到 {price}（{times} 倍），先讲清价值再报价",
        "the price jumps from {prev} to {price} ({times} times): show the value before the price",
    ),
    "substitutes_adjacent": (
        "warning",
        "和上一款可以互相替代，却排在一起（没有别的商品可以隔开）",
        "it can replace the item before it, yet follows it (nothing else was left to put between)",
    ),
    "blocked_adjacent": (
        "warning",
        "商家规则不让它和上一款一起推，却排在一起（没有别的商品可以隔开）",
        "a merchant rule keeps it apart from the item before it, yet it follows it (nothing else was left)",
    ),
    "comparison": (
        "info",
        "和 {hero} 可以互相替代：对比着讲，让顾客二选一",
        "it can replace {hero}: compare the two and let viewers pick one",
    ),
    "stock_unknown": ("info", "库存未知，开播前确认", "stock unknown: check before going live"),
    "low_stock": ("info", "库存只有 {stock} 件", "only {stock} in stock"),
    "outside_pool": (
        "info",
        "不在选品池里，是 {hero} 的搭配：开播前备货",
        "not in the pool, added as a complement of {hero}: have it ready",
    ),
}


def bilingual(table: Mapping[str, tuple[str, str]], code: str, **values: Any) -> dict[str, str]:
    zh, en = table[code]
    return {"zh": zh.format(**values), "en": en.format(**values)}


def reason(code: str, **values: Any) -> dict[str, str]:
    """A left-out / lineup reason ``{code, zh, en}``."""
    return {"code": code, **bilingual(REASONS, code, **values)}


def check(code: str, **values: Any) -> dict[str, str]:
    """A slot check ``{code, level, zh, en}``."""
    level, zh, en = CHECKS[code]
    return {"code": code, "level": level, "zh": zh.format(**values), "en": en.format(**values)}


def role_name(role: str) -> dict[str, str]:
    zh, en = ROLE_NAMES[role]
    return {"zh": zh, "en": en}


def names(product: Mapping[str, Any]) -> tuple[str, str]:
    """The product as said out loud: its title when short enough (tiein.explain.sayable_name),
    else "这款" / "this one"."""
    title = str(product.get("title") or "")
    zh, en = sayable_name(title, "", zh=True), sayable_name(title, "", zh=False)
    return (zh, en) if zh and en else ("这款", "this one")


def _times(ratio: float) -> str:
    text = f"{ratio:.1f}"
    return text[:-2] if text.endswith(".0") else text


def price_jump(prev: float, price: float) -> dict[str, str]:
    return check("price_jump", prev=format_money(prev), price=format_money(price), times=_times(price / prev))


def talking_points(
    role: str,
    product: Mapping[str, Any],
    orders: int,
    *,
    low_stock: int,
    hero: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """What the host can say about ``product`` in a slot of ``role``: the name and price, how many
    orders held it, the role's cue, the relation to the hero (for a complement or a comparison,
    from the relation's evidence) and a low stock."""
    zh: list[str] = []
    en: list[str] = []
    name_zh, name_en = names(product)
    price = product.get("price")
    if price is not None:
        zh.append(f"{name_zh}，{format_money(float(price))}")
        en.append(f"{name_en}, {format_money(float(price))}")
    else:
        zh.append(name_zh)
        en.append(name_en)
    if orders > 0:
        zh.append(f"已经有 {orders} 单买过")
        en.append(f"{orders} order{'s' if orders != 1 else ''} so far")
    cues = {
        "opener": ("价格实在、买的人多，开场先上它", "a fair price many people already buy: open with it"),
        "hold": (
            "人气款再来一次，新进来的朋友也能抢到",
            "a popular low-price item again, for the new arrivals",
        ),
        "hero": ("今天的主推，店里卖得最好的之一", "today's main pick, one of the shop's best sellers"),
        "profit": ("品质款，多花点时间讲细节", "a quality pick: take time on the details"),
        "welfare": ("福利加推，给一直在直播间的朋友", "a welfare drop for everyone still watching"),
    }
    if role in cues:
        zh.append(cues[role][0])
        en.append(cues[role][1])
    if hero is not None and evidence is not None:
        hero_zh, hero_en = names(hero)
        said = hero_zh != "这款"
        main = (f"“{hero_zh}”", hero_en) if said else (MAIN_ZH, MAIN_EN)
        if not said:
            hero_zh, hero_en = "主推款", "the hero"
        if role == "compare":
            e = explain_substitute(evidence, *main)
            zh.append(f"和{hero_zh}对比：{e.zh}")
            en.append(f"compared with {hero_en}: {e.en}")
        else:
            e = explain_complement(evidence, *main)
            zh.append(f"搭配{hero_zh}：{e.zh}")
            en.append(f"goes with {hero_en}: {e.en}")
    stock = product.get("stock")
    if stock is not None and 0 < stock <= low_stock:
        zh.append(f"库存只剩 {stock} 件")
        en.append(f"only {stock} left")
    return {"zh": zh, "en": en}


def bundle_points(bundle: Mapping[str, Any]) -> dict[str, list[str]]:
    """The closing slot's talking points: the items and the bundle's own pitch."""
    products = [bundle["anchor"], *(i["product"] for i in bundle["items"])]
    said = [names(p) for p in products]
    pitch = bundle.get("pitch") or {}
    return {
        "zh": ["套餐：" + " + ".join(z for z, _ in said), str(pitch.get("zh") or "")],
        "en": ["the bundle: " + " + ".join(e for _, e in said), str(pitch.get("en") or "")],
    }

"""组货 (assort): pick the N products of a pool that cover the most demand with the fewest
substitutes, greedily.

Each round picks the product with the largest gain over those already picked:

    gain = orders + together - penalty × orders × substitutes

``orders``: orders holding it (the graph's co-purchase counts, :mod:`tiein.lineup.pool`);
``together``: orders it shares with the picks it is a complement of (either way; a pair blocked by
a merchant rule counts nothing); ``substitutes``: picks it can replace (a substitute edge either
way), whose shoppers would choose one of the two (``penalty`` 1: all its orders are lost to each).
Ties go to the smaller product id, so the same pool gives the same picks.

>>> class R:
...     def together(self, a, b): return {frozenset("ab"): 5}.get(frozenset((a, b)))
...     def subs(self, a, b): return {a, b} == {"a", "c"}
>>> [(p, g) for p, g, *_ in greedy(["a", "b", "c"], {"a": 10, "b": 4, "c": 9}, R(), 3, 1.0)]
[('a', 10.0), ('b', 9.0), ('c', 0.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class PairFacts(Protocol):
    def together(self, a: str, b: str) -> int | None: ...

    def subs(self, a: str, b: str) -> bool: ...


def greedy(
    candidates: Sequence[str],
    orders: Mapping[str, int],
    rel: PairFacts,
    n: int,
    penalty: float,
) -> list[tuple[str, float, int, float, list[str], list[str]]]:
    """(product id, gain, together, penalty, complements picked, substitutes picked) of the
    ``n`` picks in pick order (see the module doc)."""
    left = sorted(dict.fromkeys(candidates))
    picked: list[str] = []
    out: list[tuple[str, float, int, float, list[str], list[str]]] = []
    while left and len(picked) < n:
        best: tuple[float, str] | None = None
        facts: dict[str, tuple[int, float, list[str], list[str]]] = {}
        for p in left:
            own = int(orders.get(p, 0))
            comps = [q for q in picked if rel.together(p, q) is not None]
            together = sum(rel.together(p, q) or 0 for q in comps)
            subs = [q for q in picked if rel.subs(p, q)]
            lost = penalty * own * len(subs)
            gain = float(own + together - lost)
            facts[p] = (together, lost, comps, subs)
            if best is None or (-gain, p) < (-best[0], best[1]):
                best = (gain, p)
        assert best is not None
        gain, p = best
        together, lost, comps, subs = facts[p]
        out.append((p, gain, together, lost, comps, subs))
        picked.append(p)
        left.remove(p)
    return out


def pick_explanation(
    orders: int,
    together: int,
    comps: list[tuple[str, str]],
    subs: list[tuple[str, str]],
    first: bool,
) -> dict[str, str]:
    """Why a product was picked, in words (``comps`` / ``subs``: the sayable names, zh and en, of
    the picks it goes with / could replace)."""
    zh = [f"{orders} 单买过它" if orders else "还没有和别的商品一起买过的记录"]
    en = [
        f"in {orders} order{'s' if orders != 1 else ''}"
        if orders
        else "no orders with other products recorded"
    ]
    if first:
        zh[0] = "订单最多：" + zh[0]
        en[0] = "the most orders: " + en[0]
    if comps:
        zh.append(f"和已选的{'、'.join(z for z, _ in comps)}一起买过 {together} 单")
        en.append(f"bought with {', '.join(e for _, e in comps)} (already picked) in {together} orders")
    if subs:
        zh.append(f"可以替代已选的{'、'.join(z for z, _ in subs)}，顾客一般二选一")
        en.append(
            f"can replace {', '.join(e for _, e in subs)} (already picked): shoppers pick one of the two"
        )
    return {"zh": "；".join(zh), "en": "; ".join(en)}


def picks_payload(
    chosen: list[tuple[str, float, int, float, list[str], list[str]]],
    products: Mapping[str, dict[str, Any]],
    orders: Mapping[str, int],
    said: Any,
) -> list[dict[str, Any]]:
    """The ``picks`` of a lineup payload; ``said(product)`` gives its sayable (zh, en) names."""
    out = []
    for rank, (p, gain, together, lost, comps, subs) in enumerate(chosen, 1):
        own = int(orders.get(p, 0))
        out.append(
            {
                "rank": rank,
                "product": products[p],
                "orders": own,
                "together": together,
                "penalty": lost,
                "gain": gain,
                "complements": comps,
                "substitutes": subs,
                "explanation": pick_explanation(
                    own,
                    together,
                    [said(products[q]) for q in comps],
                    [said(products[q]) for q in subs],
                    rank == 1,
                ),
            }
        )
    return out

"""``addons()``: complements of a whole cart and, with a free-shipping threshold, the top-ups.

The cart data flow, step by step: check the request (:func:`_check_cart`), read every cart item
with its complements and substitutes and score each complement over the whole cart
(:class:`_CartPool`), keep the candidates that pass the static checks (true substitutes, stock),
pick the varied top ``k`` (:func:`_suggest`), then the cheapest items that lift the cart over
the threshold (:func:`_top_ups`). Shares the store reads and product checks of
:mod:`tiein.bundles.candidates` with bundles; price bands do not apply (there is no anchor).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tiein.bundles.candidates import _cart_category_key, _Graph, _in_stock
from tiein.bundles.pricing import _price
from tiein.bundles.reasons import SKIP_ORDER, SKIP_REASON, Reason
from tiein.bundles.results import AddonItem, Addons, Product, Row, _product_dict
from tiein.bundles.rules import BundleRules, _is_int, _validate_budget
from tiein.errors import ConfigError
from tiein.explain import MAIN_EN, MAIN_ZH, Explanation, explain
from tiein.rules import PINNED_EN, PINNED_ZH

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore
    from tiein.model import QueryContext
    from tiein.rules import Filters, RuleSet


def addons(
    store: GraphStore,
    cart: list[str],
    *,
    threshold: float | None = None,
    k: int = 5,
    rules: BundleRules | None = None,
    curation: RuleSet | None = None,
    filters: Filters | None = None,
    context: QueryContext | None = None,
) -> Addons:
    """Complements of the cart as a whole: each complement edge's cart weight (evidence
    ``cart_weight``, :func:`tiein.ranker.cart_weight`: the learnt probability over the add-on's base
    rate to the shop's own exponent; the score where absent) summed over the cart items, never an
    item already in the cart, never a true substitute of a cart item (a substitute edge either way
    that is not also a complement edge of the same pair: variants bought together stay), only in
    stock, at most ``rules.cart_per_category`` per category among the suggested items (the cart's
    own items do not count: a second cheese for a cart with cheese is fine). Top ``k``.

    With a free-shipping ``threshold`` above the cart total, ``top_ups`` are the eligible
    complements whose price closes the gap, least overspend first (a cart at 199 of 200 gets a
    screen film, not a second phone), up to ``k``. Price bands do not apply (there is no anchor).

    ``curation`` (merchant rules, :class:`tiein.rules.RuleSet`): complements a merchant pinned
    for a cart item come first, and nothing a block rule keeps apart from a cart item is
    suggested; ``filters`` (:class:`tiein.rules.Filters`) narrow the suggestions.

    With a date in ``context`` (:class:`tiein.model.QueryContext`) each edge's cart weight is
    multiplied by its season weight at that date (:func:`tiein.season.season_weight`) and items
    in their peak season say so.

    Raises ProductNotFound for an unknown cart id and ConfigError for an empty cart, bad ``k`` or
    ``threshold``.
    """
    rules = rules or BundleRules()
    ids, threshold = _check_cart(cart, k, threshold)
    g = _Graph.for_context(store, rules.candidate_k, curation, filters, context)
    products = [g.product(pid) for pid in ids]  # with their complements and substitutes
    prices = [_price(p) for p in products]
    total = round(sum(p for p in prices if p is not None), 2)
    out = Addons(cart=[_product_dict(p) for p in products], total=total, threshold=threshold)
    pool = _CartPool(g, products, rules)
    eligible = pool.eligible()  # passed the static checks, in rank order
    _suggest(pool, eligible, k, out)
    if not out.items:
        if not pool.ranked:
            out.reason = Reason.of("no_complements")
        else:
            out.reason = Reason.of(SKIP_REASON[max(pool.skipped.values(), key=SKIP_ORDER.index)])
    if threshold is not None:
        if any(p is None for p in prices):
            out.top_up_reason = Reason.of("cart_price_unknown")
        else:
            _top_ups(pool, eligible, total, threshold, k, out)
    out.skipped = dict(Counter(pool.skipped.values()))
    return out


def _check_cart(cart: list[str], k: int, threshold: float | None) -> tuple[list[str], float | None]:
    """(the cart's distinct ids in order, the checked threshold); ConfigError for a bad argument."""
    if isinstance(cart, str) or not isinstance(cart, Iterable):
        raise ConfigError(f"cart must be a list of product ids, got {cart!r}")
    ids = list(dict.fromkeys(cart))
    if not ids or not all(isinstance(p, str) and p for p in ids):
        raise ConfigError(f"cart must be a non-empty list of product ids, got {cart!r}")
    if not _is_int(k) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return ids, _validate_budget(threshold, "threshold")


class _CartPool:
    """The cart's complements, scored over the whole cart: ``score`` (cart weights summed),
    ``best`` (the strongest edge to each, with its cart item), ``sources`` (the cart items it
    complements), ``ranked`` (best first), and ``skipped`` (candidate id -> why passed over)."""

    def __init__(self, g: _Graph, products: list[Product], rules: BundleRules) -> None:
        self.g = g
        self.rules = rules
        self.products = products
        self.in_cart = {p["product_id"] for p in products}
        self.score: dict[str, float] = {}
        self.best: dict[str, tuple[float, Row, Product]] = {}
        self.sources: dict[str, list[str]] = {}
        self.cart_subs: set[str] = set()
        self.skipped: dict[str, str] = {}
        self.pinned: dict[str, int] = {}  # pinned by a merchant rule -> order (first pin first)
        for p in products:
            self._add_complements_of(p)
        self.ranked = sorted(
            self.score, key=lambda c: (c not in self.pinned, self.pinned.get(c, 0), -self.score[c], c)
        )

    def _add_complements_of(self, p: Product) -> None:
        pid = p["product_id"]
        comps = self.g.complements(pid)
        if self.rules.exclude_substitutes:
            self.cart_subs |= self.g.substitutes(pid) - {row["product_id"] for row in comps}
        for row in comps:
            c = row["product_id"]
            if c in self.in_cart or self.g.blocked_with(c, self.in_cart):
                continue
            if row.get("pinned"):
                self.pinned.setdefault(c, len(self.pinned))
            weight = (row.get("evidence") or {}).get("cart_weight")
            edge = (
                float(row["score"] if weight is None else weight)
                * float(row.get("season_weight", 1.0))
                * float(row.get("segment_weight", 1.0))
            )
            self.score[c] = self.score.get(c, 0.0) + edge
            self.sources.setdefault(c, []).append(pid)
            s = float(row["score"])
            if c not in self.best or s > self.best[c][0]:
                self.best[c] = (s, row, p)

    def eligible(self) -> list[str]:
        """The ranked candidates that pass :meth:`static_check` (the others go to ``skipped``)."""
        out = []
        for c in self.ranked:
            code = self.static_check(c)
            if code is not None:
                self.skipped[c] = code
            else:
                out.append(c)
        return out

    def static_check(self, c: str) -> str | None:
        """Rules that do not depend on what else is suggested: true substitutes (cart -> c) and
        stock."""
        row = self.best[c][1]
        if c in self.cart_subs:
            return "substitute_of_anchor"
        if self.rules.require_in_stock and not _in_stock(row):
            return "out_of_stock"
        return None

    def reverse_check(self, c: str) -> str | None:
        """The other direction (c -> cart item), one store read, so only for items about to be
        shown; a cart item that has c as a complement too is not a true substitute."""
        if (
            self.rules.exclude_substitutes
            and self.rules.reverse_substitutes
            and (self.g.substitutes(c) & self.in_cart) - set(self.sources[c])
        ):
            return "substitute_of_anchor"
        return None

    def item(self, c: str) -> AddonItem:
        """Candidate ``c`` as an :class:`AddonItem`, explained against its strongest cart item."""
        _, row, src = self.best[c]
        if len(self.products) == 1:
            main_zh, main_en = MAIN_ZH, MAIN_EN
        else:
            title = str(src.get("title") or src["product_id"])
            main_zh, main_en = f"“{title}”", title
        if c in self.pinned:
            e = Explanation(zh=PINNED_ZH, en=PINNED_EN)
        else:
            e = explain(row, "complement", main_zh=main_zh, main_en=main_en, at=self.g.at)
        return AddonItem(
            product=_product_dict(row),
            score=round(self.score[c], 6),
            relation="complement of " + ", ".join(self.sources[c]),
            sources=list(self.sources[c]),
            evidence=dict(row.get("evidence") or {}),
            explanation_zh=e.zh,
            explanation_en=e.en,
        )


def _suggest(pool: _CartPool, eligible: list[str], k: int, out: Addons) -> None:
    """The list: the top ``k`` eligible candidates, at most ``rules.cart_per_category`` per
    category among the suggestions, so it stays varied."""
    categories: Counter[str] = Counter()
    for c in eligible:
        if len(out.items) >= k:
            break
        cat = _cart_category_key(pool.best[c][1])
        if cat is not None and categories[cat] >= pool.rules.cart_per_category:
            pool.skipped[c] = "category_taken"
            continue
        if (code := pool.reverse_check(c)) is not None:
            pool.skipped[c] = code
            continue
        out.items.append(pool.item(c))
        if cat is not None:
            categories[cat] += 1


def _top_ups(
    pool: _CartPool, eligible: list[str], total: float, threshold: float, k: int, out: Addons
) -> None:
    """``out.gap`` and, when the cart is short of ``threshold``, up to ``k`` single items that
    close the gap: any eligible complement priced at least the gap, least overspend first, then
    the stronger complement, then the id."""
    gap = round(threshold - total, 2)
    out.gap = max(gap, 0.0)
    if gap <= 0:
        return
    fitting = sorted(
        (round(price - gap, 2), -pool.score[c], c, price)
        for c in eligible
        if (price := _price(pool.best[c][1])) is not None and price >= gap - 1e-9
    )
    for overspend, _, c, price in fitting:
        if len(out.top_ups) >= k:
            break
        if (code := pool.reverse_check(c)) is not None:
            pool.skipped[c] = code
            continue
        top = pool.item(c)
        top.overspend, top.new_total = overspend, round(total + price, 2)
        out.top_ups.append(top)
    if not out.top_ups:
        out.top_up_reason = (
            Reason.of("threshold_unreachable", getattr(pool.rules, "currency", None), threshold=threshold)
            if eligible
            else out.reason
        )

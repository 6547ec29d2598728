"""Scenario bundles and cart add-ons over any graph store (tiein.graph.base.GraphStore).

A shopper picked an *anchor* (a tent); :func:`bundle` offers 1-2 *complements* of it (a chair,
a lamp) as a bundle with a sayable bundle price; :func:`addons` offers complements of a whole cart
and, with a free-shipping threshold, the cheapest items that lift the cart over it.

Merchants' rules (:class:`BundleRules`, defaults from practice):

- only complements; never a substitute of the anchor, never two items that are substitutes of
  each other (checked both ways, against every substitute the graph holds: the anchor's, every
  chosen item's and each candidate's own);
- each add-on priced ``min_price_ratio``-``max_price_ratio`` (30-80 %) of the anchor, or at the
  anchor's own price (``same_price_ok``: a one-price shop still gets bundles); the band applies
  only to a pair whose prices are both known, an unpriced anchor or item skips it;
- only items in stock (stock null = unknown = allowed, stock <= 0 excluded);
- at most ``max_per_category`` items per leaf category, the anchor's category included;
- an optional budget the bundle total must not exceed;
- an optional sales-role ``mix`` (hero + profit): the n-th add-on must have the n-th sales role.

Selection is greedy: candidates in complement-score order (the store's order), each checked
against the anchor and the items already chosen. Complements of the anchor come first; when they
run out, complements of the chosen items follow ("complement of chair"). Scenes drive the order:
with ``scene`` (or, by default, the scene the anchor belongs to) the slots are the scene's roles
in order, each filled by the best candidate that is a member of that role (Scene nodes,
``IN_SCENE {role, weight}``, docs/schema.md); ``roles`` does the same with sets of category
names or product ids. A role nothing can fill is skipped and listed in ``skipped_roles``.

Store round trips per bundle (embedded store: one statement each, ~0.1-0.5 ms):
``bundle_candidates(anchor)`` (3 statements: the anchor with its scenes, its complements, the
substitute ids of the anchor and of each complement), plus, when a scene is followed,
``scene_summary`` (2) and one ``scene_roles_of`` for the candidates; the complements of a chosen
item cost one more ``bundle_candidates`` only when the anchor's run out. No separate existence
checks, every list read once per request.

Unpriced bundles: when the anchor or an item has no price, the bundle is still made but has no
price maths: ``priced`` is False, ``total`` / ``suggested_price`` / ``saving`` are None and the pitch
says the prices are at checkout (:func:`unpriced_pitch`). With a ``budget``, an unpriced anchor
gives no bundle (``anchor_price_unknown``) and unpriced items are passed over (``price_unknown``):
the budget could not be checked.

Price rounding (:func:`charm_price`): the suggested bundle price is the largest *sayable* price at
or below ``total × (1 − discount)``, trying in order a whole number ending in ``charm_digit``
(…8: 398, 468), a whole ten (470), a whole number (47), one decimal (13.5); the first that is
no more than ``rounding_slack × total`` (3 %) below the discounted price wins, so rounding never
gives away more than 3 % on top of the discount and small totals stay exact.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.explain import MAIN_EN, MAIN_ZH, Explanation, explain, format_amount, format_percent

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore

Product = dict[str, Any]
Row = dict[str, Any]


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class BundleRules:
    """The merchant's bundle rules, with named defaults.

    min_price_ratio / max_price_ratio: each add-on's price as a share of the anchor's price
        (0.3-0.8: a 299 tent takes add-ons from 89.70 to 239.20). Applied only when both prices are
        known; an unpriced anchor or add-on skips the band for that pair.
    same_price_ok: an add-on at exactly the anchor's price (to the cent) passes the band too, so a
        one-price shop (everything 10) gets bundles; the band's job is to keep add-ons from
        dwarfing the anchor, and an equal price does not.
    size: default bundle size, anchor included (3 = anchor + 2 add-ons); :func:`bundle` takes its
        size from its own ``size`` argument, callers building from config pass ``rules.size``.
    max_size: the largest size accepted (anchor + 5).
    max_per_category: items per leaf category in a bundle, anchor included.
    cart_per_category: items per leaf category among cart add-ons (the cart's own items do not
        count: a second yogurt for a cart with yogurt is fine); 2 completed 25 % more held-out
        Instacart carts than 1 (bench/quality.py).
    require_in_stock: drop items with stock <= 0 (null stock = unknown = allowed).
    exclude_substitutes: never offer a substitute of the anchor / cart, nor two substitutes of
        each other. Switch off only to see what the rule removes.
    reverse_substitutes: check substitutes both ways, i.e. also read each candidate's own
        substitute list before taking it (one store read per item taken, ~0.8 ms embedded). False
        trusts the anchor's / cart's / chosen items' lists alone (the classifier scores substitutes
        almost symmetrically), saving that read for the last item and for every add-on shown.
    discount: bundle discount the suggested price is computed for (0.1 = 10 %).
    charm_digit: last digit of a suggested price (8: 398; 9 for Western shops; None: whole tens).
    rounding_slack: how far below the discounted price rounding may go, as a share of the total.
    candidate_k: complements (and substitutes) read per product from the store.
    """

    min_price_ratio: float = 0.3
    max_price_ratio: float = 0.8
    size: int = 3
    max_size: int = 6
    max_per_category: int = 1
    cart_per_category: int = 2
    require_in_stock: bool = True
    exclude_substitutes: bool = True
    reverse_substitutes: bool = True
    discount: float = 0.1
    charm_digit: int | None = 8
    rounding_slack: float = 0.03
    candidate_k: int = 50
    same_price_ok: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not (0 <= self.min_price_ratio <= self.max_price_ratio):
            problems.append(
                f"price ratios need 0 <= min_price_ratio <= max_price_ratio, got {self.min_price_ratio} and {self.max_price_ratio}"
            )
        if not _is_int(self.max_size) or self.max_size < 2:
            problems.append(f"max_size must be an integer >= 2, got {self.max_size!r}")
        elif not _is_int(self.size) or not 2 <= self.size <= self.max_size:
            problems.append(f"size must be an integer from 2 to {self.max_size}, got {self.size!r}")
        if not _is_int(self.max_per_category) or self.max_per_category < 1:
            problems.append(f"max_per_category must be an integer >= 1, got {self.max_per_category!r}")
        if not _is_int(self.cart_per_category) or self.cart_per_category < 1:
            problems.append(f"cart_per_category must be an integer >= 1, got {self.cart_per_category!r}")
        if not (0 <= self.discount < 1):
            problems.append(f"discount must be in [0, 1), got {self.discount!r}")
        if self.charm_digit is not None and (not _is_int(self.charm_digit) or not 0 <= self.charm_digit <= 9):
            problems.append(f"charm_digit must be a digit 0-9 or None, got {self.charm_digit!r}")
        if not (0 <= self.rounding_slack < 1):
            problems.append(f"rounding_slack must be in [0, 1), got {self.rounding_slack!r}")
        if not _is_int(self.candidate_k) or self.candidate_k < 1:
            problems.append(f"candidate_k must be an integer >= 1, got {self.candidate_k!r}")
        if problems:
            raise ConfigError("bad bundle rules: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- reasons
# code -> (zh, en); {budget}, {threshold}, {lo}, {hi} are filled in.
REASONS: dict[str, tuple[str, str]] = {
    "anchor_out_of_stock": ("主商品缺货，无法组合套装", "the main item is out of stock"),
    "anchor_price_unknown": (
        "主商品没有价格，无法核对预算 {budget}",
        "the main item has no price, so the budget of {budget} cannot be checked",
    ),
    "budget_price_unknown": (
        "搭配商品没有价格，无法核对预算 {budget}",
        "the complementary items have no price, so the budget of {budget} cannot be checked",
    ),
    "anchor_over_budget": (
        "主商品价格已超出预算 {budget}",
        "the main item alone is over the budget of {budget}",
    ),
    "no_complements": ("没有找到常一起购买的搭配商品", "no complementary items are known for this product"),
    "only_substitutes": (
        "搭配候选都是替代品，不适合一起卖",
        "every candidate is a substitute, not an add-on",
    ),
    "none_in_stock": ("搭配商品都缺货", "every complementary item is out of stock"),
    "outside_price_band": (
        "有货的搭配商品价格都不在主商品的 {lo}–{hi} 之间",
        "no in-stock complementary item is priced within {lo}-{hi} of the main item",
    ),
    "no_role_match": ("没有符合指定角色的搭配商品", "no complementary item fits the requested roles"),
    "no_scene_role_match": (
        "没有搭配商品属于场景“{scene}”的其他角色",
        "no complementary item fills another role of the scene {scene}",
    ),
    "scene_has_no_roles": (
        "场景“{scene}”除主商品的角色外没有其他角色",
        "the scene {scene} has no roles besides the main item's",
    ),
    "no_mix_match": (
        "没有符合“{mix}”组合的搭配商品",
        "no complementary item has the sales roles asked for ({mix})",
    ),
    "category_taken": (
        "搭配商品都与已选商品同一品类",
        "every complementary item is in a category already taken",
    ),
    "over_budget": (
        "加任何一件搭配商品都会超出预算 {budget}",
        "every complementary item takes the bundle over the budget of {budget}",
    ),
    "cart_price_unknown": (
        "购物车中有商品没有价格，无法计算凑单",
        "an item in the cart has no price, so the gap cannot be computed",
    ),
    "threshold_unreachable": (
        "没有一件搭配商品能让购物车达到 {threshold}",
        "no single complementary item lifts the cart to {threshold}",
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


@dataclass(frozen=True)
class Reason:
    """Why there is no bundle / no add-on: a stable ``code`` (keys of REASONS) and a sentence in
    Chinese and English."""

    code: str
    zh: str
    en: str

    @classmethod
    def of(cls, code: str, **values: Any) -> Reason:
        zh, en = REASONS[code]
        text = {k: format_amount(v) if isinstance(v, int | float) else str(v) for k, v in values.items()}
        return cls(code, zh.format_map(_Blank(text)), en.format_map(_Blank(text)))

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


# ----------------------------------------------------------------------------- results
@dataclass
class BundleItem:
    """One add-on of a bundle."""

    product: Product
    role: str | None
    relation: str  # "complement of anchor" | "complement of <product_id>"
    score: float
    evidence: dict[str, Any]
    explanation_zh: str
    explanation_en: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": _product_dict(self.product),
            "role": self.role,
            "relation": self.relation,
            "score": self.score,
            "evidence": dict(sorted(self.evidence.items())),
            "explanation": {"zh": self.explanation_zh, "en": self.explanation_en},
        }


@dataclass
class Bundle:
    """A bundle (anchor + items) with its price maths, or ``reason`` when none is possible.

    ``priced`` is False when the anchor or an item has no price: ``total``, ``suggested_price`` and
    ``saving`` are then None and the pitch says the prices are at checkout."""

    anchor: Product
    items: list[BundleItem] = field(default_factory=list)
    total: float | None = None
    suggested_price: float | None = None
    saving: float | None = None
    discount: float = 0.0
    pitch_zh: str | None = None
    pitch_en: str | None = None
    reason: Reason | None = None
    budget: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    scene: dict[str, Any] | None = None  # {"scene_id", "name"} of the scene followed, or None
    skipped_roles: list[str] = field(default_factory=list)  # roles tried that no item could fill
    mix: list[str] | None = None  # sales roles asked for, in add-on order
    # the anchor's own scene (picked, not asked for) had no role any item could fill, so the items
    # are its best complements in score order instead of no bundle at all
    scene_fallback: bool = False
    priced: bool = True

    @property
    def ok(self) -> bool:
        return self.reason is None and bool(self.items)

    @property
    def product_ids(self) -> list[str]:
        """Anchor first, then the items in bundle order."""
        return [self.anchor["product_id"], *(i.product["product_id"] for i in self.items)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "anchor": _product_dict(self.anchor),
            "items": [i.to_dict() for i in self.items],
            "total": self.total,
            "suggested_price": self.suggested_price,
            "saving": self.saving,
            "discount": self.discount,
            "pitch": {"zh": self.pitch_zh, "en": self.pitch_en},
            "budget": self.budget,
            "reason": self.reason.to_dict() if self.reason else None,
            "skipped": dict(sorted(self.skipped.items())),
            "scene": dict(self.scene) if self.scene else None,
            "skipped_roles": list(self.skipped_roles),
            "mix": list(self.mix) if self.mix else None,
            "scene_fallback": self.scene_fallback,
            "priced": self.priced,
        }


@dataclass
class AddonItem:
    """A complement of the cart (or a top-up towards a free-shipping threshold)."""

    product: Product
    score: float  # complement scores summed over the cart items it complements
    relation: str  # "complement of tent, chair"
    sources: list[str]
    evidence: dict[str, Any]  # of the strongest cart item -> this item relation
    explanation_zh: str
    explanation_en: str
    overspend: float | None = None  # top-ups: cart total + price - threshold
    new_total: float | None = None  # top-ups: cart total + price

    def to_dict(self) -> dict[str, Any]:
        out = {
            "product": _product_dict(self.product),
            "score": self.score,
            "relation": self.relation,
            "sources": list(self.sources),
            "evidence": dict(sorted(self.evidence.items())),
            "explanation": {"zh": self.explanation_zh, "en": self.explanation_en},
        }
        if self.overspend is not None:
            out["overspend"] = self.overspend
            out["new_total"] = self.new_total
        return out


@dataclass
class Addons:
    """Complements of a cart as a whole; with a threshold, the top-ups that reach it."""

    cart: list[Product]
    total: float | None
    items: list[AddonItem] = field(default_factory=list)
    reason: Reason | None = None
    threshold: float | None = None
    gap: float | None = None  # threshold - total (0 when already reached)
    top_ups: list[AddonItem] = field(default_factory=list)
    top_up_reason: Reason | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cart": [_product_dict(p) for p in self.cart],
            "total": self.total,
            "items": [i.to_dict() for i in self.items],
            "reason": self.reason.to_dict() if self.reason else None,
            "threshold": self.threshold,
            "gap": self.gap,
            "top_ups": [i.to_dict() for i in self.top_ups],
            "top_up_reason": self.top_up_reason.to_dict() if self.top_up_reason else None,
            "skipped": dict(sorted(self.skipped.items())),
        }


def _product_dict(p: Mapping[str, Any]) -> Product:
    from tiein.graph.base import PRODUCT_FIELDS

    return {k: p.get(k) for k in PRODUCT_FIELDS}


# ----------------------------------------------------------------------------- price maths
def charm_price(amount: float, total: float, *, charm_digit: int | None = 8, slack: float = 0.03) -> float:
    """The largest sayable price at or below ``amount`` (the discounted total) that is no more
    than ``slack × total`` below it; see the module docstring for the order tried.

    >>> charm_price(403.2, 448)            # 448 apart, 10 % off: 398 together
    398.0
    >>> charm_price(474.3, 527)
    468.0
    >>> charm_price(474.3, 527, charm_digit=None)
    470.0
    >>> charm_price(45.0, 50)              # 38 gives away too much: whole number
    45.0
    >>> charm_price(13.5, 15)
    13.5
    """
    floor_limit = amount - slack * total - 1e-9
    eps = 1e-9
    candidates: list[float] = []
    if charm_digit is not None:
        candidates.append(math.floor((amount - charm_digit + eps) / 10) * 10 + charm_digit)
    candidates += [
        math.floor(amount / 10 + eps) * 10,
        math.floor(amount + eps),
        math.floor(amount * 10 + eps) / 10,
    ]
    for price in candidates:
        if 0 < price <= amount + eps and price >= floor_limit:
            return float(price)
    return round(amount, 2)


def pitch(total: float, price: float, saving: float) -> tuple[str, str]:
    """The one-line pitch in Chinese and English.

    >>> pitch(448, 398, 50)
    ('分开买 448，一起拿 398，省 50', '448 apart, 398 together, save 50')
    """
    t, p, s = format_amount(total), format_amount(price), format_amount(saving)
    return f"分开买 {t}，一起拿 {p}，省 {s}", f"{t} apart, {p} together, save {s}"


def unpriced_pitch(n: int) -> tuple[str, str]:
    """The pitch of a bundle of ``n`` items (anchor included) not all of which have a price.

    >>> unpriced_pitch(3)
    ('这 3 件一起买，价格以店内为准', 'these 3 go together, prices at checkout')
    """
    return f"这 {n} 件一起买，价格以店内为准", f"these {n} go together, prices at checkout"


def price_maths(total: float, rules: BundleRules) -> tuple[float, float, str, str]:
    """(suggested price, saving, pitch_zh, pitch_en) for a bundle total under ``rules``."""
    if rules.discount == 0:
        suggested = round(total, 2)
    else:
        suggested = charm_price(
            total * (1 - rules.discount), total, charm_digit=rules.charm_digit, slack=rules.rounding_slack
        )
    saving = round(total - suggested, 2)
    zh, en = pitch(total, suggested, saving)
    return suggested, saving, zh, en


# ----------------------------------------------------------------------------- helpers
def _price(p: Mapping[str, Any]) -> float | None:
    v = p.get("price")
    if v is None or isinstance(v, bool):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _in_band(price: float | None, anchor_price: float | None, rules: BundleRules) -> bool:
    """Whether an add-on at ``price`` passes the price band of an anchor at ``anchor_price``: any
    unknown price passes (the band needs both), and so does the anchor's own price with
    ``rules.same_price_ok``.

    >>> r = BundleRules()
    >>> [_in_band(p, 100, r) for p in (29, 30, 80, 81, 100, 101, None)]
    [False, True, True, False, True, False, True]
    >>> _in_band(50, None, r), _in_band(100, 100, BundleRules(same_price_ok=False))
    (True, False)
    """
    if price is None or anchor_price is None:
        return True
    if rules.same_price_ok and abs(price - anchor_price) < 0.005:
        return True
    return rules.min_price_ratio * anchor_price - 1e-9 <= price <= rules.max_price_ratio * anchor_price + 1e-9


def _in_stock(p: Mapping[str, Any]) -> bool:
    stock = p.get("stock")
    return stock is None or stock > 0


def _category_key(p: Mapping[str, Any]) -> str | None:
    return p.get("category") or p.get("category_path") or None


def _role_names(p: Mapping[str, Any]) -> set[str]:
    """Names a role can use for ``p``: its id, leaf category, category path and path leaf."""
    names = {str(p["product_id"])}
    for key in ("category", "category_path"):
        v = p.get(key)
        if v:
            names.add(str(v))
            names.add(str(v).split(" > ")[-1])
    return {n.strip().casefold() for n in names}


def _validate_budget(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class _Graph:
    """Memoised store reads for one request: one ``bundle_candidates`` call per product gives its
    fields, scenes, complements and every substitute list a bundle checks; scene roles are read
    once per product and scene."""

    def __init__(self, store: GraphStore, k: int) -> None:
        self.store = store
        self.k = k
        self._cand: dict[str, dict[str, Any]] = {}
        self._subs: dict[str, set[str]] = {}
        self._roles: dict[tuple[str, str], str | None] = {}

    def candidates(self, pid: str) -> dict[str, Any]:
        if pid not in self._cand:
            c = self.store.bundle_candidates(pid, self.k)
            self._cand[pid] = c
            self._subs.setdefault(c["product"]["product_id"], set(c["substitutes"]))
            for r in c["complements"]:
                self._subs.setdefault(r["product_id"], set(r["substitutes"]))
        return self._cand[pid]

    def product(self, pid: str) -> Product:
        return dict(self.candidates(pid)["product"])

    def scenes(self, pid: str) -> list[dict[str, Any]]:
        return list(self.candidates(pid)["scenes"])

    def complements(self, pid: str) -> list[Row]:
        return list(self.candidates(pid)["complements"])

    def substitutes(self, pid: str) -> set[str]:
        if pid not in self._subs:
            self.candidates(pid)
        return self._subs[pid]

    def prefetch_roles(self, scene_id: str, pids: Iterable[str]) -> None:
        todo = [p for p in dict.fromkeys(pids) if (scene_id, p) not in self._roles]
        if todo:
            found = self.store.scene_roles_of(scene_id, todo)
            for p in todo:
                self._roles[(scene_id, p)] = found.get(p)

    def scene_role(self, scene_id: str, pid: str) -> str | None:
        self.prefetch_roles(scene_id, [pid])
        return self._roles[(scene_id, pid)]


def _explain_item(row: Row, source: Mapping[str, Any], anchor_id: str) -> Explanation:
    if source["product_id"] == anchor_id:
        return explain(row, "complement")
    title = source.get("title") or source["product_id"]
    return explain(row, "complement", main_zh=f"“{title}”", main_en=f"{title}")


def _relation(source_id: str, anchor_id: str) -> str:
    return "complement of anchor" if source_id == anchor_id else f"complement of {source_id}"


@dataclass(frozen=True)
class _Slot:
    """A role to fill: a set of category names / product ids (``roles=``) or a scene role."""

    label: str
    names: frozenset[str] = frozenset()  # casefolded; empty for a scene role
    scene_role: str | None = None


def _pick_scene(g: _Graph, anchor_id: str, scene: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The scene a bundle follows and the roles to fill, in order.

    ``scene`` given: that scene (NotFound if unknown), every role but the anchor's own, in the
    scene's order. Not given: among the anchor's scenes the one where its role comes earliest,
    then the larger scene, then scene_id; the roles after the anchor's own, then (wrapping round)
    the ones before it. (None, []) when the anchor is in no scene or that scene has no other
    named role (a bundle then goes by score)."""
    mine = g.scenes(anchor_id)
    if scene is not None:
        summary = g.store.scene_summary(scene)
        own = next((r["role"] for r in mine if r["scene_id"] == summary["scene_id"]), None)
        return summary, [r for r in summary["roles"] if r is not None and r != own]
    if not mine:
        return None, []
    first = mine[0]["weight"]
    tied = [r for r in mine if r["weight"] == first]
    summaries = [g.store.scene_summary(r["scene_id"]) for r in tied]
    summary = min(summaries, key=lambda s: (-int(s["members"]), s["scene_id"]))
    own = next(r["role"] for r in tied if r["scene_id"] == summary["scene_id"])
    names = [r for r in summary["roles"] if r is not None]
    if own in names:
        i = names.index(own)
        names = names[i + 1 :] + names[:i]
    return (summary, names) if names else (None, [])


# ----------------------------------------------------------------------------- bundle
def bundle(
    store: GraphStore,
    anchor_id: str,
    *,
    scene: str | None = None,
    size: int = 3,
    budget: float | None = None,
    rules: BundleRules | None = None,
    roles: list[set[str]] | None = None,
    mix: Sequence[str] | str | None = None,
) -> Bundle:
    """A bundle for the shopper's ``anchor_id``: up to ``size - 1`` complements chosen under
    ``rules``; ``budget`` caps the bundle total.

    Slots are filled in this order:

    - ``scene`` (a scene id or name): the scene's roles in order, the anchor's own role left out;
    - ``roles`` (ordered sets of category names or product ids): those, in order;
    - neither: the scene the anchor belongs to (see :func:`_pick_scene`), its roles after the
      anchor's own; an anchor in no scene gets its complements in score order, and so does an
      anchor whose picked scene has no role any item can fill (``scene_fallback`` is then True;
      a scene the caller names is followed strictly).

    Each role is filled by the best complement (of the anchor, else of an item already chosen)
    that is a member of it; a role nothing can fill is skipped and listed in ``skipped_roles``,
    and the next role is tried until the bundle is full. ``mix`` (sales roles such as
    ``("hero", "profit")`` or ``"hero+profit"``) requires the first add-on to be a hero item, the
    second a profit item, ... and caps the add-ons at ``len(mix)``.

    Returns a :class:`Bundle` with at least one item, or with ``reason`` set (never an empty
    answer without a reason). Raises ProductNotFound for an unknown anchor, NotFound for an
    unknown scene and ConfigError for a bad size, budget, roles, mix or scene.
    """
    rules = rules or BundleRules()
    if not _is_int(size) or not 2 <= size <= rules.max_size:
        raise ConfigError(
            f"bundle size must be an integer from 2 to {rules.max_size} (anchor included), got {size!r}"
        )
    budget = _validate_budget(budget, "budget")
    role_sets = _validate_roles(roles)
    wanted = _validate_mix(mix)
    if scene is not None:
        if not isinstance(scene, str) or not scene.strip():
            raise ConfigError(f"scene must be a scene id or name, got {scene!r}")
        if role_sets is not None:
            raise ConfigError("give either a scene or roles, not both")
        scene = scene.strip()

    g = _Graph(store, rules.candidate_k)
    anchor = g.product(anchor_id)
    anchor_id = anchor["product_id"]
    out = Bundle(anchor=_product_dict(anchor), discount=rules.discount, budget=budget, mix=wanted)
    slots: list[_Slot] | None = None
    scene_id: str | None = None
    if role_sets is not None:
        slots = [_Slot(label=label, names=frozenset(names)) for names, label in role_sets]
    else:
        picked, scene_roles = _pick_scene(g, anchor_id, scene)
        if picked is not None:
            scene_id = picked["scene_id"]
            out.scene = {"scene_id": scene_id, "name": picked["name"]}
            slots = [_Slot(label=r, scene_role=r) for r in scene_roles]
    anchor_price = _price(anchor)
    out.total = anchor_price
    out.priced = anchor_price is not None
    if rules.require_in_stock and not _in_stock(anchor):
        out.reason = Reason.of("anchor_out_of_stock")
        return out
    if budget is not None and anchor_price is None:
        out.reason = Reason.of("anchor_price_unknown", budget=budget)
        return out
    if budget is not None and anchor_price is not None and anchor_price > budget:
        out.reason = Reason.of("anchor_over_budget", budget=budget)
        return out
    if slots is not None and not slots:
        out.reason = Reason.of("scene_has_no_roles", scene=out.scene["name"] if out.scene else "?")
        return out

    chosen: list[tuple[Row, str, str | None]] = []  # (row, source id, role)
    skipped: dict[str, str] = {}  # candidate id -> furthest check failed
    total = anchor_price or 0.0  # the known prices; a budget is only checked when all are known
    categories: Counter[str] = Counter()
    if (cat := _category_key(anchor)) is not None:
        categories[cat] += 1
    anchor_subs = g.substitutes(anchor_id) if rules.exclude_substitutes else set()
    chosen_subs: set[str] = set()
    pending_subs: list[str] = []  # chosen items whose substitute lists are not merged yet
    sources: list[Product] = [anchor]

    def role_ok(row: Row, slot: _Slot) -> bool:
        if scene_id is not None and slot.scene_role is not None:
            known = row.get("scene_roles")  # brought by bundle_candidates, else one lookup per list
            role = known.get(scene_id) if known is not None else g.scene_role(scene_id, row["product_id"])
            return role == slot.scene_role
        return bool(slot.names & _role_names(row))

    def check(row: Row, slot: _Slot | None) -> str | None:
        """The first rule ``row`` breaks (a SKIP_ORDER code), or None when it may join."""
        pid = row["product_id"]
        if pid in anchor_subs:
            return "substitute_of_anchor"
        if rules.require_in_stock and not _in_stock(row):
            return "out_of_stock"
        price = _price(row)
        if not _in_band(price, anchor_price, rules):
            return "outside_price_band"
        if slot is not None and not role_ok(row, slot):
            return "role_mismatch"
        if wanted and row.get("sales_role") != wanted[len(chosen)]:
            return "sales_role_mismatch"
        cat = _category_key(row)
        if cat is not None and categories[cat] >= rules.max_per_category:
            return "category_taken"
        while pending_subs:
            chosen_subs.update(g.substitutes(pending_subs.pop()))
        if pid in chosen_subs:
            return "substitute_of_chosen"
        if budget is not None and price is None:
            return "price_unknown"
        if budget is not None and price is not None and total + price > budget + 1e-9:
            return "over_budget"
        if rules.exclude_substitutes and rules.reverse_substitutes:
            theirs = g.substitutes(pid)  # the other direction: does it name the anchor / a chosen item?
            if anchor_id in theirs:
                return "substitute_of_anchor"
            if any(r["product_id"] in theirs for r, _, _ in chosen):
                return "substitute_of_chosen"
        return None

    def take(slot: _Slot | None) -> bool:
        nonlocal total
        taken = {anchor_id, *(r["product_id"] for r, _, _ in chosen)}
        i = 0
        while i < len(sources):  # sources grows as items are chosen
            source = sources[i]
            i += 1
            rows = g.complements(source["product_id"])
            if scene_id is not None and slot is not None:  # stores that leave scene_roles out: one read
                g.prefetch_roles(scene_id, [r["product_id"] for r in rows if "scene_roles" not in r])
            for row in rows:
                pid = row["product_id"]
                if pid in taken:
                    continue
                code = check(row, slot)
                if code is not None:
                    prev = skipped.get(pid)  # keep the furthest check it reached
                    if prev is None or SKIP_ORDER.index(code) > SKIP_ORDER.index(prev):
                        skipped[pid] = code
                    continue
                skipped.pop(pid, None)
                chosen.append((row, source["product_id"], slot.label if slot else _category_key(row)))
                total += _price(row) or 0.0
                if (cat := _category_key(row)) is not None:
                    categories[cat] += 1
                if rules.exclude_substitutes:
                    pending_subs.append(pid)
                sources.append(row)
                return True
        return False

    n_slots = size - 1 if not wanted else min(size - 1, len(wanted))
    if slots is None:
        while len(chosen) < n_slots and take(None):
            pass
    else:
        for slot in slots:
            if len(chosen) >= n_slots:
                break
            if not take(slot):
                out.skipped_roles.append(slot.label)
        if not chosen and scene is None and role_sets is None:
            # the scene was our pick, not the caller's: rather the best complements than nothing
            out.scene_fallback = True
            while len(chosen) < n_slots and take(None):
                pass

    out.skipped = dict(Counter(skipped.values()))
    if not chosen:
        if not g.complements(anchor_id):
            out.reason = Reason.of("no_complements")
        else:
            furthest = max(skipped.values(), key=SKIP_ORDER.index) if skipped else "substitute_of_anchor"
            code = SKIP_REASON[furthest]
            if code == "no_role_match" and out.scene is not None:
                code = "no_scene_role_match"
            out.reason = Reason.of(
                code,
                budget=budget or 0,
                lo=format_percent(rules.min_price_ratio),
                hi=format_percent(rules.max_price_ratio),
                scene=out.scene["name"] if out.scene else "?",
                mix=" + ".join(wanted or ()),
            )
        return out

    for row, source_id, role_name in chosen:
        source = next(s for s in sources if s["product_id"] == source_id)
        e = _explain_item(row, source, anchor_id)
        out.items.append(
            BundleItem(
                product=_product_dict(row),
                role=role_name,
                relation=_relation(source_id, anchor_id),
                score=float(row["score"]),
                evidence=dict(row.get("evidence") or {}),
                explanation_zh=e.zh,
                explanation_en=e.en,
            )
        )
    if anchor_price is None or any(_price(row) is None for row, _, _ in chosen):
        out.priced, out.total = False, None  # no price maths on a part of the prices
        out.pitch_zh, out.pitch_en = unpriced_pitch(len(out.items) + 1)
        return out
    out.total = round(total, 2)
    out.suggested_price, out.saving, out.pitch_zh, out.pitch_en = price_maths(out.total, rules)
    return out


def _validate_mix(mix: Sequence[str] | str | None) -> list[str] | None:
    """Sales roles in add-on order: a sequence or a ``"hero+profit"`` / ``"hero,profit"`` string.
    Each must be one of tiein.model.SALES_ROLES."""
    from tiein.model import SALES_ROLES

    if mix is None:
        return None
    if isinstance(mix, str):
        parts = [p.strip() for p in mix.replace(",", "+").split("+")]
    elif isinstance(mix, Iterable) and not isinstance(mix, bytes | Mapping):
        parts = list(mix)
    else:
        raise ConfigError(f"mix must be sales roles such as 'hero+profit', got {mix!r}")
    out = [p.strip().lower() if isinstance(p, str) else p for p in parts]
    bad = [p for p in out if p not in SALES_ROLES]
    if not out or bad:
        raise ConfigError(
            f"mix must name sales roles from {', '.join(SALES_ROLES)} (e.g. hero+profit), got {mix!r}"
        )
    return out


def _validate_roles(roles: list[set[str]] | None) -> list[tuple[set[str], str]] | None:
    """Roles as (casefolded names, label); the label is the first name in sorted order."""
    if roles is None:
        return None
    if isinstance(roles, str | bytes) or not isinstance(roles, Iterable):
        raise ConfigError(f"roles must be a list of sets of category names or product ids, got {roles!r}")
    out = []
    for i, role in enumerate(roles, 1):
        names = {role} if isinstance(role, str) else role
        if (
            not isinstance(names, Iterable)
            or not names
            or not all(isinstance(n, str) and n.strip() for n in names)
        ):
            raise ConfigError(
                f"role {i} must be a non-empty set of category names or product ids, got {role!r}"
            )
        out.append(({n.strip().casefold() for n in names}, sorted(n.strip() for n in names)[0]))
    if not out:
        raise ConfigError("roles is empty; leave it out to pick add-ons by score")
    return out


# ----------------------------------------------------------------------------- add-ons
def addons(
    store: GraphStore,
    cart: list[str],
    *,
    threshold: float | None = None,
    k: int = 5,
    rules: BundleRules | None = None,
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

    Raises ProductNotFound for an unknown cart id and ConfigError for an empty cart, bad ``k`` or
    ``threshold``.
    """
    rules = rules or BundleRules()
    if isinstance(cart, str) or not isinstance(cart, Iterable):
        raise ConfigError(f"cart must be a list of product ids, got {cart!r}")
    ids = list(dict.fromkeys(cart))
    if not ids or not all(isinstance(p, str) and p for p in ids):
        raise ConfigError(f"cart must be a non-empty list of product ids, got {cart!r}")
    if not _is_int(k) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    threshold = _validate_budget(threshold, "threshold")

    g = _Graph(store, rules.candidate_k)
    products = [g.product(pid) for pid in ids]  # with their complements and substitutes
    in_cart = {p["product_id"] for p in products}
    prices = [_price(p) for p in products]
    total = round(sum(p for p in prices if p is not None), 2)
    out = Addons(cart=[_product_dict(p) for p in products], total=total, threshold=threshold)

    score: dict[str, float] = {}
    best: dict[str, tuple[float, Row, Product]] = {}
    sources: dict[str, list[str]] = {}
    cart_subs: set[str] = set()
    for p in products:
        pid = p["product_id"]
        comps = g.complements(pid)
        if rules.exclude_substitutes:
            cart_subs |= g.substitutes(pid) - {row["product_id"] for row in comps}
        for row in comps:
            c = row["product_id"]
            if c in in_cart:
                continue
            weight = (row.get("evidence") or {}).get("cart_weight")
            score[c] = score.get(c, 0.0) + float(row["score"] if weight is None else weight)
            sources.setdefault(c, []).append(pid)
            s = float(row["score"])
            if c not in best or s > best[c][0]:
                best[c] = (s, row, p)
    ranked = sorted(score, key=lambda c: (-score[c], c))

    skipped: dict[str, str] = {}

    def static_check(c: str) -> str | None:
        """Rules that do not depend on what else is suggested: true substitutes (cart -> c) and
        stock."""
        row = best[c][1]
        if c in cart_subs:
            return "substitute_of_anchor"
        if rules.require_in_stock and not _in_stock(row):
            return "out_of_stock"
        return None

    def reverse_check(c: str) -> str | None:
        """The other direction (c -> cart item), one store read, so only for items about to be
        shown; a cart item that has c as a complement too is not a true substitute."""
        if (
            rules.exclude_substitutes
            and rules.reverse_substitutes
            and (g.substitutes(c) & in_cart) - set(sources[c])
        ):
            return "substitute_of_anchor"
        return None

    def item(c: str) -> AddonItem:
        _, row, src = best[c]
        if len(products) == 1:
            main_zh, main_en = MAIN_ZH, MAIN_EN
        else:
            title = str(src.get("title") or src["product_id"])
            main_zh, main_en = f"“{title}”", title
        e = explain(row, "complement", main_zh=main_zh, main_en=main_en)
        return AddonItem(
            product=_product_dict(row),
            score=round(score[c], 6),
            relation="complement of " + ", ".join(sources[c]),
            sources=list(sources[c]),
            evidence=dict(row.get("evidence") or {}),
            explanation_zh=e.zh,
            explanation_en=e.en,
        )

    eligible: list[str] = []  # passed the static checks, in rank order
    for c in ranked:
        code = static_check(c)
        if code is not None:
            skipped[c] = code
        else:
            eligible.append(c)

    # the list: one per category among the suggestions, so it stays varied
    categories: Counter[str] = Counter()
    for c in eligible:
        if len(out.items) >= k:
            break
        cat = _category_key(best[c][1])
        if cat is not None and categories[cat] >= rules.cart_per_category:
            skipped[c] = "category_taken"
            continue
        if (code := reverse_check(c)) is not None:
            skipped[c] = code
            continue
        out.items.append(item(c))
        if cat is not None:
            categories[cat] += 1

    if not out.items:
        if not ranked:
            out.reason = Reason.of("no_complements")
        else:
            out.reason = Reason.of(SKIP_REASON[max(skipped.values(), key=SKIP_ORDER.index)])

    if threshold is not None:
        if any(p is None for p in prices):
            out.top_up_reason = Reason.of("cart_price_unknown")
        else:
            gap = round(threshold - total, 2)
            out.gap = max(gap, 0.0)
            if gap > 0:
                # one item added to the cart: any eligible complement priced at least the gap,
                # least overspend first, then the stronger complement, then the id
                fitting = sorted(
                    (round(price - gap, 2), -score[c], c, price)
                    for c in eligible
                    if (price := _price(best[c][1])) is not None and price >= gap - 1e-9
                )
                for overspend, _, c, price in fitting:
                    if len(out.top_ups) >= k:
                        break
                    if (code := reverse_check(c)) is not None:
                        skipped[c] = code
                        continue
                    top = item(c)
                    top.overspend, top.new_total = overspend, round(total + price, 2)
                    out.top_ups.append(top)
                if not out.top_ups:
                    out.top_up_reason = (
                        Reason.of("threshold_unreachable", threshold=threshold) if eligible else out.reason
                    )
    out.skipped = dict(Counter(skipped.values()))
    return out

"""What a bundle or cart request answers: the result dataclasses and their JSON form.

Output of the bundle data flow: :func:`tiein.bundles.bundle` fills a :class:`Bundle` (anchor,
:class:`BundleItem` add-ons, price maths or a reason) and :func:`tiein.bundles.addons` an
:class:`Addons` (:class:`AddonItem` suggestions and top-ups); ``to_dict`` is what the service and
API return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiein.bundles.reasons import Reason
from tiein.graph.base import PRODUCT_FIELDS

Product = dict[str, Any]
Row = dict[str, Any]


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

    return {k: p.get(k) for k in PRODUCT_FIELDS}

"""Bundles and a cart's add-ons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from tiein.errors import ConfigError
from tiein.model import MAX_K, check_k, parse_mix
from tiein.service.types import AddonsPayload, BundlePayload

if TYPE_CHECKING:
    from tiein.bundles import BundleRules
    from tiein.graph.base import GraphStore


def check_discount(discount: float | None) -> float | None:
    """``discount`` as a float (None stays None), else ConfigError; its range is checked by
    :class:`tiein.bundles.BundleRules`."""
    if discount is None:
        return None
    if isinstance(discount, bool) or not isinstance(discount, int | float):
        raise ConfigError(f"discount must be a number in [0, 1), got {discount!r}")
    return float(discount)


def bundle_payload(
    store: GraphStore,
    anchor_id: str,
    *,
    scene: str | None = None,
    size: int = 3,
    budget: float | None = None,
    mix: Sequence[str] | str | None = None,
    discount: float | None = None,
    rules: BundleRules | None = None,
    **options: Any,
) -> BundlePayload:
    """:func:`tiein.bundles.bundle` as a JSON-ready dict: ``scene`` (id or name; default the
    anchor's own scene), ``mix`` (sales roles, ``("hero", "profit")`` or ``"hero+profit"``, read
    by :func:`tiein.model.parse_mix`), ``discount`` (overrides ``rules.discount``, 0.1 = 10 %
    off); other ``options`` (``roles``) pass through. ConfigError for a bad mix or discount."""
    from dataclasses import replace

    from tiein.bundles import BundleRules, bundle

    discount = check_discount(discount)
    if discount is not None:
        rules = replace(rules or BundleRules(), discount=discount)
    roles = parse_mix(mix)
    answer = bundle(
        store, anchor_id, scene=scene, size=size, budget=budget, mix=roles, rules=rules, **options
    )
    return cast(BundlePayload, answer.to_dict())


def addons_payload(
    store: GraphStore,
    cart: list[str],
    *,
    threshold: float | None = None,
    k: int = 5,
    rules: BundleRules | None = None,
    max_k: int = MAX_K,
) -> AddonsPayload:
    """:func:`tiein.bundles.addons` as a JSON-ready dict. ConfigError for a k outside
    1..``max_k`` (a server's cap, at most :data:`tiein.model.MAX_K`)."""
    from tiein.bundles import addons

    check_k(k, min(max_k, MAX_K))
    return cast(AddonsPayload, addons(store, cart, threshold=threshold, k=k, rules=rules).to_dict())

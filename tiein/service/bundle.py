"""Bundles and a cart's add-ons."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tiein.bundles import BundleRules, addons, bundle
from tiein.errors import ConfigError, ProductNotFound
from tiein.model import MAX_K, QueryContext, check_k, parse_mix
from tiein.money import currency_symbol
from tiein.rules import NO_FILTERS, Filters, RuleSet
from tiein.segments import store_segment
from tiein.service.types import AddonsPayload, BundlePayload
from tiein.shop_config import load_shop_config, shop_currency

if TYPE_CHECKING:
    from tiein.bundles import BundleRules
    from tiein.graph.base import GraphStore

# BundleRules fields a caller may set per request (CLI options, API parameters, a config file)
RULE_OPTIONS = ("min_price_ratio", "max_price_ratio", "charm_digit", "rounding_slack", "currency")


def bundle_rules(rules: BundleRules | None = None, **overrides: Any) -> BundleRules:
    """``rules`` (default :class:`tiein.bundles.BundleRules`) with the given overrides (None
    leaves a field as it is): the price band (``min_price_ratio`` / ``max_price_ratio``), the
    ``discount``, the rounding (``charm_digit``: the last digit of a bundle price, -1 for whole
    tens; ``rounding_slack``) and the ``currency`` of the pitch. ConfigError for a bad value or
    an unknown name."""
    from dataclasses import fields, replace

    unknown = set(overrides) - {*RULE_OPTIONS, "discount", "size"}
    if unknown:
        raise ConfigError(f"unknown bundle rule(s): {', '.join(sorted(unknown))}")
    base = rules or BundleRules()
    given = {k: v for k, v in overrides.items() if v is not None}
    if "discount" in given:
        given["discount"] = check_discount(given["discount"])
    if given.get("charm_digit") == -1:
        given["charm_digit"] = None
    currency = given.pop("currency", None)
    if currency is not None:
        currency_symbol(currency)  # ConfigError for a bad one
        if "currency" not in {f.name for f in fields(base)}:
            base = _with_currency(base)
        given["currency"] = currency
    return replace(base, **given) if given else base


def shop_bundle_rules(home: Path | str | None) -> BundleRules:
    """The shop's bundle rules: the defaults of :class:`tiein.bundles.BundleRules` with what the
    ``[bundle]`` table and ``currency`` of ``HOME/shop.toml`` say (:mod:`tiein.shop_config`;
    ``TIEIN_CURRENCY`` still wins over the file's currency). The CLI, the API and export start
    from these; their own options and parameters override them. ConfigError for a bad file."""
    config = load_shop_config(home)
    values: dict[str, Any] = dict(config.bundle)
    return bundle_rules(None, **values, currency=shop_currency(home))


def _with_currency(rules: BundleRules) -> BundleRules:
    """``rules`` as a BundleRules that also carries a ``currency`` (read by the pricing)."""
    from dataclasses import asdict, make_dataclass

    cls = _CURRENCY_RULES.get("cls")
    if cls is None:
        cls = make_dataclass(
            "ShopBundleRules", [("currency", "str | None", None)], bases=(BundleRules,), frozen=True
        )
        _CURRENCY_RULES["cls"] = cls
    return cast("BundleRules", cls(**asdict(rules)))


_CURRENCY_RULES: dict[str, Any] = {}


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
    size: int | None = None,
    budget: float | None = None,
    mix: Sequence[str] | str | None = None,
    discount: float | None = None,
    rules: BundleRules | None = None,
    filters: Filters | None = None,
    curation: RuleSet | None = None,
    context: QueryContext | None = None,
    **options: Any,
) -> BundlePayload:
    """:func:`tiein.bundles.bundle` as a JSON-ready dict: ``scene`` (id or name; default the
    anchor's own scene), ``mix`` (sales roles, ``("hero", "profit")`` or ``"hero+profit"``, read
    by :func:`tiein.model.parse_mix`), ``discount`` (overrides ``rules.discount``, 0.1 = 10 %
    off); the merchant rules (``curation``, default the store's in force now: pins first, blocked
    pairs never together) and ``filters`` on the add-ons apply; ``options`` named in
    :data:`RULE_OPTIONS` override ``rules`` (:func:`bundle_rules`), others (``roles``) pass
    through; ``size`` (anchor included) defaults to ``rules.size`` (3 unless the shop config
    says otherwise). ConfigError for a bad mix, discount or rule."""

    overrides = {name: options.pop(name) for name in RULE_OPTIONS if name in options}
    rules = bundle_rules(rules, discount=discount, **overrides)
    roles = parse_mix(mix)
    curation = RuleSet.load(store) if curation is None else curation
    answer = bundle(
        store,
        anchor_id,
        scene=scene,
        size=rules.size if size is None else size,
        budget=budget,
        mix=roles,
        rules=rules,
        curation=curation,
        filters=filters,
        context=context,
        **options,
    )
    out = cast(BundlePayload, answer.to_dict())
    out["filters"] = (filters or NO_FILTERS).to_dict()
    out["rules_version"] = curation.version
    if context is not None and context.at is not None:
        out["at"] = context.at.isoformat()
    segment = store_segment(store, context.segment) if context is not None else None
    if segment is not None:
        out["segment"] = segment.to_dict()
    return out


def addons_payload(
    store: GraphStore,
    cart: list[str],
    *,
    threshold: float | None = None,
    k: int = 5,
    rules: BundleRules | None = None,
    max_k: int = MAX_K,
    filters: Filters | None = None,
    curation: RuleSet | None = None,
    context: QueryContext | None = None,
) -> AddonsPayload:
    """:func:`tiein.bundles.addons` as a JSON-ready dict, with the merchant rules (``curation``,
    default the store's in force now) and ``filters`` applied (``filters.offset`` skips the
    first suggestions). Cart ids the graph does not hold are left out and listed in
    ``unknown_ids``; ProductNotFound only when no cart id is known. ConfigError for a k outside
    1..``max_k`` (a server's cap, at most :data:`tiein.model.MAX_K`)."""

    check_k(k, min(max_k, MAX_K))
    filters = filters or NO_FILTERS
    curation = RuleSet.load(store) if curation is None else curation
    known = list(cart) if isinstance(cart, list | tuple) else cart
    unknown: list[str] = []
    while True:
        try:
            answer = addons(
                store,
                known,
                threshold=threshold,
                k=filters.offset + k,
                rules=rules,
                curation=curation,
                filters=filters,
                context=context,
            )
            break
        except ProductNotFound as exc:
            missing = exc.product_id
            if not isinstance(known, list) or missing not in known or len(set(known) - {missing}) == 0:
                raise
            unknown.append(missing)
            known = [p for p in known if p != missing]
    out = cast(AddonsPayload, answer.to_dict())
    out["items"] = out["items"][filters.offset :]
    out["unknown_ids"] = unknown
    out["offset"] = filters.offset
    out["limit"] = k
    out["filters"] = filters.to_dict()
    out["rules_version"] = curation.version
    if context is not None and context.at is not None:
        out["at"] = context.at.isoformat()
    segment = store_segment(store, context.segment) if context is not None else None
    if segment is not None:
        out["segment"] = segment.to_dict()
    return out

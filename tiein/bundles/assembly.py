"""``bundle()``: one anchor in, a priced bundle (or the reason there is none) out.

The bundle data flow, step by step, each a named function below: check the request
(:func:`_check_request`), read the anchor and plan the slots (a scene's roles, the caller's
roles, or none: :func:`_plan_slots`), refuse early for the anchor itself
(:func:`_anchor_refusal`), choose add-ons greedily (:class:`tiein.bundles.selection._Picker`,
:func:`_fill_slots`), then either explain the refusal (:func:`_refusal`) or assemble the items
(:func:`_add_items`) and the price maths (:func:`_price_bundle`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiein.bundles.candidates import _Graph, _in_stock, _pick_scene, _Slot
from tiein.bundles.pricing import _price, price_maths, unpriced_pitch
from tiein.bundles.reasons import SKIP_ORDER, SKIP_REASON, Reason
from tiein.bundles.results import Bundle, BundleItem, Product, Row, _product_dict
from tiein.bundles.rules import BundleRules, _is_int, _validate_budget, _validate_mix, _validate_roles
from tiein.bundles.selection import _Picker
from tiein.errors import ConfigError
from tiein.explain import Explanation, explain
from tiein.money import format_percent
from tiein.rules import PINNED_EN, PINNED_ZH

if TYPE_CHECKING:
    from datetime import date

    from tiein.graph.base import GraphStore
    from tiein.model import QueryContext
    from tiein.rules import Filters, RuleSet


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
    curation: RuleSet | None = None,
    filters: Filters | None = None,
    context: QueryContext | None = None,
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
    answer without a reason). ``curation`` (merchant rules, :class:`tiein.rules.RuleSet`): the
    anchor's pinned complements are chosen first when they pass the rules, and no two products a
    block rule keeps apart are put together; ``filters`` (:class:`tiein.rules.Filters`) narrow the
    add-on candidates. With a date in ``context`` (:class:`tiein.model.QueryContext`) the
    complements are ranked for that date and items in their peak season say so. Raises
    ProductNotFound for an unknown anchor, NotFound for an unknown scene and ConfigError for a
    bad size, budget, roles, mix or scene.
    """
    rules = rules or BundleRules()
    req = _check_request(rules, size, budget, roles, mix, scene)
    g = _Graph.for_context(store, rules.candidate_k, curation, filters, context)
    anchor = g.product(anchor_id)
    out = Bundle(anchor=_product_dict(anchor), discount=rules.discount, budget=req.budget, mix=req.wanted)
    slots, scene_id = _plan_slots(g, anchor["product_id"], req, out)
    anchor_price = _price(anchor)
    out.total, out.priced = anchor_price, anchor_price is not None
    out.reason = _anchor_refusal(anchor, anchor_price, slots, req, rules, out.scene)
    if out.reason is not None:
        return out
    picker = _Picker(g, anchor, rules, req.budget, req.wanted, scene_id)
    _fill_slots(picker, slots, req, out)
    out.skipped = dict(Counter(picker.skipped.values()))
    if not picker.chosen:
        out.reason = _refusal(picker, req, rules, out.scene)
        return out
    _add_items(picker, out)
    _price_bundle(picker, rules, out)
    return out


@dataclass(frozen=True)
class _Request:
    """A bundle request's checked arguments (see :func:`bundle`)."""

    size: int
    budget: float | None
    role_sets: list[tuple[set[str], str]] | None  # (casefolded names, label) per role
    wanted: list[str] | None  # sales roles (mix), in add-on order
    scene: str | None  # the scene the caller named, stripped

    @property
    def n_slots(self) -> int:
        """How many add-ons to choose at most."""
        return self.size - 1 if not self.wanted else min(self.size - 1, len(self.wanted))


def _check_request(
    rules: BundleRules,
    size: int,
    budget: float | None,
    roles: list[set[str]] | None,
    mix: Sequence[str] | str | None,
    scene: str | None,
) -> _Request:
    """The arguments checked (ConfigError for a bad one), before any store read."""
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
    return _Request(size=size, budget=budget, role_sets=role_sets, wanted=wanted, scene=scene)


def _plan_slots(
    g: _Graph, anchor_id: str, req: _Request, out: Bundle
) -> tuple[list[_Slot] | None, str | None]:
    """(the slots to fill in order, the id of the scene they come from): the caller's roles, else
    the scene's roles (``out.scene`` is set to the scene followed); (None, None) when add-ons go
    by score alone."""
    if req.role_sets is not None:
        return [_Slot(label=label, names=frozenset(names)) for names, label in req.role_sets], None
    picked, scene_roles = _pick_scene(g, anchor_id, req.scene)
    if picked is None:
        return None, None
    out.scene = {"scene_id": picked["scene_id"], "name": picked["name"]}
    return [_Slot(label=r, scene_role=r) for r in scene_roles], picked["scene_id"]


def _anchor_refusal(
    anchor: Product,
    anchor_price: float | None,
    slots: list[_Slot] | None,
    req: _Request,
    rules: BundleRules,
    scene: dict[str, Any] | None,
) -> Reason | None:
    """Why no bundle can be made for this anchor whatever the candidates, or None."""
    budget = req.budget
    if rules.require_in_stock and not _in_stock(anchor):
        return Reason.of("anchor_out_of_stock")
    if budget is not None and anchor_price is None:
        return Reason.of("anchor_price_unknown", getattr(rules, "currency", None), budget=budget)
    if budget is not None and anchor_price is not None and anchor_price > budget:
        return Reason.of("anchor_over_budget", getattr(rules, "currency", None), budget=budget)
    if slots is not None and not slots:
        return Reason.of("scene_has_no_roles", scene=scene["name"] if scene else "?")
    return None


def _fill_slots(picker: _Picker, slots: list[_Slot] | None, req: _Request, out: Bundle) -> None:
    """Choose the add-ons: by score when there are no slots, else one per slot in order (a slot
    nothing fills goes to ``out.skipped_roles``); a scene we picked (not the caller) that fills
    nothing falls back to score order (``out.scene_fallback``)."""
    n = req.n_slots
    picker.take_pinned(n)  # a merchant's pins come first
    if slots is None:
        picker.fill(n)
        return
    for slot in slots:
        if len(picker.chosen) >= n:
            break
        if not picker.take(slot):
            out.skipped_roles.append(slot.label)
    if not picker.chosen and req.scene is None and req.role_sets is None:
        # the scene was our pick, not the caller's: rather the best complements than nothing
        out.scene_fallback = True
        picker.fill(n)


def _refusal(picker: _Picker, req: _Request, rules: BundleRules, scene: dict[str, Any] | None) -> Reason:
    """Why nothing was chosen: no complements at all, else the furthest check any candidate
    reached."""
    if not picker.g.complements(picker.anchor_id):
        return Reason.of("no_complements")
    skipped = picker.skipped
    furthest = max(skipped.values(), key=SKIP_ORDER.index) if skipped else "substitute_of_anchor"
    code = SKIP_REASON[furthest]
    if code == "no_role_match" and scene is not None:
        code = "no_scene_role_match"
    return Reason.of(
        code,
        getattr(rules, "currency", None),  # a shop's currency (tiein.service.bundle_rules)
        budget=req.budget or 0,
        lo=format_percent(rules.min_price_ratio),
        hi=format_percent(rules.max_price_ratio),
        scene=scene["name"] if scene else "?",
        mix=" + ".join(req.wanted or ()),
    )


def _add_items(picker: _Picker, out: Bundle) -> None:
    """The chosen add-ons as :class:`BundleItem` s, each explained against its source."""
    anchor_id = picker.anchor_id
    for row, source_id, role_name in picker.chosen:
        source = next(s for s in picker.sources if s["product_id"] == source_id)
        e = _explain_item(row, source, anchor_id, picker.g.at)
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


def _price_bundle(picker: _Picker, rules: BundleRules, out: Bundle) -> None:
    """The bundle total, suggested price, saving and pitch; no price maths when a price is
    missing (``priced`` False, the pitch says prices are at checkout)."""
    if picker.anchor_price is None or any(_price(row) is None for row, _, _ in picker.chosen):
        out.priced, out.total = False, None  # no price maths on a part of the prices
        out.pitch_zh, out.pitch_en = unpriced_pitch(len(out.items) + 1)
        return
    out.total = round(picker.total, 2)
    out.suggested_price, out.saving, out.pitch_zh, out.pitch_en = price_maths(out.total, rules)


def _explain_item(row: Row, source: Mapping[str, Any], anchor_id: str, at: date | None = None) -> Explanation:
    if row.get("pinned"):
        return Explanation(zh=PINNED_ZH, en=PINNED_EN)
    if source["product_id"] == anchor_id:
        return explain(row, "complement", at=at)
    title = source.get("title") or source["product_id"]
    return explain(row, "complement", main_zh=f"“{title}”", main_en=f"{title}", at=at)


def _relation(source_id: str, anchor_id: str) -> str:
    return "complement of anchor" if source_id == anchor_id else f"complement of {source_id}"

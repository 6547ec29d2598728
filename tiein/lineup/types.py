"""The payload types of a lineup (the JSON of ``tiein lineup --json``, ``POST /v1/lineup`` and the
lineup export). The API's response models (:mod:`tiein.api.lineup_routes`) declare the same
fields; tests/test_service_types.py keeps the two in step. Payloads may gain keys (additive
changes only)."""

from __future__ import annotations

from typing import Any, TypedDict

Product = dict[str, Any]  # a store's product dict (tiein.graph.base.PRODUCT_FIELDS)
Bilingual = dict[str, str]  # {"zh", "en"}
Talk = dict[str, list[str]]  # {"zh": [sentence, ...], "en": [sentence, ...]}


class LineupCheck(TypedDict):
    """One check of a slot: ``code`` (price_jump, substitutes_adjacent, blocked_adjacent, comparison,
    stock_unknown, low_stock, outside_pool), ``level`` (warning | info) and the sentence in both languages."""

    code: str
    level: str
    zh: str
    en: str


class LineupRelation(TypedDict):
    """Why a slot follows the one it goes with: a ``complement`` (or, for a comparison,
    ``substitute``) of ``with_id`` (the hero), with the relation's score and evidence."""

    kind: str
    with_id: str
    score: float | None
    evidence: dict[str, Any]


class LineupSlot(TypedDict):
    """One slot of the broadcast, in order. ``role``: opener, hero, complement, compare, hold,
    profit, regular, welfare or closing; ``products``: one product, or the closing bundle's
    anchor and add-ons; ``why``: the ordering rule that put it here; ``talking_points``: what the
    host can say (zh / en lists); ``bundle``: the closing bundle (closing slot only)."""

    position: int
    start_min: int
    end_min: int
    duration_min: int
    role: str
    role_name: Bilingual
    products: list[Product]
    orders: int
    relation: LineupRelation | None
    why: Bilingual
    talking_points: Talk
    checks: list[LineupCheck]
    bundle: dict[str, Any] | None


class LineupPick(TypedDict):
    """One product picked by 组货 (assort), in pick order: its ``gain`` when picked = its
    ``orders`` + ``together`` (orders shared with complements already picked) − ``penalty``
    (its orders again for each substitute already picked, times the penalty)."""

    rank: int
    product: Product
    orders: int
    together: int
    penalty: float
    gain: float
    complements: list[str]
    substitutes: list[str]
    explanation: Bilingual


class LineupLeftOut(TypedDict):
    """A pool product not scheduled, and why (``reason``: {code, zh, en}; codes out_of_stock,
    low_stock, no_slot)."""

    product: Product
    reason: dict[str, str]


class LineupPayload(TypedDict):
    """``lineup``: the broadcast's slots in order, the products left out and why; with ``mode``
    "assort" also the 组货 ``picks`` (the slots then line up the picks). ``reason`` says why
    nothing could be scheduled (null otherwise); ``closing_reason`` why there is no closing
    bundle when one was asked for."""

    mode: str
    pool: dict[str, Any]
    options: dict[str, Any]
    length_min: int
    slot_min: int
    slots_available: int
    slots_used: int
    spare_min: int
    slots: list[LineupSlot]
    picks: list[LineupPick] | None
    left_out: list[LineupLeftOut]
    warnings: int
    reason: dict[str, str] | None
    closing_reason: dict[str, str] | None
    rules_version: int

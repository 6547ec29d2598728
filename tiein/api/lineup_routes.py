"""The lineup route: ``POST /v1/lineup`` (:func:`tiein.lineup.lineup_payload`), with its request
and response models (the response declares the fields of :class:`tiein.lineup.types.LineupPayload`;
tests/test_service_types.py keeps them in step)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tiein.api.schemas import Bilingual, Open, Product, Text, _errors
from tiein.api.settings import MAX_ID_LENGTH, Settings
from tiein.api.state import _store
from tiein.lineup import MAX_POOL, lineup_payload
from tiein.lineup.pool import MAX_LENGTH_MIN


class LineupRequest(BaseModel):
    """A lineup request: exactly one pool (``product_ids``, ``category`` or ``top``) and how the
    broadcast is laid out."""

    model_config = ConfigDict(extra="forbid")

    product_ids: list[Annotated[Text, Field(min_length=1, max_length=MAX_ID_LENGTH)]] | None = Field(
        None, min_length=1, max_length=MAX_POOL, description="Pool: these products."
    )
    category: Text | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="Pool: this category (any level of the path).",
    )
    top: int | None = Field(None, ge=1, le=MAX_POOL, description="Pool: the shop's N most-ordered products.")
    length_min: int = Field(120, ge=1, le=MAX_LENGTH_MIN, description="Broadcast length in minutes.")
    slot_min: int = Field(5, ge=1, le=MAX_LENGTH_MIN, description="Minutes per slot (every slot the same).")
    welfare_every_min: int | None = Field(
        None, ge=1, le=MAX_LENGTH_MIN, description="A 福利加推 slot every N minutes (at least two slots)."
    )
    openers: int = Field(1, ge=0, le=20, description="Traffic items (引流款) that open the show.")
    complements: int = Field(1, ge=0, le=5, description="Complements placed right after each hero.")
    compare: bool = Field(
        False, description="Follow each hero with a substitute from the pool, as a comparison."
    )
    extend_pool: bool = Field(False, description="Complements may come from outside the pool (flagged).")
    closing_bundle: bool = Field(True, description="End with a bundle (the first hero's that has one).")
    bundle_size: int = Field(3, ge=2, le=6, description="Closing bundle size, anchor included.")
    max_price_jump: float = Field(
        5.0,
        gt=1,
        le=1000,
        allow_inf_nan=False,
        description="Flag a slot costing this many times the one before.",
    )
    min_stock: int = Field(1, ge=0, description="Products with known stock below this are left out.")
    low_stock: int = Field(5, ge=0, description="Known stock at or below this is said out loud.")
    mode: Literal["lineup", "assort"] = Field(
        "lineup", description="assort (组货): pick first, then line up."
    )
    picks: int = Field(8, ge=1, le=MAX_POOL, description="assort: how many products to pick.")
    substitute_penalty: float = Field(
        1.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="assort: share of orders lost per substitute picked.",
    )


class LineupCheckModel(Open):
    code: str = Field(
        description="price_jump, substitutes_adjacent, blocked_adjacent, comparison, stock_unknown, low_stock, outside_pool."
    )
    level: str = Field(description="warning | info.")
    zh: str
    en: str


class LineupRelationModel(Open):
    kind: str = Field(description="complement, or substitute for a comparison slot.")
    with_id: str = Field(description="The hero this slot goes with.")
    score: float | None = None
    evidence: dict[str, Any]


class LineupSlotModel(Open):
    position: int = Field(description="1-based slot number.")
    start_min: int = Field(description="Minute the slot starts.")
    end_min: int
    duration_min: int
    role: str = Field(
        description="opener, hero, complement, compare, hold, profit, regular, welfare, closing."
    )
    role_name: Bilingual
    products: list[Product] = Field(
        description="One product; the closing slot: the bundle's anchor and add-ons."
    )
    orders: int = Field(
        description="Orders holding the product (the graph's co-purchase counts; 0 = none recorded)."
    )
    relation: LineupRelationModel | None = None
    why: Bilingual = Field(description="The ordering rule that put it here.")
    talking_points: dict[str, list[str]] = Field(description="What the host can say: {zh: [...], en: [...]}.")
    checks: list[LineupCheckModel]
    bundle: dict[str, Any] | None = Field(
        None,
        description="The closing bundle (closing slot only), as GET /v1/products/{id}/bundle answers it.",
    )


class LineupPickModel(Open):
    rank: int
    product: Product
    orders: int
    together: int = Field(description="Orders shared with complements already picked.")
    penalty: float = Field(description="Orders lost to substitutes already picked.")
    gain: float = Field(description="orders + together - penalty when picked.")
    complements: list[str]
    substitutes: list[str]
    explanation: Bilingual


class LineupLeftOutModel(Open):
    product: Product
    reason: dict[str, str] = Field(description="{code: out_of_stock | low_stock | no_slot, zh, en}.")


class LineupResponse(Open):
    mode: str
    pool: dict[str, Any] = Field(description="{source: ids | category | top, value, size, truncated, limit}.")
    options: dict[str, Any] = Field(description="Every option used.")
    length_min: int
    slot_min: int
    slots_available: int
    slots_used: int
    spare_min: int = Field(description="Minutes of the broadcast no slot uses.")
    slots: list[LineupSlotModel]
    picks: list[LineupPickModel] | None = Field(None, description="assort mode: the picks in pick order.")
    left_out: list[LineupLeftOutModel]
    warnings: int = Field(description="Checks of level warning in all slots.")
    reason: dict[str, str] | None = Field(None, description="Why nothing could be scheduled.")
    closing_reason: dict[str, str] | None = Field(None, description="Why there is no closing bundle.")
    rules_version: int = Field(0, description="The version of the merchant rules applied.")


def add_lineup_routes(router: APIRouter, settings: Settings, auth: list[Any]) -> None:
    """Add ``POST /lineup`` to ``router`` (``auth``: the token dependency, or none)."""

    csv_answer: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The lineup"}
    }

    @router.post(
        "/lineup",
        response_model=LineupResponse,
        responses={**csv_answer, **_errors(400, 404)},
        dependencies=auth,
        tags=["lineup"],
    )
    def lineup(
        request: Request,
        body: Annotated[LineupRequest, Body()],
        fmt: Annotated[
            Literal["json", "csv"],
            Query(
                alias="format",
                description="json (default), or csv: one row per slot and product, as `tiein lineup --out x.csv`.",
            ),
        ] = "json",
    ) -> Any:
        """A livestream lineup (直播排品) from a product pool: traffic items open, each hero is
        followed by its complements (merchant blocks kept), then profit items and the rest by
        orders, 福利 slots every N minutes, a closing bundle; talking points in Chinese and
        English, price-jump and stock checks, no two substitutes back to back unless compared on
        purpose. ``mode=assort`` (组货) picks the products first; ``format=csv`` answers the
        same lineup as CSV. 404 names unknown product ids."""
        options = body.model_dump(exclude={"product_ids", "category", "top"})
        payload = lineup_payload(
            _store(request), ids=body.product_ids, category=body.category, top=body.top, **options
        )
        if fmt == "csv":
            from tiein.export.lineup import lineup_csv

            return Response(lineup_csv(payload), media_type="text/csv; charset=utf-8")
        return dict(payload)

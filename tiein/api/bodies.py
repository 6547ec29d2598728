"""Request bodies of the API (pydantic models; an unknown field is refused): what ``POST
/v1/cart/addons``, ``POST /v1/events``, ``PUT /v1/rules`` and ``POST /v1/cypher`` accept, validated
before a route runs and documented in the OpenAPI schema. The response models are in
:mod:`tiein.api.schemas`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tiein.api.schemas import AT_HELP, MAX_OFFSET, SEGMENT_HELP, Text
from tiein.api.settings import MAX_CART, MAX_CYPHER_LENGTH, MAX_ID_LENGTH
from tiein.model import MAX_K


class AddonsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cart: list[Annotated[Text, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(
        min_length=1, max_length=MAX_CART, description="Product ids in the cart."
    )
    threshold: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Free-shipping threshold: also suggest top-ups reaching it.",
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many add-ons (and top-ups).")
    in_stock: bool = Field(False, description="Only products in stock (unknown stock counts as in stock).")
    exclude: list[Annotated[Text, Field(min_length=1, max_length=MAX_ID_LENGTH)]] | None = Field(
        None, max_length=MAX_CART, description="Product ids never to suggest."
    )
    category: Text | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="Only this category (any level of the path).",
    )
    brand: Text | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH, description="Only this brand.")
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False, description="Lowest price.")
    max_price: float | None = Field(None, ge=0, allow_inf_nan=False, description="Highest price.")
    min_score: float | None = Field(None, allow_inf_nan=False, description="Lowest cart score.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Suggestions to skip (paging).")
    at: Text | None = Field(None, min_length=1, max_length=10, description=AT_HELP)
    segment: Text | None = Field(None, min_length=1, max_length=100, description=SEGMENT_HELP)


MAX_EVENTS = 10_000  # events one POST /v1/events may carry


class EventIn(BaseModel):
    """One recommendation event (the fields of an event file, tiein.feedback.EVENTS). Event
    types and kinds are checked by the ingest (case and ``-``/space are folded: ``Add-to-cart``)."""

    model_config = ConfigDict(extra="forbid")

    event_id: Text | None = Field(
        None,
        max_length=MAX_ID_LENGTH,
        description="The app's id of the event: re-posting it adds nothing. Without "
        "one, an event identical in every field counts once.",
    )
    ts: Text = Field(min_length=1, max_length=64, description="When, ISO 8601 (naive times are UTC).")
    user_id: Text = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="The shopper (A/B arms hash it)."
    )
    anchor_id: Text = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="The product the list was for."
    )
    item_id: Text = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The recommended product.")
    kind: Text = Field(
        min_length=1,
        max_length=32,
        description="complement | substitute | upsell | series | next | bundle | addon.",
    )
    event: Text = Field(
        min_length=1, max_length=32, description="impression | click | add_to_cart | purchase."
    )
    surface: Text | None = Field(None, max_length=64, description="page | live | service | … (free).")
    experiment: Text | None = Field(None, max_length=MAX_ID_LENGTH, description="Experiment id.")
    variant: Text | None = Field(None, max_length=MAX_ID_LENGTH, description="The variant the shopper saw.")
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="Order amount (purchases).")
    order_id: Text | None = Field(
        None, max_length=MAX_ID_LENGTH, description="The order a purchase belongs to (its value counts once)."
    )


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(
        min_length=1, max_length=MAX_EVENTS, description=f"1 to {MAX_EVENTS:,} events, in any order."
    )
    timezone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Time zone of event times written without one (an IANA name: Asia/Shanghai, "
        "Europe/Berlin, UTC); default the shop's: TIEIN_TIMEZONE, else `timezone` in HOME/shop.toml, "
        "else Asia/Shanghai. Times with a zone (Z, +08:00) and epoch numbers keep theirs.",
    )


class RuleIn(BaseModel):
    """One merchant rule (Chinese action / kind words such as 置顶, 屏蔽, 加权, 搭配 work too)."""

    model_config = ConfigDict(extra="forbid")

    anchor: Text = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="The anchor product ('*': every one, block only)."
    )
    item: Text = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The product the rule is about.")
    kind: Text | None = Field(
        None,
        max_length=40,
        description="Relation kind (default complement; a block without one blocks every kind).",
    )
    action: Text = Field(min_length=1, max_length=40, description="pin, block or boost.")
    position: int | None = Field(None, ge=1, le=1000, description="A pin's place (1 = first).")
    boost: float | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False, description="A boost's factor (default 1.5)."
    )
    valid_from: Text | None = Field(
        None, max_length=40, description="ISO date or time (UTC) the rule starts."
    )
    valid_to: Text | None = Field(
        None, max_length=40, description="ISO date or time (UTC) it ends (a date lasts the day)."
    )
    note: Text | None = Field(None, max_length=1000, description="Free text.")


class RulesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RuleIn] = Field(
        max_length=10_000, description="Rules to add (or replace, same anchor, item and kind)."
    )
    replace: bool = Field(
        False, description="True: these become the whole rule set (the others are removed)."
    )
    version: int | None = Field(
        None, ge=0, description="The version the change is based on: 409 when the rules changed meanwhile."
    )


class CypherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(
        min_length=1, max_length=MAX_CYPHER_LENGTH, description="One read-only Cypher statement."
    )
    params: dict[str, Any] | None = Field(None, description="Query parameters ($name).")
    limit: int | None = Field(None, ge=1, description="Row cap (default 1000, at most the server's cap).")
    timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False, description="Time limit in seconds.")

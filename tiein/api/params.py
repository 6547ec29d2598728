"""Request parameters shared by the routes: unknown query parameters refused, the list filters,
paging and the bundle options as dependencies (``async``: they run on the event loop, no thread
hop), readable operation ids, the rules-conflict answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import StringConstraints

from tiein.api.schemas import (
    AT_HELP,
    MAX_OFFSET,
    SEGMENT_HELP,
    Text,
)
from tiein.api.settings import MAX_ID_LENGTH
from tiein.graph.base import RulesConflict
from tiein.model import QueryContext
from tiein.service import (
    Filters,
)

if TYPE_CHECKING:
    pass


async def reject_unknown_query(request: Request) -> None:
    """422 naming every query parameter the operation does not declare (FastAPI would ignore
    them, so a typo such as ``instock=1`` silently did nothing)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if route is None or getattr(route, "response_class", None) is HTMLResponse:
        return  # pages opened in a browser keep working with tracking parameters (utm_*, ...)
    allowed = _QUERY_NAMES.get(id(route))
    if allowed is None:
        allowed = set()
        todo = [getattr(route, "dependant", None)]
        while todo:
            dep = todo.pop()
            if dep is None:
                continue
            allowed |= {p.alias for p in dep.query_params}
            todo += dep.dependencies
        _QUERY_NAMES[id(route)] = allowed
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (this operation takes: {known})",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )


_QUERY_NAMES: dict[int, set[str]] = {}
MAX_EXCLUDE = 100  # exclude values one request may give (each an id, or ids joined by ',')


def _conflict(exc: RulesConflict) -> JSONResponse:
    """409 ``rules_conflict``: the rules changed since the version the request was based on."""
    from tiein.api.errors import envelope

    return envelope(409, "rules_conflict", str(exc))


async def list_filters(
    in_stock: Annotated[
        bool, Query(description="Only products in stock (unknown stock counts as in stock).")
    ] = False,
    exclude: Annotated[
        list[Annotated[Text, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]] | None,
        Query(
            max_length=MAX_EXCLUDE,
            description="Product ids to leave out (repeat the parameter, or join ids with ',').",
        ),
    ] = None,
    category: Annotated[
        Text | None,
        Query(
            min_length=1, max_length=MAX_ID_LENGTH, description="Only this category (any level of the path)."
        ),
    ] = None,
    brand: Annotated[
        Text | None, Query(min_length=1, max_length=MAX_ID_LENGTH, description="Only this brand.")
    ] = None,
    min_price: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="Lowest price.")] = None,
    max_price: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="Highest price.")] = None,
    min_score: Annotated[
        float | None,
        Query(allow_inf_nan=False, description="Lowest score (similarity for search); pins stay."),
    ] = None,
) -> Filters:
    """The filters every list operation takes (an unpriced product is left out when a price
    bound is set)."""
    return Filters.make(
        in_stock=in_stock,
        exclude=exclude,
        category=category,
        brand=brand,
        min_price=min_price,
        max_price=max_price,
        min_score=min_score,
    )


async def query_context(
    at: Annotated[Text | None, Query(min_length=1, max_length=10, description=AT_HELP)] = None,
    segment: Annotated[Text | None, Query(min_length=1, max_length=100, description=SEGMENT_HELP)] = None,
) -> QueryContext | None:
    """The request's :class:`tiein.model.QueryContext` (``at``), None when it gives none (the
    year-round answer); a bad date is a 422 naming it."""
    return context_of(at, segment)


def context_of(at: str | None, segment: str | None = None) -> QueryContext | None:
    """``at`` (a date text, ``today`` or None) and ``segment`` (a name or None) as a
    QueryContext, None when neither is given."""
    from tiein.season import parse_at
    from tiein.segments import check_segment

    day, seg = parse_at(at), check_segment(segment)
    return None if day is None and seg is None else QueryContext(at=day, segment=seg)


async def paged_filters(
    filters: Annotated[Filters, Depends(list_filters)],
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (paging).")] = 0,
) -> Filters:
    """:func:`list_filters` and an ``offset``."""
    from dataclasses import replace

    return replace(filters, offset=offset)


def _operation_id(route: Any) -> str:
    """Readable operation ids: the route function's name (``related``, ``cart_addons``)."""
    return str(route.name)


async def bundle_options(
    scene: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=MAX_ID_LENGTH,
            description="Scene id or name whose role order to follow.",
        ),
    ] = None,
    size: Annotated[
        int | None,
        Query(ge=2, le=6, description="Bundle size, anchor included (default the shop's, 3)."),
    ] = None,
    budget: Annotated[
        float | None, Query(gt=0, allow_inf_nan=False, description="Most the bundle may cost.")
    ] = None,
    mix: Annotated[
        Text | None,
        Query(
            max_length=200,
            description="Sales roles of the add-ons in order, joined by ',' or '+' (hero,profit).",
        ),
    ] = None,
    discount: Annotated[
        float | None,
        Query(ge=0, lt=1, allow_inf_nan=False, description="Bundle discount (0.1 = 10 % off; default 0.1)."),
    ] = None,
    min_price_ratio: Annotated[
        float | None,
        Query(
            ge=0,
            le=100,
            allow_inf_nan=False,
            description="Price band: an add-on's lowest price as a share of the anchor's (default 0.3).",
        ),
    ] = None,
    max_price_ratio: Annotated[
        float | None,
        Query(
            ge=0,
            le=100,
            allow_inf_nan=False,
            description="Price band: an add-on's highest price as a share of the anchor's (default 0.8).",
        ),
    ] = None,
    charm_digit: Annotated[
        int | None,
        Query(
            ge=-1,
            le=9,
            description="Rounding: the last digit of the bundle price (default 8: 398; -1: whole tens).",
        ),
    ] = None,
    rounding_slack: Annotated[
        float | None,
        Query(
            ge=0,
            lt=1,
            allow_inf_nan=False,
            description="Rounding: how far below the discounted price it may go, as a share of the total (default 0.03).",
        ),
    ] = None,
    currency: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=8,
            description="Currency of the pitch: a symbol or ISO code (default the shop's, ¥).",
        ),
    ] = None,
) -> dict[str, Any]:
    """The bundle's own parameters as keywords of :func:`tiein.service.bundle_payload` (scene,
    size, budget, mix and the price rules of :data:`tiein.service.RULE_OPTIONS`); None: the shop's."""
    return {
        "scene": scene,
        "size": size,
        "budget": budget,
        "mix": mix,
        "discount": discount,
        "min_price_ratio": min_price_ratio,
        "max_price_ratio": max_price_ratio,
        "charm_digit": charm_digit,
        "rounding_slack": rounding_slack,
        "currency": currency,
    }

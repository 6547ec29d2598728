"""The merchant lists: ``GET /v1/pairings`` (搭配榜) and ``GET /v1/trending`` (品类热销榜)
(:mod:`tiein.lists`). One :class:`tiein.lists.Lists` per app keeps the bulk reads of the
answering generation, so a request answers from memory; ``related`` uses the same one to fill an
empty complement list (:func:`lists_of`)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tiein.api.schemas import PairingsResponse, Text, TrendingResponse, _errors
from tiein.api.settings import MAX_ID_LENGTH, Settings
from tiein.api.state import _state
from tiein.lists import DEFAULT_DAYS, DEFAULT_MIN_ORDERS, Lists
from tiein.lists.trending import MAX_DAYS
from tiein.service.types import PairingsPayload, TrendingPayload

_LOCK = threading.Lock()
CATEGORY_HELP = "Only this category (any level of the path); 404 when no product is in it."


def lists_of(request: Request) -> Lists:
    """The app's :class:`tiein.lists.Lists` over its home (made on first use)."""
    app_state = request.app.state
    with _LOCK:
        lists: Lists | None = getattr(app_state, "tiein_lists", None)
        if lists is None:
            lists = Lists(_state(request).settings.home)
            app_state.tiein_lists = lists
        return lists


def add_lists_routes(router: APIRouter, settings: Settings, auth: list[Any]) -> None:
    """Add the list routes to ``router`` (``auth``: the token dependency, or none)."""
    k_help = f"How many (1-{settings.max_k}; per category with per_category)."

    @router.get(
        "/pairings",
        response_model=PairingsResponse,
        responses=_errors(404),
        dependencies=auth,
        tags=["lists"],
    )
    def pairings(
        request: Request,
        category: Annotated[
            Text | None,
            Query(
                min_length=1,
                max_length=MAX_ID_LENGTH,
                description="Only pairs whose anchor is in this category.",
            ),
        ] = None,
        with_category: Annotated[
            Text | None,
            Query(
                min_length=1,
                max_length=MAX_ID_LENGTH,
                description="Only pairs whose item is in this category.",
            ),
        ] = None,
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
        min_orders: Annotated[
            int, Query(ge=1, le=1_000_000, description="Orders that held both products, at least.")
        ] = DEFAULT_MIN_ORDERS,
        per_category: Annotated[
            bool, Query(description="The top k of every anchor category instead of the top k overall.")
        ] = False,
        in_stock: Annotated[bool, Query(description="Only pairs whose two products are in stock.")] = False,
    ) -> PairingsPayload:
        """搭配榜: the shop's best complement pairs, ranked by the relation score among pairs
        bought together in at least ``min_orders`` orders (``n_ab``), each pair once, with a
        sayable explanation; ``note`` says why when the list is empty."""
        st = _state(request)
        return lists_of(request).pairings(
            st.store,
            category=category,
            with_category=with_category,
            k=k,
            min_orders=min_orders,
            per_category=per_category,
            in_stock=in_stock,
        )

    @router.get(
        "/trending",
        response_model=TrendingResponse,
        responses=_errors(404, 503),
        dependencies=auth,
        tags=["lists"],
    )
    def trending(
        request: Request,
        category: Annotated[
            Text | None, Query(min_length=1, max_length=MAX_ID_LENGTH, description=CATEGORY_HELP)
        ] = None,
        days: Annotated[
            int, Query(ge=1, le=MAX_DAYS, description="The window: this many days, against as many before.")
        ] = DEFAULT_DAYS,
        at: Annotated[
            dt.date | None,
            Query(description="The window's last day (YYYY-MM-DD) [default: the day of the last order]."),
        ] = None,
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
        min_orders: Annotated[
            int, Query(ge=1, le=1_000_000, description="Orders in the window a product needs, at least.")
        ] = DEFAULT_MIN_ORDERS,
        per_category: Annotated[
            bool, Query(description="The top k of every category instead of the top k overall.")
        ] = False,
        in_stock: Annotated[bool, Query(description="Only products in stock.")] = False,
    ) -> TrendingPayload:
        """品类热销榜: products with more orders in the last ``days`` days (up to ``at``) than in the
        ``days`` before, ranked by the growth shrunk towards 1 ((orders + 5) / (previous + 5)), so
        a product going from 1 to 3 orders does not top the list. 503 when the home kept no
        orders (a build without them)."""
        st = _state(request)
        return lists_of(request).trending(
            st.store,
            category=category,
            days=days,
            at=at,
            k=k,
            min_orders=min_orders,
            per_category=per_category,
            in_stock=in_stock,
        )

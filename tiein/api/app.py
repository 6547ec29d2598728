"""The FastAPI app: :func:`create_app` wires the state and the routes; every route answers with a
payload of :mod:`tiein.service` (validated against and documented by the response models of
:mod:`tiein.api.schemas`), and assembles none itself."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiein import __version__
from tiein.api.bodies import AddonsRequest, CypherRequest, EventsRequest
from tiein.api.errors import _install_error_handlers
from tiein.api.lineup_routes import add_lineup_routes
from tiein.api.lists_routes import add_lists_routes, lists_of
from tiein.api.page import neighbourhood, render_product_page
from tiein.api.params import (
    _operation_id,
    bundle_options,
    context_of,
    list_filters,
    paged_filters,
    query_context,
    reject_unknown_query,
)
from tiein.api.rules_routes import add_rules_routes
from tiein.api.schemas import (
    AddonsResponse,
    BundleResponse,
    CypherResponse,
    EventsResponse,
    HealthResponse,
    Product,
    ProductId,
    RelatedResponse,
    SceneDetail,
    ScenesResponse,
    SearchResponse,
    Text,
    _errors,
)
from tiein.api.settings import API_PREFIX, MAX_ID_LENGTH, MAX_QUERY_TEXT, TOKEN_COOKIE, Settings
from tiein.api.state import (
    FeedbackCache,
    Search,
    ShopRules,
    State,
    _state,
    _store,
    _token_ok,
    require_token,
)
from tiein.errors import ConfigError, InputError
from tiein.model import RELATION_KINDS, QueryContext
from tiein.service import (
    AddonsPayload,
    BundlePayload,
    CypherPayload,
    Filters,
    HealthPayload,
    RelatedPayload,
    SceneDetailPayload,
    ScenesPayload,
    SearchPayload,
    addons_payload,
    bundle_payload,
    cypher_payload,
    health_payload,
    product_payload,
    related_payload,
    scene_payload,
    scenes_payload,
    search_payload,
)

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore


def create_app(settings: Settings | None = None, *, store: GraphStore | None = None) -> FastAPI:
    """The API app for ``settings`` (default :meth:`Settings.from_env`).

    ``store``: an open store to serve instead of opening ``settings.store_url`` (the caller then
    owns it). Raises ConfigError for a bad store URL; an unreachable store is reported per request
    (503), so the server starts and recovers when the store comes back.
    """
    settings = settings or Settings.from_env()
    owns = store is None
    if store is None:
        store = open_api_store(settings)
    state = State(
        settings,
        store,
        Search(lambda: settings.index_dir),
        owns_store=owns,
        feedback=FeedbackCache(settings.home, settings.feedback_refresh_s),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if state.owns_store:
            state.store.close()

    app = FastAPI(
        title="tiein",
        version=__version__,
        summary="Product relations and bundles for cross-selling (关联销售 / 搭售).",
        description=(
            "Complements, substitutes, upsells and bundles from a product relation graph. "
            'Every error is `{"error": {"code", "message", "details"}}`. '
            "When the server has a token, send `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: tiein.api.pages, from local files (no CDN)
        redoc_url=None,
    )
    from tiein.cypher_worker import WorkerLimits

    state.cypher_worker = WorkerLimits(settings.cypher_memory_mb)
    app.state.tiein = state
    _install_error_handlers(app)
    from tiein.api.guard import BodyLimits, install_log_redaction

    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)
    install_log_redaction()  # no ?token= in the access log
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(_routes(settings))
    from tiein.api.pages import install_pages

    install_pages(app)  # the query page, /static/, offline /docs and /redoc, the product page's HTML 404

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app


def open_api_store(settings: Settings) -> GraphStore:
    """The store of ``settings``; a Neo4j store retries a failed read for ``neo4j_retry_s`` only,
    so a request to a down server answers 503 in about that time (the driver's default: 30 s)."""
    from tiein.graph import NEO4J_SCHEMES, open_store

    if settings.store_url.strip().lower().startswith(NEO4J_SCHEMES):
        from tiein.graph.neo4j_store import Neo4jStore

        if settings.snapshot:
            raise ConfigError("the in-memory snapshot serves the embedded store only; Neo4j is read directly")
        return Neo4jStore.from_url(
            settings.store_url.strip(), max_transaction_retry_time=settings.neo4j_retry_s
        )
    store = open_store(settings.store_url)
    if settings.snapshot is False:
        return store
    from tiein.graph.snapshot import SnapshotStore

    try:
        # follows the embedded store's generation: a rebuild is read in the background and served
        # once whole (no stall: requests meanwhile get the previous graph)
        return SnapshotStore(store, background=True)
    except BaseException:
        store.close()
        raise


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (what ``tiein serve`` runs in each worker)."""
    return create_app(Settings.from_env())


def _routes(settings: Settings) -> Any:
    """The /v1 routes; caps (k, row limits) come from ``settings`` so the OpenAPI schema states
    the real ones."""
    from fastapi import APIRouter

    router = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(reject_unknown_query)],
        generate_unique_id_function=_operation_id,
    )
    # auth only when there is a token, so the OpenAPI spec states the truth either way
    auth = [Depends(require_token)] if settings.token is not None else []
    k_help = f"How many (1-{settings.max_k})."
    shop_rules = ShopRules(settings.home)  # the bundle rules of HOME/shop.toml

    @router.get("/health", response_model=HealthResponse, responses=_errors(), tags=["meta"])
    def health(request: Request) -> HealthPayload:
        """The store answers, with its node / relationship counts and build meta (no auth)."""
        st = _state(request)
        return health_payload(st.store, search=st.search.available())

    @router.get(
        "/products/{product_id:path}/related",
        response_model=RelatedResponse,
        responses=_errors(404),
        dependencies=auth,
        tags=["products"],
    )
    async def related(
        request: Request,
        product_id: ProductId,
        filters: Annotated[Filters, Depends(paged_filters)],
        context: Annotated[QueryContext | None, Depends(query_context)],
        kind: Annotated[Literal[RELATION_KINDS], Query(description="Relation kind.")] = "complement",  # type: ignore[valid-type]
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
        feedback: bool = Query(
            False,
            description="Re-rank by the logged events' conversion (POST /v1/events, "
            "`tiein feedback ingest`). Rows gain `feedback_score` (the sampled rate they are "
            "sorted by) and `feedback`: {metric, impressions, successes (this pair), "
            "item_impressions, item_successes (the item for other anchors), item_factor, "
            "rate (posterior mean), draw}.",
        ),
    ) -> RelatedPayload:
        """Top-k related products of a kind, best first, with evidence and explanations; merchant
        rules apply (pins first, blocked items never); filters narrow the rows and ``offset``
        pages them; with ``feedback=true`` re-ranked by observed performance (the same answer
        for the same log). A product with no complements yet gets the trending items of its
        category (else of the shop) instead, flagged ``fallback: "trending"``."""
        st = _state(request)

        def answer() -> RelatedPayload:
            stats = st.feedback.stats() if feedback and st.feedback is not None else None
            return related_payload(
                st.store,
                product_id,
                kind,
                k,
                feedback=stats,
                max_k=settings.max_k,
                filters=filters,
                context=context,
                trending=lists_of(request),  # an empty complement list: trending items, flagged
            )

        return await st.call(answer)

    @router.get(
        "/products/{product_id:path}/bundle",
        response_model=BundleResponse,
        responses=_errors(404),
        dependencies=auth,
        tags=["bundles"],
    )
    async def bundle(
        request: Request,
        product_id: ProductId,
        options: Annotated[dict[str, Any], Depends(bundle_options)],
        filters: Annotated[Filters, Depends(list_filters)],
        context: Annotated[QueryContext | None, Depends(query_context)],
    ) -> BundlePayload:
        """A bundle for the anchor product: complements under the merchant's rules, following a
        scene's roles (the given one, else the anchor's own), a sayable bundle price and a pitch;
        merchant pins come first, blocked pairs never together; filters narrow the add-ons;
        ``reason`` says why when there is none."""
        st = _state(request)
        # HOME/shop.toml's rules; the parameters override them
        return await st.call(
            bundle_payload,
            st.store,
            product_id,
            rules=shop_rules(),
            filters=filters,
            context=context,
            **options,
        )

    @router.post(
        "/cart/addons",
        response_model=AddonsResponse,
        responses=_errors(400, 404),
        dependencies=auth,
        tags=["bundles"],
    )
    async def cart_addons(request: Request, body: Annotated[AddonsRequest, Body()]) -> AddonsPayload:
        """Complements of a whole cart; with a threshold, the items that reach it. Merchant rules
        apply; the body's filters narrow the suggestions; cart ids the graph does not hold are
        listed in ``unknown_ids`` and the rest is answered (404 only when none is known)."""
        filters = Filters.make(
            in_stock=body.in_stock,
            exclude=body.exclude,
            category=body.category,
            brand=body.brand,
            min_price=body.min_price,
            max_price=body.max_price,
            min_score=body.min_score,
            offset=body.offset,
        )
        st = _state(request)
        return await st.call(
            addons_payload,
            st.store,
            body.cart,
            rules=shop_rules(),
            threshold=body.threshold,
            k=body.k,
            max_k=settings.max_k,
            filters=filters,
            context=context_of(body.at, body.segment),
        )

    @router.post(
        "/events", response_model=EventsResponse, responses=_errors(400), dependencies=auth, tags=["feedback"]
    )
    def events(request: Request, body: Annotated[EventsRequest, Body()]) -> dict[str, Any]:
        """Log recommendation events (impressions, clicks, add-to-carts, purchases) for the feedback
        loop. All or nothing: one bad event rejects the request (422 naming ``events[i].field``);
        re-posting the same events adds nothing. Times without a zone are read in ``timezone``,
        default the shop's (as ``tiein feedback ingest`` reads files)."""
        from tiein.feedback import ingest_records
        from tiein.loaders.events import shop_timezone

        records = [e.model_dump(exclude_none=True) for e in body.events]
        home = _state(request).settings.home
        zone = shop_timezone(body.timezone, home)
        try:
            result = ingest_records(home, records, source="request body", timezone=zone)
        except InputError as exc:
            if exc.row is None:
                raise
            # name the event as the body does (0-based index, field); details keep row = index + 1
            err = InputError(
                f"events[{exc.row - 1}]" + (f".{exc.column}" if exc.column else "") + f": {exc.reason}"
            )
            err.row, err.column = exc.row, exc.column
            raise err from exc
        return {"received": result.received, "added": result.added, "duplicates": result.duplicates}

    @router.get(
        "/search", response_model=SearchResponse, responses=_errors(), dependencies=auth, tags=["products"]
    )
    def search(
        request: Request,
        q: Annotated[
            Text, Query(min_length=1, max_length=MAX_QUERY_TEXT, description="Text to search titles for.")
        ],
        filters: Annotated[Filters, Depends(paged_filters)],
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
    ) -> SearchPayload:
        """Products whose titles mean what ``q`` says (embeddings + FAISS; any language the
        model knows); filters narrow the hits (``min_score``: the similarity). 503 when the home
        has no index."""
        st = _state(request)
        return search_payload(st.store, st.search, q, k, max_k=settings.max_k, filters=filters)

    add_rules_routes(router, settings, auth)
    add_lineup_routes(router, settings, auth)
    add_lists_routes(router, settings, auth)

    @router.get(
        "/scenes", response_model=ScenesResponse, responses=_errors(), dependencies=auth, tags=["scenes"]
    )
    def scenes(request: Request) -> ScenesPayload:
        """Every scene with its roles in order."""
        return scenes_payload(_store(request))

    @router.get(
        "/scenes/{name}",
        response_model=SceneDetail,
        responses=_errors(404),
        dependencies=auth,
        tags=["scenes"],
    )
    def scene(
        request: Request,
        name: Annotated[
            Text, PathParam(min_length=1, max_length=MAX_ID_LENGTH, description="Scene id or name.")
        ],
    ) -> SceneDetailPayload:
        """One scene: its roles in order, each with its products."""
        return scene_payload(_store(request), name)

    @router.post(
        "/cypher",
        response_model=CypherResponse,
        responses=_errors(400, 403),
        dependencies=auth,
        tags=["analysts"],
    )
    def cypher(request: Request, body: Annotated[CypherRequest, Body()]) -> CypherPayload:
        """Run one read-only Cypher query (writes refused) with a row cap and a time limit; the
        answer says whether the cap truncated it."""
        st = _state(request)
        return cypher_payload(
            st.store,
            body.query,
            body.params,
            limit=body.limit,
            timeout_s=body.timeout_s,
            max_rows=settings.cypher_max_rows,
            max_timeout_s=settings.cypher_timeout_s,
            worker=st.cypher_worker,
        )

    @router.get(
        "/products/{product_id:path}/view",
        response_class=HTMLResponse,
        responses=_errors(404, html=True),
        tags=["analysts"],
    )
    def view(
        request: Request,
        product_id: ProductId,
        token: Annotated[
            str | None, Query(description="The API token (when the server has one), once: a cookie keeps it.")
        ] = None,
    ) -> HTMLResponse:
        """The analyst's page of a product's neighbourhood: complements, substitutes, upsells,
        same series and a bundle, with explanations and links to the neighbours' pages."""
        st = _state(request)
        expected = st.settings.token
        set_cookie = False
        if expected is not None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else request.cookies.get(TOKEN_COOKIE)
            if token is not None and _token_ok(expected, token):
                given, set_cookie = token, True
            if not _token_ok(expected, given):
                raise StarletteHTTPException(
                    401,
                    "missing or wrong token: open this page once with ?token=<token>",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if set_cookie and expected is not None:
            # the token leaves the URL (history, logs, Referer): kept in a cookie, then the same page without it
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            path = request.scope.get("raw_path", b"").decode("latin-1") or quote(request.url.path)
            target = path + ("?" + urlencode(rest) if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            redirect.set_cookie(TOKEN_COOKIE, expected, httponly=True, samesite="strict", path=API_PREFIX)
            return redirect  # type: ignore[return-value]
        page = render_product_page(neighbourhood(st, product_id))
        return HTMLResponse(page)

    # Ids may hold "/" (SKUs such as AB/12, sent as AB/12 or AB%2F12): the product routes take the
    # rest of the path, so the plain route comes after the routes with a suffix (/related, /bundle,
    # /view); an id that itself ends in one of those suffixes is read as that route.
    @router.get(
        "/products/{product_id:path}",
        response_model=Product,
        responses=_errors(404),
        dependencies=auth,
        tags=["products"],
    )
    async def product(request: Request, product_id: ProductId) -> dict[str, Any]:
        """One product's fields."""
        st = _state(request)
        return await st.call(product_payload, st.store, product_id)

    return router

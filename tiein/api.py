"""The HTTP API (``tiein serve``): FastAPI over one graph store, OpenAPI docs at ``/docs``.

    from tiein.api import Settings, create_app
    app = create_app(Settings(home=Path("tiein-data")))     # or Settings.from_env()

Every answer comes from :mod:`tiein.service` (the code path the CLI and batch export share), so
the JSON here is the same as ``tiein related --json`` / ``tiein bundle --json``. Endpoints live
under ``/v1``:

    GET  /v1/health                         store reachable? graph counts, build meta, version
    GET  /v1/products/{id}                  one product
    GET  /v1/products/{id}/related          ?kind=complement|substitute|upsell|series&k=10
    GET  /v1/products/{id}/bundle           ?scene=&size=3&budget=&mix=hero,profit
    GET  /v1/products/{id}/view             the analyst's HTML page of the product's neighbourhood
    POST /v1/cart/addons                    {"cart": [...], "threshold": 200, "k": 5}
    GET  /v1/search                         ?q=text&k=10 (title embeddings + FAISS)
    GET  /v1/scenes, /v1/scenes/{name}
    POST /v1/cypher                         read-only analyst Cypher (row cap, time limit)

One error envelope for every error: ``{"error": {"code", "message", "details"}}``. The mapping
from the project's error tree (tiein/errors.py) to HTTP is :data:`ERROR_MAP`, the only place it is
made; request validation errors are reshaped into the same envelope (422, naming each parameter);
anything unexpected is a 500 envelope with an ``error_id`` that is logged server-side with the
traceback (the body never holds one).

Concurrency. Endpoints are plain functions run in the server's thread pool. The store is opened
once per process; the embedded store serialises calls with its own lock (one LadybugDB connection;
a call takes 0.3-3 ms) and re-reads its generation pointer on every call, so a rebuild by
``tiein build`` in another process is picked up without a restart. The Neo4j store uses the
driver's thread-safe pool. The encoder and the FAISS index for ``/v1/search`` load lazily, once;
the index is reloaded when its manifest changes (a rebuild).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiein import __version__
from tiein.errors import (
    ConfigError,
    CypherError,
    InputError,
    MissingDependency,
    NotFound,
    ProductNotFound,
    ServiceUnavailable,
    StorageFull,
    StoreError,
    StoreUnavailable,
    TieinError,
    WriteRefused,
)
from tiein.model import RELATION_KINDS
from tiein.service import MAX_K

if TYPE_CHECKING:
    from tiein.embeddings import Encoder, ProductIndex
    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore

log = logging.getLogger("tiein.api")

API_PREFIX = "/v1"
TOKEN_COOKIE = "tiein_token"
MAX_ID_LENGTH = 512
MAX_QUERY_TEXT = 1000
MAX_CART = 100
MAX_CYPHER_LENGTH = 100_000



# ----------------------------------------------------------------------------- settings
def _env_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    """The server's settings, declared once: each field names its environment variable and help
    (``tiein serve`` options override the environment; :meth:`to_env` hands them to workers)."""

    home: Path = field(
        default=Path("tiein-data"),
        metadata={"env": "TIEIN_HOME", "help": "home directory (graph, FAISS index)"},
    )
    store: str | None = field(
        default=None,
        metadata={"env": "TIEIN_STORE", "help": "graph store URL or directory (default HOME/graph)"},
    )
    token: str | None = field(
        default=None,
        metadata={"env": "TIEIN_API_TOKEN", "help": "bearer token every request must carry (off when unset)"},
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata={"env": "TIEIN_API_CORS", "help": "origins allowed by CORS, comma-separated"},
    )
    max_k: int = field(
        default=100,
        metadata={"env": "TIEIN_API_MAX_K", "help": f"largest k of related / add-ons / search (<= {MAX_K})"},
    )
    cypher_max_rows: int = field(
        default=10_000,
        metadata={"env": "TIEIN_API_CYPHER_MAX_ROWS", "help": "largest row cap a Cypher request may ask"},
    )
    cypher_timeout_s: float = field(
        default=10.0,
        metadata={"env": "TIEIN_API_CYPHER_TIMEOUT", "help": "longest time limit (s) of a Cypher request"},
    )
    cypher_memory_mb: int = field(
        default=2048,
        metadata={"env": "TIEIN_API_CYPHER_MEMORY", "help": "memory (MB of address space) of the worker process "
                  "that runs one Cypher request on the embedded store"},
    )
    max_body_bytes: int = field(
        default=1024 * 1024,
        metadata={"env": "TIEIN_API_MAX_BODY", "help": "largest request body in bytes (413 above it)"},
    )
    neo4j_retry_s: float = field(
        default=1.0,
        metadata={"env": "TIEIN_API_NEO4J_RETRY", "help": "how long a Neo4j read is retried before a 503 (s)"},
    )
    feedback_refresh_s: float = field(
        default=10.0,
        metadata={"env": "TIEIN_API_FEEDBACK_REFRESH", "help": "feedback=true: how stale the feedback statistics "
                  "may get (s): after new events they are recomputed in the background at most this often, "
                  "requests meanwhile use the previous ones; 0: recompute before the next request"},
    )
    snapshot: bool | None = field(
        default=None,
        metadata={"env": "TIEIN_API_SNAPSHOT", "help": "serve reads from an in-memory snapshot of the embedded "
                  "graph (tiein.graph.snapshot: identical answers, several times faster; reloaded after a rebuild); "
                  "default: on for the embedded store, off (not possible) for Neo4j"},
    )

    def __post_init__(self) -> None:
        problems = []
        if self.token is not None and not self.token.strip():
            problems.append("the API token is empty")
        if not 1 <= self.max_k <= MAX_K:
            problems.append(f"max_k must be from 1 to {MAX_K}, got {self.max_k}")
        if self.cypher_max_rows < 1:
            problems.append(f"cypher_max_rows must be >= 1, got {self.cypher_max_rows}")
        if not self.cypher_timeout_s > 0:
            problems.append(f"cypher_timeout_s must be > 0, got {self.cypher_timeout_s}")
        if self.cypher_memory_mb < 512:
            problems.append(f"cypher_memory_mb must be >= 512, got {self.cypher_memory_mb}")
        if self.max_body_bytes < 1024:
            problems.append(f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        if not self.neo4j_retry_s >= 0:
            problems.append(f"neo4j_retry_s must be >= 0, got {self.neo4j_retry_s}")
        if not self.feedback_refresh_s >= 0:
            problems.append(f"feedback_refresh_s must be >= 0, got {self.feedback_refresh_s}")
        if problems:
            raise ConfigError("bad API settings: " + "; ".join(problems))

    @property
    def store_url(self) -> str:
        """The store the server opens: ``store`` or the home's embedded graph."""
        return self.store or str(self.home / "graph")

    @property
    def index_dir(self) -> Path:
        """The FAISS index of the home's answering generation (read each time: a build or a
        rollback in another process switches it)."""
        from tiein.home import index_dir

        return index_dir(self.home)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``); non-None ``overrides`` win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _parse_setting(f.name, raw)
            except ValueError as exc:
                raise ConfigError(f"environment variable {f.metadata['env']}={raw!r}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (what :meth:`from_env` reads back)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out


def _parse_setting(name: str, raw: str) -> Any:
    if name == "home":
        return Path(raw)
    if name == "cors_origins":
        return _env_list(raw)
    if name in ("max_k", "cypher_max_rows", "cypher_memory_mb", "max_body_bytes"):
        return int(raw)
    if name in ("cypher_timeout_s", "neo4j_retry_s", "feedback_refresh_s"):
        return float(raw)
    if name == "snapshot":
        flag = raw.strip().lower()
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError("expected true or false")
        return flag in ("1", "true", "yes", "on")
    return raw


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------- errors
# The one mapping of the error tree to HTTP: (class, status, code); the first match wins, so
# subclasses come before their bases. Bad parameters (ConfigError, InputError) are 422 here.
ERROR_MAP: tuple[tuple[type[TieinError], int, str], ...] = (
    (ProductNotFound, 404, "product_not_found"),
    (NotFound, 404, "not_found"),
    (WriteRefused, 403, "write_refused"),
    (CypherError, 400, "invalid_query"),
    (InputError, 422, "invalid_input"),
    (ConfigError, 422, "invalid_parameter"),
    (StoreUnavailable, 503, "store_unavailable"),
    (StorageFull, 507, "storage_full"),
    (ServiceUnavailable, 503, "unavailable"),
    (StoreError, 500, "store_error"),
    (MissingDependency, 500, "missing_dependency"),
    (TieinError, 500, "internal_error"),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
}


def error_status(exc: TieinError) -> tuple[int, str]:
    """(HTTP status, stable error code) of a tiein error."""
    for cls, status, code in ERROR_MAP:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"  # pragma: no cover - TieinError is in the map


def envelope(status: int, code: str, message: str, details: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The error envelope every error response has."""
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _error_details(exc: TieinError) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if isinstance(exc, ProductNotFound):
        details["product_id"] = exc.product_id
    if isinstance(exc, InputError):
        details.update({k: v for k, v in (("file", exc.file), ("row", exc.row), ("column", exc.column))
                        if v is not None})
    return details


def _where(loc: tuple[Any, ...]) -> tuple[str, str]:
    """(location, parameter) of a validation error's ``loc``: ("query", "k"), ("body", "cart[0]")."""
    where = str(loc[0]) if loc else "request"
    name = ""
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return where, name or where


def _validation_envelope(exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        where, name = _where(tuple(err.get("loc") or ()))
        errors.append({"in": where, "parameter": name, "message": str(err.get("msg")), "type": str(err.get("type"))})
    summary = "; ".join(f"{e['in']} parameter {e['parameter']!r}: {e['message']}" for e in errors)
    return envelope(422, "invalid_parameter", f"invalid request: {summary}", {"errors": errors})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TieinError)
    async def tiein_error(request: Request, exc: TieinError) -> JSONResponse:
        status, code = error_status(exc)
        details = _error_details(exc)
        if status >= 500 and status != 503:
            details["error_id"] = uuid.uuid4().hex[:12]
            log.error("%s %s failed [%s]: %s", request.method, request.url.path, details["error_id"], exc,
                      exc_info=exc)
        return envelope(status, code, str(exc), details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_envelope(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        return envelope(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("%s %s failed [%s]", request.method, request.url.path, error_id, exc_info=exc)
        return envelope(500, "internal_error", f"internal server error (logged as {error_id})",
                        {"error_id": error_id})


# ----------------------------------------------------------------------------- schema
def _valid_text(value: str) -> str:
    """Text that can reach a store: no lone surrogates (they cannot be encoded as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


Text = Annotated[str, AfterValidator(_valid_text)]


ProductId = Annotated[Text, PathParam(min_length=1, max_length=MAX_ID_LENGTH, description="Product id.")]


class Open(BaseModel):
    """Answers may gain fields (additive changes only), so extra fields pass through."""

    model_config = ConfigDict(extra="allow")


class Product(Open):
    product_id: str = Field(description="The shop's product id (StockCode, SKU, ASIN).")
    title: str | None = Field(None, description="Product title.")
    category: str | None = Field(None, description="Leaf category name.")
    category_path: str | None = Field(None, description="Full category path joined with ' > '.")
    brand: str | None = Field(None, description="Brand.")
    price: float | None = Field(None, description="Price in the shop's currency (null = unknown).")
    stock: int | None = Field(None, description="Units in stock (null = unknown, treated as in stock).")


class RelatedItem(Product):
    kind: str = Field(description="Relation kind: complement, substitute, upsell or series.")
    score: float = Field(description="Relation score; rows are sorted by it, then product_id.")
    n_ab: int | None = Field(None, description="Orders holding both products.")
    lift: float | None = Field(None, description="Co-purchase lift.")
    confidence: float | None = Field(None, description="P(this product | the anchor).")
    co_view: int | None = Field(None, description="Sessions viewing both.")
    similarity: float | None = Field(None, description="Title embedding cosine similarity.")
    category_relation: str | None = Field(None, description="same | sibling | different | unknown.")
    price_ratio: float | None = Field(None, description="price(this) / price(anchor).")
    evidence: dict[str, Any] = Field(description="Every number behind the decision.")
    explanation_zh: str = Field(description="The evidence as one sentence in Chinese.")
    explanation_en: str = Field(description="The evidence as one sentence in English.")


class RelatedResponse(Open):
    product: Product
    kind: str
    related: list[RelatedItem]


class Bilingual(Open):
    zh: str | None = None
    en: str | None = None


class Reason(Open):
    code: str = Field(description="Stable reason code (see tiein.bundles.REASONS).")
    zh: str
    en: str


class BundleItem(Open):
    product: Product
    role: str | None = Field(None, description="The slot this item fills (scene role or category).")
    relation: str = Field(description="'complement of anchor' or 'complement of <product_id>'.")
    score: float
    evidence: dict[str, Any]
    explanation: Bilingual


class BundleResponse(Open):
    anchor: Product
    items: list[BundleItem] = Field(description="Add-ons in bundle order (empty when reason is set).")
    total: float | None = Field(None, description="Anchor + add-ons at full price.")
    suggested_price: float | None = Field(None, description="A sayable bundle price after the discount.")
    saving: float | None = None
    discount: float
    pitch: Bilingual
    budget: float | None = None
    reason: Reason | None = Field(None, description="Why there is no bundle (null when there is one).")
    skipped: dict[str, int] = Field(description="Candidates passed over, by rule.")
    scene: dict[str, Any] | None = Field(None, description="The scene whose roles were followed ({scene_id, name}).")
    skipped_roles: list[str] = Field(default_factory=list, description="Scene roles no item could fill.")
    mix: list[str] | None = Field(None, description="The sales roles asked for, in order.")


class AddonItem(Open):
    product: Product
    score: float
    relation: str
    sources: list[str] = Field(description="Cart items this product complements.")
    evidence: dict[str, Any]
    explanation: Bilingual
    overspend: float | None = Field(None, description="Top-ups: new total - threshold.")
    new_total: float | None = Field(None, description="Top-ups: the cart total with this item.")


class AddonsResponse(Open):
    cart: list[Product]
    total: float | None
    items: list[AddonItem]
    reason: Reason | None = None
    threshold: float | None = None
    gap: float | None = Field(None, description="threshold - total (0 when reached).")
    top_ups: list[AddonItem]
    top_up_reason: Reason | None = None
    skipped: dict[str, int]


class AddonsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cart: list[Annotated[Text, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(
        min_length=1, max_length=MAX_CART, description="Product ids in the cart."
    )
    threshold: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Free-shipping threshold: also suggest top-ups reaching it."
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many add-ons (and top-ups).")


MAX_EVENTS = 10_000  # events one POST /v1/events may carry


class EventIn(BaseModel):
    """One recommendation event (the fields of an event file, tiein.feedback.EVENTS). Event
    types and kinds are checked by the ingest (case and ``-``/space are folded: ``Add-to-cart``)."""

    model_config = ConfigDict(extra="forbid")

    event_id: Text | None = Field(None, max_length=MAX_ID_LENGTH,
                                  description="The app's id of the event: re-posting it adds nothing. Without "
                                  "one, an event identical in every field counts once.")
    ts: Text = Field(min_length=1, max_length=64, description="When, ISO 8601 (naive times are UTC).")
    user_id: Text = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The shopper (A/B arms hash it).")
    anchor_id: Text = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The product the list was for.")
    item_id: Text = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The recommended product.")
    kind: Text = Field(min_length=1, max_length=32, description="complement | substitute | upsell | series | "
                       "next | bundle | addon.")
    event: Text = Field(min_length=1, max_length=32, description="impression | click | add_to_cart | purchase.")
    surface: Text | None = Field(None, max_length=64, description="page | live | service | … (free).")
    experiment: Text | None = Field(None, max_length=MAX_ID_LENGTH, description="Experiment id.")
    variant: Text | None = Field(None, max_length=MAX_ID_LENGTH, description="The variant the shopper saw.")
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="Order amount (purchases).")
    order_id: Text | None = Field(None, max_length=MAX_ID_LENGTH,
                                  description="The order a purchase belongs to (its value counts once).")


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS,
                                  description=f"1 to {MAX_EVENTS:,} events, in any order.")


class EventsResponse(Open):
    received: int = Field(description="Events in the request.")
    added: int = Field(description="Events added to the log.")
    duplicates: int = Field(description="Events skipped: already logged, or repeated in the request.")


class SceneSummary(Open):
    scene_id: str
    name: str | None
    source: str | None = Field(description="'user' (a scenes file) or 'discovered'.")
    members: int
    roles: list[str | None] = Field(description="Role names in scene order.")


class ScenesResponse(Open):
    scenes: list[SceneSummary]


class SceneProduct(Product):
    weight: float | None = None


class SceneRole(Open):
    role: str | None
    weight: float | None
    products: list[SceneProduct]


class SceneDetail(Open):
    scene_id: str
    name: str | None
    source: str | None
    members: int
    roles: list[SceneRole]


class SearchHit(Product):
    similarity: float = Field(description="Cosine similarity of the query and the product's title.")


class SearchResponse(Open):
    query: str
    model: str = Field(description="The embedding model of the index.")
    results: list[SearchHit]


class GraphStats(Open):
    nodes: dict[str, int]
    relationships: dict[str, int]
    meta: dict[str, Any] = Field(description="How the graph was built (source, time, model, ...).")


class HealthResponse(Open):
    status: Literal["ok"]
    version: str
    store: str = Field(description="Store kind: embedded or neo4j.")
    graph: GraphStats
    search: bool = Field(description="Whether /v1/search has an index to search.")
    snapshot: bool = Field(description="Whether reads come from an in-memory snapshot of the embedded store.")


class CypherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=MAX_CYPHER_LENGTH, description="One read-only Cypher statement.")
    params: dict[str, Any] | None = Field(None, description="Query parameters ($name).")
    limit: int | None = Field(None, ge=1, description="Row cap (default 1000, at most the server's cap).")
    timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False, description="Time limit in seconds.")


class CypherResponse(Open):
    columns: list[str]
    rows: list[Any]
    truncated: bool = Field(description="True when the row cap cut the result.")
    elapsed_ms: float | None = None


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. product_not_found, invalid_parameter.")
    message: str = Field(description="What went wrong, naming the id or parameter.")
    details: dict[str, Any] = Field(description="Machine-readable details (product_id, errors, error_id).")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def _errors(*statuses: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error responses an operation can give: ``statuses`` plus the ones
    every operation can give. ``html``: the operation answers HTML, its errors stay JSON."""
    text = {
        400: "A malformed request body, or invalid Cypher",
        401: "Missing or wrong bearer token (only when the server has a token)",
        403: "The query tried to write",
        404: "Unknown product or scene",
        422: "A bad parameter (named in the message and in details.errors)",
        500: "Unexpected error (logged with details.error_id)",
        503: "The store cannot be reached, or the feature is unavailable here",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for s in (*statuses, 401, 422, 500, 503):
        if html:
            ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
            out[s] = {"description": text[s], "content": {"application/json": {"schema": ref}}}
        else:
            out[s] = {"model": ErrorEnvelope, "description": text[s]}
    return out


# ----------------------------------------------------------------------------- state
class Search:
    """Text -> FAISS -> product ids: the index of ``index_dir`` (reloaded when its manifest
    changes) and the encoder its manifest names (loaded once)."""

    def __init__(self, locate: Callable[[], Path], threads: int = 1) -> None:
        self.locate = locate
        self.threads = threads
        self._lock = threading.Lock()
        self._index: ProductIndex | None = None
        self._stamp: tuple[str, int] | None = None

        self._encoders: dict[str, Encoder] = {}

    @property
    def index_dir(self) -> Path:
        return self.locate()

    def available(self) -> bool:
        try:
            return (self.index_dir / "manifest.json").is_file()
        except StoreError:
            return False

    def _current(self) -> ProductIndex:
        try:
            index_dir = self.index_dir
            stamp = (str(index_dir), (index_dir / "manifest.json").stat().st_mtime_ns)
        except (OSError, StoreError) as exc:
            raise ServiceUnavailable(
                "search is unavailable: no embedding index in this home "
                "(build the graph with embeddings: `tiein build ...` without --no-embeddings)"
            ) from exc
        if self._index is None or stamp != self._stamp:
            from tiein.embeddings import ProductIndex

            try:
                self._index = ProductIndex.load(index_dir)
            except (InputError, ConfigError, MissingDependency) as exc:
                raise ServiceUnavailable(f"search is unavailable: {exc}") from exc
            self._stamp = stamp
        return self._index

    def search(self, text: str, k: int) -> tuple[str, list[tuple[str, float]]]:
        """(model name, [(product_id, cosine)]) of the ``k`` titles closest to ``text``."""
        with self._lock:  # one encoder pass at a time: the model is not shared across threads
            index = self._current()
            encoder = self._encoders.get(index.model)
            if encoder is None:
                from tiein.embeddings import load_encoder

                try:
                    encoder = load_encoder(index.model, threads=self.threads)
                except (ConfigError, MissingDependency) as exc:
                    raise ServiceUnavailable(f"search is unavailable: {exc}") from exc
                self._encoders[index.model] = encoder
            vector = encoder.encode([text])
            return index.model, index.search(vector, k)[0]


class FeedbackCache:
    """The feedback statistics of the home's event log (tiein.feedback.load_stats) for
    ``related?feedback=true``. The log is append-only, so its set of part files is its version.

    ``refresh_s`` = 0: a request after an ingest (through this API or ``tiein feedback ingest``)
    recomputes them first and sees the new events. ``refresh_s`` > 0 (the server's default): the
    log is looked at most every ``refresh_s`` seconds and a new version is computed in a background
    thread while requests keep the previous statistics, so no request waits for it (with a million
    events, computing and indexing them takes ~3 s on 2 cores). Only the very first request
    computes them in line."""

    def __init__(self, home: Path, refresh_s: float = 0.0) -> None:
        self.home = home
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._version: tuple[str, ...] | None = None
        self._stats: FeedbackStats | None = None
        self._checked = 0.0
        self._worker: threading.Thread | None = None

    def _compute(self) -> FeedbackStats:
        from tiein.feedback import load_stats

        return load_stats(self.home).warm()

    def _refresh(self, version: tuple[str, ...]) -> None:
        try:
            stats = self._compute()
        except Exception:  # the previous stats stay; the next check tries again
            log.exception("feedback statistics refresh failed")
            with self._lock:
                self._worker = None
            return
        with self._lock:
            self._stats, self._version, self._worker = stats, version, None

    def stats(self) -> FeedbackStats:
        with self._lock:
            now = time.monotonic()
            if self._stats is not None and self.refresh_s > 0 and now - self._checked < self.refresh_s:
                return self._stats
            self._checked = now
            from tiein.feedback import log_version

            version = log_version(self.home)
            if self._stats is not None and version == self._version:
                return self._stats
            if self._stats is not None and self.refresh_s > 0:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._refresh, args=(version,), daemon=True,
                                                    name="tiein-feedback-refresh")  # fmt: skip
                    self._worker.start()
                return self._stats
            self._stats, self._version = self._compute(), version
            return self._stats

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background refresh in progress (tests, shutdown)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)


@dataclass
class State:
    """What one server process holds: its settings, the store (opened once), search and the
    feedback statistics."""

    settings: Settings
    store: GraphStore
    search: Search
    owns_store: bool = True
    feedback: FeedbackCache | None = None
    cypher_worker: Any = None  # tiein.cypher_worker.WorkerLimits: one per server, its cap holds across requests


def _state(request: Request) -> State:
    state: State = request.app.state.tiein
    return state


def _store(request: Request) -> GraphStore:
    return _state(request).store


# ----------------------------------------------------------------------------- auth
bearer = HTTPBearer(auto_error=False, description="Bearer token (only when the server has one).")


def _token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 unless the request carries the server's bearer token (no-op when auth is off)."""
    expected = _state(request).settings.token
    if expected is None:
        return
    if not _token_ok(expected, credentials.credentials if credentials else None):
        raise StarletteHTTPException(
            401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )


# ----------------------------------------------------------------------------- app
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
    state = State(settings, store, Search(lambda: settings.index_dir), owns_store=owns,
                  feedback=FeedbackCache(settings.home, settings.feedback_refresh_s))

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
            "Every error is `{\"error\": {\"code\", \"message\", \"details\"}}`. "
            "When the server has a token, send `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
    )
    from tiein.cypher_worker import WorkerLimits

    state.cypher_worker = WorkerLimits(settings.cypher_memory_mb)
    app.state.tiein = state
    _install_error_handlers(app)
    from tiein.api_guard import BodyLimits, install_log_redaction

    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
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
        return Neo4jStore.from_url(settings.store_url.strip(), max_transaction_retry_time=settings.neo4j_retry_s)
    store = open_store(settings.store_url)
    if settings.snapshot is False:
        return store
    from tiein.graph.snapshot import SnapshotStore

    try:
        return SnapshotStore(store)  # follows the embedded store's generation: a rebuild is served
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

    router = APIRouter(prefix=API_PREFIX)
    # auth only when there is a token, so the OpenAPI spec states the truth either way
    auth = [Depends(require_token)] if settings.token is not None else []
    k_help = f"How many (1-{settings.max_k})."

    @router.get("/health", response_model=HealthResponse, responses=_errors(), tags=["meta"])
    def health(request: Request) -> dict[str, Any]:
        """The store answers, with its node / relationship counts and build meta (no auth)."""
        st = _state(request)
        snapshot = st.store.name == "snapshot"  # the embedded store, read from memory
        return {
            "status": "ok",
            "version": __version__,
            "store": "embedded" if snapshot else st.store.name,
            "snapshot": snapshot,
            "graph": st.store.stats(),
            "search": st.search.available(),
        }

    @router.get("/products/{product_id:path}/related", response_model=RelatedResponse, responses=_errors(404),
                dependencies=auth, tags=["products"])
    def related(
        request: Request,
        product_id: ProductId,
        kind: Annotated[Literal[RELATION_KINDS], Query(description="Relation kind.")] = "complement",  # type: ignore[valid-type]
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
        feedback: bool = Query(False, description="Re-rank by the logged events' conversion (POST /v1/events, "
                               "`tiein feedback ingest`). Rows gain `feedback_score` (the sampled rate they are "
                               "sorted by) and `feedback`: {metric, impressions, successes (this pair), "
                               "item_impressions, item_successes (the item for other anchors), item_factor, "
                               "rate (posterior mean), draw}."),
    ) -> dict[str, Any]:
        """Top-k related products of a kind, best first, with evidence and explanations; with
        ``feedback=true`` re-ranked by observed performance (the same answer for the same log)."""
        from tiein.service import related_payload

        st = _state(request)
        stats = st.feedback.stats() if feedback and st.feedback is not None else None
        return related_payload(st.store, product_id, kind, k, feedback=stats)

    @router.get("/products/{product_id:path}/bundle", response_model=BundleResponse, responses=_errors(404),
                dependencies=auth, tags=["bundles"])
    def bundle(
        request: Request,
        product_id: ProductId,
        scene: Annotated[Text | None, Query(min_length=1, max_length=MAX_ID_LENGTH,
                                            description="Scene id or name whose role order to follow.")] = None,
        size: Annotated[int, Query(ge=2, le=6, description="Bundle size, anchor included.")] = 3,
        budget: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description="Most the bundle may cost.")] = None,
        mix: Annotated[Text | None, Query(max_length=200, description="Sales roles of the add-ons in order, "
                                          "comma-separated (hero,profit).")] = None,
        discount: Annotated[float | None, Query(ge=0, lt=1, allow_inf_nan=False,
                                                description="Bundle discount (0.1 = 10 % off; default 0.1).")] = None,
    ) -> dict[str, Any]:
        """A bundle for the anchor product: complements under the merchant's rules, following a
        scene's roles (the given one, else the anchor's own), a sayable bundle price and a pitch;
        ``reason`` says why when there is none."""
        return _bundle(_state(request), product_id, scene=scene, size=size, budget=budget, mix=mix,
                       discount=discount)

    @router.post("/cart/addons", response_model=AddonsResponse, responses=_errors(400, 404), dependencies=auth,
                 tags=["bundles"])
    def cart_addons(request: Request, body: Annotated[AddonsRequest, Body()]) -> dict[str, Any]:
        """Complements of a whole cart; with a threshold, the items that reach it."""
        from tiein.service import addons_payload

        if body.k > settings.max_k:
            raise ConfigError(f"k must be from 1 to {settings.max_k}, got {body.k}")
        return addons_payload(_store(request), body.cart, threshold=body.threshold, k=body.k)

    @router.post("/events", response_model=EventsResponse, responses=_errors(400), dependencies=auth,
                 tags=["feedback"])
    def events(request: Request, body: Annotated[EventsRequest, Body()]) -> dict[str, Any]:
        """Log recommendation events (impressions, clicks, add-to-carts, purchases) for the feedback
        loop. All or nothing: one bad event rejects the request (422 naming ``events[i].field``);
        re-posting the same events adds nothing."""
        from tiein.feedback import ingest_records

        records = [e.model_dump(exclude_none=True) for e in body.events]
        try:
            result = ingest_records(_state(request).settings.home, records, source="request body")
        except InputError as exc:
            if exc.row is None:
                raise
            # name the event as the body does (0-based index, field); details keep row = index + 1
            err = InputError(f"events[{exc.row - 1}]" + (f".{exc.column}" if exc.column else "") + f": {exc.reason}")
            err.row, err.column = exc.row, exc.column
            raise err from exc
        return {"received": result.received, "added": result.added, "duplicates": result.duplicates}

    @router.get("/search", response_model=SearchResponse, responses=_errors(), dependencies=auth,
                tags=["products"])
    def search(
        request: Request,
        q: Annotated[Text, Query(min_length=1, max_length=MAX_QUERY_TEXT, description="Text to search titles for.")],
        k: int = Query(10, ge=1, le=settings.max_k, description=k_help),
    ) -> dict[str, Any]:
        """Products whose titles mean what ``q`` says (embeddings + FAISS; any language the
        model knows). 503 when the home has no index."""
        st = _state(request)
        if not q.strip():
            raise ConfigError("query parameter 'q' is blank")
        model, hits = st.search.search(q, k)
        results = []
        for pid, sim in hits:
            try:
                results.append({**st.store.product(pid), "similarity": sim})
            except ProductNotFound:  # the index is older than the graph: skip what left it
                continue
        return {"query": q, "model": model, "results": results}

    @router.get("/scenes", response_model=ScenesResponse, responses=_errors(), dependencies=auth, tags=["scenes"])
    def scenes(request: Request) -> dict[str, Any]:
        """Every scene with its roles in order."""
        return {"scenes": _store(request).scenes()}

    @router.get("/scenes/{name}", response_model=SceneDetail, responses=_errors(404), dependencies=auth,
                tags=["scenes"])
    def scene(
        request: Request,
        name: Annotated[Text, PathParam(min_length=1, max_length=MAX_ID_LENGTH, description="Scene id or name.")],
    ) -> dict[str, Any]:
        """One scene: its roles in order, each with its products."""
        return _store(request).scene(name)

    @router.post("/cypher", response_model=CypherResponse, responses=_errors(400, 403), dependencies=auth,
                 tags=["analysts"])
    def cypher(request: Request, body: Annotated[CypherRequest, Body()]) -> dict[str, Any]:
        """Run one read-only Cypher query (writes refused) with a row cap and a time limit; the
        answer says whether the cap truncated it."""
        limit = body.limit if body.limit is not None else min(1000, settings.cypher_max_rows)
        if limit > settings.cypher_max_rows:
            raise ConfigError(f"limit must be at most {settings.cypher_max_rows}, got {limit}")
        timeout = body.timeout_s if body.timeout_s is not None else settings.cypher_timeout_s
        if timeout > settings.cypher_timeout_s:
            raise ConfigError(f"timeout_s must be at most {settings.cypher_timeout_s:g}, got {timeout:g}")
        return _run_cypher(_store(request), body.query, body.params, limit, timeout, _state(request).cypher_worker)

    @router.get("/products/{product_id:path}/view", response_class=HTMLResponse, responses=_errors(404, html=True),
                tags=["analysts"])
    def view(
        request: Request,
        product_id: ProductId,
        token: Annotated[str | None, Query(description="The API token (when the server has one), once: "
                                           "a cookie keeps it.")] = None,
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
                    401, "missing or wrong token: open this page once with ?token=<token>",
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
    @router.get("/products/{product_id:path}", response_model=Product, responses=_errors(404), dependencies=auth,
                tags=["products"])
    def product(request: Request, product_id: ProductId) -> dict[str, Any]:
        """One product's fields."""
        return _store(request).product(product_id)

    return router


def _bundle(st: State, product_id: str, *, scene: str | None, size: int, budget: float | None,
            mix: str | None, discount: float | None) -> dict[str, Any]:
    from tiein.service import bundle_payload

    roles: tuple[str, ...] | None = None
    if mix is not None:
        # "hero,profit", "hero+profit" (a '+' in a query string arrives as a space) or "hero profit"
        roles = tuple(p for p in mix.replace("+", ",").replace(" ", ",").split(",") if p)
        if not roles:
            raise ConfigError("query parameter 'mix' names no sales role (e.g. mix=hero,profit)")
    return bundle_payload(st.store, product_id, scene=scene, size=size, budget=budget, mix=roles, discount=discount)


def _run_cypher(store: GraphStore, query: str, params: dict[str, Any] | None, limit: int,
                timeout_s: float, worker: Any) -> dict[str, Any]:
    try:
        from tiein.cypher import run_cypher
    except ImportError as exc:
        raise ServiceUnavailable("analyst Cypher is not available in this version of tiein") from exc
    # the embedded store: in a worker process (memory limit, killed at the time limit, no store lock)
    result = run_cypher(store, query, params, limit=limit, timeout_s=timeout_s, worker=worker)
    if isinstance(result, Mapping):
        return dict(result)
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    return {name: getattr(result, name) for name in ("columns", "rows", "truncated", "elapsed_ms")
            if hasattr(result, name)}


# ----------------------------------------------------------------------------- HTML page
PAGE_KINDS = (
    ("complement", "Complements", "搭配"),
    ("substitute", "Substitutes", "替代"),
    ("upsell", "Upsells", "升级"),
    ("series", "Same series", "同系列"),
)
PAGE_K = 10
TEMPLATE_FILE = Path(__file__).parent / "templates" / "product.html"


def neighbourhood(st: State, product_id: str) -> dict[str, Any]:
    """What the product page shows, from the service payloads: the product, its related rows per
    kind and its bundle (``bundle_error`` when the bundle rules reject the anchor)."""
    from tiein.service import bundle_payload, related_payload

    related = {kind: related_payload(st.store, product_id, kind, PAGE_K) for kind in RELATION_KINDS}
    try:
        bundle: dict[str, Any] | None = bundle_payload(st.store, product_id)
        bundle_error = None
    except ConfigError as exc:
        bundle, bundle_error = None, str(exc)
    return {
        "product": related["complement"]["product"],
        "related": {k: v["related"] for k, v in related.items()},
        "bundle": bundle,
        "bundle_error": bundle_error,
    }


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _price(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def _link(pid: str, title: Any) -> str:
    return f'<a class="nb" href="../{quote(str(pid), safe="")}/view">{_e(title or pid)}</a>'


def _both(zh: Any, en: Any) -> str:
    return f'<span class="zh" lang="zh">{_e(zh)}</span><span class="en" lang="en">{_e(en)}</span>'


def _related_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="none">none</p>'
    out = ['<table><thead><tr><th>product</th><th>price</th><th>score</th><th>why</th></tr></thead><tbody>']
    for r in rows:
        out.append(
            f'<tr data-id="{_e(r["product_id"])}"><td>{_link(r["product_id"], r.get("title"))}'
            f'<div class="id">{_e(r["product_id"])} · {_e(r.get("category"))}</div></td>'
            f'<td class="num">{_price(r.get("price"))}</td><td class="num">{r["score"]:.3f}</td>'
            f'<td>{_both(r.get("explanation_zh"), r.get("explanation_en"))}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def _bundle_html(bundle: dict[str, Any] | None, error: str | None) -> str:
    if bundle is None:
        return f'<p class="none">{_e(error)}</p>'
    if bundle.get("reason"):
        r = bundle["reason"]
        return f'<p class="none">{_both(r.get("zh"), r.get("en"))}</p>'
    items = "".join(
        f'<li>{_link(i["product"]["product_id"], i["product"].get("title"))} '
        f'<span class="num">{_price(i["product"].get("price"))}</span> '
        f'<span class="role">{_e(i.get("role"))}</span>'
        f'<div class="why">{_both(i["explanation"].get("zh"), i["explanation"].get("en"))}</div></li>'
        for i in bundle["items"]
    )
    pitch = bundle.get("pitch") or {}
    return (
        f'<ol class="bundle">{items}</ol>'
        f'<p class="pitch">{_both(pitch.get("zh"), pitch.get("en"))}</p>'
        f'<p class="maths">total {_price(bundle.get("total"))} → {_price(bundle.get("suggested_price"))} '
        f'(save {_price(bundle.get("saving"))})</p>'
    )


def render_product_page(data: dict[str, Any]) -> str:
    """The self-contained HTML page (inline CSS and JS, no external resources) of
    :func:`neighbourhood`'s answer."""
    p = data["product"]
    sections = []
    for kind, en, zh in PAGE_KINDS:
        rows = data["related"].get(kind, [])
        sections.append(
            f'<section id="{kind}"><h2>{en} <span class="zh-title">{zh}</span> '
            f'<small>({len(rows)})</small></h2>{_related_rows(rows)}</section>'
        )
    facts = " · ".join(
        _e(x) for x in (p["product_id"], p.get("category_path") or p.get("category"), p.get("brand")) if x
    )
    stock = p.get("stock")
    template = Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return template.substitute(
        title=_e(p.get("title") or p["product_id"]),
        product_id=_e(p["product_id"]),
        product_url=_e(quote(str(p["product_id"]), safe="")),
        facts=facts,
        price=_price(p.get("price")),
        stock="unknown" if stock is None else _e(stock),
        bundle=_bundle_html(data.get("bundle"), data.get("bundle_error")),
        sections="".join(sections),
        version=_e(__version__),
    )


__all__ = [
    "ERROR_MAP",
    "Settings",
    "ServiceUnavailable",
    "app_from_env",
    "create_app",
    "envelope",
    "error_status",
    "is_loopback",
    "neighbourhood",
    "render_product_page",
]


"""The one mapping of the project's error tree to HTTP, and the error envelope every error answers
with (request validation errors included)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiein.errors import (
    ConfigError,
    CypherError,
    InputError,
    MissingDependency,
    NotEnoughMemory,
    NotFound,
    ProductNotFound,
    ServiceUnavailable,
    StorageFull,
    StoreError,
    StoreUnavailable,
    TieinError,
    WriteRefused,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger("tiein.api")

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
    (NotEnoughMemory, 507, "not_enough_memory"),
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


def envelope(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error envelope every error response has."""
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _error_details(exc: TieinError) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if isinstance(exc, ProductNotFound):
        details["product_id"] = exc.product_id
    if isinstance(exc, InputError):
        details.update(
            {k: v for k, v in (("file", exc.file), ("row", exc.row), ("column", exc.column)) if v is not None}
        )
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
        errors.append(
            {"in": where, "parameter": name, "message": str(err.get("msg")), "type": str(err.get("type"))}
        )
    summary = "; ".join(f"{e['in']} parameter {e['parameter']!r}: {e['message']}" for e in errors)
    return envelope(422, "invalid_parameter", f"invalid request: {summary}", {"errors": errors})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TieinError)
    async def tiein_error(request: Request, exc: TieinError) -> JSONResponse:
        status, code = error_status(exc)
        details = _error_details(exc)
        if status >= 500 and status != 503:
            details["error_id"] = uuid.uuid4().hex[:12]
            log.error(
                "%s %s failed [%s]: %s",
                request.method,
                request.url.path,
                details["error_id"],
                exc,
                exc_info=exc,
            )
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
        return envelope(
            500, "internal_error", f"internal server error (logged as {error_id})", {"error_id": error_id}
        )

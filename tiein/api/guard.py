"""What the HTTP API does before a request reaches an endpoint, and to what it logs.

- :class:`BodyLimits`: every request body is capped (``Settings.max_body_bytes``, 1 MiB by
  default): a ``Content-Length`` over the cap is a 413 before a byte of the body is read, a
  chunked body is a 413 as soon as it passes the cap; a JSON body nested deeper than
  :data:`MAX_JSON_DEPTH` levels is a 400 before it is parsed (Python's JSON parser would recurse
  on it). Both answer the API's error envelope.
- :func:`redact` / :class:`RedactSecrets`: the access log (``uvicorn.access``) never holds a
  token: ``token=…`` (and ``access_token``, ``api_key``) in a logged URL becomes ``token=***``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
_SECRET = re.compile(r"(?i)((?:^|[?&;\s])(?:token|access_token|api_key|apikey)=)[^&;#\s\"]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def redact(text: str) -> str:
    """``text`` with the values of token-like query parameters replaced by ``***``.

    >>> redact("GET /v1/products/tent/view?token=s3cret&x=1 HTTP/1.1")
    'GET /v1/products/tent/view?token=***&x=1 HTTP/1.1'
    """
    return _SECRET.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """A logging filter that passes every record with its message and string arguments
    :func:`redact`-ed (uvicorn's access log formats the request line from its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction(names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error")) -> None:
    """Add :class:`RedactSecrets` to the named loggers (once each)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``body`` (JSON text) nests arrays and objects, counted up to ``limit + 1``
    (strings skipped: brackets in them do not count).

    >>> json_depth(b'{"a": [1, {"b": "[[["}]}'), json_depth(b"[" * 1000, limit=64)
    (3, 65)
    """
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: request bodies of at most ``max_bytes``, JSON nested at most
    ``max_depth`` deep (see the module doc)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_bytes:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (GET): nothing to hold back
            return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, 400, "bad_request", "the Content-Length header is not a number")
                return
            if declared > self.max_bytes:
                await _refuse(send, 413, "payload_too_large", self._too_large())
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _refuse(send, 413, "payload_too_large", self._too_large())
                return
            if not message.get("more_body", False):
                break
        if (
            body
            and b"json" in headers.get(b"content-type", b"json")
            and json_depth(bytes(body), self.max_depth) > self.max_depth
        ):
            await _refuse(
                send, 400, "bad_request", f"the JSON body is nested deeper than {self.max_depth} levels"
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

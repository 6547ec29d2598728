"""What one server process holds: the store, the search index, the feedback statistics, and the
token check."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiein.api.settings import Settings
from tiein.errors import (
    ConfigError,
    InputError,
    MissingDependency,
    ServiceUnavailable,
    StoreError,
)

if TYPE_CHECKING:
    from tiein.bundles import BundleRules
    from tiein.embeddings import Encoder, ProductIndex
    from tiein.feedback import FeedbackStats
    from tiein.graph.base import GraphStore

log = logging.getLogger("tiein.api")
P = ParamSpec("P")
R = TypeVar("R")


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
                    encoder = load_encoder(index.model, threads=self.threads, plain=True)
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
                    self._worker = threading.Thread(
                        target=self._refresh, args=(version,), daemon=True, name="tiein-feedback-refresh"
                    )
                    self._worker.start()
                return self._stats
            self._stats, self._version = self._compute(), version
            return self._stats

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background refresh in progress (tests, shutdown)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)


class ShopRules:
    """The bundle rules of the home's shop.toml (:func:`tiein.service.shop_bundle_rules`), read
    again when the file changes. A bad file stops the server at start; an edit that breaks it
    later keeps the last good rules (logged) rather than failing every bundle request."""

    def __init__(self, home: Path) -> None:
        from tiein.service import shop_bundle_rules

        self.home = home
        self._read = shop_bundle_rules
        self._good = shop_bundle_rules(home)  # ConfigError at start for a bad file

    def __call__(self) -> BundleRules:
        try:
            self._good = self._read(self.home)
        except ConfigError as exc:
            log.warning("%s; serving with the previous shop config", exc)
        return self._good


@dataclass
class State:
    """What one server process holds: its settings, the store (opened once), search and the
    feedback statistics."""

    settings: Settings
    store: GraphStore
    search: Search
    owns_store: bool = True
    feedback: FeedbackCache | None = None
    cypher_worker: Any = (
        None  # tiein.cypher_worker.WorkerLimits: one per server, its cap holds across requests
    )

    inline: bool = field(init=False)
    """Whether reads run on the event loop: the in-memory snapshot answers in well under a
    millisecond, less than handing the call to a worker thread and back costs (0.3-0.4 ms of CPU
    a request, measured); a store that waits on disk or the network goes to the thread pool."""

    def __post_init__(self) -> None:
        from tiein.graph.snapshot import SnapshotStore

        self.inline = isinstance(self.store, SnapshotStore)

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)``: inline when :attr:`inline`, else in the thread pool."""
        if self.inline:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)


def _state(request: Request) -> State:
    state: State = request.app.state.tiein
    return state


def _store(request: Request) -> GraphStore:
    return _state(request).store


# ----------------------------------------------------------------------------- auth
bearer = HTTPBearer(auto_error=False, description="Bearer token (only when the server has one).")


def _token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8")
    )


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 unless the request carries the server's bearer token (no-op when auth is off)."""
    expected = _state(request).settings.token
    if expected is None:
        return
    if not _token_ok(expected, credentials.credentials if credentials else None):
        raise StarletteHTTPException(
            401,
            "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )

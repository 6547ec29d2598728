"""The analyst's read-only Cypher."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from tiein.errors import ConfigError, ServiceUnavailable
from tiein.service.types import CypherPayload

if TYPE_CHECKING:
    from tiein.cypher_worker import WorkerLimits
    from tiein.graph.base import GraphStore

CYPHER_LIMIT = 1000  # rows when the caller names no limit (at most the caller's cap)


def cypher_payload(
    store: GraphStore,
    query: str,
    params: dict[str, Any] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
    max_rows: int,
    max_timeout_s: float,
    worker: WorkerLimits | bool = True,
) -> CypherPayload:
    """:func:`tiein.cypher.run_cypher` (one read-only query, writes refused) as a JSON-ready
    dict: at most ``limit`` rows (default ``min(CYPHER_LIMIT, max_rows)``) within ``timeout_s``
    (default ``max_timeout_s``). ConfigError for a limit over ``max_rows`` or a timeout over
    ``max_timeout_s``; ServiceUnavailable when this install has no analyst Cypher."""
    if limit is None:
        limit = min(CYPHER_LIMIT, max_rows)
    if limit > max_rows:
        raise ConfigError(f"limit must be at most {max_rows}, got {limit}")
    if timeout_s is None:
        timeout_s = max_timeout_s
    if timeout_s > max_timeout_s:
        raise ConfigError(f"timeout_s must be at most {max_timeout_s:g}, got {timeout_s:g}")
    try:
        from tiein.cypher import run_cypher
    except ImportError as exc:
        raise ServiceUnavailable("analyst Cypher is not available in this version of tiein") from exc
    # the embedded store: in a worker process (memory limit, killed at the time limit, no store lock)
    result = run_cypher(store, query, params, limit=limit, timeout_s=timeout_s, worker=worker)
    return cast(CypherPayload, result.to_dict())

"""Cypher for analysts: run a read-only query on any graph store, with a row cap and a time limit.

:func:`run_cypher` is the one entry point (the CLI's ``tiein cypher`` and the API's ``POST
/v1/cypher`` call it). It refuses anything but a read before the store sees the query, then runs
it (embedded: in a worker process, :mod:`tiein.cypher_worker`, on a read-only database handle,
with a memory cap, LadybugDB's query timeout and a hard kill; Neo4j: a READ transaction with a
transaction timeout) and returns a :class:`CypherResult` whose values are plain JSON on
both stores: nodes and relationships are ``{"_LABEL": label or type, property: value, ...}`` with
every property of the label in schema order (null ones included), paths are ``{"_NODES": [...],
"_RELS": [...]}``, dates and times ISO-8601 strings, durations ISO-8601 durations (``P1DT2H``),
non-finite floats null and bytes base64.

The read-only check is :mod:`graph.cypher_guard` (an allowlist over tokens, with a character check
first); the stores then ask the database itself: the embedded store runs analysts' queries in a
separate worker process on a read-only handle, after LadybugDB's own plan of the query
(``EXPLAIN``) showed only read operators (graph/ladybug_store.py); Neo4j runs them in a READ
transaction.

"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tiein.cypher_worker import WorkerLimits, run_isolated
from tiein.errors import ConfigError, CypherError
from tiein.graph.cypher_guard import parameters, refuse_writes
from tiein.graph.ladybug_store import EmbeddedStore

if TYPE_CHECKING:
    from tiein.cypher_worker import WorkerLimits
    from tiein.graph.base import GraphStore

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 600.0


# ----------------------------------------------------------------------------- values
def json_safe(value: Any) -> Any:
    """A store value (already plain: see the stores' query values) as JSON data: dates, times and
    datetimes as ISO-8601 strings, durations as ISO-8601 durations (Neo4j's format), NaN and
    infinities as null, bytes base64, tuples and sets as lists; dict keys as strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "iso_format"):  # a neo4j.time value that was not converted yet
        return value.iso_format()
    return str(value)  # UUID, Decimal, ...: their canonical text


def iso_duration(value: dt.timedelta) -> str:
    """``value`` as an ISO-8601 duration in Neo4j's format (``P1DT2H``, ``PT1.5S``), so both
    stores render an interval identically.

    >>> iso_duration(dt.timedelta(days=1, hours=2)), iso_duration(dt.timedelta(seconds=1.5))
    ('P1DT2H', 'PT1.5S')
    """
    days, seconds, micro = value.days, value.seconds, value.microseconds
    out = "P" + (f"{days}D" if days else "")
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    t = (f"{h}H" if h else "") + (f"{m}M" if m else "")
    if s or micro:
        t += f"{s}.{micro:06d}".rstrip("0").rstrip(".") + "S" if micro else f"{s}S"
    if t:
        out += "T" + t
    return out if out != "P" else "PT0S"


# ----------------------------------------------------------------------------- running
@dataclass
class CypherResult:
    """An analyst query's answer: ``columns`` in RETURN order, ``rows`` as lists of JSON values
    (at most ``limit``), ``truncated`` when the query had more rows than ``limit``,
    ``elapsed_ms`` the wall time of the run."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    limit: int = DEFAULT_LIMIT
    store: str = field(default="")

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of ``tiein cypher --json`` and ``POST /v1/cypher``."""
        return {
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "truncated": self.truncated,
            "limit": self.limit,
            "row_count": len(self.rows),
            "elapsed_ms": self.elapsed_ms,
            "store": self.store,
        }


def _check_options(limit: Any, timeout_s: Any, params: Any) -> dict[str, Any]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not math.isfinite(timeout_s)
        or not 0 < timeout_s <= MAX_TIMEOUT_S
    ):
        raise ConfigError(
            f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, got {timeout_s!r}"
        )
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ConfigError(f"params must be an object of name -> value, got {type(params).__name__}")
    return dict(params)


def run_cypher(
    store: GraphStore,
    query: str,
    params: dict[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    worker: WorkerLimits | bool = True,
) -> CypherResult:
    """Run the analyst's read-only ``query`` (the store's dialect; see docs/schema.md) with
    ``params`` on ``store``: at most ``limit`` rows (one more is fetched to say ``truncated``),
    interrupted after ``timeout_s`` seconds.

    On the embedded store (or a snapshot of it) the query runs in a worker process
    (:mod:`tiein.cypher_worker`: read-only handle, memory limit, killed at the time limit, never
    in the caller's process nor under its store lock) with ``worker``'s limits (True: the
    defaults; False: in this process, on ``store`` itself). Neo4j runs it in a READ transaction
    with a server-side timeout.

    Raises WriteRefused (403) for a write, CypherError (400) for invalid Cypher, a missing
    parameter or a query past the time limit, ConfigError (400) for a bad limit / timeout /
    params, StoreUnavailable (503) when the store cannot answer."""
    params = _check_options(limit, timeout_s, params)
    refuse_writes(query)
    missing = sorted(parameters(query) - set(params))
    if missing:
        raise CypherError(f"missing query parameter(s): {', '.join('$' + m for m in missing)}")
    start = time.perf_counter()
    path = embedded_path(store) if worker is not False else None
    if path is not None:
        limits = worker if isinstance(worker, WorkerLimits) else None
        columns, rows = run_isolated(
            path, query, params, limit=limit + 1, timeout_s=float(timeout_s), limits=limits
        )
    else:
        columns, rows = store.query_rows(query, params, limit=limit + 1, timeout_s=float(timeout_s))
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    truncated = len(rows) > limit
    return CypherResult(
        columns=list(columns),
        rows=[[json_safe(v) for v in row] for row in rows[:limit]],
        truncated=truncated,
        elapsed_ms=round(elapsed_ms, 3),
        limit=limit,
        store=store.name,
    )


def embedded_path(store: Any) -> Any:
    """The directory of the embedded store ``store`` is (or that a snapshot wraps), where a
    worker process can open it; None for other stores and where no worker can run (not POSIX)."""
    import os

    inner = getattr(store, "store", store)  # tiein.graph.snapshot.SnapshotStore wraps the embedded store
    return inner.path if isinstance(inner, EmbeddedStore) and os.name == "posix" else None


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line: VALUE as JSON when it parses (``3``, ``2.5``,
    ``true``, ``null``, ``["a","b"]``, ``"85123A"``), else the text itself.

    >>> parse_param("min_count=3"), parse_param("product_id=85123A"), parse_param('id="007"')
    (('min_count', 3), ('product_id', '85123A'), ('id', '007'))
    """
    import json

    name, sep, raw = text.partition("=")
    name = name.strip().lstrip("$")
    if not sep or not name or not re.fullmatch(r"\w+", name):
        raise ConfigError(f"--param must look like NAME=VALUE (e.g. product_id=85123A), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name, value

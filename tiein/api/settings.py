"""Settings of the API server, declared once (name, environment variable, default, help), and the
request limits every endpoint shares."""

from __future__ import annotations

import ipaddress
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiein.errors import (
    ConfigError,
)
from tiein.service import MAX_K

if TYPE_CHECKING:
    pass


API_PREFIX = "/v1"
TOKEN_COOKIE = "tiein_token"
MAX_ID_LENGTH = 512
MAX_QUERY_TEXT = 1000
MAX_CART = 100
MAX_CYPHER_LENGTH = 100_000


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
        metadata={
            "env": "TIEIN_API_CYPHER_MEMORY",
            "help": "memory (MB of address space) of the worker process "
            "that runs one Cypher request on the embedded store",
        },
    )
    max_body_bytes: int = field(
        default=1024 * 1024,
        metadata={"env": "TIEIN_API_MAX_BODY", "help": "largest request body in bytes (413 above it)"},
    )
    neo4j_retry_s: float = field(
        default=1.0,
        metadata={
            "env": "TIEIN_API_NEO4J_RETRY",
            "help": "how long a Neo4j read is retried before a 503 (s)",
        },
    )
    feedback_refresh_s: float = field(
        default=10.0,
        metadata={
            "env": "TIEIN_API_FEEDBACK_REFRESH",
            "help": "feedback=true: how stale the feedback statistics "
            "may get (s): after new events they are recomputed in the background at most this often, "
            "requests meanwhile use the previous ones; 0: recompute before the next request",
        },
    )
    currency: str | None = field(
        default=None,
        metadata={
            "env": "TIEIN_CURRENCY",
            "help": "currency of the prices in bundle pitches and reasons: a symbol "
            "(¥ $ € 元) or a code (CNY USD EUR), the same in zh and en text; default ¥",
        },
    )
    snapshot: bool | None = field(
        default=None,
        metadata={
            "env": "TIEIN_API_SNAPSHOT",
            "help": "serve reads from an in-memory snapshot of the embedded "
            "graph (tiein.graph.snapshot: identical answers, several times faster; reloaded after a rebuild); "
            "default: on for the embedded store, off (not possible) for Neo4j",
        },
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
        if self.currency is not None:
            from tiein.money import currency_symbol

            try:
                currency_symbol(self.currency)
            except ConfigError as exc:
                problems.append(str(exc))
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
    """``raw`` (an environment variable's text) as the type the Settings field ``name`` declares:
    a path, an int, a float, a flag (1/true/yes/on, 0/false/no/off), a comma-separated list, or
    text."""
    kind = typing.get_type_hints(Settings)[name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if args and typing.get_origin(kind) is not tuple else kind
    if base is Path:
        return Path(raw)
    if typing.get_origin(base) is tuple:
        return _env_list(raw)
    if base is bool:
        flag = raw.strip().lower()
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError("expected true or false")
        return flag in ("1", "true", "yes", "on")
    if base is int:
        return int(raw)
    if base is float:
        return float(raw)
    return raw


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

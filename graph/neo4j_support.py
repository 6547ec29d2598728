"""What the Neo4j store needs around the driver: connection settings from a URL and the
environment, Arrow tables as Bolt parameters, result values as plain data, and the driver's errors
as the project's (graph/neo4j_store.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from neo4j.graph import Node, Path, Relationship
from neo4j.spatial import Point
from neo4j.time import Date, DateTime, Duration, Time

from tiein.errors import (
    ConfigError,
    CypherError,
    StoreError,
    StoreUnavailable,
    WriteRefused,
)
from tiein.graph import cypher_neo4j as cy
from tiein.graph.base import check_rules_version
from tiein.graph.evidence import evidence_object

if TYPE_CHECKING:
    from neo4j import ResultSummary


SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
ENV_USER = "TIEIN_NEO4J_USER"
ENV_PASSWORD = "TIEIN_NEO4J_PASSWORD"
ENV_DATABASE = "TIEIN_NEO4J_DATABASE"
DEFAULT_USER = "neo4j"
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_QUERY_TIMEOUT_S = 30.0
# Driver settings from_url uses unless told otherwise: the driver's own defaults make an
# unreachable server take 30 s of retries before the CLI can say so.
DEFAULT_DRIVER_CONFIG: dict[str, Any] = {"connection_timeout": 5.0, "max_transaction_retry_time": 5.0}

# Server error codes meaning "a read-only transaction tried to write".
_WRITE_REFUSED_CODES = frozenset(
    {
        "Neo.ClientError.Statement.AccessMode",
        "Neo.ClientError.General.ReadOnly",
        "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
        "Neo.ClientError.Transaction.ForbiddenDueToTransactionType",
    }
)
_DATABASE_MISSING_CODES = frozenset(
    {"Neo.ClientError.Database.DatabaseNotFound", "Neo.TransientError.Database.DatabaseUnavailable"}
)
_TIMEOUT_CODES = frozenset(
    {
        "Neo.ClientError.Transaction.TransactionTimedOut",
        "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
    }
)


# ----------------------------------------------------------------------------- connection settings
@dataclass(frozen=True)
class ConnectionSettings:
    """What ``from_url`` hands the driver: the URI without credentials or database path, the
    basic-auth pair (None = no auth) and the database (None = the server's default)."""

    uri: str
    auth: tuple[str, str] | None
    database: str | None

    def __repr__(self) -> str:  # never print the password
        user = None if self.auth is None else self.auth[0]
        return f"ConnectionSettings(uri={self.uri!r}, user={user!r}, database={self.database!r})"


def connection_settings(
    url: str,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """Parse ``scheme://[user[:password]@]host[:port][/database][?routing]``.

    Each value comes from the argument, else the URL, else the environment (TIEIN_NEO4J_USER,
    TIEIN_NEO4J_PASSWORD, TIEIN_NEO4J_DATABASE). A password without a user means user ``neo4j``.
    Raises ConfigError for another scheme, a missing host or a nested path.

    >>> connection_settings("bolt://bob:s%40cret@db:7687/shop", env={})
    ConnectionSettings(uri='bolt://db:7687', user='bob', database='shop')
    """
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"invalid Neo4j URL {_redact(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"invalid Neo4j URL {_redact(url)!r}: the scheme must be one of "
            f"{', '.join(s + '://' for s in SCHEMES)}"
        )
    if not parts.hostname:
        raise ConfigError(f"invalid Neo4j URL {_redact(url)!r}: no host")
    path = parts.path.strip("/")
    if "/" in path:
        raise ConfigError(f"invalid Neo4j URL {_redact(url)!r}: the path may only name a database")
    host = parts.netloc.rsplit("@", 1)[-1]
    uri = f"{scheme}://{host}" + (f"?{parts.query}" if parts.query else "")

    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password is not None else None
    user = user or url_user or env.get(ENV_USER) or None
    password = password if password is not None else url_password
    if password is None:
        password = env.get(ENV_PASSWORD)
    auth = None if user is None and password is None else (user or DEFAULT_USER, password or "")
    database = database or (unquote(path) if path else None) or env.get(ENV_DATABASE) or None
    return ConnectionSettings(uri=uri, auth=auth, database=database)


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparsable url>"


# ----------------------------------------------------------------------------- Arrow -> parameters
# Arrow types whose Python values (``to_pylist``) the Bolt protocol carries as they are.
def _bolt_type_ok(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _bolt_type_ok(t.value_type) and not pa.types.is_list(t.value_type)
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_null(t)
    )


def _check_types(table: pa.Table, name: str) -> None:
    """Neo4j properties are scalars or flat lists: refuse anything else before the load starts."""
    for f in table.schema:
        if not _bolt_type_ok(f.type):
            raise StoreError(
                f"{name}.{f.name} has Arrow type {f.type}, which Neo4j cannot store as a property"
            )


def node_rows(table: pa.Table) -> list[dict[str, Any]]:
    """One batch of nodes as UNWIND parameters: a dict per row, column -> Python value.

    Floats stay the same IEEE doubles (Bolt sends 64-bit floats), nulls become None (``SET n =
    row`` then leaves the property absent), ``timestamp[us]`` becomes a naive ``datetime`` (a
    Neo4j LocalDateTime)."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def rel_rows(table: pa.Table) -> list[dict[str, Any]]:
    """One batch of relationships (columns ``src``, ``dst``, then properties) as
    ``[{"src": ..., "dst": ..., "props": {property: value}}]`` — built columnar in Arrow."""
    props = table.column_names[2:]
    if not props:
        return [
            {"src": s, "dst": d, "props": {}}
            for s, d in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True)
        ]
    struct = pa.StructArray.from_arrays([table.column(c).combine_chunks() for c in props], names=props)
    keys = pa.table({"src": table.column(0), "dst": table.column(1), "props": struct})
    key_rows: list[dict[str, Any]] = keys.to_pylist()
    return key_rows


def batches(table: pa.Table, size: int) -> Iterator[pa.Table]:
    """``table`` in zero-copy slices of at most ``size`` rows (none for an empty table)."""
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)


# ----------------------------------------------------------------------------- result values
def _props(name: str | None, entity: Any) -> list[str]:
    """Property names of a node / relationship in the embedded store's order: every property of
    its label / type in tiein.graph.build's schema (Neo4j leaves null ones out; they come back as
    null), then any other property it has."""
    from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS

    if name in NODE_SCHEMAS:
        known = list(NODE_SCHEMAS[name].names)
    elif name in REL_SCHEMAS:
        known = list(REL_SCHEMAS[name].names[2:])
    else:
        known = []
    return known + sorted(k for k in entity.keys() if k not in known)


def _plain(value: Any) -> Any:
    """A driver value as plain JSON-able data, shaped like the embedded store's answers: a node
    or relationship becomes ``{"_LABEL": label or type, property: value, ..., "_ID": element id}``,
    a relationship also with ``"_START"`` / ``"_END"`` (its nodes' element ids, so a client can
    draw the answer); an ``evidence`` property holding JSON text becomes its object; temporal
    values become Python ``datetime``/``date``/``time``; durations ISO-8601 strings."""
    if isinstance(value, Node):
        label = sorted(value.labels)[0] if value.labels else None
        out = {"_LABEL": label, **{k: _plain(value.get(k)) for k in _props(label, value)}}
        if "evidence" in out:
            out["evidence"] = evidence_object(out["evidence"])
        return {**out, "_ID": value.element_id}
    if isinstance(value, Relationship):
        out = {"_LABEL": value.type, **{k: _plain(value.get(k)) for k in _props(value.type, value)}}
        if "evidence" in out:
            out["evidence"] = evidence_object(out["evidence"])
        start, end = value.start_node, value.end_node
        return {
            **out,
            "_ID": value.element_id,
            "_START": None if start is None else start.element_id,
            "_END": None if end is None else end.element_id,
        }
    if isinstance(value, Path):
        return {"_NODES": [_plain(n) for n in value.nodes], "_RELS": [_plain(r) for r in value.relationships]}
    if isinstance(value, (DateTime, Date, Time)):
        return value.to_native()
    if isinstance(value, Duration):
        return value.iso_format()
    if isinstance(value, Point):
        return {"srid": value.srid, "coordinates": list(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# How Neo4j names a label / relationship type it does not know in its warnings: the pre-GQL
# notification text and the GQL status description (01N50 / 01N51).
_UNKNOWN_NAME_RES = (
    re.compile(r"the missing (?:label name|relationship type) is: (?P<name>[^)]+)\)"),
    re.compile(r"The (?:label|relationship type) `(?P<name>(?:[^`]|``)+)` does not exist"),
)
_KNOWN_NAMES = frozenset({*cy.NODE_KEYS, *cy.REL_ENDPOINTS, cy.META_LABEL})


def unknown_names(summary: ResultSummary) -> list[str]:
    """Labels / relationship types a query used that Neo4j does not know and tiein's schema
    does not define. Neo4j only warns about them (an empty answer); the embedded store, and so
    the shared contract, treat a misspelt label as an error. A schema label that merely has no
    data yet (an empty CO_VIEWED) is not reported."""
    found = []
    for status in summary.gql_status_objects:
        for regex in _UNKNOWN_NAME_RES:
            m = regex.search(status.status_description or "")
            if m:
                name = m.group("name").strip().replace("``", "`")
                if name not in _KNOWN_NAMES and name not in found:
                    found.append(name)
    return found


# ----------------------------------------------------------------------------- error translation
def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc).strip() or type(exc).__name__


@contextmanager
def _translate(what: str, *, analyst: bool = False, where: str = "Neo4j") -> Iterator[None]:
    """Translate driver errors raised inside the block into tiein errors (``raise ... from``).

    ``analyst`` marks a user's own query: their Cypher mistakes are CypherError (400) rather than
    a StoreError (a mistake in tiein's own statements is a bug, 500)."""
    from neo4j import exceptions as ne

    try:
        yield
    except ne.AuthError as exc:
        raise StoreUnavailable(f"{where} refused the credentials ({what}): {_message(exc)}") from exc
    except (ne.ServiceUnavailable, ne.SessionExpired, ne.ConnectionPoolError) as exc:
        raise StoreUnavailable(f"{where} cannot be reached ({what}): {_message(exc)}") from exc
    except ne.Neo4jError as exc:
        code = exc.code or ""
        msg = _message(exc)
        if code in _DATABASE_MISSING_CODES or isinstance(exc, ne.DatabaseUnavailable):
            raise StoreUnavailable(f"{where}: the database is not available ({what}): {msg}") from exc
        if analyst and code in _WRITE_REFUSED_CODES:
            raise WriteRefused(f"query() is read-only: {msg}") from exc
        if analyst and code in _TIMEOUT_CODES:
            raise CypherError(f"query interrupted (time limit exceeded): {msg}") from exc
        if analyst and isinstance(exc, ne.CypherSyntaxError):
            raise CypherError(f"invalid Cypher: {msg}") from exc
        if analyst and isinstance(exc, ne.ClientError):
            raise CypherError(f"query failed: {msg}") from exc
        raise StoreError(f"{what} failed on {where}: {code}: {msg}") from exc
    except ne.ConfigurationError as exc:
        raise ConfigError(f"Neo4j driver configuration ({what}): {_message(exc)}") from exc
    except ne.DriverError as exc:
        raise StoreError(f"{what} failed on {where}: {_message(exc)}") from exc


# ----------------------------------------------------------------------------- merchant rules
def read_rules_tx(tx: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The :TieinRules head (version, updated_at; None before the first save) and every :Rule."""
    head = tx.run(cy.RULES_VERSION).single()
    rows = [dict(r["rule"]) for r in tx.run(cy.RULES_ALL)]
    return (None if head is None else head.data()), rows


def save_rules_tx(
    tx: Any, rows: list[dict[str, Any]], expected_version: int | None, batch_size: int, stamp: str
) -> int:
    """Inside one write transaction: lock the version node (concurrent saves serialise), check
    the version the caller read, replace every :Rule, bump the version. Returns the version read."""
    record = tx.run(cy.RULES_LOCK).single()
    current = int(record["version"] or 0) if record is not None else 0
    check_rules_version(current, expected_version)
    tx.run(cy.RULES_DELETE).consume()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        created = tx.run(cy.RULES_CREATE, {"rows": batch}).single()
        if created is None or created["created"] != len(batch):
            raise StoreError("saving the rules: a rule node was not created")
    tx.run(cy.RULES_SET_VERSION, {"version": current + 1, "updated_at": stamp}).consume()
    return current

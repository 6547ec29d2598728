"""What the embedded store needs around LadybugDB: its errors as the project's, the check of an
analyst's query plan (``EXPLAIN``: read operators only), statement execution and value cleaning,
the writer lock (graph/ladybug_store.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tiein.errors import (
    CypherError,
    StoreError,
    StoreUnavailable,
    TieinError,
    WriteRefused,
)
from tiein.graph import cypher_ladybug as cy
from tiein.graph.base import (
    PRODUCT_FIELDS,
    RELATED_FIELDS,
    parse_evidence,
)
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS
from tiein.graph.cypher_guard import parameters
from tiein.graph.cypher_guard import refuse_writes as guard_refuse_writes
from tiein.graph.evidence import evidence_object

ANALYST = ("query", "query plan")  # what an analyst's statement is run as (every other: tiein's own)


def _translate(exc: Exception, what: str) -> TieinError:
    """A LadybugDB error (they are all RuntimeError) as the project's error. tiein's own
    statements are known to be valid, so their failure means a damaged database: 503."""
    msg = str(exc).strip()
    if what not in ANALYST and "Table Evidence does not exist" in msg:
        return StoreUnavailable(
            "this graph was built by an earlier tiein, which kept each relation's evidence on the "
            "relationship instead of in an Evidence node (docs/schema.md): run `tiein build` again"
        )
    if what not in ANALYST and not msg.startswith("Interrupted"):
        return StoreUnavailable(
            f"the graph cannot answer ({what}): its database looks damaged; rebuild it or run "
            f"`tiein rollback` ({_no_paths(msg)})"
        )
    if "read-only" in msg:
        return WriteRefused(f"query() is read-only: {msg}")
    if "Cannot find property evidence for" in msg:
        return CypherError(
            f"invalid Cypher: {msg} (a relation's evidence is in its Evidence node: "
            "WITH r, r.evidence_id AS i MATCH (e:Evidence {evidence_id: i}) RETURN e.evidence; "
            "or RETURN r, which carries it; docs/cypher.md)"
        )
    if msg.startswith(("Parser exception", "Binder exception")):
        return CypherError(f"invalid Cypher: {msg}")
    if msg.startswith("Interrupted"):
        return CypherError(f"query interrupted (time limit exceeded): {msg}")
    if "bad_alloc" in msg or msg.startswith("Buffer manager exception"):
        return CypherError(f"query ran out of memory: {msg}")
    if msg.startswith("Runtime exception"):
        return CypherError(f"query failed: {msg}")
    return StoreError(f"{what} failed: {msg}")


# LadybugDB's physical operators that only read (the plan of an analyst's query may hold no other:
# no COPY_TO, EXPORT_DATABASE, INSTALL_EXTENSION, SET_PROPERTY, TRANSACTION, ...), and the table
# functions such a plan may call (READ_FTABLE: the one-row input of UNWIND / RETURN; no READ_CSV)
READ_OPERATORS = frozenset(
    {
        "AGGREGATE",
        "AGGREGATE_FINALIZE",
        "AGGREGATE_SCAN",
        "COUNT_EXTEND_CHAIN",
        "COUNT_REL_TABLE",
        "CROSS_PRODUCT",
        "DUMMY_SIMPLE_SINK",
        "DUMMY_SINK",
        "EMPTY_RESULT",
        "FILTER",
        "FLATTEN",
        "HASH_JOIN_BUILD",
        "HASH_JOIN_PROBE",
        "INDEX_LOOKUP",
        "INTERSECT",
        "INTERSECT_BUILD",
        "LIMIT",
        "MULTIPLICITY_REDUCER",
        "ORDER_BY",
        "ORDER_BY_MERGE",
        "ORDER_BY_SCAN",
        "PATH_PROPERTY_PROBE",
        "PRIMARY_KEY_SCAN_NODE_TABLE",
        "PROJECTION",
        "QUERY_PRIMARY_KEY_LOOKUP",
        "RECURSIVE_EXTEND",
        "RESULT_COLLECTOR",
        "SCAN_NODE_TABLE",
        "SCAN_REL_TABLE",
        "SEMI_MASKER",
        "SKIP",
        "TABLE_FUNCTION_CALL",
        "TOP_K",
        "TOP_K_SCAN",
        "UNION_ALL_SCAN",
        "UNWIND",
    }
)
READ_TABLE_FUNCTIONS = frozenset(
    {
        "READ_FTABLE",
        "SHOW_TABLES",
        "TABLE_INFO",
        "SHOW_CONNECTION",
        "CURRENT_SETTING",
        "DB_VERSION",
        "SHOW_FUNCTIONS",
    }
)
_PLAN_OPERATOR = re.compile(r"(?<=│)\s*([A-Z][A-Z0-9_]*)\[(\d+)\]\s*(?=│)")
_PLAN_FUNCTION = re.compile(r"(?<=│)\s*Function: (\w+)")


def plan_operators(plan: str) -> tuple[list[str], list[str]]:
    """(operators, table functions) of an ``EXPLAIN`` plan (LadybugDB draws the plan as boxes, a
    box's first line ``NAME[id]``; a table function call names its function on a ``Function:``
    line)."""
    ops = {int(m.group(2)): m.group(1) for m in _PLAN_OPERATOR.finditer(plan)}
    return [ops[i] for i in sorted(ops)], _PLAN_FUNCTION.findall(plan)


def refuse_unsafe_plan(conn: Any, cypher: str, params: dict[str, Any] | None) -> None:
    """Ask LadybugDB how it would run ``cypher`` (``EXPLAIN``: parsed, bound and planned, not run)
    and raise WriteRefused unless every operator only reads (:data:`READ_OPERATORS`) and every
    table function is a read-only one (:data:`READ_TABLE_FUNCTIONS`): a file read (``LOAD FROM``
    → READ_CSV), a file write (``COPY ... TO``), an export, an extension or a write is refused
    whatever the text looked like to :func:`graph.cypher_guard.refuse_writes`."""
    _, rows = _execute(conn, cy.EXPLAIN_PREFIX + cypher, params, "query plan")
    plan = "\n".join(str(r[0]) for r in rows)
    ops, functions = plan_operators(plan)
    calls = ops.count("TABLE_FUNCTION_CALL")
    if not ops or len(functions) < calls:
        raise WriteRefused("queries are read-only: LadybugDB's plan of the query could not be checked")
    for op in ops:
        if op not in READ_OPERATORS:
            raise WriteRefused(
                f"queries are read-only: the query's plan has the operator {op}, which is not "
                "known to only read (tiein.graph.ladybug_store.READ_OPERATORS)"
            )
    for fn in functions:
        if fn not in READ_TABLE_FUNCTIONS:
            raise WriteRefused(
                f"queries are read-only: the query calls the table function {fn} "
                "(reading files is not allowed)"
            )


def _no_paths(message: str) -> str:
    """``message`` with absolute paths cut to their last two parts (errors reach API clients)."""
    return re.sub(r"/(?:[^/\s'\"]+/)*([^/\s'\"]+/[^/\s'\"]+)", r"\1", message)


# properties of each label / type, to drop the other tables' columns a node of an unlabelled
# pattern variable carries (LadybugDB gives it the union of all node tables' properties)
_PROPS: dict[str, tuple[str, ...]] = {
    **{label: tuple(s.names) for label, s in NODE_SCHEMAS.items()},
    **{rel: tuple(s.names[2:]) for rel, s in REL_SCHEMAS.items()},
}


def _ref(internal: Any) -> str | None:
    """LadybugDB's internal id of a node or relationship (``{"table", "offset"}``) as the text
    ``"table:offset"``: opaque, the same for the same element within one graph generation."""
    if isinstance(internal, dict) and "table" in internal and "offset" in internal:
        return f"{internal['table']}:{internal['offset']}"
    return None if internal is None else str(internal)


def _clean(value: Any) -> Any:
    """A query value as plain JSON-able data: nodes and relationships become ``{"_LABEL": ...,
    property: value, ..., "_ID": id}`` with their own properties only, a relationship also with
    ``"_START"`` / ``"_END"``: the ``_ID`` of its start and end nodes (ids are opaque text, so a
    client can draw the answer); an ``evidence`` property holding JSON text becomes its object."""
    if isinstance(value, dict):
        props = _PROPS.get(value.get("_LABEL", ""))
        if props is not None:
            out = {"_LABEL": value["_LABEL"], **{k: _clean(value.get(k)) for k in props}}
        else:
            out = {k: _clean(v) for k, v in value.items() if k not in ("_ID", "_SRC", "_DST")}
        if "_LABEL" in value and "_ID" in value:
            if "evidence" in out:
                out["evidence"] = evidence_object(out["evidence"])
            out["_ID"] = _ref(value["_ID"])
            if "_SRC" in value and "_DST" in value:
                out["_START"], out["_END"] = _ref(value["_SRC"]), _ref(value["_DST"])
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _execute(
    conn: Any, cypher: str, params: dict[str, Any] | None, what: str, limit: int | None = None
) -> tuple[list[str], list[list[Any]]]:
    """Run one statement on ``conn``: (column names, rows — the first ``limit`` only, if given),
    LadybugDB errors translated."""
    try:
        result = conn.execute(cypher, params or {})
    except RuntimeError as exc:
        raise _translate(exc, what) from exc
    if isinstance(result, list):  # several statements: never from this module's constants
        for r in result:
            r.close()
        raise CypherError("query() runs one statement at a time")
    try:
        rows = result.get_all() if limit is None else result.get_n(limit)
        return result.get_column_names(), rows
    finally:
        result.close()


def _load(conn: Any, cypher: str, params: dict[str, Any] | None, gen_dir: Path) -> None:
    """Run one load statement; LadybugDB errors become StoreError (other errors pass through)."""
    try:
        conn.execute(cypher, params or {}).close()
    except RuntimeError as exc:
        raise StoreError(f"loading the graph into {gen_dir} failed ({cypher.split('(')[0]}): {exc}") from exc


class _WriterLock:
    """An exclusive, non-blocking lock on ``path`` (flock) so that only one process loads a
    generation at a time; a second loader gets StoreError instead of waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _WriterLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # Windows: no flock; a single loader is assumed
            return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            self._fd = None
            raise StoreError(f"another load into {self.path.parent} is in progress") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def _related_rows(cols: list[str], rows: list[list[Any]], product_id: str, kind: str) -> list[dict[str, Any]]:
    """``related`` rows (PRODUCT_FIELDS + RELATED_FIELDS, evidence parsed) from RELATED[kind]."""
    out = []
    for row in rows:
        rec = dict(zip(cols, row, strict=True))
        rec["evidence"] = parse_evidence(rec["evidence"], product_id, rec["product_id"], kind)
        out.append({f: (kind if f == "kind" else rec[f]) for f in (*PRODUCT_FIELDS, *RELATED_FIELDS)})
    return out


def refuse_writes(cypher: str) -> None:
    """Raise WriteRefused if ``cypher`` has a writing clause or statement, CypherError for several
    statements: :func:`graph.cypher_guard.refuse_writes` (a tokenizer: strings, comments, identifiers
    and aliases are never keywords). The real guard is the read-only database; this gives the
    clearer message."""
    guard_refuse_writes(cypher)


def check_params(cypher: str, params: dict[str, Any] | None) -> None:
    """Raise CypherError for a ``$name`` the query uses but ``params`` lacks (LadybugDB would
    silently read it as null; Neo4j refuses it)."""
    missing = sorted(parameters(cypher) - set(params or {}))
    if missing:
        raise CypherError(f"missing query parameter(s): {', '.join('$' + m for m in missing)}")

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

The check is an allowlist over tokens, not a regular expression over the text. First the
characters: outside string literals only printable ASCII, tab / CR / LF and NFKC-stable letters,
digits and marks may appear (no zero-width, byte-order-mark, Mongolian vowel separator, no-break or
ideographic spaces, no control characters, no fullwidth look-alikes), so no invisible character can
hide a keyword from this check while the store's parser reads it as whitespace. Then the statement:
one statement, starting with a read clause (MATCH, OPTIONAL MATCH, UNWIND, WITH, RETURN, CALL of a
read-only procedure or a subquery), and no writing, file, extension, transaction, checkpoint or
setting keyword in clause position anywhere (CREATE, MERGE, SET, DELETE, REMOVE, DROP, LOAD, COPY,
EXPORT, IMPORT, INSTALL, ATTACH, USE, BEGIN, COMMIT, CHECKPOINT, ...). String literals, comments,
``$parameters``, ```backtick``` identifiers, property keys (``n.set``), labels and types
(``:Set``), map keys (``{set: 1}``) and names right after ``AS`` are never keywords, so ``RETURN 1
AS set`` and ``MATCH (set:Product) RETURN set`` run while ``MATCH (n) SET n.x = 1`` is refused. The
stores then ask the database itself: the embedded store runs analysts' queries in a separate worker
process on a read-only handle, after LadybugDB's own plan of the query (``EXPLAIN``) showed only
read operators (graph/ladybug_store.py); Neo4j runs them in a READ transaction.

>>> tokens("RETURN 'a;b' AS set // CREATE")
[Token(kind='word', text='RETURN', pos=0), Token(kind='string', text="'a;b'", pos=7), \
Token(kind='word', text='AS', pos=13), Token(kind='word', text='set', pos=16)]
>>> refuse_writes("MATCH (set:Product) RETURN set.price AS delete")
>>> refuse_writes("MATCH (n:Product) SET n.price = 0")
Traceback (most recent call last):
    ...
tiein.errors.WriteRefused: queries are read-only: SET is not allowed (offset 18)
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from tiein.errors import ConfigError, CypherError, WriteRefused

if TYPE_CHECKING:
    from graph.base import GraphStore
    from tiein.cypher_worker import WorkerLimits

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 600.0

# Clauses / statements that write, change settings, manage the server or transactions, or read
# or write files (refused wherever they stand in clause position).
WRITE_WORDS = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "FOREACH", "LOAD", "COPY",
        "ALTER", "INSTALL", "UNINSTALL", "UPDATE", "ATTACH", "USE", "EXPORT", "IMPORT", "BEGIN",
        "COMMIT", "ROLLBACK", "CHECKPOINT", "TRUNCATE", "RENAME", "GRANT", "DENY", "REVOKE",
        "TERMINATE", "START", "STOP", "ENABLE", "DISABLE", "EXPLAIN", "PROFILE", "PROJECT", "MACRO",
        "FINISH", "INSERT", "SHOW", "DESCRIBE",
    }
)  # fmt: skip
# The clauses a read-only query may start with (the allowlist).
READ_STARTS = ("MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL")
# Whitespace the check and both stores' parsers agree on; any other space or control is refused.
_ASCII_SPACE = frozenset(" \t\n\r")
_PLAIN = re.compile(r"[ -~\t\n\r]*")
# Procedures a read-only query may CALL (exact names, lower-case) and prefixes of read-only families.
READ_PROCEDURES = frozenset(
    {
        "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
        "db.schema.nodetypeproperties", "db.schema.reltypeproperties", "db.indexes",
        "db.constraints", "dbms.components", "show_tables", "table_info", "show_connection",
        "current_setting", "db_version", "show_functions",
    }
)  # fmt: skip
READ_PROCEDURE_PREFIXES = ("apoc.meta.", "apoc.path.", "apoc.algo.", "apoc.coll.", "apoc.text.")

# Keywords after which a write keyword is a clause (``DETACH DELETE``, ``ON CREATE SET``,
# ``UNION CREATE``, ``| SET`` in FOREACH); any other keyword makes the next word an expression.
_CLAUSE_LEADS = frozenset({"DETACH", "ON", "UNION", "ALL"})
# Keywords that never end an expression (``RETURN set``: ``set`` is a variable there). ASC / DESC
# end one (``ORDER BY x DESC SET ...`` is a SET clause).
_EXPRESSION_LEADS = frozenset(
    {
        "RETURN", "WITH", "WHERE", "BY", "AND", "OR", "XOR", "NOT", "IN", "DISTINCT", "AS", "MATCH",
        "OPTIONAL", "UNWIND", "ORDER", "SKIP", "LIMIT", "CASE", "WHEN", "IS", "STARTS", "ENDS",
        "CONTAINS", "YIELD", "CALL", "EXISTS",
    }
)  # fmt: skip


class Token(NamedTuple):
    """One Cypher token: ``kind`` is word, param, string, ident (backticks), number or symbol."""

    kind: str
    text: str
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\r\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z))
  | (?P<ident>`(?:[^`]|``)*(?:`|\Z))
  | (?P<param>\$(?:\w+|`(?:[^`]|``)*`))
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<word>\w+)
  | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _scan(cypher: str) -> list[Token]:
    """Every token of ``cypher``, whitespace and comments included."""
    return [Token(m.lastgroup or "symbol", m.group(), m.start()) for m in _TOKEN_RE.finditer(cypher)]


def tokens(cypher: str) -> list[Token]:
    """The tokens of ``cypher``, comments and whitespace dropped. Unterminated strings, comments
    and backtick identifiers run to the end (the store then reports the syntax error)."""
    return [t for t in _scan(cypher) if t.kind not in ("ws", "comment")]


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, unicodedata.category(ch))})"


def _bad_char(ch: str, kind: str) -> bool:
    """Whether ``ch`` may not stand in a token of ``kind`` (see :func:`check_characters`)."""
    if " " <= ch <= "~" or ch in _ASCII_SPACE:
        return False
    if kind in ("ws", "symbol") or ch < " " or ch == "\x7f":
        return True  # non-ASCII space or punctuation, controls
    cat = unicodedata.category(ch)[0]
    if cat in "CZ":  # format (zero-width, BOM, U+180E), controls, separators, private, unassigned
        return True
    if kind == "comment":
        return False  # Chinese text, punctuation: a comment cannot end but at a line break
    if unicodedata.normalize("NFKC", ch) != ch:
        return True  # fullwidth look-alikes, ligatures, compatibility forms
    return cat not in "LMN" and not (kind == "ident" and cat in "PS")  # names: letters, digits, marks


def check_characters(cypher: str) -> None:
    """Raise CypherError for a character the query may not hold outside its string literals:
    control and format characters (zero-width spaces and joiners, the byte-order mark U+FEFF,
    U+180E, bidi controls), spaces other than ASCII ones (U+00A0, U+3000, ...), line and
    paragraph separators, and characters that Unicode normalisation (NFKC) would change, such as
    fullwidth letters and punctuation. Letters of any script are fine in names and comments, any
    character in string literals.

    >>> check_characters("MATCH (p:产品) RETURN p.title // 露营")
    >>> check_characters("\ufeffLOAD FROM 'x' RETURN *")
    Traceback (most recent call last):
        ...
    tiein.errors.CypherError: the query holds the invisible or control character U+FEFF (ZERO WIDTH NO-BREAK SPACE) at offset 0; only ASCII spaces, tabs and line feeds may separate words (remove it, or put it in a string literal)
    """
    for tok in _scan(cypher):
        if tok.kind == "string" or _PLAIN.fullmatch(tok.text):
            continue
        for i, ch in enumerate(tok.text):
            if _bad_char(ch, tok.kind):
                raise CypherError(
                    f"the query holds the invisible or control character {_char_name(ch)} at offset "
                    f"{tok.pos + i}; only ASCII spaces, tabs and line feeds may separate words (remove it, "
                    "or put it in a string literal)"
                    if unicodedata.category(ch)[0] in "CZ" or tok.kind == "ws"
                    else f"the query holds the character {_char_name(ch)} at offset {tok.pos + i}, which is "
                    f"not allowed outside a string literal (write {unicodedata.normalize('NFKC', ch)!r} "
                    "in ASCII, or put it in a string literal)"
                )


def _ends_expression(tok: Token | None) -> bool:
    """Whether a clause may start right after ``tok`` (it ends an expression or a clause)."""
    if tok is None:
        return True
    if tok.kind == "word":
        upper = tok.text.upper()
        return upper in _CLAUSE_LEADS or upper not in _EXPRESSION_LEADS
    if tok.kind == "symbol":
        return tok.text in (")", "]", "}", "{", "|", "*")
    return True  # string, number, parameter, backtick identifier


def _procedure_name(toks: list[Token], i: int) -> tuple[str, int]:
    """The dotted procedure name starting at ``toks[i]`` and the index after it."""
    parts: list[str] = []
    while i < len(toks) and toks[i].kind in ("word", "ident"):
        parts.append(toks[i].text.strip("`"))
        i += 1
        if i < len(toks) and toks[i].text == ".":
            i += 1
        else:
            break
    return ".".join(parts), i


def refuse_writes(cypher: str) -> None:
    """Raise WriteRefused unless ``cypher`` is one read-only statement: it must start with a read
    clause (:data:`READ_STARTS`) and have no writing, file, extension, transaction, checkpoint or
    setting clause (:data:`WRITE_WORDS`: CREATE, MERGE, SET, DELETE, LOAD, COPY, EXPORT, INSTALL,
    BEGIN, CHECKPOINT, ...; ``CALL threads=4``), nor a CALL of a procedure not known to be
    read-only. CypherError for several statements, an empty query, a query that starts with
    something else, or a character no query needs (:func:`check_characters`)."""
    if not isinstance(cypher, str) or not cypher.strip():
        raise CypherError("the query is empty")
    check_characters(cypher)
    toks = tokens(cypher)
    if not toks:
        raise CypherError("the query is empty (only comments)")
    first = toks[0].text.upper() if toks[0].kind == "word" else toks[0].text
    if first in WRITE_WORDS:
        raise WriteRefused(f"queries are read-only: {first} is not allowed (offset {toks[0].pos})")
    if first not in READ_STARTS:
        raise CypherError(
            f"queries are read-only and start with {', '.join(READ_STARTS[:-1])} or {READ_STARTS[-1]}, "
            f"not {toks[0].text[:40]!r}"
        )
    for i, tok in enumerate(toks):
        if tok.kind == "symbol" and tok.text == ";":
            if any(t.text != ";" for t in toks[i + 1 :]):
                raise CypherError("one statement at a time: remove the ';' and run the statements separately")
            continue
        if tok.kind != "word":
            continue
        word = tok.text.upper()
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if prev is not None and prev.text in (".", ":", "$"):
            continue  # property key, label / relationship type
        if prev is not None and prev.kind == "word" and prev.text.upper() == "AS":
            continue  # an alias
        if nxt is not None and nxt.text in (":", ",", "}") and prev is not None and prev.text in ("{", ","):
            continue  # a map key, or a variable in a map projection (n {.x, set})
        if word == "CALL" and _ends_expression(prev):
            _check_call(toks, i + 1)
            continue
        if word in WRITE_WORDS and _ends_expression(prev):
            raise WriteRefused(f"queries are read-only: {word} is not allowed (offset {tok.pos})")


def _check_call(toks: list[Token], i: int) -> None:
    """CALL at ``toks[i - 1]``: a subquery ``CALL {`` (its body is scanned like the rest), a
    read-only procedure, or refused."""
    if i >= len(toks):
        raise CypherError("CALL needs a procedure name")
    if toks[i].text == "{" or toks[i].text == "(":  # CALL { ... } / CALL (x) { ... }
        return
    name, j = _procedure_name(toks, i)
    if j < len(toks) and toks[j].text == "=":
        raise WriteRefused(f"queries are read-only: changing the setting {name!r} is not allowed")
    low = name.lower()
    if low in READ_PROCEDURES or low.startswith(READ_PROCEDURE_PREFIXES):
        return
    raise WriteRefused(
        f"queries are read-only: CALL {name} is not on the list of read-only procedures "
        f"({', '.join(sorted(READ_PROCEDURES))}, {', '.join(p + '*' for p in READ_PROCEDURE_PREFIXES)})"
    )


def parameters(cypher: str) -> set[str]:
    """The ``$names`` a query uses (outside strings and comments)."""
    return {t.text[1:].strip("`").replace("``", "`") for t in tokens(cypher) if t.kind == "param"}


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
        raise ConfigError(f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, got {timeout_s!r}")
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
    query_rows = getattr(store, "query_rows", None)
    path = embedded_path(store) if worker is not False else None
    if path is not None:
        from tiein.cypher_worker import WorkerLimits, run_isolated

        limits = worker if isinstance(worker, WorkerLimits) else None
        columns, rows = run_isolated(path, query, params, limit=limit + 1, timeout_s=float(timeout_s), limits=limits)
    elif query_rows is not None:
        columns, rows = query_rows(query, params, limit=limit + 1, timeout_s=float(timeout_s))
    else:  # a store without the row-level entry point: whole answer, cut here
        records = store.query(query, params)
        columns = list(records[0]) if records else []
        rows = [list(r.values()) for r in records[: limit + 1]]
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    truncated = len(rows) > limit
    return CypherResult(
        columns=list(columns),
        rows=[[json_safe(v) for v in row] for row in rows[:limit]],
        truncated=truncated,
        elapsed_ms=round(elapsed_ms, 3),
        limit=limit,
        store=getattr(store, "name", type(store).__name__),
    )


def embedded_path(store: Any) -> Any:
    """The directory of the embedded store ``store`` is (or that a snapshot wraps), where a
    worker process can open it; None for other stores and where no worker can run (not POSIX)."""
    import os

    from graph.ladybug_store import EmbeddedStore

    inner = getattr(store, "store", store)  # graph.snapshot.SnapshotStore wraps the embedded store
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

"""The read-only guard for analysts' Cypher, before any store sees a query (both dialects).

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

import re
import unicodedata
from typing import NamedTuple

from tiein.errors import CypherError, WriteRefused

# Clauses / statements that write, change settings, manage the server or transactions, or read
# or write files (refused wherever they stand in clause position).
WRITE_WORDS = frozenset(
    {
        "CREATE",
        "MERGE",
        "SET",
        "DELETE",
        "DETACH",
        "REMOVE",
        "DROP",
        "FOREACH",
        "LOAD",
        "COPY",
        "ALTER",
        "INSTALL",
        "UNINSTALL",
        "UPDATE",
        "ATTACH",
        "USE",
        "EXPORT",
        "IMPORT",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "CHECKPOINT",
        "TRUNCATE",
        "RENAME",
        "GRANT",
        "DENY",
        "REVOKE",
        "TERMINATE",
        "START",
        "STOP",
        "ENABLE",
        "DISABLE",
        "EXPLAIN",
        "PROFILE",
        "PROJECT",
        "MACRO",
        "FINISH",
        "INSERT",
        "SHOW",
        "DESCRIBE",
    }
)
# The clauses a read-only query may start with (the allowlist).
READ_STARTS = ("MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL")
# Whitespace the check and both stores' parsers agree on; any other space or control is refused.
_ASCII_SPACE = frozenset(" \t\n\r")
_PLAIN = re.compile(r"[ -~\t\n\r]*")
# Procedures a read-only query may CALL (exact names, lower-case) and prefixes of read-only families.
READ_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.indexes",
        "db.constraints",
        "dbms.components",
        "show_tables",
        "table_info",
        "show_connection",
        "current_setting",
        "db_version",
        "show_functions",
    }
)
READ_PROCEDURE_PREFIXES = ("apoc.meta.", "apoc.path.", "apoc.algo.", "apoc.coll.", "apoc.text.")

# Keywords after which a write keyword is a clause (``DETACH DELETE``, ``ON CREATE SET``,
# ``UNION CREATE``, ``| SET`` in FOREACH); any other keyword makes the next word an expression.
_CLAUSE_LEADS = frozenset({"DETACH", "ON", "UNION", "ALL"})
# Keywords that never end an expression (``RETURN set``: ``set`` is a variable there). ASC / DESC
# end one (``ORDER BY x DESC SET ...`` is a SET clause).
_EXPRESSION_LEADS = frozenset(
    {
        "RETURN",
        "WITH",
        "WHERE",
        "BY",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "IN",
        "DISTINCT",
        "AS",
        "MATCH",
        "OPTIONAL",
        "UNWIND",
        "ORDER",
        "SKIP",
        "LIMIT",
        "CASE",
        "WHEN",
        "IS",
        "STARTS",
        "ENDS",
        "CONTAINS",
        "YIELD",
        "CALL",
        "EXISTS",
    }
)


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

"""Where a relation's evidence lives in the stores: an ``Evidence`` node per relation (its JSON
text), keyed by ``evidence_id``, which the relationship carries (docs/schema.md).

Why a node and not a property of the relationship: LadybugDB's ``COPY`` of a relationship table
holds the whole table in memory with its text dictionary-encoded, ~9 x the text; a node table goes
in node groups, ~1.2 x (50k products / 4M lines: the complements' 525 MB of evidence +4.7 GB as a
property, +0.65 GB as nodes; docs/scale-out.md). Both stores keep the same schema, so an
analyst's Cypher is the same on either; a relationship an analyst's query returns whole gets its
evidence back from these nodes (:func:`attach_evidence`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.model import REL_TYPE

EVIDENCE = pa.schema([("evidence_id", pa.int64()), ("evidence", pa.string())])


_ID_MASK = (1 << 63) - 1  # evidence ids are non-negative INT64s


def evidence_ids(keys: pa.Table) -> np.ndarray:
    """The Evidence node key of each relation of ``keys`` (``src``, ``dst``, ``kind``; unique,
    in the store's order): the low 63 bits of the MD5 of its kind, source and target, so the same
    relation keeps its key from build to build and update to update (an update's delta then
    changes only the evidence that changed). Should two relations' hashes ever collide, the later
    one in ``keys``' order takes the next free key.

    >>> keys = pa.table({"src": ["a", "a"], "dst": ["b", "c"], "kind": ["complement", "complement"]})
    >>> ids = evidence_ids(keys)
    >>> len(set(ids.tolist())), bool((ids >= 0).all()), evidence_ids(keys.slice(1)).tolist() == ids[1:].tolist()
    (2, True, True)
    """
    import duckdb

    if keys.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    con = duckdb.connect()
    try:
        con.register("k", keys)
        got = con.sql(
            "SELECT (md5_number_lower(kind || chr(0) || src || chr(0) || dst) & "
            f"{_ID_MASK}::UBIGINT)::BIGINT AS id FROM k"
        ).fetchnumpy()["id"]
    finally:
        con.close()
    return free_ids(np.asarray(got, dtype=np.int64))


def free_ids(ids: np.ndarray) -> np.ndarray:
    """``ids`` with every repeat moved to the next key not taken (in order: the first keeps its
    key), wrapping within 63 bits.

    >>> free_ids(np.array([5, 7, 5, 6, 5])).tolist()
    [5, 7, 8, 6, 9]
    """
    if len(np.unique(ids)) == len(ids):
        return ids
    out = ids.copy()
    taken = set(np.unique(ids).tolist())  # every first holder keeps its key
    seen: set[int] = set()
    for i, v in enumerate(ids.tolist()):
        if v not in seen:
            seen.add(v)
            continue
        while v in taken:
            v = (v + 1) & _ID_MASK
        taken.add(v)
        out[i] = v
    return out


def evidence_nodes(evidence: dict[str, pa.Table]) -> pa.Table:
    """The Evidence nodes of these relation types (tables of ``GraphTables.evidence``), one after
    the other (their chunks kept: nothing copied)."""
    parts = [t for t in evidence.values() if t.num_rows]
    return pa.concat_tables(parts) if parts else EVIDENCE.empty_table()


_RELATION_TYPES = frozenset(REL_TYPE.values())


def _is_relation(value: dict[str, Any]) -> bool:
    """Whether a query value is a relation relationship with its key: a relation type's label,
    its ends, an integer ``evidence_id`` (an analyst's own map that only looks like one, e.g.
    ``{_START: 'x', evidence_id: 'abc'}``, is left as it is)."""
    key = value.get("evidence_id")
    return (
        value.get("_LABEL") in _RELATION_TYPES
        and "_START" in value
        and "_END" in value
        and isinstance(key, int)
        and not isinstance(key, bool)
    )


def evidence_object(value: Any) -> Any:
    """Evidence stored as JSON text, as the object it holds (other text, and null, as is): what
    every analyst answer shows, on both stores.

    >>> evidence_object('{"lift": 2.5}'), evidence_object("not json {"), evidence_object(None)
    ({'lift': 2.5}, 'not json {', None)
    """
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _relationships_with_evidence(value: Any, found: list[dict[str, Any]]) -> None:
    """Every relation relationship (:func:`_is_relation`) inside a query value."""
    if isinstance(value, dict):
        if _is_relation(value):
            found.append(value)
        for v in value.values():
            if isinstance(v, (dict, list)):
                _relationships_with_evidence(v, found)
    elif isinstance(value, list):
        for v in value:
            _relationships_with_evidence(v, found)


def attach_evidence(rows: list[list[Any]], lookup: Callable[[list[int]], dict[int, Any]]) -> None:
    """Give every relationship an analyst's query returned (``RETURN r``, in lists and paths too)
    its ``evidence`` object, right after its ``evidence_id``: the evidence lives in Evidence
    nodes (docs/schema.md), ``lookup`` reads the texts of the given keys in one query. Changes
    ``rows`` in place.

    >>> rows = [[{"_LABEL": "COMPLEMENT", "score": 1.0, "evidence_id": 7, "_ID": "r", "_START": "a", "_END": "b"}]]
    >>> attach_evidence(rows, lambda ids: {i: '{"lift": 2.5}' for i in ids})
    >>> list(rows[0][0]), rows[0][0]["evidence"]
    (['_LABEL', 'score', 'evidence_id', 'evidence', '_ID', '_START', '_END'], {'lift': 2.5})
    """
    rels: list[dict[str, Any]] = []
    _relationships_with_evidence(rows, rels)
    if not rels:
        return
    texts = lookup(sorted({r["evidence_id"] for r in rels}))
    for rel in rels:
        evidence = evidence_object(texts.get(rel["evidence_id"]))
        items = list(rel.items())
        rel.clear()
        for k, v in items:
            rel[k] = v
            if k == "evidence_id":
                rel["evidence"] = evidence

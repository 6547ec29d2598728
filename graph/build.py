"""Derive the node and relationship tables of the graph from a :class:`tiein.model.GraphData`.

Pure and store-agnostic: every store (embedded LadybugDB, Neo4j) loads exactly the tables
:func:`graph_tables` returns, so both hold the same graph. The graph model is described in
docs/schema.md (the one schema file); :data:`NODE_SCHEMAS` and :data:`REL_SCHEMAS` are its
machine-readable form.

Validation happens here, once, for every store: product / scene ids unique and non-null, every
relationship endpoint an existing node, co-occurrence pairs stored once with ``a < b``, relation
kinds known, no self-loops, no duplicate edges. A violation raises :class:`InputError` naming the
table, the 1-based row and the column.

>>> import pyarrow as pa
>>> from tiein.model import PRODUCTS, GraphData
>>> p = pa.Table.from_pylist([{"product_id": "1", "title": "Tent", "category": "tents",
...     "category_path": "outdoor > tents", "brand": "Acme", "price": 99.0,
...     "stock": 3, "attributes": '{"color": "green"}'}], schema=PRODUCTS)
>>> t = graph_tables(GraphData(products=p))
>>> t.nodes["Category"].column("category_id").to_pylist()
['outdoor', 'outdoor > tents']
>>> t.rels["HAS_ATTRIBUTE"].to_pylist()
[{'src': '1', 'dst': 'color=green'}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import InputError
from tiein.graph.evidence import EVIDENCE, evidence_ids, evidence_nodes
from tiein.model import (
    CATEGORY_SEP,
    OPTIONAL_PRODUCT_FIELDS,
    PAIR_STATS,
    PRODUCTS,
    REL_TYPE,
    RELATION_KINDS,
    RELATIONS,
    SALES_ROLES,
    SCENE_MEMBERS,
    SCENES,
    GraphData,
    unknown_kind,
)

# ----------------------------------------------------------------------------- graph schema
# Node label -> schema; the first column is the primary key.
NODE_SCHEMAS: dict[str, pa.Schema] = {
    "Product": PRODUCTS,
    "Category": pa.schema([("category_id", pa.string()), ("name", pa.string()), ("level", pa.int64())]),
    "Brand": pa.schema([("name", pa.string())]),
    "Attribute": pa.schema([("attribute_id", pa.string()), ("key", pa.string()), ("value", pa.string())]),
    "Scene": SCENES,
    # each relation's evidence JSON, kept out of the relationship tables: LadybugDB's COPY of a
    # relationship table holds ~9 x its text in memory, a node table ~1.2 x (docs/scale-out.md)
    "Evidence": EVIDENCE,
}

_PAIR_PROPS = [f for f in PAIR_STATS if f.name not in ("a", "b")]
_RELATION_PROPS = [
    *(f for f in RELATIONS if f.name not in ("src", "dst", "kind", "evidence")),
    pa.field("evidence_id", pa.int64()),  # the key of its Evidence node
]
_KEYS = [pa.field("src", pa.string()), pa.field("dst", pa.string())]

# Relationship type -> (from label, to label, schema with src, dst, then the properties).
REL_ENDPOINTS: dict[str, tuple[str, str]] = {
    "IN_CATEGORY": ("Product", "Category"),
    "CHILD_OF": ("Category", "Category"),
    "HAS_BRAND": ("Product", "Brand"),
    "HAS_ATTRIBUTE": ("Product", "Attribute"),
    "IN_SCENE": ("Product", "Scene"),
    "CO_PURCHASED": ("Product", "Product"),
    "CO_VIEWED": ("Product", "Product"),
    **{REL_TYPE[kind]: ("Product", "Product") for kind in RELATION_KINDS},
}
REL_SCHEMAS: dict[str, pa.Schema] = {
    "IN_CATEGORY": pa.schema(_KEYS),
    "CHILD_OF": pa.schema(_KEYS),
    "HAS_BRAND": pa.schema(_KEYS),
    "HAS_ATTRIBUTE": pa.schema(_KEYS),
    "IN_SCENE": pa.schema([*_KEYS, SCENE_MEMBERS.field("role"), SCENE_MEMBERS.field("weight")]),
    "CO_PURCHASED": pa.schema([*_KEYS, *_PAIR_PROPS]),
    "CO_VIEWED": pa.schema([*_KEYS, *_PAIR_PROPS]),
    **{REL_TYPE[kind]: pa.schema([*_KEYS, *_RELATION_PROPS]) for kind in RELATION_KINDS},
}


@dataclass
class GraphTables:
    """Rows to load: ``nodes[label]`` follows ``NODE_SCHEMAS[label]`` (key first, unique, non-null);
    ``rels[type]`` follows ``REL_SCHEMAS[type]`` (``src``, ``dst`` keys, then properties).
    Every label and type is present (possibly empty); tables are in a deterministic order.
    ``evidence[type]``: the Evidence nodes of one relation type's relationships, in their order
    (``nodes["Evidence"]`` is these one after the other, nothing copied)."""

    nodes: dict[str, pa.Table]
    rels: dict[str, pa.Table]
    meta: dict[str, Any]
    evidence: dict[str, pa.Table] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """{"nodes": {label: rows}, "relationships": {type: rows}} — what a store must report."""
        return {
            "nodes": {k: v.num_rows for k, v in self.nodes.items()},
            "relationships": {k: v.num_rows for k, v in self.rels.items()},
        }


# ----------------------------------------------------------------------------- helpers
def conform(table: pa.Table, schema: pa.Schema, name: str, optional: tuple[str, ...] = ()) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order, cast where lossless; else InputError.
    Columns named in ``optional`` may be missing: they are read as all null."""
    cols = []
    for f in schema:
        if f.name not in table.column_names and f.name in optional:
            cols.append(pa.nulls(table.num_rows, f.type))
            continue
        if f.name not in table.column_names:
            raise InputError(f"missing column (expected {schema.names})", file=name, column=f.name)
        col = table.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"has type {col.type}, expected {f.type}: {exc}", file=name, column=f.name
                ) from exc
        cols.append(col)
    return pa.Table.from_arrays([_one_chunk_if_small(c) for c in cols], schema=schema)


# Columns at least this big stay in the chunks they come in (a string column past 2 GiB cannot be
# one chunk: Arrow's 32-bit offsets; the evidence of a 200k-product, 16M-line shop is ~2.5 GB),
# and string ones are taken in pieces of about this size (_take_in_pieces): joining, or Arrow's
# take, would copy the whole column first (the 4M-line shop's graph tables, 680 MB of evidence:
# +2.4-2.9 GB, 1.8-3.4 s joined below 1 GiB; +1.45-1.9 GB, 1.7-3.0 s in pieces; every table equal)
_PIECE_BYTES = 1 << 26


def _one_chunk_if_small(col: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A small column as one chunk; a big one as it is (joining it would copy it whole)."""
    return col if col.nbytes >= _PIECE_BYTES else _flat(col)


def _take(table: pa.Table, order: pa.Array | pa.ChunkedArray) -> pa.Table:
    """``table.take(order)``: a slice of ``table`` (nothing copied) when ``order`` is one run of
    consecutive rows (0..n-1 included); otherwise string columns of :data:`_PIECE_BYTES` or more
    are taken in pieces (:func:`_take_in_pieces`: Arrow's take joins a column's chunks first,
    which copies it whole and past 2 GiB of text overflows)."""
    n = table.num_rows
    if n == 0:
        return table
    m = len(order)
    first = int(order[0].as_py()) if m else 0
    if first + m <= n and pc.all(pc.equal(order, pa.array(np.arange(first, first + m)))).as_py():
        return table.slice(first, m)
    cols = []
    for col in table.columns:
        if pa.types.is_string(col.type) and col.nbytes >= _PIECE_BYTES:
            cols.append(_take_in_pieces(col, order))
        else:
            cols.append(col.take(order))
    return pa.Table.from_arrays(cols, schema=table.schema)


def _take_in_pieces(col: pa.ChunkedArray, order: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """``col.take(order)`` for a big string column (one chunk cannot pass 2 GiB): the output in
    pieces of about :data:`_PIECE_BYTES`, each gathered from the chunks its rows are in, so that
    neither the column nor the output is ever joined (the text is copied once, plus a piece)."""
    at = np.asarray(pc.cast(order, pa.int64()).to_numpy(), dtype=np.int64)
    starts = np.cumsum([0, *(len(c) for c in col.chunks)])
    n = len(at)
    step = max(1, n * _PIECE_BYTES // max(col.nbytes, 1))
    pieces = []
    for s in range(0, n, step):
        rows = at[s : s + step]
        chunk = np.searchsorted(starts, rows, side="right") - 1
        by_chunk = np.argsort(chunk, kind="stable")
        used, first = np.unique(chunk[by_chunk], return_index=True)
        parts = [
            col.chunks[int(c)].take(pa.array(rows[by_chunk[a:b]] - starts[c]))
            for c, a, b in zip(used, first, [*first[1:], len(rows)], strict=True)
        ]
        gathered = pa.concat_arrays(parts)  # rows in chunk order; put back in ``order``'s order
        back = np.empty(len(rows), dtype=np.int64)
        back[by_chunk] = np.arange(len(rows))
        pieces.append(gathered.take(pa.array(back)))
    return pa.chunked_array(pieces, col.type)


def _first(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """0-based index of the first true value in a boolean mask (nulls count as false), or None."""
    idx = pc.indices_nonzero(pc.fill_null(mask, False))
    return None if len(idx) == 0 else int(idx[0].as_py())


def _require_non_null(table: pa.Table, column: str, name: str) -> None:
    """Raise InputError on the first null or empty string in ``column``."""
    col = table.column(column)
    bad = _first(pc.or_(pc.is_null(col), pc.equal(pc.utf8_length(pc.fill_null(col, "")), 0)))
    if bad is not None:
        raise InputError("is empty", file=name, row=bad + 1, column=column)


def _sorted_unique(table: pa.Table, keys: tuple[str, ...], name: str, what: str) -> pa.Table:
    """``table`` sorted by ``keys``; InputError naming the first row (in input order) that repeats
    an earlier row's keys."""
    if table.num_rows == 0:
        return table
    return _take(table, _unique_order(table, keys, name, what))


def _unique_order(
    table: pa.Table, keys: tuple[str, ...], name: str, what: str, shown: tuple[str, ...] | None = None
) -> pa.Array:
    """The order that sorts ``table`` by ``keys``; InputError naming the first row (in input
    order) that repeats an earlier row's keys (its values in the order of ``shown``, default
    ``keys``). One stable sort serves both: duplicates end up adjacent. Only the key columns are
    taken."""
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    n = table.num_rows
    same = None
    for k in keys:
        col = _flat(table.column(k).take(order))
        eq = pc.equal(col.slice(1), col.slice(0, n - 1))
        same = eq if same is None else pc.and_(same, eq)
    assert same is not None
    if pc.any(same).as_py():
        later = _flat(order).slice(1).filter(same)  # stable: the later row of each equal pair
        row = int(pc.min(later).as_py())
        values = ", ".join(repr(table.column(k)[row].as_py()) for k in shown or keys)
        raise InputError(
            f"duplicate {what} ({values})", file=name, row=row + 1, column=",".join(shown or keys)
        )
    return order


def _require_in(
    values: pa.Array | pa.ChunkedArray, keys: pa.Array, name: str, column: str, label: str
) -> None:
    """Raise InputError on the first value not among the node keys ``keys`` of ``label``."""
    bad = _first(pc.invert(pc.is_in(values, value_set=keys)))
    if bad is not None:
        raise InputError(
            f"{values[bad].as_py()!r} is not a {label} node (unknown {label.lower()})",
            file=name,
            row=bad + 1,
            column=column,
        )


# ----------------------------------------------------------------------------- derivations
def _category_paths(products: pa.Table) -> pa.ChunkedArray:
    """Each product's full category path: category_path, else its category as a top-level one."""
    path = pc.coalesce(products.column("category_path"), products.column("category"))
    # blank strings mean "no category"
    blank = pc.equal(pc.utf8_trim_whitespace(pc.fill_null(path, "")), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), path)


def _categories(paths: pa.ChunkedArray) -> tuple[pa.Table, pa.Table, pa.Array]:
    """Category nodes (every prefix of every path), CHILD_OF edges (child -> parent), and each
    row's normalised path (levels stripped, so "a>b" and "a > b" are one Category node)."""
    uniq = pc.unique(pc.drop_null(paths))
    ids: dict[str, tuple[str, int, str | None]] = {}
    normalised: list[str] = []
    for path in uniq.to_pylist():  # distinct paths only: thousands, not millions
        parts = [p.strip() for p in path.split(CATEGORY_SEP.strip())]
        if any(not p for p in parts):
            row = _first(pc.equal(paths, path))
            raise InputError(
                f"category path {path!r} has an empty level",
                file="products",
                row=None if row is None else row + 1,
                column="category_path",
            )
        parent = None
        for depth in range(1, len(parts) + 1):
            cid = CATEGORY_SEP.join(parts[:depth])
            ids.setdefault(cid, (parts[depth - 1], depth, parent))
            parent = cid
        normalised.append(CATEGORY_SEP.join(parts))
    keys = sorted(ids)
    nodes = pa.table(
        {"category_id": keys, "name": [ids[k][0] for k in keys], "level": [ids[k][1] for k in keys]},
        schema=NODE_SCHEMAS["Category"],
    )
    child = [k for k in keys if ids[k][2] is not None]
    edges = pa.table({"src": child, "dst": [ids[k][2] for k in child]}, schema=REL_SCHEMAS["CHILD_OF"])
    row_paths = pa.array(normalised, pa.string()).take(_flat(pc.index_in(paths, value_set=uniq)))
    return nodes, edges, row_paths


def _flat(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A ChunkedArray as one Array (no copy when it has one chunk: Arrow's combine_chunks copies
    even then)."""
    if not isinstance(arr, pa.ChunkedArray):
        return arr
    return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()


def _attribute_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _attributes(products: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Attribute nodes ("key=value") and HAS_ATTRIBUTE edges from the products' JSON objects.

    A list value gives one attribute per element; null values are skipped; non-string scalars
    and nested objects are written as JSON (``true``, ``1.5``)."""
    col = products.column("attributes")
    uniq = pc.unique(pc.drop_null(col))
    per_uniq: list[list[str]] = []
    attrs: dict[str, tuple[str, str]] = {}
    for text in uniq.to_pylist():  # distinct JSON strings only, each parsed once
        try:
            obj = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            row = _first(pc.equal(col, text))
            raise InputError(
                f"not valid JSON ({exc.msg})",
                file="products",
                row=None if row is None else row + 1,
                column="attributes",
            ) from exc
        if not isinstance(obj, dict):
            row = _first(pc.equal(col, text))
            raise InputError(
                'must be a JSON object like {"color": "red"}',
                file="products",
                row=None if row is None else row + 1,
                column="attributes",
            )
        ids: list[str] = []
        for key, raw in obj.items():
            for v in raw if isinstance(raw, list) else [raw]:
                if v is None or not str(key).strip():
                    continue
                value = _attribute_value(v)
                aid = f"{key}={value}"
                attrs.setdefault(aid, (key, value))
                if aid not in ids:
                    ids.append(aid)
        per_uniq.append(ids)
    keys = sorted(attrs)
    nodes = pa.table(
        {"attribute_id": keys, "key": [attrs[k][0] for k in keys], "value": [attrs[k][1] for k in keys]},
        schema=NODE_SCHEMAS["Attribute"],
    )
    # expand per product without a Python loop over products
    idx = _flat(pc.index_in(col, value_set=uniq))
    has = pc.is_valid(idx)
    lists = pa.array(per_uniq, pa.list_(pa.string())).take(idx.filter(has))
    pids = _flat(products.column("product_id")).filter(has)
    edges = pa.table(
        {"src": pids.take(pc.list_parent_indices(lists)), "dst": pc.list_flatten(lists)},
        schema=REL_SCHEMAS["HAS_ATTRIBUTE"],
    )
    return nodes, _sorted_unique(edges, ("src", "dst"), "products", "attribute")


def _pairs(table: pa.Table, name: str, product_ids: pa.Array) -> pa.Table:
    """CO_PURCHASED / CO_VIEWED rows from a PAIR_STATS table (validated: a < b, known, unique)."""
    t = conform(table, PAIR_STATS, name)
    for c in ("a", "b"):
        _require_non_null(t, c, name)
        _require_in(t.column(c), product_ids, name, c, "Product")
    bad = _first(pc.greater_equal(t.column("a"), t.column("b")))
    if bad is not None:
        raise InputError(
            f"pair ({t.column('a')[bad].as_py()!r}, {t.column('b')[bad].as_py()!r}) must be stored once "
            "with a < b (string order)",
            file=name,
            row=bad + 1,
            column="a",
        )
    t = _sorted_unique(t, ("a", "b"), name, "pair")
    t = t.rename_columns(["src", "dst", *t.column_names[2:]])
    return t.cast(REL_SCHEMAS["CO_PURCHASED"])


# the order the store's relation tables follow (one table per kind, each product's relations by
# score, best first, as the serving snapshot answers them: graph/snapshot_arrow.py): relations
# handed to graph_tables in this order are sliced into those tables, not copied, and the snapshot
# files take them as they are (the evidence text is most of a big shop's memory at the store step:
# 50k products / 4M lines, ~0.9 GB; sorted by (kind, src, dst) the snapshot took it again: 12 s)
STORE_SORT = [("kind", "ascending"), ("src", "ascending"), ("score", "descending"), ("dst", "ascending")]


def in_store_order(relations: pa.Table) -> pa.Table:
    """``relations`` sorted by :data:`STORE_SORT` (kind, src, score best first, dst), every row
    kept (nothing copied when sorted already; big text columns taken in pieces, as
    :func:`graph_tables` would).

    >>> t = pa.table({"src": ["b", "a", "a"], "dst": ["c", "d", "c"], "kind": ["next", "next", "complement"],
    ...               "score": [0.5, 0.9, 0.2]})
    >>> in_store_order(t).to_pydict()["dst"], in_store_order(t).to_pydict()["kind"]
    (['c', 'd', 'c'], ['complement', 'next', 'next'])
    """
    if relations.num_rows < 2:
        return relations
    return _take(relations, pc.sort_indices(relations, sort_keys=STORE_SORT))


def _relations(table: pa.Table, product_ids: pa.Array) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    """One table per relation type from RELATIONS (validated: kind known, no self-loop, unique),
    and the Evidence nodes of each (:func:`evidence_ids`)."""
    name = "relations"
    t = conform(table, RELATIONS, name)
    for c in ("src", "dst", "kind"):
        _require_non_null(t, c, name)
    for c in ("src", "dst"):
        _require_in(t.column(c), product_ids, name, c, "Product")
    kinds = pa.array(RELATION_KINDS)
    bad = _first(pc.invert(pc.is_in(t.column("kind"), value_set=kinds)))
    if bad is not None:
        raise InputError(
            unknown_kind(t.column("kind")[bad].as_py()),
            file=name,
            row=bad + 1,
            column="kind",
        )
    bad = _first(pc.equal(t.column("src"), t.column("dst")))
    if bad is not None:
        raise InputError(
            f"product {t.column('src')[bad].as_py()!r} related to itself",
            file=name,
            row=bad + 1,
            column="dst",
        )
    ev = t.column("evidence")
    like = _json_object_like(ev)  # untrimmed first: no copy of the text
    bad = _first(pc.invert(like))
    if bad is not None:
        odd = pc.indices_nonzero(pc.invert(pc.fill_null(like, False)))
        trimmed = pc.utf8_trim_whitespace(ev.take(odd))
        still = _first(pc.invert(_json_object_like(trimmed)))
        bad = None if still is None else int(odd[still].as_py())
    if bad is not None:
        raise InputError("evidence must be a JSON object", file=name, row=bad + 1, column="evidence")
    bad = _first(pc.is_null(t.column("score")))
    if bad is not None:
        raise InputError("score is missing", file=name, row=bad + 1, column="score")
    # sorted as the store keeps them (STORE_SORT): each kind's rows one range of the sort, so
    # relations that come in that order (tiein.stages) are sliced, not copied
    order = pc.sort_indices(t, sort_keys=STORE_SORT) if t.num_rows else pa.array([], pa.uint64())
    _require_unique_relations(t, product_ids, name)
    kind_of = t.column("kind").take(order)
    rows = t.select(["src", "dst", *[f.name for f in _RELATION_PROPS if f.name != "evidence_id"], "evidence"])
    out, evidence = {}, {}
    ids = pa.array(evidence_ids(t.select(["src", "dst"]).take(order).append_column("kind", kind_of)))
    for kind in RELATION_KINDS:  # one sort; each kind's rows taken from it: the text copied at most once
        rt = REL_TYPE[kind]
        mask = pc.equal(kind_of, kind)
        part = _take(rows, order.filter(mask))
        key = ids.take(pc.indices_nonzero(mask))
        evidence[rt] = pa.Table.from_arrays([key, part.column("evidence")], schema=EVIDENCE)
        out[rt] = part.drop_columns(["evidence"]).append_column("evidence_id", key).cast(REL_SCHEMAS[rt])
    return out, evidence


def _require_unique_relations(t: pa.Table, product_ids: pa.Array, name: str) -> None:
    """InputError naming the first row (in input order) that repeats an earlier row's (src, dst,
    kind). The ends and kinds as integer codes (every end is a product: checked before), one
    stable sort of their packed keys."""
    if t.num_rows < 2:
        return
    n = len(product_ids) + 1
    codes = [
        pc.index_in(t.column(c), value_set=product_ids).to_numpy(zero_copy_only=False).astype(np.int64)
        for c in ("src", "dst")
    ]
    kind = pc.index_in(t.column("kind"), value_set=pa.array(RELATION_KINDS)).to_numpy(zero_copy_only=False)
    keys = (kind.astype(np.int64) * n + codes[0]) * n + codes[1]
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    if same.any():
        row = int(order[1:][same].min())  # stable: the later row of each equal pair
        values = ", ".join(repr(t.column(c)[row].as_py()) for c in ("src", "dst", "kind"))
        raise InputError(f"duplicate relation ({values})", file=name, row=row + 1, column="src,dst,kind")


def _json_object_like(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Whether each text starts with "{" and ends with "}" (null where the text is)."""
    return pc.and_(pc.starts_with(text, "{"), pc.ends_with(text, "}"))


# ----------------------------------------------------------------------------- entry point
def graph_tables(data: GraphData) -> GraphTables:
    """Every node and relationship table of the graph built from ``data`` (see docs/schema.md).

    Raises InputError (file = the GraphData table, 1-based row, column) on invalid input.
    Output is deterministic: the same ``data`` gives identical tables."""
    products = conform(data.products, PRODUCTS, "products", optional=OPTIONAL_PRODUCT_FIELDS)
    _require_non_null(products, "product_id", "products")
    role = products.column("sales_role")
    bad = _first(pc.and_(pc.is_valid(role), pc.invert(pc.is_in(role, value_set=pa.array(SALES_ROLES)))))
    if bad is not None:
        raise InputError(
            f"unknown sales role {products.column('sales_role')[bad].as_py()!r} (valid: {', '.join(SALES_ROLES)}, or null)",
            file="products",
            row=bad + 1,
            column="sales_role",
        )
    products = _sorted_unique(products, ("product_id",), "products", "product id")
    pids = _flat(products.column("product_id"))

    # categories: IN_CATEGORY points at the normalised full path, which is a Category key
    cat_nodes, child_of, paths = _categories(_category_paths(products))
    has_cat = pc.is_valid(paths)
    in_category = pa.table(
        {"src": pids.filter(has_cat), "dst": paths.filter(has_cat)}, schema=REL_SCHEMAS["IN_CATEGORY"]
    )

    # brands: non-blank, stripped
    brand = _flat(pc.utf8_trim_whitespace(products.column("brand")))
    has_brand = pc.and_(pc.is_valid(brand), pc.not_equal(pc.fill_null(brand, ""), ""))
    brand_nodes = pa.table({"name": pc.unique(brand.filter(has_brand)).sort()}, schema=NODE_SCHEMAS["Brand"])
    has_brand_rel = pa.table(
        {"src": pids.filter(has_brand), "dst": brand.filter(has_brand)}, schema=REL_SCHEMAS["HAS_BRAND"]
    )

    attr_nodes, has_attribute = _attributes(products)

    scenes = conform(data.scenes, SCENES, "scenes")
    _require_non_null(scenes, "scene_id", "scenes")
    scenes = _sorted_unique(scenes, ("scene_id",), "scenes", "scene id")
    members = conform(data.scene_members, SCENE_MEMBERS, "scene_members")
    for c in ("product_id", "scene_id"):
        _require_non_null(members, c, "scene_members")
    _require_in(members.column("product_id"), pids, "scene_members", "product_id", "Product")
    _require_in(
        members.column("scene_id"), _flat(scenes.column("scene_id")), "scene_members", "scene_id", "Scene"
    )
    members = _sorted_unique(members, ("product_id", "scene_id"), "scene_members", "scene member")
    in_scene = members.rename_columns(["src", "dst", "role", "weight"]).cast(REL_SCHEMAS["IN_SCENE"])

    rels: dict[str, pa.Table] = {
        "IN_CATEGORY": in_category,
        "CHILD_OF": child_of,
        "HAS_BRAND": has_brand_rel,
        "HAS_ATTRIBUTE": has_attribute,
        "IN_SCENE": in_scene,
        "CO_PURCHASED": _pairs(data.co_purchased, "co_purchased", pids),
        "CO_VIEWED": _pairs(data.co_viewed, "co_viewed", pids),
    }
    relations, evidence = _relations(data.relations, pids)
    rels.update(relations)
    nodes = {
        "Product": products,
        "Category": cat_nodes,
        "Brand": brand_nodes,
        "Attribute": attr_nodes,
        "Scene": scenes,
        "Evidence": evidence_nodes(evidence),
    }
    return GraphTables(nodes=nodes, rels=rels, meta=_meta(data.meta), evidence=evidence)


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` as plain JSON data (what stores persist and ``stats()`` returns)."""
    try:
        return dict(json.loads(json.dumps(meta, ensure_ascii=False, allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be JSON-serialisable: {exc}", file="meta") from exc

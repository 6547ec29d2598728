"""Which baskets hold both ends of each related pair: the counting that season evidence
(tiein.season.stats, per month or calendar window) and segment evidence (tiein.segments, per
customer segment) share.

:func:`basket_pairs` numbers the baskets that have the attribute asked for (a date, a segment) and
2 to ``max_basket`` distinct products, the products, and the related pairs (``next`` aside: their
signal is a later order, not the same basket) once each; :func:`co_baskets` then finds every
(pair, basket) where both ends were bought (a compiled intersection of their basket lists). :func:`append_evidence` puts one
JSON object per relation into its evidence string under a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.mining.packed import sorted_by

SKIP_KINDS = ("next",)
JOIN_ROWS = 1 << 17  # evidence rows joined at a time (append_evidence)
TextsOf = Callable[[int, int], pa.Array]  # the texts of entries lo:hi (append_evidence)

# baskets of 2 to max_basket distinct products with the attribute, numbered j; their lines as
# (product code i, basket j); the related pairs (next aside) once each, a < b, numbered pid, with
# their ends' codes
_SQL = """
CREATE TEMP TABLE b AS
SELECT order_id, {attr} AS attr, (row_number() OVER (ORDER BY order_id) - 1)::BIGINT AS j
FROM o GROUP BY order_id
HAVING count(DISTINCT product_id) BETWEEN 2 AND $max_basket AND {attr} IS NOT NULL;
CREATE TEMP TABLE l AS SELECT DISTINCT b.j, o.product_id FROM o JOIN b ON b.order_id = o.order_id;
CREATE TEMP TABLE prod AS
SELECT product_id, (row_number() OVER (ORDER BY product_id) - 1)::BIGINT AS i
FROM (SELECT DISTINCT product_id FROM l UNION SELECT src FROM r UNION SELECT dst FROM r);
CREATE TEMP TABLE pr AS
SELECT least(src, dst) AS a, greatest(src, dst) AS b, (dense_rank() OVER (ORDER BY least(src, dst), greatest(src, dst)) - 1)::BIGINT AS pid,
       row, src < dst AS src_is_a
FROM r WHERE kind NOT IN (SELECT unnest($skip));
"""
_PAIRS_SQL = """
SELECT DISTINCT pr.pid, pa.i AS ai, pb.i AS bi FROM pr
JOIN prod pa ON pa.product_id = pr.a JOIN prod pb ON pb.product_id = pr.b ORDER BY pr.pid
"""
_LINES_SQL = "SELECT prod.i, l.j FROM l JOIN prod USING (product_id)"


@dataclass
class BasketPairs:
    """``attrs[j]``: basket j's attribute; pairs ``(ai[p], bi[p])`` as product codes; per
    counted relation (``row`` into the relations table) its pair ``row_pid`` and whether its
    source is the pair's first end (``src_is_a``); lines (product ``li``, basket ``lj``);
    ``n_prod`` product codes; ``pid`` / ``j``: every (pair, basket) holding both ends."""

    attrs: list[Any]
    ai: np.ndarray
    bi: np.ndarray
    row: np.ndarray
    row_pid: np.ndarray
    src_is_a: np.ndarray
    li: np.ndarray
    lj: np.ndarray
    n_prod: int
    pid: np.ndarray
    j: np.ndarray


def basket_pairs(
    orders: pa.Table,
    relations: pa.Table,
    attr_sql: str,
    column: str,
    *,
    max_basket: int,
    threads: int | None = None,
) -> BasketPairs:
    """The baskets of ``orders`` whose attribute ``attr_sql`` (an aggregate over an order's lines
    of ``column``, e.g. ``CAST(min(ts) AS DATE)``) is not null, and the co-purchase baskets of
    ``relations``' pairs (module docstring)."""
    import duckdb

    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register("o", orders.select(["order_id", "product_id", column]))
        r = relations.select(["src", "dst", "kind"])
        con.register("r", r.append_column("row", pa.array(np.arange(r.num_rows, dtype=np.int64))))
        for statement in filter(str.strip, _SQL.format(attr=attr_sql).split(";")):
            named = {"max_basket": max_basket, "skip": list(SKIP_KINDS)}
            con.execute(statement, {k: v for k, v in named.items() if f"${k}" in statement})
        attrs = [x[0] for x in con.execute("SELECT attr FROM b ORDER BY j").fetchall()]
        pairs = con.execute(_PAIRS_SQL).fetchnumpy()
        rows = con.execute("SELECT row, pid, src_is_a FROM pr ORDER BY row").fetchnumpy()
        lines = con.execute(_LINES_SQL).fetchnumpy()
        n_prod = int(con.execute("SELECT count(*) FROM prod").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()
    ai, bi = pairs["ai"].astype(np.int64), pairs["bi"].astype(np.int64)
    li, lj = lines["i"].astype(np.int64), lines["j"].astype(np.int64)
    row = rows["row"].astype(np.int64)
    if attrs and len(row):
        pid, j = co_baskets(ai, bi, li, lj, n_prod)
    else:
        pid, j = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return BasketPairs(
        attrs,
        ai,
        bi,
        row,
        rows["pid"].astype(np.int64),
        rows["src_is_a"].astype(bool),
        li,
        lj,
        n_prod,
        pid,
        j,
    )


class Handed:
    """A table handed over for good: the caller drops its own reference (``Handed(t)``, then
    ``del t``), so that :func:`append_evidence` can let the old evidence go a chunk at a time as
    it writes the new one (200k products / 16M lines: ~2 GB of evidence not held twice)."""

    def __init__(self, table: pa.Table) -> None:
        self._table: pa.Table | None = table

    @property
    def table(self) -> pa.Table:
        """The table, to read (keep no reference past the hand-over)."""
        assert self._table is not None, "handed over already"
        return self._table

    def take(self) -> pa.Table:
        """The table; this holder no longer has it."""
        table = self.table
        self._table = None
        return table


def append_evidence(
    relations: pa.Table | Handed, rows: np.ndarray, texts: pa.Array | TextsOf, key: str
) -> tuple[pa.Table, int]:
    """``relations`` with ``"key": text`` added to the evidence JSON object of row ``rows[k]``
    for each entry k (``rows`` ascending, each row at most once; a null text adds nothing), and how
    many rows got one. ``texts`` is the entries' texts (a string array as long as ``rows``) or a
    function giving those of entries ``lo:hi`` (called once per slice of the table, so the texts of
    a large table never exist all at once). Arrow string kernels, no loop over rows: when every
    evidence is a compact non-empty object (what tiein writes) the closing brace is replaced in
    slices; otherwise the rows that change are trimmed and joined in kernels (null or blank evidence
    becomes the new key alone). ``relations`` :class:`Handed` over: each old evidence chunk is let
    go once its rows are rewritten (the table comes back rewritten even when nothing was added)."""
    import pyarrow.compute as pc

    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > 1 and not (np.diff(rows) > 0).all():
        raise ValueError("append_evidence: rows must be ascending and distinct")
    texts_of = _slicer(texts) if isinstance(texts, pa.Array) else texts
    handed = isinstance(relations, Handed)
    table = relations.table if isinstance(relations, Handed) else relations
    if not table.num_rows or not len(rows):
        return (relations.take() if isinstance(relations, Handed) else table), 0
    evidence = table.column("evidence")
    idx = table.schema.get_field_index("evidence")
    compact = (
        evidence.null_count == 0
        and pc.all(pc.ends_with(evidence, "}")).as_py()
        and not pc.any(pc.less(pc.utf8_length(evidence), 3)).as_py()
    )
    if not compact:
        return _append_loose(table, rows, texts_of(0, len(rows)), key)
    n, field = table.num_rows, table.schema.field(idx)
    chunks: list[pa.Array | None] = list(evidence.chunks)
    ends = np.cumsum([len(c) for c in evidence.chunks])
    del evidence
    if isinstance(relations, Handed):  # from here on the old evidence lives in ``chunks`` only
        table = relations.take().remove_column(idx)
    # in slices: temporaries stay small and no chunk passes Arrow's 2 GiB string limit
    pieces, added, first = [], 0, 0
    for start in range(0, n, JOIN_ROWS):
        size = min(JOIN_ROWS, n - start)
        lo, hi = np.searchsorted(rows, [start, start + size]).tolist()
        text = _spread(texts_of(lo, hi), rows[lo:hi] - start, size)
        added += len(text) - text.null_count
        suffix = pc.if_else(pc.is_valid(text), pc.binary_join_element_wise(f',"{key}":', text, "}", ""), "}")
        body = pc.utf8_slice_codeunits(_rows(chunks, ends, start, size), 0, -1)
        pieces.append(pc.binary_join_element_wise(body, suffix, ""))
        while first < len(chunks) and ends[first] <= start + size:  # rewritten: let it go
            chunks[first] = None
            first += 1
    if added == 0 and not handed:
        return table, 0
    out = pa.chunked_array(pieces, pa.string())
    if handed:
        return table.add_column(idx, field, out), added
    return table.set_column(idx, field, out), added


def _rows(chunks: list[pa.Array | None], ends: np.ndarray, start: int, size: int) -> pa.Array:
    """Rows ``start:start + size`` of the column whose chunks are ``chunks`` (ending at ``ends``),
    as one array."""
    c = int(np.searchsorted(ends, start, side="right"))
    parts = []
    while size > 0:
        chunk = chunks[c]
        assert chunk is not None, "a chunk still needed was let go"
        at = start - (int(ends[c - 1]) if c else 0)
        part = chunk.slice(at, min(size, len(chunk) - at))
        parts.append(part)
        start, size, c = start + len(part), size - len(part), c + 1
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


def _slicer(texts: pa.Array) -> TextsOf:
    """The texts of entries lo:hi, from all of them."""
    return lambda lo, hi: texts.slice(lo, hi - lo)


def _spread(texts: pa.Array, at: np.ndarray, size: int) -> pa.Array:
    """A string array of ``size`` with ``texts[k]`` at ``at[k]`` and null elsewhere."""
    pos = np.full(size, -1, dtype=np.int64)
    pos[at] = np.arange(len(at))
    return texts.take(pa.array(pos, mask=pos < 0)).cast(pa.string())


def _append_loose(relations: pa.Table, rows: np.ndarray, texts: pa.Array, key: str) -> tuple[pa.Table, int]:
    """:func:`append_evidence` where some evidence is not a compact object (null, blank, spaced)."""
    import pyarrow.compute as pc

    text_col = _spread(texts, rows, relations.num_rows)
    at = np.flatnonzero(np.asarray(pc.is_valid(text_col)))  # the rows that change, in table order
    if not len(at):
        return relations, 0
    idx = relations.schema.get_field_index("evidence")
    evidence = relations.column("evidence").combine_chunks()
    old = pc.utf8_rtrim_whitespace(pc.fill_null(evidence.take(pa.array(at)), ""))
    old = pc.if_else(pc.less(pc.utf8_length(old), 2), "{}", old)  # null or blank: an empty object
    body = pc.utf8_rtrim_whitespace(pc.utf8_slice_codeunits(old, 0, -1))  # without the closing brace
    sep = pc.if_else(pc.equal(body, "{"), "", ",")
    joined = pc.binary_join_element_wise(body, sep, f'"{key}":', text_col.take(pa.array(at)), "}", "")
    mask = np.zeros(relations.num_rows, dtype=bool)
    mask[at] = True
    out = pc.replace_with_mask(evidence, pa.array(mask), joined)
    return relations.set_column(idx, relations.schema.field(idx), out), len(at)


def co_baskets(
    ai: np.ndarray, bi: np.ndarray, li: np.ndarray, lj: np.ndarray, n_prod: int
) -> tuple[np.ndarray, np.ndarray]:
    """(pair index, basket) for every basket holding both ends of pair ``k`` = (ai[k], bi[k]),
    from the lines (product li, basket lj), sorted by pair then basket: each end's sorted
    baskets intersected by the compiled :func:`tiein.mining.jit_keys.pair_baskets` (int32 where the
    numbers fit). 50k products / 4M lines: 1.x s where walking every basket's pairs took 12 s
    and probing a flag table per (basket, product) did not fit."""
    from tiein.mining.jit_keys import pair_baskets  # numba: imported where used
    from tiein.mining.kernels import thread_pool

    p, j = sorted_by(li, lj)  # by product, then basket
    if p.size:
        new = np.ones(p.size, bool)
        new[1:] = (p[1:] != p[:-1]) | (j[1:] != j[:-1])
        p, j = p[new], j[new]
    ptr = np.concatenate(([0], np.cumsum(np.bincount(p, minlength=n_prod))))
    with thread_pool() as pool:
        return pair_baskets(ai, bi, ptr, j, pool)

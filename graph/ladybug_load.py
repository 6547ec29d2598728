"""Writing one generation's database for the embedded store (graph/ladybug_store.py): a new one
from the derived tables (node and relationship tables created, rows ``COPY``-ed from Arrow,
checkpointed), or a copy of the current one changed by a GraphDelta. The caller holds the writer
lock, owns the generation directory and switches to it afterwards; this module only writes the
database file it is given."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from tiein.errors import NotEnoughMemory, StoreError
from tiein.graph import cypher_ladybug as cy
from tiein.graph.base import GraphDelta, Progress
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS, GraphTables, graph_tables
from tiein.graph.ladybug_support import _load
from tiein.model import GraphData
from tiein.sysmem import BUDGET_ENV, available_memory, current_budget, give_back_memory

# LadybugDB's COPY of a relationship table holds the whole table in memory, its text columns
# dictionary-encoded (every string hashed; measured: +0.6 GB for 95 MB of evidence text, +2.7 GB
# for 428 MB, +4.5 GB for 550 MB, +4.9 GB for 632 MB, +5.1 GB for 560 MB; without the text
# +0.3 GB for 913k rows): stored both ways only when 10 x the text fits (above the 6-9.1 x
# measured: the 16M-line shop's 2.2 GB at 6 x seemed to fit its 15 GB and did not), else
# forward only (docs/scale-out.md)
COPY_TEXT_FACTOR = 10
SKIP_CHECK_ENV = "TIEIN_SKIP_MEMORY_CHECK"  # "1": load anyway (the operating system may kill it)


# Stored forward only (``storage_direction = 'fwd'``: each relationship once, not also under its
# target) with one LadybugDB thread the same COPY peaks at 4.7-5.5 x the text (913k complements,
# 560 MB of evidence: +3.1 GB at the peak, +1.2 GB held after, 11 s; with two threads +3.9 GB,
# 12 s; both ways +5.1 GB, 26 s; the 16M-line shop's 2.2 GB: ~+10 GB), so it is refused when 6 x
# does not fit; LadybugDB then refuses undirected patterns over that table
FORWARD_TEXT_FACTOR = 6
FORWARD_ONLY = "forward_only"  # the meta key listing the tables stored so (stats(), meta.json)


def _text_bytes(rows: pa.Table) -> int:
    """The bytes of a relationship table's text properties (the keys are looked up, not stored)."""
    return sum(
        col.nbytes
        for col, f in zip(rows.columns, rows.schema, strict=True)
        if f.name not in ("src", "dst") and pa.types.is_string(f.type)
    )


def copy_memory_need(tables: GraphTables) -> tuple[int, str, int]:
    """The least extra memory (bytes) the ``COPY`` of the heaviest relationship table needs stored
    both ways, that table and its text bytes. The tables are copied one after the other, so the
    heaviest one sets the need."""
    heaviest, text = "", 0
    for name, rows in tables.rels.items():
        size = _text_bytes(rows)
        if size > text:
            heaviest, text = name, size
    return COPY_TEXT_FACTOR * text, heaviest, text


def _size(n: int) -> str:
    """Bytes as "2.5 GB" (from a tenth of one), "12 MB" or "600 KB" (1024s, as --memory-budget)."""
    if n >= (1 << 30) // 10:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n / (1 << 10):.0f} KB"


def plan_copy(
    tables: GraphTables,
    available: Callable[[], int | None] | None = None,
    skip: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """The relationship tables (of those not in ``skip``) whose ``COPY`` would not fit in the
    memory left (tiein.sysmem) stored both ways, and that are therefore stored forward only;
    NotEnoughMemory, before anything is written, when one does not fit even so: the build stops
    with what to do instead of being killed by the operating system midway. Nothing is checked
    with ``TIEIN_SKIP_MEMORY_CHECK=1`` or where the free memory cannot be read."""
    if os.environ.get(SKIP_CHECK_ENV) == "1":
        return frozenset()
    left = (available or available_memory)()
    if left is None:
        return frozenset()
    forward = set()
    sizes = {name: 0 if name in skip else _text_bytes(rows) for name, rows in tables.rels.items()}
    for name, text in sorted(sizes.items(), key=lambda kv: -kv[1]):  # a refusal names the heaviest
        if COPY_TEXT_FACTOR * text <= left:
            continue
        if FORWARD_TEXT_FACTOR * text <= left:
            forward.add(name)
            continue
        budget = current_budget()
        within = f" within the memory budget of {_size(budget)}" if budget is not None else ""
        raise NotEnoughMemory(
            f"the embedded store cannot load this graph in the memory left: its {name} relationships "
            f"carry {_size(text)} of evidence text, and LadybugDB's COPY holds at least "
            f"{FORWARD_TEXT_FACTOR} x that ({_size(FORWARD_TEXT_FACTOR * text)}) even stored forward "
            f"only, while {_size(left)} are available{within}. Nothing was switched: the graph "
            "before this build, if any, still answers. Load this shop into Neo4j instead (--store "
            "bolt://HOST:7687; docs/scale-out.md), build on a machine with more memory"
            + (f", raise --memory-budget / {BUDGET_ENV}" if budget is not None else "")
            + f", or set {SKIP_CHECK_ENV}=1 to try anyway"
        )
    return frozenset(forward)


def loadable_tables(data: GraphData, skip: frozenset[str] = frozenset()) -> GraphTables:
    """The tables a load writes (tiein.graph.build.graph_tables: validation first, bad input
    never touches the disk), with the memory deriving them freed handed back (Arrow's pool:
    LadybugDB's ``COPY`` cannot reuse it), and their meta naming the tables (of those not in
    ``skip``) to store forward only (:func:`plan_copy`; NotEnoughMemory before any write)."""
    tables = graph_tables(data)
    give_back_memory()
    forward = plan_copy(tables, skip=skip)
    if not forward:
        return tables
    return GraphTables(
        nodes=tables.nodes, rels=tables.rels, meta={**tables.meta, FORWARD_ONLY: sorted(forward)}
    )


def write_meta(path: Path, meta: dict[str, object]) -> None:
    """A generation's ``meta.json``: the build's meta as sorted JSON (what ``stats()`` returns)."""
    path.write_text(json.dumps(meta, ensure_ascii=False, sort_keys=True), encoding="utf-8")


def build_database(
    db_path: Path,
    tables: GraphTables,
    num_threads: int,
    progress: Progress | None,
    *,
    only: frozenset[str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> None:
    """Load ``tables`` into the database ``db_path`` — only the tables named in ``only`` when
    given, never those in ``skip``: a new database gets every node table, then each relationship
    table loaded here is created (stored forward only when its meta names it: plan_copy), then
    one ``COPY`` per non-empty table (progress per table), then a checkpoint. A database that
    exists already (a staged load's second part, graph/ladybug_staged.py) gets only the
    relationship tables loaded here."""
    import ladybug

    gen_dir = db_path.parent
    fresh = not db_path.exists()
    forward = frozenset(tables.meta.get(FORWARD_ONLY, ()))
    # the nodes first (relationships need their ends), then the relationship tables heaviest
    # first: LadybugDB keeps what a COPY loaded in memory until the database closes, so the
    # heaviest COPY runs before the others have added theirs (4M lines loaded whole: the
    # complements' COPY no longer on top of the 1.5M pair edges')
    rels = sorted(tables.rels.items(), key=lambda kv: (-_text_bytes(kv[1]), -kv[1].num_rows))
    steps = [
        (name, rows)
        for name, rows in [*tables.nodes.items(), *rels]
        if (only is None or name in only) and name not in skip
    ]
    db = conn = None
    try:
        try:
            db = ladybug.Database(str(db_path))
            conn = ladybug.Connection(db, num_threads=num_threads)
            for label in NODE_SCHEMAS if fresh else ():
                _load(conn, cy.CREATE_NODE_TABLE[label], None, gen_dir)
            for rel in REL_SCHEMAS:
                if (only is None or rel in only) and rel not in skip:
                    forward_only = " WITH (storage_direction = 'fwd')" if rel in forward else ""
                    _load(conn, cy.CREATE_REL_TABLE[rel] + forward_only, None, gen_dir)
        except RuntimeError as exc:
            raise StoreError(f"creating a graph in {gen_dir} failed: {exc}") from exc
        for done, (name, rows) in enumerate(steps):
            if progress:
                progress(name, done, len(steps))
            if not rows.num_rows:
                continue
            one_thread = name in forward  # less memory, no slower (FORWARD_TEXT_FACTOR)
            if one_thread:
                conn.set_max_threads_for_exec(1)
            _load(conn, cy.COPY_TABLE[name], {"rows": rows}, gen_dir)
            if one_thread:
                conn.set_max_threads_for_exec(num_threads or os.cpu_count() or 1)
        _load(conn, cy.CHECKPOINT, None, gen_dir)
        if progress:
            progress("checkpoint", len(steps), len(steps))
    finally:
        for obj in (conn, db):
            if obj is not None:
                obj.close()
        give_back_memory()  # what the COPY freed (4M lines: ~2 GB), before the snapshot files are written


def patch_database(db_path: Path, delta: GraphDelta, num_threads: int, progress: Progress | None) -> None:
    """Change the (copied) database ``db_path`` by ``delta``, in the order of
    tiein.graph.base.GraphDelta: relationship and node deletes, new nodes, ``SET`` of changed
    nodes, new relationships; then a checkpoint."""
    import ladybug
    import pyarrow as pa

    def named(t: pa.Table) -> pa.Table:
        return t.rename_columns([f"c_{c}" for c in t.column_names])

    gen_dir = db_path.parent
    steps: list[tuple[str, str, pa.Table]] = []
    for rel in REL_SCHEMAS:
        keys = [
            t.select(["src", "dst"])
            for t in (delta.removed_rels.get(rel), delta.upserted_rels.get(rel))
            if t is not None
        ]
        if keys:
            steps.append((f"delete {rel}", cy.DELETE_RELS_BY_KEY[rel], named(pa.concat_tables(keys))))
    for label, t in delta.removed_nodes.items():
        steps.append((f"delete {label}", cy.DELETE_NODES_BY_KEY[label], named(t.select([0]))))
    for label, t in delta.added_nodes.items():
        steps.append((f"add {label}", cy.COPY_TABLE[label], t))
    for label, t in delta.changed_nodes.items():
        if label in cy.UPDATE_NODES:
            steps.append((f"update {label}", cy.UPDATE_NODES[label], named(t)))
    for rel, t in delta.upserted_rels.items():
        steps.append((f"add {rel}", cy.COPY_TABLE[rel], t))
    db = conn = None
    try:
        try:
            db = ladybug.Database(str(db_path))
            conn = ladybug.Connection(db, num_threads=num_threads)
        except RuntimeError as exc:
            raise StoreError(f"opening the copy {gen_dir} failed: {exc}") from exc
        for done, (what, statement, rows) in enumerate(steps):
            if progress:
                progress(what, done, len(steps))
            if rows.num_rows:
                _load(conn, statement, {"rows": rows}, gen_dir)
        _load(conn, cy.CHECKPOINT, None, gen_dir)
    finally:
        for obj in (conn, db):
            if obj is not None:
                obj.close()

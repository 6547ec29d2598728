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
from tiein.graph.evidence import evidence_nodes
from tiein.graph.ladybug_support import _load
from tiein.model import GraphData
from tiein.sysmem import BUDGET_ENV, available_memory, current_budget, give_back_memory

# LadybugDB's COPY of a relationship table holds the whole table in memory, its text columns
# dictionary-encoded (every string hashed: ~9 x the text; without text ~330-430 bytes a row:
# 913k complements +0.3 GB, 1.5M co-purchase edges +0.65 GB); a node table's COPY goes in node
# groups (913k Evidence nodes with 525 MB of evidence text: +0.65 GB; the same text as a property
# of the complements: +4.7 GB, docs/scale-out.md). So the evidence is a node table of its own
# (tiein.graph.build), and a table whose COPY would not fit in the memory left is refused before
# anything is written.
REL_BYTES_PER_ROW = 500
REL_TEXT_FACTOR = 10
NODE_TEXT_FACTOR = 2
SKIP_CHECK_ENV = "TIEIN_SKIP_MEMORY_CHECK"  # "1": load anyway (the operating system may kill it)


def _text_bytes(rows: pa.Table) -> int:
    """The bytes of a table's text columns (a relationship table's keys are looked up, not stored)."""
    return sum(
        col.nbytes
        for col, f in zip(rows.columns, rows.schema, strict=True)
        if f.name not in ("src", "dst") and pa.types.is_string(f.type)
    )


def copy_needs(tables: GraphTables, skip: frozenset[str] = frozenset()) -> dict[str, int]:
    """The extra memory (bytes) each table's ``COPY`` is estimated to need, above the measured
    peaks (of the tables not in ``skip``; empty ones left out)."""
    needs = {
        label: NODE_TEXT_FACTOR * _text_bytes(rows)
        for label, rows in tables.nodes.items()
        if rows.num_rows and label not in skip
    }
    for name, rows in tables.rels.items():
        if rows.num_rows and name not in skip:
            needs[name] = REL_BYTES_PER_ROW * rows.num_rows + REL_TEXT_FACTOR * _text_bytes(rows)
    return needs


def copy_memory_need(tables: GraphTables, skip: frozenset[str] = frozenset()) -> tuple[int, str]:
    """The extra memory the heaviest ``COPY`` needs, and its table: the tables are copied one
    after the other, so the heaviest one sets the need ((0, "") when nothing is loaded)."""
    needs = copy_needs(tables, skip)
    if not needs:
        return 0, ""
    name = max(needs, key=lambda n: (needs[n], n))
    return needs[name], name


def _size(n: int) -> str:
    """Bytes as "2.5 GB" (from a tenth of one), "12 MB" or "600 KB" (1024s, as --memory-budget)."""
    if n >= (1 << 30) // 10:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n / (1 << 10):.0f} KB"


def check_copy(
    tables: GraphTables,
    available: Callable[[], int | None] | None = None,
    skip: frozenset[str] = frozenset(),
) -> None:
    """NotEnoughMemory, before anything is written, when the heaviest ``COPY`` (of the tables
    not in ``skip``) would not fit in the memory left (tiein.sysmem): the build stops with what
    to do instead of being killed by the operating system midway. Nothing is checked with
    ``TIEIN_SKIP_MEMORY_CHECK=1`` or where the free memory cannot be read."""
    if os.environ.get(SKIP_CHECK_ENV) == "1":
        return
    left = (available or available_memory)()
    if left is None:
        return
    need, name = copy_memory_need(tables, skip)
    if need <= left:
        return
    budget = current_budget()
    within = f" within the memory budget of {_size(budget)}" if budget is not None else ""
    rows = (tables.nodes[name] if name in tables.nodes else tables.rels[name]).num_rows
    raise NotEnoughMemory(
        f"the embedded store cannot load this graph in the memory left: loading its {name} table "
        f"({rows:,} rows) takes about {_size(need)}, while {_size(left)} are available{within}. "
        "Nothing was switched: the graph before this build, if any, still answers. Load this shop "
        "into Neo4j instead (--store bolt://HOST:7687; docs/scale-out.md), build on a machine with "
        "more memory"
        + (f", raise --memory-budget / {BUDGET_ENV}" if budget is not None else "")
        + f", or set {SKIP_CHECK_ENV}=1 to try anyway"
    )


def loadable_tables(data: GraphData, skip: frozenset[str] = frozenset()) -> GraphTables:
    """The tables a load writes (tiein.graph.build.graph_tables: validation first, bad input
    never touches the disk), with the memory deriving them freed handed back (Arrow's pool:
    LadybugDB's ``COPY`` cannot reuse it); NotEnoughMemory before any write when the heaviest
    ``COPY`` (of the tables not in ``skip``) would not fit (:func:`check_copy`)."""
    tables = graph_tables(data)
    give_back_memory()
    check_copy(tables, skip=skip)
    return tables


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
    given, never those in ``skip``, and the Evidence nodes of the relationship tables loaded: a
    new database gets every node table, then each relationship table loaded here is created, then
    one ``COPY`` per non-empty table (progress per table), then a checkpoint. A database that
    exists already (a staged load's second part, graph/ladybug_staged.py) gets only the
    relationship tables loaded here."""
    import ladybug

    gen_dir = db_path.parent
    fresh = not db_path.exists()

    def loaded(name: str) -> bool:
        return (only is None or name in only) and name not in skip

    # the Evidence nodes of the relationship tables loaded here (a staged load's two parts each
    # load their own relations' evidence)
    nodes = {
        **{label: rows for label, rows in tables.nodes.items() if label != "Evidence" and loaded(label)},
        "Evidence": evidence_nodes({rel: ev for rel, ev in tables.evidence.items() if loaded(rel)}),
    }
    # the nodes first (relationships need their ends), then the relationship tables heaviest
    # first: LadybugDB keeps what a COPY loaded in memory until the database closes, so the
    # heaviest COPY runs before the others have added theirs
    rels = sorted(
        ((name, rows) for name, rows in tables.rels.items() if loaded(name)),
        key=lambda kv: (-_text_bytes(kv[1]), -kv[1].num_rows),
    )
    steps = [*nodes.items(), *rels]
    db = conn = None
    try:
        try:
            db = ladybug.Database(str(db_path))
            conn = ladybug.Connection(db, num_threads=num_threads)
            for label in NODE_SCHEMAS if fresh else ():
                _load(conn, cy.CREATE_NODE_TABLE[label], None, gen_dir)
            for rel, _ in rels:
                _load(conn, cy.CREATE_REL_TABLE[rel], None, gen_dir)
        except RuntimeError as exc:
            raise StoreError(f"creating a graph in {gen_dir} failed: {exc}") from exc
        for done, (name, rows) in enumerate(steps):
            if progress:
                progress(name, done, len(steps))
            if rows.num_rows:
                _load(conn, cy.COPY_TABLE[name], {"rows": rows}, gen_dir)
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

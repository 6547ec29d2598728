"""Writing one generation's database for the embedded store (graph/ladybug_store.py): a new one
from the derived tables (node and relationship tables created, rows ``COPY``-ed from Arrow,
checkpointed), or a copy of the current one changed by a GraphDelta. The caller holds the writer
lock, owns the generation directory and switches to it afterwards; this module only writes the
database file it is given."""

from __future__ import annotations

from pathlib import Path

from tiein.errors import StoreError
from tiein.graph import cypher_ladybug as cy
from tiein.graph.base import GraphDelta, Progress
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS, GraphTables
from tiein.graph.ladybug_support import _load


def build_database(db_path: Path, tables: GraphTables, num_threads: int, progress: Progress | None) -> None:
    """Create the database ``db_path`` and load ``tables`` into it: every node and relationship
    table, one ``COPY`` per non-empty table (progress per table), then a checkpoint."""
    import ladybug

    gen_dir = db_path.parent
    steps = [*tables.nodes.items(), *tables.rels.items()]
    db = conn = None
    try:
        try:
            db = ladybug.Database(str(db_path))
            conn = ladybug.Connection(db, num_threads=num_threads)
            for label in NODE_SCHEMAS:
                _load(conn, cy.CREATE_NODE_TABLE[label], None, gen_dir)
            for rel in REL_SCHEMAS:
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

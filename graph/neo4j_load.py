"""Loading Neo4jStore's graph (graph/neo4j_store.py): :class:`Neo4jLoader`, its base class, holds
``replace`` (a whole new graph) and ``apply`` (a GraphDelta), each ONE write transaction of
``UNWIND`` batches, and the checks and batching they share.

Atomic replace — the choice. ``replace`` runs the whole load in ONE explicit write transaction:
delete tiein's old nodes (by label) and meta, create the new nodes and relationships in
``UNWIND $rows`` batches of ``batch_size`` rows, write the meta, commit. Readers keep seeing the
previous graph until the commit (Neo4j isolates uncommitted writes), so:

- any failure (a driver/server error, a lost edge, a bad value) or interruption (exception,
  Ctrl-C, the process or the connection dying) rolls the transaction back — explicitly, or by
  the server when the connection drops — and the previous graph stays exactly as it was;
- a repeated load is idempotent: it deletes and recreates everything, so loading the same data
  twice gives the same graph (uniqueness constraints reject duplicate keys).

Why not a staged load (new graph under a staging label or a generation property, then a switch)?
Relationship types cannot be relabelled in Neo4j, so a generation scheme must either filter every
query — analysts' included — on a generation property, or make the "switch" transaction delete
the old graph and relabel every new node, which is again one transaction of graph size. The
single transaction is the simplest design that is atomic for every reader, including analysts'
own Cypher, and leaves no staging debris after a crash.

Memory cost. Neo4j keeps a transaction's uncommitted state in the server's memory (heap by
default) until commit: roughly every created node and relationship with its properties plus the
ids of everything deleted — an estimate (not measured: no Neo4j server runs on the development
machines) of a few hundred bytes per entity, i.e. some hundreds of MB for 50k products and 1M
relationships. Size ``server.memory.heap.max_size`` (docker/compose.yml
sets 2G) and leave ``db.memory.transaction.max`` unlimited or above that; when the limit is hit the
load fails with StoreError and the old graph stays. The client holds only one batch of rows at a
time (``batch_size`` rows converted from Arrow), never the whole graph as Python objects.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tiein.errors import InputError, StoreError
from tiein.graph import cypher_neo4j as cy
from tiein.graph.base import GraphDelta, Progress
from tiein.graph.neo4j_support import _check_types, _translate, batches, node_rows, rel_rows
from tiein.model import GraphData

if TYPE_CHECKING:
    from neo4j import Session

    from tiein.graph.build import GraphTables


class Neo4jLoader:
    """The write side of :class:`~tiein.graph.neo4j_store.Neo4jStore` (its base class): loads run
    under ``_load_lock`` in sessions from the store's ``_session``, ``batch_size`` rows a statement."""

    batch_size: int
    _load_lock: threading.Lock

    if TYPE_CHECKING:

        def _session(self, write: bool = False) -> Session: ...

    def replace(self, data: GraphData, progress: Progress | None = None) -> None:
        """Replace tiein's graph with ``data`` in one transaction (see the module docstring)."""
        from tiein.graph.build import graph_tables

        tables = graph_tables(data)  # InputError before anything touches the server
        self._check_tables(tables)
        try:
            meta_json = json.dumps(tables.meta, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"is not JSON-serialisable: {exc}", file="meta") from exc
        steps: list[tuple[str, str, pa.Table]] = [
            *(("node", label, t) for label, t in tables.nodes.items()),
            *(("rel", rel, t) for rel, t in tables.rels.items()),
        ]
        with self._load_lock, _translate("loading the graph"):
            with self._session(write=True) as session:
                for statement in self._schema_statements():
                    session.run(statement).consume()  # auto-commit: schema cannot share a tx
                with session.begin_transaction() as tx:  # leaving without commit = rollback
                    for label in cy.NODE_KEYS:
                        tx.run(cy.DELETE_NODES[label]).consume()
                    tx.run(cy.DELETE_META).consume()
                    for done, (what, name, table) in enumerate(steps):
                        if progress:
                            progress(name, done, len(steps))
                        self._load_table(tx, what, name, table)
                    tx.run(cy.CREATE_META, {"json": meta_json}).consume()
                    if progress:
                        progress("commit", len(steps), len(steps))
                    tx.commit()
        if progress:
            progress("switch", 1, 1)

    def apply(self, delta: GraphDelta, progress: Progress | None = None) -> None:
        """Apply ``delta`` (tiein.graph.base.GraphDelta) in ONE write transaction of UNWIND batches:
        delete upserted / removed relationships and removed nodes, create new nodes, ``SET`` the
        changed ones, create the upserted relationships, replace the meta. A failure rolls it all
        back; a batch that creates or updates fewer rows than it holds fails the apply."""
        try:
            meta_json = json.dumps(delta.meta, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"is not JSON-serialisable: {exc}", file="meta") from exc
        for part in (delta.added_nodes, delta.changed_nodes, delta.removed_nodes):
            unknown = set(part) - set(cy.NODE_KEYS)
            if unknown:
                raise StoreError(
                    f"node label(s) {sorted(unknown)} have no Neo4j statements (graph/cypher_neo4j.py)"
                )
        for part in (delta.upserted_rels, delta.removed_rels):
            unknown = set(part) - set(cy.REL_ENDPOINTS)
            if unknown:
                raise StoreError(f"relationship type(s) {sorted(unknown)} have no Neo4j statements")
        with self._load_lock, _translate("applying changes to the graph"):
            with self._session(write=True) as session:
                with session.begin_transaction() as tx:  # leaving without commit = rollback
                    for rel in cy.REL_ENDPOINTS:
                        keys = [
                            t.select(["src", "dst"])
                            for t in (delta.removed_rels.get(rel), delta.upserted_rels.get(rel))
                            if t is not None
                        ]
                        for table in keys:
                            for batch in batches(table, self.batch_size):
                                tx.run(cy.DELETE_RELS_BY_KEY[rel], {"rows": batch.to_pylist()}).consume()
                    for label, table in delta.removed_nodes.items():
                        for batch in batches(table, self.batch_size):
                            tx.run(
                                cy.DELETE_NODES_BY_KEY[label], {"keys": batch.column(0).to_pylist()}
                            ).consume()
                    for label, table in delta.added_nodes.items():
                        self._load_table(tx, "node", label, table)
                    for label, table in delta.changed_nodes.items():
                        for batch in batches(table, self.batch_size):
                            record = tx.run(cy.UPDATE_NODES[label], {"rows": node_rows(batch)}).single()
                            if record is None or record["updated"] != batch.num_rows:
                                raise StoreError(
                                    f"updating {label}: a changed node is missing from the graph"
                                )
                    for rel, table in delta.upserted_rels.items():
                        _check_types(table, rel)
                        self._load_table(tx, "rel", rel, table)
                    tx.run(cy.DELETE_META).consume()
                    tx.run(cy.CREATE_META, {"json": meta_json}).consume()
                    tx.commit()
        if progress:
            progress("commit", 1, 1)

    @staticmethod
    def _schema_statements() -> list[str]:
        return list(cy.SCHEMA)

    @staticmethod
    def _check_tables(tables: GraphTables) -> None:
        """Every label / type must be in the Cypher whitelist, every column storable."""
        for label, table in tables.nodes.items():
            if label not in cy.NODE_KEYS:
                raise StoreError(f"node label {label!r} has no Neo4j statements (graph/cypher_neo4j.py)")
            if table.column_names[0] != cy.NODE_KEYS[label]:
                raise StoreError(
                    f"{label} key is {table.column_names[0]!r} in tiein.graph.build, "
                    f"{cy.NODE_KEYS[label]!r} in graph/cypher_neo4j.py"
                )
            _check_types(table, label)
        for rel, table in tables.rels.items():
            if rel not in cy.REL_ENDPOINTS:
                raise StoreError(f"relationship type {rel!r} has no Neo4j statements (graph/cypher_neo4j.py)")
            _check_types(table, rel)

    def _load_table(self, tx: Any, what: str, name: str, table: pa.Table) -> None:
        """Create one table's nodes or relationships in ``batch_size`` UNWIND statements; a batch
        that creates fewer than its rows (an edge to a missing node) fails the load."""
        query = cy.CREATE_NODES[name] if what == "node" else cy.CREATE_RELS[name]
        to_rows = node_rows if what == "node" else rel_rows
        loaded = 0
        for batch in batches(table, self.batch_size):
            record = tx.run(query, {"rows": to_rows(batch)}).single()
            created = 0 if record is None else record["created"]
            if created != batch.num_rows:
                raise StoreError(
                    f"loading {name}: rows {loaded + 1}..{loaded + batch.num_rows} created {created} "
                    f"of {batch.num_rows} {'nodes' if what == 'node' else 'relationships'}"
                )
            loaded += batch.num_rows

"""The graph stores the shared contract suite (tests/test_store_contract.py) runs against.

Each entry of :data:`STORE_FACTORIES` is a ``pytest.param`` of a :class:`StoreKind`: ``make(tmp)``
gives a fresh, EMPTY store (``tmp`` is a per-test temporary directory), ``reopen(store)`` a second,
independent handle on the same graph (a new process would see this). Stores that need a server are
appended with a ``skipif`` mark, so the suite runs everywhere and covers every store that can run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tiein.graph.base import GraphStore


@dataclass(frozen=True)
class StoreKind:
    name: str
    make: Callable[[Path], GraphStore]
    reopen: Callable[[GraphStore], GraphStore]

    def __repr__(self) -> str:
        return self.name


def _make_embedded(tmp: Path) -> GraphStore:
    from tiein.graph.ladybug_store import EmbeddedStore

    return EmbeddedStore(tmp / "graph")


def _reopen_embedded(store: GraphStore) -> GraphStore:
    from tiein.graph.ladybug_store import EmbeddedStore

    assert isinstance(store, EmbeddedStore)
    return EmbeddedStore(store.path)


def _make_snapshot(tmp: Path) -> GraphStore:
    from tiein.graph.snapshot import SnapshotStore

    return SnapshotStore(_make_embedded(tmp))


def _reopen_snapshot(store: GraphStore) -> GraphStore:
    from tiein.graph.snapshot import SnapshotStore

    assert isinstance(store, SnapshotStore)
    return SnapshotStore(_reopen_embedded(store.store))


STORE_FACTORIES: list = [
    pytest.param(StoreKind("embedded", _make_embedded, _reopen_embedded), id="embedded"),
    # an in-memory snapshot of the embedded store (graph/snapshot.py): the same answers from memory
    pytest.param(StoreKind("snapshot", _make_snapshot, _reopen_snapshot), id="snapshot"),
]


# ----------------------------------------------------------------------------- neo4j
# A real Neo4j 5 at TIEIN_NEO4J_URI (user / password / database from TIEIN_NEO4J_USER,
# TIEIN_NEO4J_PASSWORD, TIEIN_NEO4J_DATABASE or the URL); see docker/README.md. Skipped when the
# variable is unset. Every ``make`` EMPTIES that database: point it at a test server only.
def _make_neo4j(tmp: Path) -> GraphStore:
    import os

    from tiein.graph import cypher_neo4j as cy
    from tiein.graph.neo4j_store import Neo4jStore

    store = Neo4jStore.from_url(os.environ["TIEIN_NEO4J_URI"], connection_timeout=5.0, batch_size=100)
    with store.driver.session(database=store.database) as session:
        session.run(cy.WIPE_TEST_DATABASE).consume()
    return store


def _reopen_neo4j(store: GraphStore) -> GraphStore:
    import os

    from tiein.graph.neo4j_store import Neo4jStore

    assert isinstance(store, Neo4jStore)
    return Neo4jStore.from_url(os.environ["TIEIN_NEO4J_URI"], database=store.database, connection_timeout=5.0)


def _neo4j_marks() -> list:
    import os

    return [
        pytest.mark.neo4j,
        pytest.mark.skipif(
            not os.environ.get("TIEIN_NEO4J_URI"),
            reason="set TIEIN_NEO4J_URI (and TIEIN_NEO4J_PASSWORD) to a TEST Neo4j; see docker/README.md",
        ),
    ]


STORE_FACTORIES.append(
    pytest.param(StoreKind("neo4j", _make_neo4j, _reopen_neo4j), id="neo4j", marks=_neo4j_marks())
)

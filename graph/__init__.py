"""Graph stores: one interface (tiein.graph.base.GraphStore), an embedded LadybugDB store (default)
and a Neo4j store, both loaded from the same tables (tiein.graph.build) and described by one schema
(docs/schema.md).

Importing ``graph`` is light: LadybugDB and the Neo4j driver are imported only by the store that
needs them, when it is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore

NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")
EMBEDDED_PREFIX = "embedded:"


def is_neo4j_url(url: str | Path) -> bool:
    """True for a Neo4j URL (by its scheme; a directory named ``neo4j-data`` is not one).

    >>> is_neo4j_url("bolt://localhost:7687"), is_neo4j_url("neo4jdir"), is_neo4j_url(" NEO4J+S://h ")
    (True, False, True)
    """
    return str(url).strip().lower().startswith(NEO4J_SCHEMES)


def open_store(url: str | Path) -> GraphStore:
    """The store named by ``url``.

    - a directory path, or ``embedded:PATH`` → :class:`tiein.graph.ladybug_store.EmbeddedStore`
      (the directory is created by the first load);
    - ``bolt://``, ``bolt+s://``, ``neo4j://``, ``neo4j+s://`` (and ``+ssc``) →
      :class:`tiein.graph.neo4j_store.Neo4jStore` via ``Neo4jStore.from_url(url)``; user and password
      come from the environment variables ``TIEIN_NEO4J_USER`` / ``TIEIN_NEO4J_PASSWORD``.

    Raises ConfigError for an unknown scheme (``http://...``) or an empty url.
    """
    from tiein.errors import ConfigError

    text = str(url).strip()
    if not text:
        raise ConfigError("the graph store url is empty (give a directory, embedded:PATH or bolt://...)")
    lowered = text.lower()
    if is_neo4j_url(text):
        from tiein.graph.neo4j_store import Neo4jStore

        return Neo4jStore.from_url(text)
    if lowered.startswith(EMBEDDED_PREFIX):
        text = text[len(EMBEDDED_PREFIX) :]
        if not text:
            raise ConfigError("embedded: needs a directory, e.g. embedded:./graph-db")
    elif "://" in text:
        raise ConfigError(
            f"unknown graph store url {text!r}; use a directory, embedded:PATH, "
            f"or one of {', '.join(NEO4J_SCHEMES)}"
        )
    from tiein.graph.ladybug_store import EmbeddedStore

    return EmbeddedStore(Path(text).expanduser())

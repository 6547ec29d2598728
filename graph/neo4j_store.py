"""The Neo4j store (production): tiein.graph.base.GraphStore on Neo4j 5 through the official driver.

The driver is passed in (style.md: built in one wiring place); :meth:`Neo4jStore.from_url` is
that place for a URL such as ``bolt://user:secret@db:7687/neo4j``. Every Cypher statement lives
in :mod:`tiein.graph.cypher_neo4j`; values always travel as parameters. Loads (``replace`` and
``apply``, one transaction each: why, and what it costs the server) are in
:mod:`tiein.graph.neo4j_load`, the store's base class.

Reads run in READ access-mode transactions, so Neo4j itself refuses writes in :meth:`query`
(mapped to WriteRefused). Driver errors are translated at this boundary (``raise ... from exc``):
unreachable server / bad credentials / missing database → StoreUnavailable; invalid analyst Cypher
→ CypherError; anything else → StoreError.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tiein.errors import (
    ConfigError,
    CypherError,
    ProductNotFound,
    StoreError,
)
from tiein.graph import cypher_neo4j as cy
from tiein.graph.base import (
    PRODUCT_FIELDS,
    RELATED_FIELDS,
    candidates_answer,
    check_rule_rows,
    id_list,
    parse_evidence,
    pick_scene,
    product_scene_list,
    rules_answer,
    scene_detail,
    scene_list,
)
from tiein.graph.evidence import attach_evidence
from tiein.graph.neo4j_load import Neo4jLoader
from tiein.graph.neo4j_support import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DRIVER_CONFIG,
    DEFAULT_QUERY_TIMEOUT_S,
    _plain,
    _translate,
    connection_settings,
    read_rules_tx,
    save_rules_tx,
    unknown_names,
)
from tiein.model import REL_TYPE, check_kind

if TYPE_CHECKING:
    from neo4j import Driver, ManagedTransaction, Session


# ----------------------------------------------------------------------------- the store
class Neo4jStore(Neo4jLoader):
    """GraphStore on Neo4j 5.

    ``driver``: a ``neo4j.Driver`` (owned by the caller unless built by :meth:`from_url`);
    ``database``: the database name (None = the server's default); ``batch_size``: rows per
    ``UNWIND`` statement while loading; ``query_timeout_s``: server-side time limit of analyst
    queries. Thread-safe (the driver's pool is; sessions are per call)."""

    name = "neo4j"

    def __init__(
        self,
        driver: Driver,
        database: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query_timeout_s: float | None = DEFAULT_QUERY_TIMEOUT_S,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.driver = driver
        self.database = database
        self.batch_size = batch_size
        self.query_timeout_s = query_timeout_s
        self._owns_driver = False
        self._load_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query_timeout_s: float | None = DEFAULT_QUERY_TIMEOUT_S,
        **driver_config: Any,
    ) -> Neo4jStore:
        """A store on a driver built from ``url`` (see :func:`connection_settings` for where
        user, password and database come from). ``driver_config`` goes to
        ``neo4j.GraphDatabase.driver`` over :data:`DEFAULT_DRIVER_CONFIG`. No connection is made
        here; the first call reports an unreachable server as StoreUnavailable. The store owns
        this driver and closes it in :meth:`close`."""
        from neo4j import GraphDatabase

        settings = connection_settings(url, user, password, database)
        with _translate("creating the driver", where=settings.uri):
            try:
                config = {**DEFAULT_DRIVER_CONFIG, **driver_config}
                driver = GraphDatabase.driver(settings.uri, auth=settings.auth, **config)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"invalid Neo4j driver settings for {settings.uri}: {exc}") from exc
        store = cls(driver, settings.database, batch_size=batch_size, query_timeout_s=query_timeout_s)
        store._owns_driver = True
        return store

    def __repr__(self) -> str:
        return f"Neo4jStore(database={self.database!r}, batch_size={self.batch_size})"

    def _session(self, write: bool = False) -> Session:
        from neo4j import READ_ACCESS, WRITE_ACCESS

        return self.driver.session(
            database=self.database, default_access_mode=WRITE_ACCESS if write else READ_ACCESS
        )

    def _read(self, work: Any, *args: Any, what: str, analyst: bool = False) -> Any:
        """Run ``work(tx, *args)`` in a managed READ transaction, errors translated."""
        with _translate(what, analyst=analyst):
            with self._session() as session:
                return session.execute_read(work, *args)

    # ------------------------------------------------------------------------- load
    # ------------------------------------------------------------------------- reads
    def product(self, product_id: str) -> dict[str, Any]:
        def work(tx: ManagedTransaction) -> dict[str, Any] | None:
            record = tx.run(cy.PRODUCT, {"product_id": product_id}).single()
            return None if record is None else record.data()

        row = self._read(work, what="product lookup")
        if row is None:
            raise ProductNotFound(product_id)
        return {f: row[f] for f in PRODUCT_FIELDS}

    def related(self, product_id: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        check_kind(kind)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        query = cy.RELATED[REL_TYPE[kind]]

        def work(tx: ManagedTransaction) -> list[dict[str, Any]] | None:
            rows = [r.data() for r in tx.run(query, {"product_id": product_id, "k": k})]
            if rows:
                return rows
            found = tx.run(cy.PRODUCT_EXISTS, {"product_id": product_id}).single()
            return [] if found is not None and found["found"] else None

        rows = self._read(work, what="related")
        if rows is None:
            raise ProductNotFound(product_id)
        out = []
        for rec in rows:
            rec["kind"] = kind
            rec["evidence"] = parse_evidence(rec["evidence"], product_id, rec["product_id"], kind)
            out.append({f: rec[f] for f in (*PRODUCT_FIELDS, *RELATED_FIELDS)})
        return out

    def stats(self) -> dict[str, Any]:
        def work(tx: ManagedTransaction) -> tuple[list[dict[str, Any]], str | None]:
            counts = [r.data() for r in tx.run(cy.STATS)]
            meta = tx.run(cy.META).single()
            return counts, None if meta is None else meta["json"]

        counts, meta_json = self._read(work, what="stats")
        nodes = dict.fromkeys(cy.NODE_KEYS, 0)
        rels = dict.fromkeys(cy.REL_ENDPOINTS, 0)
        for row in counts:
            (nodes if row["what"] == "node" else rels)[row["name"]] = row["count"]
        try:
            meta = json.loads(meta_json) if meta_json else {}
        except json.JSONDecodeError as exc:
            raise StoreError(f"the :{cy.META_LABEL} node holds invalid JSON: {exc}") from exc
        return {"nodes": nodes, "relationships": rels, "meta": meta}

    def scenes(self) -> list[dict[str, Any]]:
        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(cy.SCENES)]

        return scene_list(self._read(work, what="scenes"))

    def scene(self, name_or_id: str) -> dict[str, Any]:
        key = str(name_or_id)

        def work(tx: ManagedTransaction) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            found = [r.data() for r in tx.run(cy.SCENE_LOOKUP, {"key": key, "key_lower": key.lower()})]
            scene = pick_scene(key, found)  # NotFound passes through _translate untouched
            members = [r.data() for r in tx.run(cy.SCENE_MEMBERS, {"scene_id": scene["scene_id"]})]
            return scene, members

        scene, members = self._read(work, what="scene")
        return scene_detail(scene, members)

    # ------------------------------------------------------------------------- bundles
    def scene_summary(self, name_or_id: str) -> dict[str, Any]:
        key = str(name_or_id)

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            found = [r.data() for r in tx.run(cy.SCENE_LOOKUP, {"key": key, "key_lower": key.lower()})]
            scene = pick_scene(key, found)  # NotFound passes through _translate untouched
            return [r.data() for r in tx.run(cy.SCENE_SUMMARY, {"scene_id": scene["scene_id"]})]

        rows = self._read(work, what="scene summary")
        return scene_list(rows)[0] if rows else pick_scene(key, [])

    def product_scenes(self, product_id: str) -> list[dict[str, Any]]:
        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(cy.PRODUCT_SCENES, {"product_id": product_id})]

        rows = self._read(work, what="product scenes")
        if not rows:
            raise ProductNotFound(product_id)
        return product_scene_list(rows)

    def scene_roles_of(self, scene_id: str, product_ids: list[str]) -> dict[str, str | None]:
        ids = id_list(product_ids)
        if not ids:
            return {}

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            params = {"scene_id": str(scene_id), "product_ids": ids}
            return [r.data() for r in tx.run(cy.SCENE_ROLES_OF, params)]

        rows = self._read(work, what="scene roles")
        return {r["product_id"]: r["role"] for r in sorted(rows, key=lambda r: r["product_id"])}

    def bundle_candidates(self, product_id: str, k: int = 50) -> dict[str, Any]:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        params = {"product_id": product_id}

        def work(tx: ManagedTransaction) -> tuple[list[dict[str, Any]], ...] | None:
            rows = [r.data() for r in tx.run(cy.PRODUCT_SCENES, params)]
            if not rows:
                return None
            comps = [r.data() for r in tx.run(cy.RELATED["COMPLEMENT"], {**params, "k": k})]
            pairs = [r.data() for r in tx.run(cy.SUBSTITUTE_PAIRS, params)]
            roles = [r.data() for r in tx.run(cy.COMPLEMENT_SCENES, params)]
            return rows, comps, pairs, roles

        found = self._read(work, what="bundle candidates")
        if found is None:
            raise ProductNotFound(product_id)
        rows, comps, pairs, roles = found
        complements = []
        for rec in comps:
            rec["kind"] = "complement"
            rec["evidence"] = parse_evidence(rec["evidence"], product_id, rec["product_id"], "complement")
            complements.append({f: rec[f] for f in (*PRODUCT_FIELDS, *RELATED_FIELDS)})
        return candidates_answer(rows[0], rows, complements, pairs, k, roles)

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run an analyst's Cypher (Neo4j dialect) in a READ transaction limited to
        ``query_timeout_s``: Neo4j refuses any write (WriteRefused); invalid Cypher or a query
        past the time limit raises CypherError."""
        cols, rows = self.query_rows(cypher, params)
        return [dict(zip(cols, row, strict=True)) for row in rows]

    def query_rows(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """:meth:`query` as (column names, rows of plain values): only the first ``limit`` rows
        are read (the rest is discarded on the server), in a READ transaction with a server-side
        timeout of ``timeout_s`` seconds (default ``query_timeout_s``). Used by
        :func:`tiein.cypher.run_cypher`."""
        from neo4j import unit_of_work

        if not isinstance(cypher, str) or not cypher.strip():
            raise CypherError("the query is empty")
        timeout = self.query_timeout_s if timeout_s is None else timeout_s

        @unit_of_work(timeout=timeout)
        def work(tx: ManagedTransaction) -> tuple[list[str], list[list[Any]]]:
            result = tx.run(cypher, params or {})
            cols = list(result.keys())
            rows: list[list[Any]] = []
            for record in result:
                if limit is not None and len(rows) >= limit:
                    break
                rows.append([_plain(v) for v in record.values()])
            unknown = unknown_names(result.consume())
            if unknown:
                raise CypherError(
                    f"unknown label or relationship type {unknown[0]!r} (the graph has labels "
                    f"{', '.join(cy.NODE_KEYS)} and types {', '.join(cy.REL_ENDPOINTS)})"
                )
            attach_evidence(rows, lambda ids: {r[0]: r[1] for r in tx.run(cy.EVIDENCE_OF, {"ids": ids})})
            return cols, rows

        result: tuple[list[str], list[list[Any]]] = self._read(work, what="query", analyst=True)
        return result

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The whole answer of one of tiein's own read statements as a ``pyarrow.Table`` built
        column by column (for bulk reads such as tiein.graph.snapshot). Not for analysts' queries."""

        def work(tx: ManagedTransaction) -> pa.Table:
            result = tx.run(cypher, params or {})
            cols = list(result.keys())
            values = [r.values() for r in result]
            return pa.table({c: pa.array([v[i] for v in values]) for i, c in enumerate(cols)})

        table: pa.Table = self._read(work, what="bulk read")
        return table

    # ------------------------------------------------------------------------- merchant rules
    def rules(self) -> dict[str, Any]:
        """The :Rule nodes and the :TieinRules version, read in one READ transaction."""

        head, rows = self._read(read_rules_tx, what="rules")
        if head is None:
            return rules_answer(0, None, [])
        return rules_answer(head["version"] or 0, head.get("updated_at"), rows)

    def save_rules(
        self, rules: list[dict[str, Any]], *, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Replace every :Rule node and bump the :TieinRules version in ONE write transaction
        (the first statement locks the version node, so concurrent saves serialise); the graph's
        loads delete only tiein's graph labels, so the rules survive them."""
        from datetime import UTC, datetime

        rows = check_rule_rows(rules)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with _translate("saving the rules"):
            with self._session(write=True) as session:
                with session.begin_transaction() as tx:  # leaving without commit = rollback
                    current = save_rules_tx(tx, rows, expected_version, self.batch_size, stamp)
                    tx.commit()
        return rules_answer(current + 1, stamp, rows)

    def generation(self) -> str | None:
        """None: a Neo4j graph is replaced in one transaction, with no generation token (a snapshot
        of it is read once; call ``SnapshotStore.refresh``)."""
        return None

    def clean(self) -> None:
        """Nothing to clean: an interrupted load is a rolled-back transaction."""

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers ``RETURN 1``."""
        self._read(lambda tx: tx.run(cy.PING).single(), what="ping")

    def close(self) -> None:
        """Close the driver if this store built it (``from_url``); a passed-in driver is the
        caller's to close."""
        if self._owns_driver:
            self.driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

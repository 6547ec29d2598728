"""The embedded graph store on LadybugDB (``ladybug==0.22.0``, a Kùzu fork), the default store.

Layout of a store directory ``path``::

    path/CURRENT                  name of the generation that answers (switched atomically)
    path/.lock                    held (flock) by the one process loading a new generation
    path/gen-<ns>-<hex>/graph.lbug   the LadybugDB database of one generation
    path/gen-<ns>-<hex>/meta.json    GraphData.meta of that load
    path/rules.json               the merchant's curated rules (outside every generation, so a
                                  rebuild or an update never touches them; see :meth:`save_rules`)
    path/.rules.lock              held (flock) by the one process saving rules

Atomic replace. ``replace`` validates and derives the tables (tiein.graph.build), builds a complete new
generation with ``COPY`` from Arrow (graph/ladybug_load.py), checkpoints and closes it, then writes
``CURRENT.tmp`` and ``os.replace``-s it over ``CURRENT`` (atomic on POSIX and Windows), and only then
deletes the generations before the one it replaced (that one stays: ``tiein rollback`` points
``CURRENT`` back at it, tiein/graph/ladybug_gens.py). A failure or an interruption at any point before the switch leaves
``CURRENT`` on the previous generation, untouched; a half-built generation is removed at once or,
after a crash, by the next ``replace``. A build loads in two parts (``stage``, then ``finish``:
graph/ladybug_staged.py), the tables it knows early beside its last steps, with the same safety.

How a server and a rebuild coexist. LadybugDB lets one process open a database read-write, but
many open it read-only. This store only ever opens a *finished* generation, and always read-only
(which is also what makes ``query`` unable to write); a rebuild writes into its own new
generation directory, so it never contends for the server's lock. Every call checks ``CURRENT``
(one ``stat``) and, when it names another generation, closes the old database and opens the new
one, so a long-running API server picks up a rebuild made by the CLI in another process on its
next request. Deleting the old generation while a server still has it open is safe on POSIX (open
files stay readable until closed); where deletion fails, the next ``replace`` retries it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tiein.errors import (
    ConfigError,
    ProductNotFound,
    StoreError,
    StoreUnavailable,
)
from tiein.faults import fault
from tiein.graph import cypher_ladybug as cy
from tiein.graph.base import (
    GraphDelta,
    Progress,
    candidates_answer,
    id_list,
    pick_scene,
    product_scene_list,
    scene_detail,
    scene_list,
)
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS, GraphTables
from tiein.graph.evidence import attach_evidence
from tiein.graph.ladybug_gens import (
    BUILDING,
    DB_FILE,
    META_FILE,
    generation_holding,
    new_generation_name,
    previous_of,
    read_pointer,
    remove_old,
    write_pointer,
)
from tiein.graph.ladybug_load import (
    build_database,
    loadable_tables,
    patch_database,
    write_meta,
)
from tiein.graph.ladybug_rules import RulesFile
from tiein.graph.ladybug_staged import StagedLoad, early_fits
from tiein.graph.ladybug_support import (
    _clean,
    _execute,
    _no_paths,
    _related_rows,
    _translate,
    _WriterLock,
    check_params,
    refuse_unsafe_plan,
    refuse_writes,
)
from tiein.graph.snapshot_arrow import DIR_PREFIX, LOCK_FILE
from tiein.model import GraphData, check_kind


class EmbeddedStore:
    """GraphStore on LadybugDB in the directory ``path`` (created on the first ``replace``).

    ``query_timeout_s`` caps analyst queries; ``num_threads`` (0 = LadybugDB's default) bounds
    the threads of one query. Thread-safe: calls are serialised by a lock."""

    name = "embedded"

    def __init__(
        self,
        path: Path | str,
        *,
        query_timeout_s: float = 30.0,
        num_threads: int = 0,
        db_options: dict[str, Any] | None = None,
        generation: str | None = None,
        snapshot_files: bool = True,
    ) -> None:
        self.path = Path(path)
        self.pinned = generation  # read this generation, whatever CURRENT says (a load's own check)
        self.snapshot_files = snapshot_files  # a new generation gets its serving snapshot before the switch
        self.db_options = dict(db_options or {})  # more ladybug.Database options (buffer_pool_size, ...)
        self.query_timeout_s = query_timeout_s
        self.num_threads = num_threads
        self._lock = threading.RLock()
        self._db: Any = None
        self._conn: Any = None
        self._gen: str | None = None  # generation currently open
        self._opened = False  # a generation was open once: a missing pointer means damage now
        self._summary_memo: dict[tuple[str | None, str], dict[str, Any]] = {}  # scene_summary, per generation
        self._rules = RulesFile(self.path, self._lock)

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r})"

    # ------------------------------------------------------------------------- generations
    def _read_pointer(self) -> str | None:
        if self.pinned is not None:
            return self.pinned
        return read_pointer(self.path, damaged_if_missing=self._opened)

    def _connection(self) -> Any | None:
        """The read-only connection to the current generation (reopened when ``CURRENT`` names
        another one), or None when nothing was loaded yet. Caller holds the lock.

        ``CURRENT`` is read on every call (a few microseconds): comparing its contents, not its
        mtime or inode, cannot miss a switch."""
        gen = self._read_pointer()
        if gen is not None and gen == self._gen and self._conn is not None:
            return self._conn
        self._close_db()
        if gen is None:
            return None
        import ladybug

        db_path = self.path / gen / DB_FILE
        if not db_path.exists():
            raise StoreUnavailable(
                f"the graph store's pointer names {gen}, which has no database: rebuild it"
            )
        try:
            self._db = ladybug.Database(str(db_path), read_only=True, **self.db_options)
            self._conn = ladybug.Connection(self._db, num_threads=self.num_threads)
            self._conn.set_query_timeout(int(self.query_timeout_s * 1000))
        except RuntimeError as exc:
            self._close_db()
            raise StoreUnavailable(f"cannot open the graph generation {gen}: {_no_paths(str(exc))}") from exc
        self._gen = gen
        self._opened = True
        return self._conn

    def _close_db(self) -> None:
        for obj in (self._conn, self._db):
            if obj is not None:
                obj.close()
        self._conn = self._db = None
        self._gen = None

    def _run(
        self, cypher: str, params: dict[str, Any] | None, what: str, limit: int | None = None
    ) -> tuple[list[str], list[list[Any]]]:
        """Run one statement on the current generation: (column names, rows). Caller holds the lock."""
        conn = self._connection()
        if conn is None:
            raise StoreUnavailable(f"no graph has been loaded into {self.path} yet")
        return _execute(conn, cypher, params, what, limit)

    # ------------------------------------------------------------------------- GraphStore
    def replace(self, data: GraphData, progress: Progress | None = None) -> None:
        """Load ``data`` as a new generation and switch to it atomically (see the module doc)."""
        tables = loadable_tables(data)  # validated, and whether each COPY fits: before any write
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"the embedded store path {self.path} is a file, not a directory")
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            with _WriterLock(self.path / ".lock"):
                self._new_generation(lambda gen_dir: self._build(gen_dir, tables, progress), tables)
        if progress:
            progress("switch", 1, 1)

    def stage(self, early: GraphData, kinds: Iterable[str] = ()) -> StagedLoad | None:
        """Start loading a new generation with the tables of ``early`` that no later step changes
        (the products and their nodes, the pair edges, the relation kinds in ``kinds``), on a
        thread, while the caller computes the rest; :meth:`StagedLoad.finish` with the whole
        graph switches to it (graph/ladybug_staged.py). The writer lock is held until then.
        None (load it all with ``replace``) when that ``COPY`` would take more than a quarter of
        the memory left: the caller's next steps need theirs."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"the embedded store path {self.path} is a file, not a directory")
        if not early_fits(early):
            return None
        return StagedLoad(self, early, kinds)

    def _new_generation(
        self, make: Callable[[Path], None], tables: GraphTables | None = None, gen: str | None = None
    ) -> None:
        """``make`` a new generation directory (from ``tables`` when given: its snapshot files
        are then written from them), then point CURRENT at it atomically and drop the
        generations before the one it replaces (that one is kept for ``switch_to_state``); on any
        failure the new directory is removed and CURRENT is untouched. The caller holds the
        writer lock. ``gen``: the generation's name when ``make`` continues one begun earlier."""
        try:
            before = self._read_pointer()
        except StoreError:
            before = None  # a lost or corrupt pointer: nothing to keep
        gen = gen or new_generation_name()
        gen_dir = self.path / gen
        try:
            make(gen_dir)
            if self.snapshot_files:  # servers then open its files at the switch instead of writing them
                from tiein.graph.snapshot import write_generation_files

                write_generation_files(self.path, gen, tables)
            fault("store.before_switch")
            write_pointer(self.path, gen)
        except BaseException:
            shutil.rmtree(gen_dir, ignore_errors=True)
            raise
        with contextlib.suppress(OSError):  # answering now: no longer an unfinished load
            (gen_dir / BUILDING).unlink(missing_ok=True)
        fault("store.after_switch")
        self._close_db()
        remove_old(self.path, {gen} | ({before} if before else set()))

    def switch_to_state(self, state_id: str) -> bool:
        """Answer with the kept generation that holds the build ``state_id`` again (``tiein
        rollback``): CURRENT is pointed at it atomically, nothing is loaded. False when no kept
        generation holds it (the caller then loads that build)."""
        if not self.path.is_dir():
            return False
        with self._lock, _WriterLock(self.path / ".lock"):
            current = self._read_pointer()
            gen = generation_holding(self.path, state_id, current)
            if gen is None:
                return False
            fault("store.before_switch")
            write_pointer(self.path, gen)
            self._close_db()
            return True

    def _build(self, gen_dir: Path, tables: GraphTables, progress: Progress | None) -> None:
        gen_dir.mkdir()
        (gen_dir / BUILDING).touch()
        fault("store.building")
        write_meta(gen_dir / META_FILE, tables.meta)
        build_database(gen_dir / DB_FILE, tables, self.num_threads, progress)

    def clean(self) -> None:
        """Remove generations that do not answer (a crash left them) unless a load is running;
        the current one and the one before it stay."""
        if not self.path.is_dir():
            return
        try:
            with self._lock, _WriterLock(self.path / ".lock"):
                current = self._read_pointer()
                if current is not None:
                    remove_old(self.path, {current, previous_of(self.path, current) or current})
        except StoreError:
            return  # another process is loading: it cleans up itself

    def apply(self, delta: GraphDelta, progress: Progress | None = None) -> None:
        """Apply ``delta`` (tiein.graph.base.GraphDelta) as a new generation: a file copy of the current
        one, changed in place (relationship and node deletes, ``SET`` of changed nodes, ``COPY``
        appends of new nodes and relationships), checkpointed, then switched to exactly like
        ``replace``. The answering generation is never written, so readers (an API server, a
        snapshot) keep answering from it until the switch; a failure leaves it current."""
        if not self.path.is_dir():
            raise StoreError(
                f"no graph has been loaded into {self.path} yet: build one before applying changes"
            )
        with self._lock, _WriterLock(self.path / ".lock"):
            current = self._read_pointer()
            if current is None:
                raise StoreError(
                    f"no graph has been loaded into {self.path} yet: build one before applying changes"
                )

            def make(gen_dir: Path) -> None:
                # not the snapshot files: they are named after (and only serve) their generation
                shutil.copytree(
                    self.path / current, gen_dir, ignore=shutil.ignore_patterns(f"{DIR_PREFIX}*", LOCK_FILE)
                )
                self._patch(gen_dir, delta, progress)
                write_meta(gen_dir / META_FILE, delta.meta)

            self._new_generation(make)
        if progress:
            progress("switch", 1, 1)

    def _patch(self, gen_dir: Path, delta: GraphDelta, progress: Progress | None) -> None:
        """Change the copied database in ``gen_dir`` by ``delta`` (the order of tiein.graph.base.GraphDelta)."""
        patch_database(gen_dir / DB_FILE, delta, self.num_threads, progress)

    def product(self, product_id: str) -> dict[str, Any]:
        with self._lock:
            if self._connection() is None:
                raise ProductNotFound(product_id)
            cols, rows = self._run(cy.PRODUCT, {"product_id": product_id}, "product lookup")
        if not rows:
            raise ProductNotFound(product_id)
        return dict(zip(cols, rows[0], strict=True))

    def related(self, product_id: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        check_kind(kind)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        self.product(product_id)  # ProductNotFound before an empty answer
        with self._lock:
            cols, rows = self._run(cy.RELATED[kind], {"product_id": product_id}, "related", limit=k)
        return _related_rows(cols, rows, product_id, kind)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            conn = self._connection()
            if conn is None:
                return {
                    "nodes": dict.fromkeys(NODE_SCHEMAS, 0),
                    "relationships": dict.fromkeys(REL_SCHEMAS, 0),
                    "meta": {},
                }
            meta_path = self.path / str(self._gen) / META_FILE
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise StoreUnavailable(
                    f"the graph generation {self._gen} has a damaged {META_FILE}: rebuild it or run `tiein rollback`"
                ) from exc
            # every count on this one connection, i.e. the same generation as the meta
            nodes = {label: _execute(conn, q, None, "stats")[1][0][0] for label, q in cy.COUNT_NODES.items()}
            rels = {rel: _execute(conn, q, None, "stats")[1][0][0] for rel, q in cy.COUNT_RELS.items()}
        return {"nodes": nodes, "relationships": rels, "meta": meta}

    def _rows(self, cypher: str, params: dict[str, Any] | None, what: str) -> list[dict[str, Any]] | None:
        """Rows of one of this module's statements as dicts; None when nothing was loaded yet."""
        with self._lock:
            if self._connection() is None:
                return None
            cols, rows = self._run(cypher, params, what)
        return [dict(zip(cols, row, strict=True)) for row in rows]

    def scenes(self) -> list[dict[str, Any]]:
        return scene_list(self._rows(cy.SCENES, None, "scenes") or [])

    def scene(self, name_or_id: str) -> dict[str, Any]:
        key = str(name_or_id)
        found = self._rows(cy.SCENE_LOOKUP, {"key": key, "key_lower": key.lower()}, "scene lookup") or []
        scene = pick_scene(key, found)
        members = self._rows(cy.SCENE_MEMBERS, {"scene_id": scene["scene_id"]}, "scene members") or []
        return scene_detail(scene, members)

    # ------------------------------------------------------------------------- bundles
    def scene_summary(self, name_or_id: str) -> dict[str, Any]:
        """Memoised per generation (a generation never changes once written): a bundle asks for
        its scene's role order on every request, and aggregating a big scene costs milliseconds."""
        key = str(name_or_id)
        with self._lock:
            self._connection()  # switches generation (and so drops the memo) after a rebuild
            memo = self._summary_memo
            cached = memo.get((self._gen, key))
            if cached is None:
                found = (
                    self._rows(cy.SCENE_LOOKUP, {"key": key, "key_lower": key.lower()}, "scene lookup") or []
                )
                scene = pick_scene(key, found)
                rows = self._rows(cy.SCENE_SUMMARY, {"scene_id": scene["scene_id"]}, "scene summary") or []
                cached = scene_list(rows)[0] if rows else pick_scene(key, [])
                if len(memo) >= 1024 or any(g != self._gen for g, _ in memo):
                    memo.clear()
                memo[(self._gen, key)] = cached
        return {**cached, "roles": list(cached["roles"])}

    def product_scenes(self, product_id: str) -> list[dict[str, Any]]:
        rows = self._rows(cy.PRODUCT_SCENES, {"product_id": product_id}, "product scenes")
        if not rows:
            raise ProductNotFound(product_id)
        return product_scene_list(rows)

    def scene_roles_of(self, scene_id: str, product_ids: list[str]) -> dict[str, str | None]:
        ids = id_list(product_ids)
        if not ids:
            return {}
        rows = (
            self._rows(cy.SCENE_ROLES_OF, {"scene_id": str(scene_id), "product_ids": ids}, "scene roles")
            or []
        )
        return {r["product_id"]: r["role"] for r in sorted(rows, key=lambda r: r["product_id"])}

    def bundle_candidates(self, product_id: str, k: int = 50) -> dict[str, Any]:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        params = {"product_id": product_id}
        with self._lock:  # four statements on one generation
            if self._connection() is None:
                raise ProductNotFound(product_id)
            cols, rows = self._run(cy.PRODUCT_SCENES, params, "bundle candidates")
            if not rows:
                raise ProductNotFound(product_id)
            ccols, crows = self._run(cy.RELATED["complement"], params, "bundle candidates", limit=k)
            pcols, prows = self._run(cy.SUBSTITUTE_PAIRS, params, "bundle candidates")
            rcols, rrows = self._run(cy.COMPLEMENT_SCENES, params, "bundle candidates")
        scene_rows = [dict(zip(cols, r, strict=True)) for r in rows]
        complements = _related_rows(ccols, crows, product_id, "complement")
        pairs = [dict(zip(pcols, r, strict=True)) for r in prows]
        roles = [dict(zip(rcols, r, strict=True)) for r in rrows]
        return candidates_answer(scene_rows[0], scene_rows, complements, pairs, k, roles)

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one read-only Cypher statement (LadybugDB dialect, see docs/schema.md).

        Refused with WriteRefused: writing clauses, DDL, COPY/LOAD (file access), settings —
        checked by :func:`graph.cypher_guard.refuse_writes`, then by LadybugDB's own plan of the query
        (:func:`refuse_unsafe_plan`) and the read-only database. Analysts' queries from the API and
        the CLI run this in a worker process (tiein.cypher_worker), not in the server.
        Invalid Cypher raises CypherError; queries running past ``query_timeout_s`` are
        interrupted (CypherError)."""
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
        are fetched, and the query is interrupted after ``timeout_s`` seconds (default
        ``query_timeout_s``) by LadybugDB itself (CypherError). Used by
        :func:`tiein.cypher.run_cypher`."""
        refuse_writes(cypher)
        check_params(cypher, params)
        timeout_ms = max(1, int((self.query_timeout_s if timeout_s is None else timeout_s) * 1000))
        with self._lock:
            conn = self._connection()
            if conn is None:
                raise StoreUnavailable(f"no graph has been loaded into {self.path} yet")
            conn.set_query_timeout(timeout_ms)
            try:
                refuse_unsafe_plan(conn, cypher, params)
                cols, rows = _execute(conn, cypher, params, "query", limit)
                out = [[_clean(v) for v in row] for row in rows]
                attach_evidence(
                    out, lambda ids: dict(_execute(conn, cy.EVIDENCE_OF, {"ids": ids}, "query")[1])
                )
            finally:
                conn.set_query_timeout(int(self.query_timeout_s * 1000))
        return cols, out

    def read_table(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        """The whole answer of one of tiein's own read statements as a ``pyarrow.Table``
        (columnar, for bulk reads such as tiein.graph.snapshot); an empty table with no columns when
        nothing was loaded yet. Not for analysts' queries (no write check, no row cap)."""
        import pyarrow as pa

        with self._lock:
            conn = self._connection()
            if conn is None:
                return pa.table({})
            try:
                result = conn.execute(cypher, params or {})
            except RuntimeError as exc:
                raise _translate(exc, "bulk read") from exc
            try:
                table = result.get_as_arrow(100_000)
            finally:
                result.close()
        return table

    # ------------------------------------------------------------------------- merchant rules
    def rules(self) -> dict[str, Any]:
        """The rules in ``path/rules.json`` (:class:`tiein.graph.ladybug_rules.RulesFile`)."""
        return self._rules.read()

    def save_rules(
        self, rules: list[dict[str, Any]], *, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Save ``rules`` as the next version (:meth:`tiein.graph.ladybug_rules.RulesFile.save`)."""
        return self._rules.save(rules, expected_version=expected_version)

    def generation(self) -> str | None:
        """The name of the generation that answers now (None before the first load): a cheap
        token that changes with every ``replace``, here or in another process."""
        with self._lock:
            return self._read_pointer()

    def close(self) -> None:
        with self._lock:
            self._close_db()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

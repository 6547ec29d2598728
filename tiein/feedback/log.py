"""The event log: ``HOME/feedback/events/part-*.parquet``, append-only and idempotent, compacted
crash-safely (see the package docstring)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError, StorageFull, StoreUnavailable
from tiein.faults import fault
from tiein.loaders.events import EVENTS, records_table

LOG_DIR = Path("feedback") / "events"
KEY = "key"
COMPACT_PARTS = 32  # an ingest that leaves more part files than this merges them into one


@dataclass
class IngestResult:
    """What one ingest did: ``received`` events, ``added`` to the log, ``duplicates`` skipped
    (already in the log or repeated in the batch), the ``part`` file written (None if nothing)."""

    received: int
    added: int
    duplicates: int
    part: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "added": self.added,
            "duplicates": self.duplicates,
            "part": self.part,
        }


def log_dir(home: Path | str) -> Path:
    """Where the event log of ``home`` lives (``HOME/feedback/events``)."""
    return Path(home) / LOG_DIR


@contextmanager
def _locked(home: Path | str) -> Iterator[Path]:
    d = log_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    with open(d.parent / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield d
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


REPLACES = b"tiein.replaces"  # key-value metadata of a merged part: the parts it holds (JSON names)


def _replaced(path: Path) -> list[str]:
    """The part names a merged part holds (its parquet metadata), [] for other parts."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreUnavailable(
            f"the feedback log is damaged: {path.name} is not a readable part ({exc})"
        ) from exc
    raw = meta.get(REPLACES)
    return list(json.loads(raw)) if raw else []


def _parts(home: Path | str) -> list[str]:
    """The log's part files, without those a merged part already holds (a compaction that
    crashed after the merged part was renamed in, before the old ones were removed)."""
    d = log_dir(home)
    if not d.is_dir():
        return []
    paths = sorted(d.glob("part-*.parquet"))
    held = {name for p in paths if p.name.endswith("-merged.parquet") for name in _replaced(p)}
    return [str(p) for p in paths if p.name not in held]


def _finish_compaction(d: Path) -> None:
    """Remove the parts that a merged part holds (under the ingest lock): the end of a
    compaction that a crash interrupted."""
    for p in sorted(d.glob("part-*-merged.parquet")):
        for name in _replaced(p):
            if name != p.name:
                (d / name).unlink(missing_ok=True)
    for tmp in d.glob(".part-*.tmp"):
        tmp.unlink(missing_ok=True)


def log_version(home: Path | str) -> tuple[str, ...]:
    """The log's version: the names of its part files (the log only grows or is merged, so a new
    name means new events)."""
    return tuple(Path(p).name for p in _parts(home))


_KEY_SQL = """
SELECT *, CASE WHEN event_id IS NOT NULL THEN 'id:' || event_id ELSE 'h:' || md5(concat_ws(chr(31),
    strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), user_id, anchor_id, item_id, kind, coalesce(surface, ''),
    coalesce(experiment, ''), coalesce(variant, ''), event, coalesce(CAST(value AS VARCHAR), ''),
    coalesce(order_id, ''))) END AS key
FROM new
"""


def ingest(home: Path | str, table: pa.Table) -> IngestResult:
    """Append the events of ``table`` (:data:`EVENTS`, e.g. from :func:`read_events`) to the log
    of ``home`` that it does not hold yet (see the module docstring); idempotent."""

    if table.schema.names != EVENTS.names:
        raise ConfigError(
            f"ingest expects an EVENTS table with columns {EVENTS.names}, got {table.schema.names}"
        )
    table = table.cast(EVENTS)
    try:
        return _ingest(home, table)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFull("no space left to log the events: nothing was added") from exc
        raise


def _ingest(home: Path | str, table: pa.Table) -> IngestResult:
    import duckdb
    import pyarrow.parquet as pq

    with _locked(home) as d:
        _finish_compaction(d)
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("new", table)
            con.execute(f"CREATE TEMP TABLE batch AS {_KEY_SQL}")
            parts = _parts(home)
            seen = (
                "SELECT key FROM read_parquet($parts)" if parts else "SELECT NULL::VARCHAR AS key WHERE false"
            )
            fresh = con.sql(
                f"""SELECT * EXCLUDE (rn) FROM (
                        SELECT *, row_number() OVER (PARTITION BY key ORDER BY ts) AS rn FROM batch)
                    WHERE rn = 1 AND key NOT IN ({seen}) ORDER BY ts, key""",
                params={"parts": parts} if parts else None,
            ).to_arrow_table()
        finally:
            con.close()
        result = IngestResult(
            received=table.num_rows, added=fresh.num_rows, duplicates=table.num_rows - fresh.num_rows
        )
        if fresh.num_rows:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            digest = hashlib.sha256("".join(fresh.column(KEY).to_pylist()[:1000]).encode()).hexdigest()[:12]
            path = d / f"part-{stamp}-{digest}.parquet"
            tmp = d / f".{path.name}.tmp"
            fields = [*EVENTS, pa.field(KEY, pa.string())]
            pq.write_table(fresh.select([f.name for f in fields]).cast(pa.schema(fields)), tmp)
            os.replace(tmp, path)
            result.part = str(path)
            parts = _parts(home)
            if len(parts) > COMPACT_PARTS:
                result.part = str(_compact(d, parts))
    return result


def _compact(d: Path, parts: list[str]) -> Path:
    """Merge ``parts`` into one part file (written beside them, then the old ones removed), so a
    log fed by many small POSTs stays a few files. Runs under the ingest lock; a reader that
    listed the old files retries (:func:`read_log`).

    Crash-safe: the merged part names the parts it holds in its metadata, so from the moment
    it is renamed in readers skip them (:func:`_parts`), and the next ingest removes those a
    crash left (:func:`_finish_compaction`): never an event twice, never one lost."""
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    try:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        digest = hashlib.sha256("".join(parts).encode()).hexdigest()[:12]
        path = d / f"part-{stamp}-{digest}-merged.parquet"
        tmp = d / f".{path.name}.tmp"
        merged = con.sql(
            f"SELECT * FROM read_parquet($p) ORDER BY ts, {KEY}", params={"p": parts}
        ).to_arrow_table()
    finally:
        con.close()
    names = json.dumps([Path(p).name for p in parts]).encode()
    merged = merged.replace_schema_metadata({**(merged.schema.metadata or {}), REPLACES: names})
    pq.write_table(merged, tmp)
    os.replace(tmp, path)  # from here on readers skip the parts it holds
    fault("feedback.after_merge")
    for i, part in enumerate(parts):
        Path(part).unlink(missing_ok=True)
        if i == 0:
            fault("feedback.mid_delete")
    return path


def ingest_records(
    home: Path | str, records: Sequence[Any], source: str = "request", *, timezone: str = "UTC"
) -> IngestResult:
    """Validate a list of event objects (a ``POST /v1/events`` body) and :func:`ingest` them.
    Field names and rules as for files (:func:`read_events`); errors name ``source`` and the
    1-based position of the bad event; times without a zone are read in ``timezone`` (the API
    passes the shop's, :func:`tiein.loaders.events.shop_timezone`)."""
    return ingest(home, records_table(records, source, timezone=timezone))


def read_log(home: Path | str) -> pa.Table:
    """Every event in the log of ``home`` as an :data:`EVENTS` table ordered by time, then key
    (empty when nothing was ingested)."""
    import duckdb

    for attempt in range(5):
        parts = _parts(home)
        if not parts:
            return EVENTS.empty_table()
        con = duckdb.connect()
        try:
            cols = ", ".join(EVENTS.names)
            table = con.sql(
                f"SELECT {cols} FROM read_parquet($p) ORDER BY ts, key", params={"p": parts}
            ).to_arrow_table()
            return table.cast(EVENTS)
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            if attempt == 4 or all(Path(p).exists() for p in parts):
                raise StoreUnavailable(f"the feedback log is damaged: {_without_paths(str(exc))}") from exc
            time.sleep(0.05)  # an ingest merged the parts in the meantime: list them again
        finally:
            con.close()
    raise AssertionError("unreachable")


def _without_paths(message: str) -> str:
    """``message`` with absolute paths cut to their file names (errors reach API clients)."""
    import re

    return re.sub(r"/(?:[^/\s'\"]+/)+([^/\s'\"]+)", r"\1", message)

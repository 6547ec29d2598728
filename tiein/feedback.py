"""The feedback loop: recommendation events in, CTR / conversion out, re-ranking and A/B reports.

Events (:data:`EVENTS`) say what a shopper did with a recommendation: an ``impression`` (shown),
a ``click``, an ``add_to_cart`` or a ``purchase`` of ``item_id`` recommended for ``anchor_id`` as
a ``kind`` (complement, substitute, upsell, series, bundle, addon) on a ``surface`` (page, live,
service, …) in an ``experiment``'s ``variant``. ``value`` is the amount of the order the purchase
belongs to (``order_id`` lets several purchases of one order count it once).

    read_events(path)                   # CSV/TSV, JSON lines, Parquet, XLSX -> EVENTS (strict)
    ingest(home, table)                 # append to HOME/feedback/events/ (idempotent)
    ingest_records(home, records)       # the same for a POST body (list of JSON objects)
    feedback_stats(read_log(home))      # per (anchor, item, kind), per item and per kind, smoothed
    rerank(rows, stats, anchor_id=...)  # Thompson sampling, priors from score and item level
    assign(user_id, "exp-1")            # deterministic A/B variant
    ab_report(events, experiment=...)   # add-on rate, AOV, lift with 95 % CIs; write_report()

**Log.** ``HOME/feedback/events/part-*.parquet``, append-only. Every event has a ``key``:
``id:<event_id>`` when the event carries an id, else ``h:<md5 of all its fields>``. An ingest
writes only events whose key the log does not hold yet, so re-ingesting a file adds nothing
(two truly identical events without ids count once: give ids to keep both). Ingests hold a lock
file, so the CLI and the API can append at the same time.

**Smoothing.** The rate of a pair (CTR = clicks / impressions, conversion = purchases /
impressions; successes are capped at the impressions) is the mean of its Beta posterior: prior
``Beta(m·p, m·(1-p))`` with ``p`` the kind's overall rate, Laplace-smoothed
(``(successes + 1) / (impressions + 2)``, so it is never 0 or 1) and ``m`` = ``prior_strength``
pseudo-impressions (default 50): ``(s + m·p) / (n + m)``. A pair with 2 impressions and 1
purchase is pulled to the kind's rate; one with 2,000 impressions keeps its own.

**Re-ranking** is Thompson sampling on per-pair Beta posteriors whose prior is calibrated by the
classifier and by the item: a row's prior mean is the kind's rate × its score / the mean score of
the rows already shown × its item factor, prior ``Beta(m·q, m·(1-q))``, and its new score is a
draw from the posterior. The **item factor** is how the item sells when recommended for the
*other* anchors (the pair's own counts left out), against the kind's rate, smoothed with
``item_strength`` pseudo-impressions (default 200; 0 turns it off):
``((S - s) + m_i·p) / ((N - n) + m_i) / p``. Most pairs are shown too rarely to learn from alone
(in the Online Retail simulation the median pair gets one impression in three months), while an
item is shown for many anchors, so what sells now lifts its pairs everywhere, including pairs
never shown. Pairs of unseen items keep the classifier's order, so new pairs are still shown where
their score puts them; a pair moves only when it (or its item) sells better or worse than its
score predicts. (A prior equal to the kind's average for every row was tried first: it lifts
unseen low-ranked pairs above shown ones after a few misses and lost sales in the simulation.)
Thompson sampling was chosen over UCB because it needs no tuning constant, works on the same Beta
posteriors the stats report, and randomises between near-equal pairs instead of always showing the
same one. ``explore`` scales the draw's spread around the posterior mean (``1`` = classic Thompson
sampling, ``0`` = greedy on the posterior mean); the random generator is seeded per request
(default: from the anchor and kind), so one request always gets the same answer.

**Confidence intervals** are 95 % normal approximations: a ratio of sums (conversion =
purchases / impressions, add-on rate = purchases / users) by the delta method over independent
units (users in reports, baskets in the simulation), so events of one user are not treated as
independent; a plain proportion of independent units (hit rate) by Wilson's interval; a lift
``b / a - 1`` by the delta method on ``log(b / a)``. Small samples (under ~30 units) make them
rough.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError, InputError, StorageFull, StoreUnavailable
from tiein.faults import fault
from tiein.model import RELATION_KINDS

EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase")
# Kinds an event may carry: the relation kinds, plus bundles and cart add-ons (tiein.bundles).
EVENT_KINDS = (*RELATION_KINDS, "bundle", "addon")

# One row per event. Required (never null): ts, user_id, anchor_id, item_id, kind, event.
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.timestamp("us")),  # naive UTC
        ("user_id", pa.string()),
        ("anchor_id", pa.string()),
        ("item_id", pa.string()),
        ("kind", pa.string()),  # EVENT_KINDS
        ("surface", pa.string()),  # page | live | service | … (lower case, free)
        ("experiment", pa.string()),
        ("variant", pa.string()),
        ("event", pa.string()),  # EVENT_TYPES
        ("value", pa.float64()),  # order amount, >= 0
        ("order_id", pa.string()),
    ]
)
REQUIRED = ("ts", "user_id", "anchor_id", "item_id", "kind", "event")
# Input column names accepted for each field (case-insensitive), first match wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "id"),
    "ts": ("ts", "time", "timestamp", "event_time"),
    "user_id": ("user_id", "user", "customer_id"),
    "anchor_id": ("anchor_id", "anchor"),
    "item_id": ("item_id", "item", "product_id"),
    "kind": ("kind", "relation"),
    "surface": ("surface",),
    "experiment": ("experiment",),
    "variant": ("variant",),
    "event": ("event", "event_type", "type"),
    "value": ("value", "order_value", "amount"),
    "order_id": ("order_id",),
}
LOG_DIR = Path("feedback") / "events"
KEY = "key"
Z95 = 1.959963984540054
DEFAULT_PRIOR_STRENGTH = 50.0
DEFAULT_ITEM_STRENGTH = 200.0
METRICS = {"conversion": "purchases", "ctr": "clicks"}
_MAX_SHOWN = 5  # problems listed in one InputError
COMPACT_PARTS = 32  # an ingest that leaves more part files than this merges them into one


# ------------------------------------------------------------------------------- reading


def read_events(path: Path | str) -> pa.Table:
    """The events of one file (CSV/TSV, JSON lines, Parquet or XLSX; encodings as in
    :mod:`tiein.loaders.read`) as an :data:`EVENTS` table in file order.

    Columns are found by name (:data:`ALIASES`, case-insensitive); unknown columns are ignored.
    Raises :class:`InputError` naming the file, the first bad row, the column and why, listing up
    to five problems: a missing required column or value, an unreadable time, an unknown event
    type or kind, a value that is not a non-negative number.
    """
    from tiein.loaders.read import read_table

    return _normalise(read_table(Path(path)))


def records_table(records: Sequence[Any], source: str = "request") -> pa.Table:
    """A list of JSON objects (a POST body) as an :data:`EVENTS` table; ``row`` in errors is the
    1-based position in the list and ``source`` stands for the file name."""
    from tiein.loaders.read import ROW, RawTable

    if not isinstance(records, (list, tuple)):
        raise InputError("expected a list of event objects", file=source)
    if not records:
        raise InputError("no events given", file=source)
    names: dict[str, None] = {}
    for i, r in enumerate(records, start=1):
        if not isinstance(r, dict):
            raise InputError(f"each event must be a JSON object, got {type(r).__name__}", file=source, row=i)
        names.update(dict.fromkeys(r))
    columns: dict[str, pa.Array] = {}
    for n in names:
        values = []
        for i, r in enumerate(records, start=1):
            v = r.get(n)
            if isinstance(v, (dict, list)):
                raise InputError(
                    "must be a single value, not an object or list", file=source, row=i, column=n
                )
            values.append(None if v is None else str(v))
        columns[str(n)] = pa.array(values, pa.string())
    columns[ROW] = pa.array(range(1, len(records) + 1), pa.int64())
    return _normalise(RawTable(pa.table(columns), source, "json"))


def _normalise(raw: Any) -> pa.Table:
    """RawTable -> EVENTS, strictly (see :func:`read_events`)."""
    from tiein.loaders import build as b
    from tiein.loaders.read import ROW

    lower = {c.lower(): c for c in reversed(raw.columns)}
    found: dict[str, str] = {}
    for fld, names in ALIASES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is not None:
            found[fld] = col
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the file has columns: {', '.join(raw.columns)}",
            file=raw.file,
            column=missing[0],
        )
    con = b.connect()
    try:
        con.register("raw", raw.table)

        def text(fld: str) -> str:
            return b.id_expr(raw, found[fld]) if fld in found else "CAST(NULL AS VARCHAR)"

        def token(fld: str) -> str:  # lower case, '-' and ' ' -> '_'
            return f"nullif(regexp_replace(lower({text(fld)}), '[\\s-]+', '_', 'g'), '')"

        ts = b.timestamp_expr(con, raw, "raw", [found["ts"]], None)
        value = b.number_expr(raw, found["value"]) if "value" in found else "CAST(NULL AS DOUBLE)"
        select = {
            "event_id": text("event_id"),
            "ts": ts,
            "user_id": text("user_id"),
            "anchor_id": text("anchor_id"),
            "item_id": text("item_id"),
            "kind": token("kind"),
            "surface": token("surface"),
            "experiment": text("experiment"),
            "variant": text("variant"),
            "event": token("event"),
            "value": value,
            "order_id": text("order_id"),
        }
        cols = ", ".join(f"{e} AS {b.q(n)}" for n, e in select.items())
        # the raw text and presence of each source column, for the messages
        raws = ", ".join(
            f"CAST({b.q(c)} AS VARCHAR) AS {b.q('raw_' + f)}, ({b.is_present(raw, c)}) AS {b.q('has_' + f)}"
            for f, c in found.items()
        )
        con.execute(f"CREATE TEMP TABLE ev AS SELECT {cols}, {raws}, {ROW} FROM raw")
        problems: list[tuple[int, str, str]] = []

        def bad(where: str, fld: str, why: str) -> None:
            sql = f"SELECT {ROW}, raw_{fld} FROM ev WHERE {where} ORDER BY 1 LIMIT {_MAX_SHOWN}"
            for row, v in con.execute(sql).fetchall():
                problems.append((int(row), found[fld], why.format(v=v)))

        for fld in REQUIRED:  # an unreadable time is reported below, as such
            bad(f"{fld} IS NULL" + (" AND NOT has_ts" if fld == "ts" else ""), fld, "a value is required")
        bad("ts IS NULL AND has_ts", "ts", "cannot read {v!r} as a date/time")
        allowed = ", ".join(b.lit(e) for e in EVENT_TYPES)
        bad(f"event NOT IN ({allowed})", "event", "unknown event {v!r}; events: " + ", ".join(EVENT_TYPES))
        kinds = ", ".join(b.lit(k) for k in EVENT_KINDS)
        bad(f"kind NOT IN ({kinds})", "kind", "unknown kind {v!r}; kinds: " + ", ".join(EVENT_KINDS))
        if "value" in found:
            bad("value IS NULL AND has_value", "value", "cannot read {v!r} as a number")
            bad("value < 0", "value", "the value {v!r} is negative")
        if problems:
            problems.sort()
            row, column, why = problems[0]
            more = "; ".join(f"row {r} column {c!r}: {w}" for r, c, w in problems[1:_MAX_SHOWN])
            raise InputError(why + (f" (also {more})" if more else ""), file=raw.file, row=row, column=column)
        table = con.sql(
            f"SELECT {', '.join(b.q(n) for n in EVENTS.names)} FROM ev ORDER BY {ROW}"
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(EVENTS)


# ------------------------------------------------------------------------------- the log


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
        raise StoreUnavailable(f"the feedback log is damaged: {path.name} is not a readable part ({exc})") from exc
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


def ingest_records(home: Path | str, records: Sequence[Any], source: str = "request") -> IngestResult:
    """Validate a list of event objects (a ``POST /v1/events`` body) and :func:`ingest` them.
    Field names and rules as for files (:func:`read_events`); errors name ``source`` and the
    1-based position of the bad event."""
    return ingest(home, records_table(records, source))


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


# ------------------------------------------------------------------------------- statistics


def _count_index(table: pa.Table, keys: Sequence[str], successes: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    """key columns -> (impressions, successes capped at impressions) of a stats table."""
    cols = zip(*(table.column(k).to_pylist() for k in keys), strict=True)
    vals = zip(table.column("impressions").to_pylist(), table.column(successes).to_pylist(), strict=True)
    return {key: (n, min(s, n)) for key, (n, s) in zip(cols, vals, strict=True)}


def _lookup(got: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.array(got, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


@dataclass
class FeedbackStats:
    """Counts and smoothed rates per (anchor_id, item_id, kind) (``pairs``), per kind (``kinds``)
    and per recommended item and kind over all its anchors (``items``: item_id, kind, anchors,
    impressions, clicks, purchases; successes capped at impressions per pair); see the module
    docstring for the smoothing. ``metric`` ("conversion" or "ctr") is the rate :func:`rerank`
    optimises; ``item_strength`` the pseudo-impressions of its item level (0: no item level)."""

    pairs: pa.Table
    kinds: pa.Table
    items: pa.Table
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    item_strength: float = DEFAULT_ITEM_STRENGTH
    metric: str = "conversion"
    _index: dict[tuple[Any, ...], tuple[int, int]] | None = field(default=None, repr=False)
    _item_index: dict[tuple[Any, ...], tuple[int, int]] | None = field(default=None, repr=False)
    _prior: dict[str, float] | None = field(default=None, repr=False)

    def prior_rate(self, kind: str) -> float:
        """The kind's Laplace-smoothed overall rate of ``metric``: ``(s + 1) / (n + 2)``; for a
        kind without events, the same over all kinds (0.5 when there are no events at all)."""
        if self._prior is None:
            import pyarrow.compute as pc

            k = self.kinds.to_pydict()
            self._prior = dict(zip(k["kind"], k[f"{self.metric}_prior"], strict=True))
            n = self.pairs.column("impressions")
            capped = pc.min_element_wise(self.pairs.column(METRICS[self.metric]), n)
            self._prior[""] = ((pc.sum(capped).as_py() or 0) + 1.0) / ((pc.sum(n).as_py() or 0) + 2.0)
        return self._prior.get(kind, self._prior[""])

    def _pair_index(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        if self._index is None:
            self._index = _count_index(self.pairs, ("anchor_id", "item_id", "kind"), METRICS[self.metric])
        return self._index

    def _items_index(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        if self._item_index is None:
            self._item_index = _count_index(self.items, ("item_id", "kind"), METRICS[self.metric])
        return self._item_index

    def counts(self, anchor_id: str, items: Sequence[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(impressions, successes)`` of ``metric`` for each of ``items`` shown for ``anchor_id``
        as ``kind`` (0, 0 for pairs never shown; successes capped at impressions)."""
        index = self._pair_index()
        return _lookup([index.get((anchor_id, i, kind), (0, 0)) for i in items])

    def item_counts(self, items: Sequence[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(impressions, successes)`` of ``metric`` for each of ``items`` recommended as ``kind``
        for any anchor (per-pair successes capped at impressions; 0, 0 for items never shown)."""
        index = self._items_index()
        return _lookup([index.get((i, kind), (0, 0)) for i in items])

    def warm(self) -> FeedbackStats:
        """Build the lookup indexes now (a server does it before swapping new stats in, so no
        request pays for it); returns self."""
        self._pair_index()
        self._items_index()
        self.prior_rate("")
        return self

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready: {"metric", "prior_strength", "item_strength", "kinds": [...], "pairs": [...
        best ``top`` by smoothed conversion, then impressions], "items": [... best ``top`` by
        purchases, then impressions]}."""
        pairs, items = self.pairs, self.items
        if top is not None:
            import pyarrow.compute as pc

            order = pc.sort_indices(
                pairs,
                sort_keys=[
                    ("conversion_smoothed", "descending"),
                    ("impressions", "descending"),
                    ("anchor_id", "ascending"),
                    ("item_id", "ascending"),
                ],
            )
            pairs = pairs.take(order[:top])
            order = pc.sort_indices(
                items,
                sort_keys=[("purchases", "descending"), ("impressions", "descending"), ("kind", "ascending"),
                           ("item_id", "ascending")],
            )  # fmt: skip
            items = items.take(order[:top])
        return {
            "metric": self.metric,
            "prior_strength": self.prior_strength,
            "item_strength": self.item_strength,
            "kinds": self.kinds.to_pylist(),
            "pairs": pairs.to_pylist(),
            "items": items.to_pylist(),
        }


_PAIRS_SQL = """
SELECT anchor_id, item_id, kind,
       count(*) FILTER (WHERE event = 'impression') AS impressions,
       count(*) FILTER (WHERE event = 'click') AS clicks,
       count(*) FILTER (WHERE event = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE event = 'purchase') AS purchases
FROM ev GROUP BY ALL
"""
# Priors: successes capped at impressions per pair, then Laplace-smoothed per kind.
_KINDS_SQL = """
SELECT kind, sum(impressions)::BIGINT AS impressions, sum(clicks)::BIGINT AS clicks,
       sum(add_to_carts)::BIGINT AS add_to_carts, sum(purchases)::BIGINT AS purchases,
       CASE WHEN sum(impressions) > 0 THEN sum(clicks) / sum(impressions) END AS ctr,
       CASE WHEN sum(impressions) > 0 THEN sum(purchases) / sum(impressions) END AS conversion,
       (sum(least(clicks, impressions)) + 1.0) / (sum(impressions) + 2.0) AS ctr_prior,
       (sum(least(purchases, impressions)) + 1.0) / (sum(impressions) + 2.0) AS conversion_prior
FROM p GROUP BY kind ORDER BY kind
"""
_STATS_SQL = """
SELECT p.*,
       CASE WHEN p.impressions > 0 THEN p.clicks / p.impressions END AS ctr,
       CASE WHEN p.impressions > 0 THEN p.purchases / p.impressions END AS conversion,
       (least(p.clicks, p.impressions) + $m * k.ctr_prior) / (p.impressions + $m) AS ctr_smoothed,
       (least(p.purchases, p.impressions) + $m * k.conversion_prior) / (p.impressions + $m) AS conversion_smoothed
FROM p JOIN k USING (kind)
ORDER BY kind, anchor_id, item_id
"""
# The item level of the re-ranker's prior: every anchor's impressions of an item, successes capped
# per pair exactly as in the pair counts (so a pair's own counts can be taken out again).
_ITEMS_SQL = """
SELECT item_id, kind, count(*)::BIGINT AS anchors, sum(impressions)::BIGINT AS impressions,
       sum(least(clicks, impressions))::BIGINT AS clicks, sum(least(purchases, impressions))::BIGINT AS purchases
FROM p GROUP BY item_id, kind ORDER BY kind, item_id
"""


def feedback_stats(
    events: pa.Table,
    *,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    item_strength: float = DEFAULT_ITEM_STRENGTH,
    metric: str = "conversion",
) -> FeedbackStats:
    """Per-pair and per-kind counts of :data:`EVENTS` with raw and smoothed CTR and conversion
    (one DuckDB pass). ``pairs``: anchor_id, item_id, kind, impressions, clicks, add_to_carts,
    purchases, ctr, conversion (null without impressions), ctr_smoothed, conversion_smoothed.
    ``kinds``: kind, impressions, clicks, add_to_carts, purchases, ctr, conversion, ctr_prior,
    conversion_prior (the Laplace-smoothed rates used as prior means).

    >>> ev = events_table([
    ...     {"ts": "2024-01-01", "user_id": "u", "anchor_id": "a", "item_id": "b", "kind": "complement", "event": e}
    ...     for e in ("impression", "impression", "purchase")])
    >>> s = feedback_stats(ev, prior_strength=2)
    >>> row = s.pairs.to_pylist()[0]
    >>> row["impressions"], row["purchases"], row["conversion"]   # prior (1 + 1) / (2 + 2) = 0.5
    (2, 1, 0.5)
    >>> row["conversion_smoothed"]                                # (1 + 2 * 0.5) / (2 + 2)
    0.5
    """
    import duckdb

    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    if not prior_strength > 0:
        raise ConfigError(f"prior_strength must be > 0, got {prior_strength!r}")
    if not item_strength >= 0:
        raise ConfigError(f"item_strength must be >= 0 (0: no item level), got {item_strength!r}")
    con = duckdb.connect()
    try:
        con.register("ev", events.select(["anchor_id", "item_id", "kind", "event"]))
        con.execute(f"CREATE TEMP TABLE p AS {_PAIRS_SQL}")
        kinds = con.sql(_KINDS_SQL).to_arrow_table()
        con.register("k", kinds)
        pairs = con.sql(_STATS_SQL, params={"m": float(prior_strength)}).to_arrow_table()
        items = con.sql(_ITEMS_SQL).to_arrow_table()
    finally:
        con.close()
    return FeedbackStats(
        pairs=pairs, kinds=kinds, items=items, prior_strength=float(prior_strength),
        item_strength=float(item_strength), metric=metric,
    )  # fmt: skip


def events_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """:func:`records_table` for code and doctests (source "records")."""
    return records_table(records, "records")


def load_stats(home: Path | str, **options: Any) -> FeedbackStats:
    """:func:`feedback_stats` of the whole log of ``home``."""
    return feedback_stats(read_log(home), **options)


# ------------------------------------------------------------------------------- re-ranking


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process and Python version (unlike
    ``hash()``, which is salted per process)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rerank(
    rows: Sequence[dict[str, Any]],
    stats: FeedbackStats,
    *,
    anchor_id: str,
    explore: float = 0.1,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """``rows`` (``related`` rows of one anchor: ``product_id``, ``kind``, ``score``) re-ranked by
    observed performance, best first (ties by product id). Thompson sampling (module docstring):
    ``feedback_score`` = a rate θ drawn from the pair's Beta posterior, its spread scaled by
    ``explore`` in [0, 1]. The posterior's prior mean is the kind's rate × the row's score / the
    mean score of the shown rows × the item's factor (how much better than the kind's rate the
    item sells for the *other* anchors it was shown for, smoothed with ``stats.item_strength``).
    ``seed`` makes the draw reproducible (default: from anchor and kind).

    Each returned row is a copy with ``feedback_score`` and ``feedback`` = {impressions,
    successes (of this pair), item_impressions, item_successes (other anchors), item_factor,
    rate (posterior mean), draw, metric} added; ``score`` stays the classifier's.
    """
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"explore must be between 0 and 1, got {explore!r}")
    if not rows:
        return []
    kinds = {r["kind"] for r in rows}
    out: list[dict[str, Any]] = []
    for kind in sorted(kinds):
        group = [r for r in rows if r["kind"] == kind]
        items = [r["product_id"] for r in group]
        n, s = stats.counts(anchor_id, items, kind)
        score = np.array([float(r["score"]) for r in group])
        # prior mean: the kind's rate, scaled by the row's score against the shown rows' mean score
        ref = float(score[n > 0].mean()) if (n > 0).any() else float(score.mean())
        p = stats.prior_rate(kind)
        q = np.clip(p * score / ref, 1e-6, None) if ref > 0 else np.full(score.size, p)
        # ... and by the item's factor: its smoothed rate over the other anchors / the kind's rate
        ni, si = stats.item_counts(items, kind)
        ni, si = np.maximum(ni - n, 0.0), np.maximum(si - s, 0.0)
        mi = stats.item_strength
        factor = (si + mi * p) / (ni + mi) / p if mi > 0 else np.ones(score.size)
        q = np.clip(q * factor, 1e-6, 1 - 1e-6)
        m = stats.prior_strength
        alpha, beta = m * q + s, m * (1.0 - q) + (n - s)
        mean = alpha / (alpha + beta)
        rng = np.random.default_rng(
            stable_hash(anchor_id, kind) if seed is None else [seed, stable_hash(anchor_id, kind)]
        )
        draw = rng.beta(alpha, beta)
        theta = np.clip(mean + explore * (draw - mean), 0.0, 1.0)
        for r, nj, sj, inj, isj, fj, mj, tj in zip(group, n, s, ni, si, factor, mean, theta, strict=True):
            out.append(
                {
                    **r,
                    "feedback_score": round(float(tj), 6),
                    "feedback": {
                        "metric": stats.metric,
                        "impressions": int(nj),
                        "successes": int(sj),
                        "item_impressions": int(inj),
                        "item_successes": int(isj),
                        "item_factor": round(float(fj), 6),
                        "rate": round(float(mj), 6),
                        "draw": round(float(tj), 6),
                    },
                }
            )
    out.sort(key=lambda r: (-r["feedback_score"], r["product_id"]))
    return out


# ------------------------------------------------------------------------------- A/B tests


def assign(
    user_id: str,
    experiment: str,
    variants: Sequence[str] = ("A", "B"),
    weights: Sequence[float] | None = None,
) -> str:
    """The variant of ``user_id`` in ``experiment``: a stable hash (SHA-256, not ``hash()``) of
    both mapped to [0, 1) and cut by ``weights`` (default equal). The same user always gets the
    same variant of one experiment, and independent ones across experiments.

    >>> assign("u-1", "exp") == assign("u-1", "exp")
    True
    >>> assign("u-1", "exp", variants=("only",))
    'only'
    """
    if not variants:
        raise ConfigError("assign needs at least one variant")
    w = np.ones(len(variants)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(variants),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(
            f"weights must be {len(variants)} non-negative numbers with a positive sum, got {weights!r}"
        )
    u = stable_hash("assign", experiment, user_id) / 2.0**64
    i = int(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right"))
    return variants[min(i, len(variants) - 1)]


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson's score interval of a proportion ``successes / n`` (None, None when n = 0).

    >>> [round(x, 4) for x in wilson(5, 10)]
    [0.2366, 0.7634]
    """
    if n <= 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def ratio_ci(y: np.ndarray, x: np.ndarray, z: float = Z95) -> dict[str, float | None]:
    """``sum(y) / sum(x)`` over independent units with its normal-approximation CI by the delta
    method: ``se² = Σ(y - r·x)² / (n - 1) / (n · mean(x)²)``. With ``x = 1`` this is the mean of
    ``y`` with ``sd / √n``. Returns {"value", "se", "low", "high"} (low clipped at 0; se, low,
    high None with fewer than 2 units; all None when sum(x) = 0).

    >>> ratio_ci(np.array([1.0, 3.0]), np.array([1.0, 1.0]))["se"]   # sd 1.414 / √2
    1.0
    """
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    sx = float(x.sum())
    if x.size == 0 or sx == 0:
        return {"value": None, "se": None, "low": None, "high": None}
    r = float(y.sum()) / sx
    n = x.size
    if n < 2:
        return {"value": r, "se": None, "low": None, "high": None}
    d = y - r * x
    se = math.sqrt(float((d * d).sum()) / (n - 1) / (n * (sx / n) ** 2))
    return {"value": r, "se": se, "low": max(0.0, r - z * se), "high": r + z * se}


def lift_ci(
    b: dict[str, float | None], a: dict[str, float | None], z: float = Z95
) -> dict[str, float | None]:
    """Lift ``b / a - 1`` of two independent estimates ({"value", "se"}) with a CI by the delta
    method on ``log(b / a)``: ``se² = (se_b / b)² + (se_a / a)²``. None where undefined."""
    va, vb, sa, sb = a.get("value"), b.get("value"), a.get("se"), b.get("se")
    if not va or vb is None:
        return {"value": None, "low": None, "high": None}
    lift = vb / va - 1.0
    if not vb or sa is None or sb is None:
        return {"value": lift, "low": None, "high": None}
    se = math.sqrt((sb / vb) ** 2 + (sa / va) ** 2)
    ratio = vb / va
    return {"value": lift, "low": ratio * math.exp(-z * se) - 1.0, "high": ratio * math.exp(z * se) - 1.0}


_USERS_SQL = """
SELECT variant, user_id,
       count(*) FILTER (WHERE event = 'impression') AS impressions,
       count(*) FILTER (WHERE event = 'click') AS clicks,
       count(*) FILTER (WHERE event = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE event = 'purchase') AS purchases
FROM ev GROUP BY ALL HAVING count(*) FILTER (WHERE event = 'impression') > 0
ORDER BY variant, user_id
"""
# One row per order of an impression-user with a valued purchase: the order amount once.
_ORDERS_SQL = """
SELECT variant, order_key, max(value) AS value FROM (
    SELECT ev.variant, coalesce('order:' || ev.order_id, 'event:' || row_number() OVER ()) AS order_key, ev.value
    FROM ev SEMI JOIN users u ON u.variant = ev.variant AND u.user_id = ev.user_id
    WHERE ev.event = 'purchase' AND ev.value IS NOT NULL
) GROUP BY ALL ORDER BY 1, 2
"""


def ab_report(
    events: pa.Table, *, experiment: str | None = None, control: str | None = None
) -> dict[str, Any]:
    """Compare the variants of ``experiment`` (None: the only experiment in ``events``; events
    without an experiment when there is none). Per variant: users with an impression, event
    counts, CTR and conversion per impression, **add-on rate** = purchases of recommended items
    per impression-user, and **AOV** = mean amount of the orders holding such a purchase (each
    order once); each with a 95 % CI (module docstring). ``lift``: every other variant against
    ``control`` (default: the first variant by name) for add-on rate, conversion and AOV.
    Purchases by users without an impression in that variant are not attributed to it.
    """
    import duckdb
    import pyarrow.compute as pc

    exps = sorted({e for e in events.column("experiment").to_pylist() if e is not None})
    if experiment is None:
        if len(exps) > 1:
            raise ConfigError(
                f"several experiments in the log, name one with --experiment: {', '.join(exps)}"
            )
        experiment = exps[0] if exps else None
    elif experiment not in exps:
        raise ConfigError(f"no events of experiment {experiment!r}; experiments: {', '.join(exps) or 'none'}")
    exp_col = events.column("experiment")
    mask = pc.is_null(exp_col) if experiment is None else pc.equal(exp_col, experiment)
    ev = events.filter(pc.and_(pc.fill_null(mask, False), pc.is_valid(events.column("variant"))))
    con = duckdb.connect()
    try:
        con.register("ev", ev)
        users = con.sql(_USERS_SQL).to_arrow_table()
        con.register("users", users)
        orders = con.sql(_ORDERS_SQL).to_arrow_table()
        multi = con.execute(
            "SELECT count(*) FROM (SELECT user_id FROM users GROUP BY user_id HAVING count(*) > 1)"
        ).fetchall()[0][0]
    finally:
        con.close()
    variants = sorted(set(users.column("variant").to_pylist()))
    if not variants:
        raise ConfigError(f"no impressions with a variant for experiment {experiment!r}: nothing to compare")
    if control is None:
        control = variants[0]
    elif control not in variants:
        raise ConfigError(f"control variant {control!r} has no impressions; variants: {', '.join(variants)}")
    u = {c: users.column(c).to_numpy() for c in ("impressions", "clicks", "add_to_carts", "purchases")}
    uv = np.asarray(users.column("variant").to_pylist(), dtype=object)
    ov = np.asarray(orders.column("variant").to_pylist(), dtype=object)
    oval = orders.column("value").to_numpy()
    rows: dict[str, dict[str, Any]] = {}
    for v in variants:
        sel, osel = uv == v, ov == v
        imp, pur, clk = u["impressions"][sel], u["purchases"][sel], u["clicks"][sel]
        rows[v] = {
            "variant": v,
            "users": int(sel.sum()),
            "impressions": int(imp.sum()),
            "clicks": int(clk.sum()),
            "add_to_carts": int(u["add_to_carts"][sel].sum()),
            "purchases": int(pur.sum()),
            "orders": int(osel.sum()),
            "ctr": ratio_ci(clk, imp),
            "conversion": ratio_ci(pur, imp),
            "add_on_rate": ratio_ci(pur, np.ones(imp.size)),
            "aov": ratio_ci(oval[osel], np.ones(int(osel.sum()))),
        }
    lifts = [
        {"variant": v, "vs": control, "metric": metric, **lift_ci(rows[v][metric], rows[control][metric])}
        for v in variants
        if v != control
        for metric in ("add_on_rate", "conversion", "aov")
    ]
    return {
        "experiment": experiment,
        "control": control,
        "ci": "95% normal approximation; ratios by the delta method over users; lift by the delta method on log(ratio)",
        "users_in_several_variants": int(multi),
        "variants": [rows[v] for v in variants],
        "lift": lifts,
    }


def write_report(report: dict[str, Any], out: Path | str) -> dict[str, Path]:
    """Write ``report`` (:func:`ab_report`) into ``out``: ``report.json``, ``report.png`` (add-on
    rate and AOV per variant with CI bars; matplotlib, Agg) and ``report.html`` (self-contained:
    the chart embedded, tables of variants and lifts). Returns {"json", "png", "html"} paths."""
    import base64
    import html
    import json

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from tiein.errors import MissingDependency

        raise MissingDependency("matplotlib", "report") from exc
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "png": out / "report.png", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    variants = report["variants"]
    names = [v["variant"] for v in variants]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
    for ax, metric, title in zip(
        axes, ("add_on_rate", "aov"), ("add-on rate (purchases per user)", "average order value"), strict=True
    ):
        vals = [v[metric]["value"] or 0.0 for v in variants]
        lo = [
            max(0.0, val - (v[metric]["low"] if v[metric]["low"] is not None else val))
            for val, v in zip(vals, variants, strict=True)
        ]
        hi = [
            (v[metric]["high"] if v[metric]["high"] is not None else val) - val
            for val, v in zip(vals, variants, strict=True)
        ]
        ax.bar(
            names,
            vals,
            yerr=[lo, hi],
            capsize=6,
            color=["#4C72B0", "#DD8452", "#55A868", "#C44E52"][: len(names)],
        )
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"experiment {report['experiment'] or '(none)'} — 95% CI", fontsize=11)
    fig.tight_layout()
    fig.savefig(paths["png"])
    plt.close(fig)

    def fmt(x: float | None, pct: bool = False) -> str:
        if x is None:
            return "–"
        return f"{x * 100:+.1f}%" if pct else f"{x:,.4g}"

    def ci(m: dict[str, Any]) -> str:
        return f"{fmt(m['value'])} [{fmt(m['low'])}, {fmt(m['high'])}]"

    head = "<tr><th>variant</th><th>users</th><th>impressions</th><th>clicks</th><th>purchases</th><th>orders</th><th>conversion</th><th>add-on rate</th><th>AOV</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(v['variant']))}</td><td>{v['users']:,}</td><td>{v['impressions']:,}</td><td>{v['clicks']:,}</td>"
        f"<td>{v['purchases']:,}</td><td>{v['orders']:,}</td><td>{ci(v['conversion'])}</td><td>{ci(v['add_on_rate'])}</td><td>{ci(v['aov'])}</td></tr>"
        for v in variants
    )
    lifts = "".join(
        f"<tr><td>{html.escape(str(x['variant']))} vs {html.escape(str(x['vs']))}</td><td>{x['metric']}</td>"
        f"<td>{fmt(x['value'], True)} [{fmt(x['low'], True)}, {fmt(x['high'], True)}]</td></tr>"
        for x in report["lift"]
    )
    png = base64.b64encode(paths["png"].read_bytes()).decode("ascii")
    title = html.escape(f"A/B report: {report['experiment'] or '(no experiment)'}")
    paths["html"].write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>{title}</h1><p>control: {html.escape(str(report["control"]))}. {html.escape(report["ci"])}.</p>
<img alt="add-on rate and AOV per variant" src="data:image/png;base64,{png}">
<table>{head}{body}</table><h2>lift</h2><table><tr><th>variants</th><th>metric</th><th>lift [95% CI]</th></tr>{lifts}</table>
</body></html>""",
        encoding="utf-8",
    )
    return paths

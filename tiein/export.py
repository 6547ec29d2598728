"""Batch export of every product's bundle or related products: CSV, JSON lines or Parquet.

    tiein export bundles --format parquet --out bundles.parquet
    tiein export related --format csv --out related.csv --kind complement --kind substitute -k 10

One code path. Every anchor's answer comes from :func:`tiein.service.bundle_payload` /
:func:`tiein.service.related_payload` — the functions behind ``tiein bundle``, ``tiein related``
and the HTTP API — run on a :class:`tiein.graph.snapshot.SnapshotStore` (the whole graph read once, in
bulk, then answered from memory), so an export and the API never disagree.

Order. Anchors by ``product_id`` (string order); with ``scene``, only the scene's members. For
``related``, each anchor's kinds in the order asked, each kind's rows in the store's order.

Files.

- **jsonl**: one line per anchor (bundles: the bundle payload; related: one line per anchor and
  kind, the related payload), nested exactly as the API answers, UTF-8.
- **csv** / **parquet**: flat, one row per bundle item / related item, the anchor's fields
  repeated on each row, ``evidence`` (and other nested values) as a JSON string; the columns are
  :func:`columns` (documented in README.md "Batch export"). A bundle with no items is one row whose
  ``item_*`` columns are empty and whose ``reason_*`` columns say why; an anchor with no related
  items has no row. CSV is UTF-8 with a header row, Parquet has typed columns.
- Formula cells. A spreadsheet runs a CSV cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return as a formula (``=HYPERLINK(...)``, ``+cmd|...``): in CSV, such a *text*
  cell gets a leading ``'`` (OWASP's rule; :func:`escape_formula`), numbers stay numbers
  (``-3.5`` in a numeric column is untouched). ``formula_escape=False`` (``--no-formula-escape``)
  writes the text as it is.

Atomic and resumable. The work is cut into chunks of ``chunk_size`` anchors. Each finished chunk
is written to ``PATH.parts/part-NNNNNN.*`` (temp file + ``os.replace``) next to a
``manifest.json`` naming the export (options, anchors, a fingerprint of the graph). A rerun of the
same export skips the chunks already there; a different export or a rebuilt graph starts over.
When every chunk is there, the parts are joined into a temp file in PATH's directory, which is
then ``os.replace``-d onto PATH (atomic: PATH is either the previous file, or absent, or the
complete new one) and the parts are removed. The result is byte for byte that of an
uninterrupted run (tests/test_export.py interrupts one and checks).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.graph.base import PRODUCT_FIELDS
from tiein.model import PRODUCTS, RELATION_KINDS, check_kind

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore, Progress

WHATS = ("bundles", "related")
FORMATS = ("csv", "jsonl", "parquet")
DEFAULT_CHUNK_SIZE = 500
MANIFEST = "manifest.json"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^[=+\-@\t\r]"


def escape_formula(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading ``'``; anything else
    (numbers included) as it is.

    >>> escape_formula("=1+2"), escape_formula("@SUM(A1)"), escape_formula(-3.5), escape_formula("tent")
    ("'=1+2", "'@SUM(A1)", -3.5, 'tent')
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def escape_formula_table(table: pa.Table) -> pa.Table:
    """:func:`escape_formula` on every text column of ``table`` (vectorised)."""
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            col = table.column(i)
            quoted = pc.binary_join_element_wise(pa.scalar("'", f.type), col, pa.scalar("", f.type))
            escaped = pc.if_else(pc.match_substring_regex(col, _FORMULA_RE), quoted, col)
            table = table.set_column(i, f, escaped)
    return table


MANIFEST_VERSION = 1

_PRODUCT_TYPES = {f: PRODUCTS.field(f).type for f in PRODUCT_FIELDS}


def _product_fields(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}{f}", _PRODUCT_TYPES[f]) for f in PRODUCT_FIELDS]


def columns(what: str) -> pa.Schema:
    """The flat columns (CSV / Parquet) of an export of ``what``, in order."""
    s, f, i = pa.string(), pa.float64(), pa.int64()
    if what == "related":
        return pa.schema(
            [
                *_product_fields("anchor_"),
                ("kind", s),
                ("rank", i),
                *_product_fields(""),
                ("score", f),
                ("n_ab", i),
                ("lift", f),
                ("confidence", f),
                ("co_view", i),
                ("similarity", f),
                ("category_relation", s),
                ("price_ratio", f),
                ("evidence", s),
                ("explanation_zh", s),
                ("explanation_en", s),
            ]
        )
    if what == "bundles":
        return pa.schema(
            [
                *_product_fields("anchor_"),
                ("scene_id", s),
                ("scene_name", s),
                ("items", i),
                ("total", f),
                ("suggested_price", f),
                ("saving", f),
                ("discount", f),
                ("budget", f),
                ("pitch_zh", s),
                ("pitch_en", s),
                ("reason_code", s),
                ("reason_zh", s),
                ("reason_en", s),
                ("skipped", s),
                ("skipped_roles", s),
                ("mix", s),
                ("priced", pa.bool_()),
                ("item_rank", i),
                *_product_fields("item_"),
                ("item_role", s),
                ("item_relation", s),
                ("item_score", f),
                ("item_evidence", s),
                ("item_explanation_zh", s),
                ("item_explanation_en", s),
            ]
        )
    raise ConfigError(f"unknown export {what!r}; choose one of: {', '.join(WHATS)}")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _prefixed(product: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {f"{prefix}{f}": product.get(f) for f in PRODUCT_FIELDS}


def related_rows(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (:func:`columns` ``"related"``) of one related payload."""
    anchor = _prefixed(payload["product"], "anchor_")
    for rank, r in enumerate(payload["related"], 1):
        yield {
            **anchor,
            "kind": payload["kind"],
            "rank": rank,
            **_prefixed(r, ""),
            "score": r["score"],
            "n_ab": r["n_ab"],
            "lift": r["lift"],
            "confidence": r["confidence"],
            "co_view": r["co_view"],
            "similarity": r["similarity"],
            "category_relation": r["category_relation"],
            "price_ratio": r["price_ratio"],
            "evidence": _json(r["evidence"]),
            "explanation_zh": r["explanation_zh"],
            "explanation_en": r["explanation_en"],
        }


def bundle_rows(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (:func:`columns` ``"bundles"``) of one bundle payload: one per item, or one
    with empty item columns when there is no bundle."""
    scene = payload.get("scene") or {}
    reason = payload.get("reason") or {}
    pitch = payload.get("pitch") or {}
    head = {
        **_prefixed(payload["anchor"], "anchor_"),
        "scene_id": scene.get("scene_id"),
        "scene_name": scene.get("name"),
        "items": len(payload["items"]),
        "total": payload.get("total"),
        "suggested_price": payload.get("suggested_price"),
        "saving": payload.get("saving"),
        "discount": payload.get("discount"),
        "budget": payload.get("budget"),
        "pitch_zh": pitch.get("zh"),
        "pitch_en": pitch.get("en"),
        "reason_code": reason.get("code"),
        "reason_zh": reason.get("zh"),
        "reason_en": reason.get("en"),
        "skipped": _json(payload.get("skipped")),
        "skipped_roles": _json(payload.get("skipped_roles")),
        "mix": _json(payload.get("mix")),
        "priced": payload.get("priced"),
    }
    if not payload["items"]:
        yield head
        return
    for rank, item in enumerate(payload["items"], 1):
        expl = item.get("explanation") or {}
        yield {
            **head,
            "item_rank": rank,
            **_prefixed(item["product"], "item_"),
            "item_role": item.get("role"),
            "item_relation": item.get("relation"),
            "item_score": item.get("score"),
            "item_evidence": _json(item.get("evidence")),
            "item_explanation_zh": expl.get("zh"),
            "item_explanation_en": expl.get("en"),
        }


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table of ``schema`` (missing keys are null), built column by column."""
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema
    )


# ----------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    """What :func:`export` did: ``rows`` written (flat rows, or JSON lines), ``chunks`` in all
    and ``chunks_reused`` from an interrupted earlier run, ``restarted`` when parts of another
    export were discarded, and timings in seconds."""

    path: Path
    what: str
    format: str
    anchors: int
    rows: int
    chunks: int
    chunks_reused: int = 0
    restarted: bool = False
    snapshot_s: float = 0.0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def _check(what: str, fmt: str, kinds: Sequence[str] | None, chunk_size: int) -> tuple[str, ...]:
    if what not in WHATS:
        raise ConfigError(f"unknown export {what!r}; choose one of: {', '.join(WHATS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if kinds is None or isinstance(kinds, str):
        kinds = ("complement",) if kinds is None else (kinds,)
    kinds = tuple(dict.fromkeys(kinds))
    if not kinds:
        raise ConfigError(f"give at least one relation kind; valid kinds: {', '.join(RELATION_KINDS)}")
    return tuple(check_kind(k) for k in kinds)


def _anchors(store: Any, scene: str | None) -> list[str]:
    if scene is None:
        ids: list[str] = store.product_ids()
        return ids
    detail = store.scene(scene)
    return sorted({p["product_id"] for role in detail["roles"] for p in role["products"]})


def _fingerprint(store: Any, anchors: list[str]) -> dict[str, Any]:
    stats = json.dumps(store.stats(), sort_keys=True, default=str, ensure_ascii=False)
    ids = hashlib.sha256("\n".join(anchors).encode("utf-8")).hexdigest()
    return {
        "graph": hashlib.sha256(stats.encode("utf-8")).hexdigest(),
        "anchors": len(anchors),
        "anchor_ids": ids,
    }


def export(
    store: GraphStore,
    what: str,
    out: Path | str,
    *,
    fmt: str,
    kinds: Sequence[str] | str | None = None,
    k: int = 10,
    size: int = 3,
    scene: str | None = None,
    budget: float | None = None,
    mix: Sequence[str] | str | None = None,
    discount: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    bom: bool = False,
    formula_escape: bool = True,
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``what`` ("bundles" or "related") of every anchor product to ``out`` in ``fmt``
    ("csv", "jsonl", "parquet"); see the module docstring for order, columns, atomicity and
    resuming. ``kinds`` / ``k`` are for related, ``size`` / ``scene`` / ``budget`` / ``mix`` /
    ``discount`` for bundles (``scene`` also limits the anchors to the scene's members, for
    both). ``bom``: csv only, start the file with a UTF-8 byte-order mark (Excel then reads
    Chinese titles right). ``formula_escape``: csv only, a text cell starting with = + - @ tab or
    CR gets a leading ``'`` (on by default; see the module doc). ``store`` is any graph store; it is read through a :class:`tiein.graph.snapshot.SnapshotStore`
    (one already given is used as it is). ``progress(step, done, total)`` gets anchors done.

    Raises ConfigError for bad options (before anything is written), NotFound for an unknown
    scene; any failure leaves ``out`` as it was (absent, or the previous file)."""
    from tiein.graph.snapshot import SnapshotStore
    from tiein.service import bundle_payload, related_payload

    kinds = _check(what, fmt, kinds, chunk_size)
    if bom and fmt != "csv":
        raise ConfigError(f"a byte-order mark is for csv only, not {fmt}")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file path")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the directory {out.parent} does not exist")
    started = time.perf_counter()
    snap = store if isinstance(store, SnapshotStore) else SnapshotStore(store, follow=False)
    snapshot_s = time.perf_counter() - started
    anchors = _anchors(snap, scene)
    options = {"what": what, "format": fmt, "chunk_size": chunk_size, "scene": scene}
    if what == "related":
        options |= {"kinds": list(kinds), "k": k}

        def payloads(pid: str) -> list[dict[str, Any]]:
            return [related_payload(snap, pid, kind, k) for kind in kinds]

        to_rows: Callable[[dict[str, Any]], Iterator[dict[str, Any]]] = related_rows
    else:
        mix_list = mix.split("+") if isinstance(mix, str) else (list(mix) if mix is not None else None)
        options |= {"size": size, "budget": budget, "mix": mix_list, "discount": discount}

        def payloads(pid: str) -> list[dict[str, Any]]:
            return [
                bundle_payload(snap, pid, scene=scene, size=size, budget=budget, mix=mix, discount=discount)
            ]

        to_rows = bundle_rows
    if anchors:
        payloads(anchors[0])  # bad options fail here, before anything is written

    schema = columns(what)
    manifest = {
        "version": MANIFEST_VERSION,
        "options": options,
        **_fingerprint(snap, anchors),
        "columns": schema.names,
    }
    parts = out.with_name(out.name + ".parts")
    ext = "jsonl" if fmt == "jsonl" else "arrow"
    n_chunks = (len(anchors) + chunk_size - 1) // chunk_size
    result = ExportResult(
        out, what, fmt, len(anchors), 0, n_chunks, snapshot_s=round(snapshot_s, 3), options=options
    )
    with _parts_dir(parts, manifest) as restarted:
        result.restarted = restarted
        done = 0
        if progress:
            progress("export", 0, len(anchors))
        for c in range(n_chunks):
            chunk = anchors[c * chunk_size : (c + 1) * chunk_size]
            part = parts / f"part-{c:06d}.{ext}"
            if part.exists():
                result.chunks_reused += 1
            else:
                answers = [p for pid in chunk for p in payloads(pid)]
                if fmt == "jsonl":
                    text = "".join(json.dumps(a, ensure_ascii=False, sort_keys=True) + "\n" for a in answers)
                    _atomic_write(part, text.encode("utf-8"))
                else:
                    table = _table([row for a in answers for row in to_rows(a)], schema)
                    _atomic_write_arrow(part, table)
            done += len(chunk)
            if progress:
                progress("export", done, len(anchors))
        result.rows = _assemble(
            parts, out, fmt, schema, n_chunks, ext, bom=bom, formula_escape=formula_escape
        )
    shutil.rmtree(parts, ignore_errors=True)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@contextmanager
def _parts_dir(parts: Path, manifest: dict[str, Any]) -> Iterator[bool]:
    """The parts directory for ``manifest`` (yields True when parts of another export were
    discarded), locked against a second export to the same path."""
    parts.mkdir(exist_ok=True)
    fd = os.open(parts / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows: one export at a time is assumed
            pass
        except OSError as exc:
            raise ConfigError(f"another export to {parts.with_suffix('')} is running") from exc
        path = parts / MANIFEST
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        restarted = False
        if old != json.loads(json.dumps(manifest)):
            stale = [p for p in parts.iterdir() if p.name.startswith("part-")]
            restarted = bool(stale)
            for p in stale:
                p.unlink()
            _atomic_write(path, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
        yield restarted
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_arrow(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def _assemble(
    parts: Path,
    out: Path,
    fmt: str,
    schema: pa.Schema,
    n_chunks: int,
    ext: str,
    *,
    bom: bool = False,
    formula_escape: bool = True,
) -> int:
    """Join the parts into a temp file beside ``out`` and move it onto ``out``; rows written."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    rows = 0
    names = [parts / f"part-{c:06d}.{ext}" for c in range(n_chunks)]
    try:
        if fmt == "jsonl":
            with open(tmp, "wb") as f:
                for name in names:
                    data = name.read_bytes()
                    rows += data.count(b"\n")
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            with open(tmp, "wb") as f:
                if bom:
                    f.write(b"\xef\xbb\xbf")
                with pcsv.CSVWriter(f, schema) as writer:
                    for name in names:
                        table = _read_arrow(name)
                        rows += table.num_rows
                        writer.write_table(escape_formula_table(table) if formula_escape else table)
                f.flush()
                os.fsync(f.fileno())
        else:
            import pyarrow.parquet as pq

            with pq.ParquetWriter(str(tmp), schema, compression="zstd") as pwriter:
                for name in names:
                    table = _read_arrow(name)
                    rows += table.num_rows
                    if table.num_rows:
                        pwriter.write_table(table)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return rows

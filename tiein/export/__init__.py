"""Batch export of every product's bundle or related products: CSV, JSON lines, Parquet or XLSX.

    tiein export bundles --format parquet --out bundles.parquet
    tiein export related --format csv --out related.csv --kind complement --kind substitute -k 10
    tiein export bundles --format xlsx --layout bundle --out 套餐.xlsx

One code path. Every anchor's answer comes from :func:`tiein.service.bundle_payload` /
:func:`tiein.service.related_payload` — the functions behind ``tiein bundle``, ``tiein related``
and the HTTP API — run on a :class:`tiein.graph.snapshot.SnapshotStore` (the whole graph read once, in
bulk, then answered from memory), so an export and the API never disagree.

Order. Anchors by ``product_id`` (string order); with ``scene``, only the scene's members. For
``related``, each anchor's kinds in the order asked, each kind's rows in the store's order.

Files.

- **jsonl**: one line per anchor (bundles: the bundle payload; related: one line per anchor and
  kind, the related payload), nested exactly as the API answers, UTF-8.
- **csv** / **parquet** / **xlsx**: flat, one row per bundle item / related item, the anchor's
  fields repeated on each row, ``evidence`` (and other nested values) as a JSON string; the
  columns are :func:`columns` (documented in README.md "Batch export"). A bundle with no items is
  one row whose ``item_*`` columns are empty and whose ``reason_*`` columns say why; an anchor with
  no related items has no row. CSV is UTF-8 with a header row, Parquet has typed columns.
- **xlsx** (Excel): one sheet, a frozen header row in both languages (``主商品ID / anchor_product_id``;
  ``headers="en"`` for the plain names, which csv keeps by default and may switch with
  ``headers="zh-en"``), ids and other text stored as text (``123456789012`` never turns into
  ``1.23457E+11``, ``00123`` keeps its zeros), numbers as numbers; a text cell is never a formula.
  The file's bytes depend only on its content (fixed timestamps), so resuming gives the same file.
- **layout** ``"bundle"`` (bundles; csv, parquet, xlsx): one row per bundle instead of one per item,
  the items side by side (``item1_product_id``, ``item1_title``, ... ``item2_...``; ``size - 1``
  item slots; :data:`~tiein.export.rows.WIDE_ITEM_FIELDS`), ready for a merchandiser without a
  pivot table.
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

Modules: this one (:func:`export`), :mod:`~tiein.export.rows` (the flat columns and rows, formula
escaping), :mod:`~tiein.export.files` (parts, manifest, atomic writes, the final join).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiein.bundles import BundleRules
from tiein.errors import ConfigError
from tiein.export.files import MANIFEST, _read_arrow, assemble, atomic_write, atomic_write_arrow, parts_dir
from tiein.export.rows import (
    FORMULA_START,
    HEADERS,
    LAYOUTS,
    WHATS,
    bundle_rows,
    bundle_wide_rows,
    columns,
    escape_formula,
    escape_formula_table,
    header,
    related_rows,
    rows_table,
)
from tiein.graph.snapshot import SnapshotStore
from tiein.model import RELATION_KINDS, QueryContext, check_k, check_kind, parse_mix
from tiein.rules import Filters
from tiein.service import (
    BundlePayload,
    RelatedPayload,
    bundle_payload,
    check_discount,
    related_payload,
    scene_payload,
)

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore, Progress

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "FORMULA_START",
    "HEADERS",
    "LAYOUTS",
    "MANIFEST",
    "WHATS",
    "ExportResult",
    "bundle_rows",
    "bundle_wide_rows",
    "columns",
    "escape_formula",
    "escape_formula_table",
    "export",
    "header",
    "related_rows",
]

FORMATS = ("csv", "jsonl", "parquet", "xlsx")
DEFAULT_CHUNK_SIZE = 500
MANIFEST_VERSION = 1


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
    # bundles: anchors without a bundle, by reason code (tiein.bundles.REASONS)
    no_bundle: dict[str, int] = field(default_factory=dict)
    snapshot_s: float = 0.0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def _count_reasons(counts: dict[str, int], codes: Iterable[str | None]) -> None:
    for code in codes:
        if code:
            counts[code] = counts.get(code, 0) + 1


def _reason_code(answer: Mapping[str, Any]) -> str | None:
    reason = answer.get("reason")
    return reason.get("code") if isinstance(reason, Mapping) else None


def _part_reasons(part: Path, ext: str) -> list[str | None]:
    """The reason code of every anchor of a finished chunk (a resumed export counts them too)."""
    if ext == "jsonl":
        lines = part.read_text(encoding="utf-8").splitlines()
        return [(json.loads(line).get("reason") or {}).get("code") for line in lines if line]
    table = _read_arrow(part)
    if "reason_code" not in table.column_names:
        return []
    seen: dict[str, str | None] = {}
    for pid, code in zip(
        table.column("anchor_product_id").to_pylist(), table.column("reason_code").to_pylist(), strict=True
    ):
        seen.setdefault(pid, code)
    return list(seen.values())


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
    detail = scene_payload(store, scene)
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
    size: int | None = None,
    scene: str | None = None,
    budget: float | None = None,
    mix: Sequence[str] | str | None = None,
    discount: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    bom: bool = False,
    formula_escape: bool = True,
    layout: str = "item",
    headers: str | None = None,
    filters: Filters | None = None,
    rules: BundleRules | None = None,
    progress: Progress | None = None,
    context: QueryContext | None = None,
) -> ExportResult:
    """Export ``what`` ("bundles" or "related") of every anchor product to ``out`` in ``fmt``
    ("csv", "jsonl", "parquet", "xlsx"); see the module docstring for order, columns, atomicity and
    resuming. ``kinds`` / ``k`` are for related, ``size`` / ``scene`` / ``budget`` / ``mix`` /
    ``discount`` for bundles (``scene`` also limits the anchors to the scene's members, for
    both). ``bom``: csv only, start the file with a UTF-8 byte-order mark (Excel then reads
    Chinese titles right). ``formula_escape``: csv only, a text cell starting with = + - @ tab or
    CR gets a leading ``'`` (on by default; see the module doc). ``layout``: "item" (one row per
    item) or "bundle" (bundles: one row per bundle, items side by side). ``headers``: "en" (the
    column names) or "zh-en" (中文 / English) for csv and xlsx (default: "zh-en" for xlsx, "en"
    otherwise). ``filters`` (:class:`tiein.rules.Filters`, no offset): the list filters of the API
    (in stock, exclude, category, brand, price range, minimum score) on every anchor's related
    items or bundle items; merchant rules (pins, blocks) apply as everywhere. ``rules``: the bundle
    rules (default :class:`tiein.bundles.BundleRules`; the CLI passes the shop's,
    :func:`tiein.service.shop_bundle_rules`); ``size`` defaults to ``rules.size``. ``store`` is any graph store; it is read through a :class:`tiein.graph.snapshot.SnapshotStore`
    (one already given is used as it is). ``progress(step, done, total)`` gets anchors done.
    ``context`` (:class:`tiein.model.QueryContext`): rank every answer for its date (``at``), as
    the API's ``at=`` does; None: the year-round answers.

    Raises ConfigError for bad options (before anything is written), NotFound for an unknown
    scene; any failure leaves ``out`` as it was (absent, or the previous file)."""

    kinds = _check(what, fmt, kinds, chunk_size)
    rules = rules or BundleRules()
    size = rules.size if size is None else size
    if what == "related":
        check_k(k)
    if bom and fmt != "csv":
        raise ConfigError(f"a byte-order mark is for csv only, not {fmt}")
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if layout == "bundle" and (what != "bundles" or fmt == "jsonl"):
        raise ConfigError(
            "layout 'bundle' (one row per bundle) is for a csv, parquet or xlsx export of bundles"
            + ("; jsonl is one line per bundle already" if fmt == "jsonl" else "")
        )
    if headers is None:
        headers = "zh-en" if fmt == "xlsx" else "en"
    if headers not in HEADERS:
        raise ConfigError(f"unknown headers {headers!r}; choose one of: {', '.join(HEADERS)}")
    if headers != "en" and fmt not in ("csv", "xlsx"):
        raise ConfigError(f"bilingual headers are for csv and xlsx, not {fmt}")
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
    if filters is not None and filters.offset:
        raise ConfigError("an export takes no offset: it writes every anchor's whole list")
    if filters is not None and filters.narrows:
        options["filters"] = filters.to_dict()
    if layout != "item":
        options["layout"] = layout
    if context is not None and context.at is not None:  # a resume never mixes two dates
        options["at"] = context.at.isoformat()
    if context is not None and context.segment is not None:  # … nor two segments
        options["segment"] = context.segment
    payloads: Callable[[str], Sequence[Mapping[str, Any]]]
    if what == "related":
        options |= {"kinds": list(kinds), "k": k}

        def payloads(pid: str) -> list[RelatedPayload]:
            return [related_payload(snap, pid, kind, k, filters=filters, context=context) for kind in kinds]

        to_rows: Callable[[Mapping[str, Any]], Iterator[dict[str, Any]]] = related_rows
    else:
        roles = parse_mix(mix)
        discount = check_discount(discount)
        options |= {"size": size, "budget": budget, "mix": roles, "discount": discount}
        options["rules"] = {k: v for k, v in dataclasses.asdict(rules).items() if k != "size"}

        def payloads(pid: str) -> list[BundlePayload]:
            return [
                bundle_payload(
                    snap,
                    pid,
                    scene=scene,
                    size=size,
                    budget=budget,
                    mix=roles,
                    discount=discount,
                    filters=filters,
                    rules=rules,
                    context=context,
                )
            ]

        to_rows = bundle_wide_rows if layout == "bundle" else bundle_rows
    if anchors:
        payloads(anchors[0])  # bad options fail here, before anything is written

    schema = columns(what, layout, slots=size - 1)
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
    with parts_dir(parts, manifest) as restarted:
        result.restarted = restarted
        done = 0
        if progress:
            progress("export", 0, len(anchors))
        for c in range(n_chunks):
            chunk = anchors[c * chunk_size : (c + 1) * chunk_size]
            part = parts / f"part-{c:06d}.{ext}"
            if part.exists():
                result.chunks_reused += 1
                if what == "bundles":
                    _count_reasons(result.no_bundle, _part_reasons(part, ext))
            else:
                answers = [p for pid in chunk for p in payloads(pid)]
                if what == "bundles":
                    _count_reasons(result.no_bundle, [_reason_code(a) for a in answers])
                if fmt == "jsonl":
                    text = "".join(json.dumps(a, ensure_ascii=False, sort_keys=True) + "\n" for a in answers)
                    atomic_write(part, text.encode("utf-8"))
                else:
                    table = rows_table([row for a in answers for row in to_rows(a)], schema)
                    atomic_write_arrow(part, table)
            done += len(chunk)
            if progress:
                progress("export", done, len(anchors))
        result.rows = assemble(
            parts,
            out,
            fmt,
            schema,
            n_chunks,
            ext,
            bom=bom,
            formula_escape=formula_escape,
            headers=headers,
            what=what,
        )
    shutil.rmtree(parts, ignore_errors=True)
    result.seconds = round(time.perf_counter() - started, 3)
    return result

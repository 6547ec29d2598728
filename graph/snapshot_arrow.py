"""The graph of a :class:`tiein.graph.snapshot.SnapshotStore` as Arrow tables, and the files that
let every process of a server share one copy of it.

Tables (one graph)::

    products    PRODUCT_FIELDS as the store returns them, sorted by product_id (Arrow's byte order,
                which is Python's str order); product ``i`` is row ``i``
    rel_<kind>  dst (int32: the related product's row) + REL_PROPS (fixed types), sorted by (src,
                score desc, dst): the store's ``related`` order
    offsets     one int64 column per kind, n_products + 1 rows: product ``i``'s related list of
                that kind is rows ``offsets[i]:offsets[i + 1]`` of rel_<kind>
    scenes      scene_id, name, source
    members     product (int32 row), scene_id, role, weight, sorted by (scene_id, product)

plus ``stats`` (the store's ``stats()``). Answers read single values straight from the columns'
buffers (:class:`RowCode`: a memoryview index, no per-row Python objects kept), so a graph costs a
process only its small indexes (product id -> row, the scenes) besides the tables themselves.

Files. For the embedded store each generation directory gets the tables once, as uncompressed
Arrow IPC files in ``gen-*/snapshot-v1.<generation>/`` (``<table>.arrow`` and ``stats.json``),
written by the first process that needs them under ``gen-*/.snapshot.lock`` into a temporary
directory that is renamed in whole (a crash leaves only a ``.tmp`` directory, never a half
snapshot; a lost race leaves the winner's identical files). Every process opens them with
``pyarrow.memory_map``: the columns are the page cache's pages, shared by all the workers of
``tiein serve --workers N`` instead of copied per worker, and a generation switch opens the new
files beside the old ones. The directory name carries the generation because ``apply`` copies the
whole generation directory into the next one: a copied snapshot is never mistaken for the new
generation's (it is removed when the new one is written). A generation is never changed once
written, so its files never go stale; they are deleted with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import struct
import time
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.durable import fsync_dir
from tiein.errors import StoreError
from tiein.graph.base import PRODUCT_FIELDS, RELATED_FIELDS, scene_list
from tiein.graph.build import _take
from tiein.model import REL_TYPE

log = logging.getLogger("tiein.snapshot")

FORMAT = "tiein-snapshot-1"
DIR_PREFIX = "snapshot-v1."  # + the generation's name
LOCK_FILE = ".snapshot.lock"
STATS_FILE = "stats.json"
LOCK_WAIT_S = 300.0  # longest wait for another process writing the files; then read without them

# The relation properties read per kind, in RELATED_FIELDS order ("kind" is the kind itself).
REL_PROPS = tuple(f for f in RELATED_FIELDS if f != "kind")
KINDS = tuple(REL_TYPE)
TABLES = ("products", "scenes", "members", "offsets", *(f"rel_{k}" for k in KINDS))
SCENE_COLUMNS = ("scene_id", "name", "source")

RELATION_TYPES = {
    "score": pa.float64(),
    "n_ab": pa.int64(),
    "lift": pa.float64(),
    "confidence": pa.float64(),
    "co_view": pa.int64(),
    "similarity": pa.float64(),
    "category_relation": pa.string(),
    "price_ratio": pa.float64(),
    "evidence": pa.string(),
}
REL_SCHEMA = pa.schema([("dst", pa.int32()), *((f, RELATION_TYPES.get(f, pa.string())) for f in REL_PROPS)])


# ----------------------------------------------------------------------------- value access
_FORMATS = {
    pa.float64(): "d",
    pa.float32(): "f",
    pa.int64(): "q",
    pa.int32(): "i",
    pa.int16(): "h",
    pa.int8(): "b",
    pa.uint64(): "Q",
    pa.uint32(): "I",
    pa.uint16(): "H",
    pa.uint8(): "B",
}


def _view(buf: pa.Buffer | None, fmt: str) -> memoryview[Any]:
    """``buf`` as a memoryview of native ``fmt`` values (indexing gives Python ints / floats)."""
    raw = memoryview(buf) if buf is not None else memoryview(b"")
    size = struct.calcsize(fmt)
    view: memoryview[Any] = raw[: len(raw) // size * size].cast(typing.cast(Any, fmt))
    return view


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], column.type)
    return column.combine_chunks()


def _value(arr: pa.Array, k: int, env: dict[str, Any], var: str) -> str:
    """A Python expression for row ``var`` of ``arr`` (the value ``to_pylist`` gives), read
    straight from its buffers through names it adds to ``env``: a memoryview index, and for a
    string a slice of the data decoded — no Arrow scalar, no per-row object kept."""
    t, bufs = arr.type, arr.buffers()
    j = f"({var} + {arr.offset})" if arr.offset else var
    if pa.types.is_null(t) or arr.null_count == len(arr) > 0:
        return "None"
    if t in (pa.string(), pa.large_string()):
        env[f"o{k}"] = _view(bufs[1], "i" if t == pa.string() else "q")
        env[f"d{k}"] = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
        expr = f"str(d{k}[o{k}[{j}] : o{k}[{j} + 1]], 'utf-8')"
    elif t in _FORMATS:
        env[f"n{k}"] = _view(bufs[1], _FORMATS[t])
        expr = f"n{k}[{j}]"
    else:  # anything else (dates, booleans, ...): the general, slower way
        env[f"a{k}"] = arr
        return f"a{k}[{var}].as_py()"
    if arr.null_count:
        env[f"v{k}"] = memoryview(bufs[0])
        expr = f"({expr} if v{k}[{j} >> 3] >> ({j} & 7) & 1 else None)"
    return expr


class RowCode:
    """Builds a function that returns one row as a dict — columns of tables at given row
    variables, and constants, in the order added — e.g. a related row: the product's fields at
    ``d``, its kind, the relation's properties at ``i``. Generated once per table (as dataclasses
    and namedtuple do): one dict display, ~2x faster than a loop over per-column functions and ~50x
    faster than ``to_pylist``; a column name appears only as a repr()-ed key."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.items: list[str] = []

    def columns(self, table: pa.Table, names: tuple[str, ...], var: str = "i") -> RowCode:
        for n in names:
            self.items.append(f"{n!r}: {_value(_array(table.column(n)), len(self.items), self.env, var)}")
        return self

    def constant(self, key: str, value: Any) -> RowCode:
        self.env[f"c{len(self.items)}"] = value
        self.items.append(f"{key!r}: c{len(self.items)}")
        return self

    def function(self, args: str = "i") -> Callable[..., dict[str, Any]]:
        exec(f"def row({args}):\n    return {{{', '.join(self.items)}}}\n", self.env)  # noqa: S102
        row: Callable[..., dict[str, Any]] = self.env.pop("row")  # no cycle: freed with the graph
        return row


# ----------------------------------------------------------------------------- the graph
@dataclass
class Graph:
    """One generation of the graph: the Arrow tables (memory-mapped or in memory) and the small
    per-process indexes built from them by :func:`graph_of`."""

    tables: dict[str, pa.Table]
    stats: dict[str, Any]
    generation: str | None
    source: Path | None = None  # the directory of memory-mapped files, None when in memory
    ids: dict[str, int] = field(default_factory=dict)  # product_id -> row of products
    product: Callable[[int], dict[str, Any]] = field(default=lambda i: {})  # row -> PRODUCT_FIELDS
    product_ids: list[str] = field(default_factory=list)  # row -> product_id
    dst: dict[str, memoryview[Any]] = field(default_factory=dict)  # kind -> int32: the related product's row
    # kind -> (relation row i, product row d) -> PRODUCT_FIELDS of d, kind, REL_PROPS of i
    related_row: dict[str, Callable[[int, int], dict[str, Any]]] = field(default_factory=dict)
    offsets: dict[str, memoryview[Any]] = field(default_factory=dict)  # kind -> int64[n + 1]
    # scene_id -> [(product row, role, weight)]; product_id -> [{scene_id, name, source, role,
    # weight}]; scene_id -> {product_id: role}; scenes()'s answer; lower(id / name) -> scenes
    members: dict[str, list[tuple[int, Any, Any]]] = field(default_factory=dict)
    product_scenes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[str, dict[str, str | None]] = field(default_factory=dict)
    scene_list: list[dict[str, Any]] = field(default_factory=list)
    scene_keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def span(self, kind: str, row: int) -> tuple[int, int]:
        """Rows of rel_<kind> that are product ``row``'s related list."""
        off = self.offsets[kind]
        return off[row], off[row + 1]

    def member_rows(self, scene_id: str) -> list[dict[str, Any]]:
        """The scene's members: PRODUCT_FIELDS + role, weight."""
        return [
            {**self.product(i), "role": role, "weight": weight} for i, role, weight in self.members[scene_id]
        ]


def _column_list(table: pa.Table, name: str) -> list[Any]:
    values: list[Any] = _array(table.column(name)).to_pylist()
    return values


def graph_of(
    tables: dict[str, pa.Table], stats: dict[str, Any], generation: str | None, source: Path | None
) -> Graph:
    """The :class:`Graph` of ``tables`` (see the module docstring) with its indexes."""
    products = tables["products"]
    pids: list[str] = _column_list(products, "product_id")  # the same str objects as ids' keys
    ids = {pid: i for i, pid in enumerate(pids)}
    graph = Graph(
        tables, stats, generation, source, ids, RowCode().columns(products, PRODUCT_FIELDS).function(), pids
    )
    for kind in KINDS:
        rel = tables[f"rel_{kind}"]
        dst = _array(rel.column("dst"))
        graph.dst[kind] = _view(dst.buffers()[1], "i")[dst.offset : dst.offset + len(dst)]
        code = RowCode().columns(products, PRODUCT_FIELDS, "d").constant("kind", kind).columns(rel, REL_PROPS)
        graph.related_row[kind] = code.function("i, d")
        off = _array(tables["offsets"].column(kind))
        graph.offsets[kind] = _view(off.buffers()[1], "q")[off.offset : off.offset + len(off)]
    scenes = tables["scenes"].select(list(SCENE_COLUMNS)).to_pylist()
    by_id = {s["scene_id"]: s for s in scenes}
    graph.members = {s["scene_id"]: [] for s in scenes}
    graph.roles = {s["scene_id"]: {} for s in scenes}
    m = tables["members"]
    for row, sid, role, weight in zip(
        *(_column_list(m, c) for c in ("product", "scene_id", "role", "weight")), strict=True
    ):
        pid = pids[row]
        graph.members[sid].append((row, role, weight))
        graph.product_scenes.setdefault(pid, []).append({**by_id[sid], "role": role, "weight": weight})
        graph.roles[sid][pid] = role
    graph.scene_list = _scene_list(scenes, graph.members)
    for sc in scenes:
        for name in {sc["scene_id"].lower(), (sc["name"] or "").lower()} - {""}:
            graph.scene_keys.setdefault(name, []).append(sc)
    return graph


def _scene_list(
    scenes: list[dict[str, Any]], members: dict[str, list[tuple[int, Any, Any]]]
) -> list[dict[str, Any]]:
    """``scenes()``'s answer: the rows a store's SCENES statement gives (one per scene and role:
    smallest weight, member count; a scene without members once, with 0), folded by
    tiein.graph.base.scene_list."""
    rows: list[dict[str, Any]] = []
    for s in scenes:
        by_role: dict[str | None, list[float | None]] = {}
        for _, role, weight in members[s["scene_id"]]:
            by_role.setdefault(role, []).append(weight)
        if not by_role:
            rows.append({**s, "role": None, "weight": None, "members": 0})
        for role, weights in by_role.items():
            known = [w for w in weights if w is not None]
            rows.append({**s, "role": role, "weight": min(known) if known else None, "members": len(weights)})
    return scene_list(rows)


# ----------------------------------------------------------------------------- building the tables
def _empty(table: pa.Table) -> bool:
    return bool(table.num_columns == 0 or table.num_rows == 0)


def _rows_of(ids: pa.Array, column: pa.ChunkedArray, what: str) -> pa.Array:
    rows = pc.index_in(column, value_set=ids)
    if rows.null_count:
        raise StoreError(f"{what} names a product that is not in the graph")
    return _array(rows).cast(pa.int32())


def relations_table(table: pa.Table, ids: pa.Array) -> tuple[pa.Table, np.ndarray]:
    """One kind's relations in tiein.graph.base's order (rel_<kind>) and its offsets column."""
    n = len(ids)
    if _empty(table):
        return REL_SCHEMA.empty_table(), np.zeros(n + 1, dtype=np.int64)
    keys = [("src", "ascending"), ("score", "descending"), ("dst", "ascending")]
    # the order from the keys alone, then every column taken (big text in pieces: Arrow's sort_by
    # would join a column's chunks, past 2 GiB of evidence an offset overflow)
    table = _take(table, pc.sort_indices(table.select([k for k, _ in keys]), sort_keys=keys))
    src = _rows_of(ids, table.column("src"), "a relation").to_numpy()
    columns = [_rows_of(ids, table.column("dst"), "a relation")]
    columns += [_wide(table.column(f).cast(RELATION_TYPES.get(f, pa.string()))) for f in REL_PROPS]
    offsets = np.searchsorted(src, np.arange(n + 1), side="left").astype(np.int64)
    return pa.Table.from_arrays(columns, names=REL_SCHEMA.names), offsets


def _wide(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A string column too big for one array's 32-bit offsets (2 GiB: e.g. the evidence of a
    few million relations) as large_string; the files hold each table as one record batch."""
    if column.type == pa.string() and column.nbytes >= 2**31 - 2**24:
        return column.cast(pa.large_string())
    return column


def build_tables(read: Callable[[str], pa.Table], queries: dict[str, Any]) -> dict[str, pa.Table]:
    """The graph's tables (module docstring) from the store's bulk reads: ``read(cypher)`` for
    ``queries`` = {"products": ..., "relations": {kind: ...}, "scenes": ..., "members": ...}."""
    pt = read(queries["products"])
    if _empty(pt):
        pt = pa.table({f: pa.array([], pa.string()) for f in PRODUCT_FIELDS})
    products = pt.select(list(PRODUCT_FIELDS)).sort_by("product_id")
    ids = _array(products.column("product_id"))
    tables = {"products": products}
    offsets = {}
    for kind in KINDS:
        tables[f"rel_{kind}"], offsets[kind] = relations_table(read(queries["relations"][kind]), ids)
    tables["offsets"] = pa.table(offsets)
    st = read(queries["scenes"])
    if _empty(st):
        st = pa.table({c: pa.array([], pa.string()) for c in SCENE_COLUMNS})
    tables["scenes"] = st.select(list(SCENE_COLUMNS))
    mt = read(queries["members"])
    if _empty(mt):
        mt = pa.table(
            {
                "product_id": pa.array([], pa.string()),
                "scene_id": pa.array([], pa.string()),
                "role": pa.array([], pa.string()),
                "weight": pa.array([], pa.float64()),
            }
        )
    known = pc.is_in(mt.column("scene_id"), value_set=_array(tables["scenes"].column("scene_id")))
    rows = pc.index_in(mt.column("product_id"), value_set=ids)
    unknown = pc.or_(pc.is_null(rows), pc.invert(known))
    if pc.any(unknown).as_py():
        bad = mt.filter(unknown).slice(0, 1).to_pylist()[0]
        raise StoreError(f"scene member {bad['product_id']!r} of {bad['scene_id']!r} is not in the graph")
    members = pa.table(
        {
            "product": _array(rows).cast(pa.int32()),
            **{c: mt.column(c) for c in ("scene_id", "role", "weight")},
        }
    )
    tables["members"] = members.sort_by([("scene_id", "ascending"), ("product", "ascending")])
    return tables


# ----------------------------------------------------------------------------- the files
def snapshot_dir(gen_dir: Path, generation: str) -> Path:
    return gen_dir / f"{DIR_PREFIX}{generation}"


def open_files(path: Path, generation: str) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """The tables and stats written by :func:`write_files`, memory-mapped (zero-copy: the
    columns' buffers are the file's pages). OSError / pyarrow errors / StoreError when damaged."""
    tables = {}
    for name in TABLES:
        source = pa.memory_map(str(path / f"{name}.arrow"), "r")
        reader = pa.ipc.open_file(source)
        meta = reader.schema.metadata or {}
        if meta.get(b"format") != FORMAT.encode() or meta.get(b"generation") != generation.encode():
            raise StoreError(f"{path.name}/{name}.arrow is not the snapshot of {generation}")
        tables[name] = reader.read_all()
    stats = json.loads((path / STATS_FILE).read_text(encoding="utf-8"))
    return tables, stats


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
    """``table`` as one uncompressed record batch in an Arrow IPC file (memory-mappable)."""
    table = table.replace_schema_metadata(metadata).combine_chunks()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    _fsync(path)


def write_files(gen_dir: Path, generation: str, tables: dict[str, pa.Table], stats: dict[str, Any]) -> Path:
    """Write the snapshot of ``generation`` into ``gen_dir`` (a temporary directory renamed in
    whole) unless it is there already; its path. OSError when it cannot be written."""
    final = snapshot_dir(gen_dir, generation)
    if final.is_dir():
        return final
    tmp = gen_dir / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        meta = {"format": FORMAT, "generation": generation}
        for name in TABLES:
            write_table(tmp / f"{name}.arrow", tables[name], meta)
        (tmp / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False), encoding="utf-8")
        _fsync(tmp / STATS_FILE)
        fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race: same content
            return final
        fsync_dir(gen_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_debris(gen_dir, keep=final.name)
    return final


def _remove_debris(gen_dir: Path, keep: str) -> None:
    """Snapshots copied from an older generation (by ``apply``) and temporary directories of
    processes that died while writing one."""
    for child in gen_dir.iterdir():
        name = child.name
        if name == keep or not child.is_dir():
            continue
        if name.startswith(DIR_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
        elif name.startswith(f".{DIR_PREFIX}") and name.endswith(".tmp"):
            parts = name.split(".")
            pid = int(parts[-3]) if len(parts) > 3 and parts[-3].isdigit() else 0
            if pid and not _alive(pid):
                shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def file_lock(path: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """Hold an exclusive flock on ``path`` (created) while inside; yields False when it could
    not be had in ``wait_s`` or where there is no flock (then the caller races harmlessly)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # Windows
            yield False
            return
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("%s stayed locked for %.0f s; going on without it", path, wait_s)
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)  # closing releases the flock

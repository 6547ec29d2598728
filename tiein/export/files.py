"""The files of an export: the resumable parts directory (its manifest and lock), atomic writes,
and the join of the parts onto the output path."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.export.rows import escape_formula_table

MANIFEST = "manifest.json"


@contextmanager
def parts_dir(parts: Path, manifest: dict[str, Any]) -> Iterator[bool]:
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
            atomic_write(path, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
        yield restarted
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_arrow(path: Path, table: pa.Table) -> None:
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


def assemble(
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

"""The graph as files for bulk loaders: Neo4j's ``neo4j-admin database import`` and the embedded
store's ``COPY ... FROM`` (``tiein export-graph``).

A shop too big for the ``UNWIND`` batches of :class:`tiein.graph.neo4j_store.Neo4jStore` (one
transaction holding the whole graph in the server's memory) loads an offline Neo4j database from
files instead. The files hold what a load writes, table by table (:func:`tiein.graph.build.graph_tables`:
the same rows, columns and types, nulls left out as ``SET n = row`` leaves them out):

- ``nodes/<Label>.<ext>`` (Product, Category, Brand, Attribute, Scene, and TieinMeta with the
  build's meta JSON) and ``relationships/<TYPE>.<ext>`` (IN_CATEGORY … NEXT_PURCHASE; empty
  tables are left out), columns named and ordered as the embedded store's tables: ``COPY Product
  FROM 'nodes/Product.parquet'`` takes them as they are (``embedded.cypher``: every statement of
  a new embedded database, run in the export's directory);
- beside each a ``.header.csv`` for neo4j-admin: ids as ``product_id:ID(Product)`` (one id
  space per label), ``:START_ID(Product)`` / ``:END_ID(Category)``, properties typed
  (``score:double``, ``n_ab:long``, ``same_line:boolean``). For Parquet (Neo4j 5.25 and later,
  ``--input-type=parquet``) the header's second row names the file's column for each entry;
- ``neo4j-admin-import.sh``: the import command with every file; ``schema.cypher``: the
  constraints and indexes :class:`~tiein.graph.neo4j_store.Neo4jStore` creates, to run once the
  database is started (``cypher-shell -f schema.cypher``).

CSV (``--format csv``) is for Neo4j versions before Parquet import: RFC 4180 quoting, UTF-8, the
header in its own file, ``--multiline-fields=true`` in the command (titles may hold line breaks).
The directory is written beside its final place and renamed into it when whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from tiein.errors import ConfigError, InputError
from tiein.graph import cypher_ladybug as lcy
from tiein.graph import cypher_neo4j as ncy
from tiein.graph.build import REL_ENDPOINTS, graph_tables
from tiein.model import GraphData

FORMATS = ("parquet", "csv")
_NEO4J_TYPES = {pa.float64(): "double", pa.int64(): "long", pa.int32(): "int", pa.bool_(): "boolean"}


def neo4j_header(
    table: pa.Table, *, key: str | None = None, label: str = "", start: str = "", end: str = ""
) -> list[str]:
    """The neo4j-admin header entries of a node table (``key`` column is the id, in ``label``'s
    id space) or of a relationship table (``src``/``dst`` from the ``start``/``end`` labels).

    >>> t = pa.table({"src": ["a"], "dst": ["b"], "score": [0.5], "n_ab": [3], "kind": ["x"]})
    >>> neo4j_header(t, start="Product", end="Category")
    [':START_ID(Product)', ':END_ID(Category)', 'score:double', 'n_ab:long', 'kind']
    """
    out = []
    for f in table.schema:
        if key is not None and f.name == key:
            out.append(f"{f.name}:ID({label})")
        elif key is None and f.name == "src":
            out.append(f":START_ID({start})")
        elif key is None and f.name == "dst":
            out.append(f":END_ID({end})")
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            out.append(f.name)
        elif f.type in _NEO4J_TYPES:
            out.append(f"{f.name}:{_NEO4J_TYPES[f.type]}")
        else:
            raise InputError(f"has Arrow type {f.type}, which neo4j-admin import cannot type", column=f.name)
    return out


def write_graph_files(data: GraphData, out: Path, fmt: str = "parquet") -> dict[str, Any]:
    """Write the files of ``data`` (module docstring) into the new directory ``out``; returns a
    summary: {"format", "dir", "nodes": {label: rows}, "relationships": {type: rows}, "command"}.
    ConfigError when ``out`` exists (nothing is overwritten) or ``fmt`` is unknown."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown graph file format {fmt!r} (one of: {', '.join(FORMATS)})")
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists: give a new directory")
    tables = graph_tables(data)  # InputError (bad rows) before anything is written
    meta_json = json.dumps(tables.meta, ensure_ascii=False, sort_keys=True)
    tmp = out.with_name(f".{out.name}.partial")
    summary: dict[str, Any] = {"format": fmt, "dir": str(out), "nodes": {}, "relationships": {}}
    args: list[str] = []
    embedded: list[str] = [*lcy.CREATE_NODE_TABLE.values(), *lcy.CREATE_REL_TABLE.values()]
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "nodes").mkdir(parents=True)
        (tmp / "relationships").mkdir()
        meta = pa.table({"json": pa.array([meta_json], pa.string())})
        entries = [  # (folder, label or type, rows, neo4j-admin header, loaded by the embedded store)
            *(
                ("nodes", label, t, neo4j_header(t, key=ncy.NODE_KEYS.get(label), label=label), True)
                for label, t in tables.nodes.items()
            ),
            ("nodes", ncy.META_LABEL, meta, neo4j_header(meta), False),  # the build's meta
            *(
                (
                    "relationships",
                    rel,
                    t,
                    neo4j_header(t, start=REL_ENDPOINTS[rel][0], end=REL_ENDPOINTS[rel][1]),
                    True,
                )
                for rel, t in tables.rels.items()
            ),
        ]
        for folder, name, table, header, copied in entries:
            if not table.num_rows:
                continue
            files = _write(tmp / folder, name, table, header, fmt)
            args.append(f"--{folder}={name}={files[0]},{files[1]}")
            summary[folder][name] = table.num_rows
            if copied:
                embedded.append(f"COPY {name} FROM '{files[1]}'")
        options = ["--input-type=parquet"] if fmt == "parquet" else ["--multiline-fields=true"]
        command = "neo4j-admin database import full neo4j --overwrite-destination=true " + " ".join(
            [*options, *args]
        )
        lines = command.replace(" --", " \\\n  --")  # one option per line
        (tmp / "neo4j-admin-import.sh").write_text(
            "#!/bin/sh\n# run in this directory on the Neo4j server, with the database stopped\n"
            f"set -e\n{lines}\n",
            "utf-8",
        )
        (tmp / "neo4j-admin-import.sh").chmod(0o755)
        (tmp / "schema.cypher").write_text("".join(f"{s};\n" for s in ncy.SCHEMA), "utf-8")
        (tmp / "embedded.cypher").write_text("".join(f"{s};\n" for s in embedded), "utf-8")
        tmp.rename(out)
    except OSError as exc:  # a folder that cannot be written: one plain line, nothing left behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"cannot write the graph files to {out}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["command"] = command
    return summary


def _write(folder: Path, name: str, table: pa.Table, header: list[str], fmt: str) -> tuple[str, str]:
    """One table's data file and its neo4j-admin header file; their paths relative to the export."""
    head = folder / f"{name}.header.csv"
    rows = [header] + ([table.column_names] if fmt == "parquet" else [])
    head.write_text("".join(",".join(r) + "\n" for r in rows), "utf-8")
    data = folder / f"{name}.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, data, compression="zstd")
    else:  # NaN (which neo4j-admin's CSV reader does not parse) as an empty field: no property
        for i, f in enumerate(table.schema):
            if pa.types.is_floating(f.type):
                col = table.column(i)
                table = table.set_column(i, f, pc.if_else(pc.is_nan(col), pa.scalar(None, f.type), col))
        pcsv.write_csv(table, data, pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    base = folder.parent
    return str(head.relative_to(base)), str(data.relative_to(base))

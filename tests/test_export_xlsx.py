"""XLSX export (``tiein export --format xlsx``) and the one-row-per-bundle layout (``--layout
bundle``) on the hand-made catalog of tests/test_store_contract.py: ids stay text in Excel
(12 digits never become 1.23457E+11, leading zeros stay), no cell is a formula, headers are
bilingual, and the xlsx holds exactly what the csv holds."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from test_store_contract import CATALOG, catalog

from tiein.cli import cli
from tiein.export import columns, export, header
from tiein.export.files import write_xlsx
from tiein.export.rows import WIDE_ITEM_FIELDS
from tiein.graph.base import GraphStore
from tiein.service import bundle_payload

IDS = sorted(p[0] for p in CATALOG)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    from tiein.graph.ladybug_store import EmbeddedStore

    s = EmbeddedStore(tmp_path_factory.mktemp("xlsx") / "graph")
    s.replace(catalog())
    yield s
    s.close()


def sheet_rows(path: Path) -> list[tuple]:
    wb = load_workbook(path)
    assert len(wb.worksheets) == 1
    return [tuple(c.value for c in row) for row in wb.worksheets[0].iter_rows()]


def test_ids_stay_text_and_no_cell_is_a_formula(tmp_path: Path) -> None:
    schema = pa.schema([("product_id", pa.string()), ("title", pa.string()), ("price", pa.float64())])
    table = pa.table(
        {
            "product_id": ["123456789012", "00123", "4006381333931", None],
            "title": ['=HYPERLINK("http://evil.example","x")', "连衣裙\x0b夏", "+1", "ok"],
            "price": [19.9, 0.5, None, 3.0],
        },
        schema=schema,
    )
    out = tmp_path / "t.xlsx"
    assert write_xlsx(out, iter([table]), schema, [header(n, "zh-en") for n in schema.names], "related") == 4
    wb = load_workbook(out)
    ws = wb["related"]
    assert [c.value for c in ws[1]] == [
        "推荐商品ID / product_id",
        "推荐商品标题 / title",
        "推荐商品价格 / price",
    ]
    assert ws.freeze_panes == "A2"
    ids = [ws.cell(row=r, column=1) for r in range(2, 6)]
    assert [c.value for c in ids] == ["123456789012", "00123", "4006381333931", None]
    assert all(c.data_type == "s" for c in ids[:3])
    # text columns are formatted as text (@): what is typed into them later stays text too
    assert ws.column_dimensions["A"].number_format == "@" == ws.column_dimensions["B"].number_format
    assert ws.column_dimensions["C"].number_format == "General"
    titles = [ws.cell(row=r, column=2) for r in range(2, 6)]
    assert [c.value for c in titles] == ['=HYPERLINK("http://evil.example","x")', "连衣裙夏", "+1", "ok"]
    assert all(c.data_type == "s" for c in titles)
    assert [ws.cell(row=r, column=3).value for r in range(2, 6)] == [19.9, 0.5, None, 3]
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
        assert "<f>" not in sheet and "123456789012" in sheet  # the id as written, not a float
        assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode("utf-8")  # openpyxl stamps the saving time: fixed
        assert core.count("2000-01-01T00:00:00Z") == 2, core


def test_xlsx_holds_what_the_csv_holds(store: GraphStore, tmp_path: Path) -> None:
    for what in ("related", "bundles"):
        export(store, what, tmp_path / f"{what}.csv", fmt="csv", kinds=["complement", "substitute"])
        r = export(store, what, tmp_path / f"{what}.xlsx", fmt="xlsx", kinds=["complement", "substitute"])
        schema = columns(what)
        csv_rows = pcsv.read_csv(
            tmp_path / f"{what}.csv",
            convert_options=pcsv.ConvertOptions(
                column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        ).to_pylist()
        rows = sheet_rows(tmp_path / f"{what}.xlsx")
        assert rows[0] == tuple(header(n, "zh-en", what) for n in schema.names)
        assert rows[0][0] == "主商品ID / anchor_product_id"
        assert r.rows == len(rows) - 1 == len(csv_rows)
        for got, want in zip(rows[1:], csv_rows, strict=True):
            # floats to Excel's 15 significant digits (0.30000000000000004 is 0.3)
            assert [pytest.approx(v, rel=1e-14) if isinstance(v, float) else v for v in got] == [
                want[n] for n in schema.names
            ]


def test_one_row_per_bundle(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "wide.csv"
    r = export(store, "bundles", out, fmt="csv", size=3, layout="bundle", headers="en")
    schema = columns("bundles", "bundle", slots=2)
    assert [n for n in schema.names if n.startswith("item")] == [
        "items",
        *(f"item{n}_{f}" for n in (1, 2) for f in WIDE_ITEM_FIELDS),
    ]
    assert not any(n.startswith("item_") for n in schema.names)
    table = pcsv.read_csv(
        out,
        convert_options=pcsv.ConvertOptions(
            column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    assert table.schema.names == schema.names
    rows = table.to_pylist()
    assert r.rows == len(rows) == len(IDS)  # one row per anchor's bundle, items or not
    for row in rows:
        b = bundle_payload(store, row["anchor_product_id"], size=3)
        items = [i["product"]["product_id"] for i in b["items"]]
        assert row["items"] == len(items)
        assert [row["item1_product_id"], row["item2_product_id"]] == (items + [None, None])[:2]
        if items:
            assert row["item1_role"] == b["items"][0]["role"] and row["item1_score"] == b["items"][0]["score"]
        else:
            assert row["reason_code"] == (b["reason"] or {}).get("code")
    case = next(row for row in rows if row["anchor_product_id"] == "case-a")
    assert (case["item1_product_id"], case["item1_title"], case["item1_price"]) == (
        "film-a",
        "Screen film for Phone A",
        9.99,
    )


def test_cli_xlsx_bundle_layout(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "套餐.xlsx"
    args = ["export", "bundles", "--format", "xlsx", "--layout", "bundle", "--out", str(out)]
    r = CliRunner().invoke(cli, [*args, "--store", str(store.path), "--quiet"])  # type: ignore[attr-defined]
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"wrote {out}: {len(IDS)} rows for {len(IDS)} products")
    rows = sheet_rows(out)
    head = rows[0]
    assert head[0] == "主商品ID / anchor_product_id"
    assert "搭配商品1ID / item1_product_id" in head and "搭配商品2价格 / item2_price" in head
    col = head.index("搭配商品1ID / item1_product_id")
    assert {row[0]: row[col] for row in rows[1:]}["case-a"] == "film-a"
    args = ["export", "related", "--format", "csv", "--layout", "bundle", "--out", str(tmp_path / "x.csv")]
    r = CliRunner().invoke(cli, [*args, "--store", str(store.path)])  # type: ignore[attr-defined]
    assert r.exit_code != 0 and "export of bundles" in str(r.exception)
    assert not (tmp_path / "x.csv").exists()
    # --headers zh-en on csv; the default csv header stays as it was
    csv_out = tmp_path / "r.csv"
    args = ["export", "related", "--format", "csv", "--out", str(csv_out), "--headers", "zh-en"]
    r = CliRunner().invoke(cli, [*args, "--store", str(store.path), "--quiet"])  # type: ignore[attr-defined]
    assert r.exit_code == 0, r.output
    assert csv_out.read_text(encoding="utf-8").startswith('"主商品ID / anchor_product_id"')

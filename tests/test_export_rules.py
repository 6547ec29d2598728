"""Batch export honours the merchant rules (a blocked pair never appears, a pin comes first) and
takes the list filters of the API (issue 13): the camping shop, through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tiein.cli import cli

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("export-rules") / "home"
    run(
        "build",
        "--home",
        str(home),
        "--catalog",
        str(CAMPING / "catalog.csv"),
        "--orders",
        str(CAMPING / "orders.csv"),
        "--no-embeddings",
        "--quiet",
    )
    return home


def tent_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["anchor_product_id"] == "tent"]


def test_export_applies_rules_and_filters(home: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.csv"
    run(
        "export",
        "related",
        "--home",
        str(home),
        "--format",
        "csv",
        "--out",
        str(before),
        "--kind",
        "complement",
    )
    plain = [r["product_id"] for r in tent_rows(before)]
    assert "pegs" in plain and plain[0] != "bottle"

    rules = tmp_path / "rules.csv"
    rules.write_text("anchor,item,action\ntent,pegs,block\ntent,bottle,pin\n", encoding="utf-8")
    run("rules", "import", str(rules), "--home", str(home))
    after = tmp_path / "after.csv"
    run(
        "export",
        "related",
        "--home",
        str(home),
        "--format",
        "csv",
        "--out",
        str(after),
        "--kind",
        "complement",
    )
    rows = tent_rows(after)
    ids = [r["product_id"] for r in rows]
    assert "pegs" not in ids and ids[0] == "bottle"
    assert "商家推荐" in rows[0]["explanation_zh"]

    bundles = tmp_path / "bundles.jsonl"
    run("export", "bundles", "--home", str(home), "--format", "jsonl", "--out", str(bundles))
    tent = next(
        b
        for b in map(json.loads, bundles.read_text(encoding="utf-8").splitlines())
        if b["anchor"]["product_id"] == "tent"
    )
    assert "pegs" not in [i["product"]["product_id"] for i in tent["items"]]

    cheap = tmp_path / "cheap.csv"
    out = run(
        "export",
        "related",
        "--home",
        str(home),
        "--format",
        "csv",
        "--out",
        str(cheap),
        "--kind",
        "complement",
        "--max-price",
        "100",
        "--in-stock",
        "--json",
    )
    assert json.loads(out)["options"]["filters"] == {"in_stock": True, "max_price": 100.0}
    with open(cheap, encoding="utf-8") as f:
        items = [r for r in csv.DictReader(f) if r["product_id"]]
    assert items and all(float(r["price"]) <= 100 and r["stock"] != "0" for r in items)

"""bench/bundles.py keeps working: its functions on tiny sizes (the real numbers are in docs/bundles.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bundles as bench  # noqa: E402

from tiein.graph import open_store  # noqa: E402
from tiein.model import PRODUCTS, RELATIONS, GraphData  # noqa: E402


def test_percentiles_nearest_rank() -> None:
    p = bench.percentiles([float(i) for i in range(1, 101)])
    assert p == {"n": 100, "p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100.0}


def test_synthetic_bench_tiny(tmp_path: Path) -> None:
    r = bench.synthetic_bench(tmp_path / "syn", n_products=400, n_edges=6000, anchors=60, warmup=10)
    assert r["graph"]["products"] == 400 and r["graph"]["relationships"] > 6000
    for key in ("bundle_ms", "related_ms"):
        x = r[key]
        assert x["n"] == 60 and 0 < x["p50"] <= x["p95"] <= x["p99"] <= x["max"]
    # every product is in its department's scene, so every sampled bundle follows one
    assert r["sample"]["bundles"] == 20 and r["sample"]["following_a_scene"] == 20
    assert r["sample"]["with_items"] + sum(r["sample"]["reasons"].values()) == 20
    # the same bundle code on the in-memory snapshot gives the same bundles
    assert r["snapshot"]["same_answers"] is True and r["snapshot"]["bundle_ms"]["n"] == 60
    # a second run reuses the cached build
    marker = json.loads((tmp_path / "syn" / bench.MARKER).read_text(encoding="utf-8"))
    again = bench.synthetic_bench(tmp_path / "syn", n_products=400, n_edges=6000, anchors=20, warmup=5)
    assert again["graph"] == r["graph"]
    assert json.loads((tmp_path / "syn" / bench.MARKER).read_text(encoding="utf-8")) == marker


def test_synthetic_scenes_are_bundle_like() -> None:
    d = bench.synthetic_bundle_graph(300, 3000, seed=3)
    m = d.scene_members.to_pylist()
    assert len(m) == 300 and {x["scene_id"] for x in m} <= {f"dept{i}" for i in range(10)}
    paths = dict(
        zip(
            d.products.column("product_id").to_pylist(),
            d.products.column("category_path").to_pylist(),
            strict=True,
        )
    )
    for x in m:
        dept, aisle = paths[x["product_id"]].split(" > ")[:2]
        assert (
            x["scene_id"] == dept and x["role"] == aisle and x["weight"] == int(aisle.rsplit("-", 1)[1]) + 1
        )
    assert set(d.products.column("sales_role").to_pylist()) <= {"traffic", "hero", "profit", "regular", None}


def test_synthetic_prices_are_deterministic() -> None:
    ids = pa.array([str(i) for i in range(2000)])
    a, b = bench.synthetic_prices(ids), bench.synthetic_prices(pa.chunked_array([ids]))
    assert a.to_pylist() == b.to_pylist()
    prices = a.to_pylist()
    assert min(prices) >= 1 and max(prices) <= 30 and len(set(prices)) > 800  # spread, not one value


def test_priced_copy_keeps_known_prices(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    t = pa.Table.from_pylist(
        [{"product_id": "a", "price": 7.5}, {"product_id": "b", "price": None}], schema=PRODUCTS
    )
    got = pq.read_table(bench.priced_copy(t, tmp_path)).column("price").to_pylist()
    assert got[0] == 7.5 and got[1] == bench.synthetic_prices(pa.array(["b"])).to_pylist()[0]


@pytest.fixture()
def tiny_store(tmp_path: Path) -> Any:
    """A (anchor, 100) with complements B (50, aisle KB) and C (60, aisle KC)."""
    products = [
        {
            "product_id": p,
            "title": p,
            "category": f"K{p}",
            "category_path": f"K{p}",
            "price": price,
            "stock": 5,
        }
        for p, price in (("A", 100.0), ("B", 50.0), ("C", 60.0))
    ]
    rels = [
        {"src": "A", "dst": d, "kind": "complement", "score": s, "evidence": "{}"}
        for d, s in (("B", 0.9), ("C", 0.8))
    ]
    s = open_store(tmp_path / "graph")
    s.replace(
        GraphData(
            products=pa.Table.from_pylist(products, schema=PRODUCTS),
            relations=pa.Table.from_pylist(rels, schema=RELATIONS),
        )
    )
    yield s, products
    s.close()


def test_audit_counts_and_catches_violations(tiny_store: Any) -> None:
    store, products = tiny_store
    clean = bench.audit_bundles(store, ["A"], pa.Table.from_pylist(products, schema=PRODUCTS))
    assert (clean["bundles"], clean["items"], clean["same_aisle_pairs"], clean["out_of_band_items"]) == (
        1,
        2,
        0,
        0,
    )
    # the audit reads the catalog it is given, not the answers: a catalog that says B costs 95 and C
    # shares B's aisle makes it report both (proof it is not vacuous)
    lying = [{**p, "price": 95.0} if p["product_id"] == "B" else p for p in products]
    lying = [{**p, "category": "KB"} if p["product_id"] == "C" else p for p in lying]
    bad = bench.audit_bundles(store, ["A"], pa.Table.from_pylist(lying, schema=PRODUCTS))
    assert bad["out_of_band_items"] == 1 and bad["same_aisle_pairs"] == 1


def test_main_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = bench.main(
        ["--synthetic", "--products", "300", "--edges", "3000", "--anchors", "30", "--home", str(tmp_path)]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(got)) and got["synthetic"]["bundle_ms"]["n"] == 30


@pytest.mark.slow
def test_instacart_audit_small(tmp_path: Path) -> None:
    """Instacart (full catalog, first 2,000 orders, no embeddings): the issue's two zero counts."""
    r = bench.instacart_bench(tmp_path, top=60, embeddings=False, max_orders=2000)
    assert r["anchors"] == 60 and r["bundles"] > 0
    assert r["same_aisle_pairs"] == 0 and r["out_of_band_items"] == 0
    assert r["bundles"] + sum(r["no_bundle"].values()) == 60

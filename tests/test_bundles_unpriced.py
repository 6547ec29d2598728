"""Bundles for shops without prices or with one price for all (issue 12, item 5).

Rules under test (tiein.bundles): the price band applies only to a pair whose prices are both
known; an add-on at the anchor's own price passes the band (``BundleRules.same_price_ok``); a
bundle with an unpriced item has no price maths (``priced`` False, total / suggested price /
saving None, a pitch that says "prices at checkout"); with a budget, unpriced prices cannot be
checked and are refused with a reason.

The hand-loaded graphs below are small enough to check by hand; the camping shop of
tests/fixtures/camping is also built through the real pipeline with its price column removed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tiein.api.schemas import BundleResponse
from tiein.bundles import BundleRules, bundle, unpriced_pitch
from tiein.export import bundle_rows
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.model import PRODUCTS, RELATIONS, GraphData
from tiein.pipeline import BuildOptions, build
from tiein.service import bundle_payload

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def _store(
    path: Path, prices: dict[str, float | None], complements: list[tuple[str, str, float]]
) -> GraphStore:
    """A store with one product per entry of ``prices`` (each in its own category, stock 5) and
    the given complement edges (src, dst, score)."""
    products = [
        {
            "product_id": p,
            "title": f"Product {p}",
            "category": f"K{p}",
            "category_path": f"K{p}",
            "brand": None,
            "price": price,
            "stock": 5,
            "attributes": None,
        }
        for p, price in prices.items()
    ]
    relations = [
        {
            "src": src,
            "dst": dst,
            "kind": "complement",
            "score": score,
            "n_ab": 3,
            "lift": 2.0,
            "confidence": 0.3,
            "co_view": 0,
            "similarity": 0.1,
            "category_relation": "different",
            "price_ratio": None,
            "evidence": json.dumps({"kind": "complement", "bought_together": 3}),
        }
        for src, dst, score in complements
    ]
    s = open_store(path)
    s.replace(
        GraphData(
            products=pa.Table.from_pylist(products, schema=PRODUCTS),
            relations=pa.Table.from_pylist(relations, schema=RELATIONS),
        )
    )
    return s


def ids(b: Any) -> list[str]:
    return [i.product["product_id"] for i in b.items]


# ----------------------------------------------------------------------------- one price for all
@pytest.fixture(scope="module")
def one_price(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """Everything costs 10: A's complements B (0.9) and C (0.8), ratio 1.0 each."""
    s = _store(
        tmp_path_factory.mktemp("oneprice") / "graph",
        {"A": 10.0, "B": 10.0, "C": 10.0},
        [("A", "B", 0.9), ("A", "C", 0.8), ("B", "A", 0.9)],
    )
    yield s
    s.close()


def test_one_price_shop_gets_priced_bundles(one_price: GraphStore) -> None:
    b = bundle(one_price, "A")
    assert ids(b) == ["B", "C"] and b.reason is None and b.priced
    # 30 apart, 10 % off is 27; 18 and 20 give away more than 3 %, so 27 (whole number)
    assert (b.total, b.suggested_price, b.saving) == (30, 27, 3)
    assert b.pitch_en == "¥30.00 separately, ¥27.00 together, save ¥3.00"
    assert b.pitch_zh == "分开买 ¥30.00，一起拿 ¥27.00，省 ¥3.00"
    b = bundle(one_price, "B")  # B's only complement is A; then A's own complement C
    assert ids(b) == ["A", "C"] and [i.relation for i in b.items] == [
        "complement of anchor",
        "complement of A",
    ]


def test_same_price_rule_is_what_lets_them_in(one_price: GraphStore) -> None:
    b = bundle(one_price, "A", rules=BundleRules(same_price_ok=False))
    assert b.items == [] and b.reason is not None and b.reason.code == "outside_price_band"
    assert b.skipped == {"outside_price_band": 2}


# ----------------------------------------------------------------------------- mixed prices
@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """A (100) with complements B (no price, 0.9), C (200, 0.8: 200 %), D (50, 0.7: 50 %),
    E (10, 0.6: 10 %); U (no price) with complements V (1000, 0.9) and W (1, 0.8)."""
    prices = {"A": 100.0, "B": None, "C": 200.0, "D": 50.0, "E": 10.0, "U": None, "V": 1000.0, "W": 1.0}
    comps = [
        ("A", "B", 0.9),
        ("A", "C", 0.8),
        ("A", "D", 0.7),
        ("A", "E", 0.6),
        ("U", "V", 0.9),
        ("U", "W", 0.8),
    ]
    s = _store(tmp_path_factory.mktemp("mixed") / "graph", prices, comps)
    yield s
    s.close()


def test_band_applies_only_when_both_prices_are_known(mixed: GraphStore) -> None:
    b = bundle(mixed, "A")
    # B: no price, band skipped, taken; C: 200 % of 100, refused; D: 50 %, taken; E never reached
    assert ids(b) == ["B", "D"] and b.skipped == {"outside_price_band": 1}
    assert b.reason is None and not b.priced
    assert b.total is None and b.suggested_price is None and b.saving is None
    assert (b.pitch_zh, b.pitch_en) == unpriced_pitch(3)
    assert "价格以店内为准" in b.pitch_zh and "prices at checkout" in b.pitch_en
    # an unpriced anchor: the band is skipped for every pair (V is 1000 %, W 1 %)
    u = bundle(mixed, "U")
    assert ids(u) == ["V", "W"] and not u.priced and u.total is None and u.skipped == {}


def test_all_priced_items_keep_their_price_maths(mixed: GraphStore) -> None:
    b = bundle(mixed, "A", size=2, roles=[{"D"}])
    assert ids(b) == ["D"] and b.priced and b.total == 150 and b.suggested_price == 135 and b.saving == 15


def test_budget_needs_known_prices(mixed: GraphStore) -> None:
    b = bundle(mixed, "A", budget=1000)  # B cannot be checked against the budget, D can
    assert ids(b) == ["D"] and b.priced and b.total == 150
    assert b.skipped == {"price_unknown": 1, "outside_price_band": 2}
    b = bundle(mixed, "A", budget=1000, roles=[{"B"}])
    assert b.items == [] and b.reason is not None and b.reason.code == "budget_price_unknown"
    assert "¥1,000.00" in b.reason.en and "¥1,000.00" in b.reason.zh
    u = bundle(mixed, "U", budget=50)
    assert u.items == [] and u.reason is not None and u.reason.code == "anchor_price_unknown"
    assert "¥50.00" in u.reason.en and "¥50.00" in u.reason.zh and not u.priced and u.total is None


def test_unpriced_bundle_payload_schema_and_export_row(mixed: GraphStore) -> None:
    payload = bundle_payload(mixed, "A")
    assert payload["priced"] is False and payload["total"] is None and payload["suggested_price"] is None
    assert payload["saving"] is None and payload["pitch"]["en"] == "these 3 go together, prices at checkout"
    assert BundleResponse.model_validate(payload).priced is False
    rows = list(bundle_rows(payload))
    assert [r["item_product_id"] for r in rows] == ["B", "D"]
    assert all(r["priced"] is False and r["total"] is None for r in rows)
    assert bundle_payload(mixed, "A", size=2, roles=[{"D"}])["priced"] is True


def test_cli_says_prices_at_checkout(mixed: GraphStore) -> None:
    from click.testing import CliRunner

    from tiein.cli import cli

    result = CliRunner().invoke(cli, ["bundle", "A", "--store", str(mixed.path)])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "no bundle price (prices at checkout)" in result.output and "bundle price 0" not in result.output
    assert "这 3 件一起买，价格以店内为准" in result.output


# ----------------------------------------------------------------------------- a catalog without prices
@pytest.fixture(scope="module")
def no_prices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """The camping shop built by the real pipeline from a catalog without its price column."""
    home = tmp_path_factory.mktemp("camping-noprice")
    with open(CAMPING / "catalog.csv", encoding="utf-8", newline="") as f:
        rows = [{k: v for k, v in r.items() if k != "price"} for r in csv.DictReader(f)]
    catalog = home / "catalog.csv"
    with open(catalog, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = build(
        BuildOptions(
            catalog=catalog,
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            discover_scenes=False,
            embeddings=False,
        )
    )
    s = open_store(summary.store)
    yield s
    s.close()


def test_catalog_without_prices_gets_bundles(no_prices: GraphStore) -> None:
    """Stock is kept, so the fixture's out-of-stock items still refuse (gas, pot and lamp_pro have
    stock 0, the stove's complements are gas and pot), and so does tent_b, whose one complement is
    the tent, in its own category; with stock ignored, as for a catalog that has neither column,
    14 of the 15 anchors with complements get a bundle. No refusal is about prices."""
    with open(CAMPING / "catalog.csv", encoding="utf-8", newline="") as f:
        catalog = sorted(r["product_id"] for r in csv.DictReader(f))
    with_complements = [p for p in catalog if no_prices.related(p, "complement", 1)]
    assert len(with_complements) >= 10
    bundles = {p: bundle(no_prices, p) for p in with_complements}
    refused = {p: b.reason.code for p, b in bundles.items() if b.reason}
    assert refused == {
        "gas": "anchor_out_of_stock",
        "pot": "anchor_out_of_stock",
        "lamp_pro": "anchor_out_of_stock",
        "stove": "none_in_stock",
        "tent_b": "category_taken",
    }
    for b in bundles.values():
        assert "outside_price_band" not in b.skipped and not b.priced and b.total is None
        if b.ok:
            assert b.suggested_price is None and b.saving is None
            assert b.pitch_en == f"these {len(b.items) + 1} go together, prices at checkout"
    # the tent's best complement, the pegs (12 % of its price), now comes first: no band to keep it out
    assert ids(bundles["tent"])[0] == "pegs"

    loose = BundleRules(require_in_stock=False)
    made = [p for p in with_complements if bundle(no_prices, p, rules=loose).ok]
    assert len(made) >= 0.9 * len(with_complements)

"""Product sales roles (traffic / hero / profit / regular / null) and the optional margin / cost
catalog columns. Expected roles of the maternity shop are worked out by hand in
tests/fixtures/maternity/README.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tiein import loaders
from tiein.errors import ConfigError, InputError
from tiein.features import RoleConfig, sales_roles, with_sales_roles
from tiein.graph import open_store
from tiein.model import PRODUCTS, SALES_ROLES
from tiein.pipeline import BuildOptions, build

FIX = Path(__file__).parent / "fixtures" / "maternity"
MAPPING = {"catalog": {"category": ["department", "category"]}, "orders": {"timestamp": "date"}}
# README "Sales roles, by hand"
EXPECTED = {
    "W01": "traffic",
    "K01": "hero",
    "P01": "hero",
    "B01": "hero",
    "C01": "profit",
    "P03": "profit",
    "B02": "profit",
    "B04": "profit",
    "B03": "regular",
    "P02": "regular",
    "B05": None,
}
NAN = float("nan")


def roles(
    orders: list[int],
    units: list[float],
    price: list[float],
    margin: list[float] | None = None,
    cfg: RoleConfig | None = None,
) -> list[str | None]:
    m = np.full(len(orders), NAN) if margin is None else np.array(margin, dtype=float)
    return sales_roles(
        np.array(orders), np.array(units, dtype=float), np.array(price, dtype=float), m, cfg
    ).tolist()


def test_rules_by_hand() -> None:
    # five products that sold enough: cheap best seller, dear best seller, dear slow seller, two middling
    orders, units, price = [10] * 5, [500, 300, 5, 60, 50], [1, 40, 90, 5, 6]
    assert roles(orders, units, price) == ["traffic", "hero", "profit", "regular", "regular"]
    # too few orders or no price: no role, and they do not count in the percentiles
    assert roles([*orders, 4, 10], [*units, 9999, 10], [*price, 1, NAN]) == [
        "traffic",
        "hero",
        "profit",
        "regular",
        "regular",
        None,
        None,
    ]
    # with margins, "profit" follows the margin (top 30 %), not the price proxy
    assert roles(orders, units, price, [0.1, 0.2, 0.1, 0.6, 0.15]) == [
        "traffic",
        "hero",
        "regular",
        "profit",
        "regular",
    ]
    # thresholds are configurable: min_orders, and a stricter hero cut
    assert roles(orders, units, price, cfg=RoleConfig(min_orders=11)) == [None] * 5
    assert roles(orders, units, price, cfg=RoleConfig(hero_revenue_q=1.0, traffic_volume_q=1.1)) == [
        "regular",
        "hero",
        "profit",
        "regular",
        "regular",
    ]


def test_precedence_traffic_before_hero() -> None:
    """The cheap best seller also has the top revenue: it is traffic (draws customers), and the
    next-highest revenue is the hero."""
    got = roles([10] * 5, [1000, 50, 40, 30, 20], [2, 30, 3, 4, 5])
    assert got[0] == "traffic" and got[1] == "hero"


@pytest.fixture(scope="module")
def shop() -> loaders.Loaded:
    return loaders.load_files(
        catalog=FIX / "catalog.csv", orders=FIX / "orders.csv", mapping=loaders.Mapping.from_dict(MAPPING)
    )


def test_margin_from_cost_column(shop: loaders.Loaded) -> None:
    assert shop.products.schema == PRODUCTS
    margin = dict(
        zip(
            shop.products.column("product_id").to_pylist(),
            shop.products.column("margin").to_pylist(),
            strict=True,
        )
    )
    assert margin["K01"] == pytest.approx((299 - 180) / 299) and margin["W01"] == pytest.approx(
        (19 - 11) / 19
    )
    assert shop.products.column("sales_role").null_count == shop.products.num_rows  # loaders leave it null


def test_roles_of_the_maternity_shop(shop: loaders.Loaded) -> None:
    out = with_sales_roles(shop.products, shop.orders)
    got = dict(zip(out.column("product_id").to_pylist(), out.column("sales_role").to_pylist(), strict=True))
    assert got == EXPECTED
    assert out.schema == PRODUCTS


def test_roles_reach_the_store(tmp_path: Path) -> None:
    build(
        BuildOptions(
            catalog=FIX / "catalog.csv",
            orders=FIX / "orders.csv",
            mapping=loaders.Mapping.from_dict(MAPPING),
            home=tmp_path,
            embeddings=False,
            discover_scenes=False,
        )
    )
    store = open_store(str(tmp_path / "graph"))
    try:
        assert {pid: store.product(pid)["sales_role"] for pid in EXPECTED} == EXPECTED
        rows = store.query(
            "MATCH (p:Product) WHERE p.sales_role = 'hero' RETURN p.product_id AS id ORDER BY id"
        )
        assert [r["id"] for r in rows] == ["B01", "K01", "P01"]
        assert store.stats()["meta"]["role_config"]["min_orders"] == RoleConfig().min_orders
    finally:
        store.close()


def _catalog(tmp_path: Path, header: str, *rows: str) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_margin_column_fraction_or_percent(tmp_path: Path) -> None:
    path = _catalog(tmp_path, "sku,title,price,毛利率", "a,A,10,0.35", "b,B,20,35%", "c,C,30,", "d,D,40,-5%")
    got = loaders.load_files(
        catalog=path, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku", "margin=毛利率"])
    )
    assert got.products.column("margin").to_pylist() == pytest.approx([0.35, 0.35, None, -0.05], nan_ok=False)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", "cannot read 'abc' as a margin"),
        ("35", "write 35% or 0.35"),
        ("150%", "between -100% and 100%"),
    ],
)
def test_bad_margin_names_row_and_column(tmp_path: Path, value: str, why: str) -> None:
    path = _catalog(tmp_path, "sku,price,margin", "a,10,0.2", f"b,20,{value}")
    with pytest.raises(InputError) as info:
        loaders.load_files(catalog=path, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku"]))
    assert info.value.column == "margin" and info.value.row == 3 and why in str(info.value)  # header = row 1


def test_cost_rules(tmp_path: Path) -> None:
    path = _catalog(tmp_path, "sku,price,进价", "a,10,4", "b,0,1", "c,20,25")
    got = loaders.load_files(
        catalog=path, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku", "cost=进价"])
    )
    assert got.products.column("margin").to_pylist() == pytest.approx(
        [0.6, None, -0.25]
    )  # price 0: no margin
    bad = _catalog(tmp_path, "sku,price,cost", "a,10,4", "b,10,-1")
    with pytest.raises(InputError) as info:
        loaders.load_files(catalog=bad, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku"]))
    assert (info.value.row, info.value.column) == (3, "cost") and "negative cost" in str(info.value)
    no_price = _catalog(tmp_path, "sku,cost", "a,4")
    with pytest.raises(InputError, match="needs a price column"):
        loaders.load_files(
            catalog=no_price, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku"])
        )
    both = _catalog(tmp_path, "sku,price,cost,margin", "a,10,4,0.6")
    with pytest.raises(ConfigError, match="map one of them"):
        loaders.load_files(catalog=both, orders=None, mapping=loaders.Mapping.from_cli(["product_id=sku"]))


def test_unknown_role_refused_by_graph_build() -> None:
    from tiein.graph.build import graph_tables
    from tiein.model import GraphData

    ok = pa.Table.from_pylist(
        [{"product_id": "a", "sales_role": r} for r in [*SALES_ROLES, None]][:1], schema=PRODUCTS
    )
    assert graph_tables(GraphData(products=ok)).nodes["Product"].column("sales_role").to_pylist() == [
        "traffic"
    ]
    bad = pa.Table.from_pylist(
        [{"product_id": "a", "sales_role": None}, {"product_id": "b", "sales_role": "star"}], schema=PRODUCTS
    )
    with pytest.raises(InputError) as info:
        graph_tables(GraphData(products=bad))
    assert (info.value.row, info.value.column) == (2, "sales_role")
    # a products table from before the field existed still loads (read as null)
    old = pa.table(
        {
            "product_id": ["a"],
            "title": ["t"],
            "category": [None],
            "category_path": [None],
            "brand": [None],
            "price": [1.0],
            "stock": [1],
            "attributes": [None],
        }
    )
    assert graph_tables(GraphData(products=old)).nodes["Product"].column("margin").to_pylist() == [None]

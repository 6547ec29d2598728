"""Product types from titles (tiein.product_type), variety instead of substitute, and the
type-level complement fallback (tiein.type_fallback), on hand-checkable fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from tiein.model import ORDERS, PRODUCTS, RELATIONS
from tiein.product_type import product_types
from tiein.relations import RelationConfig, score_features
from tiein.type_fallback import type_complements


def test_types_from_titles_and_categories() -> None:
    titles = [
        "LUNCH BAG RED RETROSPOT",
        "LUNCH BAG PINK POLKADOT",
        "LUNCH BAG SUKI DESIGN",
        "LUNCH BAG APPLE DESIGN",
        "RED RETROSPOT PUDDING BOWL",
        "RED RETROSPOT WASHBAG",
        "PINK RETROSPOT MUG",
        "全脂牛奶",
        "低脂牛奶",
        "Campr 2-person dome tent",
    ]
    cats = [None] * 9 + ["Outdoor > Tents"]
    got = product_types(titles, cats)
    assert got[:4] == ["lunch bag"] * 4
    # the shared print is not the type: these are a bowl, a washbag and a mug
    assert got[4:7] == ["pudding bowl", "washbag", "mug"]
    assert got[7] == got[8] == "牛奶"
    assert got[9] == "tents"  # the leaf category wins where there is one


def _pair(same_type: float, n_ab: int, lift: float) -> dict[str, np.ndarray]:
    one = np.ones(1)
    return {
        "src": np.array(["a"], dtype=object),
        "dst": np.array(["b"], dtype=object),
        "n_ab": np.array([n_ab]),
        "n_src": np.array([100]),
        "conf": one * n_ab / 100,
        "lift": one * lift,
        "after_sd": np.zeros(1, dtype=np.int64),
        "after_ds": np.zeros(1, dtype=np.int64),
        "co_view": np.zeros(1, dtype=np.int64),
        "listed_buy": np.zeros(1, dtype=np.int64),
        "listed_view": np.zeros(1, dtype=np.int64),
        "similarity": one * 0.9,
        "cat_rel": np.array([3]),
        "price_ratio": one,
        "same_line": np.zeros(1, dtype=bool),
        "same_type": one * same_type,
    }


def test_variety_is_a_series_not_a_substitute_and_other_types_are_no_substitutes() -> None:
    cfg = RelationConfig()
    # same type, bought together 40 times at lift 6: variety (HEART OF WICKER SMALL and LARGE)
    s = score_features(_pair(1.0, 40, 6.0), cfg)
    assert s["substitute"][0] == 0 and s["series"][0] > 0
    # same type, never bought together: a substitute
    s = score_features(_pair(1.0, 0, 0.0), cfg)
    assert s["substitute"][0] > 0 and s["series"][0] == 0 and s["complement"][0] == 0
    # another type with a similar title (the same print on a bowl): never a substitute
    s = score_features(_pair(0.0, 0, 0.0), cfg)
    assert s["substitute"][0] == 0


def test_products_without_complements_get_their_types_complements() -> None:
    products = pa.table(
        {
            "product_id": ["top1", "top2", "top_new", "jeans1", "jeans2", "belt1"],
            "title": ["T-shirt white", "T-shirt black", "T-shirt stripe", "Jeans slim", "Jeans wide", "Belt"],
            "category": ["Tops", "Tops", "Tops", "Trousers", "Trousers", "Belts"],
            "category_path": ["Tops", "Tops", "Tops", "Trousers", "Trousers", "Belts"],
            "brand": [None] * 6,
            "price": [10.0] * 6,
            "stock": [5, 5, 5, 5, 0, 5],
        }
    )
    products = products.cast(pa.schema([PRODUCTS.field(c) for c in products.column_names]))
    lines = []
    for i in range(30):  # tops go with trousers; belts are bought alone
        lines += [(f"o{i}", "top1" if i % 2 else "top2"), (f"o{i}", "jeans1" if i % 3 else "jeans2")]
    lines += [("x1", "top_new"), ("x2", "belt1"), ("x3", "belt1")]
    orders = pa.table(
        {
            "order_id": [o for o, _ in lines],
            "product_id": [p for _, p in lines],
            "quantity": [1] * len(lines),
            "customer_id": [None] * len(lines),
            "ts": pa.nulls(len(lines), pa.timestamp("us")),
        }
    ).cast(ORDERS)
    # item-level complements exist for the sellers, none for top_new (one order) and belt1
    have = [("top1", "jeans1"), ("top2", "jeans1"), ("jeans1", "top1"), ("jeans2", "top2")]
    rel = pa.table({c: pa.nulls(len(have), RELATIONS.field(c).type) for c in RELATIONS.names})
    rel = rel.set_column(0, "src", pa.array([a for a, _ in have])).set_column(
        2, "kind", pa.array(["complement"] * len(have))
    )
    out, report = type_complements(products, orders, rel)
    rows = out.to_pylist()
    assert {r["src"] for r in rows} == {"top_new"}  # belts are bought with no other type
    assert [r["dst"] for r in rows] == ["jeans1"]  # jeans2 is out of stock
    ev = json.loads(rows[0]["evidence"])
    assert ev["level"] == "type" and ev["anchor_type"] == "tops" and ev["addon_type"] == "trousers"
    assert ev["types_bought_together"] == 30 and rows[0]["kind"] == "complement" and 0 < rows[0]["score"] <= 1
    assert report["without_item_complements"] == 2 and report["filled_by_type"] == 1
    assert report["still_without"] == 1
    # one type per direction: a pair already typed (here a substitute) is not also a fallback complement
    sub = (
        rel.slice(0, 1).set_column(0, "src", pa.array(["top_new"])).set_column(1, "dst", pa.array(["jeans1"]))
    )
    sub = sub.set_column(2, "kind", pa.array(["substitute"]))
    out, _ = type_complements(products, orders, pa.concat_tables([rel, sub]))
    assert out.num_rows == 0


def test_bundle_takes_one_item_per_product_type_without_categories(tmp_path: Path) -> None:
    """A catalog without categories: the anchor's three best complements are lunch bags; the
    bundle takes the best one and goes on to another type (what a build fills product_type with)."""
    from tiein.bundles import bundle
    from tiein.graph import open_store
    from tiein.model import GraphData

    titles = {
        "A": "PICNIC BASKET WICKER",
        "L1": "LUNCH BAG RED RETROSPOT",
        "L2": "LUNCH BAG PINK POLKADOT",
        "L3": "LUNCH BAG SUKI DESIGN",
        "M": "PINK RETROSPOT MUG",
    }
    types = {"A": "picnic basket", "L1": "lunch bag", "L2": "lunch bag", "L3": "lunch bag", "M": "mug"}
    products = [
        {"product_id": p, "title": t, "price": 10.0, "stock": 5, "product_type": types[p]}
        for p, t in titles.items()
    ]
    rels = [
        {"src": "A", "dst": d, "kind": "complement", "score": s, "n_ab": 5, "evidence": "{}"}
        for d, s in (("L1", 0.9), ("L2", 0.8), ("L3", 0.7), ("M", 0.5))
    ]
    s = open_store(tmp_path / "graph")
    try:
        s.replace(
            GraphData(
                products=pa.Table.from_pylist(products, schema=PRODUCTS),
                relations=pa.Table.from_pylist(rels, schema=RELATIONS),
            )
        )
        b = bundle(s, "A", size=3)
        assert [i.product["product_id"] for i in b.items] == ["L1", "M"]
        assert b.skipped.get("category_taken", 0) >= 1
    finally:
        s.close()


def test_build_stores_the_product_type(tmp_path: Path) -> None:
    """The build fills product_type and every store answers it with the product."""
    from tiein.graph import open_store
    from tiein.pipeline import BuildOptions, build

    camping = Path(__file__).parent / "fixtures" / "camping"
    home = tmp_path / "home"
    build(
        BuildOptions(
            catalog=camping / "catalog.csv", orders=camping / "orders.csv", home=home, embeddings=False
        )
    )
    s = open_store(str(home / "graph"))
    try:
        assert s.product("tent")["product_type"] == "tents"  # the leaf category, lower case
        related = s.related("tent", "complement", k=3)
        assert related and all("product_type" in r for r in related)
    finally:
        s.close()


def test_a_state_written_before_product_type_still_updates(tmp_path: Path) -> None:
    """A home built by an older version (no product_type in its saved products) still takes
    `tiein update`, and the update fills the types."""
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from tiein.cli import cli
    from tiein.home import read_pointer
    from tiein.pipeline import BuildOptions, build

    camping = Path(__file__).parent / "fixtures" / "camping"
    home = tmp_path / "home"
    build(
        BuildOptions(
            catalog=camping / "catalog.csv", orders=camping / "orders.csv", home=home, embeddings=False
        )
    )
    saved = home / "gens" / str(read_pointer(home).current) / "inputs"
    for part in (saved / "products.parquet", saved / "graph" / "products.parquet"):
        t = pq.read_table(part)
        pq.write_table(t.drop_columns(["product_type"]), part)
    stock = tmp_path / "stock.csv"
    stock.write_text("product_id,stock\nchair,0\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["update", "--home", str(home), "--catalog", str(stock), "--quiet"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["related", "tent", "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["product"]["product_type"] == "tents"

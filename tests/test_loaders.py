"""Loaders: formats, encodings, mappings, cleaning counts and errors on small hand-made files;
slow tests load every shared dataset with sanity checks that catch a broken mapping."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tiein import loaders, model
from tiein.errors import ConfigError, InputError
from tiein.loaders import Mapping

FIX = Path(__file__).parent / "fixtures" / "loaders"
CATALOG_MAP = [
    "product_id=sku",
    "title=name",
    "category=dept,aisle",
    "brand=maker",
    "catalog.price=price",
    "stock=stock",
    "attributes=color",
]


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {r["product_id"]: r for r in table.to_pylist()}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- catalog, hierarchy, mapping


def test_catalog_csv_hierarchy_prices_and_duplicates() -> None:
    got = loaders.load_files(catalog=FIX / "catalog.csv", orders=None, mapping=Mapping.from_cli(CATALOG_MAP))
    assert got.products.schema == model.PRODUCTS
    assert got.orders.schema == model.ORDERS and got.orders.num_rows == 0
    p = rows_by_id(got.products)
    assert list(p) == ["P1", "P2", "P3", "P4"]
    assert p["P1"]["title"] == "Espresso cup"  # the first of the two P1 rows wins
    assert p["P1"]["price"] == 1250.0 and p["P2"]["price"] == 4.5 and p["P4"]["price"] is None
    assert p["P1"]["category_path"] == "Kitchen > Cups" and p["P1"]["category"] == "Cups"
    assert p["P3"]["category_path"] == "Home > Textiles"
    assert p["P4"]["category"] is None and p["P4"]["category_path"] is None
    assert p["P1"]["brand"] == "Acme" and p["P3"]["brand"] is None
    assert p["P1"]["stock"] == 3 and p["P2"]["stock"] is None
    assert json.loads(p["P1"]["attributes"]) == {"color": "white"}
    assert p["P3"]["attributes"] is None
    assert got.report.duplicate_products == 1
    assert got.report.files[0].rows == 5 and got.report.files[0].delimiter == ","


def test_mapping_from_yaml_json_and_cli_agree(tmp_path: Path) -> None:
    yaml_file = write(
        tmp_path / "m.yaml",
        "catalog:\n  product_id: sku\n  title: name\n  category: [dept, aisle]\n  brand: maker\n"
        "  price: price\n  stock: stock\n  attributes: [color]\n",
    )
    json_file = write(
        tmp_path / "m.json",
        json.dumps(
            {
                "catalog": {
                    "product_id": "sku",
                    "title": "name",
                    "category": ["dept", "aisle"],
                    "brand": "maker",
                    "price": "price",
                    "stock": "stock",
                    "attributes": ["color"],
                }
            }
        ),
    )
    a = Mapping.from_file(yaml_file)
    assert a.catalog == Mapping.from_file(json_file).catalog == Mapping.from_cli(CATALOG_MAP).catalog
    assert a.catalog.category == ["dept", "aisle"]


def test_mapping_cli_flat_keys_fill_every_section_and_dotted_keys_one() -> None:
    m = Mapping.from_cli(
        [
            "product_id=StockCode",
            "orders.title=Description",
            "delimiter=tab",
            "giant_basket=9",
            "exclude=^POST$",
            "timestamp=Date,Time",
        ]
    )
    assert m.catalog.product_id == m.orders.product_id == m.views.product_id == "StockCode"
    assert m.orders.title == "Description" and m.catalog.title is None
    assert m.orders.timestamp == ["Date", "Time"] == m.views.timestamp
    assert m.options.giant_basket == 9 and m.options.exclude_product_regex == "^POST$"


@pytest.mark.parametrize(
    "pairs, needle",
    [
        (["colour=x"], "unknown field"),
        (["product_id"], "expected field=column"),
        (["giant_basket=many"], "whole number"),
        (["exclude=("], "invalid regular expression"),
        (["zero_price=maybe"], "keep, drop"),
        (["shop.title=x"], "unknown section"),
    ],
)
def test_mapping_cli_rejects_bad_pairs(pairs: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Mapping.from_cli(pairs)


def test_shipped_mappings_parse() -> None:
    for name in loaders.DATASETS:
        m = loaders.mapping.ready_mapping(name)
        assert m.files, name


# ---------------------------------------------------------------- formats and encodings


CSV_TEXT = "id,title,category,price\n1,毛巾 towel,家居/浴室,12.5\n2,杯子,家居/厨房,3\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_text_encodings_detected(tmp_path: Path, encoding: str) -> None:
    f = write(tmp_path / "c.csv", CSV_TEXT, encoding)
    got = loaders.load_files(catalog=f, orders=None, mapping=Mapping.from_cli(["category_sep=/"]))
    p = rows_by_id(got.products)
    assert p["1"]["title"] == "毛巾 towel" and p["2"]["category_path"] == "家居 > 厨房"
    assert p["2"]["category"] == "厨房" and p["1"]["price"] == 12.5
    expected = {
        "utf-8": "utf-8",
        "utf-8-sig": "utf-8-sig",
        "gbk": "gb18030",
        "gb18030": "gb18030",
        "utf-16": "utf-16",
    }
    assert got.report.files[0].encoding == expected[encoding]


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiter_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = "id;title;price\n1;Mug, red;2.5\n2;Plate;3\n".replace(";", delimiter)
    if delimiter == ",":
        text = 'id,title,price\n1,"Mug, red",2.5\n2,Plate,3\n'
    f = write(tmp_path / "c.txt", text)
    got = loaders.load_files(catalog=f, orders=None)
    assert got.report.files[0].delimiter == delimiter
    assert rows_by_id(got.products)["1"]["title"] == "Mug, red"


def test_json_lines_gz_with_list_category(tmp_path: Path) -> None:
    lines = [
        {"asin": "A", "title": "Card", "category": ["Gift Cards", "Gift Cards", "Birthday"], "price": 25},
        {"asin": "B", "title": "Box", "category": [], "price": None},
    ]
    f = tmp_path / "meta.jsonl.gz"
    f.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    got = loaders.load_files(
        catalog=f, orders=None, mapping=Mapping.from_cli(["product_id=asin", "category=category"])
    )
    p = rows_by_id(got.products)
    assert p["A"]["category_path"] == "Gift Cards > Birthday"  # repeated level removed
    assert p["A"]["category"] == "Birthday" and p["A"]["price"] == 25.0
    assert p["B"]["category_path"] is None


def test_parquet_orders_typed_columns(tmp_path: Path) -> None:
    f = tmp_path / "o.parquet"
    pq.write_table(
        pa.table(
            {
                "order": [1, 1, 2],
                "sku": ["x", "y", "x"],
                "qty": [1.0, 2.0, 5.0],
                "customer": [17850.0, 17850.0, float("nan")],
                "at": pa.array(
                    [dt.datetime(2021, 1, 1, 8), dt.datetime(2021, 1, 1, 8), dt.datetime(2021, 1, 2)],
                    pa.timestamp("ns"),
                ),
            }
        ),
        f,
    )
    m = Mapping.from_cli(
        ["order_id=order", "product_id=sku", "quantity=qty", "customer=customer", "timestamp=at"]
    )
    got = loaders.load_files(catalog=None, orders=f, mapping=m)
    assert got.orders.schema == model.ORDERS
    assert got.orders.to_pylist()[0] == {
        "order_id": "1",
        "product_id": "x",
        "quantity": 1.0,
        "customer_id": "17850",
        "ts": dt.datetime(2021, 1, 1, 8),
    }
    assert got.orders.column("customer_id").to_pylist()[2] is None
    assert got.products.column("product_id").to_pylist() == ["x", "y"]
    assert got.report.products_derived_from == "orders"


def test_xlsx_catalog(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sku", "name", "price", "stock"])
    ws.append([101, "Kettle", 19.9, 4])
    ws.append([None, None, None, None])  # a blank spreadsheet row is skipped
    ws.append([102, "Toaster", "¥25", 0])
    ws.append([103, "Lamp", "n/a", 1])
    f = tmp_path / "c.xlsx"
    wb.save(f)
    m = Mapping.from_cli(["product_id=sku", "title=name", "price=price", "stock=stock"])
    with pytest.raises(InputError) as err:  # the row number is the spreadsheet's own (header = 1)
        loaders.load_files(catalog=f, orders=None, mapping=m)
    assert (err.value.row, err.value.column) == (5, "price")
    ws.delete_rows(5)
    wb.save(f)
    p = rows_by_id(loaders.load_files(catalog=f, orders=None, mapping=m).products)
    assert p["101"]["price"] == 19.9 and p["102"]["price"] == 25.0 and p["102"]["stock"] == 0


def test_views_with_epoch_times_and_unknown_products() -> None:
    m = Mapping.from_cli(
        [*CATALOG_MAP, "views.session=user", "views.product_id=item", "views.timestamp=when", "event=action"]
    )
    got = loaders.load_files(catalog=FIX / "catalog.csv", orders=None, views=FIX / "views.csv", mapping=m)
    assert got.views.schema == model.VIEWS
    v = got.views.to_pylist()
    assert [r["product_id"] for r in v] == ["P1", "P2", "P3"]
    assert v[0]["ts"] == dt.datetime(2021, 1, 1, 0, 0) and v[1]["event"] == "cart" and v[2]["event"] == "view"
    assert got.report.unknown_product_lines == 1 and got.report.sessions == 2


def test_basket_per_line(tmp_path: Path) -> None:
    f = write(tmp_path / "baskets.csv", "milk,bread\n\nbeer , milk,milk\n")
    got = loaders.load_files(catalog=None, orders=f, mapping=Mapping.from_cli(["basket_per_line=true"]))
    o = got.orders.to_pylist()
    assert [(r["order_id"], r["product_id"], r["quantity"]) for r in o] == [
        ("1", "bread", 1.0),
        ("1", "milk", 1.0),
        ("3", "beer", 1.0),
        ("3", "milk", 2.0),
    ]  # order lines come in file order; within one line by product id
    assert got.report.merged_duplicate_lines == 1 and got.report.blank_product_ids == 1


def test_progress_is_reported() -> None:
    seen: list[tuple[str, int, int]] = []
    loaders.load_files(
        catalog=FIX / "catalog.csv",
        orders=None,
        mapping=Mapping.from_cli(CATALOG_MAP),
        progress=lambda s, d, t: seen.append((s, d, t)),
    )
    assert seen[0][0] == "read catalog" and seen[-1][1] == seen[-1][2]


# ---------------------------------------------------------------- order cleaning report (checked by hand)


def test_order_cleaning_counts_on_hand_made_file() -> None:
    got = loaders.load_files(
        catalog=None, orders=FIX / "shop_orders.csv", mapping=Mapping.from_file(FIX / "shop_orders.yaml")
    )
    r = got.report
    assert r.files[0].rows == 16
    assert (r.excluded_lines, r.excluded_codes) == (2, {"POST": 2})
    assert (r.zero_quantity_lines, r.zero_price_lines) == (1, 1)
    assert (r.cancellation_lines, r.cancelled_quantity, r.netted_quantity) == (2, 3.0, 1.0)
    assert (r.unmatched_cancellation_lines, r.purchase_lines_cancelled) == (1, 1)
    assert r.merged_duplicate_lines == 1
    assert (r.giant_baskets, r.giant_basket_lines, r.empty_baskets) == (1, 3, 1)
    lines = [
        (o["order_id"], o["product_id"], o["quantity"], o["customer_id"]) for o in got.orders.to_pylist()
    ]
    assert lines == [
        ("1001", "A1", 2.0, "c1"),
        ("1001", "B2", 1.0, "c1"),
        ("1002", "A1", 4.0, "c2"),
        ("1002", "B2", 3.0, "c2"),
        ("1006", "C3", 2.0, "c3"),
    ]
    assert (r.orders, r.order_lines, r.customers) == (3, 5, 3)
    p = rows_by_id(got.products)
    assert list(p) == ["A1", "B2", "C3", "D4", "E5"]
    assert p["A1"]["title"] == "Red mug" and p["A1"]["price"] == 3.5 and p["C3"]["price"] == 2.0
    assert got.orders.column("ts").to_pylist()[0] == dt.datetime(2021, 1, 5, 10, 0)
    text = "\n".join(r.lines())
    assert "1 giant orders (> 2 products, 3 lines) dropped" in text
    assert json.loads(json.dumps(r.to_dict()))["cancellation_lines"] == 2


def test_unknown_products_in_orders_are_dropped_and_counted(tmp_path: Path) -> None:
    orders = write(tmp_path / "o.csv", "order_id,sku\n1,P1\n1,NOPE\n2,NOPE\n2,P2\n3,NOPE\n")
    got = loaders.load_files(
        catalog=FIX / "catalog.csv",
        orders=orders,
        mapping=Mapping.from_cli([*CATALOG_MAP, "orders.product_id=sku"]),
    )
    assert (got.report.unknown_product_lines, got.report.unknown_product_ids) == (3, 1)
    assert got.report.empty_baskets == 1 and got.orders.num_rows == 2


# ---------------------------------------------------------------- bad input: file, row, column


def raises(
    catalog: Path | None = None,
    orders: Path | None = None,
    views: Path | None = None,
    mapping: Mapping | None = None,
) -> InputError:
    with pytest.raises(InputError) as err:
        loaders.load_files(catalog=catalog, orders=orders, views=views, mapping=mapping)
    return err.value


def test_missing_mapped_column_lists_the_columns() -> None:
    e = raises(catalog=FIX / "catalog.csv", mapping=Mapping.from_cli(["product_id=SKU"]))
    assert e.column == "SKU" and str(e.file).endswith("catalog.csv") and e.row is None
    assert "sku, name, dept" in e.reason


def test_no_product_id_column_at_all(tmp_path: Path) -> None:
    e = raises(catalog=write(tmp_path / "c.csv", "code,name\n1,a\n"))
    assert "catalog.product_id" in e.reason and "code, name" in e.reason


def test_unparsable_price_names_row_and_column(tmp_path: Path) -> None:
    f = write(tmp_path / "c.csv", "id,price\n1,2.50\n2,3\n3,about 4\n4,5\n")
    e = raises(catalog=f)
    assert (e.row, e.column) == (4, "price")  # header = row 1, so the 3rd data row is row 4
    assert "about 4" in str(e) and str(f) in str(e)


def test_unparsable_quantity(tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", "order_id,product_id,quantity\n1,a,1\n1,b,two\n")
    e = raises(orders=f, mapping=Mapping.from_cli(["quantity=quantity"]))
    assert (e.row, e.column) == (3, "quantity")


def test_unparsable_timestamp(tmp_path: Path) -> None:
    f = write(
        tmp_path / "o.csv", "order_id,product_id,Date,Time\n1,a,2021-01-02,10:00\n2,b,2021-01-03,soon\n"
    )
    e = raises(orders=f, mapping=Mapping.from_cli(["timestamp=Date,Time"]))
    assert (e.row, e.column) == (3, "Date,Time") and "2021-01-03 soon" in e.reason


def test_negative_price(tmp_path: Path) -> None:
    e = raises(catalog=write(tmp_path / "c.csv", "id,price\n1,-2\n"))
    assert (e.row, e.column) == (2, "price")


def test_undecodable_bytes(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes(b"id,title\n1,ok\n2,bad\x80\x80\n")
    e = raises(catalog=f)
    assert e.row == 3 and "undecodable" in e.reason and e.file == str(f)


def test_forced_encoding_is_used(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes("id,title\n1,café\n".encode("latin-1"))
    got = loaders.load_files(catalog=f, orders=None, mapping=Mapping.from_cli(["encoding=latin-1"]))
    assert got.products.column("title").to_pylist() == ["café"]


@pytest.mark.parametrize("content", [b"", b"   \n", b"id,title\n"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes(content)
    e = raises(catalog=f)
    assert e.file == str(f) and ("empty" in e.reason or "no data rows" in e.reason)


@pytest.mark.parametrize("name, content", [("c.bin", b"\x00\x01\x02binary"), ("c.xls", b"\xd0\xcf\x11\xe0")])
def test_unknown_format(tmp_path: Path, name: str, content: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    e = raises(catalog=f)
    assert e.file == str(f) and ("unknown file format" in e.reason or ".xls" in e.reason)


def test_malformed_csv_line(tmp_path: Path) -> None:
    e = raises(catalog=write(tmp_path / "c.csv", "id,title\n1,a\n2,b,extra\n"))
    assert e.row == 3 and "expected 2 fields, found 3" in e.reason


def test_bad_json_line(tmp_path: Path) -> None:
    e = raises(catalog=write(tmp_path / "c.jsonl", '{"product_id": "1"}\n{"product_id": \n'))
    assert e.row == 2 and "invalid JSON" in e.reason


def test_missing_file(tmp_path: Path) -> None:
    e = raises(catalog=tmp_path / "nope.csv")
    assert "not found" in e.reason


def test_nothing_to_load() -> None:
    with pytest.raises(ConfigError):
        loaders.load_files(catalog=None, orders=None)


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="ready datasets"):
        loaders.load_dataset("nope")


# ---------------------------------------------------------------- the shared datasets


def data_dir() -> Path:
    d = loaders.default_data_dir()
    if not (d / "README.md").exists():
        pytest.skip(f"shared data not found at {d}")
    return d


def timed(name: str) -> loaders.Loaded:
    t = time.perf_counter()
    got = loaders.load_dataset(name, data_dir())
    print(f"\n{name}: loaded in {time.perf_counter() - t:.2f} s")
    assert got.products.schema == model.PRODUCTS and got.orders.schema == model.ORDERS
    assert got.views.schema == model.VIEWS and got.listed_pairs.schema == model.LISTED_PAIRS
    assert got.products.column("product_id").null_count == 0
    assert len(got.products.column("product_id").unique()) == got.products.num_rows
    assert got.products.column("title").null_count == 0
    if got.orders.num_rows:
        ids = set(got.products.column("product_id").to_pylist())
        assert set(got.orders.column("product_id").unique().to_pylist()) <= ids
        assert min(got.orders.column("quantity").to_pylist()) > 0
    return got


@pytest.mark.slow
def test_dataset_online_retail() -> None:
    got = timed("online_retail")
    r = got.report
    assert 3_900 <= r.products <= 4_100
    assert r.cancellation_lines > 8_000 and r.netted_quantity > 0 and r.excluded_lines > 2_500
    assert {"POST", "DOT", "M"} <= set(r.excluded_codes)
    assert 18_000 < r.orders < 26_000 and 4_000 < r.customers <= 4_372
    p = rows_by_id(got.products)
    assert p["85123A"]["title"] == "WHITE HANGING HEART T-LIGHT HOLDER" and 2 < p["85123A"]["price"] < 4
    assert "POST" not in p
    assert got.orders.column("ts").null_count == 0
    assert r.seconds < 10


@pytest.mark.slow
def test_dataset_instacart() -> None:
    got = timed("instacart")
    assert got.products.num_rows == 49_688
    assert len(got.products.column("category").unique()) == 134
    assert len(got.products.column("category_path").unique()) == 134
    p = rows_by_id(got.products)
    assert p["1"]["category_path"] == "snacks > cookies cakes"
    assert got.report.orders == 19_849  # the cut last order is dropped
    assert got.orders.column("order_id").to_pylist()[-1] != "21114"


@pytest.mark.slow
def test_dataset_groceries() -> None:
    got = timed("groceries")
    assert got.products.num_rows == 169 and got.report.orders == 9_835
    assert "whole milk" in set(got.products.column("title").to_pylist())


@pytest.mark.slow
def test_dataset_groceries_zh() -> None:
    got = timed("groceries_zh")
    assert got.products.num_rows == 169 and got.report.files[0].encoding == "gb18030"
    assert 9_800 <= got.report.orders <= 9_835
    cats = set(got.products.column("category").to_pylist())
    assert "酒精饮料" in cats and len(cats) >= 10


@pytest.mark.slow
def test_dataset_taobao_makeup() -> None:
    got = timed("taobao_makeup")
    assert 3_400 <= got.products.num_rows <= 3_600
    titles = got.products.column("title").to_pylist()
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in titles) > 0.9 * len(titles)
    brands = set(got.products.column("brand").to_pylist())
    assert len(brands) == 22 and "自然堂" in brands
    assert got.report.older_snapshot_rows > 20_000
    p = rows_by_id(got.products)["A18164178225"]
    assert json.loads(p["attributes"])["brand_en"] == "CHANDO" and p["price"] > 0


@pytest.mark.slow
def test_dataset_amazon_gift_cards() -> None:
    got = timed("amazon_gift_cards")
    assert got.products.num_rows == 1_547
    kinds = got.report.listed_pairs
    assert kinds["co_purchase"] > 1_000 and kinds["co_view"] > 1_000
    ids = set(got.products.column("product_id").to_pylist())
    pairs = got.listed_pairs.to_pylist()
    assert all(x["src"] in ids and x["dst"] in ids and x["src"] != x["dst"] for x in pairs)
    assert got.report.dropped_listed_pairs > 0
    paths = set(got.products.column("category_path").to_pylist())
    assert "Gift Cards" in paths and not any(p and ("<" in p or len(p) > 80) for p in paths)
    prices = [x for x in got.products.column("price").to_pylist() if x is not None]
    assert prices and all(0 < x < 5_000 for x in prices)
    assert not any("&#39;" in t for t in got.products.column("title").to_pylist())


@pytest.mark.slow
def test_dataset_bread_basket() -> None:
    got = timed("bread_basket")
    assert got.report.excluded_codes == {"NONE": 786}
    assert "NONE" not in set(got.products.column("product_id").to_pylist())
    assert 90 <= got.products.num_rows <= 95 and 9_000 < got.report.orders <= 9_531
    assert got.orders.column("ts").to_pylist()[0] == dt.datetime(2016, 10, 30, 9, 58, 11)

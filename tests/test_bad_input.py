"""Bad input, as a careless user or an attacker gives it: every mode must end with exit != 0, one
``error:`` line naming the file (and row/column where there is one) or the option, no traceback,
and the previous graph answering exactly as before.

A good graph is built once from tests/fixtures/shop (no embeddings: fast); every bad build then
runs into the same home, in-process through ``tiein.cli.main`` (the real error boundary, as the
console script runs it); a representative few also run as a subprocess. The files are generated
here, small and fast: the bombs are a few kilobytes that would inflate past the caps.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_inprocess import Result, run_cli

SHOP = Path(__file__).parent / "fixtures" / "shop"
CATALOG = SHOP / "catalog.csv"
ORDERS = SHOP / "orders.csv"
HEADER = "product_id,title,category,brand,price,stock\n"
GOOD_ROWS = CATALOG.read_text(encoding="utf-8").split("\n", 1)[1]


tiein = run_cli


def tiein_subprocess(*args: str, home: Path) -> Result:
    env = dict(os.environ, TIEIN_HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("TIEIN_STORE", None)
    env.pop("TIEIN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tiein.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_refused(res: Result, *names: str) -> None:
    """Exit != 0, exactly one ``error:`` line on stderr naming every one of ``names``, no
    traceback, and not the last-resort ``internal error`` (that would be an unhandled bug)."""
    assert res.code != 0, f"accepted (exit 0):\n{res.out}\n{res.err}"
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    assert len(res.lines) == 1, f"expected one line on stderr, got:\n{res.err}"
    line = res.lines[0]
    assert line.startswith("error: "), line
    assert "internal error" not in line, line
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"


def snapshot(home: Path) -> tuple[dict, dict, dict]:
    stats = tiein("stats", "--json", home=home)
    assert stats.code == 0, stats.err
    answers = []
    for pid in ("phone_x", "tent"):
        got = tiein("related", pid, "--json", home=home)
        assert got.code == 0, got.err
        answers.append(json.loads(got.out))
    return json.loads(stats.out), answers[0], answers[1]


@pytest.fixture(scope="module")
def good_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[dict, dict, dict]]:
    home = tmp_path_factory.mktemp("good")
    res = tiein(
        "build", "--catalog", str(CATALOG), "--orders", str(ORDERS), "--no-embeddings", "--quiet", home=home
    )
    assert res.code == 0, res.err
    before = snapshot(home)
    assert before[0]["nodes"]["Product"] == 8 and before[1]["related"]
    return home, before


# ------------------------------------------------------------------ bad files, generated


def _write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsx_with(member: str, data: bytes | None, *, drop: bool = False) -> bytes:
    """A good workbook with ``member`` replaced by ``data`` (or dropped)."""
    good = zipfile.ZipFile(io.BytesIO(_xlsx_bytes([["product_id", "title"], ["a", "A"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in good.infolist():
            if info.filename == member:
                if not drop:
                    z.writestr(member, data or b"", compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            else:
                z.writestr(info, good.read(info.filename))
    return out.getvalue()


def _sheet_bomb() -> bytes:
    """sheet1.xml inflating to 40 MiB from ~40 KB (ratio ~1000): refused before openpyxl opens it."""
    body = b'<?xml version="1.0"?><worksheet><sheetData>' + b" " * (40 << 20) + b"</sheetData></worksheet>"
    return _xlsx_with("xl/worksheets/sheet1.xml", body)


def _gz_bomb() -> bytes:
    return gzip.compress(HEADER.encode() + b"0" * (40 << 20), compresslevel=1)


def _nested_json(depth: int = 100_000) -> str:
    return '{"product_id": "a", "title": "A", "x": ' + "[" * depth + "]" * depth + "}\n"


def _big5_catalog() -> bytes:
    rows = [
        "product_id,title",
        "e1,無線藍牙耳機 降噪 長續航",
        "e2,運動鞋 男款 透氣 輕量",
        "e3,保溫杯 不鏽鋼 大容量",
    ]
    return "\n".join(rows).encode("big5") + b"\n"


def _mixed_catalog() -> bytes:
    return (
        "product_id,title\na,无线蓝牙耳机 降噪\nb,运动鞋 男款 透气\n".encode()
        + "c,保温杯 不锈钢 大容量\nd,护手霜 滋润 保湿\n".encode("gbk")
    )


def _utf16_no_bom() -> bytes:
    return (HEADER + GOOD_ROWS).encode("utf-16-le")


def _garbage() -> bytes:
    return bytes((i * 7919 + 13) % 256 for i in range(20_000))


def _garbage_no_nul() -> bytes:
    return bytes(b or 0x80 for b in _garbage())


def _catalog_with(row: str) -> str:
    return HEADER + GOOD_ROWS + row + "\n"


Args = Callable[[Path], list[str]]


def _build(catalog: Path | str | None = None, orders: Path | str | None = ORDERS, *extra: str) -> list[str]:
    args = ["build", "--no-embeddings", "--quiet"]
    if catalog is not None:
        args += ["--catalog", str(catalog)]
    if orders is not None:
        args += ["--orders", str(orders)]
    return [*args, *extra]


def _file(name: str, data: Callable[[], bytes | str]) -> Callable[[Path], Path]:
    return lambda tmp: _write(tmp / name, data())


def _fifo(tmp: Path) -> Path:
    path = tmp / "catalog.fifo.csv"
    os.mkfifo(path)
    return path


# id -> (args from a temp folder, what the error line must name, environment)
MODES: dict[str, tuple[Args, tuple[str, ...], dict[str, str]]] = {}


def mode(name: str, args: Args, *names: str, **env: str) -> None:
    MODES[name] = (args, names, env)


def catalog_mode(name: str, filename: str, data: Callable[[], bytes | str], *names: str, **env: str) -> None:
    mode(name, lambda tmp: _build(_file(filename, data)(tmp)), filename, *names, **env)


# special files and missing files
mode("catalog-missing", lambda tmp: _build(tmp / "nope.csv"), "nope.csv", "not found")
mode("catalog-directory", lambda tmp: _build(tmp), "--catalog", "is a directory")
mode("orders-directory", lambda tmp: _build(CATALOG, tmp), "--orders", "is a directory")
mode("catalog-dev-zero", lambda tmp: _build("/dev/zero"), "/dev/zero", "not a regular file")
mode("orders-dev-zero", lambda tmp: _build(CATALOG, "/dev/zero"), "/dev/zero", "not a regular file")
mode("catalog-fifo", lambda tmp: _build(_fifo(tmp)), "catalog.fifo.csv", "FIFO")
mode(
    "catalog-over-size-cap",
    lambda tmp: _build(_file("big.csv", lambda: _catalog_with("x," + "y" * 3_000_000))(tmp)),
    "big.csv",
    "limit",
    TIEIN_MAX_INPUT_MB="1",
)
# empty and near-empty
catalog_mode("empty-file", "empty.csv", lambda: "", "empty")
catalog_mode("blank-lines-only", "blank.csv", lambda: "\n\n  \n", "empty")
catalog_mode("header-only", "header.csv", lambda: HEADER, "no data rows")
catalog_mode("header-only-jsonl", "header.jsonl", lambda: "\n", "empty")
# binary and encodings
catalog_mode("binary-garbage", "garbage.csv", _garbage, "row")
catalog_mode("binary-garbage-no-nul", "garbage2.csv", _garbage_no_nul, "row")
catalog_mode("binary-no-extension", "garbage", _garbage, "unknown file format")
catalog_mode("utf16-without-bom", "utf16.csv", _utf16_no_bom, "row 1", "UTF-16")
catalog_mode("mixed-utf8-gbk", "mixed.csv", _mixed_catalog, "row 4", "mixed encodings", "gb18030", "big5")
catalog_mode(
    "latin1-not-chinese",
    "latin1.csv",
    lambda: "product_id,title\na,Crème brûlée élan\nb,Façade déjà vu\n".encode("latin-1"),
    "encoding",
)
mode("unknown-encoding-option", lambda tmp: _build(CATALOG, ORDERS, "--map", "encoding=klingon"), "klingon")
mode(
    "wrong-encoding-option",
    lambda tmp: _build(
        _file("gbk.csv", lambda: _mixed_catalog()[40:])(tmp), ORDERS, "--map", "encoding=ascii"
    ),
    "gbk.csv",
    "ascii",
)
# limits
catalog_mode(
    "very-long-line", "long.csv", lambda: _catalog_with('x,"' + "y" * (5 << 20) + '"'), "row 10", "limit"
)
catalog_mode(
    "too-many-columns",
    "wide.csv",
    lambda: ",".join(f"c{i}" for i in range(20_000)) + "\n" + "1," * 19_999 + "1\n",
    "columns",
    "limit",
)
catalog_mode(
    "id-too-long", "longid.csv", lambda: _catalog_with("x" * 5000 + ",t,c,b,1,1"), "row 10", "product_id"
)
catalog_mode("gz-bomb", "bomb.csv.gz", _gz_bomb, "decompress")
catalog_mode("gz-truncated", "cut.csv.gz", lambda: gzip.compress((HEADER + GOOD_ROWS).encode())[:-20], "gzip")
catalog_mode("xlsx-zip-bomb", "bomb.xlsx", _sheet_bomb, "sheet1.xml", "decompress")
catalog_mode(
    "xlsx-over-size-cap",
    "cap.xlsx",
    lambda: _xlsx_with("xl/worksheets/sheet1.xml", os.urandom(1_500_000)),
    "limit",
    TIEIN_MAX_INPUT_MB="1",
)
catalog_mode(
    "xlsx-broken-content-types",
    "ct.xlsx",
    lambda: _xlsx_with("[Content_Types].xml", b"<Types garbage"),
    "not a readable XLSX",
)
catalog_mode(
    "xlsx-no-content-types",
    "noct.xlsx",
    lambda: _xlsx_with("[Content_Types].xml", None, drop=True),
    "not a readable XLSX",
)
catalog_mode(
    "xlsx-broken-sheet-xml",
    "sheet.xlsx",
    lambda: _xlsx_with("xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row>"),
    "not a readable XLSX",
)
catalog_mode("xlsx-not-a-zip", "fake.xlsx", lambda: b"PK\x03\x04" + _garbage(), "XLSX")
catalog_mode("xls-old-excel", "old.xls", lambda: b"\xd0\xcf\x11\xe0" + _garbage(), ".xls")
catalog_mode("parquet-garbage", "fake.parquet", lambda: b"PAR1" + _garbage(), "Parquet")
# JSON
catalog_mode("json-deeply-nested", "nested.jsonl", _nested_json, "row 1", "nested")
catalog_mode("json-nested-array-file", "nested.json", lambda: "[" * 100_000 + "]" * 100_000, "nested")
catalog_mode(
    "json-invalid-line",
    "bad.jsonl",
    lambda: '{"product_id": "a", "title": "A"}\n{"product_id": "b",\n',
    "row 2",
)
catalog_mode(
    "json-line-not-object", "list.jsonl", lambda: '{"product_id": "a", "title": "A"}\n[1, 2]\n', "row 2"
)
catalog_mode(
    "json-nan-price",
    "nan.jsonl",
    lambda: (
        '{"product_id": "a", "title": "A", "price": 1}\n{"product_id": "b", "title": "B", "price": NaN}\n'
    ),
    "row 2",
    "NaN",
)
# values
catalog_mode("stock-1e23", "stock.csv", lambda: _catalog_with("x,X,c,b,1,1e23"), "row 10", "'stock'", "1e23")
catalog_mode(
    "negative-price", "neg.csv", lambda: _catalog_with("x,X,c,b,-5,1"), "row 10", "'price'", "negative"
)
catalog_mode("infinite-price", "inf.csv", lambda: _catalog_with("x,X,c,b,inf,1"), "row 10", "'price'")
catalog_mode("price-not-a-number", "abc.csv", lambda: _catalog_with("x,X,c,b,abc,1"), "row 10", "'price'")
catalog_mode("ragged-row", "ragged.csv", lambda: _catalog_with("x,X,c,b,1,1,extra,more"), "row 10")
catalog_mode(
    "duplicate-column-names",
    "dup.csv",
    lambda: "product_id,title,title\na,A,B\n",
    "duplicate column",
    "'title'",
)
mode(
    "orders-bad-timestamp",
    lambda tmp: _build(CATALOG, _file("ts.csv", lambda: "order_id,product_id,ts\no1,case,yesterday\n")(tmp)),
    "ts.csv",
    "row 2",
    "date",
)
mode(
    "orders-epoch-1e30",
    lambda tmp: _build(
        CATALOG, _file("ts.jsonl", lambda: '{"order_id": "o1", "product_id": "case", "ts": 1e30}\n')(tmp)
    ),
    "ts.jsonl",
    "row 1",
)
mode(
    "orders-quantity-text",
    lambda tmp: _build(CATALOG, _file("q.csv", lambda: "order_id,product_id,quantity\no1,case,lots\n")(tmp)),
    "q.csv",
    "row 2",
    "quantity",
)
# mappings and options
mode("map-unknown-field", lambda tmp: _build(CATALOG, ORDERS, "--map", "colour=title"), "colour")
mode("map-without-equals", lambda tmp: _build(CATALOG, ORDERS, "--map", "product_id"), "product_id")
mode(
    "map-missing-column",
    lambda tmp: _build(CATALOG, ORDERS, "--map", "catalog.product_id=sku_nope"),
    "sku_nope",
    "catalog.csv",
)
mode(
    "map-bad-regex",
    lambda tmp: _build(CATALOG, ORDERS, "--map", "exclude_product_regex=(?<=x)y"),
    "exclude_product_regex",
)
mode(
    "mapping-file-missing",
    lambda tmp: _build(CATALOG, ORDERS, "--mapping", str(tmp / "nope.yaml")),
    "nope.yaml",
)
mode("mapping-file-directory", lambda tmp: _build(CATALOG, ORDERS, "--mapping", str(tmp)), "--mapping")
mode("mapping-file-dev-zero", lambda tmp: _build(CATALOG, ORDERS, "--mapping", "/dev/zero"), "/dev/zero")
mode(
    "mapping-file-invalid-yaml",
    lambda tmp: _build(CATALOG, ORDERS, "--mapping", str(_file("m.yaml", lambda: "a: [b\n")(tmp))),
    "m.yaml",
)
mode(
    "mapping-file-unknown-field",
    lambda tmp: _build(
        CATALOG, ORDERS, "--mapping", str(_file("u.yaml", lambda: "catalog:\n  colour: x\n")(tmp))
    ),
    "u.yaml",
    "colour",
)
mode("threads-0", lambda tmp: _build(CATALOG, ORDERS, "--threads", "0"), "--threads")
mode("threads-negative", lambda tmp: _build(CATALOG, ORDERS, "--threads", "-1"), "--threads")
mode("threads-not-a-number", lambda tmp: _build(CATALOG, ORDERS, "--threads", "many"), "--threads")
mode("min-count-0", lambda tmp: _build(CATALOG, ORDERS, "--min-count", "0"), "--min-count")
mode("max-basket-1", lambda tmp: _build(CATALOG, ORDERS, "--max-basket", "1"), "--max-basket")
mode("after-window-negative", lambda tmp: _build(CATALOG, ORDERS, "--after-window", "-3"), "--after-window")
mode("unknown-option", lambda tmp: _build(CATALOG, ORDERS, "--frobnicate"), "--frobnicate")
mode("dataset-and-files", lambda tmp: [*_build(CATALOG, ORDERS), "--dataset", "groceries"], "--dataset")
mode("nothing-to-build", lambda tmp: ["build", "--quiet"], "--dataset")
mode("unknown-dataset", lambda tmp: ["build", "--dataset", "nope"], "--dataset")
mode(
    "data-dir-missing",
    lambda tmp: ["build", "--dataset", "groceries", "--data-dir", str(tmp / "nodata"), "--quiet"],
    "nodata",
)
mode("scenes-file-missing", lambda tmp: _build(CATALOG, ORDERS, "--scenes", str(tmp / "s.yaml")), "s.yaml")
mode("scenes-file-dev-zero", lambda tmp: _build(CATALOG, ORDERS, "--scenes", "/dev/zero"), "/dev/zero")
mode("scenes-file-fifo", lambda tmp: _build(CATALOG, ORDERS, "--scenes", str(_fifo(tmp))), "FIFO")
# builds that would keep nothing (the lead's validation floors)
FLOOR_MODES = {
    "all-product-ids-null": lambda tmp: _build(
        _file("nullids.csv", lambda: "product_id,title\n,A\n,B\n")(tmp), None
    ),
    "orders-unknown-products-only": lambda tmp: _build(
        CATALOG, _file("unknown.csv", lambda: "order_id,product_id\no1,zz1\no1,zz2\no2,zz1\no2,zz2\n")(tmp)
    ),
    "buyer-mapped-as-product": lambda tmp: _build(CATALOG, ORDERS, "--map", "orders.product_id=customer_id"),
}


@pytest.mark.parametrize("name", list(MODES))
def test_bad_build_is_refused_and_the_graph_kept(
    name: str, good_home: tuple[Path, tuple[dict, dict, dict]], tmp_path: Path
) -> None:
    home, before = good_home
    make_args, names, env = MODES[name]
    t0 = time.perf_counter()
    res = tiein(*make_args(tmp_path), home=home, **env)
    elapsed = time.perf_counter() - t0
    assert_refused(res, *names)
    assert elapsed < 20, f"{name} took {elapsed:.1f} s"
    assert snapshot(home) == before


@pytest.mark.parametrize("name", list(FLOOR_MODES))
def test_build_that_keeps_nothing_is_refused(
    name: str, good_home: tuple[Path, tuple[dict, dict, dict]], tmp_path: Path
) -> None:
    home, before = good_home
    res = tiein(*FLOOR_MODES[name](tmp_path), home=home)
    assert_refused(res)
    assert snapshot(home) == before


def test_there_are_forty_modes_or_more() -> None:
    assert len(MODES) + len(FLOOR_MODES) >= 40


def test_bad_update_is_refused_and_the_graph_kept(
    good_home: tuple[Path, tuple[dict, dict, dict]], tmp_path: Path
) -> None:
    home, before = good_home
    for args, names in (
        (["update", "--orders", "/dev/zero"], ("/dev/zero",)),
        (
            ["update", "--catalog", str(_write(tmp_path / "s.csv", "product_id,stock\ncase,1e23\n"))],
            ("s.csv", "row 2"),
        ),
        (["update", "--orders", str(_write(tmp_path / "m.csv", _mixed_catalog()))], ("m.csv", "mixed")),
        (["update", "--orders", str(ORDERS), "--threads", "0"], ("--threads",)),
    ):
        assert_refused(tiein(*args, "--quiet", home=home), *names)
    assert snapshot(home) == before


# ------------------------------------------------------------------ accepted with care


def test_big5_catalog_is_read_as_big5(tmp_path: Path) -> None:
    from tiein.loaders.read import read_table

    raw = read_table(_write(tmp_path / "big5.csv", _big5_catalog()))
    assert raw.encoding in ("big5", "cp950")
    assert raw.table.column("title").to_pylist()[0] == "無線藍牙耳機 降噪 長續航"


def test_gbk_catalog_is_still_read_as_gbk(tmp_path: Path) -> None:
    from tiein.loaders.read import read_table

    raw = read_table(_write(tmp_path / "gbk.csv", "product_id,title\nc,保温杯 不锈钢 大容量\n".encode("gbk")))
    assert raw.encoding == "gb18030" and raw.table.column("title").to_pylist() == ["保温杯 不锈钢 大容量"]


def test_a_one_megabyte_title_is_kept_whole_and_embedded_cut(tmp_path: Path) -> None:
    import pyarrow as pa

    from tiein.embeddings.products import MAX_TEXT_CHARS, product_texts

    title = "超长标题 " * 200_000  # 1,000,000 characters
    t0 = time.perf_counter()
    texts = product_texts(pa.table({"title": [title, "short"], "brand": ["Acme", None]}))
    assert time.perf_counter() - t0 < 2
    assert len(texts[0]) <= 2 * MAX_TEXT_CHARS + 1 and texts[1] == "short"

    home = tmp_path / "home"
    catalog = _write(tmp_path / "long_title.csv", _catalog_with('long,"' + "y" * 1_000_000 + '",c,b,1,1'))
    t0 = time.perf_counter()  # with the default encoder: it sees 512 characters, not a megabyte
    res = tiein("build", "--catalog", str(catalog), "--orders", str(ORDERS), "--quiet", home=home)
    assert res.code == 0, res.err
    assert time.perf_counter() - t0 < 60  # ~10 s, most of it loading the model (was 96 s and 6.7 GB)
    got = json.loads(tiein("related", "long", "--json", home=home).out)
    assert len(got["product"]["title"]) == 1_000_000


# ------------------------------------------------------------------ every command, bad input

EVERY_COMMAND: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("related", ["related", "no_such_product"], ("no_such_product",)),
    ("related", ["related", "phone_x", "-k", "0"], ("-k",)),
    ("related", ["related", "phone_x", "--kind", "nope"], ("--kind",)),
    ("bundle", ["bundle", "no_such_product"], ("no_such_product",)),
    ("bundle", ["bundle", "phone_x", "--size", "99"], ("--size",)),
    ("bundle", ["bundle", "phone_x", "--budget", "cheap"], ("--budget",)),
    ("addons", ["addons", "no_such_product"], ("no_such_product",)),
    ("addons", ["addons", "phone_x", "-k", "0"], ("-k",)),
    ("scenes show", ["scenes", "show", "no_such_scene"], ("no_such_scene",)),
    ("scenes discover", ["scenes", "discover", "--max-scenes", "0"], ("--max-scenes",)),
    ("scenes list", ["scenes", "list", "--store", "/dev/zero"], ("store",)),
    ("stats", ["stats", "--store", "/dev/zero"], ("store",)),
    ("cypher", ["cypher", "MATCH (p:Product RETURN p"], ("invalid Cypher",)),
    ("cypher", ["cypher", "RETURN 1", "--limit", "0"], ("--limit",)),
    ("export", ["export", "related", "--format", "csv", "--out", "/dev/zero/x.csv"], ("/dev/zero",)),
    ("export", ["export", "related", "--format", "xml", "--out", "x.xml"], ("--format",)),
    ("export-graph", ["export-graph", "--out", "/dev/zero/graph"], ("/dev/zero",)),
    ("export-graph", ["export-graph", "--format", "xml", "--out", "{tmp}/g"], ("--format",)),
    ("feedback ingest", ["feedback", "ingest", "/dev/zero"], ("/dev/zero",)),
    ("feedback ingest", ["feedback", "ingest", "{tmp}/missing.csv"], ("missing.csv",)),
    ("feedback ingest", ["feedback", "ingest", "{tmp}/garbage.csv"], ("garbage.csv",)),
    ("feedback ingest", ["feedback", "ingest", "{tmp}/empty.csv"], ("empty.csv",)),
    ("feedback ingest", ["feedback", "ingest", "{tmp}"], ("is a directory",)),
    ("feedback stats", ["feedback", "stats", "--top", "-1"], ("--top",)),
    ("report", ["report"], ("--out",)),
    ("serve", ["serve", "--port", "70000"], ("--port",)),
    ("serve", ["serve", "--workers", "0"], ("--workers",)),
    ("rollback", ["rollback", "--frobnicate"], ("--frobnicate",)),
    ("datasets", ["datasets", "extra-argument"], ("extra-argument",)),
    ("update", ["update", "--orders", "{tmp}/fifo"], ("fifo", "FIFO")),
    ("build", ["build", "--catalog", "{tmp}/garbage.csv", "--no-embeddings", "--quiet"], ("garbage.csv",)),
    ("rules import", ["rules", "import", "{tmp}/garbage.csv"], ("garbage.csv",)),
    ("rules import", ["rules", "import", "{tmp}/missing.csv"], ("missing.csv",)),
    ("rules list", ["rules", "list", "--frobnicate"], ("--frobnicate",)),
    ("rules remove", ["rules", "remove"], ("say which rules",)),
    ("search", ["search", "lunch bag", "-k", "0"], ("-k",)),
    ("lineup", ["lineup", "no_such_product", "phone_x"], ("no_such_product",)),
    ("lineup", ["lineup", "--top", "5", "--slot", "90", "--length", "30"], ("slot",)),
    ("pairings", ["pairings", "-k", "0"], ("-k",)),
    ("pairings", ["pairings", "--category", "no such category"], ("no such category",)),
    ("trending", ["trending", "--days", "0"], ("--days",)),
    ("trending", ["trending", "--at", "yesterday"], ("--at",)),
]


def _commands() -> set[str]:
    import click

    from tiein.cli import cli

    names = set()
    for name, cmd in cli.commands.items():
        if isinstance(cmd, click.Group):
            names |= {f"{name} {sub}" for sub in cmd.commands}
        else:
            names.add(name)
    return names


def test_every_command_is_walked() -> None:
    missing = _commands() - {c for c, _, _ in EVERY_COMMAND}
    assert not missing, f"commands without a bad-input case: {sorted(missing)}"


@pytest.mark.parametrize(
    ("command", "args", "names"), EVERY_COMMAND, ids=[" ".join(a) for _, a, _ in EVERY_COMMAND]
)
def test_every_command_refuses_bad_input_in_one_line(
    command: str,
    args: list[str],
    names: tuple[str, ...],
    good_home: tuple[Path, tuple[dict, dict, dict]],
    tmp_path: Path,
) -> None:
    home, before = good_home
    _write(tmp_path / "garbage.csv", _garbage())
    _write(tmp_path / "empty.csv", b"")
    os.mkfifo(tmp_path / "fifo")
    res = tiein(*[a.replace("{tmp}", str(tmp_path)) for a in args], home=home)
    if command == "cypher" and len(res.lines) > 1:  # the parser's caret under the query: one error
        res.err = res.lines[0]
    assert_refused(res, *names)
    assert snapshot(home) == before


SUBPROCESS_CASES = [
    (["build", "--catalog", "/dev/zero", "--quiet"], ("/dev/zero",)),
    (["build", "--catalog", "{tmp}/fifo", "--quiet"], ("FIFO",)),
    (["build", "--catalog", str(CATALOG), "--threads", "-1", "--quiet"], ("--threads",)),
    (
        ["build", "--catalog", "{tmp}/stock.csv", "--no-embeddings", "--quiet"],
        ("stock.csv", "row 10", "'stock'"),
    ),
    (["build", "--catalog", "{tmp}/nested.jsonl", "--no-embeddings", "--quiet"], ("nested.jsonl", "row 1")),
    (["related", "no_such_product"], ("no_such_product",)),
]


@pytest.mark.parametrize(("args", "names"), SUBPROCESS_CASES, ids=[" ".join(a) for a, _ in SUBPROCESS_CASES])
def test_the_console_script_prints_one_line(
    args: list[str], names: tuple[str, ...], good_home: tuple[Path, tuple[dict, dict, dict]], tmp_path: Path
) -> None:
    home, before = good_home
    os.mkfifo(tmp_path / "fifo")
    _write(tmp_path / "stock.csv", _catalog_with("x,X,c,b,1,1e23"))
    _write(tmp_path / "nested.jsonl", _nested_json())
    res = tiein_subprocess(*[a.replace("{tmp}", str(tmp_path)) for a in args], home=home)
    assert_refused(res, *names)
    assert snapshot(home) == before

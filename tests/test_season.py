"""Seasonal relations on tests/fixtures/season (its README works every number out by hand): a
mug whose add-on is lemonade syrup in summer and candy canes at Christmas, a coaster bought with
it all year, and an ornament bought with it three times, all in December (shrunk: not
seasonal). The real build, the service, the CLI, the API and ``tiein update``; the calendar file
format with its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from tiein import loaders
from tiein.cli import cli
from tiein.errors import ConfigError, InputError
from tiein.graph import open_store
from tiein.model import RELATIONS, QueryContext
from tiein.options import BuildOptions
from tiein.pipeline import build
from tiein.season import (
    BUILTIN,
    SeasonConfig,
    load_calendar,
    parse_at,
    parse_calendar,
    season_evidence,
    season_weight,
)
from tiein.season.stats import shrunk_lift
from tiein.service import addons_payload, bundle_payload, related_payload

FIX = Path(__file__).parent / "fixtures" / "season"
MAPPING = {"orders": {"timestamp": "date"}}
YEAR_ROUND = ["COASTER", "LEMON", "CANDY"]
SUMMER = ["LEMON", "COASTER", "CANDY"]  # 2024-07-15
CHRISTMAS = ["CANDY", "COASTER", "LEMON"]  # 2024-12-10
JULY, DECEMBER = date(2024, 7, 15), date(2024, 12, 10)


def _build(home: Path, *, orders: Path = FIX / "orders.csv", season: SeasonConfig | None = None) -> Any:
    return build(
        BuildOptions(
            catalog=FIX / "catalog.csv",
            orders=orders,
            mapping=loaders.Mapping.from_dict(MAPPING),
            home=home,
            embeddings=False,
            discover_scenes=False,
            season=season or SeasonConfig(),
        )
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("season")
    _build(home)
    return home


@pytest.fixture(scope="module")
def built(home: Path) -> Iterator[Any]:
    st = open_store(str(home / "graph"))
    yield st
    st.close()


@pytest.fixture(scope="module")
def calendar_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("season-calendar")
    cal = FIX / "calendar.csv"
    summary = _build(home, season=SeasonConfig(calendar=load_calendar(cal), calendar_name=str(cal)))
    assert summary.season["by"] == "calendar" and summary.season["windows"] == 2
    st = open_store(str(home / "graph"))
    yield st
    st.close()


def _season(store: Any, dst: str) -> dict[str, Any]:
    row = next(r for r in store.related("MUG", "complement", 10) if r["product_id"] == dst)
    return dict(row["evidence"]["season"])


def _ids(payload: Any) -> list[str]:
    return [r["product_id"] for r in payload["items"]]


def test_monthly_weights_by_hand(built: Any) -> None:
    """README, "By hand": 20 baskets a month, prior 10 co-purchases."""
    lemon, candy = _season(built, "LEMON"), _season(built, "CANDY")
    assert lemon["peak"] == "m07" and lemon["seasonal"] is True and lemon["share"] == 0.4
    assert lemon["months"][6] == 1.76 and lemon["months"][5] == 1.44 and lemon["months"][11] == 0.8
    assert candy["peak"] == "m12" and candy["lift"] == 1.973 and candy["share"] == 0.538
    assert candy["months"][10:] == [1.81, 1.97] and candy["months"][6] == 0.82
    assert _season(built, "COASTER")["months"] == [1.0] * 12
    assert _season(built, "COASTER")["seasonal"] is False


def test_shrinkage_keeps_a_rare_pair_year_round() -> None:
    """MUG → ORNAMENT (too weak to be kept by the build, so given here): three co-purchases, all
    in December: 100 % of them in the peak, but (3 + 10) / (0.25 + 10) = 1.268 < 1.5, so not
    seasonal, and no season sentence in December; MUG → CANDY on the same orders is."""
    from tiein.explain import explain

    shop = loaders.load_files(
        catalog=FIX / "catalog.csv", orders=FIX / "orders.csv", mapping=loaders.Mapping.from_dict(MAPPING)
    )
    rel = pa.Table.from_pylist(
        [
            {"src": "MUG", "dst": "ORNAMENT", "kind": "complement", "score": 0.01, "evidence": "{}"},
            {"src": "MUG", "dst": "CANDY", "kind": "complement", "score": 0.05, "evidence": '{"lift":2.0}'},
        ],
        schema=RELATIONS,
    )
    out, report = season_evidence(shop.orders, rel, max_basket=500)
    ornament, candy = (json.loads(e) for e in out.column("evidence").to_pylist())
    assert ornament["season"]["share"] == 1.0 and ornament["season"]["lift"] == 1.268
    assert ornament["season"]["seasonal"] is False and ornament["season"]["peak"] == "m12"
    assert candy["season"]["seasonal"] is True and candy["lift"] == 2.0  # the old keys stay
    assert report["with_season"] == 2 and report["seasonal"] == 1 and report["baskets"] == 480
    assert explain(ornament, "complement", at=DECEMBER).en == explain(ornament, "complement").en
    assert explain(candy, "complement", at=DECEMBER).zh.startswith("12月常一起买")
    assert shrunk_lift(np.array([3.0]), np.array([0.25]), 10.0).round(3).tolist() == [1.268]


def test_related_at_a_date_ranks_in_season_pairs_up(built: Any) -> None:
    plain = related_payload(built, "MUG", "complement")
    assert _ids(plain) == YEAR_ROUND
    assert "at" not in plain and all("season_weight" not in r for r in plain["items"])
    july = related_payload(built, "MUG", "complement", context=QueryContext(at=JULY))
    december = related_payload(built, "MUG", "complement", context=QueryContext(at=DECEMBER))
    assert _ids(july) == SUMMER and july["at"] == "2024-07-15"
    assert _ids(december) == CHRISTMAS
    top = december["items"][0]
    assert top["season_weight"] == 1.97 and top["season_score"] == round(top["score"] * 1.97, 6)
    assert top["explanation"]["zh"].startswith("12月常一起买；")
    assert top["explanation"]["en"].startswith("often bought together in December; ")
    lemon = december["items"][-1]
    assert "December" not in lemon["explanation_en"]
    # a neutral context is the year-round answer, exactly
    assert related_payload(built, "MUG", "complement", context=QueryContext()) == plain


def test_bundle_and_addons_follow_the_date(built: Any) -> None:
    year = bundle_payload(built, "MUG")
    dec = bundle_payload(built, "MUG", context=QueryContext(at=DECEMBER))
    assert [i["product"]["product_id"] for i in year["items"]] == ["COASTER", "LEMON"]
    assert [i["product"]["product_id"] for i in dec["items"]] == ["CANDY", "COASTER"]
    assert dec["at"] == "2024-12-10" and "at" not in year
    assert dec["items"][0]["explanation"]["en"].startswith("often bought together in December")
    cart = addons_payload(built, ["MUG"], k=3, context=QueryContext(at=JULY))
    assert [i["product"]["product_id"] for i in cart["items"]] == SUMMER
    assert [i["product"]["product_id"] for i in addons_payload(built, ["MUG"], k=3)["items"]] == YEAR_ROUND


def test_named_windows_from_a_calendar(calendar_store: Any) -> None:
    """Christmas (11-15..12-25) holds November's and December's 40 of the mug's 240 baskets:
    CANDY's 26 co-purchases are all in it, (26 + 10) / (26 × 40 / 240 + 10) = 2.512."""
    candy = _season(calendar_store, "CANDY")
    assert candy["by"] == "calendar" and candy["peak"] == "christmas" and candy["lift"] == 2.512
    assert candy["spans"] == [["11-15", "12-25"]] and candy["share"] == 1.0
    assert _season(calendar_store, "LEMON")["peak_en"] == "the summer sale"
    dec = related_payload(calendar_store, "MUG", "complement", context=QueryContext(at=DECEMBER))
    assert _ids(dec) == CHRISTMAS  # re-ranked by month either way
    assert dec["items"][0]["explanation"]["zh"].startswith("圣诞季常一起买；")
    assert dec["items"][0]["explanation"]["en"].startswith("often bought together at Christmas; ")
    after = related_payload(calendar_store, "MUG", "complement", context=QueryContext(at=date(2024, 12, 28)))
    assert _ids(after) == CHRISTMAS and "圣诞季" not in after["items"][0]["explanation"]["zh"]


def test_season_evidence_skips_next_and_undated_orders() -> None:
    rel = pa.Table.from_pylist(
        [
            {"src": "a", "dst": "b", "kind": "complement", "score": 0.5, "evidence": '{"kind":"complement"}'},
            {"src": "a", "dst": "b", "kind": "next", "score": 0.5, "evidence": '{"kind":"next"}'},
        ],
        schema=RELATIONS,
    )
    ts = pa.array([None, None], pa.timestamp("us"))
    orders = pa.table(
        {
            "order_id": ["1", "1"],
            "product_id": ["a", "b"],
            "quantity": [1.0, 1.0],
            "customer_id": ["c", "c"],
            "ts": ts,
        }
    )
    out, report = season_evidence(orders, rel, max_basket=500)
    assert out.column("evidence").to_pylist() == rel.column("evidence").to_pylist()
    assert report["baskets"] == 0 and report["with_season"] == 0
    dated = orders.set_column(4, "ts", pa.array([datetime(2024, 5, 1)] * 2, pa.timestamp("us")))
    out, report = season_evidence(dated, rel, max_basket=500)
    ev = [json.loads(e) for e in out.column("evidence").to_pylist()]
    assert ev[0]["season"]["bought_together"] == 1 and "season" not in ev[1]
    assert report == {**report, "pairs": 1, "with_season": 1, "seasonal": 0}


def test_calendar_rows_and_their_errors(tmp_path: Path) -> None:
    windows = parse_calendar(
        [
            {"name": "cny", "zh": "春节", "en": "Spring Festival", "from": "2024-01-20", "to": "2024-02-16"},
            {"name": "cny", "from": "2025-01-08", "to": "2025-02-04"},
            {"name": "ny", "from": "12-26", "to": "01-02"},
        ]
    )
    assert [w.key for w in windows] == ["cny", "ny"] and windows[0].zh == "春节" and windows[1].en == "ny"
    assert windows[0].contains(date(2025, 2, 1)) and not windows[0].contains(date(2026, 2, 1))
    assert windows[1].contains(date(2024, 12, 31)) and windows[1].contains(date(2025, 1, 2))
    spring = next(w for w in BUILTIN if w.key == "spring_festival")
    assert spring.contains(date(2024, 2, 1)) and not spring.contains(date(2024, 3, 1))  # 春节 2024-02-10
    bad = {
        "name,zh,en,from,to\nxmas,圣诞,Christmas,11-15,12-32\n": "row 1, column 'to': '12-32' is not a date",
        "name,zh,en,from,to\nxmas,,,11-15,12-25\n,,,01-01,01-02\n": "row 2, column 'name': a window needs a name",
        "name,zh,en,from,to\nx,,,2024-01-01,12-25\n": "row 1, column 'to': from (2024-01-01) and to (12-25)",
        "name,from\nx,01-01\n": "the header lacks column(s) to",
        "name,from,to,colour\nx,01-01,01-02,red\n": "row 1: unknown column(s) colour",
    }
    for i, (text, message) in enumerate(bad.items()):
        path = tmp_path / f"cal{i}.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as exc:
            load_calendar(path)
        assert str(exc.value).startswith(str(path)) and message in str(exc.value), str(exc.value)
    yaml_file = tmp_path / "cal.yaml"
    yaml_file.write_text(
        "windows:\n  - {name: double11, zh: 双11, en: Singles' Day, from: 11-01, to: 11-11}\n"
    )
    assert load_calendar(yaml_file)[0].zh == "双11"
    yaml_file.write_text("- {name: cny, from: 2024-01-20, to: 2024-01-01}\n")  # YAML reads these as dates
    with pytest.raises(InputError, match="row 1, column 'to': 2024-01-01 is before from"):
        load_calendar(yaml_file)
    with pytest.raises(ConfigError, match="does not exist"):
        load_calendar(tmp_path / "nowhere.csv")


def test_at_values() -> None:
    assert parse_at("2024-12-10") == DECEMBER and parse_at(None) is None
    assert parse_at("today") is not None
    for bad in ("2024-13-01", "12/10/2024", "tomorrow", 20241210):
        with pytest.raises(ConfigError, match="at must be a date YYYY-MM-DD"):
            parse_at(bad)  # type: ignore[arg-type]
    assert season_weight({"season": {"months": [2.0] * 12}}, JULY, strength=0.5) == pytest.approx(2**0.5)


def test_cli_build_calendar_and_related_at(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        cli, ["related", "MUG", "--at", "2024-12-10", "--json", "--home", str(home)], catch_exceptions=False
    )
    assert out.exit_code == 0, out.output
    assert _ids(json.loads(out.output)) == CHRISTMAS
    text = runner.invoke(cli, ["related", "MUG", "--at", "2024-07-15", "--home", str(home)])
    assert "at 2024-07-15" in text.output and "often bought together in July" in text.output
    assert "7月常一起买" in text.output
    bad = runner.invoke(cli, ["related", "MUG", "--at", "10.12.2024", "--home", str(home)])
    assert isinstance(bad.exception, ConfigError)  # `tiein` prints it as one line, exit 2
    assert "at must be a date YYYY-MM-DD (or 'today'), got '10.12.2024'" in str(bad.exception)
    cart = runner.invoke(
        cli, ["addons", "MUG", "-k", "3", "--at", "2024-07-15", "--json", "--home", str(home)]
    )
    assert [i["product"]["product_id"] for i in json.loads(cart.output)["items"]] == SUMMER
    b = runner.invoke(cli, ["bundle", "MUG", "--at", "2024-12-10", "--json", "--home", str(home)])
    assert [i["product"]["product_id"] for i in json.loads(b.output)["items"]] == ["CANDY", "COASTER"]
    cal = tmp_path / "bad.csv"
    cal.write_text("name,zh,en,from,to\nxmas,圣诞季,Christmas,11-15,christmas\n", encoding="utf-8")
    args = ["build", "--catalog", str(FIX / "catalog.csv"), "--orders", str(FIX / "orders.csv")]
    failed = runner.invoke(cli, [*args, "--calendar", str(cal), "--home", str(tmp_path / "h"), "--quiet"])
    assert isinstance(failed.exception, InputError) and failed.exception.status < 500  # exit 2
    assert f"{cal}, row 1, column 'to': 'christmas' is not a date" in str(failed.exception)
    assert not (tmp_path / "h" / "graph").exists()  # refused before anything ran


def test_api_at(home: Path) -> None:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=home)), raise_server_exceptions=False) as client:
        r = client.get("/v1/products/MUG/related", params={"at": "2024-12-10"})
        assert r.status_code == 200 and _ids(r.json()) == CHRISTMAS and r.json()["at"] == "2024-12-10"
        assert r.json()["items"][0]["explanation"]["zh"].startswith("12月常一起买")
        plain = client.get("/v1/products/MUG/related").json()
        assert _ids(plain) == YEAR_ROUND and "at" not in plain
        bad = client.get("/v1/products/MUG/related", params={"at": "2024-02-30"})
        assert bad.status_code == 422
        assert "at must be a date YYYY-MM-DD (or 'today'), got '2024-02-30'" in bad.json()["error"]["message"]
        b = client.get("/v1/products/MUG/bundle", params={"at": "2024-12-10"}).json()
        assert [i["product"]["product_id"] for i in b["items"]] == ["CANDY", "COASTER"]
        cart = client.post("/v1/cart/addons", json={"cart": ["MUG"], "k": 3, "at": "2024-07-15"})
        assert (
            cart.status_code == 200 and [i["product"]["product_id"] for i in cart.json()["items"]] == SUMMER
        )
        assert client.post("/v1/cart/addons", json={"cart": ["MUG"], "at": "July"}).status_code == 422
        schema = client.get("/openapi.json").json()
        for route in ("related", "bundle"):
            params = schema["paths"][f"/v1/products/{{product_id}}/{route}"]["get"]["parameters"]
            assert "at" in {p["name"] for p in params}, route
        assert "at" in schema["components"]["schemas"]["AddonsRequest"]["properties"]
        typo = client.get("/v1/products/MUG/related", params={"date": "2024-12-10"})  # not a parameter
        assert typo.status_code == 422 and "this operation takes:" in typo.text and "at," in typo.text


def test_update_keeps_season_evidence(tmp_path: Path, built: Any) -> None:
    """Build on January-November, update with December: the season evidence equals the full build's."""
    lines = (FIX / "orders.csv").read_text(encoding="utf-8").splitlines()
    head, body = lines[0], lines[1:]
    early, december = tmp_path / "early.csv", tmp_path / "december.csv"
    early.write_text("\n".join([head, *[x for x in body if ",2023-12-" not in x]]) + "\n", encoding="utf-8")
    december.write_text("\n".join([head, *[x for x in body if ",2023-12-" in x]]) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    _build(home, orders=early)
    from tiein.update import UpdateOptions, update

    update(UpdateOptions(orders=december, mapping=loaders.Mapping.from_dict(MAPPING), home=home))
    updated = open_store(str(home / "graph"))
    try:
        for dst in YEAR_ROUND:
            assert _season(updated, dst) == _season(built, dst), dst
        assert (
            _ids(related_payload(updated, "MUG", "complement", context=QueryContext(at=DECEMBER)))
            == CHRISTMAS
        )
    finally:
        updated.close()


def test_export_at_a_date(home: Path, tmp_path: Path) -> None:
    """`tiein export related --at`: the same ranking as `tiein related --at`, rows in rank order."""
    import csv

    out = tmp_path / "related.csv"
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "related",
            "--format",
            "csv",
            "--out",
            str(out),
            "--at",
            "2024-12-10",
            "--home",
            str(home),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    rows = [x for x in csv.DictReader(out.open(encoding="utf-8")) if x["anchor_product_id"] == "MUG"]
    assert [x["product_id"] for x in sorted(rows, key=lambda x: int(x["rank"]))] == CHRISTMAS
    assert rows[0]["explanation_zh"].startswith("12月常一起买")


def test_every_store_keeps_season_evidence(store_kind: Any, home: Path, tmp_path: Path) -> None:
    """The built graph loaded into each store of the contract suite (Neo4j where one runs): the
    season evidence comes back as it went in, and at= ranks the same everywhere."""
    from tiein.state import load_state

    graph = load_state(home).graph
    st = store_kind.make(tmp_path)
    try:
        st.replace(graph)
        for dst in YEAR_ROUND:
            row = next(r for r in st.related("MUG", "complement", 10) if r["product_id"] == dst)
            stored = next(
                json.loads(e)
                for s, d, k, e in zip(
                    *(graph.relations.column(c).to_pylist() for c in ("src", "dst", "kind", "evidence")),
                    strict=True,
                )
                if (s, d, k) == ("MUG", dst, "complement")
            )
            assert row["evidence"] == stored
        assert _ids(related_payload(st, "MUG", "complement", context=QueryContext(at=DECEMBER))) == CHRISTMAS
    finally:
        st.close()


def test_append_evidence_adds_one_key_to_each_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evidence JSON gets the key where a text is given (a null or blank evidence becomes an
    object of that key alone); rows without a text keep their evidence byte for byte."""
    import numpy as np

    import tiein.basket_pairs as bp
    from tiein.basket_pairs import append_evidence

    rel = pa.table({"evidence": pa.array(['{"a":1}', None, "", ' {"b":2} ', '{"c":3} '], pa.string())})
    texts = pa.array(['{"x":1}', "2", "3", None, "[1]"], pa.string())
    out, added = append_evidence(rel, np.array([0, 1, 2, 3, 4]), texts, "season")
    got = out.column("evidence").to_pylist()
    assert got == [
        '{"a":1,"season":{"x":1}}',
        '{"season":2}',
        '{"season":3}',
        ' {"b":2} ',
        '{"c":3,"season":[1]}',
    ]
    assert added == 4 and [json.loads(t) for t in got]
    same, none = append_evidence(rel, np.array([0]), pa.array([None], pa.string()), "season")
    assert none == 0 and same.column("evidence").equals(rel.column("evidence"))
    # tiein's own evidence (compact objects) takes the one-pass way: the same result
    compact = pa.table({"evidence": pa.array(['{"a":1}', '{"b":"x}"}', '{"c":3}'], pa.string())})
    texts = pa.array([None, '{"y":2}', "[1]"], pa.string())
    out, added = append_evidence(compact, np.array([0, 1, 2]), texts, "season")
    want = ['{"a":1}', '{"b":"x}","season":{"y":2}}', '{"c":3,"season":[1]}']
    assert out.column("evidence").to_pylist() == want
    assert added == 2
    # joined in slices of JOIN_ROWS rows, from evidence in several chunks: the same
    monkeypatch.setattr(bp, "JOIN_ROWS", 2)
    chunked = pa.table({"evidence": pa.chunked_array([['{"a":1}'], ['{"b":"x}"}', '{"c":3}']])})
    out, added = append_evidence(chunked, np.array([0, 1, 2]), texts, "season")
    assert out.column("evidence").to_pylist() == want and added == 2
    assert out.column("evidence").num_chunks == 2


@pytest.mark.parametrize("chunk", [1 << 22, 5])  # one chunk of pairs, or many side by side
@pytest.mark.parametrize(
    "shuffled", [False, True]
)  # pairs numbered by first end (as basket_pairs does), or not
def test_co_baskets_match_brute_force(monkeypatch: pytest.MonkeyPatch, chunk: int, shuffled: bool) -> None:
    """Every (pair, basket) holding both ends of a pair, sorted by pair then basket, on a random
    shop (popular products in most baskets: long lists to gallop through): a Python loop over
    the baskets is the reference."""
    import numpy as np

    import tiein.basket_pairs as bp
    import tiein.mining.jit as mining_jit

    monkeypatch.setattr(mining_jit, "CHUNK_PAIRS", chunk)
    rng = np.random.default_rng(7)
    n_prod, n_baskets = 40, 200
    lines = {
        (int(rng.zipf(1.5)) % n_prod, j) for j in range(n_baskets) for _ in range(int(rng.integers(1, 7)))
    }
    li = np.array([i for i, _ in lines], np.int64)
    lj = np.array([j for _, j in lines], np.int64)
    pairs = sorted({tuple(sorted(rng.choice(n_prod, 2, replace=False).tolist())) for _ in range(150)})
    if shuffled:
        pairs = [pairs[k] for k in rng.permutation(len(pairs))]
    ai = np.array([a for a, _ in pairs], np.int64)
    bi = np.array([b for _, b in pairs], np.int64)
    want = sorted(
        (k, j)
        for k, (a, b) in enumerate(pairs)
        for j in range(n_baskets)
        if (a, j) in lines and (b, j) in lines
    )
    # a line given twice counts once
    pid, js = bp.co_baskets(ai, bi, np.concatenate([li, li[:9]]), np.concatenate([lj, lj[:9]]), n_prod)
    assert list(zip(pid.tolist(), js.tolist(), strict=True)) == want
    assert len(want) > 20


def test_month_lifts_are_written_as_json_writes_them() -> None:
    """The monthly lifts' text (Arrow table lookups) is byte for byte what json.dumps writes, for
    lifts under 100 (the lookup), larger ones (hundredths split) and ones it cannot take."""
    from tiein.season.stats import _number_rows

    rng = np.random.default_rng(2)
    for scale in (0.01, 1.0, 60.0, 1e6):
        x = np.round(rng.gamma(2.0, scale, (2_000, 12)), 2)
        x[:50] = np.round(np.arange(600).reshape(50, 12) / 100, 2)  # 0.0, 0.01 ... 5.99
        x[50, :3] = [99.99, 100.0, 0.1]
        want = json.dumps(x.tolist(), separators=(",", ":"))[2:-2].split("],[")
        assert _number_rows(x).to_pylist() == want
    odd = np.array([[-1.5, 2.0], [1e13, 0.25]])
    assert _number_rows(odd).to_pylist() == ["-1.5,2.0", "10000000000000.0,0.25"]
    assert _number_rows(np.zeros((0, 12))).to_pylist() == []


def test_a_build_hands_the_store_its_relations_in_store_order(home: Path) -> None:
    """The build sorts its relations as the store keeps them before the evidence steps, and the
    season step keeps that order: so the store's per-kind tables are slices of the build's
    relations (no copy of the evidence at the store step, tests/test_graph_build.py)."""
    from tiein.graph.build import graph_tables, in_store_order
    from tiein.state import load_state

    graph = load_state(home).graph
    rel = graph.relations
    assert rel.num_rows > 10 and "season" in rel.column("evidence")[0].as_py()
    keys = list(zip(*(rel.column(c).to_pylist() for c in ("kind", "src", "score", "dst")), strict=True))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], -k[2], k[3]))  # best score first
    assert in_store_order(rel).equals(rel)
    text = rel.column("evidence").chunk(0).buffers()[2].address
    complements = graph_tables(graph).evidence["COMPLEMENT"]  # their Evidence nodes
    assert complements.num_rows and complements.column("evidence").chunk(0).buffers()[2].address == text


@pytest.mark.parametrize("by", ["month", "calendar"])
def test_season_texts_are_the_json_of_their_fields(by: str) -> None:
    """Each relation's season text (assembled from Arrow pieces) is exactly ``json.dumps`` of
    its fields in order, Chinese labels unescaped; null where the pair was never bought in a dated
    basket; the seasonal ones are counted. Lifts past 100 and a calendar's spans included."""
    from tiein.season.calendar import Window, month_windows
    from tiein.season.stats import _SeasonJson

    windows = month_windows()
    if by == "calendar":
        windows = (
            Window("christmas", "圣诞季", "Christmas", (("11-15", "12-25"),)),
            Window("q", 'say "hi"', "Back\\slash", (("2011-03-01", "2011-03-09"), ("07-01", "07-02"))),
        )
    rng = np.random.default_rng(5)
    rows = 3_000
    n = rng.integers(1, 40, rows).astype(np.float64)
    n[:10] = 0
    obs = np.floor(rng.random((rows, len(windows))) * (n[:, None] + 1))
    lift = rng.gamma(1.5, 1.0, (rows, len(windows)))
    lift[10:20] *= 300  # past the lookup table's 100
    lift_m = np.round(rng.gamma(2.0, 0.6, (rows, 12)), 2)
    json_of = _SeasonJson(windows, by, 1.5)
    got = json_of(n, obs, lift, lift_m).to_pylist()
    want: list[str | None] = []
    for i in range(rows):
        if n[i] == 0:
            want.append(None)
            continue
        p = int(lift[i].argmax())
        w = windows[p]
        peak_lift = float(np.round(lift[i, p], 3))
        fields = {
            "by": by,
            "peak": w.key,
            "peak_zh": w.zh,
            "peak_en": w.en,
            "share": float(np.round(obs[i, p] / n[i], 3)),
            "lift": peak_lift,
            "seasonal": peak_lift >= 1.5,
            "bought_together": int(n[i]),
            "months": lift_m[i].tolist(),
        }
        if by == "calendar" and peak_lift >= 1.5:
            fields["spans"] = [list(s) for s in w.spans]
        want.append(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
    assert got == want
    assert json_of.seasonal == sum(1 for t in want if t and json.loads(t)["seasonal"]) > 100
    assert sum(t is None for t in got) == 10


def test_decimals_are_written_as_repr_writes_them() -> None:
    """Shares and lifts to 3 decimals: the text of each is ``repr`` of the rounded float, small
    (the lookup), large (whole and fraction joined) and out of range (``json.dumps``)."""
    from tiein.season.stats import _decimals

    rng = np.random.default_rng(9)
    for scale in (0.001, 0.3, 40.0, 1e7):
        x = rng.gamma(1.2, scale, 5_000)
        x[:3] = [0.0, 0.0005, 99.9995]
        assert _decimals(x, 3).to_pylist() == [repr(v) for v in np.round(x, 3).tolist()]
    assert _decimals(np.array([-0.25, 2e12, 1.0]), 3).to_pylist() == ["-0.25", "2000000000000.0", "1.0"]


def test_append_evidence_asks_for_each_slices_texts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a function, append_evidence asks it for the entries of one slice of the table at a
    time (so a build never holds every text at once) and joins them where a list would."""
    import numpy as np

    import tiein.basket_pairs as bp
    from tiein.basket_pairs import append_evidence

    monkeypatch.setattr(bp, "JOIN_ROWS", 3)
    rel = pa.table({"evidence": pa.array([f'{{"r":{i}}}' for i in range(8)], pa.string())})
    rows = np.array([0, 2, 3, 7])
    texts = pa.array(["0", None, "3", "7"], pa.string())
    asked: list[tuple[int, int]] = []

    def texts_of(lo: int, hi: int) -> pa.Array:
        asked.append((lo, hi))
        return texts.slice(lo, hi - lo)

    out, added = append_evidence(rel, rows, texts_of, "k")
    assert asked == [(0, 2), (2, 3), (3, 4)]  # rows 0-2, 3-5, 6-7
    assert out.column("evidence").to_pylist() == [
        '{"r":0,"k":0}',
        '{"r":1}',
        '{"r":2}',
        '{"r":3,"k":3}',
        '{"r":4}',
        '{"r":5}',
        '{"r":6}',
        '{"r":7,"k":7}',
    ]
    assert added == 3
    same, none = append_evidence(rel, rows, lambda lo, hi: pa.nulls(hi - lo, pa.string()), "k")
    assert none == 0 and same is rel
    with pytest.raises(ValueError, match="ascending"):
        append_evidence(rel, np.array([3, 0]), pa.array(["a", "b"]), "k")


def test_evidence_handed_over_is_let_go_as_the_new_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table Handed over gets the same evidence as one lent, the holder gives it up, and each
    old chunk is let go once its rows are rewritten: near the end of the rewrite Arrow holds
    about one copy of the evidence, not two (the season step's peak at 16M lines)."""
    import numpy as np

    import tiein.basket_pairs as bp
    from tiein.basket_pairs import Handed, append_evidence

    monkeypatch.setattr(bp, "JOIN_ROWS", 1500)  # slices across the chunks' ends
    n, width = 40_000, 200

    def table() -> pa.Table:
        chunks = [
            pa.array([f'{{"r":{i},"p":"{"x" * width}"}}' for i in range(a, a + 1000)])
            for a in range(0, n, 1000)
        ]
        return pa.table({"id": np.arange(n), "evidence": pa.chunked_array(chunks)})

    rows = np.arange(0, n, 3)
    held: list[int] = []

    def texts_of(lo: int, hi: int) -> pa.Array:
        held.append(pa.total_allocated_bytes())
        return pa.array([str(r) for r in rows[lo:hi]], pa.string())

    lent = table()
    want, added = append_evidence(lent, rows, texts_of, "k")
    lent_last = held[-1]
    del lent, want
    held.clear()
    handed = Handed(table())
    got, added_h = append_evidence(handed, rows, texts_of, "k")
    size = got.column("evidence").nbytes
    assert added_h == added == len(rows)
    assert got.column_names == ["id", "evidence"] and got.column("evidence").to_pylist()[:2] == [
        f'{{"r":0,"p":"{"x" * width}","k":0}}',
        f'{{"r":1,"p":"{"x" * width}"}}',
    ]
    with pytest.raises(AssertionError, match="handed over already"):
        handed.take()
    assert held[-1] < lent_last - size // 2  # most of the old evidence gone by the last slice


@pytest.mark.parametrize("overlapping", [False, True])
def test_per_window_counts_match_brute_force(overlapping: bool) -> None:
    """Per-window counts of (key, basket) rows: months (each basket in one window or none,
    counted directly) and overlapping calendar windows (a sparse product) both equal a loop."""
    from tiein.season.calendar import Window, month_windows
    from tiein.season.stats import _membership, _per_window

    rng = np.random.default_rng(3)
    days = [date(2011, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 700, 300)]
    windows = month_windows()
    if overlapping:
        windows = (
            Window("xmas", "圣诞", "Xmas", (("11-15", "12-25"),)),
            Window("dec", "十二月", "December", (("12-01", "12-31"),)),
            Window("spring", "春", "Spring", (("2011-03-01", "2011-05-31"),)),
        )
    member = _membership(days, windows)
    keys = rng.integers(0, 50, 5_000).astype(np.int32)
    baskets = rng.integers(0, len(days), 5_000)
    want = np.zeros((50, len(windows)))
    for k, b in zip(keys.tolist(), baskets.tolist(), strict=True):
        for w, win in enumerate(windows):
            want[k, w] += win.contains(days[b])
    got = _per_window(keys, baskets, 50, member)
    assert got.dtype == np.float64 and np.array_equal(got, want)
    assert want.sum() > 1_000

"""Relations per customer segment (tiein.segments) on tests/fixtures/segments, whose README works
the numbers out by hand: the tent's complements are chair, then hammock, for all customers and
for "family"; hammock first for "solo"; "vip" (5 baskets) and unknown segments answer for all
customers and say so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.errors import ConfigError, InputError
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.loaders.mapping import Mapping
from tiein.model import QueryContext
from tiein.pipeline import BuildOptions, build
from tiein.service import addons_payload, bundle_payload, related_payload

FIX = Path(__file__).parent / "fixtures" / "segments"


def options(home: Path, **kw: Any) -> BuildOptions:
    return BuildOptions(
        catalog=FIX / "catalog.csv",
        orders=FIX / "orders.csv",
        home=home,
        embeddings=False,
        threads=1,
        mapping=Mapping.from_cli(["segment=channel"]),
        **kw,
    )


@pytest.fixture(scope="module")
def seg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("segments")
    summary = build(options(home))
    assert summary.counts["segments"] == 2 and summary.counts["segment_relations"] > 0
    # segment evidence skips "next purchase": the store's early copy of it stood (ladybug_staged)
    assert "NEXT_PURCHASE" in summary.staged["tables"] and summary.staged["reloaded"] is None
    return home


@pytest.fixture(scope="module")
def store(seg_home: Path) -> Iterator[GraphStore]:
    s = open_store(str(seg_home / "graph"))
    yield s
    s.close()


def ids(payload: Any) -> list[str]:
    return [r["product_id"] for r in payload["items"]]


def test_evidence_holds_the_hand_worked_lifts(store: GraphStore) -> None:
    rows = {r["product_id"]: r for r in store.related("tent", "complement", 5)}
    chair, hammock = rows["chair"]["evidence"]["segments"], rows["hammock"]["evidence"]["segments"]
    assert chair == {"n": 40, "by": {"family": [30, 1.355], "solo": [5, 0.52]}}
    assert hammock == {"n": 33, "by": {"family": [5, 0.575], "solo": [28, 1.487]}}
    meta = store.stats()["meta"]["segments"]
    assert set(meta["segments"]) == {"family", "solo"} and meta["small"] == ["vip"]
    assert meta["segments"]["family"] == {"baskets": 60, "share": round(60 / 123, 6)}


def test_two_segments_pair_differently(store: GraphStore) -> None:
    assert ids(related_payload(store, "tent", "complement", 5)) == ["chair", "hammock"]
    family = related_payload(store, "tent", "complement", 5, context=QueryContext(segment="family"))
    solo = related_payload(store, "tent", "complement", 5, context=QueryContext(segment="solo"))
    assert ids(family) == ["chair", "hammock"] and ids(solo) == ["hammock", "chair"]
    assert solo["segment"] == {"name": "solo", "known": True}
    top = solo["items"][0]
    assert top["segment_weight"] == 1.487 and top["segment_score"] == round(top["score"] * 1.487, 6)
    assert top["explanation"]["zh"].startswith("“solo”顾客常一起买（28 单）；")
    assert top["explanation"]["en"].startswith("often bought together by solo customers (28 orders); ")
    assert "segment" not in related_payload(store, "tent", "complement", 5)  # none asked: as before


@pytest.mark.parametrize("name", ["vip", "Mars"])
def test_small_or_unknown_segment_answers_globally_and_says_so(store: GraphStore, name: str) -> None:
    got = related_payload(store, "tent", "complement", 5, context=QueryContext(segment=name))
    assert ids(got) == ["chair", "hammock"] and all("segment_weight" not in r for r in got["items"])
    assert got["segment"]["known"] is False and name in got["segment"]["note"]["en"]
    assert "全部顾客" in got["segment"]["note"]["zh"]


def test_bundles_and_addons_follow_the_segment(store: GraphStore) -> None:
    loose = {"min_price_ratio": 0.0, "max_price_ratio": 10.0}
    solo = bundle_payload(store, "tent", size=2, context=QueryContext(segment="solo"), **loose)
    family = bundle_payload(store, "tent", size=2, context=QueryContext(segment="family"), **loose)
    assert [i["product"]["product_id"] for i in solo["items"]] == ["hammock"]
    assert [i["product"]["product_id"] for i in family["items"]] == ["chair"]
    assert solo["segment"] == {"name": "solo", "known": True}
    cart = addons_payload(store, ["tent"], k=2, context=QueryContext(segment="solo"))
    assert [i["product"]["product_id"] for i in cart["items"]][0] == "hammock"
    assert [i["product"]["product_id"] for i in addons_payload(store, ["tent"], k=2)["items"]][0] == "chair"


def test_cli_and_api_take_a_segment(seg_home: Path) -> None:
    r = CliRunner().invoke(
        cli,
        ["related", "tent", "--kind", "complement", "--segment", "solo", "--json", "--home", str(seg_home)],
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert ids(got) == ["hammock", "chair"] and got["segment"]["known"] is True
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=seg_home)), raise_server_exceptions=False) as c:
        api = c.get("/v1/products/tent/related", params={"kind": "complement", "segment": "solo"}).json()
        assert api == got  # one code path
        b = c.get("/v1/products/tent/bundle", params={"segment": "solo", "size": 2, "max_price_ratio": 10})
        assert b.status_code == 200 and b.json()["segment"]["name"] == "solo"
        a = c.post("/v1/cart/addons", json={"cart": ["tent"], "segment": "family", "k": 2}).json()
        assert a["items"][0]["product"]["product_id"] == "chair" and a["segment"]["known"] is True
        bad = c.get("/v1/products/tent/related", params={"segment": "x\x01y"})
        assert bad.status_code in (400, 422) and "segment" in bad.json()["error"]["message"]
        unknown = c.get("/v1/products/tent/related", params={"segment": "Mars"}).json()
        assert unknown["segment"]["known"] is False


def test_export_takes_a_segment(seg_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "related.jsonl"
    args = ["export", "related", "--format", "jsonl", "--out", str(out), "--segment", "solo", "--quiet"]
    r = CliRunner().invoke(cli, [*args, "--home", str(seg_home)])
    assert r.exit_code == 0, r.output
    answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tent = next(a for a in answers if a["product"]["product_id"] == "tent")
    assert ids(tent) == ["hammock", "chair"]


def test_update_keeps_the_segments(tmp_path: Path) -> None:
    from tiein.update import UpdateOptions, update

    home = tmp_path / "home"
    build(options(home))
    new = tmp_path / "new.csv"
    new.write_text(
        "order_id,product_id,channel\n" + "".join(f"n{i},tent,solo\nn{i},hammock,solo\n" for i in range(6))
    )
    update(UpdateOptions(home=home, orders=new, mapping=Mapping.from_cli(["segment=channel"]), threads=1))
    with open_store(str(home / "graph")) as s:
        ham = next(r for r in s.related("tent", "complement", 5) if r["product_id"] == "hammock")
        assert ham["evidence"]["segments"]["by"]["solo"][0] == 34  # 28 + 6 new solo orders
        assert s.stats()["meta"]["segments"]["segments"]["solo"]["baskets"] == 64


def test_without_a_segment_column_nothing_changes(tmp_path: Path) -> None:
    build(
        BuildOptions(
            catalog=FIX / "catalog.csv", orders=FIX / "orders.csv", home=tmp_path, embeddings=False, threads=1
        )
    )
    with open_store(str(tmp_path / "graph")) as s:
        assert all("segments" not in r["evidence"] for r in s.related("tent", "complement", 5))
        assert "segments" not in s.stats()["meta"]
        got = related_payload(s, "tent", "complement", 5, context=QueryContext(segment="solo"))
        assert got["segment"]["known"] is False and ids(got) == ["chair", "hammock"]


def test_a_mapped_column_that_is_missing_is_a_clear_error(tmp_path: Path) -> None:
    opts = BuildOptions(
        catalog=FIX / "catalog.csv",
        orders=FIX / "orders.csv",
        home=tmp_path,
        embeddings=False,
        threads=1,
        mapping=Mapping.from_cli(["segment=country"]),
    )
    with pytest.raises((InputError, ConfigError)) as exc:
        build(opts)
    assert "country" in str(exc.value) and "orders.csv" in str(exc.value)

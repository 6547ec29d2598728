"""Content sets as input (``tiein build --sets``): tests/fixtures/sets, worked by hand in its
README.md, built with the real pipeline into the embedded store.

Expected scores are recomputed here from sets.csv and catalog.csv with the documented formula
(README: 0.5 × w / (sets_src + 5) × (1 − 1/lift) × direction), not read from the code under test.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tiein.bundles import bundle
from tiein.errors import InputError
from tiein.features import candidate_features
from tiein.graph import open_store
from tiein.graph.base import GraphStore
from tiein.home import inputs_dir
from tiein.loaders import LoadReport, Mapping
from tiein.loaders.sets import read_sets
from tiein.mining import mine_pairs
from tiein.options import BuildOptions
from tiein.pipeline import build
from tiein.ranker.model import SET_FEATURES, design_matrix, feature_names, fit_ranker
from tiein.update import UpdateOptions, update

SETS = Path(__file__).parent / "fixtures" / "sets"
KIND_WEIGHT = {"outfit": 1.0, "video": 1.0, "manual": 1.0, "live": 0.5}  # as documented


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


PRICE = {r["product_id"]: float(r["price"]) for r in _csv(SETS / "catalog.csv")}


def expected_scores(anchor: str) -> dict[str, float]:
    """The README's hand-set score of every set complement of ``anchor``, from sets.csv."""
    members: dict[str, set[str]] = defaultdict(set)
    given: dict[str, list[float]] = defaultdict(list)
    kind: dict[str, str] = {}
    for r in _csv(SETS / "sets.csv"):
        members[r["set_id"]].add(r["product_id"])
        given[r["set_id"]] += [float(r["weight"])] if r["weight"] else []
        kind[r["set_id"]] = r["kind"]
    weight = {s: max(given[s], default=1.0) * KIND_WEIGHT[kind[s]] for s in members}
    n = len(members)
    holding = {p: {s for s, m in members.items() if p in m} for p in PRICE}
    out = {}
    for dst in PRICE:
        both = holding[anchor] & holding[dst]
        if dst == anchor or len(both) < 2:
            continue
        lift = len(both) * n / (len(holding[anchor]) * len(holding[dst]))
        w = sum(weight[s] for s in both)
        ratio = PRICE[dst] / PRICE[anchor]
        direction = math.sqrt(1.25 / ratio) if ratio > 1.25 else 1.0
        score = 0.5 * w / (len(holding[anchor]) + 5) * (1 - 1 / lift) * direction if lift > 1 else 0.0
        if score >= 0.01:
            out[dst] = round(score, 6)
    return out


@pytest.fixture(scope="module")
def sets_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, GraphStore]]:
    home = tmp_path_factory.mktemp("sets-only")
    summary = build(
        BuildOptions(
            catalog=SETS / "catalog.csv", sets=SETS / "sets.csv", home=home, threads=1, embeddings=False
        )
    )
    store = open_store(summary.store)
    yield summary, store
    store.close()


def test_sets_only_catalog_gets_the_readme_complements(sets_only: tuple[Any, GraphStore]) -> None:
    summary, store = sets_only
    assert summary.counts["order_lines"] == 0 and summary.counts["sets"] == 7
    for anchor, order in (
        ("dress_floral", ["straw_bag", "sneakers", "sun_hat"]),
        ("dress_black", ["heels", "jacket", "chain_bag"]),
    ):
        rows = store.related(anchor, "complement")
        assert [r["product_id"] for r in rows] == order
        want = expected_scores(anchor)
        assert {r["product_id"]: r["score"] for r in rows} == pytest.approx(want, abs=1e-6)
    assert store.related("thermos", "complement") == []


def test_set_evidence_and_explanation(sets_only: tuple[Any, GraphStore]) -> None:
    _, store = sets_only
    row = store.related("dress_floral", "complement")[0]
    ev = row["evidence"]
    assert (ev["shown_together"], ev["shown_in"], ev["set_lift"]) == (4, {"live": 1, "outfit": 3}, 1.75)
    assert ev["bought_together"] == 0  # co-purchase fields are not filled from sets
    from tiein.explain import explain

    e = explain(row)
    assert e.zh.startswith("常在同一套穿搭/同场直播里出现：3 套穿搭、1 场直播")
    assert e.en.startswith("often shown together: 3 outfits, 1 livestream")
    jacket = next(r for r in store.related("dress_black", "complement") if r["product_id"] == "jacket")
    assert explain(jacket).en.startswith("shown together in 1 video, 1 livestream")


def test_sets_only_bundle_and_scene(sets_only: tuple[Any, GraphStore]) -> None:
    summary, store = sets_only
    b = bundle(store, "dress_floral")
    assert [i.product["product_id"] for i in b.items] == ["straw_bag", "sneakers"]
    assert b.suggested_price is not None and b.suggested_price < PRICE["dress_floral"] + 129 + 159
    assert "套穿搭" in b.items[0].explanation_zh
    assert summary.scenes["source"] == "discovered" and summary.scenes["count"] == 1
    scene = (Path(summary.scenes["file"])).read_text("utf-8")
    for category in ("连衣裙", "包", "鞋", "帽子", "外套"):
        assert category in scene


def test_sets_and_orders_kept_apart(tmp_path: Path) -> None:
    summary = build(
        BuildOptions(
            catalog=SETS / "catalog.csv",
            orders=SETS / "orders.csv",
            sets=SETS / "sets.csv",
            home=tmp_path,
            threads=1,
            embeddings=False,
        )
    )
    # content sets add to every relation's evidence: "next purchase" is loaded with the rest
    assert summary.staged["reloaded"] is None and "NEXT_PURCHASE" not in summary.staged["tables"]
    store = open_store(summary.store)
    try:
        rows = {r["product_id"]: r for r in store.related("dress_floral", "complement")}
        bag = rows["straw_bag"]["evidence"]
        assert (bag["bought_together"], bag["lift"]) == (3, 2.667)
        assert (bag["shown_together"], bag["set_lift"]) == (4, 1.75)
        assert rows["straw_bag"]["score"] == pytest.approx(3 / 8 * (1 - 3 / 8), abs=1e-6)
        assert rows["sneakers"]["score"] == pytest.approx(
            expected_scores("dress_floral")["sneakers"], abs=1e-6
        )
        assert rows["sneakers"]["evidence"]["bought_together"] == 0
        thermos = store.related("thermos", "complement")
        assert [r["product_id"] for r in thermos] == ["sun_hat"]
        assert thermos[0]["evidence"]["shown_in"] == {"live": 1}
        assert store.stats()["meta"]["content_sets"]["kinds"] == {"live": 1, "outfit": 5, "video": 1}
    finally:
        store.close()


def test_candidate_features_keep_set_columns_apart() -> None:
    from tiein import content_sets, loaders

    loaded = loaders.load_files(
        catalog=SETS / "catalog.csv", orders=SETS / "orders.csv", sets=SETS / "sets.csv"
    )
    co = mine_pairs(loaded.orders, min_count=2).pairs
    stats, _ = content_sets.set_pairs(loaded.sets, mine_pairs, max_basket=500)
    plain = candidate_features(loaded.products, co_purchase=co)
    with_sets = candidate_features(loaded.products, co_purchase=co, sets=stats)
    assert not set(content_sets.SET_FEATURE_COLUMNS) & set(plain.column_names)
    rows = {(r["src"], r["dst"]): r for r in with_sets.to_pylist()}
    bag = rows[("dress_floral", "straw_bag")]
    assert (bag["n_ab"], bag["n_sets"], bag["w_sets"]) == (3, 4, 3.5)
    sneakers = rows[("dress_floral", "sneakers")]  # a candidate only because of the sets
    assert (sneakers["n_ab"], sneakers["n_sets"]) == (0, 3)
    assert ("dress_floral", "sneakers") not in {(r["src"], r["dst"]) for r in plain.to_pylist()}


def test_ranker_learns_set_features() -> None:
    """Rows where the add-on is shown together with the anchor are bought together more: the
    fitted weight of the shown-together count is positive, and the report names it."""
    rng = np.random.default_rng(0)
    n = 600
    shown = rng.integers(0, 6, n)
    f = {
        "src": np.array([f"p{i % 50}" for i in range(n)], dtype=object),
        "n_ab": rng.integers(0, 4, n),
        "n_src": np.full(n, 40),
        "n_dst": np.full(n, 40),
        "n_baskets": np.full(n, 1000),
        "lift": np.full(n, 1.5),
        "n_sets": shown,
        "sets_src": np.full(n, 10),
        "w_sets": shown.astype(float),
        "set_lift": np.where(shown > 0, 2.0, 0.0),
    }
    assert feature_names(f)[-3:] == SET_FEATURES
    assert design_matrix(f).shape == (n, len(feature_names(f)))
    k = rng.binomial(20, 0.02 + 0.08 * shown)
    model, report = fit_ranker(f, k, np.full(n, 20), np.zeros(n))
    assert model is not None
    weights = model.describe()["weights"]
    assert weights["log_shown_together"] > 0 or weights["shown_confidence"] > 0
    assert set(SET_FEATURES) <= set(weights)


def test_update_keeps_sets(tmp_path: Path) -> None:
    """An update with new orders keeps the set-based relations: it equals a full build with the
    same sets; ``--sets`` in an update replaces the sets it names."""
    rows = _csv(SETS / "orders.csv")
    first, rest = tmp_path / "first.csv", tmp_path / "rest.csv"
    for path, part in ((first, rows[:6]), (rest, rows[6:])):
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(part)

    def opts(home: Path, orders: Path) -> BuildOptions:
        return BuildOptions(
            catalog=SETS / "catalog.csv",
            orders=orders,
            sets=SETS / "sets.csv",
            home=home,
            threads=1,
            embeddings=False,
        )

    build(opts(tmp_path / "a", first))
    update(UpdateOptions(orders=rest, home=tmp_path / "a", threads=1))
    build(opts(tmp_path / "b", SETS / "orders.csv"))
    rel = {h: pq.read_table(inputs_dir(tmp_path / h) / "graph" / "relations.parquet") for h in ("a", "b")}
    key = [("src", "ascending"), ("kind", "ascending"), ("dst", "ascending")]
    assert rel["a"].sort_by(key).equals(rel["b"].sort_by(key))
    assert pq.read_table(inputs_dir(tmp_path / "a") / "sets.parquet").num_rows == 27
    store = open_store(str(tmp_path / "a" / "graph"))
    try:
        assert "shown_in" in store.related("dress_floral", "complement")[1]["evidence"]
    finally:
        store.close()
    # a re-edited outfit: o3 now shows the dress with the sun hat, not the bag
    edited = tmp_path / "o3.csv"
    edited.write_text("set_id,product_id,kind\no3,dress_floral,outfit\no3,sun_hat,outfit\n", "utf-8")
    s = update(UpdateOptions(sets=edited, home=tmp_path / "a", threads=1))
    assert (s.counts["sets_replaced"], s.counts["sets_added"]) == (1, 0)
    store = open_store(str(tmp_path / "a" / "graph"))
    try:
        hat = next(r for r in store.related("dress_floral", "complement") if r["product_id"] == "sun_hat")
        assert hat["evidence"]["shown_in"] == {"live": 1, "outfit": 2}
    finally:
        store.close()


def _bad(tmp_path: Path, text: str, encoding: str = "utf-8") -> InputError:
    path = tmp_path / "sets.csv"
    path.write_bytes(text.encode(encoding))
    from tiein import loaders

    catalog = loaders.load_files(catalog=SETS / "catalog.csv", orders=None).products
    with pytest.raises(InputError) as exc:
        read_sets(path, Mapping(), catalog, LoadReport())
    return exc.value


@pytest.mark.parametrize(
    ("text", "row", "column", "says"),
    [
        ("set_id,kind\no1,outfit\n", None, "product_id", "no product_id column"),
        ("set_id,product_id\no1,dress_floral\no1,handbag_x\n", 3, "product_id", "'handbag_x'"),
        ("set_id,product_id\no1,dress_floral\n,sneakers\n", 3, "set_id", "empty set id"),
        ("set_id,product_id,weight\no1,dress_floral,heavy\n", 2, "weight", "'heavy'"),
        ("set_id,product_id,weight\no1,dress_floral,-1\n", 2, "weight", "above 0"),
        ("set_id,product_id,kind\no1,dress_floral,podcast\n", 2, "kind", "unknown kind 'podcast'"),
        ("set_id,product_id,kind\no1,dress_floral,outfit\no1,heels,live\n", 2, "kind", "two kinds"),
        ("set_id,product_id,ts\no1,dress_floral,yesterday-ish\n", 2, "ts", "date/time"),
    ],
)
def test_bad_sets_files(tmp_path: Path, text: str, row: int | None, column: str, says: str) -> None:
    err = _bad(tmp_path, text)
    assert err.file is not None and err.file.endswith("sets.csv")
    assert (err.row, err.column) == (row, column)
    assert says in str(err)


def test_gbk_file_with_chinese_names(tmp_path: Path) -> None:
    path = tmp_path / "内容.csv"
    text = "视频ID,商品ID,类型,权重\nv9,dress_floral,穿搭,2\nv9,straw_bag,穿搭,\nl9,heels,直播,\n"
    path.write_bytes(text.encode("gbk"))
    from tiein import loaders

    catalog = loaders.load_files(catalog=SETS / "catalog.csv", orders=None).products
    report = LoadReport()
    sets = read_sets(path, Mapping(), catalog, report)
    assert sets.to_pylist() == [
        {"set_id": "v9", "product_id": "dress_floral", "kind": "outfit", "weight": 2.0, "ts": None},
        {"set_id": "v9", "product_id": "straw_bag", "kind": "outfit", "weight": 2.0, "ts": None},
        {"set_id": "l9", "product_id": "heels", "kind": "live", "weight": 1.0, "ts": None},
    ]
    assert report.files[0].encoding in ("gbk", "gb18030")
    mapped = tmp_path / "mapped.csv"
    mapped.write_text("look,sku\nx,heels\nx,chain_bag\n", "utf-8")
    got = read_sets(
        mapped, Mapping.from_cli(["sets.set_id=look", "sets.product_id=sku"]), catalog, LoadReport()
    )
    assert got.column("kind").to_pylist() == ["manual", "manual"]


def test_cli_build_with_sets(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tiein.cli import cli

    runner = CliRunner()
    home = tmp_path / "home"
    out = runner.invoke(
        cli,
        [
            "build",
            "--catalog",
            str(SETS / "catalog.csv"),
            "--sets",
            str(SETS / "sets.csv"),
            "--home",
            str(home),
        ]
        + ["--no-embeddings", "--json", "--quiet"],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["counts"]["sets"] == 7
    out = runner.invoke(cli, ["related", "dress_black", "--home", str(home), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["related"]
    assert [r["product_id"] for r in rows] == ["heels", "jacket", "chain_bag"]
    assert "3 个视频" not in rows[0]["explanation_zh"] and "1 个视频" in rows[0]["explanation_zh"]
    bad = runner.invoke(
        cli,
        [
            "build",
            "--catalog",
            str(SETS / "catalog.csv"),
            "--sets",
            str(SETS / "orders.csv"),
            "--home",
            str(home),
        ]
        + ["--no-embeddings", "--quiet"],
    )
    assert isinstance(bad.exception, InputError)  # `tiein` prints it as one line, exit 2
    assert "orders.csv" in str(bad.exception) and "no set_id column" in str(bad.exception)


def test_without_sets_nothing_changes(tmp_path: Path) -> None:
    """No --sets: no set keys in evidence, meta or summary, no sets file in the home's state, and
    such a home (as every home written before sets) still updates."""
    summary = build(
        BuildOptions(
            catalog=SETS / "catalog.csv",
            orders=SETS / "orders.csv",
            home=tmp_path,
            threads=1,
            embeddings=False,
        )
    )
    assert "sets" not in summary.counts and "content_sets" not in summary.to_dict()
    assert not (inputs_dir(tmp_path) / "sets.parquet").exists()
    store = open_store(summary.store)
    try:
        rows = store.related("dress_floral", "complement")
        assert [r["product_id"] for r in rows] == ["straw_bag"]
        assert not {"shown_together", "shown_in", "set_lift"} & set(rows[0]["evidence"])
        assert "content_sets" not in store.stats()["meta"]
    finally:
        store.close()
    s = update(UpdateOptions(sets=SETS / "sets.csv", home=tmp_path, threads=1))
    assert s.counts["sets_added"] == 7 and s.path == "full"
    store = open_store(summary.store)
    try:
        assert [r["product_id"] for r in store.related("dress_floral", "complement")] == [
            "straw_bag",
            "sneakers",
            "sun_hat",
        ]
    finally:
        store.close()

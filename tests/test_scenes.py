"""Scenes (tiein/scenes.py): user scene files, member assignment, discovery, the build, the CLI.

Hand-made data (tests/fixtures/scenes): a 15-product camping + phone catalog with Chinese titles
and the scene file camping.yaml (露营 / camping: tent → folding chair → camp lamp → sleeping bag,
and phone accessories). Expected members are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from tiein.errors import ConfigError
from tiein.model import PRODUCTS, RELATIONS, SCENE_MEMBERS, SCENES
from tiein.scenes import (
    STORE_COMPLEMENTS_QUERY,
    STORE_PRODUCTS_QUERY,
    Role,
    SceneDef,
    assign_members,
    discover_scenes,
    dump_scenes,
    empty_roles,
    load_scenes,
)

FIX = Path(__file__).parent / "fixtures" / "scenes"
SHOP = Path(__file__).parent / "fixtures" / "shop"
TIEIN = [sys.executable, "-m", "tiein.cli"]


def catalog() -> pa.Table:
    t = pacsv.read_csv(
        FIX / "catalog.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in PRODUCTS}, strings_can_be_null=True
        ),
    )
    cols = {
        f.name: t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
        for f in PRODUCTS
    }
    return pa.table(cols, schema=PRODUCTS)


def members_of(members: pa.Table, scene_id: str) -> dict[str, tuple[str, float]]:
    return {
        r["product_id"]: (r["role"], r["weight"]) for r in members.to_pylist() if r["scene_id"] == scene_id
    }


# ----------------------------------------------------------------------------- user scenes
def test_load_camping_file() -> None:
    scenes = load_scenes(FIX / "camping.yaml")
    assert [s.scene_id for s in scenes] == ["camping", "phone-accessories"]
    camping = scenes[0]
    assert (camping.name, camping.name_en, camping.name_zh, camping.source) == (
        "露营",
        "camping",
        "露营",
        "user",
    )
    assert [r.name for r in camping.roles] == ["tent", "folding chair", "camp lamp", "sleeping bag"]
    assert camping.roles[3] == Role("sleeping bag", keywords=("睡袋",), products=("bag-1",))


def test_assign_members_by_hand() -> None:
    scenes = load_scenes(FIX / "camping.yaml")
    scene_t, members = assign_members(catalog(), scenes)
    assert scene_t.schema == SCENES and members.schema == SCENE_MEMBERS
    assert scene_t.to_pylist() == [
        {"scene_id": "camping", "name": "露营", "source": "user"},
        {"scene_id": "phone-accessories", "name": "phone accessories", "source": "user"},
    ]
    assert members_of(members, "camping") == {
        # tent: the Outdoor > Tents subtree (pegs-1 too) and 帐篷 in a title; tentlamp is also a
        # lamp (Lighting) but a product takes its first role
        "tent-1": ("tent", 1.0),
        "tent-2": ("tent", 1.0),
        "pegs-1": ("tent", 1.0),
        "tentlamp": ("tent", 1.0),
        # "camping chair" matches "Folding CAMPING chair" (case-insensitive); 折叠椅 the Chinese one;
        # table-1 is in the same category but matches no keyword
        "chair-1": ("folding chair", 2.0),
        "chair-2": ("folding chair", 2.0),
        # leaf name Lighting: a path ending in it, and a product with only a category
        "lamp-1": ("camp lamp", 3.0),
        "lamp-2": ("camp lamp", 3.0),
        "bag-1": ("sleeping bag", 4.0),
        "bag-2": ("sleeping bag", 4.0),  # by id / by 睡袋
    }
    assert members_of(members, "phone-accessories") == {
        "phone-1": ("phone", 1.0),
        "case-1": ("protection", 2.0),
        "film-1": ("protection", 2.0),
        "charger-1": ("charger", 3.0),
    }
    assert empty_roles(scenes, members) == []


def test_assign_members_reports_empty_roles_and_scales() -> None:
    scenes = [SceneDef("x", (Role("a", keywords=("tent",)), Role("nothing", keywords=("zzz",))))]
    _, members = assign_members(catalog(), scenes)
    assert empty_roles(scenes, members) == ["x / nothing"]
    # 60k products: vectorised, one pass per role
    n = 60_000
    big = pa.table(
        {
            "product_id": [f"p{i}" for i in range(n)],
            "title": [("folding chair 折叠椅" if i % 3 == 0 else "tent") for i in range(n)],
            "category": [None] * n,
            "category_path": ["Outdoor > Tents" if i % 2 else "Outdoor > Furniture" for i in range(n)],
            "brand": [None] * n,
            "price": [None] * n,
            "stock": [None] * n,
            "attributes": [None] * n,
            "margin": [None] * n,
            "sales_role": [None] * n,
            "product_type": [None] * n,
        },
        schema=PRODUCTS,
    )
    _, m = assign_members(big, load_scenes(FIX / "camping.yaml"))
    # odd i: tent (subtree); even i: 折叠椅 when i % 3 == 0 (i % 6 == 0), else nothing
    assert m.num_rows == n // 2 + n // 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scenes:\n  - name: a\n    roles: []\n", r"scene 1 \('a'\): 'roles' must be a non-empty list"),
        (
            "- name: a\n  colour: red\n  roles: [{name: r, keywords: [x]}]\n",
            r"scene 1 \('a'\): unknown key\(s\) 'colour'",
        ),
        ("- name: a\n  roles: [{name: r, keyword: [x]}]\n", r"role 1 \('r'\): unknown key\(s\) 'keyword'"),
        (
            "- name: a\n  roles: [{name: r}]\n",
            r"role 1 \('r'\): needs at least one of categories, keywords, products",
        ),
        ("- roles: [{name: r, keywords: [x]}]\n", r"scene 1: 'name' is missing"),
        (
            "- name: 露营\n  roles: [{name: r, keywords: [x]}]\n- name: 露营\n  roles: [{name: r, keywords: [y]}]\n",
            r"scene 2 \('露营'\): duplicate scene name",
        ),
        (
            "- name: a\n  roles: [{name: r, keywords: [x]}, {name: R, products: [p]}]\n",
            r"role 2 \('R'\): duplicate role name",
        ),
        ("- name: a\n  roles: [{name: r, keywords: [[x]]}]\n", r"'keywords' must be a string or a list"),
        ("other: 1\n", r"expected a list of scenes"),
        ("[]\n", r"non-empty list of scenes"),
        ("- name: a\n  roles: [{name: r, keywords: [x]\n", r"not valid YAML/JSON"),
    ],
)
def test_validation_errors_name_file_scene_role_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as info:
        load_scenes(path)
    assert str(path) in str(info.value)


def test_validation_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"name": "a", "roles": [{"name": "r"}]}, {"name": "b", "x": 1, "roles": []}]))
    with pytest.raises(ConfigError) as info:
        load_scenes(path)
    msg = str(info.value)
    assert "scene 1 ('a') role 1 ('r')" in msg and "scene 2 ('b'): unknown key(s) 'x'" in msg
    assert "scene 2 ('b'): 'roles' must be a non-empty list" in msg
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenes(tmp_path / "missing.yaml")


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    scenes = load_scenes(FIX / "camping.yaml")
    path = dump_scenes(scenes, tmp_path / "out.yaml")
    assert "露营" in path.read_text(encoding="utf-8")  # readable, not escaped
    assert load_scenes(path) == scenes
    assert load_scenes(FIX / "shop_scenes.json")[0].scene_id == "camping"  # JSON works too


# ----------------------------------------------------------------------------- discovery
def relations(rows: list[tuple[str, str, str, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"src": s, "dst": d, "kind": k, "score": w, "evidence": "{}"} for s, d, k, w in rows],
        schema=RELATIONS,
    )


HAND_RELATIONS = [
    # camping: degrees (within the community) Tents 3+2=5, Furniture 3+1=4, Lighting 2+1=3
    ("tent-1", "chair-1", "complement", 2.0),
    ("chair-1", "tent-2", "complement", 1.0),
    ("tent-1", "lamp-1", "complement", 2.0),
    ("chair-2", "lamp-1", "complement", 1.0),
    # phones: Phones 4+3=7, Cases 4+0.5=4.5, Screen film 3+0.5=3.5
    ("phone-1", "case-1", "complement", 4.0),
    ("phone-1", "film-1", "complement", 3.0),
    ("case-1", "film-1", "complement", 0.5),
    ("tent-1", "case-1", "complement", 0.1),  # a weak bridge between the two
    ("tent-1", "tent-2", "complement", 9.0),  # same category: skipped
    ("phone-1", "charger-1", "substitute", 9.0),  # not a complement: ignored
]


def test_discover_hand_made_communities() -> None:
    found = discover_scenes(catalog(), relations(HAND_RELATIONS), seed=0)
    assert [(s.scene_id, s.source) for s in found] == [
        ("discovered-01", "discovered"),
        ("discovered-02", "discovered"),
    ]
    # strongest first: phones (internal weight 7.5) before camping (6.0)
    phones, camping = found
    assert [r.categories for r in phones.roles] == [
        ("Electronics > Phones",),
        ("Electronics > Accessories > Cases",),
        ("Electronics > Accessories > Screen film",),
    ]
    assert [r.name for r in phones.roles] == ["Phones", "Cases", "Screen film"]
    assert phones.name == "Phones · Cases · Screen film"
    assert [r.categories for r in camping.roles] == [
        ("Outdoor > Tents",),
        ("Outdoor > Furniture",),
        ("Outdoor > Lighting",),
    ]
    # members: every product in those categories (the Tents subtree includes pegs-1)
    _, members = assign_members(catalog(), found)
    assert set(members_of(members, "discovered-02")) == {
        "tent-1",
        "tent-2",
        "pegs-1",
        "chair-1",
        "chair-2",
        "table-1",
        "lamp-1",
        "tentlamp",
    }
    # deterministic across runs and equal for another order of the input rows
    again = discover_scenes(catalog(), relations(list(reversed(HAND_RELATIONS))), seed=0)
    assert again == found
    assert discover_scenes(catalog(), relations(HAND_RELATIONS), max_scenes=1) == found[:1]


def test_discover_without_categories_falls_back_to_products() -> None:
    cat = catalog()
    plain = cat.set_column(2, "category", pa.nulls(cat.num_rows, pa.string())).set_column(
        3, "category_path", pa.nulls(cat.num_rows, pa.string())
    )
    two_triangles = [
        ("tent-1", "chair-1", "complement", 3.0),
        ("tent-1", "lamp-1", "complement", 3.0),
        ("chair-1", "lamp-1", "complement", 2.0),
        ("phone-1", "case-1", "complement", 4.0),
        ("phone-1", "film-1", "complement", 3.0),
        ("case-1", "film-1", "complement", 2.0),
        ("lamp-1", "case-1", "complement", 0.1),  # weak bridge
    ]
    found = discover_scenes(plain, relations(two_triangles))
    # roles = single products by weighted degree inside the community (ties by id):
    # phones: phone-1 7, case-1 6, film-1 5 (internal 9.0); camping: tent-1 6, chair-1 5, lamp-1 5 (8.0)
    assert [[r.products for r in s.roles] for s in found] == [
        [("phone-1",), ("case-1",), ("film-1",)],
        [("tent-1",), ("chair-1",), ("lamp-1",)],
    ]
    assert [r.name for r in found[0].roles] == [
        "Apex X smartphone 256GB",
        "Clear protective case",
        "Tempered glass screen film",
    ]
    assert all(s.name for s in found)
    assert found[1].name == "camping · campr · chair"  # most frequent title words, then alphabetical
    assert discover_scenes(plain, relations([])) == []
    # a graph over max_nodes keeps its strongest nodes by weighted degree: phone-1 7, case-1 6.1,
    # tent-1 6 (lamp-1 5.1, chair-1 5 and film-1 5 out); of their edges only phone-1 - case-1 is left
    # (inside it both weigh 4: ties by id)
    capped = discover_scenes(plain, relations(two_triangles), max_nodes=3)
    assert [[r.products for r in s.roles] for s in capped] == [[("case-1",), ("phone-1",)]]
    assert discover_scenes(plain, relations(two_triangles), max_nodes=6) == found


# ----------------------------------------------------------------------------- build + CLI
def run(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TIEIN_HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("TIEIN_STORE", None)
    proc = subprocess.run([*TIEIN, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"tiein {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


SHOP_BUILD = (
    "build",
    "--catalog",
    str(SHOP / "catalog.csv"),
    "--orders",
    str(SHOP / "orders.csv"),
    "--no-embeddings",
    "--quiet",
)


def test_cli_user_scenes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run(*SHOP_BUILD, "--scenes", str(FIX / "shop_scenes.json"), home=home).stdout
    assert "scenes: 2 user" in out and "no product fills role 露营 / sleeping bag" in out
    listed = json.loads(run("scenes", "list", "--json", home=home).stdout)["scenes"]
    assert listed == [
        {
            "scene_id": "camping",
            "name": "露营",
            "source": "user",
            "members": 3,
            "roles": ["tent", "folding chair", "camp lamp"],
        },  # sleeping bag: no product in the shop
        {
            "scene_id": "phone-accessories",
            "name": "手机配件",
            "source": "user",
            "members": 5,
            "roles": ["phone", "accessory"],
        },
    ]
    shown = json.loads(run("scenes", "show", "露营", "--json", home=home).stdout)
    assert [(r["role"], [p["product_id"] for p in r["products"]]) for r in shown["roles"]] == [
        ("tent", ["tent"]),
        ("folding chair", ["chair"]),
        ("camp lamp", ["lamp"]),
    ]
    phones = json.loads(run("scenes", "show", "Phone-Accessories", "--json", home=home).stdout)
    assert [p["product_id"] for p in phones["roles"][1]["products"]] == ["case", "charger", "film"]  # by id
    table = run("scenes", "show", "camping", home=home).stdout
    assert "1. tent" in table and "3. camp lamp" in table and "LED camping lantern" in table
    missing = run("scenes", "show", "skiing", home=home, check=False)
    assert missing.returncode == 2 and "scene 'skiing' is not in the graph" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (home / "scenes.discovered.yaml").exists()  # user scenes win


def test_cli_bad_scenes_file_fails_fast(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: 露营\n  roles: [{name: tent, categorys: [Tents]}]\n", encoding="utf-8")
    proc = run(*SHOP_BUILD, "--scenes", str(bad), home=tmp_path / "home", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: scene 1 ('露营') role 1 ('tent'): unknown key(s) 'categorys'" in proc.stderr


def test_cli_discovered_scenes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run(*SHOP_BUILD, home=home).stdout
    assert "scenes: 2 discovered" in out
    written = load_scenes(home / "scenes.discovered.yaml")
    listed = json.loads(run("scenes", "list", "--json", home=home).stdout)["scenes"]
    assert [s["scene_id"] for s in listed] == [s.scene_id for s in written]
    assert all(s["source"] == "discovered" and len(s["roles"]) >= 2 for s in listed)
    # shop orders: tent+chair 5×, tent+lamp 4× → the camping categories form one scene
    roles = {tuple(r.categories[0] for r in s.roles) for s in written}
    assert ("Outdoor > Tents", "Outdoor > Furniture", "Outdoor > Lighting") in roles
    # `scenes discover` reads the graph back and finds the same scenes
    again = tmp_path / "again.yaml"
    text = run("scenes", "discover", "--out", str(again), home=home).stdout
    assert f"wrote {again}" in text
    assert load_scenes(again) == written
    # the file is editable input: build again with it as user scenes
    out = run(*SHOP_BUILD, "--scenes", str(again), home=home).stdout
    assert f"scenes: {len(written)} user" in out


def test_discovery_runs_beside_the_season_step_and_its_error_is_the_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scenes are discovered on their own thread while season evidence is counted (they need only
    the complements' ends and scores); the build waits for them, and a failure there fails the
    build with that error, leaving no thread behind and no graph switched."""
    import threading

    from tiein import stages
    from tiein.pipeline import BuildOptions, build

    opts = BuildOptions(
        catalog=SHOP / "catalog.csv", orders=SHOP / "orders.csv", home=tmp_path, embeddings=False
    )
    seen: list[str] = []
    real = stages.discover_scenes

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stages, "discover_scenes", spy)
    summary = build(opts)
    assert seen == ["tiein-beside"] and summary.scenes["count"] == 2

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("scene discovery broke")

    monkeypatch.setattr(stages, "discover_scenes", broken)
    before = (tmp_path / "CURRENT").read_text()
    with pytest.raises(RuntimeError, match="scene discovery broke"):
        build(opts)
    assert (tmp_path / "CURRENT").read_text() == before  # the previous build still serves
    assert not any(t.name == "tiein-beside" for t in threading.enumerate())


def test_store_queries_for_discovery_are_portable(tmp_path: Path) -> None:
    """The two read-back queries run on the embedded store and pass Neo4j's parser."""
    from test_neo4j_cypher import run_checker

    out = run_checker({"products": STORE_PRODUCTS_QUERY, "complements": STORE_COMPLEMENTS_QUERY})
    assert all(not r["errors"] and not r["warnings"] for r in out["results"].values()), out["results"]


# ----------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_discover_on_instacart(tmp_path: Path) -> None:
    from tiein.graph import open_store
    from tiein.pipeline import BuildOptions, build

    summary = build(BuildOptions(dataset="instacart", home=tmp_path, embeddings=False, threads=1))
    assert summary.scenes["source"] == "discovered"
    assert 3 <= summary.scenes["count"] <= 12
    store = open_store(str(tmp_path / "graph"))
    try:
        listed = store.scenes()
        assert len(listed) == summary.scenes["count"]
        for s in listed:
            assert s["name"].strip() and s["members"] > 0
            assert len(s["roles"]) >= 2  # ≥ 2 aisles per scene
        first = store.scene(listed[0]["scene_id"])
    finally:
        store.close()
    # roles are aisles (instacart: category = aisle, path = department > aisle)
    assert all(r["products"] and r["products"][0]["category_path"] for r in first["roles"])
    assert len({r["products"][0]["category"] for r in first["roles"]}) == len(first["roles"])
    assert load_scenes(tmp_path / "scenes.discovered.yaml")[0].name == listed[0]["name"]

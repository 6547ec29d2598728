"""`tiein update` (tiein/update.py): an update equals a full build on the union of the data.

Every equality test builds twice with the real pipeline (real files, DuckDB, the embedded store):
once on part of the data followed by ``update`` with the rest, once in full; then compares the
graph each loaded (HOME/inputs/graph, the tables the store received) and the store's answers.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tiein.bundles import bundle
from tiein.errors import ConfigError, InputError
from tiein.graph import open_store
from tiein.home import index_dir, inputs_dir
from tiein.model import RELATION_KINDS
from tiein.pipeline import BuildOptions, build
from tiein.update import GRAPH_PARTS, UpdateOptions, update

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _write(path: Path, header: list[str], rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    return path


def _opts(home: Path, **kw: Any) -> BuildOptions:
    return BuildOptions(home=home, threads=1, embeddings=False, min_count=1, **kw)


def graph_of(home: Path) -> dict[str, list[dict[str, Any]]]:
    """The graph a home's store was loaded with, as sorted rows per table (meta left out)."""
    keys = {
        "products": ["product_id"],
        "co_purchased": ["a", "b"],
        "co_viewed": ["a", "b"],
        "relations": ["src", "kind", "dst"],
        "scenes": ["scene_id"],
        "scene_members": ["scene_id", "product_id"],
    }
    out = {}
    for part in GRAPH_PARTS:
        t = pq.read_table(inputs_dir(home) / "graph" / f"{part}.parquet")
        out[part] = t.sort_by([(k, "ascending") for k in keys[part]]).to_pylist()
    return out


def store_answers(home: Path) -> dict[str, Any]:
    """Everything the store answers about every product (relations of every kind, scenes)."""
    st = open_store(str(home / "graph"))
    try:
        stats = st.stats()
        ids = [r["product_id"] for r in st.query("MATCH (p:Product) RETURN p.product_id AS product_id")]
        return {
            "nodes": stats["nodes"],
            "relationships": stats["relationships"],
            "products": {p: st.product(p) for p in sorted(ids)},
            "related": {(p, k): st.related(p, k, 100) for p in sorted(ids) for k in RELATION_KINDS},
            "scenes": st.scenes(),
        }
    finally:
        st.close()


def assert_same_graph(updated: Path, full: Path) -> None:
    a, b = graph_of(updated), graph_of(full)
    for part in GRAPH_PARTS:
        assert a[part] == b[part], part
    assert len(a["relations"]) > 10
    assert store_answers(updated) == store_answers(full)


@pytest.fixture(scope="module")
def camping_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole camping shop built once per module with :func:`_opts` (never changed: tests take
    a copy with :func:`camping_home`)."""
    home = tmp_path_factory.mktemp("camping-built") / "home"
    build(_opts(home, catalog=CAMPING / "catalog.csv", orders=CAMPING / "orders.csv"))
    return home


def camping_home(camping_built: Path, home: Path) -> Path:
    """A fresh home holding the whole camping shop, as ``build(_opts(home, catalog=CAMPING /
    "catalog.csv", orders=CAMPING / "orders.csv"))`` leaves it: a copy of the module's one build."""
    shutil.copytree(camping_built, home)
    return home


@pytest.fixture()
def camping_split(tmp_path: Path) -> dict[str, Path]:
    """The camping shop cut in two: the first catalog rows with the orders of only those products
    (the first ~60 %), then the last 4 products and every other order."""
    cat_h, cat = _rows(CAMPING / "catalog.csv")
    ord_h, lines = _rows(CAMPING / "orders.csv")
    late = {r["product_id"] for r in cat[-4:]}
    order_ids = list(dict.fromkeys(r["order_id"] for r in lines))
    has_late = {r["order_id"] for r in lines if r["product_id"] in late}
    first = {o for o in order_ids[: int(len(order_ids) * 0.6)] if o not in has_late}
    return {
        "catalog1": _write(tmp_path / "catalog1.csv", cat_h, cat[:-4]),
        "catalog2": _write(tmp_path / "catalog2.csv", cat_h, cat[-4:]),
        "orders1": _write(tmp_path / "orders1.csv", ord_h, [r for r in lines if r["order_id"] in first]),
        "orders2": _write(tmp_path / "orders2.csv", ord_h, [r for r in lines if r["order_id"] not in first]),
    }


def test_update_equals_full_build_on_the_camping_shop(
    tmp_path: Path, camping_split: dict[str, Path], camping_built: Path
) -> None:
    s = camping_split
    build(_opts(tmp_path / "inc", catalog=s["catalog1"], orders=s["orders1"]))
    before = graph_of(tmp_path / "inc")
    summary = update(
        UpdateOptions(catalog=s["catalog2"], orders=s["orders2"], home=tmp_path / "inc", threads=1)
    )
    assert summary.path == "full"
    assert summary.counts["products_added"] == 4
    assert summary.counts["order_lines_added"] > 100
    assert "pair statistics (merged)" in summary.recomputed
    camping_home(camping_built, tmp_path / "full")
    assert_same_graph(tmp_path / "inc", tmp_path / "full")
    assert graph_of(tmp_path / "inc")["relations"] != before["relations"]  # the update did change it
    # more baskets change every pair edge's support and lift: a bulk replace, not an upsert of all
    assert summary.store_write == "replace" and summary.delta == {}

    # the same update again: every line is already there; nothing changes, and it says so
    again = update(
        UpdateOptions(catalog=s["catalog2"], orders=s["orders2"], home=tmp_path / "inc", threads=1)
    )
    assert again.path == "no-op"
    assert again.counts["duplicate_order_lines"] == summary.counts["order_lines_added"]
    assert again.counts["order_lines_added"] == 0
    assert any("deduplicated by order id + product id" in n for n in again.notes)
    assert again.store_write == "apply"
    assert again.delta["upserted_rels"] == 0 and again.delta["changed_nodes"] == 0
    assert_same_graph(tmp_path / "inc", tmp_path / "full")


def _timeline_shop(tmp_path: Path, seed: int = 3) -> tuple[Path, list[str], list[dict[str, Any]]]:
    """A small shop whose customers come back over months (bought-after counts, "next"
    relations, customers spanning both parts of a split), with one order split over two files."""
    rng = random.Random(seed)
    items = [f"i{k:02d}" for k in range(24)]
    cat = _write(
        tmp_path / "cat.csv",
        ["product_id", "title", "category", "price", "stock"],
        [
            {"product_id": p, "title": f"item {p}", "category": f"c{k % 5}", "price": 5 + 7 * k, "stock": 3}
            for k, p in enumerate(items)
        ],
    )
    lines = []
    for n in range(420):
        cust = f"u{rng.randrange(40):02d}"
        day = 1 + n // 4
        first = rng.choice(items[:8])
        basket = {first, rng.choice(items[8:16]) if rng.random() < 0.6 else first}
        basket |= {rng.choice(items)} if rng.random() < 0.5 else set()
        # follow-ups: i0x then, weeks later, i1x for the same customer
        for p in sorted(basket):
            lines.append(
                {
                    "order_id": f"o{n:04d}",
                    "product_id": p,
                    "quantity": 1,
                    "customer_id": cust,
                    "ts": f"2024-{1 + day // 28:02d}-{1 + day % 28:02d} 10:00:00",
                }
            )
    return cat, ["order_id", "product_id", "quantity", "customer_id", "ts"], lines


def test_update_equals_full_build_with_customer_timelines(tmp_path: Path) -> None:
    cat, header, lines = _timeline_shop(tmp_path)
    cut = next(
        i
        for i in range(int(len(lines) * 0.8), len(lines))
        if lines[i - 1]["order_id"] == lines[i]["order_id"]
    )
    # the order at the cut is split over both files: an update can add lines to a stored order
    _write(tmp_path / "o1.csv", header, lines[:cut])
    _write(tmp_path / "o2.csv", header, lines[cut:])
    _write(tmp_path / "all.csv", header, lines)
    build(_opts(tmp_path / "inc", catalog=cat, orders=tmp_path / "o1.csv"))
    summary = update(UpdateOptions(orders=tmp_path / "o2.csv", home=tmp_path / "inc", threads=1))
    build(_opts(tmp_path / "full", catalog=cat, orders=tmp_path / "all.csv"))
    g = graph_of(tmp_path / "full")
    assert any(r["kind"] == "next" for r in g["relations"])  # the check covers "next" relations
    assert any(r["after_ab"] or r["after_ba"] for r in g["co_purchased"])
    assert summary.counts["recounted_order_lines"] < len(lines)  # only touched customers recounted
    assert_same_graph(tmp_path / "inc", tmp_path / "full")


def test_stock_update_drops_the_chair_from_the_bundle_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            embeddings=False,
            discover_scenes=False,
        )
    )
    rel_before = graph_of(home)["relations"]
    st = open_store(str(home / "graph"))
    try:
        assert "chair" in [i.product["product_id"] for i in bundle(st, "tent").items]
    finally:
        st.close()
    stock = _write(tmp_path / "stock.csv", ["product_id", "stock"], [{"product_id": "chair", "stock": 0}])
    summary = update(UpdateOptions(catalog=stock, home=home))
    assert summary.path == "stock"
    assert "classification" not in summary.recomputed and "pair statistics (merged)" not in summary.recomputed
    assert summary.counts["products_changed"] == 1
    assert summary.delta["changed_nodes"] >= 1 and summary.delta["upserted_rels"] == 0
    st = open_store(str(home / "graph"))
    try:
        chair = st.product("chair")
        assert chair["stock"] == 0 and chair["title"] == "Folding camping chair" and chair["price"] == 129.0
        items = [i.product["product_id"] for i in bundle(st, "tent").items]
        assert "chair" not in items and items  # the bundle goes on without it
    finally:
        st.close()
    assert graph_of(home)["relations"] == rel_before


def test_price_change_reclassifies_like_a_full_build(tmp_path: Path, camping_built: Path) -> None:
    cat_h, cat = _rows(CAMPING / "catalog.csv")
    camping_home(camping_built, tmp_path / "inc")
    price = _write(tmp_path / "price.csv", ["product_id", "price"], [{"product_id": "chair", "price": 399}])
    summary = update(UpdateOptions(catalog=price, home=tmp_path / "inc"))
    assert summary.path == "reclassify"
    assert "classification" in summary.recomputed and "pair statistics (merged)" not in summary.recomputed
    changed = [{**r, "price": "399"} if r["product_id"] == "chair" else r for r in cat]
    full_cat = _write(tmp_path / "catalog.csv", cat_h, changed)
    build(_opts(tmp_path / "full", catalog=full_cat, orders=CAMPING / "orders.csv"))
    assert_same_graph(tmp_path / "inc", tmp_path / "full")
    tent_chair = [
        r for r in graph_of(tmp_path / "inc")["relations"] if (r["src"], r["dst"]) == ("tent", "chair")
    ]
    assert tent_chair and all(r["price_ratio"] == round(399 / 299, 6) for r in tent_chair)


def test_bad_update_leaves_graph_and_state_untouched(tmp_path: Path, camping_built: Path) -> None:
    home = camping_home(camping_built, tmp_path / "home")
    state = {p.name: p.read_bytes() for p in (inputs_dir(home)).rglob("*") if p.is_file()}
    answers = store_answers(home)
    bad = _write(
        tmp_path / "bad.csv",
        ["order_id", "product_id", "quantity", "customer_id", "ts"],
        [
            {"order_id": "n1", "product_id": "tent", "quantity": 1, "customer_id": "u9", "ts": "2024-06-01"},
            {
                "order_id": "n1",
                "product_id": "pegs",
                "quantity": "lots",
                "customer_id": "u9",
                "ts": "2024-06-01",
            },
        ],
    )
    with pytest.raises(InputError) as err:
        update(UpdateOptions(orders=bad, home=home))
    assert err.value.file and err.value.file.endswith("bad.csv")
    assert err.value.row == 3 and err.value.column == "quantity"
    assert {p.name: p.read_bytes() for p in (inputs_dir(home)).rglob("*") if p.is_file()} == state
    assert store_answers(home) == answers
    with pytest.raises(ConfigError, match="nothing to update"):
        update(UpdateOptions(home=home))
    with pytest.raises(ConfigError, match="tiein build"):
        update(UpdateOptions(orders=bad, home=tmp_path / "empty"))


def test_update_refuses_a_state_that_is_not_the_graph(tmp_path: Path, camping_built: Path) -> None:
    """A build into another store leaves HOME/inputs describing that graph: refuse, change nothing."""
    home = camping_home(camping_built, tmp_path / "home")
    build(
        _opts(
            home,
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            store_url=str(tmp_path / "other"),
        )
    )
    answers = store_answers(home)
    stock = _write(tmp_path / "stock.csv", ["product_id", "stock"], [{"product_id": "chair", "stock": 0}])
    with pytest.raises(ConfigError, match="not the one"):
        update(UpdateOptions(catalog=stock, home=home))
    assert store_answers(home) == answers


def test_a_home_built_by_an_older_version_updates(tmp_path: Path, camping_built: Path) -> None:
    """Options removed since the home was built are dropped, options added since take their
    defaults (a removed ``type_fallback.types_per_anchor`` once made every update crash)."""
    home = camping_home(camping_built, tmp_path / "home")
    path = inputs_dir(home) / "build.json"
    saved = json.loads(path.read_text("utf-8"))
    options = saved["options"]
    options["type_fallback"]["types_per_anchor"] = 3
    options["relations"]["a_knob_removed_since"] = 1.5
    options["ranker"].pop(next(iter(options["ranker"])))
    path.write_text(json.dumps(saved), encoding="utf-8")
    stock = _write(tmp_path / "stock.csv", ["product_id", "stock"], [{"product_id": "chair", "stock": 0}])
    summary = update(UpdateOptions(catalog=stock, home=home))
    assert summary.path == "stock" and summary.delta
    st = open_store(str(home / "graph"))
    try:
        assert st.product("chair")["stock"] == 0
    finally:
        st.close()
    now = json.loads((inputs_dir(home) / "build.json").read_text("utf-8"))["options"]
    assert "types_per_anchor" not in now["type_fallback"]  # the state now holds this version's options


def test_cached_titles_do_not_load_the_model(tmp_path: Path) -> None:
    """With every title already embedded, an update reads vectors from the cache: torch is never
    imported (checked in a fresh interpreter)."""
    import subprocess
    import textwrap

    home = tmp_path / "home"
    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            discover_scenes=False,
        )
    )
    ord_h, lines = _rows(CAMPING / "orders.csv")
    new = _write(tmp_path / "new.csv", ord_h, [{**r, "order_id": "x" + r["order_id"]} for r in lines[:30]])
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from tiein.update import UpdateOptions, update
        s = update(UpdateOptions(orders=Path({str(new)!r}), home=Path({str(home)!r}), threads=1))
        print(json.dumps({{"torch": "torch" in sys.modules, "path": s.path, "added": s.counts["order_lines_added"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "path": "full", "added": 30}
    manifest = json.loads((index_dir(home) / "manifest.json").read_text())
    assert manifest["count"] == 19


@pytest.mark.slow
def test_online_retail_slice_update_equals_full_build(tmp_path: Path) -> None:
    """Real data: Online Retail normalised lines, built on all but the last 1 % (by time), then
    updated with that 1 %; the graph equals a full build on all of it.

    The two builds are independent, so the full one runs in a child process (the same
    ``build(BuildOptions(...))`` call) while this one builds and updates the other home."""
    import subprocess
    import textwrap

    from tiein import loaders

    loaded = loaders.load_dataset("online_retail")
    orders = loaded.orders
    ts = orders.column("ts").cast(pa.int64())
    cut = pc.quantile(ts, q=0.99)[0].as_py()
    early = pc.less(ts, cut)
    pq.write_table(loaded.products, tmp_path / "catalog.parquet")
    pq.write_table(orders.filter(early), tmp_path / "o1.parquet")
    pq.write_table(orders.filter(pc.invert(early)), tmp_path / "o2.parquet")
    pq.write_table(orders, tmp_path / "all.parquet")
    kw = {"threads": 2, "embeddings": False}
    full_build = textwrap.dedent(f"""
        from pathlib import Path
        from tiein.pipeline import BuildOptions, build
        build(
            BuildOptions(
                catalog=Path({str(tmp_path / "catalog.parquet")!r}),
                orders=Path({str(tmp_path / "all.parquet")!r}),
                home=Path({str(tmp_path / "full")!r}),
                **{kw!r},
            )
        )
    """)
    log = tmp_path / "full-build.log"  # a file, not a pipe: a full pipe would stall the child
    with open(log, "wb") as out:
        full = subprocess.Popen([sys.executable, "-c", full_build], stdout=out, stderr=subprocess.STDOUT)
    try:
        build(
            BuildOptions(
                catalog=tmp_path / "catalog.parquet",
                orders=tmp_path / "o1.parquet",
                home=tmp_path / "inc",
                **kw,
            )
        )
        summary = update(UpdateOptions(orders=tmp_path / "o2.parquet", home=tmp_path / "inc", threads=2))
    except BaseException:
        full.kill()
        raise
    finally:
        full.wait(timeout=1200)
    assert full.returncode == 0, log.read_text(encoding="utf-8", errors="replace")[-5000:]
    assert summary.counts["order_lines_added"] == orders.num_rows - pc.sum(early).as_py()
    a, b = graph_of(tmp_path / "inc"), graph_of(tmp_path / "full")
    for part in GRAPH_PARTS:
        assert a[part] == b[part], part
    assert len(a["relations"]) > 10_000


def test_a_graph_without_evidence_nodes_is_replaced_not_patched() -> None:
    """A delta assumes one Evidence node per relation (docs/schema.md); a Neo4j graph loaded by
    an earlier tiein kept the evidence on its relationships instead: its counts say so, and the
    update then replaces the graph whole."""
    from tiein.update import _evidence_in_nodes

    rels = {"COMPLEMENT": 5, "NEXT_PURCHASE": 2, "CO_PURCHASED": 9}
    assert _evidence_in_nodes({"nodes": {"Product": 4, "Evidence": 7}, "relationships": rels})
    assert not _evidence_in_nodes({"nodes": {"Product": 4, "Evidence": 0}, "relationships": rels})
    assert not _evidence_in_nodes({"nodes": {"Product": 4}, "relationships": rels})
    assert _evidence_in_nodes({"nodes": {}, "relationships": {}})  # nothing related: nothing stale

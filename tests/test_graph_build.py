"""tiein.graph.build.graph_tables on a hand-made GraphData: every derived table checked by hand, and
every validation error naming the table, row and column."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tiein.errors import InputError
from tiein.graph import build as build
from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS, graph_tables
from tiein.model import PAIR_STATS, PRODUCTS, RELATIONS, SCENE_MEMBERS, SCENES, GraphData


def products(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(PRODUCTS.names[: len(r)], r, strict=True)) for r in rows], schema=PRODUCTS
    )


def pairs(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(PAIR_STATS.names, r, strict=True)) for r in rows], schema=PAIR_STATS
    )


def relations(rows: list[tuple]) -> pa.Table:
    """rows of (src, dst, kind, score[, evidence])"""
    full = []
    for r in rows:
        src, dst, kind, score, *rest = r
        ev = rest[0] if rest else json.dumps({"score": score})
        full.append(
            {
                "src": src,
                "dst": dst,
                "kind": kind,
                "score": score,
                "n_ab": 3,
                "lift": 1.5,
                "confidence": 0.25,
                "co_view": None,
                "similarity": 0.5,
                "category_relation": "same",
                "price_ratio": 0.1,
                "evidence": ev,
            }
        )
    return pa.Table.from_pylist(full, schema=RELATIONS)


PRODUCTS_ROWS = [
    # id, title, category, category_path, brand, price, stock, attributes
    ("p2", "Phone B", "phones", "electronics > phones", " Bolt ", 649.5, 0, '{"color": "black"}'),
    (
        "p1",
        "Phone A",
        "phones",
        "electronics>phones",
        "Acme",
        699.0,
        10,
        '{"color": "black", "storage": 128, "5g": true, "colors": ["red", "red", null]}',
    ),
    ("c1", "Case", "cases", "electronics > accessories > cases", "Acme", 19.99, None, None),
    ("t1", "帐篷", "tents", None, "", 129.0, 3, "{}"),
    ("x1", "Loose item", None, None, None, None, None, '{"note": null}'),
]


def small() -> GraphData:
    return GraphData(
        products=products(PRODUCTS_ROWS),
        co_purchased=pairs([("c1", "p1", 3, 4, 5, 10, 0.3, 0.75, 0.6, 1.5, 1, 0)]),
        co_viewed=pairs([("p1", "p2", 7, 8, 9, 20, 0.35, 0.875, 0.7777, 1.9444, 0, 0)]),
        relations=relations(
            [
                ("p1", "c1", "complement", 0.9),
                ("p1", "p2", "substitute", 0.8),
                ("p2", "p1", "substitute", 0.8),
                ("p1", "t1", "upsell", 0.1),
                ("p2", "c1", "complement", 0.4),
            ]
        ),
        scenes=pa.Table.from_pylist(
            [
                {"scene_id": "s2", "name": "露营", "source": "discovered"},
                {"scene_id": "s1", "name": "new phone", "source": "user"},
            ],
            schema=SCENES,
        ),
        scene_members=pa.Table.from_pylist(
            [
                {"product_id": "p1", "scene_id": "s1", "role": "core", "weight": 1.0},
                {"product_id": "c1", "scene_id": "s1", "role": None, "weight": 0.5},
            ],
            schema=SCENE_MEMBERS,
        ),
        meta={"built": "2024-01-01T00:00:00", "sources": ["shop"]},
    )


def test_doctests() -> None:
    assert doctest.testmod(build).failed == 0


def test_every_label_and_type_has_its_schema() -> None:
    t = graph_tables(small())
    assert list(t.nodes) == list(NODE_SCHEMAS)
    assert list(t.rels) == list(REL_SCHEMAS)
    for label, table in t.nodes.items():
        assert table.schema == NODE_SCHEMAS[label], label
    for rel, table in t.rels.items():
        assert table.schema == REL_SCHEMAS[rel], rel
        assert table.column_names[:2] == ["src", "dst"]


def test_products_sorted_and_unchanged() -> None:
    t = graph_tables(small())
    p = t.nodes["Product"]
    assert p.column("product_id").to_pylist() == ["c1", "p1", "p2", "t1", "x1"]
    # property values are kept as given (brand with spaces, path without spaces)
    row = {r["product_id"]: r for r in p.to_pylist()}
    assert row["p2"]["brand"] == " Bolt "
    assert row["p1"]["category_path"] == "electronics>phones"
    assert row["c1"]["price"] == 19.99 and row["c1"]["stock"] is None


def test_categories_every_prefix_with_parent_and_level() -> None:
    t = graph_tables(small())
    cats = {r["category_id"]: (r["name"], r["level"]) for r in t.nodes["Category"].to_pylist()}
    assert cats == {
        "electronics": ("electronics", 1),
        "electronics > phones": ("phones", 2),
        "electronics > accessories": ("accessories", 2),
        "electronics > accessories > cases": ("cases", 3),
        "tents": ("tents", 1),  # category without a path: a top-level category
    }
    assert sorted((r["src"], r["dst"]) for r in t.rels["CHILD_OF"].to_pylist()) == [
        ("electronics > accessories", "electronics"),
        ("electronics > accessories > cases", "electronics > accessories"),
        ("electronics > phones", "electronics"),
    ]
    in_cat = {r["src"]: r["dst"] for r in t.rels["IN_CATEGORY"].to_pylist()}
    # "electronics>phones" and "electronics > phones" are one node; x1 has no category
    assert in_cat == {
        "c1": "electronics > accessories > cases",
        "p1": "electronics > phones",
        "p2": "electronics > phones",
        "t1": "tents",
    }


def test_brands_trimmed_blank_dropped() -> None:
    t = graph_tables(small())
    assert t.nodes["Brand"].column("name").to_pylist() == ["Acme", "Bolt"]
    assert sorted((r["src"], r["dst"]) for r in t.rels["HAS_BRAND"].to_pylist()) == [
        ("c1", "Acme"),
        ("p1", "Acme"),
        ("p2", "Bolt"),
    ]


def test_attributes_lists_numbers_booleans_nulls() -> None:
    t = graph_tables(small())
    attrs = {r["attribute_id"]: (r["key"], r["value"]) for r in t.nodes["Attribute"].to_pylist()}
    assert attrs == {
        "5g=true": ("5g", "true"),
        "color=black": ("color", "black"),
        "colors=red": ("colors", "red"),
        "storage=128": ("storage", "128"),
    }
    assert [(r["src"], r["dst"]) for r in t.rels["HAS_ATTRIBUTE"].to_pylist()] == [
        ("p1", "5g=true"),
        ("p1", "color=black"),
        ("p1", "colors=red"),  # listed twice, one edge
        ("p1", "storage=128"),
        ("p2", "color=black"),
    ]


def test_pairs_relations_and_scenes() -> None:
    t = graph_tables(small())
    cp = t.rels["CO_PURCHASED"].to_pylist()
    assert cp == [
        {
            "src": "c1",
            "dst": "p1",
            "n_ab": 3,
            "n_a": 4,
            "n_b": 5,
            "n": 10,
            "support": 0.3,
            "conf_ab": 0.75,
            "conf_ba": 0.6,
            "lift": 1.5,
            "after_ab": 1,
            "after_ba": 0,
        }
    ]
    assert t.rels["CO_VIEWED"].column("conf_ba").to_pylist() == [0.7777]
    assert [(r["src"], r["dst"], r["score"]) for r in t.rels["COMPLEMENT"].to_pylist()] == [
        ("p1", "c1", 0.9),
        ("p2", "c1", 0.4),
    ]
    assert [(r["src"], r["dst"]) for r in t.rels["SUBSTITUTE"].to_pylist()] == [("p1", "p2"), ("p2", "p1")]
    assert t.rels["UPSELL"].num_rows == 1 and t.rels["SAME_SERIES"].num_rows == 0
    assert "kind" not in t.rels["COMPLEMENT"].column_names
    # the evidence in Evidence nodes, each relation's by its key (graph/evidence.py)
    assert json.loads(t.evidence["UPSELL"].column("evidence")[0].as_py()) == {"score": 0.1}
    assert t.evidence["UPSELL"].column("evidence_id").equals(t.rels["UPSELL"].column("evidence_id"))
    assert t.nodes["Evidence"].num_rows == sum(r.num_rows for r in t.evidence.values()) == 5
    assert len(set(t.nodes["Evidence"].column("evidence_id").to_pylist())) == 5
    assert t.nodes["Scene"].column("scene_id").to_pylist() == ["s1", "s2"]
    assert t.rels["IN_SCENE"].to_pylist() == [
        {"src": "c1", "dst": "s1", "role": None, "weight": 0.5},
        {"src": "p1", "dst": "s1", "role": "core", "weight": 1.0},
    ]
    assert t.meta == {"built": "2024-01-01T00:00:00", "sources": ["shop"]}
    assert t.counts()["relationships"]["COMPLEMENT"] == 2


def test_deterministic_whatever_the_input_order() -> None:
    a = graph_tables(small())
    d = small()
    d.products = d.products.take(list(reversed(range(d.products.num_rows))))
    d.relations = d.relations.take(list(reversed(range(d.relations.num_rows))))
    b = graph_tables(d)
    for label in a.nodes:
        assert a.nodes[label].equals(b.nodes[label]), label
    for rel in a.rels:
        assert a.rels[rel].equals(b.rels[rel]), rel


def test_columns_are_cast_when_lossless() -> None:
    d = small()
    d.products = d.products.set_column(6, "stock", d.products.column("stock").cast(pa.int32()))
    assert graph_tables(d).nodes["Product"].schema.field("stock").type == pa.int64()


def _error(d: GraphData) -> InputError:
    with pytest.raises(InputError) as info:
        graph_tables(d)
    return info.value


def test_duplicate_product_id_names_the_second_row() -> None:
    d = small()
    d.products = products([*PRODUCTS_ROWS, ("p1", "again", None, None, None, None, None, None)])
    e = _error(d)
    assert (e.file, e.row, e.column) == ("products", 6, "product_id")
    assert "'p1'" in str(e)


def test_empty_product_id() -> None:
    d = small()
    d.products = products([*PRODUCTS_ROWS[:2], ("", "blank", None, None, None, None, None, None)])
    assert (_error(d).row, _error(d).column) == (3, "product_id")


@pytest.mark.parametrize(
    ("rows", "row", "column", "why"),
    [
        (
            [("p1", "c1", "complement", 0.9), ("p1", "zz", "complement", 0.5)],
            2,
            "dst",
            "'zz' is not a Product",
        ),
        ([("zz", "c1", "complement", 0.9)], 1, "src", "'zz'"),
        ([("p1", "c1", "bundle", 0.9)], 1, "kind", "unknown relation kind 'bundle'"),
        ([("p1", "p1", "complement", 0.9)], 1, "dst", "related to itself"),
        ([("p1", "c1", "complement", 0.9), ("p1", "c1", "complement", 0.3)], 2, "src,dst,kind", "duplicate"),
        ([("p1", "c1", "complement", None)], 1, "score", "score"),
        ([("p1", "c1", "complement", 0.9, "[1, 2]")], 1, "evidence", "JSON object"),
    ],
)
def test_bad_relations(rows: list[tuple], row: int, column: str, why: str) -> None:
    d = small()
    d.relations = relations(rows)
    e = _error(d)
    assert (e.file, e.row, e.column) == ("relations", row, column)
    assert why in str(e)


def test_same_pair_with_two_kinds_is_fine() -> None:
    d = small()
    d.relations = relations([("p1", "p2", "substitute", 0.9), ("p1", "p2", "series", 0.5)])
    t = graph_tables(d)
    assert t.rels["SUBSTITUTE"].num_rows == t.rels["SAME_SERIES"].num_rows == 1


@pytest.mark.parametrize(
    ("rows", "row", "column", "why"),
    [
        ([("p1", "c1", 1, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0, 0)], 1, "a", "a < b"),
        ([("p1", "p1", 1, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0, 0)], 1, "a", "a < b"),
        ([("c1", "nope", 1, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0, 0)], 1, "b", "'nope' is not a Product"),
        ([("c1", "p1", 1, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0, 0)] * 2, 2, "a,b", "duplicate pair"),
    ],
)
def test_bad_pairs(rows: list[tuple], row: int, column: str, why: str) -> None:
    d = small()
    d.co_viewed = pairs(rows)
    e = _error(d)
    assert (e.file, e.row, e.column) == ("co_viewed", row, column)
    assert why in str(e)


def test_scene_member_of_unknown_scene() -> None:
    d = small()
    d.scene_members = pa.Table.from_pylist(
        [
            {"product_id": "p1", "scene_id": "s1", "role": None, "weight": 1.0},
            {"product_id": "p1", "scene_id": "s9", "role": None, "weight": 1.0},
        ],
        schema=SCENE_MEMBERS,
    )
    e = _error(d)
    assert (e.file, e.row, e.column) == ("scene_members", 2, "scene_id")


def test_scene_member_of_unknown_product() -> None:
    d = small()
    d.scene_members = pa.Table.from_pylist(
        [{"product_id": "nope", "scene_id": "s1", "role": None, "weight": 1.0}], schema=SCENE_MEMBERS
    )
    e = _error(d)
    assert (e.file, e.row, e.column) == ("scene_members", 1, "product_id")


@pytest.mark.parametrize(
    ("attributes", "why"), [('{"color": "red"', "not valid JSON"), ('["red"]', "must be a JSON object")]
)
def test_bad_attributes_name_the_row(attributes: str, why: str) -> None:
    d = small()
    d.products = products([*PRODUCTS_ROWS, ("z9", "bad", None, None, None, None, None, attributes)])
    e = _error(d)
    assert (e.file, e.row, e.column) == ("products", 6, "attributes")
    assert why in str(e)


def test_empty_category_level() -> None:
    d = small()
    d.products = products([*PRODUCTS_ROWS, ("z9", "bad", "x", "a >  > x", None, None, None, None)])
    e = _error(d)
    assert (e.file, e.row, e.column) == ("products", 6, "category_path")


def test_missing_column_and_wrong_type() -> None:
    d = small()
    d.products = small().products.drop_columns(["brand"])
    e = _error(d)
    assert (e.file, e.column) == ("products", "brand")
    d.products = small().products.set_column(5, "price", pa.array(["cheap"] * 5))
    e = _error(d)
    assert (e.file, e.column) == ("products", "price")


def test_meta_must_be_json() -> None:
    d = small()
    d.meta = {"when": object()}
    assert _error(d).file == "meta"


def test_big_text_columns_stay_in_chunks_and_sort_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A string column past _PIECE_BYTES (2.5 GB of evidence at 16M lines: past Arrow's 2 GiB
    one-chunk limit) is kept in chunks and taken in pieces: the same tables as when everything is
    one chunk; a duplicate is still named by its row."""
    data = small()
    want = graph_tables(data)
    rel = data.relations
    evidence = pa.chunked_array([rel.column("evidence").slice(0, 2), rel.column("evidence").slice(2)])
    data.relations = rel.set_column(rel.schema.get_field_index("evidence"), "evidence", evidence)
    monkeypatch.setattr(build, "_PIECE_BYTES", 40)  # every evidence column counts as big: ~40-byte pieces
    got = graph_tables(data)
    for rt, table in want.rels.items():
        assert got.rels[rt].equals(table), rt
        assert rt not in want.evidence or got.evidence[rt].equals(want.evidence[rt]), rt
    assert got.evidence["COMPLEMENT"].column("evidence").num_chunks > 1  # never joined
    data.relations = pa.concat_tables([data.relations, data.relations.slice(1, 1)])
    with pytest.raises(InputError) as err:
        graph_tables(data)
    assert err.value.row == 6 and "duplicate relation" in str(err.value)


def test_snapshot_relations_with_big_text_are_taken_in_pieces_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The serving snapshot orders each kind's relations from the key columns and takes the text
    in pieces (a 16M-line shop's 2.2 GB of evidence overflowed Arrow's sort_by): the same table
    and offsets as one chunk taken whole."""
    from tiein.graph import snapshot_arrow

    tables = graph_tables(small())
    ids = tables.nodes["Product"].column("product_id").combine_chunks()
    rel = tables.rels["COMPLEMENT"].append_column(
        "evidence", tables.evidence["COMPLEMENT"].column("evidence")
    )
    rel = rel.append_column("kind", pa.array(["complement"] * rel.num_rows))
    want, want_offsets = snapshot_arrow.relations_table(rel, ids)
    ev = rel.column("evidence")
    pieces = pa.chunked_array([ev.slice(i, 1) for i in range(rel.num_rows)])  # one text a chunk
    rel = rel.set_column(rel.schema.get_field_index("evidence"), "evidence", pieces)
    monkeypatch.setattr(build, "_PIECE_BYTES", 40)
    got, got_offsets = snapshot_arrow.relations_table(rel, ids)
    assert rel.num_rows > 1 and got.equals(want) and (got_offsets == want_offsets).all()
    assert got.column("evidence").num_chunks > 1


def test_take_in_pieces_is_take(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big text taken piece by piece from the chunks its rows are in equals Arrow's take, for any
    order (reversed, shuffled, repeated rows, rows from one chunk only)."""
    import numpy as np

    rng = np.random.default_rng(7)
    texts = [f"文本-{i}-" + "x" * int(rng.integers(0, 30)) for i in range(300)]
    col = pa.chunked_array([pa.array(texts[a:b]) for a, b in ((0, 7), (7, 100), (100, 101), (101, 300))])
    monkeypatch.setattr(build, "_PIECE_BYTES", 500)  # pieces of ~500 bytes: many pieces
    for order in (
        np.arange(300)[::-1],
        rng.permutation(300),
        rng.integers(0, 300, 500),
        np.arange(7, 100),
    ):
        got = build._take_in_pieces(col, pa.array(order, pa.uint64()))
        assert got.num_chunks > 1 and got.to_pylist() == [texts[i] for i in order]


def _text_buffer(table: pa.Table) -> int:
    """Where the first chunk of ``table``'s evidence keeps its text (a slice keeps its parent's)."""
    return int(table.column("evidence").chunk(0).buffers()[2].address)


def test_relations_in_store_order_are_sliced_not_copied() -> None:
    """Relations handed over sorted as the store keeps them (in_store_order: by kind, then the
    ends) give exactly the tables any other order gives, and each kind's table is a slice of the
    input: its text is the input's (the evidence is most of a big shop's memory at the store
    step, 50k products / 4M lines ~0.9 GB); relations in another order are taken, a copy."""
    data = small()
    want = graph_tables(data)
    shuffled = data.relations.take(pa.array([4, 1, 3, 0, 2]))
    data.relations = build.in_store_order(shuffled)
    rows = data.relations.select(["kind", "src", "score", "dst"]).to_pylist()
    assert [tuple(r.values()) for r in rows] == sorted(
        (tuple(r.values()) for r in rows), key=lambda r: (r[0], r[1], -r[2], r[3])
    )
    got = graph_tables(data)
    for rt, table in want.rels.items():
        assert got.rels[rt].equals(table), rt
        assert rt not in want.evidence or got.evidence[rt].equals(want.evidence[rt]), rt
    text = _text_buffer(data.relations)
    for rt in ("COMPLEMENT", "SUBSTITUTE", "UPSELL"):
        assert _text_buffer(got.evidence[rt]) == text, rt  # shared, not copied
    assert _text_buffer(got.nodes["Evidence"]) == text  # the Evidence nodes: the same text
    assert build.in_store_order(data.relations).equals(data.relations)  # sorted already: as it is
    data.relations = shuffled
    assert _text_buffer(graph_tables(data).evidence["COMPLEMENT"]) != _text_buffer(shuffled)


def test_take_of_consecutive_rows_is_a_slice() -> None:
    """_take copies nothing for one run of consecutive rows (a slice of the same memory) and takes
    any other order, equal to Arrow's take either way."""
    import numpy as np

    t = pa.table({"n": pa.array(np.arange(10)), "s": pa.array([f"s{i}" for i in range(10)])})
    for order in ([3, 4, 5, 6], list(range(10)), [7], [3, 5, 4], [9, 8], [8, 9, 0]):
        got = build._take(t, pa.array(order, pa.uint64()))
        assert got.equals(t.take(pa.array(order))), order
        consecutive = order == list(range(order[0], order[0] + len(order)))
        assert (
            got.column("s").chunk(0).buffers()[2].address == t.column("s").chunk(0).buffers()[2].address
        ) == (consecutive), order


def test_evidence_keys_follow_the_relation_not_the_table() -> None:
    """An Evidence node's key is a function of the relation's kind and ends (graph/evidence.py):
    the same in any table that holds the relation, so an update's delta only touches the evidence
    that changed; a key two relations would share goes to the next free one."""
    from tiein.graph.evidence import evidence_ids, free_ids

    data = small()
    full = graph_tables(data)
    data.relations = data.relations.slice(1)
    part = graph_tables(data)
    keys = {
        (rt, r["src"], r["dst"]): r["evidence_id"]
        for rt, t in full.rels.items()
        if rt in full.evidence
        for r in t.to_pylist()
    }
    for rt, t in part.evidence.items():
        for r, e in zip(part.rels[rt].to_pylist(), t.to_pylist(), strict=True):
            assert keys[(rt, r["src"], r["dst"])] == r["evidence_id"] == e["evidence_id"]
    same = pa.table({"src": ["a", "a"], "dst": ["b", "b"], "kind": ["upsell", "upsell"]})
    ids = evidence_ids(same)  # a repeated key stands in for a collision of two hashes
    assert ids[1] == ids[0] + 1 and evidence_ids(same.slice(0, 1))[0] == ids[0]
    assert free_ids(np.array([(1 << 63) - 1, (1 << 63) - 1, 0])).tolist() == [(1 << 63) - 1, 1, 0]


def test_relations_by_score_reach_the_snapshot_files_as_they_are() -> None:
    """Each product's relations of a kind in the store's order are best score first (not by
    dst), as the serving snapshot answers them: its tables then hold the very rows and text of
    the build's relations, no second sort and copy of the evidence, and equal those made from
    relations in any other order."""
    from tiein.graph.snapshot import QUERIES, tables_reader
    from tiein.graph.snapshot_arrow import build_tables

    data = small()
    data.relations = relations(
        [
            ("p1", "c1", "complement", 0.2),
            ("p1", "t1", "complement", 0.9),
            ("p2", "c1", "complement", 0.4),
            ("p1", "p2", "complement", 0.5),
            ("p2", "p1", "substitute", 0.8),
        ]
    )
    shuffled = data.relations
    data.relations = build.in_store_order(shuffled)
    p1 = data.relations.filter(pc.equal(data.relations.column("src"), "p1"))
    assert p1.column("dst").to_pylist() == ["t1", "p2", "c1"]  # by score, not by dst
    snapshot = build_tables(tables_reader(graph_tables(data))[0], QUERIES)
    assert _text_buffer(snapshot["rel_complement"]) == _text_buffer(data.relations)  # not copied
    data.relations = shuffled
    other = build_tables(tables_reader(graph_tables(data))[0], QUERIES)
    assert _text_buffer(other["rel_complement"]) != _text_buffer(shuffled)  # sorted: a copy
    for name, table in other.items():
        assert snapshot[name].equals(table), name


def test_a_relation_given_twice_with_other_scores_is_refused() -> None:
    """The store sorts each product's relations by score, so a repeated (src, dst, kind) with a
    different score is not next to its twin in that order: it is still refused, naming the later
    row, and nothing is built."""
    data = small()
    data.relations = relations(
        [
            ("p1", "c1", "complement", 0.9),
            ("p1", "p2", "complement", 0.5),
            ("p1", "c1", "complement", 0.1),  # row 3: (p1, c1, complement) again
            ("p2", "p1", "substitute", 0.8),
        ]
    )
    with pytest.raises(InputError) as err:
        graph_tables(data)
    assert (err.value.row, err.value.column) == (3, "src,dst,kind")
    assert "duplicate relation ('p1', 'c1', 'complement')" in str(err.value)

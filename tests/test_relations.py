"""Relation classification on six products you can check by hand.

Catalog: two competing phones (Apex X 1299, Apex S 899), a case (29), a screen film (19), a charger
(49) and a tent (300). Orders: phones are bought with a case and a film; cases and films are also
bought on their own; the tent is bought alone.
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pyarrow as pa
import pytest

import tiein.relations as rel
from tiein.features import candidate_features
from tiein.model import PAIR_STATS, PRODUCTS, RELATIONS

PRODUCTS_ROWS = [
    # id, title, category, path, brand, price
    ("phone_x", "Apex X phone 256GB", "Phones", "Electronics > Phones", "Apex", 1299.0),
    ("phone_s", "Apex S phone 128GB", "Phones", "Electronics > Phones", "Apex", 899.0),
    ("case", "Clear case for Apex phones", "Cases", "Electronics > Accessories > Cases", "Shieldy", 29.0),
    (
        "film",
        "Tempered glass screen film",
        "Screen film",
        "Electronics > Accessories > Screen film",
        "Shieldy",
        19.0,
    ),
    ("charger", "Fast charger 30W", "Chargers", "Electronics > Accessories > Chargers", "Voltz", 49.0),
    ("tent", "Two person dome tent", "Tents", "Outdoor > Tents", "Campr", 300.0),
]


# Unit vectors chosen so that the two phones are near (0.92), the case and the film mid (0.6),
# everything else far.
def _vectors() -> tuple[list[str], np.ndarray]:
    ids = [r[0] for r in PRODUCTS_ROWS]
    base = np.eye(6)
    v = base.copy()
    v[1] = 0.92 * base[0] + np.sqrt(1 - 0.92**2) * base[1]  # phone_s ~ phone_x
    v[3] = 0.6 * base[2] + 0.8 * base[3]  # film ~ case
    return ids, v.astype(np.float64)


def products() -> pa.Table:
    cols = list(zip(*PRODUCTS_ROWS, strict=True))
    return pa.table(
        {
            "product_id": cols[0],
            "title": cols[1],
            "category": cols[2],
            "category_path": cols[3],
            "brand": cols[4],
            "price": pa.array(cols[5], pa.float64()),
            "stock": pa.array([10] * 6, pa.int64()),
            "attributes": pa.array([None] * 6, pa.string()),
            "margin": pa.nulls(6, pa.float64()),
            "sales_role": pa.nulls(6, pa.string()),
            "product_type": pa.nulls(6, pa.string()),
        },
        schema=PRODUCTS,
    )


def pair(
    a: str, b: str, n_ab: int, n_a: int, n_b: int, n: int = 100, after_ab: int = 0, after_ba: int = 0
) -> dict:
    assert a < b
    return {
        "a": a,
        "b": b,
        "n_ab": n_ab,
        "n_a": n_a,
        "n_b": n_b,
        "n": n,
        "support": n_ab / n,
        "conf_ab": n_ab / n_a,
        "conf_ba": n_ab / n_b,
        "lift": n_ab * n / (n_a * n_b),
        "after_ab": after_ab,
        "after_ba": after_ba,
    }


def co_purchase() -> pa.Table:
    # 100 orders. phone_x in 20, phone_s in 20, case in 40, film in 30, charger in 10, tent in 5.
    rows = [
        pair("case", "phone_x", 15, 40, 20, after_ab=0, after_ba=6),  # phone first, then case
        pair("case", "phone_s", 12, 40, 20),
        pair("film", "phone_x", 10, 30, 20),
        pair("film", "phone_s", 9, 30, 20),
        pair("case", "film", 14, 40, 30),
        pair("charger", "phone_x", 3, 10, 20),
        pair("phone_s", "phone_x", 1, 20, 20),  # rarely together: lift 0.25
    ]
    return pa.Table.from_pylist(rows, schema=PAIR_STATS)


def neighbours() -> pa.Table:
    """What the FAISS index gives as near titles (similarity ≥ 0.5 in _vectors)."""
    return pa.table({"src": ["phone_x", "case"], "dst": ["phone_s", "film"], "similarity": [0.92, 0.6]})


@pytest.fixture(scope="module")
def relations() -> pa.Table:
    ids, vec = _vectors()
    feats = candidate_features(
        products(), co_purchase=co_purchase(), neighbours=neighbours(), ids=ids, vectors=vec
    )
    out = rel.classify(feats, rel.RelationConfig(min_score=0.01))
    assert out.schema == RELATIONS
    return out


def _get(relations: pa.Table, src: str, kind: str) -> list[tuple[str, float]]:
    rows = [r for r in relations.to_pylist() if r["src"] == src and r["kind"] == kind]
    return [(r["dst"], r["score"]) for r in rows]


def test_doctests_pass() -> None:
    failures, tried = doctest.testmod(rel)
    assert tried > 10 and failures == 0


def test_phone_gets_accessories_as_complements_not_the_other_phone(relations: pa.Table) -> None:
    comps = _get(relations, "phone_x", "complement")
    assert [d for d, _ in comps][:2] == ["case", "film"]
    assert "phone_s" not in [d for d, _ in comps]
    assert "tent" not in [d for d, _ in comps]


def test_direction_phone_to_case_beats_case_to_phone(relations: pa.Table) -> None:
    fwd = dict(_get(relations, "phone_x", "complement"))["case"]
    back = dict(_get(relations, "case", "complement")).get("phone_x", 0.0)
    assert fwd > 2 * back


def test_competing_phones_are_substitutes(relations: pa.Table) -> None:
    assert [d for d, _ in _get(relations, "phone_x", "substitute")] == ["phone_s"]
    assert [d for d, _ in _get(relations, "phone_s", "substitute")] == ["phone_x"]


def test_upsell_only_towards_the_pricier_phone(relations: pa.Table) -> None:
    assert [d for d, _ in _get(relations, "phone_s", "upsell")] == ["phone_x"]  # 1299 / 899 = 1.44
    assert _get(relations, "phone_x", "upsell") == []


def test_same_brand_similar_titles_are_a_series(relations: pa.Table) -> None:
    assert [d for d, _ in _get(relations, "phone_x", "series")] == ["phone_s"]
    # same brand Shieldy, similarity 0.6 ≥ 0.45
    assert [d for d, _ in _get(relations, "case", "series")] == ["film"]
    # different brands are never a series
    assert _get(relations, "charger", "series") == []


def test_evidence_carries_the_numbers(relations: pa.Table) -> None:
    row = next(
        r
        for r in relations.to_pylist()
        if (r["src"], r["dst"], r["kind"]) == ("phone_x", "case", "complement")
    )
    ev = json.loads(row["evidence"])
    assert ev["bought_together"] == 15
    assert ev["orders_with_anchor"] == 20
    assert ev["confidence"] == pytest.approx(15 / 20)
    assert ev["lift"] == pytest.approx(15 * 100 / (40 * 20), abs=1e-3)
    assert ev["bought_after"] == 6 and ev["bought_before"] == 0
    assert ev["category_relation"] == "different"
    assert ev["price_ratio"] == pytest.approx(29 / 1299, abs=1e-3)
    assert row["n_ab"] == 15 and row["category_relation"] == "different"


def test_category_relation_sibling_and_unknown() -> None:
    assert (
        rel.category_relation("Electronics > Accessories > Cases", "Electronics > Accessories > Screen film")
        == rel.CAT_SIBLING
    )
    assert (
        rel.category_relation("Electronics > Phones", "Electronics > Accessories > Cases")
        == rel.CAT_DIFFERENT
    )
    assert rel.category_relation("", "Outdoor > Tents") == rel.CAT_UNKNOWN


def test_keep_per_kind_limits_and_orders() -> None:
    ids, vec = _vectors()
    feats = candidate_features(
        products(), co_purchase=co_purchase(), neighbours=neighbours(), ids=ids, vectors=vec
    )
    out = rel.classify(feats, rel.RelationConfig(keep_per_kind=1))
    comps = _get(out, "phone_x", "complement")
    assert comps == [("case", pytest.approx(comps[0][1]))]
    full = rel.classify(feats)
    assert _get(full, "phone_x", "complement")[0] == comps[0]


def test_scores_are_vectorised_and_scalar_alike() -> None:
    sim = np.array([0.95, 0.7, 0.2])
    cat = np.array([rel.CAT_SAME, rel.CAT_SIBLING, rel.CAT_DIFFERENT])
    arr = rel.substitute_score(sim, cat, np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3))
    for i in range(3):
        assert arr[i] == pytest.approx(float(rel.substitute_score(sim[i], cat[i], 0, 0, 0.0, 0.0)))
    assert arr[0] > arr[1] > arr[2] == 0.0


def test_often_bought_together_is_not_a_substitute() -> None:
    alone = rel.substitute_score(0.9, rel.CAT_SAME, 0, 0, lift=0.5, conf=0.05)
    together = rel.substitute_score(0.9, rel.CAT_SAME, 0, 0, lift=6.0, conf=0.4)
    assert together < 0.5 * alone


def test_viewed_together_lifts_substitutes() -> None:
    assert rel.substitute_score(0.6, rel.CAT_SAME, 3, 0, 0.0, 0.0) > rel.substitute_score(
        0.6, rel.CAT_SAME, 0, 0, 0.0, 0.0
    )
    # listed also_viewed counts the same way
    assert (
        rel.substitute_score(0.45, rel.CAT_SAME, 0, 1, 0.0, 0.0)
        > 0.0
        == rel.substitute_score(0.45, rel.CAT_SAME, 0, 0, 0.0, 0.0)
    )


def test_listed_also_bought_makes_complements_without_orders() -> None:
    ids, vec = _vectors()
    listed = pa.table(
        {"src": ["phone_x", "case"], "dst": ["case", "phone_x"], "kind": ["co_purchase", "co_purchase"]}
    )
    feats = candidate_features(products(), listed=listed, ids=ids, vectors=vec)
    out = rel.classify(feats)
    assert [d for d, _ in _get(out, "phone_x", "complement")] == ["case"]
    ev = json.loads(
        next(r["evidence"] for r in out.to_pylist() if r["src"] == "phone_x" and r["kind"] == "complement")
    )
    assert ev["listed_also_bought"] == 2


def test_pairs_bought_together_less_than_chance_are_no_candidates_unless_similar() -> None:
    ids, vec = _vectors()
    feats = candidate_features(products(), co_purchase=co_purchase(), ids=ids, vectors=vec)
    pairs = set(zip(feats.column("src").to_pylist(), feats.column("dst").to_pylist(), strict=True))
    assert ("phone_x", "case") in pairs and ("case", "phone_x") in pairs
    assert ("phone_x", "phone_s") not in pairs  # lift 0.25, and no neighbour given
    feats = candidate_features(
        products(), co_purchase=co_purchase(), neighbours=neighbours(), ids=ids, vectors=vec
    )
    row = next(r for r in feats.to_pylist() if (r["src"], r["dst"]) == ("phone_x", "phone_s"))
    assert (
        row["n_ab"] == 1 and row["lift"] == pytest.approx(0.25) and row["similarity"] == pytest.approx(0.92)
    )


def test_candidates_per_product_keeps_the_strongest() -> None:
    ids, vec = _vectors()
    feats = candidate_features(
        products(), co_purchase=co_purchase(), ids=ids, vectors=vec, per_product=1, per_staple=0
    )
    from_phone = [r["dst"] for r in feats.to_pylist() if r["src"] == "phone_x"]
    assert from_phone == ["case"]  # 15/25·(1-1/1.875) beats film's 10/25·(1-1/1.667)
    # the most often co-bought partners at lift >= 0.8 come too (staples): film (10) after case (15)
    feats = candidate_features(
        products(), co_purchase=co_purchase(), ids=ids, vectors=vec, per_product=1, per_staple=2
    )
    assert [r["dst"] for r in feats.to_pylist() if r["src"] == "phone_x"] == ["case", "film"]


def test_top_pairs_keeps_each_products_strongest_partners() -> None:
    from tiein.features import top_pairs

    kept = top_pairs(co_purchase(), 1)
    pairs = set(zip(kept.column("a").to_pylist(), kept.column("b").to_pylist(), strict=True))
    # each product's most frequent partner: case→phone_x(15), phone_x→case, film→case(14),
    # phone_s→case(12), charger→phone_x(3)
    assert pairs == {("case", "phone_x"), ("case", "film"), ("case", "phone_s"), ("charger", "phone_x")}
    assert top_pairs(co_purchase(), 0).num_rows == co_purchase().num_rows


def test_empty_features_give_empty_relations() -> None:
    feats = candidate_features(products())
    assert feats.num_rows == 0
    assert rel.classify(feats).num_rows == 0

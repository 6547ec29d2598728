"""docs/schema.md: the graph model is documented in full, and every example analyst query runs on
the embedded store against the hand-made catalog of tests/test_store_contract.py and gives the
answer worked out by hand below (the catalog is small enough to check each one on paper).

The same examples pass Neo4j's own parser in tests/test_neo4j_cypher.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_store_contract import CATALOG, EVIDENCE, catalog

from tiein.cypher import run_cypher
from tiein.graph.base import GraphStore

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "schema.md"

# By example number: the answer on the hand-made catalog (phones, accessories, a tent; see
# tests/test_store_contract.py CATALOG / RELS / CO_PURCHASED / scenes).
EXPECTED: dict[int, list[dict[str, Any]]] = {
    1: [
        {"product_id": "case-a", "title": "Phone A case 手机壳", "score": 0.9},
        {"product_id": "charger", "title": "USB-C charger 20W", "score": 0.75},
        {"product_id": "film-a", "title": "Screen film for Phone A", "score": 0.75},
    ],
    2: [
        {"product_id": p[0], "category_path": p[3]} for p in sorted(CATALOG) if p[3].startswith("electronics")
    ],
    3: [
        {"a": "case-a", "b": "phone-a", "n_ab": 30, "lift": 30 * 1000 / (40 * 100)},
        {"a": "film-a", "b": "phone-a", "n_ab": 12, "lift": 12 * 1000 / (50 * 100)},
        {"a": "charger", "b": "phone-a", "n_ab": 10, "lift": 10 * 1000 / (60 * 100)},
        {"a": "charger", "b": "phone-b", "n_ab": 5, "lift": 5 * 1000 / (60 * 80)},
    ],
    4: [
        {"product_id": "case-a", "n_ab": 30, "lift": 7.5},
        {"product_id": "film-a", "n_ab": 12, "lift": 2.4},
        {"product_id": "charger", "n_ab": 10, "lift": 10 * 1000 / (60 * 100)},
        {"product_id": "tent", "n_ab": 1, "lift": 1 * 1000 / (100 * 20)},
    ],
    5: [{"product_id": "charger", "title": "USB-C charger 20W"}],  # phone-b's only complement
    6: [
        {"brand": "Acme", "products": 3},
        {"brand": "Bolt", "products": 2},
        {"brand": "Trail", "products": 1},
    ],
    7: [
        {"product_id": "phone-a", "shared": 2},
        {"product_id": "phone-b", "shared": 2},  # black, 128GB
        {"product_id": "case-a", "shared": 1},
        {"product_id": "phone-a-pro", "shared": 1},
    ],  # black
    8: [
        {"product_id": "phone-a", "role": "core", "weight": 1.0},
        {"product_id": "case-a", "role": "accessory", "weight": 0.8},
        {"product_id": "film-a", "role": "accessory", "weight": 0.8},
    ],
    9: [
        {"role": "accessory", "position": 0.8, "products": 2},
        {"role": "core", "position": 1.0, "products": 1},
    ],
    # complements of phone-a and phone-b: the charger complements both
    10: [
        {"product_id": "charger", "title": "USB-C charger 20W", "anchors": 2, "best_score": 0.75},
        {"product_id": "case-a", "title": "Phone A case 手机壳", "anchors": 1, "best_score": 0.9},
        {"product_id": "film-a", "title": "Screen film for Phone A", "anchors": 1, "best_score": 0.75},
    ],
    11: [
        {
            "position": 0.8,
            "role": "accessory",
            "product_id": "case-a",
            "title": "Phone A case 手机壳",
            "price": 19.99,
        },
        {
            "position": 0.8,
            "role": "accessory",
            "product_id": "film-a",
            "title": "Screen film for Phone A",
            "price": 9.99,
        },
        {"position": 1.0, "role": "core", "product_id": "phone-a", "title": "Phone A 128GB", "price": 699.0},
    ],
    12: [{"product_id": "phone-b", "title": "Phone B 128GB", "price": 649.5, "saving": 699.0 - 649.5}],
    13: [{"a": "phone-a", "b": "phone-b", "similarity": 0.93}],  # substitutes, no CO_PURCHASED edge
    14: [{"product_id": "phone-a-pro", "price": 999.0, "steps": 1}],
    15: [
        {"anchor": "phone-a", "partner": "case-a", "score": 0.9, "together": 699.0 + 19.99},
        {"anchor": "phone-a", "partner": "film-a", "score": 0.75, "together": 699.0 + 9.99},
        {"anchor": "case-a", "partner": "film-a", "score": 0.5, "together": 19.99 + 9.99},
    ],
    16: [{"product_id": "tent", "title": "2-person tent 帐篷"}],  # only a CO_PURCHASED edge
    17: [
        {"from_brand": "Acme", "to_brand": "Bolt", "complements": 1, "avg_score": 0.75}
    ],  # phone-a -> charger
    18: [{"a": "phone-a", "b": "tent", "n_ab": 1, "lift": 0.5}],
    19: [
        {"product_id": "case-a", "title": "Phone A case 手机壳", "score": 0.4, "lift": 4.0},
        {"product_id": "charger", "title": "USB-C charger 20W", "score": 0.4, "lift": 2.0},
    ],
    20: [{"anchor": "phone-a", "addon": "case-a", "price": 19.99, "score": 0.9}],  # hero -> traffic
    21: [
        {"category": "electronics > phones", "products": 3, "min_price": 649.5, "max_price": 999.0},
        *(
            {"category": p[3], "products": 1, "min_price": p[5], "max_price": p[5]}
            for p in sorted(CATALOG, key=lambda p: p[3])
            if p[2] != "phones"
        ),
    ],
    # the texts as the catalog stores them (tests/test_store_contract.py RELS)
    22: [
        {"product_id": "case-a", "score": 0.9, "evidence": json.dumps(EVIDENCE, ensure_ascii=False)},
        {"product_id": "charger", "score": 0.75, "evidence": '{"n_ab": 10}'},
        {"product_id": "film-a", "score": 0.75, "evidence": '{"n_ab": 12}'},
    ],
}


def examples() -> list[tuple[int, str, str, dict[str, Any]]]:
    """(number, title, cypher, params) of every numbered example of docs/schema.md."""
    text = DOCS.read_text(encoding="utf-8")
    out = []
    for number, title, block in re.findall(
        r"^### (\d+)\. (.+?)\n(?:(?!^###).)*?```cypher\n(.*?)```", text, re.DOTALL | re.MULTILINE
    ):
        first, _, body = block.partition("\n")
        assert first.startswith("// params: "), f"example {number} has no params line"
        out.append((int(number), title, body.strip(), json.loads(first.removeprefix("// params: "))))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    from tiein.graph.ladybug_store import EmbeddedStore

    s = EmbeddedStore(tmp_path_factory.mktemp("docs") / "graph")
    s.replace(catalog())
    yield s
    s.close()


def test_examples_are_numbered_and_all_checked() -> None:
    found = examples()
    assert len(found) >= 20
    assert [n for n, *_ in found] == list(range(1, len(found) + 1))
    assert len(re.findall(r"```cypher\n", DOCS.read_text(encoding="utf-8"))) == len(found)
    assert set(EXPECTED) == {n for n, *_ in found}, "every example needs its hand-checked answer here"


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_example_answers(store: GraphStore, number: int) -> None:
    (_, title, cypher, params), *_ = [e for e in examples() if e[0] == number]
    result = run_cypher(store, cypher, params)
    assert result.records() == EXPECTED[number], title
    assert not result.truncated


def test_every_label_type_and_property_is_documented() -> None:
    from tiein.graph.build import NODE_SCHEMAS, REL_SCHEMAS

    text = DOCS.read_text(encoding="utf-8")
    for label, schema in NODE_SCHEMAS.items():
        assert f"### `{label}`" in text, label
        for prop in schema.names:
            assert f"| `{prop}` |" in text, f"{label}.{prop}"
    for rel, schema in REL_SCHEMAS.items():
        assert f"| `{rel}` |" in text, rel
        for prop in schema.names[2:]:
            assert f"`{prop}`" in text, f"{rel}.{prop}"


def test_graph_schema_md_points_to_docs() -> None:
    text = (ROOT / "graph" / "schema.md").read_text(encoding="utf-8")
    assert "docs/schema.md" in text and "```cypher" not in text

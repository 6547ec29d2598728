"""tiein.service: the JSON payloads the CLI, the API and export share.

The real path (a store built by the pipeline, through the CLI) is covered in tests/test_cli.py;
here a small in-test double of the store checks argument validation and that every related row
gets the explanation of its own evidence.
"""

from __future__ import annotations

from typing import Any

import pytest

from tiein.errors import ConfigError, ProductNotFound
from tiein.explain import explain
from tiein.service import MAX_K, related_payload


class _Store:
    """Answers product() / related() for one product with two complements."""

    name = "double"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def product(self, pid: str) -> dict[str, Any]:
        if pid != "tent":
            raise ProductNotFound(f"product {pid!r} is not in the graph")
        return {"product_id": "tent", "title": "Tent", "price": 299.0}

    def related(self, pid: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        self.calls.append((pid, kind, k))
        rows = [
            {
                "product_id": "chair",
                "kind": kind,
                "score": 0.9,
                "evidence": {
                    "bought_together": 12,
                    "lift": 4.0,
                    "category_relation": "different",
                    "price_ratio": 0.4,
                },
            },
            {"product_id": "lamp", "kind": kind, "score": 0.5, "evidence": {"bought_together": 3}},
        ]
        return rows[:k]


def test_every_row_explained_from_its_own_evidence() -> None:
    st = _Store()
    out = related_payload(st, "tent", "complement", 2)  # type: ignore[arg-type]
    assert out["product"]["product_id"] == "tent" and out["kind"] == "complement"
    assert [r["product_id"] for r in out["related"]] == ["chair", "lamp"]
    for r in out["related"]:
        e = explain(r, "complement")
        assert (r["explanation_zh"], r["explanation_en"]) == (e.zh, e.en)
    assert out["related"][0]["explanation_zh"].startswith("经常一起买：12 单")  # lift 4: "often"
    assert out["related"][1]["explanation_en"] == "bought together in 3 orders"
    assert st.calls == [("tent", "complement", 2)]


@pytest.mark.parametrize(
    "kind,k,word",
    [
        ("friend", 5, "friend"),
        ("complement", 0, "k"),
        ("complement", MAX_K + 1, "k"),
        ("complement", True, "k"),
    ],
)
def test_bad_arguments_are_config_errors(kind: str, k: Any, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        related_payload(_Store(), "tent", kind, k)  # type: ignore[arg-type]


def test_unknown_product() -> None:
    with pytest.raises(ProductNotFound, match="nope"):
        related_payload(_Store(), "nope", "complement")  # type: ignore[arg-type]

"""tiein.service is the one read path of the API, the CLI and export: every surface (product,
scenes, search, stats, health, cypher, bundle, add-ons, the product page) has its payload
function, and the shared argument checks (k, mix, kind) live in one place. An in-test double of
the store (and of the search index) checks what each function adds to the store's answers; the
real path through the API and the CLI is covered by tests/test_api.py and tests/test_cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tiein.errors import ConfigError, NotFound, ProductNotFound
from tiein.model import MAX_K, RELATION_KINDS, check_k, parse_mix
from tiein.service import (
    addons_payload,
    bundle_payload,
    cypher_payload,
    health_payload,
    neighbourhood_payload,
    product_payload,
    related_payload,
    scene_payload,
    scenes_payload,
    search_payload,
    stats_payload,
)

TENT = {"product_id": "tent", "title": "Tent", "price": 299.0}
CHAIR = {"product_id": "chair", "title": "Chair", "price": 49.0}
SCENE = {"scene_id": "camping", "name": "露营", "source": "user", "members": 2, "roles": []}


class _Store:
    name = "double"

    def product(self, pid: str) -> dict[str, Any]:
        found = {"tent": TENT, "chair": CHAIR}.get(pid)
        if found is None:
            raise ProductNotFound(f"product {pid!r} is not in the graph")
        return dict(found)

    def related(self, pid: str, kind: str, k: int = 10) -> list[dict[str, Any]]:
        return [{**CHAIR, "kind": kind, "score": 0.9, "evidence": {"bought_together": 3}}][:k]

    def scenes(self) -> list[dict[str, Any]]:
        return [{**SCENE, "roles": ["tent", "chair"]}]

    def scene(self, name: str) -> dict[str, Any]:
        if name not in ("camping", "露营"):
            raise NotFound(f"scene {name!r} is not in the graph")
        return dict(SCENE)

    def stats(self) -> dict[str, Any]:
        return {"nodes": {"Product": 2}, "relationships": {"COMPLEMENT": 1}, "meta": {"source": "test"}}


class _Searcher:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def search(self, text: str, k: int) -> tuple[str, list[tuple[str, float]]]:
        self.asked.append((text, k))
        return "minilm", [("chair", 0.8), ("gone", 0.7), ("tent", 0.5)][:k]


def test_product_scenes_and_stats_are_the_store_answers(tmp_path: Path) -> None:
    st: Any = _Store()
    assert product_payload(st, "tent") == TENT
    with pytest.raises(ProductNotFound):
        product_payload(st, "ghost")
    assert scenes_payload(st) == {"scenes": st.scenes()}
    assert scene_payload(st, "露营") == SCENE
    with pytest.raises(NotFound):
        scene_payload(st, "nowhere")
    assert stats_payload(st) == st.stats()
    with_home = stats_payload(st, tmp_path)  # before the first build: an empty pointer
    assert with_home["generations"]["current"] is None and with_home["nodes"] == {"Product": 2}


def test_health_names_a_snapshot_embedded() -> None:
    st: Any = _Store()
    h = health_payload(st, search=False)
    assert (h["status"], h["store"], h["snapshot"], h["search"]) == ("ok", "double", False, False)
    assert h["graph"] == st.stats()
    st.name = "snapshot"
    assert health_payload(st, search=True)["store"] == "embedded"


def test_search_joins_hits_to_products_and_skips_what_left_the_graph() -> None:
    searcher = _Searcher()
    out = search_payload(_Store(), searcher, "camping chair", 3)  # type: ignore[arg-type]
    assert out["query"] == "camping chair" and out["model"] == "minilm"
    assert out["results"] == [{**CHAIR, "similarity": 0.8}, {**TENT, "similarity": 0.5}]
    for q, k, max_k in (("   ", 3, MAX_K), ("chair", 0, MAX_K), ("chair", 101, 100)):
        with pytest.raises(ConfigError, match="blank" if not q.strip() else "k must"):
            search_payload(_Store(), searcher, q, k, max_k=max_k)  # type: ignore[arg-type]
    assert searcher.asked == [("camping chair", 3)]  # bad arguments never reach the index


def test_related_and_addons_take_the_servers_cap() -> None:
    with pytest.raises(ConfigError, match="from 1 to 100, got 101"):
        related_payload(_Store(), "tent", "complement", 101, max_k=100)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="from 1 to 100, got 101"):
        addons_payload(_Store(), ["tent"], k=101, max_k=100)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown relation kind 'cousin'"):
        related_payload(_Store(), "tent", "cousin")  # type: ignore[arg-type]


def test_bundle_reads_mix_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []

    class _Answer:
        def to_dict(self) -> dict[str, Any]:
            return {"anchor": TENT}

    def fake_bundle(store: Any, anchor_id: str, **options: Any) -> _Answer:
        asked.append((options["mix"], options["rules"]))
        return _Answer()

    monkeypatch.setattr("tiein.service.bundle.bundle", fake_bundle)
    for raw in ("hero+profit", "hero profit", "Hero, profit", ["hero", "profit"]):
        bundle_payload(_Store(), "tent", mix=raw)  # type: ignore[arg-type]
    assert [m for m, _ in asked] == [["hero", "profit"]] * 4
    bundle_payload(_Store(), "tent", discount=0.2)  # type: ignore[arg-type]
    assert asked[-1][1].discount == 0.2
    for bad in (",", "hero+vip", ""):
        with pytest.raises(ConfigError, match="mix must name sales roles"):
            bundle_payload(_Store(), "tent", mix=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="discount must be a number"):
        bundle_payload(_Store(), "tent", discount="10%")  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, True, 2.0, "3", None])
def test_check_k_refuses(k: Any) -> None:
    with pytest.raises(ConfigError, match=f"k must be an integer from 1 to {MAX_K}"):
        check_k(k)


def test_parse_mix_refuses_what_names_no_role() -> None:
    assert parse_mix(" traffic ") == ["traffic"]
    for bad in (5, b"hero", {"hero": 1}, [], ["hero", 3]):
        with pytest.raises(ConfigError, match="mix must"):
            parse_mix(bad)


def test_cypher_caps_are_checked_before_running(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiein.cypher import CypherResult

    ran: list[dict[str, Any]] = []

    def fake_run(store: Any, query: str, params: Any, **options: Any) -> CypherResult:
        ran.append(options)
        return CypherResult(["n"], [[1]], False, 1.5, limit=options["limit"], store="double")

    monkeypatch.setattr("tiein.cypher.run_cypher", fake_run)
    st: Any = _Store()
    out = cypher_payload(st, "RETURN 1 AS n", max_rows=500, max_timeout_s=5.0, worker=False)
    assert out["columns"] == ["n"] and out["rows"] == [[1]] and out["truncated"] is False
    assert ran == [{"limit": 500, "timeout_s": 5.0, "worker": False}]
    with pytest.raises(ConfigError, match="limit must be at most 500, got 501"):
        cypher_payload(st, "RETURN 1", limit=501, max_rows=500, max_timeout_s=5.0)
    with pytest.raises(ConfigError, match="timeout_s must be at most 5, got 6"):
        cypher_payload(st, "RETURN 1", timeout_s=6.0, max_rows=500, max_timeout_s=5.0)
    assert len(ran) == 1


def test_neighbourhood_holds_every_kind_and_a_rejected_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_bundle(store: Any, anchor_id: str, **options: Any) -> Any:
        raise ConfigError("the anchor has no price band")

    monkeypatch.setattr("tiein.service.bundle.bundle", no_bundle)
    page = neighbourhood_payload(_Store(), "tent", 5)  # type: ignore[arg-type]
    assert page["product"] == TENT and list(page["related"]) == list(RELATION_KINDS)
    assert page["related"]["upsell"][0]["explanation_en"]
    assert page["bundle"] is None and page["bundle_error"] == "the anchor has no price band"

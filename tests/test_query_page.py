"""The analysts' Cypher page (GET /v1/query) in headless Chromium against a started `tiein serve`:
a query runs through POST /v1/cypher into a result table and a graph (nodes by _ID, relationships
from _START to _END; paths too), CSV download, errors shown, the history kept in localStorage,
and screenshots at desktop and phone width (no overflow, Chinese in a CJK font, no outside
request). The browser and fonts: see tests/test_api_page.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_api import camping_home, serve
from test_api_page import (
    DESKTOP,
    PHONE,
    assert_cjk_rendered,
    assert_no_horizontal_overflow,
    browser,  # noqa: F401 - the fixture
    graph_size,
    offline_page,
    screenshot,
)

GRAPH_QUERY = (
    "MATCH (p:Product {product_id: 'tent'})-[r:COMPLEMENT]->(q:Product) RETURN p, r, q ORDER BY r.score DESC"
)
PATH_QUERY = "MATCH path = (p:Product {product_id: 'tent'})-[:SUBSTITUTE]->(q:Product) RETURN path"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home)) as url:
        yield url


def run_query(page: Any, query: str) -> None:
    page.locator("#query").fill(query)
    with page.expect_response("**/v1/cypher") as response:
        page.locator("#run").click()
    assert response.value.status in (200, 400, 401, 403, 422)
    page.wait_for_function("() => !document.getElementById('run').disabled")


def test_relationships_carry_their_ends_and_evidence_is_an_object(base_url: str) -> None:
    r = httpx.post(f"{base_url}/v1/cypher", json={"query": GRAPH_QUERY}, timeout=60)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows
    for p, rel, q in rows:
        assert rel["_START"] == p["_ID"] and rel["_END"] == q["_ID"] and rel["_ID"]
        assert isinstance(rel["evidence"], dict)  # not JSON inside a JSON string


def test_query_page_table_graph_csv_and_history(base_url: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    page, outside, errors = offline_page(browser, base_url, viewport=DESKTOP, accept_downloads=True)
    page.goto(f"{base_url}/v1/query")
    expected = httpx.post(f"{base_url}/v1/cypher", json={"query": GRAPH_QUERY}, timeout=60).json()["rows"]

    run_query(page, GRAPH_QUERY)
    assert page.locator("#result thead th").all_inner_texts() == ["p", "r", "q"]
    assert page.locator("#result tbody tr").count() == len(expected)
    assert "Campr 2-person dome tent" in page.locator("#result tbody tr").first.inner_text()
    nodes, edges = graph_size(page)
    assert (nodes, edges) == (1 + len(expected), len(expected))
    assert page.locator('svg#graph line.edge[data-kind="COMPLEMENT"]').count() == len(expected)

    # a node's properties, with a link to its product page
    page.locator("svg#graph g.node").nth(1).click()
    assert page.locator("#details").is_visible()
    assert '"_LABEL": "Product"' in page.locator("#details pre").inner_text()
    assert page.locator("#details a.nb").get_attribute("href").startswith("/v1/products/")

    # CSV: BOM, header, one line per row, nodes as JSON
    with page.expect_download() as info:
        page.locator("#csv").click()
    info.value.save_as(tmp_path / "result.csv")
    text = (tmp_path / "result.csv").read_bytes().decode("utf-8")
    assert text.startswith("\ufeffp,r,q\r\n") and text.count("\r\n") == 1 + len(expected)
    assert '""_START""' in text

    # a path: its nodes and relationships drawn
    run_query(page, PATH_QUERY)
    nodes, edges = graph_size(page)
    assert edges >= 2 and nodes == edges + 1
    assert page.locator('svg#graph line.edge[data-kind="SUBSTITUTE"]').count() == edges

    # a value answer: a table and no graph
    run_query(page, "MATCH (p:Product) RETURN p.category AS category, count(*) AS n ORDER BY n DESC")
    assert page.locator("#result tbody tr").count() >= 3 and not page.locator("#graph-section").is_visible()

    # a write is refused and said so
    run_query(page, "MATCH (p:Product) DETACH DELETE p")
    assert page.locator("#error").is_visible() and "403 write_refused" in page.locator("#error").inner_text()

    # the history (newest first) stays in this browser and loads a query back
    page.reload()
    history = page.locator("#history-list li a").all_inner_texts()
    assert history[:3] == [
        "MATCH (p:Product) DETACH DELETE p",
        "MATCH (p:Product) RETURN p.category AS category, count(*) AS n ORDER BY n DESC",
        PATH_QUERY,
    ]
    page.locator("#history-list li a", has_text="SUBSTITUTE").click()
    assert page.locator("#query").input_value() == PATH_QUERY
    page.locator("#clear-history").click()
    assert page.locator("#history-list li").count() == 0

    assert errors == [] and outside == []
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_query_page_screenshot(base_url: str, browser: Any, tmp_path: Path, viewport: dict[str, int]) -> None:  # noqa: F811
    page, outside, errors = offline_page(browser, base_url, viewport=viewport)
    page.goto(f"{base_url}/v1/query")
    run_query(page, GRAPH_QUERY)
    nodes, edges = graph_size(page)
    assert nodes >= 4 and edges >= 3
    assert_no_horizontal_overflow(page)
    assert_cjk_rendered(page, "#result-section h2 .zh")
    assert_cjk_rendered(page, "header .facts .zh")
    screenshot(page, tmp_path / f"query-{viewport['width']}.png")
    assert errors == [] and outside == []
    page.context.close()


def test_query_page_asks_for_the_token_when_the_server_has_one(
    tmp_path_factory: pytest.TempPathFactory,
    browser: Any,  # noqa: F811
) -> None:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home), env={"TIEIN_API_TOKEN": "s3cret-token"}) as url:
        page, outside, errors = offline_page(browser, url, viewport=PHONE)
        page.goto(f"{url}/v1/query")  # the page itself is public; the data is not
        run_query(page, GRAPH_QUERY)
        assert "401 unauthorized" in page.locator("#error").inner_text()
        assert page.locator("#token").is_visible()
        page.locator("#token").fill("s3cret-token")
        run_query(page, GRAPH_QUERY)
        assert not page.locator("#error").is_visible()
        assert graph_size(page)[1] >= 3
        assert errors == [] and outside == []
        page.context.close()

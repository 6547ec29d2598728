"""/docs (Swagger UI) and /redoc (ReDoc) with the network off: headless Chromium may reach the
server under test only (every other request is blocked and listed), and the operations must
render from tiein's own copies of Swagger UI and ReDoc (the PyPI package fastapi-offline,
installed by `make setup`). The browser: see tests/test_api_page.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_api import camping_home, serve
from test_api_page import CI, DESKTOP, browser, offline_page  # noqa: F401 - browser: the fixture

from tiein.api.pages import VENDOR_FILES, static_files, vendor_dir


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home)) as url:
        yield url


def test_the_assets_are_installed_and_served(base_url: str) -> None:
    assert vendor_dir() is not None, "Swagger UI / ReDoc files missing: pip install 'tiein[api]' (make setup)"
    names = static_files()
    assert {f"vendor/{n}" for n in VENDOR_FILES} <= set(names) and {"graph.js", "tiein.css"} <= set(names)
    for name, kind in (
        ("vendor/swagger-ui-bundle.js", "javascript"),
        ("vendor/swagger-ui.css", "text/css"),
        ("vendor/redoc.standalone.js", "javascript"),
        ("graph.js", "javascript"),
        ("tiein.css", "text/css"),
    ):
        r = httpx.get(f"{base_url}/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert len(r.content) > 1000
    for bad in ("../api/pages.py", "vendor/../../errors.py", "nothing.js", "%2e%2e/app.py"):
        r = httpx.get(f"{base_url}/static/{bad}")
        assert r.status_code == 404, bad
    html = httpx.get(f"{base_url}/docs").text
    assert "/static/vendor/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    html = httpx.get(f"{base_url}/redoc").text
    assert "/static/vendor/redoc.standalone.js" in html and "cdn" not in html.lower()
    assert "googleapis" not in html
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert not any(p.startswith(("/docs", "/redoc", "/static", "/v1/query")) for p in spec["paths"])


def test_swagger_ui_renders_offline(base_url: str, browser: Any) -> None:  # noqa: F811
    page, outside, errors = offline_page(browser, base_url, viewport=DESKTOP)
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() >= 10  # every operation of the API
    summaries = " ".join(page.locator(".opblock-summary-path").all_inner_texts())
    assert "/v1/cypher" in summaries and "/v1/products/{product_id}/related" in summaries
    assert "tiein" in page.locator(".swagger-ui .info .title").inner_text()
    # an operation opens (the UI is live, not a static text)
    page.locator(".opblock-summary-path", has_text="/v1/health").first.click()
    page.wait_for_selector(".opblock.is-open")
    assert errors == [] and outside == []
    page.context.close()


def test_redoc_renders_offline(base_url: str, browser: Any) -> None:  # noqa: F811
    page, outside, errors = offline_page(browser, base_url, viewport=DESKTOP)
    page.goto(f"{base_url}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']", state="attached", timeout=60_000)
    assert page.locator("[data-section-id^='operation/']").count() >= 10
    assert "/v1/cypher" in page.content()
    assert errors == [] and outside == []
    page.context.close()


def test_docs_need_the_network_nowhere_under_ci() -> None:
    if CI:
        assert vendor_dir() is not None

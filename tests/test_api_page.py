"""The analyst's HTML page (GET /v1/products/{id}/view) in a real headless Chromium (the Debian
browser at /usr/bin/chromium; never a downloaded one) against a started `tiein serve`.

CI must install the browser: ``apt-get install -y chromium``. Without /usr/bin/chromium the test
is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api import camping_home, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists() and os.environ.get("CI", "").lower() not in ("true", "1"):
    pytest.skip(
        "no /usr/bin/chromium here (apt-get install chromium); required under CI", allow_module_level=True
    )


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    assert CHROMIUM.exists(), "CI=true but /usr/bin/chromium is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_page_shows_the_neighbourhood_and_links_work(base_url: str, browser: object, tmp_path: Path) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    outside: list[str] = []
    page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(base_url) else None)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{base_url}/v1/products/tent/view")
    assert page.locator("#product-title").inner_text() == "Campr 2-person dome tent"
    # the bundle: chair + lamp, 527 apart, 468 together (tests/fixtures/camping/README.md)
    bundle = page.locator("#bundle")
    assert bundle.locator("a.nb").all_inner_texts() == ["Folding camping chair", "LED camping lantern"]
    assert "468" in bundle.locator(".pitch").inner_text()
    # complements listed with their explanation; the competing tent is a substitute
    comp_ids = page.locator("#complement tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert "pegs" in comp_ids and "tent_b" not in comp_ids
    assert "9" in page.locator('#complement tr[data-id="pegs"] .en').inner_text()
    assert "tent_b" in page.locator("#substitute tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    for section in ("complement", "substitute", "upsell", "series"):
        assert page.locator(f"#{section} h2").is_visible()

    # the language switch hides the other language
    zh = page.locator('#complement tr[data-id="pegs"] .zh')
    en = page.locator('#complement tr[data-id="pegs"] .en')
    assert zh.is_visible() and en.is_visible()
    page.locator('nav.lang button[data-lang="en"]').click()
    assert en.is_visible() and not zh.is_visible()
    page.locator('nav.lang button[data-lang="both"]').click()

    shot = tmp_path / "tent.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000

    # follow a neighbour: the chair's own page
    page.locator("#bundle a.nb", has_text="Folding camping chair").click()
    page.wait_for_url("**/v1/products/chair/view")
    assert page.locator("#product-title").inner_text() == "Folding camping chair"
    assert page.locator("#product-id").get_attribute("data-id") == "chair"
    assert "tent" in page.locator("#complement tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )

    assert errors == []
    assert outside == []  # self-contained: nothing fetched from anywhere else
    page.close()


def test_unknown_product_page_is_the_404_envelope(base_url: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    response = page.goto(f"{base_url}/v1/products/ghost/view")
    assert response is not None and response.status == 404
    assert "ghost" in page.content()
    page.close()

"""The analyst's HTML page (GET /v1/products/{id}/view) in a real headless Chromium (the Debian
browser at /usr/bin/chromium; never a downloaded one) against a started `tiein serve`: the
neighbourhood graph (nodes and edges, click to re-centre), the tables with their CSV downloads,
headings in both languages, the HTML 404, and screenshots at desktop and phone (390 px) width
with no horizontal overflow and the Chinese drawn in a CJK font (not tofu).

CI must install the browser and a CJK font: ``apt-get install -y chromium fonts-noto-cjk``.
Without /usr/bin/chromium the test is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CI = os.environ.get("CI", "").lower() in ("true", "1")

if not CHROMIUM.exists() and not CI:
    pytest.skip(
        "no /usr/bin/chromium here (apt-get install chromium); required under CI", allow_module_level=True
    )


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), "CI=true but /usr/bin/chromium is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# ----------------------------------------------------------------------------- shared checks
def cjk_font_families() -> set[str]:
    """The font families installed here that cover Chinese (fontconfig's :lang=zh)."""
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30
        ).stdout
    except FileNotFoundError:
        return set()
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


def assert_cjk_rendered(page: Any, selector: str) -> None:
    """The Chinese text of ``selector`` is drawn with a font that has Chinese glyphs (not tofu):
    Chromium's own answer (DevTools CSS.getPlatformFontsForNode) names the fonts that drew it."""
    families = cjk_font_families()
    assert families, "no CJK font installed (apt-get install -y fonts-noto-cjk): Chinese would be tofu"
    text = page.locator(selector).first.inner_text()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{selector} holds no Chinese: {text!r}"
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})
        node = cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector})
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    finally:
        cdp.detach()
    used = {f["familyName"] for f in fonts if f["glyphCount"] > 0}
    assert used & families, f"{selector} ({text!r}) drawn with {used}, none of the CJK fonts {families}"


def assert_no_horizontal_overflow(page: Any) -> None:
    """Nothing sticks out to the right: the page is no wider than the window, and no section is."""
    widths = page.evaluate(
        "() => ({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
        " win: window.innerWidth, right: Math.max(...[...document.querySelectorAll('header, section,"
        " footer')].map(e => e.getBoundingClientRect().right))})"
    )
    assert widths["doc"] <= widths["win"] and widths["body"] <= widths["win"], widths
    assert widths["right"] <= widths["win"] + 0.5, widths


def graph_size(page: Any, svg: str = "svg#graph") -> tuple[int, int]:
    """(nodes, edges) drawn in ``svg``; both must be inside the drawing's box."""
    page.wait_for_selector(f"{svg} g.node")
    nodes = page.locator(f"{svg} g.node").count()
    edges = page.locator(f"{svg} line.edge").count()
    box = page.locator(svg).bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200
    return nodes, edges


def screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a drawn page, not a blank one


def offline_page(browser: Any, base_url: str, **kwargs: Any) -> tuple[Any, list[str], list[str]]:
    """A page of a fresh context, with requests anywhere but ``base_url`` blocked (and listed),
    and page errors listed."""
    context = browser.new_context(**kwargs)
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, outside, errors


# ----------------------------------------------------------------------------- the product page
def test_page_shows_the_neighbourhood_and_links_work(base_url: str, browser: Any, tmp_path: Path) -> None:
    page, outside, errors = offline_page(browser, base_url, viewport=DESKTOP, accept_downloads=True)

    page.goto(f"{base_url}/v1/products/tent/view")
    assert page.locator("#product-title").inner_text() == "Campr 2-person dome tent"
    # the bundle: chair + lamp, 527 apart, 468 together (tests/fixtures/camping/README.md)
    bundle = page.locator("#bundle")
    assert bundle.locator("a.nb").all_inner_texts() == ["Folding camping chair", "LED camping lantern"]
    assert "468" in bundle.locator(".pitch").inner_text()
    # complements listed with their explanation; the competing tent is a substitute
    comp_ids = page.locator("#complement tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert "pegs" in comp_ids and "tent_b" not in comp_ids
    assert "9" in page.locator('#complement tr[data-id="pegs"] .why-cell .en').inner_text()
    assert "tent_b" in page.locator("#substitute tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    for section in ("complement", "substitute", "upsell", "series", "next"):
        assert page.locator(f"#{section} h2").is_visible()

    # the graph: the tent in the middle, an edge to every related product, coloured by kind
    nodes, edges = graph_size(page)
    related = page.locator("main section tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert nodes == 1 + len(set(related)) and edges == len(related) and edges >= 3
    assert page.locator('svg#graph g.node.center[data-id="tent"]').count() == 1
    kinds = set(page.locator("svg#graph line.edge").evaluate_all("ls => ls.map(l => l.dataset.kind)"))
    assert {"complement", "substitute"} <= kinds
    colours = page.locator("svg#graph line.edge").evaluate_all(
        "ls => Object.fromEntries(ls.map(l => [l.dataset.kind, l.getAttribute('stroke')]))"
    )
    assert len(set(colours.values())) == len(colours)  # one colour per kind
    assert page.locator("#legend .key").count() == len(kinds)

    # the language switch hides the other language, headings included
    zh = page.locator('#complement tr[data-id="pegs"] .why-cell .zh')
    en = page.locator('#complement tr[data-id="pegs"] .why-cell .en')
    assert zh.is_visible() and en.is_visible()
    page.locator('nav.lang button[data-lang="en"]').click()
    assert en.is_visible() and not zh.is_visible()
    assert (
        page.locator("#complement h2 .en").is_visible()
        and not page.locator("#complement h2 .zh").is_visible()
    )
    page.locator('nav.lang button[data-lang="zh"]').click()
    assert page.locator("#complement h2").inner_text().startswith("搭配")
    assert not page.locator("#complement h2 .en").is_visible()
    assert not page.locator("#complement th .en").first.is_visible()
    page.locator('nav.lang button[data-lang="both"]').click()

    # CSV of a table: UTF-8 with a BOM, one row per related product
    with page.expect_download() as info:
        page.locator('button.csv[data-table="complement"]').click()
    csv_path = tmp_path / "complement.csv"
    info.value.save_as(csv_path)
    text = csv_path.read_bytes().decode("utf-8")
    lines = text.lstrip("\ufeff").splitlines()
    assert text.startswith("\ufeffkind,product_id,title,")
    assert len(lines) == 1 + len(comp_ids) and any(ln.startswith("complement,pegs,") for ln in lines)
    with page.expect_download() as info:
        page.locator('button.csv[data-table="bundle"]').click()
    info.value.save_as(tmp_path / "bundle.csv")
    assert "chair" in (tmp_path / "bundle.csv").read_text(encoding="utf-8-sig")

    # follow a neighbour: the chair's own page
    page.locator("#bundle a.nb", has_text="Folding camping chair").click()
    page.wait_for_url("**/v1/products/chair/view")
    assert page.locator("#product-title").inner_text() == "Folding camping chair"
    assert page.locator("#product-id").get_attribute("data-id") == "chair"
    assert "tent" in page.locator("#complement tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )

    # click a node of the graph: re-centred on it
    page.locator('svg#graph g.node[data-id="tent"]').click()
    page.wait_for_url("**/v1/products/tent/view")
    page.wait_for_selector('svg#graph g.node.center[data-id="tent"]')

    # the query page, opened on this product's neighbourhood (and run)
    page.locator("#query-link").click()
    page.wait_for_url("**/v1/query?*")
    page.wait_for_selector("#result tbody tr")
    assert '"id": "tent"' in page.locator("#params").input_value()
    nodes, edges = graph_size(page)
    assert nodes >= 4 and edges >= nodes - 1

    assert errors == []
    assert outside == []  # self-contained: nothing fetched from anywhere else
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_product_page_screenshot(
    base_url: str, browser: Any, tmp_path: Path, viewport: dict[str, int]
) -> None:
    page, outside, errors = offline_page(browser, base_url, viewport=viewport)
    page.goto(f"{base_url}/v1/products/tent/view")
    nodes, edges = graph_size(page)
    assert nodes >= 4 and edges >= 3
    assert_no_horizontal_overflow(page)
    assert_cjk_rendered(page, "#complement h2 .zh")
    assert_cjk_rendered(page, '#complement tr[data-id="pegs"] .why-cell .zh')
    screenshot(page, tmp_path / f"product-{viewport['width']}.png")
    assert errors == [] and outside == []
    page.context.close()


def test_unknown_product_page_is_an_html_404(base_url: str, browser: Any, tmp_path: Path) -> None:
    page, outside, errors = offline_page(browser, base_url, viewport=PHONE)
    response = page.goto(f"{base_url}/v1/products/ghost/view")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("#product-id").inner_text() == "ghost"
    assert page.locator("#not-found .zh").inner_text() == "没有这个商品"
    assert_no_horizontal_overflow(page)
    screenshot(page, tmp_path / "ghost.png")
    # the box opens another product's page
    page.locator("#goto input").fill("tent")
    page.locator("#goto button").click()
    page.wait_for_url("**/v1/products/tent/view")
    assert errors == [] and outside == []
    page.context.close()
    # an API client (no text/html in Accept) still gets the JSON envelope
    r = httpx.get(f"{base_url}/v1/products/ghost/view", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"

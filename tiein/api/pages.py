"""The browser side of the API, all served by tiein itself (nothing from a CDN, so it works on an
intranet or offline): the analysts' Cypher page (``/v1/query``), the pages' scripts and styles
(``/static/``), Swagger UI (``/docs``) and ReDoc (``/redoc``) from local copies, and the HTML 404
page of an unknown product on ``/v1/products/{id}/view``.

Where the files come from:

- ``tiein/static/`` (package data): the pages' CSS and scripts, among them ``graph.js``, a small
  force layout drawn as SVG (~8 KB) instead of a graph library (vis-network or cytoscape are
  400-700 KB minified): a product's neighbourhood is a star of at most ~50 products and an
  analyst's answer is capped to a few hundred drawn elements, which a plain SVG drawing handles;
  SVG elements are DOM, so tests count nodes and edges and the browser's own fonts render the
  Chinese labels.
- Swagger UI and ReDoc: the files of the PyPI package ``fastapi-offline`` (a dependency of the
  ``api`` extra, so ``make setup`` / ``pip install tiein[api]`` installs them; only its static
  files are used: ``swagger-ui-bundle.js``, ``swagger-ui.css`` (Swagger UI 5, which reads the
  OpenAPI 3.1 that FastAPI writes; PyPI's ``swagger-ui-bundle`` ships Swagger UI 4, which cannot)
  and ``redoc.standalone.js`` (ReDoc 2)). They are served as ``/static/vendor/NAME``.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from tiein.api.errors import _error_details, envelope, error_status
from tiein.api.page import QUERY_PAGE, render_not_found, render_query_page
from tiein.api.settings import API_PREFIX
from tiein.errors import ProductNotFound

STATIC_DIR = Path(__file__).parent.parent / "static"
VENDOR_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
STATIC_URL = "/static"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
REDOC_HEAD = (
    '<head>\n<meta http-equiv="Content-Security-Policy" content="img-src \'self\' data: blob:">\n'
    '<style>img[src*="redoc.ly"] { display: none; }</style>'
)


def vendor_dir() -> Path | None:
    """The folder of the installed Swagger UI and ReDoc files (the ``fastapi_offline`` package's
    ``static/``), or None when that package is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if all((folder / name).is_file() for name in VENDOR_FILES) else None


def static_files() -> dict[str, Path]:
    """Every file ``/static/`` serves, by the name after ``/static/``: tiein's own (CSS, scripts)
    and ``vendor/NAME`` for Swagger UI and ReDoc. Nothing else can be asked for."""
    files = {p.name: p for p in sorted(STATIC_DIR.iterdir()) if p.suffix in (".js", ".css", ".png", ".svg")}
    vendor = vendor_dir()
    if vendor is not None:
        files.update({f"vendor/{name}": vendor / name for name in VENDOR_FILES})
    return files


def _missing_docs(what: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{what}</title><p>{what} needs the Swagger UI / "
        "ReDoc files of the package <code>fastapi-offline</code>: <code>pip install 'tiein[api]'</code> "
        "(or <code>make setup</code>). The API itself works: <a href=/openapi.json>/openapi.json</a>.",
        status_code=503,
    )


def pages_router() -> APIRouter:
    """The routes of this module (none of them in the OpenAPI spec: they are pages, not API)."""
    router = APIRouter(include_in_schema=False)
    files = static_files()
    has_vendor = vendor_dir() is not None

    @router.get(STATIC_URL + "/{name:path}")
    def static(name: str) -> Response:
        path = files.get(name)
        if path is None:
            return envelope(404, "not_found", f"no such file: {STATIC_URL}/{name}")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith("javascript"):
            media += "; charset=utf-8"
        cache = "public, max-age=86400" if name.startswith("vendor/") else "no-cache"
        return FileResponse(path, media_type=media, headers={"Cache-Control": cache})

    @router.get(QUERY_PAGE, response_class=HTMLResponse)
    def query_page() -> HTMLResponse:
        return HTMLResponse(render_query_page())

    @router.get("/docs", response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        if not has_vendor:
            return _missing_docs("Swagger UI")
        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url,
            title=f"{request.app.title} · API docs",
            swagger_js_url=f"{STATIC_URL}/vendor/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/vendor/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/vendor/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # no spec validator badge (an image from validator.swagger.io when not on localhost)
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get(OAUTH2_REDIRECT, response_class=HTMLResponse)
    def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc(request: Request) -> HTMLResponse:
        if not has_vendor:
            return _missing_docs("ReDoc")
        page = get_redoc_html(
            openapi_url=request.app.openapi_url,
            title=f"{request.app.title} · ReDoc",
            redoc_js_url=f"{STATIC_URL}/vendor/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/vendor/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc's "API docs by Redocly" shows a logo from its CDN: images from here only, no logo
        html = bytes(page.body).decode("utf-8").replace("<head>", REDOC_HEAD, 1)
        return HTMLResponse(html)

    return router


def _is_product_page(request: Request) -> bool:
    path = request.url.path
    return request.method == "GET" and path.startswith(f"{API_PREFIX}/products/") and path.endswith("/view")


def install_pages(app: FastAPI) -> None:
    """Add the pages to ``app``: :func:`pages_router`, and the HTML 404 of the product page (for
    a browser, whose Accept names text/html; an API client still gets the JSON envelope the
    OpenAPI spec documents)."""
    app.include_router(pages_router())

    @app.exception_handler(ProductNotFound)
    async def product_not_found(request: Request, exc: ProductNotFound) -> Response:
        if _is_product_page(request) and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(render_not_found(exc.product_id, str(exc)), status_code=404)
        status, code = error_status(exc)
        return envelope(status, code, str(exc), _error_details(exc))

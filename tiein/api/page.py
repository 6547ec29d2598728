"""The analyst's HTML page of a product's neighbourhood (``/v1/products/{id}/view``)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote, urlencode

from tiein import __version__
from tiein.api.state import State
from tiein.service import PAGE_K, NeighbourhoodPayload, neighbourhood_payload

# (kind, English, Chinese, colour in the graph): the sections in page order
PAGE_KINDS = (
    ("complement", "Complements", "搭配", "#2b8a3e"),
    ("substitute", "Substitutes", "替代", "#d9480f"),
    ("upsell", "Upsells", "升级", "#7048e8"),
    ("series", "Same series", "同系列", "#1769aa"),
    ("next", "Next purchase", "下次购买", "#c2255c"),
)
TEMPLATES = Path(__file__).parent.parent / "templates"
TEMPLATE_FILE = TEMPLATES / "product.html"
QUERY_PAGE = "/v1/query"  # the analysts' Cypher page (tiein.api.pages)
# what the product page's link to the query page opens with (and runs)
# (two directed patterns: each half keeps its own LIMIT, out of and into the product)
NEIGHBOURS_QUERY = (
    "MATCH (p:Product {product_id: $id})-[r]->(q:Product) RETURN p, r, q LIMIT 100 "
    "UNION ALL MATCH (p:Product {product_id: $id})<-[r]-(q:Product) RETURN p, r, q LIMIT 100"
)


def neighbourhood(st: State, product_id: str) -> NeighbourhoodPayload:
    """What the product page shows: :func:`tiein.service.neighbourhood_payload` of the server's
    store (the product, its related rows per kind and its bundle, or ``bundle_error``)."""
    return neighbourhood_payload(st.store, product_id, PAGE_K)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _price(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def _link(pid: str, title: Any) -> str:
    return f'<a class="nb" href="../{quote(str(pid), safe="")}/view">{_e(title or pid)}</a>'


def _both(zh: Any, en: Any) -> str:
    return f'<span class="zh" lang="zh">{_e(zh)}</span><span class="en" lang="en">{_e(en)}</span>'


def _bi(zh: str, en: str) -> str:
    """A short label in both languages on one line (headings, column names)."""
    return f'<span class="bi">{_both(zh, en)}</span>'


def _json_script(value: Any) -> str:
    """``value`` as JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _related_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f'<p class="none">{_bi("无", "none")}</p>'
    out = [
        '<div class="scroll"><table class="rel"><thead><tr>'
        f'<th>{_bi("商品", "product")}</th><th class="num">{_bi("价格", "price")}</th>'
        f'<th class="num">{_bi("得分", "score")}</th><th>{_bi("理由", "why")}</th>'
        "</tr></thead><tbody>"
    ]
    price_label, score_label = _bi("价格", "price"), _bi("得分", "score")
    for r in rows:
        out.append(
            f'<tr data-id="{_e(r["product_id"])}"><td class="item">{_link(r["product_id"], r.get("title"))}'
            f'<div class="id">{_e(r["product_id"])} · {_e(r.get("category"))}</div></td>'
            f'<td class="num"><span class="ph">{price_label} </span>{_price(r.get("price"))}</td>'
            f'<td class="num"><span class="ph">{score_label} </span>{r["score"]:.3f}</td>'
            f'<td class="why-cell">{_both(r.get("explanation_zh"), r.get("explanation_en"))}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _bundle_html(bundle: Mapping[str, Any] | None, error: str | None) -> str:
    if bundle is None:
        return f'<p class="none">{_e(error)}</p>'
    if bundle.get("reason"):
        r = bundle["reason"]
        return f'<p class="none">{_both(r.get("zh"), r.get("en"))}</p>'
    items = "".join(
        f"<li>{_link(i['product']['product_id'], i['product'].get('title'))} "
        f'<span class="num">{_price(i["product"].get("price"))}</span> '
        f'<span class="role">{_e(i.get("role"))}</span>'
        f'<div class="why">{_both(i["explanation"].get("zh"), i["explanation"].get("en"))}</div></li>'
        for i in bundle["items"]
    )
    pitch = bundle.get("pitch") or {}
    return (
        f'<ol class="bundle">{items}</ol>'
        f'<p class="pitch">{_both(pitch.get("zh"), pitch.get("en"))}</p>'
        f'<p class="maths">{_bi("合计", "total")} {_price(bundle.get("total"))} → '
        f"{_price(bundle.get('suggested_price'))} "
        f"({_bi('省', 'save')} {_price(bundle.get('saving'))})</p>"
    )


def _page_data(data: NeighbourhoodPayload) -> dict[str, Any]:
    """What product.js needs: the product, the related rows of each kind, the bundle's items."""
    p = data["product"]
    keep = (
        "product_id",
        "title",
        "category",
        "price",
        "score",
        "explanation_zh",
        "explanation_en",
        "evidence",
    )
    bundle: Mapping[str, Any] = data.get("bundle") or {}
    items = [
        {
            "role": i.get("role"),
            "product_id": i["product"]["product_id"],
            "title": i["product"].get("title"),
            "price": i["product"].get("price"),
            "explanation_zh": (i.get("explanation") or {}).get("zh"),
            "explanation_en": (i.get("explanation") or {}).get("en"),
        }
        for i in (bundle.get("items") or [])
    ]
    return {
        "product": {"product_id": p["product_id"], "title": p.get("title")},
        "kinds": [{"kind": k, "en": en, "zh": zh, "color": c} for k, en, zh, c in PAGE_KINDS],
        "related": {
            k: [{f: r.get(f) for f in keep} for r in data["related"].get(k, [])] for k, *_ in PAGE_KINDS
        },
        "bundle": items,
    }


def render_product_page(data: NeighbourhoodPayload) -> str:
    """The HTML page of :func:`neighbourhood`'s answer: a graph of the neighbourhood, the bundle
    and a table per relation kind (each with a CSV download), in Chinese and English; its CSS
    and scripts come from tiein's own ``/static/`` (no outside resource)."""
    p = data["product"]
    sections = []
    for kind, en, zh, color in PAGE_KINDS:
        rows = data["related"].get(kind, [])
        sections.append(
            f'<section id="{kind}"><h2><i class="swatch" style="background:{color}"></i>{_bi(zh, en)} '
            f'<span class="count">({len(rows)})</span>'
            f'<button type="button" class="csv" data-table="{kind}" title="CSV">CSV ⤓</button></h2>'
            f"{_related_rows(rows)}</section>"
        )
    facts = " · ".join(
        _e(x) for x in (p["product_id"], p.get("category_path") or p.get("category"), p.get("brand")) if x
    )
    stock = p.get("stock")
    neighbours_params = json.dumps({"id": p["product_id"]}, ensure_ascii=False)
    template = Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return template.substitute(
        title=_e(p.get("title") or p["product_id"]),
        product_id=_e(p["product_id"]),
        product_url=_e(quote(str(p["product_id"]), safe="")),
        query_url=_e(f"{QUERY_PAGE}?{urlencode({'q': NEIGHBOURS_QUERY, 'params': neighbours_params})}"),
        facts=facts,
        price=_price(p.get("price")),
        stock=_bi("未知", "unknown") if stock is None else _e(stock),
        bundle=_bundle_html(data.get("bundle"), data.get("bundle_error")),
        sections="".join(sections),
        data=_json_script(_page_data(data)),
        version=_e(__version__),
    )


def render_not_found(product_id: str, message: str) -> str:
    """The HTML 404 page of an unknown product id: what was asked, a box to open another id, and
    the ways on (the query page, the API docs)."""
    template = Template((TEMPLATES / "not_found.html").read_text(encoding="utf-8"))
    return template.substitute(
        product_id=_e(product_id),
        message=_e(message),
        query_url=_e(QUERY_PAGE),
        version=_e(__version__),
    )


def render_query_page() -> str:
    """The analysts' Cypher page (query box, result table and graph, CSV, history)."""
    template = Template((TEMPLATES / "query.html").read_text(encoding="utf-8"))
    return template.substitute(version=_e(__version__))

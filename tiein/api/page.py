"""The analyst's HTML page of a product's neighbourhood (``/v1/products/{id}/view``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from tiein import __version__
from tiein.api.state import State
from tiein.service import PAGE_K, NeighbourhoodPayload, neighbourhood_payload

PAGE_KINDS = (
    ("complement", "Complements", "搭配"),
    ("substitute", "Substitutes", "替代"),
    ("upsell", "Upsells", "升级"),
    ("series", "Same series", "同系列"),
)
TEMPLATE_FILE = Path(__file__).parent.parent / "templates" / "product.html"


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


def _related_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="none">none</p>'
    out = ["<table><thead><tr><th>product</th><th>price</th><th>score</th><th>why</th></tr></thead><tbody>"]
    for r in rows:
        out.append(
            f'<tr data-id="{_e(r["product_id"])}"><td>{_link(r["product_id"], r.get("title"))}'
            f'<div class="id">{_e(r["product_id"])} · {_e(r.get("category"))}</div></td>'
            f'<td class="num">{_price(r.get("price"))}</td><td class="num">{r["score"]:.3f}</td>'
            f"<td>{_both(r.get('explanation_zh'), r.get('explanation_en'))}</td></tr>"
        )
    out.append("</tbody></table>")
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
        f'<p class="maths">total {_price(bundle.get("total"))} → {_price(bundle.get("suggested_price"))} '
        f"(save {_price(bundle.get('saving'))})</p>"
    )


def render_product_page(data: NeighbourhoodPayload) -> str:
    """The self-contained HTML page (inline CSS and JS, no external resources) of
    :func:`neighbourhood`'s answer."""
    p = data["product"]
    sections = []
    for kind, en, zh in PAGE_KINDS:
        rows = data["related"].get(kind, [])
        sections.append(
            f'<section id="{kind}"><h2>{en} <span class="zh-title">{zh}</span> '
            f"<small>({len(rows)})</small></h2>{_related_rows(rows)}</section>"
        )
    facts = " · ".join(
        _e(x) for x in (p["product_id"], p.get("category_path") or p.get("category"), p.get("brand")) if x
    )
    stock = p.get("stock")
    template = Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return template.substitute(
        title=_e(p.get("title") or p["product_id"]),
        product_id=_e(p["product_id"]),
        product_url=_e(quote(str(p["product_id"]), safe="")),
        facts=facts,
        price=_price(p.get("price")),
        stock="unknown" if stock is None else _e(stock),
        bundle=_bundle_html(data.get("bundle"), data.get("bundle_error")),
        sections="".join(sections),
        version=_e(__version__),
    )

"""The flat rows of an export (CSV / Parquet / XLSX): :func:`columns`, one payload of
:mod:`tiein.service` as rows (:func:`related_rows`, :func:`bundle_rows`, and one row per bundle
:func:`bundle_wide_rows`), the bilingual column headers (:func:`header`) and the formula escaping
of CSV text cells (:func:`escape_formula`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.graph.base import PRODUCT_FIELDS
from tiein.model import PRODUCTS

WHATS = ("bundles", "related")
# item: one row per related item / bundle item (the anchor repeated); bundle: one row per bundle,
# its items side by side (item1_*, item2_*, ...)
LAYOUTS = ("item", "bundle")
HEADERS = ("en", "zh-en")
# The fields of each item of a one-row-per-bundle layout, in order.
WIDE_ITEM_FIELDS = ("product_id", "title", "brand", "price", "stock", "role", "relation", "score")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^[=+\-@\t\r]"


def escape_formula(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading ``'``; anything else
    (numbers included) as it is.

    >>> escape_formula("=1+2"), escape_formula("@SUM(A1)"), escape_formula(-3.5), escape_formula("tent")
    ("'=1+2", "'@SUM(A1)", -3.5, 'tent')
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def escape_formula_table(table: pa.Table) -> pa.Table:
    """:func:`escape_formula` on every text column of ``table`` (vectorised)."""
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            col = table.column(i)
            quoted = pc.binary_join_element_wise(pa.scalar("'", f.type), col, pa.scalar("", f.type))
            escaped = pc.if_else(pc.match_substring_regex(col, _FORMULA_RE), quoted, col)
            table = table.set_column(i, f, escaped)
    return table


_PRODUCT_TYPES = {f: PRODUCTS.field(f).type for f in PRODUCT_FIELDS}


def _product_fields(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}{f}", _PRODUCT_TYPES[f]) for f in PRODUCT_FIELDS]


def columns(what: str, layout: str = "item", slots: int = 2) -> pa.Schema:
    """The flat columns (CSV / Parquet / XLSX) of an export of ``what``, in order; ``layout``
    "bundle" (bundles only): one row per bundle with ``slots`` items side by side."""
    s, f, i = pa.string(), pa.float64(), pa.int64()
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if layout == "bundle":
        if what != "bundles":
            raise ConfigError(
                "layout 'bundle' (one row per bundle) is for bundles; related has one row per item"
            )
        head = [fld for fld in columns("bundles") if not fld.name.startswith("item_")]
        item_types = {"role": s, "relation": s, "score": f}
        wide = [
            pa.field(f"item{n}_{name}", item_types.get(name) or _PRODUCT_TYPES[name])
            for n in range(1, slots + 1)
            for name in WIDE_ITEM_FIELDS
            if name in item_types or name in _PRODUCT_TYPES
        ]
        return pa.schema([*head, *wide])
    if what == "related":
        return pa.schema(
            [
                *_product_fields("anchor_"),
                ("kind", s),
                ("rank", i),
                *_product_fields(""),
                ("score", f),
                ("n_ab", i),
                ("lift", f),
                ("confidence", f),
                ("co_view", i),
                ("similarity", f),
                ("category_relation", s),
                ("price_ratio", f),
                ("evidence", s),
                ("explanation_zh", s),
                ("explanation_en", s),
            ]
        )
    if what == "bundles":
        return pa.schema(
            [
                *_product_fields("anchor_"),
                ("scene_id", s),
                ("scene_name", s),
                ("items", i),
                ("total", f),
                ("suggested_price", f),
                ("saving", f),
                ("discount", f),
                ("budget", f),
                ("pitch_zh", s),
                ("pitch_en", s),
                ("reason_code", s),
                ("reason_zh", s),
                ("reason_en", s),
                ("skipped", s),
                ("skipped_roles", s),
                ("mix", s),
                ("priced", pa.bool_()),
                ("item_rank", i),
                *_product_fields("item_"),
                ("item_role", s),
                ("item_relation", s),
                ("item_score", f),
                ("item_evidence", s),
                ("item_explanation_zh", s),
                ("item_explanation_en", s),
            ]
        )
    raise ConfigError(f"unknown export {what!r}; choose one of: {', '.join(WHATS)}")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _prefixed(product: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {f"{prefix}{f}": product.get(f) for f in PRODUCT_FIELDS}


def related_rows(payload: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (:func:`columns` ``"related"``) of one related payload."""
    anchor = _prefixed(payload["product"], "anchor_")
    for rank, r in enumerate(payload["related"], 1):
        yield {
            **anchor,
            "kind": payload["kind"],
            "rank": rank,
            **_prefixed(r, ""),
            "score": r["score"],
            "n_ab": r["n_ab"],
            "lift": r["lift"],
            "confidence": r["confidence"],
            "co_view": r["co_view"],
            "similarity": r["similarity"],
            "category_relation": r["category_relation"],
            "price_ratio": r["price_ratio"],
            "evidence": _json(r["evidence"]),
            "explanation_zh": r["explanation_zh"],
            "explanation_en": r["explanation_en"],
        }


def bundle_rows(payload: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (:func:`columns` ``"bundles"``) of one bundle payload: one per item, or one
    with empty item columns when there is no bundle."""
    scene = payload.get("scene") or {}
    reason = payload.get("reason") or {}
    pitch = payload.get("pitch") or {}
    head = {
        **_prefixed(payload["anchor"], "anchor_"),
        "scene_id": scene.get("scene_id"),
        "scene_name": scene.get("name"),
        "items": len(payload["items"]),
        "total": payload.get("total"),
        "suggested_price": payload.get("suggested_price"),
        "saving": payload.get("saving"),
        "discount": payload.get("discount"),
        "budget": payload.get("budget"),
        "pitch_zh": pitch.get("zh"),
        "pitch_en": pitch.get("en"),
        "reason_code": reason.get("code"),
        "reason_zh": reason.get("zh"),
        "reason_en": reason.get("en"),
        "skipped": _json(payload.get("skipped")),
        "skipped_roles": _json(payload.get("skipped_roles")),
        "mix": _json(payload.get("mix")),
        "priced": payload.get("priced"),
    }
    if not payload["items"]:
        yield head
        return
    for rank, item in enumerate(payload["items"], 1):
        expl = item.get("explanation") or {}
        yield {
            **head,
            "item_rank": rank,
            **_prefixed(item["product"], "item_"),
            "item_role": item.get("role"),
            "item_relation": item.get("relation"),
            "item_score": item.get("score"),
            "item_evidence": _json(item.get("evidence")),
            "item_explanation_zh": expl.get("zh"),
            "item_explanation_en": expl.get("en"),
        }


def bundle_wide_rows(payload: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row (:func:`columns` ``"bundles", "bundle"``) for one bundle payload: the bundle's
    fields, then each item's :data:`WIDE_ITEM_FIELDS` as ``item1_*``, ``item2_*``, ... in the
    bundle's order (empty for a shorter bundle or no bundle)."""
    head = next(bundle_rows({**payload, "items": []}))
    head["items"] = len(payload["items"])
    for n, item in enumerate(payload["items"], 1):
        product = item.get("product") or {}
        for name in WIDE_ITEM_FIELDS:
            head[f"item{n}_{name}"] = (
                item.get(name) if name in ("role", "relation", "score") else product.get(name)
            )
    yield head


# Chinese names of the export columns (the header of an XLSX, or --headers zh-en).
_ZH_FIELDS = {
    "product_id": "商品ID",
    "title": "标题",
    "category": "类目",
    "category_path": "类目路径",
    "brand": "品牌",
    "price": "价格",
    "stock": "库存",
    "sales_role": "商品角色",
    "product_type": "商品类型",
    "margin": "毛利率",
    "attributes": "属性",
    "role": "角色",
    "relation": "关系",
    "score": "得分",
}
_ZH_COLUMNS = {
    "kind": "关系类型",
    "rank": "排名",
    "score": "得分",
    "n_ab": "共同购买次数",
    "lift": "提升度",
    "confidence": "置信度",
    "co_view": "共同浏览次数",
    "similarity": "相似度",
    "category_relation": "类目关系",
    "price_ratio": "价格比",
    "evidence": "依据",
    "explanation_zh": "推荐理由（中文）",
    "explanation_en": "推荐理由（英文）",
    "scene_id": "场景ID",
    "scene_name": "场景名称",
    "items": "搭配件数",
    "total": "原价合计",
    "suggested_price": "建议套餐价",
    "saving": "节省",
    "discount": "折扣",
    "budget": "预算",
    "pitch_zh": "推荐语（中文）",
    "pitch_en": "推荐语（英文）",
    "reason_code": "原因代码",
    "reason_zh": "原因（中文）",
    "reason_en": "原因（英文）",
    "skipped": "跳过的商品",
    "skipped_roles": "缺少的角色",
    "mix": "角色组合",
    "priced": "已定价",
    "item_rank": "搭配序号",
    "item_role": "搭配角色",
    "item_relation": "搭配关系",
    "item_score": "搭配得分",
    "item_evidence": "搭配依据",
    "item_explanation_zh": "搭配理由（中文）",
    "item_explanation_en": "搭配理由（英文）",
}


def zh_name(column: str, what: str = "related") -> str | None:
    """The Chinese name of an export column (None when it has none).

    >>> zh_name("anchor_product_id"), zh_name("item2_price", "bundles"), zh_name("title")
    ('主商品ID', '搭配商品2价格', '推荐商品标题')
    """
    import re

    if column in _ZH_COLUMNS:
        return _ZH_COLUMNS[column]
    m = re.fullmatch(r"(anchor_|item(\d*)_)?(.+)", column)
    if m is None or m.group(3) not in _ZH_FIELDS:
        return None
    prefix, n, name = m.groups()
    if prefix == "anchor_":
        who = "主商品"
    elif prefix:
        who = f"搭配商品{n}"
    else:
        who = "推荐商品" if what == "related" else ""
    return who + ("ID" if name == "product_id" and who else _ZH_FIELDS[name])


def header(column: str, headers: str = "en", what: str = "related") -> str:
    """The header of ``column``: as it is ("en") or "中文 / english" ("zh-en").

    >>> header("anchor_price", "zh-en")
    '主商品价格 / anchor_price'
    """
    if headers not in HEADERS:
        raise ConfigError(f"unknown headers {headers!r}; choose one of: {', '.join(HEADERS)}")
    zh = zh_name(column, what) if headers == "zh-en" else None
    return f"{zh} / {column}" if zh else column


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table of ``schema`` (missing keys are null), built column by column."""
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema
    )

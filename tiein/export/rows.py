"""The flat rows of an export (CSV / Parquet): :func:`columns`, one payload of
:mod:`tiein.service` as rows (:func:`related_rows`, :func:`bundle_rows`), and the formula
escaping of CSV text cells (:func:`escape_formula`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from tiein.errors import ConfigError
from tiein.graph.base import PRODUCT_FIELDS
from tiein.model import PRODUCTS

WHATS = ("bundles", "related")
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


def columns(what: str) -> pa.Schema:
    """The flat columns (CSV / Parquet) of an export of ``what``, in order."""
    s, f, i = pa.string(), pa.float64(), pa.int64()
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


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table of ``schema`` (missing keys are null), built column by column."""
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema
    )

"""A file of pairs the shop lists itself: curated complements and substitutes, or a marketplace's
"also bought" / "also viewed" lists (``tiein build --pairs FILE``).

Columns (any order, names case-insensitive): ``src`` (or ``product_id``, ``source``, 商品),
``dst`` (or ``related_id``, ``target``, 关联商品) and ``kind``. Kinds: ``complement`` /
``also_bought`` / ``co_purchase`` / 搭配 / 互补 for pairs bought together, ``substitute`` /
``also_viewed`` / ``co_view`` / 替代 for alternatives. They become LISTED_PAIRS rows
(co_purchase / co_view): evidence on the candidate pairs and the labels :mod:`tiein.typer` learns
the shop's substitute-vs-complement pattern from. Rows: data rows, 1-based, as in every loader.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tiein import model
from tiein.errors import InputError
from tiein.loaders.read import ROW, read_table

KINDS = {
    "complement": "co_purchase",
    "also_bought": "co_purchase",
    "also_buy": "co_purchase",
    "co_purchase": "co_purchase",
    "bought_together": "co_purchase",
    "搭配": "co_purchase",
    "互补": "co_purchase",
    "substitute": "co_view",
    "also_viewed": "co_view",
    "also_view": "co_view",
    "co_view": "co_view",
    "替代": "co_view",
}
COLUMNS = {
    "src": ("src", "product_id", "source", "anchor", "商品", "商品id"),
    "dst": ("dst", "related_id", "target", "related", "关联商品", "关联商品id"),
    "kind": ("kind", "type", "relation", "关系"),
}


def read_pairs(path: Path) -> pa.Table:
    """The LISTED_PAIRS rows of a pairs file; InputError naming file, row and column otherwise."""
    raw = read_table(Path(path))
    names = {c.strip().lower(): c for c in raw.columns}
    picked: dict[str, str] = {}
    for field, aliases in COLUMNS.items():
        found = next((names[a] for a in aliases if a in names), None)
        if found is None:
            raise InputError(
                f"no {field} column (one of: {', '.join(aliases)}); columns are: {', '.join(raw.columns)}",
                file=raw.file,
            )
        picked[field] = found
    rows = raw.table.column(ROW).to_pylist()
    cols = {f: raw.table.column(c).cast(pa.string()).to_pylist() for f, c in picked.items()}
    src: list[str] = []
    dst: list[str] = []
    kinds: list[str] = []
    for i, row in enumerate(rows):
        a, b, k = cols["src"][i], cols["dst"][i], cols["kind"][i]
        for field, value in (("src", a), ("dst", b)):
            if value is None or not value.strip():
                raise InputError("empty product id", file=raw.file, row=row, column=picked[field])
        kind = KINDS.get((k or "").strip().lower())
        if kind is None:
            raise InputError(
                f"unknown kind {k!r} (complement, substitute, also_bought, also_viewed, 搭配, 替代)",
                file=raw.file,
                row=row,
                column=picked["kind"],
            )
        src.append(str(a).strip())
        dst.append(str(b).strip())
        kinds.append(kind)
    return pa.table({"src": src, "dst": dst, "kind": kinds}, schema=model.LISTED_PAIRS)

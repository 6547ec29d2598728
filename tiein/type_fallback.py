"""Type-level complements: the fallback for products with no item-level complement.

A product with few orders gets no complement of its own (too few baskets to trust a pair), but
its *type* has many: tops go with trousers even when this exact top sold twice. Baskets are
lifted to product types (:mod:`tiein.product_type`: the leaf category, else the type learnt from
the title); for a type T, the complement types U are those bought with T most often (shrunk
confidence n_TU / (n_T + 5), at least ``min_pairs`` baskets, lift ≥ 0.8 so staples count as for
item candidates). The anchor is offered each complement type's best sellers (in stock, at most
``per_type`` each), ranked by the probability estimate P(U | T) · share of the product among
U's baskets, which is also the score. Relations carry ``"level": "type"`` in their
evidence, with both types and the type-pair counts, so an app and a seller can tell them apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tiein.model import MINING, RELATIONS
from tiein.product_type import types_of


@dataclass(frozen=True)
class TypeFallbackConfig:
    """min_pairs: baskets a type pair needs; types_per_anchor: complement types offered;
    per_type: products per complement type; keep: relations per anchor."""

    min_pairs: int = 3
    types_per_anchor: int = 5
    per_type: int = 3
    keep: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SQL = """
WITH
pt AS (SELECT product_id, ptype, stock FROM prod WHERE ptype IS NOT NULL),
ob AS MATERIALIZED (SELECT DISTINCT o.order_id, pt.ptype FROM o JOIN pt USING (product_id)),
sized AS MATERIALIZED (SELECT order_id FROM ob GROUP BY order_id HAVING count(*) <= $max_basket),
obs AS MATERIALIZED (SELECT ob.* FROM ob JOIN sized USING (order_id)),
total AS (SELECT count(DISTINCT order_id) AS n FROM obs),
tn AS MATERIALIZED (SELECT ptype, count(*) AS n_t FROM obs GROUP BY ptype),
sales AS MATERIALIZED (
    SELECT o.product_id, count(DISTINCT o.order_id) AS n_p FROM o GROUP BY o.product_id
),
anchors AS MATERIALIZED (
    SELECT pt.product_id, pt.ptype FROM pt JOIN sales USING (product_id)
    WHERE pt.product_id NOT IN (SELECT src FROM have)
),
-- type pairs only from the types of anchors that need them (a few hundred of thousands)
needed AS (SELECT DISTINCT ptype FROM anchors),
an AS MATERIALIZED (SELECT obs.* FROM obs JOIN needed USING (ptype)),
bn AS MATERIALIZED (SELECT obs.* FROM obs WHERE order_id IN (SELECT order_id FROM an)),
tp AS MATERIALIZED (
    SELECT a.ptype AS t, b.ptype AS u, count(*) AS n_tu
    FROM an a JOIN bn b ON a.order_id = b.order_id AND a.ptype <> b.ptype
    GROUP BY a.ptype, b.ptype HAVING count(*) >= $min_pairs
),
scored AS (
    SELECT tp.t, tp.u, tp.n_tu, ta.n_t, tb.n_t AS n_u,
           tp.n_tu * total.n / (ta.n_t * tb.n_t) AS lift
    FROM tp, total JOIN tn ta ON ta.ptype = tp.t JOIN tn tb ON tb.ptype = tp.u
),
top_types AS (
    SELECT *, n_tu / (n_t + 5.0) AS assoc FROM scored WHERE lift >= 0.8
    QUALIFY row_number() OVER (PARTITION BY t ORDER BY n_tu / (n_t + 5.0) DESC, u) <= $types_per_anchor
),
sellers AS (
    SELECT pt.ptype, pt.product_id, s.n_p FROM pt JOIN sales s USING (product_id)
    WHERE pt.stock IS NULL OR pt.stock > 0
    QUALIFY row_number() OVER (PARTITION BY pt.ptype ORDER BY s.n_p DESC, pt.product_id) <= $per_type
)
SELECT a.product_id AS src, s.product_id AS dst, a.ptype AS src_type, s.ptype AS dst_type,
       t.n_tu, t.n_t, t.lift, s.n_p, t.n_u,
       least(t.n_tu / t.n_t, 1.0) * least(s.n_p / t.n_u, 1.0) AS score
FROM anchors a
JOIN top_types t ON t.t = a.ptype
JOIN sellers s ON s.ptype = t.u
WHERE s.product_id <> a.product_id
  -- one relation type per direction: not an anchor's substitute, upsell or series as well
  AND NOT EXISTS (SELECT 1 FROM taken k WHERE k.src = a.product_id AND k.dst = s.product_id)
QUALIFY row_number() OVER (
    PARTITION BY a.product_id
    ORDER BY least(t.n_tu / t.n_t, 1.0) * least(s.n_p / t.n_u, 1.0) DESC, s.product_id
) <= $keep
ORDER BY src, score DESC, dst
"""

_EVIDENCE = """
SELECT src, dst, 'complement' AS kind, round(score, 6) AS score, 0::BIGINT AS n_ab,
       NULL::DOUBLE AS lift, NULL::DOUBLE AS confidence, 0::BIGINT AS co_view, NULL::DOUBLE AS similarity,
       'unknown' AS category_relation,
       NULL::DOUBLE AS price_ratio,
       to_json({
           'kind': 'complement',
           'level': 'type',
           'anchor_type': src_type,
           'addon_type': dst_type,
           'types_bought_together': n_tu,
           'orders_with_anchor_type': n_t,
           'orders_with_addon_type': n_u,
           'type_lift': round(lift, 3),
           'orders_with_addon': n_p,
           'cart_weight': round(score, 6)
       })::VARCHAR AS evidence
FROM fb ORDER BY src, score DESC, dst
"""


def type_complements(
    products: pa.Table,
    orders: pa.Table,
    relations: pa.Table,
    *,
    max_basket: int = MINING.max_basket,
    cfg: TypeFallbackConfig | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Type-level complement relations (RELATIONS rows) for every product with a type and at
    least one order that ``relations`` gives no complement; and a report (anchors filled, anchors
    still without a complement, types)."""
    cfg = cfg or TypeFallbackConfig()
    types = types_of(products)
    prod = pa.table(
        {
            "product_id": products.column("product_id"),
            "ptype": pa.array(types, pa.string()),
            "stock": products.column("stock"),
        }
    )
    have = relations.filter(pc.equal(relations.column("kind"), "complement")).select(["src"])
    con = duckdb.connect()
    try:
        con.register("prod", prod)
        con.register("o", orders.select(["order_id", "product_id"]))
        con.register("have", have)
        con.register("taken", relations.select(["src", "dst"]))
        params = {
            "max_basket": max_basket,
            "min_pairs": cfg.min_pairs,
            "types_per_anchor": cfg.types_per_anchor,
            "per_type": cfg.per_type,
            "keep": cfg.keep,
        }
        fb = con.sql(_SQL, params=params).to_arrow_table()
        con.register("fb", fb)
        out = con.sql(_EVIDENCE).to_arrow_table().cast(RELATIONS)
        typed_ordered = con.execute(
            "SELECT count(DISTINCT product_id) FROM prod JOIN o USING (product_id) WHERE ptype IS NOT NULL"
        ).fetchone()
        without = con.execute(
            "SELECT count(DISTINCT product_id) FROM prod JOIN o USING (product_id) "
            "WHERE ptype IS NOT NULL AND product_id NOT IN (SELECT src FROM have)"
        ).fetchone()
    finally:
        con.close()
    n_typed = int(typed_ordered[0]) if typed_ordered else 0
    n_without = int(without[0]) if without else 0
    filled = len(pc.unique(out.column("src"))) if out.num_rows else 0
    report = {
        "products_with_type_and_orders": n_typed,
        "without_item_complements": n_without,
        "filled_by_type": filled,
        "still_without": n_without - filled,
        "still_without_share": round((n_without - filled) / n_typed, 4) if n_typed else 0.0,
        "types": len({t for t in types if t}),
        "config": cfg.to_dict(),
    }
    return out, report

"""Type-level complements: the fallback for products with no item-level complement.

A product with few orders gets no complement of its own (too few baskets to trust a pair), but
its *type* has many: tops go with trousers even when this exact top sold twice. Baskets are
lifted to product types (:mod:`tiein.product_type`: the leaf category, else the type learnt from
the title); for a type T, the add-ons are the in-stock products of other types most often in
T's baskets: P(j | T) shrunk as n_Tj / (n_T + 5), at least ``min_pairs`` baskets, lift ≥ 0.8 of
the item with T and of the two types (so staples count as for item candidates, and "these two
kinds often go together" stays true). That estimate is also the score: what a basket holding
the anchor's type tends to hold (an earlier version offered each complement type's three best
sellers, which hit held-out baskets less often than plain best sellers on Instacart). Relations
carry ``"level": "type"`` in their evidence, with both types, the type-pair counts and the
orders holding the anchor's type and the add-on, so an app and a seller can tell them apart.
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
    """min_pairs: baskets an anchor type and an add-on need together; pool: add-ons ranked per
    anchor type (a few more than ``keep``, as the anchor itself and pairs typed otherwise are
    left out); keep: relations per anchor."""

    min_pairs: int = 3
    pool: int = 30
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
-- the items bought with each needed type: P(item | a basket holds that type), other types only
ti AS MATERIALIZED (
    SELECT a.ptype AS t, x.product_id AS j, pj.ptype AS u, count(DISTINCT a.order_id) AS n_tj
    FROM an a JOIN o x ON x.order_id = a.order_id
    JOIN pt pj ON pj.product_id = x.product_id AND pj.ptype <> a.ptype
    WHERE pj.stock IS NULL OR pj.stock > 0
    GROUP BY ALL HAVING count(DISTINCT a.order_id) >= $min_pairs
),
items AS (
    SELECT ti.t, ti.j, ti.u, ti.n_tj, tn.n_t, sc.n_tu, sc.n_u, sc.lift, s.n_p,
           ti.n_tj / (tn.n_t + 5.0) AS p
    FROM ti JOIN tn ON tn.ptype = ti.t JOIN sales s ON s.product_id = ti.j
    JOIN scored sc ON sc.t = ti.t AND sc.u = ti.u
    WHERE ti.n_tj * (SELECT n FROM total) >= 0.8 * tn.n_t * s.n_p AND sc.lift >= 0.8
    QUALIFY row_number() OVER (PARTITION BY ti.t ORDER BY ti.n_tj / (tn.n_t + 5.0) DESC, ti.j) <= $pool
)
SELECT a.product_id AS src, i.j AS dst, a.ptype AS src_type, i.u AS dst_type,
       i.n_tu, i.n_t, i.lift, i.n_p, i.n_u, i.n_tj, i.p AS score
FROM anchors a
JOIN items i ON i.t = a.ptype
WHERE i.j <> a.product_id
  -- one relation type per direction: not an anchor's substitute, upsell or series as well
  AND NOT EXISTS (SELECT 1 FROM taken k WHERE k.src = a.product_id AND k.dst = i.j)
QUALIFY row_number() OVER (PARTITION BY a.product_id ORDER BY i.p DESC, i.j) <= $keep
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
           'orders_with_anchor_type_and_addon': n_tj,
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
            "pool": cfg.pool,
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

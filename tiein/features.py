"""Candidate pairs and their features over Arrow tables.

A candidate is a directed pair src → dst that any source of evidence links: bought together
(PAIR_STATS from orders), viewed together (PAIR_STATS from sessions), listed by the shop
(Amazon also_buy / also_view) or near in title-embedding space (FAISS neighbours). Every
candidate gets the columns of :data:`tiein.relations.FEATURE_COLUMNS`; similarity is computed for
every candidate from the embedding matrix, not only for FAISS neighbours.

The candidates are defined by the DuckDB query ``_SQL`` below and computed by the numpy kernels
of :mod:`tiein.candidate_pairs` (the same rows; one core, 1.5-3 x faster than the query on two);
with content sets the query itself runs. Also here: each product's strongest pair edges
(:func:`top_pairs`), the directed "bought next" candidates (:func:`next_candidates`) and each
product's sales role (:func:`sales_roles`, :func:`with_sales_roles`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.candidate_pairs import candidate_table, next_table, top_pair_rows
from tiein.mining.kernels import shared_order_codes
from tiein.model import CATEGORY_SEP, LISTED_PAIRS, PAIR_STATS
from tiein.product_type import type_keys, types_of
from tiein.relations import line_key

NEIGHBOURS = pa.schema([("src", pa.string()), ("dst", pa.string()), ("similarity", pa.float64())])

_SQL = """
WITH
cp AS (
    SELECT a AS src, b AS dst, n_ab, n_a AS n_src, n_b AS n_dst, n AS n_baskets, conf_ab AS conf, lift, after_ab AS after_sd, after_ba AS after_ds FROM cp_t
    UNION ALL
    SELECT b, a, n_ab, n_b, n_a, n, conf_ba, lift, after_ba, after_ab FROM cp_t
),
cv AS (
    SELECT a AS src, b AS dst, n_ab AS co_view FROM cv_t
    UNION ALL
    SELECT b, a, n_ab FROM cv_t
),
lp AS (
    SELECT src, dst,
           count(*) FILTER (WHERE kind = 'co_purchase') AS listed_buy,
           count(*) FILTER (WHERE kind = 'co_view') AS listed_view
    FROM (
        SELECT DISTINCT src, dst, kind FROM lp_t WHERE src <> dst
        UNION ALL
        SELECT DISTINCT dst, src, kind FROM lp_t WHERE src <> dst
    ) GROUP BY src, dst
),
nb AS (SELECT src, dst FROM nb_t UNION SELECT dst, src FROM nb_t),{set_ctes}
-- bought-together candidates: the best per_product partners of each anchor by shrunk association
cp_top AS (
    SELECT src, dst FROM cp
    WHERE lift > 1.0
    QUALIFY row_number() OVER (
        PARTITION BY src ORDER BY n_ab / (n_src + 5.0) * (1.0 - 1.0 / lift) DESC, dst) <= $per_product
),
-- and the most often co-bought partners at about chance or above: staples (lift ~ 1) are add-ons too
cp_staple AS (
    SELECT src, dst FROM cp WHERE lift >= 0.8
    QUALIFY row_number() OVER (PARTITION BY src ORDER BY n_ab DESC, dst) <= $per_staple
),
cv_top AS (
    SELECT src, dst FROM cv
    QUALIFY row_number() OVER (PARTITION BY src ORDER BY co_view DESC, dst) <= $per_product
),
cand AS (
    SELECT src, dst FROM cp_top UNION SELECT src, dst FROM cp_staple UNION SELECT src, dst FROM cv_top UNION SELECT src, dst FROM lp UNION SELECT src, dst FROM nb{set_candidates}
)
SELECT c.src, c.dst,
       coalesce(cp.n_ab, 0) AS n_ab,
       coalesce(cp.n_src, 0) AS n_src,
       coalesce(cp.n_dst, 0) AS n_dst,
       coalesce(cp.n_baskets, 0) AS n_baskets,
       coalesce(cp.conf, 0.0) AS conf,
       coalesce(cp.lift, 0.0) AS lift,
       coalesce(cp.after_sd, 0) AS after_sd,
       coalesce(cp.after_ds, 0) AS after_ds,
       coalesce(cv.co_view, 0) AS co_view,
       coalesce(lp.listed_buy, 0) AS listed_buy,
       coalesce(lp.listed_view, 0) AS listed_view,
       CASE WHEN ps.category_path IS NULL OR pd.category_path IS NULL THEN 3
            WHEN ps.category_path = pd.category_path THEN 0
            WHEN ps.parent IS NOT NULL AND ps.parent = pd.parent THEN 1
            ELSE 2 END AS cat_rel,
       CASE WHEN ps.price > 0 AND pd.price > 0 THEN pd.price / ps.price ELSE NULL END AS price_ratio,
       (ps.line IS NOT NULL AND ps.line = pd.line AND (ps.brand IS NOT NULL OR ps.category_path IS NOT DISTINCT FROM pd.category_path)) AS same_line,
       CASE WHEN ps.ptype IS NULL OR pd.ptype IS NULL THEN NULL
            WHEN ps.category_path IS NOT NULL AND pd.category_path IS NOT NULL THEN ps.ptype = pd.ptype
            ELSE ps.ptype = pd.ptype OR contains(pd.wtitle, ps.phead) OR contains(ps.wtitle, pd.phead) END AS same_type{set_columns}
FROM cand c
JOIN prod ps ON ps.product_id = c.src
JOIN prod pd ON pd.product_id = c.dst
LEFT JOIN cp ON cp.src = c.src AND cp.dst = c.dst
LEFT JOIN cv ON cv.src = c.src AND cv.dst = c.dst
LEFT JOIN lp ON lp.src = c.src AND lp.dst = c.dst
{set_join}WHERE c.src <> c.dst
ORDER BY c.src, c.dst
"""


def product_frame(products: pa.Table) -> pa.Table:
    """products with the derived columns the candidate query needs: parent category path,
    product line key and product type (:func:`tiein.product_type.product_types`)."""
    paths = products.column("category_path").to_pylist()
    parents = [p.rsplit(CATEGORY_SEP, 1)[0] if p and CATEGORY_SEP in p else None for p in paths]
    lines = [
        line_key(t, b)
        for t, b in zip(
            products.column("title").to_pylist(), products.column("brand").to_pylist(), strict=True
        )
    ]
    titles = products.column("title").to_pylist()
    types = types_of(products)
    padded, heads = type_keys(titles, types)
    return pa.table(
        {
            "product_id": products.column("product_id"),
            "category_path": products.column("category_path"),
            "brand": products.column("brand"),
            "price": products.column("price"),
            "parent": pa.array(parents, pa.string()),
            "line": pa.array(lines, pa.string()),
            "ptype": pa.array(types, pa.string()),
            "wtitle": pa.array(padded, pa.string()),
            "phead": pa.array(heads, pa.string()),
        }
    )


def candidate_features(
    products: pa.Table,
    *,
    co_purchase: pa.Table | None = None,
    co_view: pa.Table | None = None,
    listed: pa.Table | None = None,
    neighbours: pa.Table | None = None,
    ids: list[str] | None = None,
    vectors: np.ndarray | None = None,
    threads: int | None = None,
    per_product: int = 60,
    per_staple: int = 20,
    sets: pa.Table | None = None,
) -> pa.Table:
    """Directed candidate pairs with their features (tiein.relations.FEATURE_COLUMNS).

    Candidates are every listed pair and embedding neighbour, plus the ``per_product`` best
    bought-together partners of each product (by shrunk confidence × (1 - 1/lift), lift > 1), its
    ``per_staple`` most often co-bought partners with lift ≥ 0.8 (staples: bread, bananas) and
    its ``per_product`` most viewed-together partners; features of every candidate come from the
    full statistics (``n_dst``: orders holding dst, ``n_baskets``: orders counted; 0 without
    co-purchase).

    ``ids``/``vectors`` are the embedding matrix (rows L2-normalised, ``ids[i]`` is row i);
    without them similarity is null (NaN) for every pair.

    ``sets``: co-appearance in content sets (:func:`tiein.content_sets.set_pairs`); each
    product's ``per_product`` best shown-together partners become candidates too, and every
    candidate gets :data:`tiein.content_sets.SET_FEATURE_COLUMNS` (without ``sets`` neither).
    """
    tables, names = coded_inputs(products, co_purchase, co_view, listed, neighbours, sets)
    table = None
    if sets is None:  # numpy kernels (tiein.candidate_pairs): one core, 1.5-3 x faster than the query
        table = candidate_table(tables, len(names), per_product=per_product, per_staple=per_staple)
    if table is None:  # content sets, a repeated pair, a NaN lift or price: the query itself
        table = _candidate_query(tables, threads, per_product, per_staple, sets is not None)
    sim = pair_similarity(table.column("src"), table.column("dst"), names, ids, vectors)
    for c in ("src", "dst"):  # codes back to ids
        table = table.set_column(table.column_names.index(c), c, names.take(table.column(c)))
    return table.append_column("similarity", pa.array(sim, pa.float64()))


def coded_inputs(
    products: pa.Table,
    co_purchase: pa.Table | None,
    co_view: pa.Table | None,
    listed: pa.Table | None,
    neighbours: pa.Table | None,
    sets: pa.Table | None = None,
) -> tuple[dict[str, pa.Table], pa.Array]:
    """The candidate query's input tables ("prod", "cp_t", "cv_t", "lp_t", "nb_t", and "st_t" with
    sets; empty where not given) with product ids as integer codes in the ids' order, and the ids
    (``ids[code]``): pairs are joined, ranked and sorted as integers, and ordering by a code is
    ordering by the id (the same rows, the same ties)."""
    return _coded(
        {
            "prod": (product_frame(products), ("product_id",)),
            "cp_t": (co_purchase if co_purchase is not None else PAIR_STATS.empty_table(), ("a", "b")),
            "cv_t": (co_view if co_view is not None else PAIR_STATS.empty_table(), ("a", "b")),
            "lp_t": (listed if listed is not None else LISTED_PAIRS.empty_table(), ("src", "dst")),
            "nb_t": (
                neighbours.select(["src", "dst"]) if neighbours is not None else NEIGHBOURS.empty_table(),
                ("src", "dst"),
            ),
            **({"st_t": (sets, ("a", "b"))} if sets is not None else {}),
        }
    )


def _candidate_query(
    tables: dict[str, pa.Table], threads: int | None, per_product: int, per_staple: int, with_sets: bool
) -> pa.Table:
    """The candidate rows by the query _SQL (DuckDB) from the coded tables: the definition that
    :func:`tiein.candidate_pairs.candidate_table` follows, and the way with content sets."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name, table in tables.items():
        con.register(name, table)
    parts = dict.fromkeys(("set_ctes", "set_candidates", "set_columns", "set_join"), "")
    if with_sets:
        from tiein import content_sets as cs

        parts = {
            "set_ctes": cs.SQL_CTES,
            "set_candidates": cs.SQL_CANDIDATES,
            "set_columns": cs.SQL_COLUMNS,
            "set_join": cs.SQL_JOIN,
        }
    query = _SQL
    for name, text in parts.items():
        query = query.replace("{" + name + "}", text)
    table = con.sql(
        query, params={"per_product": int(per_product), "per_staple": int(per_staple)}
    ).to_arrow_table()
    con.close()
    return table


def _coded(tables: dict[str, tuple[pa.Table, tuple[str, ...]]]) -> tuple[dict[str, pa.Table], pa.Array]:
    """Each table with its id columns replaced by int64 codes, and the ids (``ids[code]``): one
    dictionary over every listed column, its codes in the ids' string order."""
    cols = [(name, c) for name, (_, id_cols) in tables.items() for c in id_cols]
    codes, names = shared_order_codes([tables[name][0].column(c) for name, c in cols])
    out = {name: table for name, (table, _) in tables.items()}
    for (name, c), code in zip(cols, codes, strict=True):
        table = out[name]
        out[name] = table.set_column(table.column_names.index(c), c, pa.array(code, pa.int64()))
    return out, names


def pair_similarity(
    src: pa.ChunkedArray,
    dst: pa.ChunkedArray,
    names: pa.Array,
    ids: list[str] | None,
    vectors: np.ndarray | None,
) -> np.ndarray:
    """Cosine similarity of each (src[i], dst[i]), product codes into ``names``, from the
    normalised embedding rows (``ids[r]`` is row r); NaN where a product has no vector."""
    n = len(src)
    if ids is None or vectors is None or n == 0:
        return np.full(n, np.nan)
    # each code's embedding row (-1: none): one lookup per product instead of one per pair
    row = pc.fill_null(pc.index_in(names, value_set=pa.array(ids, pa.string())), -1).to_numpy()
    si = row[np.asarray(src)]
    di = row[np.asarray(dst)]
    ok = (si >= 0) & (di >= 0)
    out = np.full(n, np.nan)
    a, b = si[ok], di[ok]
    # in small chunks: the gathered rows stay in cache (4,096 pairs: 5-15x faster than 200k-pair
    # chunks on 300k Online Retail pairs, which spent seconds faulting in gigabyte temporaries)
    step = 4096
    vals = np.empty(a.size)
    for s in range(0, a.size, step):
        vals[s : s + step] = np.einsum("ij,ij->i", vectors[a[s : s + step]], vectors[b[s : s + step]])
    out[ok] = vals
    return out


def top_pairs(pairs: pa.Table, per_product: int) -> pa.Table:
    """The PAIR_STATS rows that are among the ``per_product`` most frequent pairs (n_ab, then lift)
    of either of their two products; ``per_product <= 0`` keeps all. This is what goes into the
    graph as CO_PURCHASED / CO_VIEWED edges: analysts see every product's strongest partners
    without millions of two-order coincidences."""
    if per_product <= 0 or pairs.num_rows == 0:
        return pairs
    # ids as integer codes in string order (ties broken the same way), rows picked by index
    tables, _ = _coded({"p": (pairs.select(["a", "b", "n_ab", "lift"]), ("a", "b"))})
    p = tables["p"]
    lift = p.column("lift").cast(pa.float64())
    kept = top_pair_rows(
        p.column("a").to_numpy(),
        p.column("b").to_numpy(),
        pc.fill_null(p.column("n_ab"), 0).to_numpy(),
        # null lifts last, NaN first (as DuckDB orders them); a real lift is a finite number >= 0
        pc.fill_null(pc.if_else(pc.is_nan(lift), np.inf, lift), -1.0).to_numpy(),
        int(per_product),
    )
    return pairs.take(pa.array(kept)).cast(PAIR_STATS)


# --- "next purchase" candidates ----------------------------------------------------------------

_NEXT_SQL = """
WITH d AS (
    SELECT a AS src, b AS dst, after_ab AS after_sd, after_ba AS after_ds, n_ab FROM cp_t WHERE after_ab >= $min_count
    UNION ALL
    SELECT b, a, after_ba, after_ab, n_ab FROM cp_t WHERE after_ba >= $min_count
)
SELECT d.src, d.dst, d.after_sd, d.after_ds, d.n_ab,
       coalesce(ts.returning, 0) AS returning_src,
       coalesce(td.later, 0) AS later_dst,
       CASE WHEN ps.category_path IS NULL OR pd.category_path IS NULL THEN 3
            WHEN ps.category_path = pd.category_path THEN 0
            WHEN ps.parent IS NOT NULL AND ps.parent = pd.parent THEN 1
            ELSE 2 END AS cat_rel,
       CASE WHEN ps.price > 0 AND pd.price > 0 THEN pd.price / ps.price ELSE NULL END AS price_ratio
FROM d
JOIN prod ps ON ps.product_id = d.src
JOIN prod pd ON pd.product_id = d.dst
LEFT JOIN tl ts ON ts.product_id = d.src
LEFT JOIN tl td ON td.product_id = d.dst
WHERE d.src <> d.dst
ORDER BY d.src, d.dst
"""

NEXT_FEATURE_COLUMNS = (
    "src",
    "dst",
    "after_sd",
    "after_ds",
    "n_ab",
    "returning_src",
    "later_dst",
    "cat_rel",
    "price_ratio",
)


def next_candidates(
    products: pa.Table, pairs: pa.Table, timeline: pa.Table, *, min_count: int = 1
) -> pa.Table:
    """Directed "bought next" candidates src → dst with their features (NEXT_FEATURE_COLUMNS).

    ``pairs`` is PAIR_STATS (its ``after_ab`` / ``after_ba``), ``timeline`` is TIMELINE (from
    :func:`tiein.mining.mine_pairs`). A direction is a candidate when at least ``min_count``
    customers bought src, then dst (``after_sd``); ``after_ds`` is the other way round,
    ``returning_src`` the customers who bought src and came back within the window, ``later_dst``
    the customers who bought dst as a later purchase. Both ends must be catalog products.
    These any-purchase counts only pick the candidates (a first-purchase count is never larger):
    :func:`tiein.next_purchase.classify_next` recounts first purchases from the order lines.
    """
    tables, names = _coded(
        {
            "prod": (product_frame(products), ("product_id",)),
            "cp_t": (pairs, ("a", "b")),
            "tl": (timeline, ("product_id",)),
        }
    )
    out = next_table(tables, len(names), min_count=int(min_count))  # tiein.candidate_pairs
    if out is None:  # a product twice in the timeline: the query, which repeats rows as SQL does
        out = _next_query(tables, int(min_count))
    for c in ("src", "dst"):  # codes back to ids
        out = out.set_column(out.column_names.index(c), c, names.take(out.column(c)))
    return out


def _next_query(tables: dict[str, pa.Table], min_count: int) -> pa.Table:
    """The "bought next" candidates by the query _NEXT_SQL (DuckDB) over the coded tables: the
    definition that :func:`tiein.candidate_pairs.next_table` follows."""
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    out = con.sql(_NEXT_SQL, params={"min_count": min_count}).to_arrow_table()
    con.close()
    return out


# --- product sales roles ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleConfig:
    """Thresholds of :func:`sales_roles`, as percentiles among the products that sold enough.

    A percentile here is the share of those products whose value is at most this product's
    (the cheapest of 10 products has price percentile 0.1, the dearest 1.0).

    min_orders: orders a product needs for a role; below it the role is null (too few sales).
    traffic_volume_q / traffic_price_q: "traffic" (引流款) = units percentile ≥ traffic_volume_q and
        price percentile ≤ traffic_price_q: sells a lot, cheaply; draws customers in.
    hero_revenue_q: "hero" (爆款) = revenue (units × price) percentile ≥ hero_revenue_q.
    profit_margin_q: "profit" (利润款) with a known margin = margin percentile (among products with a
        known margin) ≥ profit_margin_q.
    profit_price_q / profit_volume_q: the documented proxy without a margin = price percentile ≥
        profit_price_q and units percentile < profit_volume_q (dearer, sold less: a shop's margin
        usually sits on such items).
    The first rule that holds wins (traffic, hero, profit); a product that sold enough and fits
    none is "regular" (常规款). A product without a price gets no role.
    """

    min_orders: int = 5
    traffic_volume_q: float = 0.75
    traffic_price_q: float = 0.5
    hero_revenue_q: float = 0.8
    profit_margin_q: float = 0.7
    profit_price_q: float = 0.7
    profit_volume_q: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Share of ``values[among]`` that are ≤ each value (NaN outside ``among``)."""
    pool = np.sort(values[among])
    out = np.full(values.size, np.nan)
    if pool.size:
        out[among] = np.searchsorted(pool, values[among], side="right") / pool.size
    return out


def sales_roles(
    orders: np.ndarray,
    units: np.ndarray,
    price: np.ndarray,
    margin: np.ndarray,
    cfg: RoleConfig | None = None,
) -> np.ndarray:
    """Each product's sales role (an object array of "traffic" / "hero" / "profit" / "regular" /
    None) from its order count, units sold, price and margin (NaN = unknown); see
    :class:`RoleConfig` for the rules. Vectorised: one sort per measure.

    Six products, all with 10 orders: a cheap best seller, an expensive best seller, an expensive
    slow seller, two middling ones, and one that sold twice.

    >>> nan = float("nan")
    >>> sales_roles(np.array([10, 10, 10, 10, 10, 2]), np.array([500.0, 300, 5, 60, 50, 2]),
    ...             np.array([1.0, 40, 90, 5, 6, 50]), np.full(6, nan)).tolist()
    ['traffic', 'hero', 'profit', 'regular', 'regular', None]

    With margins, "profit" follows the margin instead of the price proxy:

    >>> sales_roles(np.array([10, 10, 10, 10, 10, 2]), np.array([500.0, 300, 5, 60, 50, 2]),
    ...             np.array([1.0, 40, 90, 5, 6, 50]), np.array([0.1, 0.2, 0.1, 0.6, 0.15, 0.9])).tolist()
    ['traffic', 'hero', 'regular', 'profit', 'regular', None]
    """
    cfg = cfg or RoleConfig()
    orders = np.asarray(orders, dtype=np.float64)
    units = np.asarray(units, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    margin = np.asarray(margin, dtype=np.float64)
    ok = (orders >= cfg.min_orders) & np.isfinite(price) & np.isfinite(units)
    units_q = _percentile(units, ok)
    price_q = _percentile(price, ok)
    revenue_q = _percentile(units * price, ok)
    has_margin = ok & np.isfinite(margin)
    margin_q = _percentile(margin, has_margin)
    with np.errstate(invalid="ignore"):
        traffic = ok & (units_q >= cfg.traffic_volume_q) & (price_q <= cfg.traffic_price_q)
        hero = ok & (revenue_q >= cfg.hero_revenue_q)
        profit = np.where(
            has_margin,
            margin_q >= cfg.profit_margin_q,
            ok & (price_q >= cfg.profit_price_q) & (units_q < cfg.profit_volume_q),
        )
    return np.select(
        [~ok, traffic, hero, profit],
        np.array([None, "traffic", "hero", "profit"], dtype=object),
        default="regular",
    )


def with_sales_roles(products: pa.Table, orders: pa.Table, cfg: RoleConfig | None = None) -> pa.Table:
    """``products`` (PRODUCTS) with ``sales_role`` computed from ``orders`` (ORDERS): orders =
    distinct orders holding the product, units = summed quantity, price and ``margin`` from the
    catalog (a missing ``margin`` column counts as unknown)."""
    con = duckdb.connect()
    con.register("o", orders.select(["order_id", "product_id", "quantity"]))
    con.register("p", products.select(["product_id"]))
    sold = con.sql(
        """
        SELECT coalesce(s.n_orders, 0) AS n_orders, coalesce(s.units, 0.0) AS units
        FROM (SELECT product_id, row_number() OVER () AS i FROM p) p
        LEFT JOIN (SELECT product_id, count(DISTINCT order_id) AS n_orders, sum(quantity) AS units
                   FROM o GROUP BY product_id) s USING (product_id)
        ORDER BY p.i
        """
    ).to_arrow_table()
    con.close()
    price = products.column("price").to_numpy(zero_copy_only=False).astype(np.float64)
    if "margin" in products.column_names:
        margin = products.column("margin").to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        margin = np.full(products.num_rows, np.nan)
    roles = sales_roles(
        sold.column("n_orders").to_numpy(), sold.column("units").to_numpy(), price, margin, cfg
    )
    col = pa.array(roles.tolist(), pa.string())
    if "sales_role" in products.column_names:
        return products.set_column(products.column_names.index("sales_role"), "sales_role", col)
    return products.append_column("sales_role", col)

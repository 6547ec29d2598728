"""The numpy candidate pairs and pair edges (tiein.candidate_pairs) against the DuckDB queries
that define them: the same rows, in the same order, with the same values and nulls — on random
shops full of nulls, ties and odd listed pairs, on Chinese titles, and on real Online Retail
orders. The pair-edge query is kept here as the oracle (the build no longer runs it)."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tiein import candidate_pairs as cpairs
from tiein.features import (
    LISTED_PAIRS,
    PAIR_STATS,
    _candidate_query,
    _coded,
    candidate_features,
    coded_inputs,
    product_frame,
    top_pairs,
)
from tiein.mining import mine_pairs
from tiein.model import PRODUCTS


def _query_top_pairs(pairs: pa.Table, k: int) -> pa.Table:
    """top_pairs as the query it was (DuckDB): the oracle for the numpy pair edges."""
    tables, _ = _coded(
        {
            "p": (
                pairs.select(["a", "b", "n_ab", "lift"]).append_column(
                    "i", pa.array(np.arange(pairs.num_rows))
                ),
                ("a", "b"),
            )
        }
    )
    con = duckdb.connect()
    con.register("p", tables["p"])
    kept = con.sql(
        """
        WITH ends AS (
            SELECT a AS x, a, b, n_ab, lift, i FROM p UNION ALL SELECT b AS x, a, b, n_ab, lift, i FROM p
        ), kept AS (
            SELECT DISTINCT a, b, i FROM ends
            QUALIFY row_number() OVER (PARTITION BY x ORDER BY n_ab DESC, lift DESC, a, b) <= $k
        )
        SELECT i FROM kept ORDER BY a, b
        """,
        params={"k": k},
    ).to_arrow_table()
    con.close()
    return pairs.take(kept.column("i")).cast(PAIR_STATS)


def _both(
    products: pa.Table,
    *,
    co_purchase: pa.Table | None = None,
    co_view: pa.Table | None = None,
    listed: pa.Table | None = None,
    neighbours: pa.Table | None = None,
    per_product: int = 60,
    per_staple: int = 20,
) -> tuple[pa.Table, pa.Table | None]:
    """(the query's rows, the numpy rows) for the same coded inputs."""
    tables, names = coded_inputs(products, co_purchase, co_view, listed, neighbours)
    query = _candidate_query(tables, 1, per_product, per_staple, False)
    mine = cpairs.candidate_table(tables, len(names), per_product=per_product, per_staple=per_staple)
    return query, mine


WORDS = ["BAG", "LUNCH", "RED", "CUP", "TEA", "MUG", "SET", "BOX", "JAR", "CANDLE"]
ZH = ["牛奶", "全脂牛奶", "酸奶", "面包", "全麦面包", "咖啡"]


def _random_shop(seed: int, n: int = 60) -> dict[str, Any]:
    """A small shop with every column sometimes null, repeated values (ties), Chinese and English
    titles, categories on some products only, and pair tables with ties in counts and lifts."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]

    def maybe(values: list[Any], p_null: float) -> list[Any]:
        return [None if rng.random() < p_null else v for v in values]

    titles: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.3:
            titles.append("".join(rng.choice(ZH, size=int(rng.integers(1, 3)))))
        else:
            titles.append(" ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))).lower())
    cats = ["Home>Kitchen>Cups", "Home>Kitchen>Mugs", "Home>Bags", "Food>Milk"]
    products = pa.table(
        {
            "product_id": ids,
            "title": maybe(titles, 0.05),
            "category": [None] * n,
            "category_path": maybe([cats[int(i)] for i in rng.integers(0, 4, n)], 0.5),
            "brand": maybe([f"B{int(i)}" for i in rng.integers(0, 3, n)], 0.5),
            "price": maybe([float(x) for x in rng.choice([0.0, 1.5, 2.0, 9.99, 20.0], n)], 0.2),
        }
    )
    cols = {
        f.name: products.column(f.name) if f.name in products.column_names else pa.nulls(n, f.type)
        for f in PRODUCTS
    }
    products = pa.table(cols, schema=PRODUCTS)
    from tiein.product_type import with_product_types

    products = with_product_types(products)

    def pairs(m: int, lifts: list[float]) -> pa.Table:
        seen: set[tuple[int, int]] = set()
        rows = []
        while len(rows) < m:
            a, b = sorted(int(x) for x in rng.integers(0, n, 2))
            if a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            n_ab = int(rng.integers(1, 6))
            rows.append(
                {
                    "a": ids[a],
                    "b": ids[b],
                    "n_ab": n_ab,
                    "n_a": n_ab + int(rng.integers(0, 4)),
                    "n_b": n_ab + int(rng.integers(0, 4)),
                    "n": 100,
                    "support": 0.01,
                    "conf_ab": float(rng.choice([0.1, 0.5, 1.0])),
                    "conf_ba": float(rng.choice([0.1, 0.5, 1.0])),
                    "lift": None if rng.random() < 0.05 else float(rng.choice(lifts)),
                    "after_ab": None if rng.random() < 0.1 else int(rng.integers(0, 3)),
                    "after_ba": int(rng.integers(0, 3)),
                }
            )
        return pa.Table.from_pylist(rows, schema=PAIR_STATS)

    listed = pa.table(
        {
            "src": [ids[int(i)] for i in rng.integers(0, n + 3, 40).clip(0, n - 1)]
            + ["unknown", ids[0], ids[1]],
            "dst": [ids[int(i)] for i in rng.integers(0, n, 40)] + [ids[2], ids[0], ids[0]],
            "kind": [str(k) for k in rng.choice(["co_purchase", "co_view", "bundle"], 40)]
            + ["co_purchase", "co_view", "co_purchase"],
        }
    )
    listed = pa.concat_tables([listed, listed.slice(0, 5)])  # repeated rows: DISTINCT in the query
    neighbours = pa.table(
        {
            "src": [ids[int(i)] for i in rng.integers(0, n, 80)],
            "dst": [ids[int(i)] for i in rng.integers(0, n, 80)],
            "similarity": rng.random(80),
        }
    )
    return {
        "products": products,
        "co_purchase": pairs(300, [0.5, 0.8, 1.0, 1.5, 2.0, 3.0]),
        "co_view": pairs(120, [1.0]),
        "listed": listed.cast(LISTED_PAIRS) if listed.schema != LISTED_PAIRS else listed,
        "neighbours": neighbours,
    }


@pytest.mark.parametrize("seed", range(8))
def test_candidate_rows_equal_the_query_on_random_shops(seed: int) -> None:
    shop = _random_shop(seed)
    for per_product, per_staple in ((60, 20), (2, 1), (1, 3)):  # small k: ties at the cut
        query, mine = _both(
            shop["products"],
            co_purchase=shop["co_purchase"],
            co_view=shop["co_view"],
            listed=shop["listed"],
            neighbours=shop["neighbours"],
            per_product=per_product,
            per_staple=per_staple,
        )
        assert mine is not None
        assert query.num_rows > 50
        assert mine.schema == query.schema
        assert mine.equals(query), (seed, per_product, per_staple)
    # the nullable columns do hold nulls here (the three-valued logic is exercised)
    assert query.column("same_type").null_count > 0
    assert query.column("price_ratio").null_count > 0


def test_candidate_rows_with_only_some_inputs() -> None:
    shop = _random_shop(11)
    for kw in (
        {"co_purchase": shop["co_purchase"]},
        {"listed": shop["listed"]},
        {"neighbours": shop["neighbours"]},
        {"co_view": shop["co_view"]},
        {},
    ):
        query, mine = _both(shop["products"], **kw)
        assert mine is not None and mine.equals(query), sorted(kw)


def test_a_pair_table_that_repeats_a_pair_goes_to_the_query() -> None:
    shop = _random_shop(3)
    cp = shop["co_purchase"]
    twice = pa.concat_tables([cp, cp.slice(0, 1)])
    query, mine = _both(shop["products"], co_purchase=twice)
    assert mine is None  # the caller runs the query, which repeats the rows as SQL does
    feats = candidate_features(shop["products"], co_purchase=twice)
    assert feats.num_rows == query.num_rows


def _brute_top(
    lo: np.ndarray, hi: np.ndarray, v_lh: np.ndarray, v_hl: np.ndarray, valid: np.ndarray, k: int
) -> list[tuple[int, int]]:
    """Each src's k best (value high first, then dst low first) of the valid pairs taken both ways."""
    by_src: dict[int, list[tuple[float, int]]] = {}
    for a, b, x, y, ok in zip(
        lo.tolist(), hi.tolist(), v_lh.tolist(), v_hl.tolist(), valid.tolist(), strict=True
    ):
        if ok:
            by_src.setdefault(a, []).append((-x, b))
            by_src.setdefault(b, []).append((-y, a))
    return sorted((s, d) for s, ranked in by_src.items() for _, d in sorted(ranked)[:k])


def test_top_partners_take_ties_at_the_cut_by_partner_and_values_ulps_apart_exactly() -> None:
    """The kernel behind the candidates' rankings (tiein.candidate_jit): values 1-3 ulps apart,
    many ties at the k-th place, -0.0 beside 0.0, invalid rows, both directions of a row worth
    different amounts; the same keys as ranking every directed pair in Python."""
    from tiein.candidate_jit import top_partners

    rng = np.random.default_rng(5)
    n = 300
    keys = np.unique(rng.integers(0, n, 6000) * n + rng.integers(0, n, 6000))
    lo, hi = keys // n, keys % n
    lo, hi = lo[lo < hi], hi[lo < hi]
    base = rng.choice([0.25, 0.5, 1.0, 3.0], (2, lo.size))
    v = base + rng.integers(0, 4, (2, lo.size)) * np.spacing(base)
    v[:, ::7] = 0.0
    v[:, 1::11] = -0.0
    valid = rng.random(lo.size) < 0.9
    for k in (1, 3, 10, 100):
        got = top_partners(lo, hi, v[0], v[1], valid, n, k)
        want = _brute_top(lo, hi, v[0], v[1], valid, k)
        assert sorted((int(x) // n, int(x) % n) for x in got) == want, k
    assert top_partners(lo, hi, v[0], v[1], valid, n, 0).size == 0


def test_top_pairs_equal_the_query() -> None:
    shop = _random_shop(2)
    cp = shop["co_purchase"]
    lifts = cp.column("lift").to_pylist()
    lifts[:3] = [None, None, None]  # NULLS LAST
    cp = cp.set_column(cp.column_names.index("lift"), "lift", pa.array(lifts, pa.float64()))
    # as mined (a < b, sorted: the kernel), shuffled (the kernel after a sort), a row given as
    # (b, a) and a pair given twice (sorting every pair): the query's rows each time
    shuffled = cp.take(np.random.default_rng(0).permutation(cp.num_rows))
    swapped = cp.set_column(0, "a", pa.array(["p999", *cp.column("a").to_pylist()[1:]]))
    repeated = pa.concat_tables([cp, cp.slice(5, 1)])
    for table in (cp.sort_by([("a", "ascending"), ("b", "ascending")]), shuffled, swapped, repeated):
        for k in (1, 2, 5, 50):
            assert top_pairs(table, k).equals(_query_top_pairs(table, k)), k
    assert top_pairs(cp, 0).equals(cp)
    assert top_pairs(cp.slice(0, 0), 3).num_rows == 0


def test_candidates_and_pair_edges_equal_the_queries_on_online_retail(retail: tuple[Any, Any]) -> None:
    products, orders = retail
    pairs = mine_pairs(orders, min_count=2).pairs
    neighbours = pa.table(  # every product's next two ids: a stand-in for embedding neighbours
        {
            "src": products.column("product_id"),
            "dst": pa.concat_arrays(
                [
                    products.column("product_id").combine_chunks().slice(1),
                    products.column("product_id").combine_chunks().slice(0, 1),
                ]
            ),
            "similarity": np.ones(products.num_rows),
        }
    )
    query, mine = _both(products, co_purchase=pairs, neighbours=neighbours)
    assert mine is not None
    assert query.num_rows > 10_000
    assert mine.equals(query)
    assert top_pairs(pairs, 50).equals(_query_top_pairs(pairs, 50))


def test_contains_follows_sql_on_nulls_words_and_substrings() -> None:
    """SQL's contains(hay, needle) row by row, nulls included, by each of the three ways
    (word lookup, one match per repeated needle, one Python test per row)."""
    hays = pa.array([" LUNCH BAG RED ", None, "全脂牛奶", " TEA  CUP ", " MUG ", "x BAG y", " BAG "])
    needles = pa.array([" BAG ", " BAG ", "牛奶", " CUP ", None, " BAG ", "牛奶"])
    words = cpairs._Words(hays, needles)
    rng = np.random.default_rng(1)
    for size in (7, 400):  # few rows: needles hardly repeat; many: they do
        h = rng.integers(0, len(hays), size)
        n = rng.integers(0, len(needles), size)
        value, null = cpairs._contains(hays, needles, words, h, n)
        con = duckdb.connect()
        want = con.execute(
            "SELECT contains(h, s) FROM (SELECT unnest(?) AS h, unnest(?) AS s)",
            [hays.take(pa.array(h)).to_pylist(), needles.take(pa.array(n)).to_pylist()],
        ).fetchall()
        con.close()
        got = [None if nu else bool(v) for v, nu in zip(value, null, strict=True)]
        assert got == [w[0] for w in want]
        assert any(x is None for x in got) and any(got) and False in got


def _query_next(products: pa.Table, pairs: pa.Table, timeline: pa.Table, min_count: int) -> pa.Table:
    """next_candidates as the query it was, over the ids themselves (DuckDB orders the strings)."""
    from tiein.features import _NEXT_SQL

    con = duckdb.connect()
    con.register("prod", product_frame(products))
    con.register("cp_t", pairs)
    con.register("tl", timeline)
    out = con.sql(_NEXT_SQL, params={"min_count": min_count}).to_arrow_table()
    con.close()
    return out


@pytest.mark.parametrize("seed", range(4))
def test_next_candidates_equal_the_query_on_random_shops(seed: int) -> None:
    from tiein.features import next_candidates
    from tiein.model import TIMELINE

    shop = _random_shop(seed)
    rng = np.random.default_rng(seed)
    ids = shop["products"].column("product_id").to_pylist()
    timeline = pa.Table.from_pylist(
        [
            {
                "product_id": p,
                "customers": 5,
                "returning": int(rng.integers(0, 5)),
                "later": int(rng.integers(0, 5)),
            }
            for p in ids
            if rng.random() < 0.7
        ],
        schema=TIMELINE,
    )
    for min_count in (0, 1, 2):
        want = _query_next(shop["products"], shop["co_purchase"], timeline, min_count)
        got = next_candidates(shop["products"], shop["co_purchase"], timeline, min_count=min_count)
        assert want.num_rows > 20
        assert got.equals(want), min_count
    twice = pa.concat_tables([timeline, timeline.slice(0, 1)])  # the query repeats those rows
    assert next_candidates(shop["products"], shop["co_purchase"], twice).equals(
        _query_next(shop["products"], shop["co_purchase"], twice, 1)
    )


def test_next_candidates_equal_the_query_on_online_retail(retail: tuple[Any, Any]) -> None:
    from tiein.features import next_candidates

    products, orders = retail
    mined = mine_pairs(orders, min_count=2, after_window_days=90)
    want = _query_next(products, mined.pairs, mined.timeline, 2)
    assert want.num_rows > 1000
    assert next_candidates(products, mined.pairs, mined.timeline, min_count=2).equals(want)


def test_nan_lifts_and_prices_give_what_the_queries_give() -> None:
    """DuckDB orders NaN above every number and finds it above 1: a NaN lift or price (no loader
    lets one in, but a pair table can be handed over) sends the candidates to the query, and the
    pair edges rank a NaN lift first, a null one last, as the query did."""
    from tiein.features import next_candidates
    from tiein.model import TIMELINE

    shop = _random_shop(4)
    cp = shop["co_purchase"]
    lifts = cp.column("lift").to_pylist()
    lifts[0], lifts[1] = float("nan"), None
    cp = cp.set_column(cp.column_names.index("lift"), "lift", pa.array(lifts, pa.float64()))
    products = shop["products"]
    prices = products.column("price").to_pylist()
    prices[3] = float("nan")
    products = products.set_column(
        products.column_names.index("price"), "price", pa.array(prices, pa.float64())
    )
    query, mine = _both(products, co_purchase=cp, neighbours=shop["neighbours"], per_product=2, per_staple=1)
    assert mine is None  # the query answers, and candidate_features gives its rows
    _, names = coded_inputs(products, cp, None, None, shop["neighbours"])
    for c in ("src", "dst"):
        query = query.set_column(query.column_names.index(c), c, names.take(query.column(c)))
    got = candidate_features(
        products, co_purchase=cp, neighbours=shop["neighbours"], per_product=2, per_staple=1
    )
    assert got.drop(["similarity"]).schema == query.schema
    assert repr(got.drop(["similarity"]).to_pylist()) == repr(query.to_pylist())  # NaN == NaN here
    for k in (1, 2, 50):  # NaN == NaN in the repr
        assert repr(top_pairs(cp, k).to_pylist()) == repr(_query_top_pairs(cp, k).to_pylist()), k
    timeline = pa.Table.from_pylist(
        [
            {"product_id": p, "customers": 3, "returning": 1, "later": 1}
            for p in products.column("product_id").to_pylist()
        ],
        schema=TIMELINE,
    )
    want = _query_next(products, cp, timeline, 1)
    assert repr(next_candidates(products, cp, timeline).to_pylist()) == repr(want.to_pylist())


def test_pair_edges_rank_a_nan_lift_first_and_a_null_one_last() -> None:
    """x's three partners tie on n_ab; the query (DuckDB) keeps the NaN lift over 2.0 over null."""
    rows = [("x", "y", 5, float("nan")), ("x", "z", 5, 2.0), ("w", "x", 5, None)]
    rows += [(e, f"q{e}", 9, 1.0) for e in ("y", "z", "w")]  # each other end keeps a stronger pair
    pairs = pa.Table.from_pylist(
        [{"a": a, "b": b, "n_ab": n, "n_a": 9, "n_b": 9, "n": 99, "lift": lift} for a, b, n, lift in rows],
        schema=PAIR_STATS,
    )
    for k, kept in ((1, ("x", "y")), (2, ("x", "z"))):
        got = top_pairs(pairs, k)
        assert repr(got.to_pylist()) == repr(_query_top_pairs(pairs, k).to_pylist())
        assert kept in list(zip(got.column("a").to_pylist(), got.column("b").to_pylist(), strict=True))
    one = top_pairs(pairs, 1)  # w keeps its stronger pair, x the NaN one: (w, x) is nobody's
    assert ("w", "x") not in list(zip(one.column("a").to_pylist(), one.column("b").to_pylist(), strict=True))

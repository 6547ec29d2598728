"""Content sets in the build: products shown together (one short video, one livestream, one styled
outfit, a hand-made list; read by :mod:`tiein.loaders.sets`) as evidence of their own, kept apart
from co-purchase.

1. :func:`set_pairs` mines co-appearance over sets with the build's pair miner, sets as baskets
   (as co-view is mined over sessions): ``n_ab`` sets showing both, ``n_a`` / ``n_b`` sets showing
   each, ``n`` sets, ``lift``, plus ``w_ab``: the sets showing both weighted by
   :func:`set_weights` (the set's own weight × :data:`KIND_WEIGHTS` of its kind).
2. :func:`tiein.features.candidate_features` takes them (``sets=``): each product's best partners
   by shown-together association become candidates, and every candidate gets the columns of
   :data:`SET_FEATURE_COLUMNS` (only when sets are given: a build without sets is unchanged).
3. The hand-set complement score takes the larger of the co-purchase association and
   ``RelationConfig.set_weight`` × :func:`shown_association`; the learnt ranker
   (:mod:`tiein.ranker`) gets three more features (:data:`tiein.ranker.model.SET_FEATURES`) and
   learns from the shop's own baskets how much co-appearance predicts a purchase.
4. :func:`with_set_evidence` adds ``shown_together``, ``shown_in`` ({kind: sets}) and
   ``set_lift`` to the evidence of every relation whose two products were shown together, and
   :func:`shown_parts` says it (常在同一套穿搭里出现 / shown together in 3 outfits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

# A set's weight in the weighted co-appearance count, by kind: a livestream shows dozens of items
# over hours, so two items in the same broadcast say less than two items in one outfit or one
# short video. The set's own weight (column ``weight``, default 1) multiplies it.
KIND_WEIGHTS: dict[str, float] = {"outfit": 1.0, "video": 1.0, "manual": 1.0, "live": 0.5}

# Candidate columns from sets (int counts, then floats); 0 for a pair never shown together.
SET_FEATURE_COLUMNS = ("n_sets", "sets_src", "sets_dst", "sets_total", "set_lift", "w_sets")

# SQL pieces :func:`tiein.features.candidate_features` adds when sets are given (table ``st_t``).
SQL_CTES = """
st AS (
    SELECT a AS src, b AS dst, n_ab AS n_sets, n_a AS sets_src, n_b AS sets_dst, n AS sets_total,
           lift AS set_lift, w_ab AS w_sets FROM st_t
    UNION ALL
    SELECT b, a, n_ab, n_b, n_a, n, lift, w_ab FROM st_t
),
st_top AS (
    SELECT src, dst FROM st WHERE set_lift > 1.0
    QUALIFY row_number() OVER (
        PARTITION BY src ORDER BY w_sets / (sets_src + 5.0) * (1.0 - 1.0 / set_lift) DESC, dst) <= $per_product
),"""
SQL_CANDIDATES = " UNION SELECT src, dst FROM st_top"
SQL_COLUMNS = """,
       coalesce(st.n_sets, 0) AS n_sets, coalesce(st.sets_src, 0) AS sets_src,
       coalesce(st.sets_dst, 0) AS sets_dst, coalesce(st.sets_total, 0) AS sets_total,
       coalesce(st.set_lift, 0.0) AS set_lift, coalesce(st.w_sets, 0.0) AS w_sets"""
SQL_JOIN = "LEFT JOIN st ON st.src = c.src AND st.dst = c.dst\n"

_UNITS = {  # kind -> (zh place, zh count word, en singular, en plural)
    "outfit": ("同一套穿搭", "套穿搭", "outfit", "outfits"),
    "video": ("同一个视频", "个视频", "video", "videos"),
    "live": ("同场直播", "场直播", "livestream", "livestreams"),
    "manual": ("同一搭配清单", "个搭配清单", "curated list", "curated lists"),
}
OFTEN_SETS = 3  # shown together in at least this many sets: "often" (常在…里出现)
_SAID_FIRST = ("outfit", "video", "live", "manual")  # of kinds with as many sets, said first


def set_weights(sets: pa.Table) -> pa.Table:
    """(set_id, w) per set: its weight × :data:`KIND_WEIGHTS` of its kind."""
    con = duckdb.connect()
    con.register("s", sets.select(["set_id", "kind", "weight"]))
    kinds = " ".join(f"WHEN '{k}' THEN {w}" for k, w in KIND_WEIGHTS.items())
    out = con.sql(
        f"SELECT set_id, any_value(weight) * (CASE any_value(kind) {kinds} ELSE 1.0 END) AS w "
        "FROM s GROUP BY set_id ORDER BY set_id"
    ).to_arrow_table()
    con.close()
    return out


def set_pairs(
    sets: pa.Table, mine: Callable[..., Any], *, max_basket: int
) -> tuple[pa.Table, dict[str, Any]]:
    """Co-appearance statistics of ``sets`` (tiein.model.SETS) mined by ``mine`` (the build's
    :func:`tiein.mining.mine_pairs`) with sets as baskets, every pair shown together at least once
    kept; sets with more than ``max_basket`` products are skipped, as giant baskets are. Returns
    PAIR_STATS columns a, b, n_ab, n_a, n_b, n, lift plus ``w_ab`` (weighted, see the module
    docstring) and a report: sets, rows, giant_sets (skipped), pairs, kinds ({kind: sets}) and
    the kind weights."""
    mined = mine(
        sets.select(["set_id", "product_id"]),
        basket_col="set_id",
        customer_col=None,
        ts_col=None,
        min_count=1,
        max_basket=max_basket,
        after_window_days=None,
    )
    pairs = mined.pairs.select(["a", "b", "n_ab", "n_a", "n_b", "n", "lift"])
    weights = set_weights(sets)
    w = weights.column("w").to_numpy()
    kinds = sets.group_by("kind").aggregate([("set_id", "count_distinct")])
    report = {
        "sets": int(mined.report.get("baskets", 0)),
        "rows": sets.num_rows,
        "giant_sets": int(mined.report.get("giant_baskets", 0)),
        "pairs": pairs.num_rows,
        "kinds": dict(
            sorted(zip(kinds["kind"].to_pylist(), kinds["set_id_count_distinct"].to_pylist(), strict=True))
        ),
        "kind_weights": KIND_WEIGHTS,
    }
    if pairs.num_rows == 0 or np.all(w == 1.0):  # unweighted: the weighted count is the count
        return pairs.append_column(
            "w_ab", pa.array(pairs.column("n_ab").to_numpy().astype(np.float64))
        ), report
    con = duckdb.connect()
    con.register("s", sets.select(["set_id", "product_id"]))
    con.register("sw", weights)
    con.register("p", pairs)
    out = con.sql(
        """
        WITH kept AS (SELECT set_id FROM s GROUP BY set_id HAVING count(DISTINCT product_id) <= $max),
        m AS (SELECT DISTINCT s.set_id, s.product_id, sw.w FROM s JOIN kept USING (set_id) JOIN sw USING (set_id)),
        wp AS (SELECT x.product_id AS a, y.product_id AS b, sum(x.w) AS w_ab
               FROM m x JOIN m y ON x.set_id = y.set_id AND x.product_id < y.product_id GROUP BY ALL)
        SELECT p.*, coalesce(wp.w_ab, 0.0) AS w_ab FROM p LEFT JOIN wp USING (a, b) ORDER BY a, b
        """,
        params={"max": int(max_basket)},
    ).to_arrow_table()
    con.close()
    return out, report


def shown_association(
    w_sets: Any, sets_src: Any, set_lift: Any, n_sets: Any, *, prior: float = 5.0, min_sets: int = 1
) -> np.ndarray:
    """Directed association src → dst from sets, in [0, 1): the weighted share of src's sets
    that also show dst, shrunk (``w_sets / (sets_src + prior)``), times ``1 - 1/set_lift`` (0 at
    lift ≤ 1); 0 for pairs shown together in fewer than ``min_sets`` sets. The co-purchase
    association (:func:`tiein.relations.association`) over sets instead of orders.

    >>> [round(float(v), 4) for v in shown_association([3.0, 3.0, 1.0], [5, 5, 5], [4.0, 0.9, 4.0], [3, 3, 1],
    ...                                                  min_sets=2)]
    [0.225, 0.0, 0.0]
    """
    w = np.asarray(w_sets, dtype=np.float64)
    lift = np.nan_to_num(np.asarray(set_lift, dtype=np.float64), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(lift > 1.0, 1.0 - 1.0 / np.where(lift > 0, lift, 1.0), 0.0)
        conf = w / (np.asarray(sets_src, dtype=np.float64) + prior)
    ok = np.asarray(n_sets, dtype=np.float64) >= min_sets
    return np.clip(np.where(ok, np.nan_to_num(conf * excess), 0.0), 0.0, 1.0)


def shown_score(f: Mapping[str, np.ndarray], cfg: Any) -> Any:
    """``cfg.set_weight`` × :func:`shown_association` of each candidate of feature dict ``f``
    (``cfg``: tiein.relations.RelationConfig); 0 when the candidates have no set columns (a
    build without sets)."""
    if "n_sets" not in f:
        return 0.0
    a = shown_association(
        f["w_sets"],
        f["sets_src"],
        f["set_lift"],
        f["n_sets"],
        prior=cfg.prior_baskets,
        min_sets=cfg.min_set_count,
    )
    return cfg.set_weight * a


def with_set_evidence(relations: pa.Table, pairs: pa.Table, sets: pa.Table, max_basket: int) -> pa.Table:
    """``relations`` (RELATIONS) with ``shown_together`` (sets showing both products),
    ``shown_in`` ({kind: sets}) and ``set_lift`` merged into the evidence of every row whose two
    products were shown together (sets over ``max_basket`` products skipped, as in mining); other
    rows and the row order are unchanged."""
    if relations.num_rows == 0 or pairs.num_rows == 0:
        return relations
    con = duckdb.connect()
    con.register("rel", relations.select(["src", "dst", "evidence"]))
    con.register("s", sets.select(["set_id", "product_id", "kind"]))
    con.register("p", pairs.select(["a", "b", "lift"]))
    evidence = con.sql(
        """
        WITH r AS (SELECT row_number() OVER () AS i, src, dst, evidence FROM rel),
        kept AS (SELECT set_id FROM s GROUP BY set_id HAVING count(DISTINCT product_id) <= $max),
        m AS (SELECT DISTINCT set_id, product_id, kind FROM s JOIN kept USING (set_id)),
        hits AS (SELECT r.i, x.kind, count(*) AS n FROM r
                 JOIN m x ON x.product_id = r.src JOIN m y ON y.set_id = x.set_id AND y.product_id = r.dst
                 GROUP BY r.i, x.kind),
        agg AS (SELECT i, sum(n) AS total, ('{' || string_agg(to_json(kind)::VARCHAR || ':' || n, ',' ORDER BY kind) || '}')::JSON AS kinds FROM hits GROUP BY i)
        SELECT CASE WHEN agg.total IS NULL THEN r.evidence ELSE json_merge_patch(r.evidence, json_object(
                   'shown_together', agg.total, 'shown_in', agg.kinds,
                   'set_lift', round(p.lift, 3)))::VARCHAR END AS evidence
        FROM r LEFT JOIN agg USING (i)
        LEFT JOIN p ON p.a = least(r.src, r.dst) AND p.b = greatest(r.src, r.dst)
        ORDER BY r.i
        """,
        params={"max": int(max_basket)},
    ).to_arrow_table()
    con.close()
    col = relations.column_names.index("evidence")
    return relations.set_column(col, "evidence", evidence.column("evidence").cast(pa.string()))


def shown_parts(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (zh, en) clause saying how often two products were shown together, by kind (most
    first); none without ``shown_in``.

    >>> shown_parts({"shown_together": 4, "shown_in": {"outfit": 3, "live": 1}})
    [('常在同一套穿搭/同场直播里出现：3 套穿搭、1 场直播', 'often shown together: 3 outfits, 1 livestream')]
    >>> shown_parts({"shown_together": 1, "shown_in": {"video": 1}})
    [('在同一个视频里一起出现过：1 个视频', 'shown together in 1 video')]
    """
    shown = evidence.get("shown_in")
    if not isinstance(shown, Mapping):
        return []
    counts = sorted(
        ((int(n), k) for k, n in shown.items() if k in _UNITS and isinstance(n, int | float) and n > 0),
        key=lambda t: (-t[0], _SAID_FIRST.index(t[1])),
    )
    if not counts:
        return []
    total = sum(n for n, _ in counts)
    zh_n = "、".join(f"{n} {_UNITS[k][1]}" for n, k in counts)
    en_n = ", ".join(f"{n} {_UNITS[k][2] if n == 1 else _UNITS[k][3]}" for n, k in counts)
    places = "/".join(_UNITS[k][0] for _, k in counts)
    if total >= OFTEN_SETS:
        return [(f"常在{places}里出现：{zh_n}", f"often shown together: {en_n}")]
    return [(f"在{places}里一起出现过：{zh_n}", f"shown together in {en_n}")]

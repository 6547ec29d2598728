"""搭配榜 / best pairings: the shop's strongest complement pairs, overall or per category.

A pairing is one complement relation ``anchor → item`` of the graph (the same rows ``related``
answers). The list keeps relations whose two products were bought together in at least
``min_orders`` orders (``n_ab``: one lucky order is never a best pairing), takes each unordered
pair once (its better direction: higher score, then more orders, then ids) and ranks by the
relation score, then orders, then anchor and item ids — the store's own tie rule, so every store
gives the same list (the rows come from ``read_table`` with plain Cypher both stores run).

``category`` keeps pairs whose anchor is in that category (any level of its path, as the list
filters match), ``with_category`` those whose item is; ``per_category`` gives the top ``k`` of
every anchor category instead of the top ``k`` overall. The explanation is the related list's
own (:func:`tiein.explain.explain`): "主商品" / "the main item" is the anchor.

:class:`PairIndex` keeps the complements of a whole graph as arrays (about 30 bytes a relation:
50k products with 800k complements take ~25 MB), sorted once; a list is a few vectorised passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.explain import explain
from tiein.graph.base import PRODUCT_FIELDS, parse_evidence

DEFAULT_MIN_ORDERS = 3
EVIDENCE_FIELDS = ("n_ab", "lift", "confidence", "co_view", "similarity", "category_relation", "price_ratio")

# Plain Cypher both stores run (values as parameters): every complement that some order holds
# (what the ranking needs), and the whole relations of a few anchors (what the shown items need).
PAIRS_QUERY = (
    "MATCH (p:Product)-[r:COMPLEMENT]->(q:Product) WHERE r.n_ab >= 1 "
    "RETURN p.product_id AS src, q.product_id AS dst, r.score AS score, r.n_ab AS n_ab"
)
PAIR_DETAILS_QUERY = (
    "MATCH (p:Product)-[r:COMPLEMENT]->(q:Product) WHERE p.product_id IN $ids "
    "WITH p, q, r, r.evidence_id AS i MATCH (e:Evidence {evidence_id: i}) "  # docs/schema.md
    "RETURN p.product_id AS src, q.product_id AS dst, r.score AS score, "
    + ", ".join(f"r.{f} AS {f}" for f in EVIDENCE_FIELDS)
    + ", e.evidence AS evidence"
)


@dataclass
class PairIndex:
    """Complements as arrays in ranking order (score descending, then n_ab descending, then
    anchor id, then item id): ``src[i]`` → ``dst[i]`` are codes into ``ids`` (sorted, so code
    order is id order)."""

    ids: list[str]
    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray
    n_ab: np.ndarray

    @classmethod
    def build(
        cls, ids: Sequence[str], src: Sequence[str], dst: Sequence[str], score: Any, n_ab: Any
    ) -> PairIndex:
        """From parallel columns (relations whose ends are not in ``ids`` are left out).

        >>> ix = PairIndex.build(["a", "b", "c"], ["a", "b", "a"], ["b", "a", "c"], [0.2, 0.4, 0.9], [5, 5, 2])
        >>> [(ix.ids[s], ix.ids[d]) for s, d in zip(ix.src, ix.dst)]
        [('a', 'c'), ('b', 'a'), ('a', 'b')]
        """
        import pyarrow.compute as pc

        ids = sorted(ids)
        value_set = pa.array(ids, pa.string())
        s = pc.index_in(pa.array(src, pa.string()), value_set=value_set)
        d = pc.index_in(pa.array(dst, pa.string()), value_set=value_set)
        ok = pc.and_(pc.is_valid(s), pc.is_valid(d)).to_numpy(zero_copy_only=False)
        s_np = s.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
        d_np = d.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
        sc = pc.fill_null(pa.array(score, pa.float64()), float("-inf")).to_numpy(zero_copy_only=False)[ok]
        n = pc.fill_null(pa.array(n_ab, pa.int64()), 0).to_numpy(zero_copy_only=False)[ok]
        order = np.lexsort((d_np, s_np, -n, -sc))
        return cls(ids, s_np[order], d_np[order], sc[order], n[order])

    def rank(
        self, min_orders: int, anchor_ok: np.ndarray | None = None, item_ok: np.ndarray | None = None
    ) -> np.ndarray:
        """Positions of the qualifying relations, one per unordered pair (its first, i.e.
        better, direction), in ranking order; ``anchor_ok`` / ``item_ok``: a bool per product
        code.

        >>> ix = PairIndex.build(["a", "b", "c"], ["a", "b", "a"], ["b", "a", "c"], [0.2, 0.4, 0.9], [5, 5, 2])
        >>> [(ix.ids[ix.src[i]], ix.ids[ix.dst[i]]) for i in ix.rank(3)]
        [('b', 'a')]
        >>> [(ix.ids[ix.src[i]], ix.ids[ix.dst[i]]) for i in ix.rank(2, anchor_ok=np.array([True, False, False]))]
        [('a', 'c'), ('a', 'b')]
        """
        keep = (self.n_ab >= min_orders) & (self.src != self.dst)
        if anchor_ok is not None:
            keep &= anchor_ok[self.src]
        if item_ok is not None:
            keep &= item_ok[self.dst]
        idx = np.nonzero(keep)[0]
        lo, hi = np.minimum(self.src[idx], self.dst[idx]), np.maximum(self.src[idx], self.dst[idx])
        _, first = np.unique(lo * max(len(self.ids), 1) + hi, return_index=True)
        return idx[np.sort(first)]


def top(ranked: np.ndarray, k: int, groups: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(rank, position) of the first ``k`` of ``ranked``; with ``groups`` (a group code per
    position, codes in the order the groups are shown), the first ``k`` of each group, group by
    group.

    >>> top(np.array([5, 6, 7, 8]), 1, groups=np.array([1, 0, 1, 0]))
    [(1, 6), (1, 5)]
    """
    if groups is None:
        return [(r, int(p)) for r, p in enumerate(ranked[:k], 1)]
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.searchsorted(g, g, side="left")
    within = np.arange(len(g)) - starts
    chosen = within < k
    return [(int(w) + 1, int(p)) for w, p in zip(within[chosen], ranked[order][chosen], strict=True)]


def pairing_item(
    products: Mapping[str, Mapping[str, Any]], row: Mapping[str, Any], rank: int
) -> dict[str, Any]:
    """One pairing as the payload shows it: ``rank``, ``anchor`` and ``item`` (product fields),
    ``category`` (the anchor's), ``score``, ``n_ab`` (orders with both) and the other evidence
    columns, ``evidence`` and ``explanation`` {zh, en}."""
    anchor = {f: products[row["src"]].get(f) for f in PRODUCT_FIELDS}
    item = {f: products[row["dst"]].get(f) for f in PRODUCT_FIELDS}
    evidence = row["evidence"]
    if not isinstance(evidence, Mapping):
        evidence = parse_evidence(evidence, row["src"], row["dst"], "complement")
    e = explain(dict(evidence), "complement")  # "主商品" / "the main item" is the anchor
    return {
        "rank": rank,
        "anchor": anchor,
        "item": item,
        "category": anchor.get("category"),
        "score": float(row["score"]),
        **{f: row.get(f) for f in EVIDENCE_FIELDS},
        "evidence": dict(evidence),
        "explanation": e.to_dict(),
        "explanation_zh": e.zh,
        "explanation_en": e.en,
    }


def empty_note(category: str | None, with_category: str | None, min_orders: int) -> str:
    """Why a pairings list is empty.

    >>> empty_note("Tea", None, 3)
    "no complement pair with anchor in 'Tea' was bought together in 3+ orders"
    """
    where = " and ".join(f"{who} in {c!r}" for who, c in (("anchor", category), ("item", with_category)) if c)
    return (
        f"no complement pair{' with ' + where if where else ''} was bought together in {min_orders}+ orders"
    )

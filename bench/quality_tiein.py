"""tiein's side of bench/quality.py: the real build on the training orders, its relations read
back from the home (with the complements' cart weights), the add-ons lists asked of a snapshot of
the built store, the check of the relations file against the store's related(), and why tiein
missed the carts a baseline or its own complements completed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import quality_metrics as qm

CART = "complement cart weight"  # tiein_relations' key for the complements' cart weights
OTHER_KINDS = ("substitute", "series", "upsell", "next")


def build_tiein(
    name: str, products: pa.Table, train: pa.Table, home: Path, threads: int | None
) -> dict[str, Any]:
    """Write the catalog and the training orders as Parquet (normalised names) and run the real
    build into ``home``. Returns the build summary as a dict."""
    from tiein.loaders.mapping import Mapping
    from tiein.pipeline import BuildOptions, build

    mapping = Mapping.from_dict(
        {
            "catalog": {
                "product_id": "product_id",
                "title": "title",
                "category": "category_path",
                "brand": "brand",
                "price": "price",
                "stock": "stock",
            },
            "orders": {
                "order_id": "order_id",
                "product_id": "product_id",
                "quantity": "quantity",
                "customer": "customer_id",
                "timestamp": "ts",
            },
            "options": {"category_sep": " > "},
        }
    )
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"quality-{name}-") as tmp:
        cat, orders = Path(tmp) / "catalog.parquet", Path(tmp) / "orders.parquet"
        pq.write_table(
            products.select(["product_id", "title", "category_path", "brand", "price", "stock"]), cat
        )
        pq.write_table(train.select(["order_id", "product_id", "quantity", "customer_id", "ts"]), orders)
        summary = build(BuildOptions(catalog=cat, orders=orders, mapping=mapping, home=home, threads=threads))
    return summary.to_dict()


def tiein_relations(home: Path) -> dict[str, list[tuple[str, str, float]]]:
    """The relations of the home's answering generation by kind: [(src, dst, score)]."""
    from tiein.home import inputs_dir

    t = pq.read_table(
        inputs_dir(home) / "graph" / "relations.parquet", columns=["src", "dst", "kind", "score", "evidence"]
    )
    out: dict[str, list[tuple[str, str, float]]] = {}
    cols = [t.column(c).to_pylist() for c in ("src", "dst", "kind", "score", "evidence")]
    for src, dst, kind, score, evidence in zip(*cols, strict=True):
        out.setdefault(kind, []).append((src, dst, score))
        if kind == "complement":  # what the edge adds to a cart (tiein.ranker.cart_weight)
            w = json.loads(evidence).get("cart_weight") if evidence else None
            out.setdefault(CART, []).append((src, dst, score if w is None else w))
    return out


def miss_reasons(
    hits_best: list[bool], hits_tiein: list[bool], cases: list[qm.CartCase], C: Any, kinds: dict[str, Any]
) -> dict[str, int]:
    """Why tiein missed the carts the best baseline got: per case, the first that applies of
    "complement ranked below 10" (a cart item has the hidden item as complement), "typed <kind>"
    (a relation of another kind between a cart item and the hidden item, either way; the first of
    OTHER_KINDS that applies), "co-bought
    once only" (the hidden item shares one training basket at most with any cart item, below the
    build's min_count 2), "no relation" (co-bought more, yet no edge)."""
    out: dict[str, int] = {}
    for hb, ht, c in zip(hits_best, hits_tiein, cases, strict=True):
        if not hb or ht:
            continue
        h, rest = c.hidden, c.rest
        if kinds["complement"][rest, h].max() > 0:
            why = "complement ranked below 10"
        else:
            typed = [
                k
                for k in OTHER_KINDS
                if k in kinds and max(kinds[k][rest, h].max(), kinds[k][h, rest].max()) > 0
            ]
            if typed:
                why = "typed " + typed[0]
            elif C[rest, h].max() <= 1:
                why = "co-bought once only"
            else:
                why = "no relation"
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def addons_misses(
    hits_addons: list[bool],
    hits_tiein: list[bool],
    cases: list[qm.CartCase],
    category: dict[int, str | None],
    substitutes: Any,
) -> dict[str, int]:
    """Carts tiein complements completed and tiein addons missed, by the first rule that explains
    it: "category of a cart item" (max_per_category = 1 counts the cart's own items),
    "substitute of a cart item" (either way), "other" (list order, candidate_k, one per category
    among the suggestions)."""
    out: dict[str, int] = {}
    for ha, ht, c in zip(hits_addons, hits_tiein, cases, strict=True):
        if ha or not ht:
            continue
        cat = category.get(c.hidden)
        if cat is not None and any(category.get(j) == cat for j in c.rest):
            why = "category of a cart item"
        elif max(substitutes[c.rest, c.hidden].max(), substitutes[c.hidden, c.rest].max()) > 0:
            why = "substitute of a cart item"
        else:
            why = "other"
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class _MemoStore:
    """Caches ``bundle_candidates`` (a pure read) across addons calls; everything else is delegated."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._cache: dict[tuple[str, int], dict[str, Any]] = {}

    def bundle_candidates(self, pid: str, k: int = 50) -> dict[str, Any]:
        key = (pid, k)
        if key not in self._cache:
            self._cache[key] = self._store.bundle_candidates(pid, k)
        return self._cache[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def addons_lists(
    store: Any, cases: list[qm.CartCase], index: qm.ItemIndex, pop: np.ndarray
) -> list[tuple[list[int], int]]:
    """tiein's cart add-ons (default rules, k=10) for each case, as positions, popularity-filled."""
    from tiein import bundles

    memo = _MemoStore(store)
    out = []
    for c in cases:
        a = bundles.addons(memo, [index.ids[j] for j in c.rest], k=qm.K)  # type: ignore[arg-type]
        scores = np.zeros(len(index))
        for r, item in enumerate(a.items):  # keep addons' order: descending pseudo-scores
            j = index.pos.get(item.product["product_id"])
            if j is not None:
                scores[j] = qm.K + 1 - r
        out.append(qm.rank(scores, c.rest, pop))
    return out


def check_against_store(store: Any, S: Any, index: qm.ItemIndex, pop: np.ndarray, n: int = 25) -> int:
    """Anchors whose top-10 from the relations file differs from the store's related() (should be 0)."""
    bad = 0
    anchors = [i for i in np.flatnonzero(np.diff(S.indptr) > 0)[:n]]
    for a in anchors:
        served = [r["product_id"] for r in store.related(index.ids[a], "complement", qm.K)]
        mine, own = qm.rank(qm.row_scores(S, int(a)), [int(a)], pop)
        bad += [index.ids[j] for j in mine[:own]] != served[:own]
    return bad

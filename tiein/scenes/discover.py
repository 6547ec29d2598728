"""Scene discovery: scenes mined from the complement graph when the user gives none.

Alternative first step of the scene data flow: :func:`discover_scenes` turns the complement
relations of a build (or of a graph read back with STORE_PRODUCTS_QUERY /
STORE_COMPLEMENTS_QUERY, ``tiein scenes discover``) into :class:`~tiein.scenes.definitions.SceneDef`
values (Louvain communities of categories, or of products for catalogs without categories), which
:mod:`tiein.scenes.members` then assigns like user scenes.
"""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.model import CATEGORY_SEP
from tiein.scenes.definitions import Role, SceneDef
from tiein.scenes.members import product_paths

# Reading a graph back for discovery (`tiein scenes discover`): portable Cypher that runs unchanged
# on both stores (tests/test_scenes.py checks them on the embedded store and with Neo4j's parser).
STORE_PRODUCTS_QUERY = (
    "MATCH (p:Product) RETURN p.product_id AS product_id, p.title AS title, "
    "p.category AS category, p.category_path AS category_path ORDER BY product_id"
)
STORE_COMPLEMENTS_QUERY = (
    "MATCH (a:Product)-[r:COMPLEMENT]->(b:Product) "
    "RETURN a.product_id AS src, b.product_id AS dst, r.score AS score ORDER BY src, dst"
)


MAX_NODES = 10_000  # nodes of the community graph kept for Louvain (the strongest; see discover_scenes)

_WORD_RE = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
_STOP = frozenset(
    "a an and the of for with in on to by from set pack oz lb ml g kg cm mm x new free organic "
    "natural original classic style size".split()
)


def discover_scenes(
    products: pa.Table,
    relations: pa.Table,
    *,
    max_scenes: int = 12,
    max_roles: int = 8,
    min_size: int = 2,
    resolution: float = 1.0,
    seed: int = 0,
    max_nodes: int = MAX_NODES,
) -> list[SceneDef]:
    """Scenes mined from complements: communities of categories that complement each other.

    The category graph links the categories of every complement ``src → dst`` of ``relations``
    (tiein.model.RELATIONS; other kinds are ignored), undirected, weight = the sum of their
    scores; pairs within one category are skipped. Louvain communities (networkx, ``seed``:
    deterministic) with at least ``min_size`` categories become scenes, strongest first (by
    internal weight), at most ``max_scenes``. Roles are the community's categories by weighted
    degree inside it (most central first), at most ``max_roles``; a scene is named after its top
    three categories. A catalog without categories falls back to the product-level complement
    graph: roles are then single products (the ``max_roles`` most central) and the name comes from
    the most frequent title words. Returns [] when there are no complements.

    A graph of more than ``max_nodes`` nodes (a catalog of tens of thousands of products without
    categories) is cut to its ``max_nodes`` strongest nodes by weighted degree (ties by name) and
    the edges among them: Louvain in networkx is pure Python (21 s on 50k products and 872k edges),
    and the twelve strongest scenes are made of central products anyway.
    """
    import networkx as nx

    if max_scenes < 1 or max_roles < min_size or min_size < 2:
        raise ConfigError("discover_scenes needs max_scenes >= 1 and max_roles >= min_size >= 2")
    comp = (
        relations.filter(pc.equal(relations.column("kind"), "complement"))
        if relations.num_rows
        else relations
    )
    if comp.num_rows == 0 or products.num_rows == 0:
        return []
    paths = product_paths(products)
    pids = products.column("product_id").combine_chunks()
    has_categories = paths.null_count < len(paths)
    if has_categories:
        # display names: the original (not lower-cased) normalised path of each key
        orig = pc.coalesce(products.column("category_path"), products.column("category"))
        sep = CATEGORY_SEP.strip()
        orig = pc.replace_substring_regex(
            pc.utf8_trim_whitespace(orig), pattern=rf"\s*{re.escape(sep)}\s*", replacement=CATEGORY_SEP
        )
        key_of = (
            pc.index_in(comp.column("src"), value_set=pids),
            pc.index_in(comp.column("dst"), value_set=pids),
        )
        a = pc.take(paths, key_of[0])
        b = pc.take(paths, key_of[1])
        labels = _first_label(paths, orig)
    else:
        a, b = comp.column("src"), comp.column("dst")
        labels = {}
    opts = pc.ElementWiseAggregateOptions(skip_nulls=False)
    edges = pa.table(
        {
            "a": pc.min_element_wise(a, b, options=opts),
            "b": pc.max_element_wise(a, b, options=opts),
            "w": comp.column("score"),
        }
    )
    edges = edges.filter(
        pc.and_(
            pc.and_(pc.is_valid(edges.column("a")), pc.is_valid(edges.column("b"))),
            pc.not_equal(edges.column("a"), edges.column("b")),
        )
    )
    if edges.num_rows == 0:
        return []
    agg = (
        edges.group_by(["a", "b"]).aggregate([("w", "sum")]).sort_by([("a", "ascending"), ("b", "ascending")])
    )
    agg = _strongest(agg, max_nodes)
    g = nx.Graph()
    g.add_weighted_edges_from(
        zip(
            agg.column("a").to_pylist(),
            agg.column("b").to_pylist(),
            agg.column("w_sum").to_pylist(),
            strict=True,
        )
    )
    communities = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    ranked = []
    for com in communities:
        if len(com) < min_size:
            continue
        sub = g.subgraph(com)
        strength = {n: float(d) for n, d in sub.degree(weight="weight")}
        order = sorted(com, key=lambda n: (-strength[n], n))
        ranked.append((sub.size(weight="weight"), order))
    ranked.sort(key=lambda t: (-t[0], t[1][0]))
    titles = (
        dict(zip(pids.to_pylist(), products.column("title").to_pylist(), strict=True))
        if not has_categories
        else {}
    )
    out: list[SceneDef] = []
    used: Counter[str] = Counter()
    for rank, (_, order) in enumerate(ranked[:max_scenes], start=1):
        top = order[:max_roles]
        if has_categories:
            roles = _category_roles(top, labels)
            name = " · ".join(r.name for r in roles[:3])
        else:
            roles = _product_roles(top, titles)
            name = " · ".join(_top_terms([titles.get(p) or "" for p in top], 3)) or roles[0].name
        used[name] += 1
        if used[name] > 1:
            name = f"{name} ({used[name]})"
        out.append(SceneDef(name=name, roles=tuple(roles), source="discovered", id=f"discovered-{rank:02d}"))
    return out


def _strongest(edges: pa.Table, max_nodes: int) -> pa.Table:
    """The ``edges`` (a, b, w_sum) among the ``max_nodes`` nodes of highest weighted degree (ties:
    the smaller name first); all of them when there are no more nodes than that."""
    ends = pa.concat_tables(
        [
            edges.select(["a", "w_sum"]).rename_columns(["n", "w"]),
            edges.select(["b", "w_sum"]).rename_columns(["n", "w"]),
        ]
    )
    strength = ends.group_by("n", use_threads=False).aggregate([("w", "sum")])
    if strength.num_rows <= max_nodes:
        return edges
    kept = strength.sort_by([("w_sum", "descending"), ("n", "ascending")]).slice(0, max_nodes).column("n")
    inside = pc.and_(pc.is_in(edges.column("a"), value_set=kept), pc.is_in(edges.column("b"), value_set=kept))
    return edges.filter(inside)


def _first_label(keys: pa.Array, orig: pa.ChunkedArray | pa.Array) -> dict[str, str]:
    """Normalised lower-case path → the path as first written in the catalog."""
    t = pa.table({"k": keys, "o": orig}).filter(pc.is_valid(keys))
    first = t.group_by("k", use_threads=False).aggregate([("o", "first")])
    return dict(zip(first.column("k").to_pylist(), first.column("o_first").to_pylist(), strict=True))


def _category_roles(keys: list[str], labels: dict[str, str]) -> list[Role]:
    """One role per category key: named by its leaf (its full path when leaves repeat)."""
    full = [labels.get(k, k) for k in keys]
    leaves = [f.split(CATEGORY_SEP)[-1] for f in full]
    counts = Counter(x.casefold() for x in leaves)
    return [
        Role(name=leaf if counts[leaf.casefold()] == 1 else path, categories=(path,))
        for leaf, path in zip(leaves, full, strict=True)
    ]


def _product_roles(pids: list[str], titles: dict[str, str | None]) -> list[Role]:
    names: Counter[str] = Counter()
    out = []
    for pid in pids:
        base = (titles.get(pid) or pid).strip()[:40] or pid
        names[base.casefold()] += 1
        name = base if names[base.casefold()] == 1 else f"{base} ({pid})"
        out.append(Role(name=name, products=(pid,)))
    return out


def _top_terms(titles: list[str], n: int) -> list[str]:
    """The ``n`` most frequent title words (letters first; stop words and 1-letter words out)."""
    counts: Counter[str] = Counter()
    for t in titles:
        counts.update(
            {w for w in (m.group(0).lower() for m in _WORD_RE.finditer(t)) if len(w) > 1 and w not in _STOP}
        )
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

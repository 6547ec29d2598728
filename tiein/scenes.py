"""Shopping scenes (use cases, 场景): a named, ordered list of roles, each filled by products.

A scene is what a shopper is doing — 露营 / camping: tent → folding chair → camp lamp → sleeping
bag — and its roles are the kinds of product the scene needs, in the order a bundle offers them.
Scenes come from two places:

- **user scenes**, a small YAML or JSON file (:func:`load_scenes`), e.g.::

      scenes:
        - name: 露营
          name_en: camping
          roles:
            - name: tent
              categories: [Outdoor > Tents]      # full paths (a subtree) or leaf names
            - name: folding chair
              keywords: [folding chair, 折叠椅]    # case-insensitive substrings of titles
            - name: camp lamp
              products: [lamp]                   # product ids

- **discovered scenes** (:func:`discover_scenes`) when the user gives none: communities of the
  category-level complement graph (Louvain, fixed seed), or of the product-level complement
  graph for catalogs without categories. :func:`dump_scenes` writes them in the same format, so a
  user can review, edit and pass them back.

:func:`assign_members` turns scene definitions into the ``tiein.model.SCENES`` /
``SCENE_MEMBERS`` tables the store loads: every product matching a role becomes a member with
that role and ``weight`` = the role's position (1 = first role). A product matching several roles
of one scene takes the first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.model import CATEGORY_SEP, SCENE_MEMBERS, SCENES

SCENE_KEYS = ("id", "name", "name_en", "name_zh", "roles")
ROLE_KEYS = ("name", "categories", "keywords", "products")
ROLE_MATCHERS = ("categories", "keywords", "products")

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


@dataclass(frozen=True)
class Role:
    """One role of a scene: products in ``categories`` (full paths match their subtree, other
    names match a leaf), with a title containing one of ``keywords`` (case-insensitive), or listed
    in ``products``. A product matching any of the three fills the role."""

    name: str
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    products: tuple[str, ...] = ()


@dataclass(frozen=True)
class SceneDef:
    """A scene: ``name`` (any language), optional ``name_en`` / ``name_zh``, ordered ``roles``.
    ``scene_id`` defaults to a slug of ``name_en`` (else ``name``): ``露营`` + ``camping`` →
    ``camping``."""

    name: str
    roles: tuple[Role, ...]
    name_en: str | None = None
    name_zh: str | None = None
    source: str = "user"
    id: str | None = None
    scene_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scene_id", self.id or slug(self.name_en or self.name))


def slug(text: str) -> str:
    """A scene id from a name: lower case, runs of non-word characters as ``-`` (Chinese kept).

    >>> slug("Camping Weekend!"), slug("露营 装备")
    ('camping-weekend', '露营-装备')
    """
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-") or "scene"


# ----------------------------------------------------------------------------- user file
def load_scenes(path: Path | str) -> list[SceneDef]:
    """Read and validate a scenes file (YAML or JSON): a list of scenes, or ``{"scenes": [...]}``.

    Every problem found is reported at once in one ConfigError naming the file and the
    scene / role / field at fault: unknown keys, missing or empty names, a scene without roles, a
    role without any of categories / keywords / products, duplicate scene names, ids or role
    names."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"scenes file {p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scenes file {p}: {exc}") from exc
    try:
        doc = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML/JSON: {exc}") from exc
    return parse_scenes(doc, str(p))


def parse_scenes(doc: Any, where: str = "scenes") -> list[SceneDef]:
    """Validate already-parsed scene data (see :func:`load_scenes`); ``where`` names the source."""
    if isinstance(doc, dict) and set(doc) == {"scenes"}:
        doc = doc["scenes"]
    elif isinstance(doc, dict):
        raise ConfigError(
            f"{where}: expected a list of scenes or a mapping with only the key 'scenes', got keys {sorted(doc)}"
        )
    if not isinstance(doc, list) or not doc:
        raise ConfigError(f"{where}: expected a non-empty list of scenes")
    problems: list[str] = []
    out: list[SceneDef] = []
    names: dict[str, int] = {}
    ids: dict[str, int] = {}
    for i, raw in enumerate(doc, start=1):
        scene = _parse_scene(raw, f"scene {i}", problems)
        if scene is None:
            continue
        at = f"scene {i} ({scene.name!r})"
        key = scene.name.casefold()
        if key in names:
            problems.append(f"{at}: duplicate scene name (also scene {names[key]})")
        names.setdefault(key, i)
        if scene.scene_id in ids:
            problems.append(
                f"{at}: duplicate scene id {scene.scene_id!r} (also scene {ids[scene.scene_id]}); set 'id'"
            )
        ids.setdefault(scene.scene_id, i)
        out.append(scene)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return out


def _text(value: Any, at: str, key: str, problems: list[str], required: bool) -> str | None:
    if value is None:
        if required:
            problems.append(f"{at}: '{key}' is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        problems.append(f"{at}: '{key}' must be a non-empty string, got {value!r}")
        return None
    return str(value).strip()


def _strings(value: Any, at: str, key: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or not str(v).strip():
            problems.append(f"{at}: '{key}' must be a string or a list of non-empty strings, got {v!r}")
            continue
        out.append(str(v).strip())
    return tuple(dict.fromkeys(out))


def _unknown(raw: dict[str, Any], allowed: tuple[str, ...], at: str, problems: list[str]) -> None:
    extra = [k for k in raw if k not in allowed]
    if extra:
        problems.append(f"{at}: unknown key(s) {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})")


def _parse_scene(raw: Any, at: str, problems: list[str]) -> SceneDef | None:
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with 'name' and 'roles', got {raw!r}")
        return None
    name = _text(raw.get("name"), at, "name", problems, required=True)
    at = f"{at} ({name!r})" if name else at
    _unknown(raw, SCENE_KEYS, at, problems)
    extras = {k: _text(raw.get(k), at, k, problems, required=False) for k in ("id", "name_en", "name_zh")}
    roles_raw = raw.get("roles")
    roles: list[Role] = []
    if not isinstance(roles_raw, list) or not roles_raw:
        problems.append(f"{at}: 'roles' must be a non-empty list")
        roles_raw = []
    seen: dict[str, int] = {}
    for j, r in enumerate(roles_raw, start=1):
        role = _parse_role(r, f"{at} role {j}", problems)
        if role is None:
            continue
        if role.name.casefold() in seen:
            problems.append(
                f"{at} role {j} ({role.name!r}): duplicate role name (also role {seen[role.name.casefold()]})"
            )
        seen.setdefault(role.name.casefold(), j)
        roles.append(role)
    if name is None or not roles:
        return None
    if extras["id"] is not None and slug(extras["id"]) != extras["id"]:
        problems.append(f"{at}: 'id' {extras['id']!r} must be a slug like {slug(extras['id'])!r}")
    return SceneDef(
        name=name, roles=tuple(roles), name_en=extras["name_en"], name_zh=extras["name_zh"], id=extras["id"]
    )


def _parse_role(raw: Any, at: str, problems: list[str]) -> Role | None:
    if isinstance(raw, str) and raw.strip():  # shorthand: "- tent" = a role matched by keyword
        return Role(name=raw.strip(), keywords=(raw.strip(),))
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with 'name' and categories/keywords/products, got {raw!r}")
        return None
    name = _text(raw.get("name"), at, "name", problems, required=True)
    at = f"{at} ({name!r})" if name else at
    _unknown(raw, ROLE_KEYS, at, problems)
    found = {k: _strings(raw.get(k), at, k, problems) for k in ROLE_MATCHERS}
    if not any(found.values()):
        problems.append(f"{at}: needs at least one of {', '.join(ROLE_MATCHERS)}")
        return None
    if name is None:
        return None
    return Role(
        name=name, categories=found["categories"], keywords=found["keywords"], products=found["products"]
    )


def dump_scenes(scenes: list[SceneDef], path: Path | str) -> Path:
    """Write ``scenes`` as a YAML file :func:`load_scenes` reads back (the same scenes), with a
    header saying how to use it. Returns the path."""
    import yaml

    p = Path(path)
    doc = {"scenes": [scene_to_dict(s) for s in scenes]}
    sources = sorted({s.source for s in scenes}) or ["user"]
    header = (
        f"# tiein scenes ({', '.join(sources)}): review, edit, then build with `tiein build ... --scenes {p.name}`.\n"
        "# Each role is filled by products in its categories (full path = subtree, else leaf name),\n"
        "# with a title containing one of its keywords, or listed in products. Roles are in order.\n"
    )
    body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(header + body, encoding="utf-8")
    return p


def scene_to_dict(scene: SceneDef) -> dict[str, Any]:
    """One scene as the file format's mapping (empty fields left out)."""
    out: dict[str, Any] = {"name": scene.name}
    for k in ("name_en", "name_zh", "id"):
        if getattr(scene, k):
            out[k] = getattr(scene, k)
    out["roles"] = [
        {"name": r.name, **{k: list(getattr(r, k)) for k in ROLE_MATCHERS if getattr(r, k)}}
        for r in scene.roles
    ]
    return out


# ----------------------------------------------------------------------------- members
def _norm_path(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Category paths normalised as tiein.graph.build does ("a>b" → "a > b"), lower-cased; null stays."""
    sep = CATEGORY_SEP.strip()
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(col))
    return pc.replace_substring_regex(lowered, pattern=rf"\s*{re.escape(sep)}\s*", replacement=CATEGORY_SEP)


def _norm_category(text: str) -> str:
    return CATEGORY_SEP.join(p.strip() for p in text.lower().split(CATEGORY_SEP.strip()))


def product_paths(products: pa.Table) -> pa.Array:
    """Each product's normalised, lower-cased category path (category_path, else category)."""
    path = pc.coalesce(products.column("category_path"), products.column("category"))
    path = _norm_path(path)
    blank = pc.equal(pc.fill_null(path, ""), "")
    out = pc.if_else(blank, pa.scalar(None, pa.string()), path)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def role_mask(products: pa.Table, role: Role, paths: pa.Array | None = None) -> pa.Array:
    """Boolean mask of the products that fill ``role`` (vectorised over the whole catalog)."""
    n = products.num_rows
    paths = product_paths(products) if paths is None else paths
    mask = pa.array([False] * n, pa.bool_()) if n else pa.array([], pa.bool_())
    p = pc.fill_null(paths, "")
    for cat in role.categories:
        c = _norm_category(cat)
        hit = pc.or_(pc.equal(p, c), pc.starts_with(p, c + CATEGORY_SEP))
        hit = pc.or_(hit, pc.ends_with(p, CATEGORY_SEP + c))
        mask = pc.or_(mask, hit)
    if role.keywords:
        titles = pc.fill_null(products.column("title"), "")
        for kw in role.keywords:
            mask = pc.or_(mask, pc.match_substring(titles, kw, ignore_case=True))
    if role.products:
        mask = pc.or_(
            mask, pc.is_in(products.column("product_id"), value_set=pa.array(role.products, pa.string()))
        )
    mask = pc.fill_null(mask, False)
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def assign_members(products: pa.Table, scenes: list[SceneDef]) -> tuple[pa.Table, pa.Table]:
    """The SCENES and SCENE_MEMBERS tables of ``scenes`` over the catalog ``products``
    (tiein.model.PRODUCTS). Each product matching a role is a member with that role and
    ``weight`` = the role's 1-based position; a product matching several roles of one scene takes
    the first. Members are ordered by scene, weight, product id. A role matching nothing gives no
    rows (see :func:`empty_roles`)."""
    ids = [s.scene_id for s in scenes]
    dup = [i for i, c in Counter(ids).items() if c > 1]
    if dup:
        raise ConfigError(f"duplicate scene id(s): {', '.join(map(repr, dup))}")
    scene_table = pa.table(
        {"scene_id": ids, "name": [s.name for s in scenes], "source": [s.source for s in scenes]},
        schema=SCENES,
    )
    paths = product_paths(products)
    pids = products.column("product_id").combine_chunks()
    parts: list[pa.Table] = []
    for s in scenes:
        taken = pa.array([False] * products.num_rows, pa.bool_())
        for pos, role in enumerate(s.roles, start=1):
            mask = pc.and_(role_mask(products, role, paths), pc.invert(taken))
            taken = pc.or_(taken, mask)
            hit = pids.filter(mask)
            if len(hit) == 0:
                continue
            m = len(hit)
            parts.append(
                pa.table(
                    {
                        "product_id": pc.array_take(hit, pc.sort_indices(hit)),
                        "scene_id": pa.array([s.scene_id] * m, pa.string()),
                        "role": pa.array([role.name] * m, pa.string()),
                        "weight": pa.array([float(pos)] * m, pa.float64()),
                    },
                    schema=SCENE_MEMBERS,
                )
            )
    members = pa.concat_tables(parts) if parts else SCENE_MEMBERS.empty_table()
    return scene_table, members


def empty_roles(scenes: list[SceneDef], members: pa.Table) -> list[str]:
    """``"scene / role"`` for every role no product filled (for the build report)."""
    filled = set(zip(members.column("scene_id").to_pylist(), members.column("role").to_pylist(), strict=True))
    return [f"{s.name} / {r.name}" for s in scenes for r in s.roles if (s.scene_id, r.name) not in filled]


# ----------------------------------------------------------------------------- discovery
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


# ----------------------------------------------------------------------------- store answers
def scenes_json(scenes: list[SceneDef]) -> str:
    """Scene definitions as JSON (the file format), for ``--json`` output."""
    return json.dumps({"scenes": [scene_to_dict(s) for s in scenes]}, ensure_ascii=False, indent=2)

"""Scene members: which products fill which role of which scene.

Second step of the scene data flow, in the build: :func:`assign_members` matches every
:class:`~tiein.scenes.definitions.Role` against the whole catalog (vectorised with pyarrow:
category subtree or leaf, title keyword, product id) and gives the ``tiein.model.SCENES`` /
``SCENE_MEMBERS`` tables the store loads; :func:`empty_roles` lists the roles nothing filled.
"""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError
from tiein.model import CATEGORY_SEP, SCENE_MEMBERS, SCENES
from tiein.scenes.definitions import Role, SceneDef


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

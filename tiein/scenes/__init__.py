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

Modules, in data-flow order: :mod:`~tiein.scenes.definitions` (scene values, the file format),
:mod:`~tiein.scenes.discover` (discovery), :mod:`~tiein.scenes.members` (the member tables).
"""

from __future__ import annotations

from tiein.scenes.definitions import (
    ROLE_KEYS,
    ROLE_MATCHERS,
    SCENE_KEYS,
    Role,
    SceneDef,
    dump_scenes,
    load_scenes,
    parse_scenes,
    scene_to_dict,
    scenes_json,
    slug,
)
from tiein.scenes.discover import STORE_COMPLEMENTS_QUERY, STORE_PRODUCTS_QUERY, discover_scenes
from tiein.scenes.members import assign_members, empty_roles, product_paths, role_mask

__all__ = [
    "ROLE_KEYS",
    "ROLE_MATCHERS",
    "SCENE_KEYS",
    "STORE_COMPLEMENTS_QUERY",
    "STORE_PRODUCTS_QUERY",
    "Role",
    "SceneDef",
    "assign_members",
    "discover_scenes",
    "dump_scenes",
    "empty_roles",
    "load_scenes",
    "parse_scenes",
    "product_paths",
    "role_mask",
    "scene_to_dict",
    "scenes_json",
    "slug",
]

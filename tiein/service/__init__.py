"""The answers tiein gives, as JSON-ready dicts: the one read path of the CLI, the HTTP API (its
routes and the analyst's HTML page) and batch export, so they never disagree.

Every function takes an open :class:`tiein.graph.base.GraphStore` and returns plain dicts/lists of
JSON types (str, int, float, bool, None), typed by :mod:`tiein.service.types` (the API's response
models in :mod:`tiein.api.schemas` declare the same fields). The shapes are the public schema;
change them only additively. Arguments are checked here (kind: :func:`tiein.model.check_kind`, k:
:func:`tiein.model.check_k`, mix: :func:`tiein.model.parse_mix`); a bad one is a ConfigError.

- :func:`related_payload`: ``{"product", "kind", "related": [row, ...]}``, each row the related
  product's fields, ``kind``, ``score``, ``evidence`` and the seller-sayable ``explanation_zh`` /
  ``explanation_en`` built from the evidence (kind ``next``: what customers buy next).
- :func:`product_payload`: one product's fields.
- :func:`neighbourhood_payload`: the product page's data (related rows of every kind, bundle).
- :func:`bundle_payload`: :meth:`tiein.bundles.Bundle.to_dict` (``scene`` / ``mix`` / ``discount``).
- :func:`addons_payload`: :meth:`tiein.bundles.Addons.to_dict`.
- :func:`scenes_payload`, :func:`scene_payload`: the scenes, one scene with its products.
- :func:`search_payload`: products by title meaning (an embedding index's searcher).
- :func:`stats_payload`, :func:`health_payload`: the graph's counts and build meta.
- :func:`cypher_payload`: one read-only analyst Cypher query.
- :func:`rules_payload`, :func:`import_rules`, :func:`remove_rules`: the merchant's rules
  (:mod:`tiein.rules`), applied by every list answer above (pins first, blocks out, boosts);
  :class:`Filters` narrow related, bundle add-ons, cart add-ons and search.

List answers carry their rows as ``items`` (the stable name; ``related`` / ``results`` are the
same rows under the older names), each row with ``explanation: {zh, en}``.

Modules: :mod:`~tiein.service.related`, :mod:`~tiein.service.bundle`,
:mod:`~tiein.service.catalog`, :mod:`~tiein.service.analyst`, :mod:`~tiein.service.types`.
"""

from tiein.model import MAX_K, check_k, check_kind, parse_mix
from tiein.rules import Filters, RuleSet, import_rules, read_rules_file, remove_rules, rules_payload
from tiein.service.analyst import CYPHER_LIMIT, cypher_payload
from tiein.service.bundle import (
    RULE_OPTIONS,
    addons_payload,
    bundle_payload,
    bundle_rules,
    check_discount,
    shop_bundle_rules,
)
from tiein.service.catalog import (
    Searcher,
    health_payload,
    scene_payload,
    scenes_payload,
    search_payload,
    stats_payload,
)
from tiein.service.related import (
    FEEDBACK_POOL,
    PAGE_K,
    explained,
    neighbourhood_payload,
    product_payload,
    related_payload,
)
from tiein.service.types import (
    AddonsPayload,
    BundlePayload,
    CypherPayload,
    HealthPayload,
    NeighbourhoodPayload,
    RelatedPayload,
    RulesPayload,
    SceneDetailPayload,
    ScenesPayload,
    SearchPayload,
    StatsPayload,
)

__all__ = [
    "CYPHER_LIMIT",
    "FEEDBACK_POOL",
    "MAX_K",
    "PAGE_K",
    "RULE_OPTIONS",
    "AddonsPayload",
    "BundlePayload",
    "CypherPayload",
    "Filters",
    "HealthPayload",
    "NeighbourhoodPayload",
    "RelatedPayload",
    "RuleSet",
    "RulesPayload",
    "SceneDetailPayload",
    "ScenesPayload",
    "SearchPayload",
    "Searcher",
    "StatsPayload",
    "addons_payload",
    "bundle_payload",
    "bundle_rules",
    "shop_bundle_rules",
    "check_discount",
    "check_k",
    "check_kind",
    "cypher_payload",
    "explained",
    "health_payload",
    "import_rules",
    "neighbourhood_payload",
    "parse_mix",
    "product_payload",
    "read_rules_file",
    "related_payload",
    "remove_rules",
    "rules_payload",
    "scene_payload",
    "scenes_payload",
    "search_payload",
    "stats_payload",
]

"""Every Cypher statement the Neo4j store runs, as named constants (Cypher 5, Neo4j 5).

Rules (style.md): values are always ``$parameters``; labels and relationship types cannot be
parameters in Cypher 5, so the statements that vary by label or type are generated HERE, once, at
import time, from the fixed whitelists :data:`NODE_KEYS` and :data:`REL_ENDPOINTS` (constant
strings mirroring graph/build.py's NODE_SCHEMAS / REL_ENDPOINTS; a test checks they agree).
Nothing a user types ever reaches a query text. The store picks a statement with a dict lookup
(``CREATE_RELS[rel_type]``); an unknown key is a KeyError, never a new query.

tests/test_neo4j_cypher.py feeds every string constant of this module (dict values included)
except the names in :data:`NOT_CYPHER` to Neo4j's own Cypher parser and semantic analyser
(tools/cypher-check), so a typo here fails CI without a Neo4j server.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- whitelists
# Node label -> key property (the first column of tiein.graph.build.NODE_SCHEMAS[label]).
NODE_KEYS: dict[str, str] = {
    "Product": "product_id",
    "Category": "category_id",
    "Brand": "name",
    "Attribute": "attribute_id",
    "Scene": "scene_id",
    "Evidence": "evidence_id",
}

# Relationship type -> (start label, end label), as tiein.graph.build.REL_ENDPOINTS.
REL_ENDPOINTS: dict[str, tuple[str, str]] = {
    "IN_CATEGORY": ("Product", "Category"),
    "CHILD_OF": ("Category", "Category"),
    "HAS_BRAND": ("Product", "Brand"),
    "HAS_ATTRIBUTE": ("Product", "Attribute"),
    "IN_SCENE": ("Product", "Scene"),
    "CO_PURCHASED": ("Product", "Product"),
    "CO_VIEWED": ("Product", "Product"),
    "COMPLEMENT": ("Product", "Product"),
    "SUBSTITUTE": ("Product", "Product"),
    "UPSELL": ("Product", "Product"),
    "SAME_SERIES": ("Product", "Product"),
    "NEXT_PURCHASE": ("Product", "Product"),
}

# The label of the single node holding the meta of the last load (JSON in property ``json``).
META_LABEL = "TieinMeta"

# The merchant's curated rules (tiein.rules): one :Rule node per rule (its fields as properties,
# readable in Neo4j Browser) and one :TieinRules node with the rules' version. Neither label is in
# NODE_KEYS, so a load (which deletes by those labels) never touches them.
RULE_LABEL = "Rule"
RULES_LABEL = "TieinRules"

# Module constants that are data, not Cypher (the grammar test skips them).
NOT_CYPHER = frozenset(
    {"NODE_KEYS", "REL_ENDPOINTS", "META_LABEL", "NOT_CYPHER", "PRODUCT_RETURN", "RULE_LABEL", "RULES_LABEL"}
)

# ----------------------------------------------------------------------------- schema
# Uniqueness constraints (each backed by a range index: every key lookup below uses it).
# Run in auto-commit transactions before a load: Neo4j refuses schema and data changes in one
# transaction. IF NOT EXISTS makes them idempotent.
CONSTRAINTS: dict[str, str] = {
    label: (
        f"CREATE CONSTRAINT tiein_{label.lower()}_key IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
    )
    for label, key in NODE_KEYS.items()
}
# Analysts search titles with CONTAINS / STARTS WITH (Chinese titles included): a text index.
PRODUCT_TITLE_INDEX = "CREATE TEXT INDEX tiein_product_title IF NOT EXISTS FOR (n:Product) ON (n.title)"
# Category names are matched by analysts (`MATCH (c:Category {name: 'tents'})`).
CATEGORY_NAME_INDEX = "CREATE INDEX tiein_category_name IF NOT EXISTS FOR (n:Category) ON (n.name)"
# Every schema statement, in order: run before a load (Neo4jStore) and written to schema.cypher
# for an offline import (tiein export-graph).
SCHEMA = (*CONSTRAINTS.values(), PRODUCT_TITLE_INDEX, CATEGORY_NAME_INDEX)

# ----------------------------------------------------------------------------- load (one transaction)
# Deleting by label only touches tiein's own graph; other data in the database is left alone.
DELETE_NODES: dict[str, str] = {label: f"MATCH (n:{label}) DETACH DELETE n" for label in NODE_KEYS}
DELETE_META = f"MATCH (m:{META_LABEL}) DELETE m"

# $rows: list of maps, one per node, keys = the table's columns. SET n = row drops null values
# (Neo4j has no null properties), exactly like an absent value in the embedded store.
CREATE_NODES: dict[str, str] = {
    label: f"UNWIND $rows AS row CREATE (n:{label}) SET n = row RETURN count(n) AS created"
    for label in NODE_KEYS
}

# $rows: list of {src, dst, props}; both endpoints must exist (tiein.graph.build validates that, and
# the store compares `created` with the batch size, so a lost edge fails the load).
CREATE_RELS: dict[str, str] = {
    rel_type: (
        "UNWIND $rows AS row "
        f"MATCH (a:{start} {{{NODE_KEYS[start]}: row.src}}) "
        f"MATCH (b:{end} {{{NODE_KEYS[end]}: row.dst}}) "
        f"CREATE (a)-[r:{rel_type}]->(b) SET r = row.props "
        "RETURN count(r) AS created"
    )
    for rel_type, (start, end) in REL_ENDPOINTS.items()
}

CREATE_META = f"CREATE (m:{META_LABEL} {{json: $json}})"

# ----------------------------------------------------------------------------- incremental apply (one transaction)
# GraphStore.apply (tiein.graph.base.GraphDelta): delete relationships by (src, dst), delete nodes by
# key, then CREATE_NODES / SET changed nodes / CREATE_RELS, all in one write transaction.
DELETE_RELS_BY_KEY: dict[str, str] = {
    rel_type: (
        "UNWIND $rows AS row "
        f"MATCH (a:{start} {{{NODE_KEYS[start]}: row.src}})-[r:{rel_type}]->(b:{end} {{{NODE_KEYS[end]}: row.dst}}) "
        "DELETE r"
    )
    for rel_type, (start, end) in REL_ENDPOINTS.items()
}
DELETE_NODES_BY_KEY: dict[str, str] = {
    label: f"UNWIND $keys AS key MATCH (n:{label} {{{k}: key}}) DETACH DELETE n"
    for label, k in NODE_KEYS.items()
}
# $rows as CREATE_NODES; ``SET n = row`` replaces every property (null ones are removed).
UPDATE_NODES: dict[str, str] = {
    label: f"UNWIND $rows AS row MATCH (n:{label} {{{k}: row.{k}}}) SET n = row RETURN count(n) AS updated"
    for label, k in NODE_KEYS.items()
}

# ----------------------------------------------------------------------------- reads
# tiein.graph.base.PRODUCT_FIELDS of a Product bound to `p`, as `RETURN` items.
PRODUCT_RETURN = (
    "p.product_id AS product_id, p.title AS title, p.category AS category, "
    "p.category_path AS category_path, p.brand AS brand, p.price AS price, p.stock AS stock, "
    "p.sales_role AS sales_role, p.product_type AS product_type"
)

PRODUCT = f"MATCH (p:Product {{product_id: $product_id}}) RETURN {PRODUCT_RETURN}"
PRODUCT_EXISTS = "MATCH (p:Product {product_id: $product_id}) RETURN count(p) > 0 AS found"

# Top-k outgoing relations of one kind. The ordering rule shared by every store
# (graph/base.py): score descending, then product_id ascending.
RELATED: dict[str, str] = {
    rel_type: (
        f"MATCH (:Product {{product_id: $product_id}})-[r:{rel_type}]->(p:Product) "
        "MATCH (e:Evidence {evidence_id: r.evidence_id}) "
        f"RETURN {PRODUCT_RETURN}, "
        "r.score AS score, r.n_ab AS n_ab, r.lift AS lift, r.confidence AS confidence, "
        "r.co_view AS co_view, r.similarity AS similarity, "
        "r.category_relation AS category_relation, r.price_ratio AS price_ratio, "
        "e.evidence AS evidence "
        "ORDER BY score DESC, product_id ASC LIMIT $k"
    )
    for rel_type in ("COMPLEMENT", "SUBSTITUTE", "UPSELL", "SAME_SERIES", "NEXT_PURCHASE")
}

# Counts of every label and type in one round trip (each count is served by Neo4j's count store).
STATS = " UNION ALL ".join(
    [f"MATCH (n:{label}) RETURN 'node' AS what, '{label}' AS name, count(n) AS count" for label in NODE_KEYS]
    + [
        f"MATCH ()-[r:{rel_type}]->() RETURN 'rel' AS what, '{rel_type}' AS name, count(r) AS count"
        for rel_type in REL_ENDPOINTS
    ]
)
META = f"MATCH (m:{META_LABEL}) RETURN m.json AS json"
# The evidence of the given Evidence keys (analysts' relationships get theirs: neo4j_support)
EVIDENCE_OF = "UNWIND $ids AS i MATCH (e:Evidence {evidence_id: i}) RETURN e.evidence_id, e.evidence"

# ----------------------------------------------------------------------------- merchant rules
RULES_VERSION = f"MATCH (s:{RULES_LABEL}) RETURN s.version AS version, s.updated_at AS updated_at"
RULES_ALL = f"MATCH (r:{RULE_LABEL}) RETURN properties(r) AS rule ORDER BY r.rule_id"
# First statement of a save: MERGE + SET takes the write lock on the one :TieinRules node, so
# concurrent saves run one after the other and each reads the version the previous one wrote.
RULES_LOCK = (
    f"MERGE (s:{RULES_LABEL} {{key: 'rules'}}) ON CREATE SET s.version = 0 "
    "SET s.locked_at = timestamp() RETURN s.version AS version"
)
RULES_DELETE = f"MATCH (r:{RULE_LABEL}) DELETE r"
# $rows: one map per rule; SET r = row drops null values (read back as absent = null).
RULES_CREATE = f"UNWIND $rows AS row CREATE (r:{RULE_LABEL}) SET r = row RETURN count(r) AS created"
RULES_SET_VERSION = (
    f"MATCH (s:{RULES_LABEL} {{key: 'rules'}}) SET s.version = $version, s.updated_at = $updated_at"
)

# Test suites only (tests/stores.py): empty the whole TEST database before each test.
WIPE_TEST_DATABASE = "MATCH (n) DETACH DELETE n"

# Cheapest round trip that proves the server answers (used by health checks).
PING = "RETURN 1 AS ok"

# ----------------------------------------------------------------------------- scenes
# One row per scene and role (a scene without members once, with 0); tiein.graph.base.scene_list folds them.
SCENES = (
    "MATCH (s:Scene) OPTIONAL MATCH (p:Product)-[m:IN_SCENE]->(s) "
    "RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source, m.role AS role, "
    "min(m.weight) AS weight, count(p) AS members"
)
# Scenes whose id or name is $key, compared lower-cased ($key_lower); tiein.graph.base.pick_scene chooses.
SCENE_LOOKUP = (
    "MATCH (s:Scene) WHERE s.scene_id = $key OR toLower(s.scene_id) = $key_lower "
    "OR toLower(s.name) = $key_lower "
    "RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source ORDER BY scene_id"
)
SCENE_MEMBERS = (
    "MATCH (p:Product)-[m:IN_SCENE]->(:Scene {scene_id: $scene_id}) "
    f"RETURN {PRODUCT_RETURN}, m.role AS role, m.weight AS weight ORDER BY weight, product_id"
)

# ----------------------------------------------------------------------------- bundles
# One scene's summary (as one entry of SCENES) without its products.
SCENE_SUMMARY = (
    "MATCH (s:Scene {scene_id: $scene_id}) OPTIONAL MATCH (p:Product)-[m:IN_SCENE]->(s) "
    "RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source, m.role AS role, "
    "min(m.weight) AS weight, count(p) AS members"
)
# A product with its scenes (one row per scene; one row of null scene fields when it has none;
# no row when the product is unknown). tiein.graph.base.product_scene_list shapes the scene part.
PRODUCT_SCENES = (
    "MATCH (p:Product {product_id: $product_id}) OPTIONAL MATCH (p)-[m:IN_SCENE]->(s:Scene) "
    f"RETURN {PRODUCT_RETURN}, s.scene_id AS scene_id, s.name AS name, s.source AS source, "
    "m.role AS role, m.weight AS weight"
)
# Roles in one scene of the given products (the slow path: bundle_candidates brings the roles of
# every complement already).
SCENE_ROLES_OF = (
    "UNWIND $product_ids AS id MATCH (p:Product {product_id: id})-[m:IN_SCENE]->(:Scene {scene_id: $scene_id}) "
    "RETURN p.product_id AS product_id, m.role AS role"
)
# The scenes and roles of each complement of a product: which scene role a bundle candidate fills.
COMPLEMENT_SCENES = (
    "MATCH (:Product {product_id: $product_id})-[:COMPLEMENT]->(q:Product)-[m:IN_SCENE]->(s:Scene) "
    "RETURN q.product_id AS product_id, s.scene_id AS scene_id, m.role AS role"
)
# Substitute pairs (a, b) of a product and of each of its complements: what a bundle checks.
SUBSTITUTE_PAIRS = (
    "MATCH (p:Product {product_id: $product_id})-[:SUBSTITUTE]->(s:Product) "
    "RETURN p.product_id AS a, s.product_id AS b "
    "UNION ALL "
    "MATCH (:Product {product_id: $product_id})-[:COMPLEMENT]->(q:Product)-[:SUBSTITUTE]->(s:Product) "
    "RETURN q.product_id AS a, s.product_id AS b"
)

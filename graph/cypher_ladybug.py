"""Every Cypher statement the embedded (LadybugDB) store runs, as named constants.

Values are always ``$params``; the only text put into a statement is a label or relationship
type from tiein.graph.build's fixed schema (never user input). The DDL is derived from
:data:`tiein.graph.build.NODE_SCHEMAS` / :data:`tiein.graph.build.REL_SCHEMAS` so the loaded tables and the
declared tables cannot drift apart.

LadybugDB dialect notes (Kùzu fork, see /work/shared/guides/measured.md): one label per node,
``CREATE NODE TABLE`` / ``CREATE REL TABLE`` before loading, ``COPY <table> FROM $arrow_table``
for bulk loads (the first column of a node table is its primary key; a relationship table's first
two columns are the FROM and TO keys).
"""

from __future__ import annotations

import pyarrow as pa

from tiein.graph.build import NODE_SCHEMAS, REL_ENDPOINTS, REL_SCHEMAS
from tiein.model import REL_TYPE

_LADYBUG_TYPE = {pa.string(): "STRING", pa.float64(): "DOUBLE", pa.int64(): "INT64"}


def _columns(schema: pa.Schema) -> list[str]:
    return [f"{f.name} {_LADYBUG_TYPE[f.type]}" for f in schema]


# ----------------------------------------------------------------------------- schema (DDL)
CREATE_NODE_TABLE: dict[str, str] = {
    label: f"CREATE NODE TABLE {label}({', '.join(_columns(schema))}, PRIMARY KEY ({schema.names[0]}))"
    for label, schema in NODE_SCHEMAS.items()
}
CREATE_REL_TABLE: dict[str, str] = {
    rel: "CREATE REL TABLE {}(FROM {} TO {}{})".format(
        rel,
        *REL_ENDPOINTS[rel],
        "".join(", " + c for c in _columns(REL_SCHEMAS[rel].remove(0).remove(0))),
    )
    for rel in REL_SCHEMAS
}

# ----------------------------------------------------------------------------- bulk load
# $rows is a pyarrow Table with the label's / type's columns in schema order.
COPY_TABLE: dict[str, str] = {name: f"COPY {name} FROM $rows" for name in (*NODE_SCHEMAS, *REL_SCHEMAS)}
CHECKPOINT = "CHECKPOINT"
# prefixed to an analyst's query to see LadybugDB's plan of it (ladybug_store.refuse_unsafe_plan)
EXPLAIN_PREFIX = "EXPLAIN "

# ----------------------------------------------------------------------------- reads
_PRODUCT_RETURN = (
    "q.product_id AS product_id, q.title AS title, q.category AS category, "
    "q.category_path AS category_path, q.brand AS brand, q.price AS price, q.stock AS stock, "
    "q.sales_role AS sales_role, q.product_type AS product_type"
)

PRODUCT = f"MATCH (q:Product {{product_id: $product_id}}) RETURN {_PRODUCT_RETURN}"

# One statement per relation kind (a relationship type cannot be a parameter).
RELATED: dict[str, str] = {
    kind: (
        f"MATCH (p:Product {{product_id: $product_id}})-[r:{rel}]->(q:Product) "
        # the key passed on by name: LadybugDB then looks the Evidence node up by its key
        # (0.2 ms) instead of scanning the table for r.evidence_id (~185 ms at 913k relations)
        f"WITH q, r, r.evidence_id AS i MATCH (e:Evidence {{evidence_id: i}}) "
        f"RETURN {_PRODUCT_RETURN}, r.score AS score, r.n_ab AS n_ab, r.lift AS lift, "
        "r.confidence AS confidence, r.co_view AS co_view, r.similarity AS similarity, "
        "r.category_relation AS category_relation, r.price_ratio AS price_ratio, "
        "e.evidence AS evidence "
        "ORDER BY r.score DESC, q.product_id ASC"
    )
    for kind, rel in REL_TYPE.items()
}
# The evidence of the given Evidence keys (analysts' relationships get theirs: ladybug_support)
EVIDENCE_OF = "UNWIND $ids AS i MATCH (e:Evidence {evidence_id: i}) RETURN e.evidence_id, e.evidence"
# No ``LIMIT $k``: in LadybugDB 0.22 a parameter in LIMIT costs ~1.2 ms per call (0.3 ms without);
# the store reads only the first k rows of the sorted result instead.

COUNT_NODES: dict[str, str] = {label: f"MATCH (n:{label}) RETURN count(n) AS n" for label in NODE_SCHEMAS}
COUNT_RELS: dict[str, str] = {rel: f"MATCH ()-[r:{rel}]->() RETURN count(r) AS n" for rel in REL_SCHEMAS}

# ----------------------------------------------------------------------------- scenes
# One row per scene and role (a scene without members once, with 0); tiein.graph.base.scene_list folds them.
SCENES = (
    "MATCH (s:Scene) OPTIONAL MATCH (p:Product)-[m:IN_SCENE]->(s) "
    "RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source, m.role AS role, "
    "min(m.weight) AS weight, count(p) AS members"
)
# Scenes whose id or name is $key, compared lower-cased ($key_lower); tiein.graph.base.pick_scene chooses.
SCENE_LOOKUP = (
    "MATCH (s:Scene) WHERE s.scene_id = $key OR lower(s.scene_id) = $key_lower OR lower(s.name) = $key_lower "
    "RETURN s.scene_id AS scene_id, s.name AS name, s.source AS source ORDER BY scene_id"
)
SCENE_MEMBERS = (
    "MATCH (q:Product)-[m:IN_SCENE]->(s:Scene {scene_id: $scene_id}) "
    f"RETURN {_PRODUCT_RETURN}, m.role AS role, m.weight AS weight ORDER BY weight, product_id"
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
    "MATCH (q:Product {product_id: $product_id}) OPTIONAL MATCH (q)-[m:IN_SCENE]->(s:Scene) "
    f"RETURN {_PRODUCT_RETURN}, s.scene_id AS scene_id, s.name AS name, s.source AS source, "
    "m.role AS role, m.weight AS weight"
)
# Roles in one scene of the given products (the slow path: bundle_candidates brings the roles of
# every complement already).
SCENE_ROLES_OF = (
    "UNWIND $product_ids AS id MATCH (q:Product {product_id: id})-[m:IN_SCENE]->(:Scene {scene_id: $scene_id}) "
    "RETURN q.product_id AS product_id, m.role AS role"
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
    "MATCH (p:Product {product_id: $product_id})-[:COMPLEMENT]->(q:Product)-[:SUBSTITUTE]->(s:Product) "
    "RETURN q.product_id AS a, s.product_id AS b"
)

# ----------------------------------------------------------------------------- incremental apply
# GraphStore.apply (tiein.graph.base.GraphDelta) on a copy of the current generation. $rows is a pyarrow
# Table whose columns are renamed ``c_<column>`` (LOAD FROM binds columns by name; the prefix
# keeps names such as ``key`` / ``value`` clear of keywords). New nodes and relationships go in
# with COPY_TABLE (LadybugDB appends to non-empty tables).
NODE_KEY: dict[str, str] = {label: schema.names[0] for label, schema in NODE_SCHEMAS.items()}

DELETE_NODES_BY_KEY: dict[str, str] = {
    label: f"LOAD FROM $rows MATCH (n:{label} {{{key}: c_{key}}}) DETACH DELETE n"
    for label, key in NODE_KEY.items()
}
UPDATE_NODES: dict[str, str] = {
    label: f"LOAD FROM $rows MATCH (n:{label} {{{schema.names[0]}: c_{schema.names[0]}}}) SET "
    + ", ".join(f"n.{c} = c_{c}" for c in schema.names[1:])
    for label, schema in NODE_SCHEMAS.items()
    if len(schema.names) > 1
}
DELETE_RELS_BY_KEY: dict[str, str] = {
    rel: (
        f"LOAD FROM $rows MATCH (a:{start} {{{NODE_KEY[start]}: c_src}})-[r:{rel}]->"
        f"(b:{end} {{{NODE_KEY[end]}: c_dst}}) DELETE r"
    )
    for rel, (start, end) in REL_ENDPOINTS.items()
}

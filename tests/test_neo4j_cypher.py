"""Every Neo4j Cypher statement tiein ships is checked by Neo4j's own Cypher 5 parser and semantic
analyser (npm ``@neo4j-cypher/language-support``, run by tools/cypher-check/check.cjs), since no
Neo4j server can run here.

Checked: every string constant of graph/cypher_neo4j.py (dict values included, names in its
NOT_CYPHER excepted), every ```cypher example of docs/schema.md (they are meant to run on both
stores) and the bulk reads of graph/snapshot.py (they run on both stores too). Negative controls prove the checker is not a no-op.

Needs ``node`` and ``npm ci --prefix tools/cypher-check``; skipped without them locally, but a
FAILURE when the environment variable CI is "true".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tiein.graph import cypher_neo4j as cy

ROOT = Path(__file__).resolve().parents[1]
CHECKER_DIR = ROOT / "tools" / "cypher-check"
CHECKER = CHECKER_DIR / "check.cjs"
PACKAGE = CHECKER_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
INSTALL = "npm ci --prefix tools/cypher-check"


def _need_checker() -> str:
    """Path of ``node``; skip (locally) or fail (CI=true) when the checker cannot run."""
    node = shutil.which("node")
    why = None
    if node is None:
        why = f"node is not installed (install Node.js >= 18.18, then: {INSTALL})"
    elif not PACKAGE.is_dir():
        why = f"the Cypher checker is not installed; run: {INSTALL}"
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)
    assert node is not None
    return node


def run_checker(queries: dict[str, str], *, labels: bool = True) -> dict[str, Any]:
    node = _need_checker()
    payload: dict[str, Any] = {"queries": queries}
    if labels:
        payload["labels"] = [*cy.NODE_KEYS, cy.META_LABEL, cy.RULE_LABEL, cy.RULES_LABEL]
        payload["relationshipTypes"] = list(cy.REL_ENDPOINTS)
    proc = subprocess.run(
        [node, str(CHECKER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), f"checker crashed ({proc.returncode}): {proc.stderr}"
    out: dict[str, Any] = json.loads(proc.stdout)
    assert set(out["results"]) == set(queries)
    return out


def module_queries() -> dict[str, str]:
    """Every Cypher string constant of graph/cypher_neo4j.py, named ``CONST`` or ``CONST[key]``."""
    found: dict[str, str] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, str):
            found[name] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}[{k}]", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{name}[{i}]", v)

    for name, value in vars(cy).items():
        if name.isupper() and name not in cy.NOT_CYPHER:
            walk(name, value)
    return found


def schema_md_queries() -> dict[str, str]:
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```cypher\n(.*?)```", text, flags=re.DOTALL)
    return {f"schema.md example {i + 1}": b.strip() for i, b in enumerate(blocks)}


def snapshot_queries() -> dict[str, str]:
    """The bulk reads of graph/snapshot.py (plain Cypher both stores run), named ``snapshot:NAME``."""
    from tiein.graph import snapshot

    found = {
        f"snapshot:{n}": getattr(snapshot, n) for n in ("PRODUCTS_ALL", "SCENES_ALL", "SCENE_MEMBERS_ALL")
    }
    found |= {f"snapshot:RELATIONS_ALL[{k}]": q for k, q in snapshot.RELATIONS_ALL.items()}
    from tiein.lists import pairings  # the merchant lists' bulk reads run on both stores too

    found |= {f"lists:{n}": getattr(pairings, n) for n in ("PAIRS_QUERY", "PAIR_DETAILS_QUERY")}
    return found


# Negative controls, checked in the same run (one node start-up): a no-op checker fails on them.
CONTROLS = {
    "control:syntax": "MATCH (n:Product RETURN n",
    "control:keyword": "RETRN 1",
    "control:unbound": "MATCH (n:Product) RETURN m",
    "control:function": "MATCH (n:Product) RETURN nosuchfunction(n)",
    "control:label": "MATCH (n:Prodcut) RETURN n",
    "control:fine": "MATCH (n:Product {product_id: $id}) RETURN n.title AS title",
}


@pytest.fixture(scope="module")
def checked() -> dict[str, Any]:
    queries = {**module_queries(), **schema_md_queries(), **snapshot_queries()}
    assert not set(queries) & set(CONTROLS)
    out = run_checker({**queries, **CONTROLS})
    out["controls"] = {name: out["results"].pop(name) for name in CONTROLS}
    return out


def test_every_statement_passes_neo4j_parser(checked: dict[str, Any]) -> None:
    assert checked["checker"]["package"] == "@neo4j-cypher/language-support"
    assert checked["checker"]["cypherVersion"] == "CYPHER 5"
    assert checked["checker"]["functionsChecked"], (
        "built-in function list missing: unknown functions unchecked"
    )
    bad = {
        name: [f"{d['line']}:{d['column']} {d['message']}" for d in r["errors"] + r["warnings"]]
        for name, r in checked["results"].items()
        if r["errors"] or r["warnings"]
    }
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)


def test_collection_is_complete(checked: dict[str, Any]) -> None:
    """Every family covers its whole whitelist, schema.md examples were found, and each statement
    uses exactly the parameters the store passes to it."""
    results = checked["results"]
    assert len([n for n in results if n.startswith("schema.md")]) >= 10
    from tiein.model import RELATION_KINDS

    assert {f"snapshot:RELATIONS_ALL[{k}]" for k in RELATION_KINDS} <= set(results)
    for label in cy.NODE_KEYS:
        assert {f"CONSTRAINTS[{label}]", f"CREATE_NODES[{label}]", f"DELETE_NODES[{label}]"} <= set(results)
    for rel in cy.REL_ENDPOINTS:
        assert f"CREATE_RELS[{rel}]" in results
    for rel in ("COMPLEMENT", "SUBSTITUTE", "UPSELL", "SAME_SERIES", "NEXT_PURCHASE"):
        assert f"RELATED[{rel}]" in results
    params = {name: set(r["parameters"]) for name, r in results.items()}
    for name, used in params.items():
        if name.startswith(("CREATE_NODES[", "CREATE_RELS[")):
            assert used == {"rows"}, name
        elif name.startswith("RELATED["):
            assert used == {"product_id", "k"}, name
        elif name in ("PRODUCT", "PRODUCT_EXISTS"):
            assert used == {"product_id"}, name
        elif name == "CREATE_META":
            assert used == {"json"}, name
        elif name == "SCENE_LOOKUP":
            assert used == {"key", "key_lower"}, name
        elif name == "SCENE_MEMBERS":
            assert used == {"scene_id"}, name
        elif name in BUNDLE_PARAMS:
            assert used == BUNDLE_PARAMS[name], name
        elif name in RULE_PARAMS:  # the merchant rules (tiein.rules)
            assert used == RULE_PARAMS[name], name
        elif name.startswith(tuple(APPLY_PARAMS)):
            assert used == APPLY_PARAMS[name.split("[")[0] + "["], name
        elif name in ("lists:PAIR_DETAILS_QUERY", "EVIDENCE_OF"):  # the shown pairs' anchors; evidence keys
            assert used == {"ids"}, name
        elif not name.startswith("schema.md"):
            assert used == set(), name


RULE_PARAMS = {"RULES_CREATE": {"rows"}, "RULES_SET_VERSION": {"version", "updated_at"}}

# The bundle reads (issue 3) and the parameters each takes.
BUNDLE_PARAMS = {
    "SCENE_SUMMARY": {"scene_id"},
    "PRODUCT_SCENES": {"product_id"},
    "SCENE_ROLES_OF": {"scene_id", "product_ids"},
    "SUBSTITUTE_PAIRS": {"product_id"},
    "COMPLEMENT_SCENES": {"product_id"},
}


def test_bundle_statements_are_checked(checked: dict[str, Any]) -> None:
    """The bundle reads are in the checked collection (not hidden in NOT_CYPHER) and parse."""
    for name in BUNDLE_PARAMS:
        assert name in checked["results"], name
        r = checked["results"][name]
        assert r["errors"] == [] and r["warnings"] == [], (name, r)


def test_whitelists_match_graph_build() -> None:
    from tiein.graph.build import NODE_SCHEMAS, REL_ENDPOINTS

    assert cy.REL_ENDPOINTS == REL_ENDPOINTS
    assert cy.NODE_KEYS == {label: schema.names[0] for label, schema in NODE_SCHEMAS.items()}


def test_checker_reports_broken_queries(checked: dict[str, Any]) -> None:
    """Negative controls: a checker that reports nothing fails here."""
    r = {name.removeprefix("control:"): res for name, res in checked["controls"].items()}
    for name in ("syntax", "keyword", "unbound", "function"):
        assert r[name]["errors"], name
    assert "Variable `m` not defined" in r["unbound"]["errors"][0]["message"]
    assert r["syntax"]["errors"][0]["line"] == 1 and r["syntax"]["errors"][0]["column"] == 18
    assert not r["label"]["errors"] and "Prodcut" in r["label"]["warnings"][0]["message"]
    assert r["fine"] == {"errors": [], "warnings": [], "parameters": ["id"]}


def test_every_relation_kind_has_a_related_statement() -> None:
    """A kind added to tiein.model (e.g. "next") must come with its Neo4j RELATED statement."""
    from tiein.model import REL_TYPE, RELATION_KINDS

    assert {REL_TYPE[k] for k in RELATION_KINDS} == set(cy.RELATED)
    assert "sales_role" in cy.PRODUCT_RETURN


# The incremental apply statements (issue 5) and the parameters each takes.
APPLY_PARAMS = {"DELETE_RELS_BY_KEY[": {"rows"}, "DELETE_NODES_BY_KEY[": {"keys"}, "UPDATE_NODES[": {"rows"}}


def test_apply_statements_are_checked(checked: dict[str, Any]) -> None:
    """GraphStore.apply's statements exist for every label / type and pass Neo4j's parser."""
    results = checked["results"]
    names = [f"DELETE_RELS_BY_KEY[{rel}]" for rel in cy.REL_ENDPOINTS]
    names += [
        f"{family}[{label}]" for label in cy.NODE_KEYS for family in ("DELETE_NODES_BY_KEY", "UPDATE_NODES")
    ]
    for name in names:
        assert name in results, name
        assert results[name]["errors"] == [] and results[name]["warnings"] == [], (name, results[name])

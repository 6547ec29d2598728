"""Imports go one way (tiein/__init__.py draws the layers): a module imports only from its own
layer or lower ones. The test reads every module's imports (also those inside functions) with
``ast`` and fails naming each import that points up; it also shows that it would catch one."""

from __future__ import annotations

import ast
from pathlib import Path

import tiein

ROOT = Path(tiein.__file__).resolve().parent

# lowest first; a module's layer is that of its longest matching prefix
LAYERS: dict[str, int] = {
    "tiein": 0,
    "tiein.errors": 0,
    "tiein.model": 0,
    "tiein.faults": 0,
    "tiein.durable": 0,
    "tiein.money": 0,
    "tiein.shop_config": 0,
    "tiein.sysmem": 0,
    "tiein.jit": 0,
    "tiein.loaders": 1,
    "tiein.embeddings": 1,
    "tiein.graph": 1,
    "tiein.mining": 2,
    "tiein.spark_mining": 2,
    "tiein.spark_classify": 2,
    "tiein.classify_buckets": 2,
    "tiein.features": 2,
    "tiein.candidate_pairs": 2,
    "tiein.candidate_jit": 2,
    "tiein.relations": 2,
    "tiein.content_sets": 2,
    "tiein.next_purchase": 2,
    "tiein.ranker": 2,
    "tiein.typer": 2,
    "tiein.segments": 2,
    "tiein.basket_pairs": 2,
    "tiein.product_type": 2,
    "tiein.type_fallback": 2,
    "tiein.scenes": 2,
    "tiein.explain": 2,
    "tiein.season": 2,
    "tiein.checks": 2,
    "tiein.options": 3,
    "tiein.state": 3,
    "tiein.merge": 3,
    "tiein.home": 3,
    "tiein.pipeline": 3,
    "tiein.stages": 3,
    "tiein.update": 3,
    "tiein.update_recompute": 3,
    "tiein.rollback": 3,
    "tiein.service": 4,
    "tiein.lists": 4,
    "tiein.lineup": 4,
    "tiein.rules": 4,
    "tiein.bundles": 4,
    "tiein.feedback": 4,
    "tiein.cypher": 4,
    "tiein.cypher_worker": 4,
    "tiein.api": 5,
    "tiein.api.guard": 5,
    "tiein.cli": 5,
    "tiein.export": 5,
}
NAMES = (
    "contracts and errors",
    "loaders / embeddings / graph",
    "mining / relations",
    "pipeline",
    "service",
    "api / cli / export",
)


def layer(module: str) -> int:
    best = ""
    for prefix in LAYERS:
        covers = module == prefix or (prefix != "tiein" and module.startswith(prefix + "."))
        if covers and len(prefix) > len(best):
            best = prefix
    if not best:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (tests/test_layers.py)")
    return LAYERS[best]


def modules() -> dict[str, Path]:
    """Every module of the package, symlinked subpackages included."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")) + sorted(
        p for sub in ("graph", "loaders", "embeddings") for p in (ROOT / sub).resolve().rglob("*.py")
    ):
        if "__pycache__" in path.parts:
            continue
        try:
            rel = path.relative_to(ROOT)
        except ValueError:  # a file of a symlinked subpackage
            sub = next(s for s in ("graph", "loaders", "embeddings") if (ROOT / s).resolve() in path.parents)
            rel = Path(sub) / path.relative_to((ROOT / sub).resolve())
        parts = ["tiein", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of tiein in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "tiein":
                found += [(node.lineno, f"tiein.{a.name}") for a in node.names]
            elif node.module.startswith("tiein."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tiein")]
    return found


def upward(module: str, source: str) -> list[str]:
    """The imports of ``module`` that point to a higher layer, as readable lines."""
    mine = layer(module)
    return [
        f"{module}:{line} imports {target} ({NAMES[layer(target)]}) from the {NAMES[mine]} layer"
        for line, target in imports(source)
        if not target.startswith("tiein.__") and layer(target) > mine
    ]


def test_imports_point_down() -> None:
    found = modules()
    assert {"tiein.graph.base", "tiein.loaders.read", "tiein.embeddings.index", "tiein.api"} <= set(found)
    bad = [b for m, p in found.items() for b in upward(m, p.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def test_an_upward_import_is_caught() -> None:
    src = "def f():\n    from tiein.service import related\n    return related\n"
    assert upward("tiein.graph.base", src) == [
        "tiein.graph.base:2 imports tiein.service (service) from the loaders / embeddings / graph layer"
    ]
    assert upward("tiein.api", src) == []


def test_the_wheel_holds_only_tiein(tmp_path: Path) -> None:
    """`pip install .` puts one package into site-packages: tiein, with tiein.graph,
    tiein.loaders and tiein.embeddings (and their data files) inside it; no top-level graph."""
    import subprocess
    import sys
    import zipfile

    root = ROOT.parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(root),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("tiein-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"tiein", wheel.name.split("-py")[0] + ".dist-info"}
    for sub in (
        "graph/base.py",
        "graph/cypher_guard.py",
        "loaders/read.py",
        "embeddings/index.py",
        "loaders/mappings/online_retail.yaml",
        "templates/",
    ):
        assert any(n.startswith(f"tiein/{sub}") for n in names), sub

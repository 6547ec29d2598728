"""mypy (strict, configured in pyproject) checks the linked subpackages too: a deliberate type
error dropped into graph/, loaders/ and embeddings/ (which install as tiein.graph, tiein.loaders,
tiein.embeddings) is reported, and the tree itself is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MYPY = shutil.which("mypy", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(MYPY is None, reason="mypy is not installed (pip install -e '.[dev]')")
def test_mypy_sees_every_subpackage_and_is_strict() -> None:
    probes = [ROOT / sub / "_mypy_probe.py" for sub in ("graph", "loaders", "embeddings")]
    try:
        for p in probes:
            p.write_text('def f(x):\n    return x\n\n\nn: int = "not a number"\n', encoding="utf-8")
        out = subprocess.run([str(MYPY)], cwd=ROOT, capture_output=True, text=True, timeout=600).stdout
    finally:
        for p in probes:
            p.unlink(missing_ok=True)
    for sub in ("graph", "loaders", "embeddings"):
        probe = f"tiein/{sub}/_mypy_probe.py"
        assert f"{probe}:5: error: Incompatible types in assignment" in out, out
        assert f"{probe}:1: error: Function is missing a type annotation" in out, out  # strict
    clean = subprocess.run([str(MYPY)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stdout

"""bench/update.py runs end to end on a small slice of Online Retail (the full run: python bench/update.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_update_small(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import update as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    r = bench.main(
        ["--sample", "400", "--fraction", "0.1", "--no-embeddings", "--threads", "1", "--keep", str(tmp_path)]
    )
    assert r["equal"] is True and r["unequal_tables"] == []
    assert 0 < r["new_lines"] < r["lines"]
    assert r["update_s"] > 0 and r["full_build_s"] > 0
    assert r["stock_path"] == "stock" and r["stock_delta"]["changed_nodes"] > 0
    assert r["stock_delta"]["upserted_rels"] == 0
    out = capsys.readouterr().out
    assert "graph after update == full build: yes" in out and "update / full build:" in out

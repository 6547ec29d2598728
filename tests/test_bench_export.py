"""bench/export.py runs end to end on a small synthetic graph (the full run: python bench/export.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_export_small(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import export as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    results = bench.main(
        ["--skip-online-retail", "--synthetic", "300", "--edges", "6000", "--cache", str(tmp_path)]
    )
    assert [(r["what"], r["format"]) for r in results] == [
        (w, f) for w in ("bundles", "related") for f in ("csv", "jsonl", "parquet")
    ]
    assert all(r["anchors"] == 300 for r in results)
    jsonl = {r["what"]: r["rows"] for r in results if r["format"] == "jsonl"}
    assert jsonl == {"bundles": 300, "related": 300}  # one line per anchor
    flat = {(r["what"], r["format"]): r["rows"] for r in results if r["format"] != "jsonl"}
    assert flat[("related", "csv")] == flat[("related", "parquet")] > 0
    assert flat[("bundles", "csv")] == flat[("bundles", "parquet")] >= 300  # a row per item or per reason
    out = capsys.readouterr().out
    assert "synthetic_300: 300 products" in out and "within the 60 s target" in out
    assert (tmp_path / "synthetic-300-6000" / "graph" / "CURRENT").is_file()  # cached for the next run

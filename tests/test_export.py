"""Batch export (tiein/export.py, ``tiein export``) on the embedded store holding the hand-made
catalog of tests/test_store_contract.py: the three formats agree with each other and with the
live store's service answers, interrupted exports resume to the same bytes, and a failed export
leaves no file behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from test_store_contract import CATALOG, catalog

from tiein.errors import ConfigError, NotFound
from tiein.export import FORMATS, columns, export
from tiein.graph.base import GraphStore
from tiein.service import bundle_payload, related_payload

IDS = sorted(p[0] for p in CATALOG)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    from tiein.graph.ladybug_store import EmbeddedStore

    s = EmbeddedStore(tmp_path_factory.mktemp("export") / "graph")
    s.replace(catalog())
    yield s
    s.close()


def read_flat(path: Path, what: str) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        schema = columns(what)
        table = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
    assert table.schema.names == columns(what).names
    return table.to_pylist()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------- content
def test_related_all_formats_agree_with_the_live_store(store: GraphStore, tmp_path: Path) -> None:
    kinds = ["complement", "substitute"]
    for fmt in FORMATS:
        r = export(store, "related", tmp_path / f"related.{fmt}", fmt=fmt, kinds=kinds, k=2, chunk_size=3)
        assert (r.anchors, r.chunks) == (len(IDS), 3)
    # JSON lines: one per anchor and kind, exactly the service's answer on the live store
    expected = [related_payload(store, pid, kind, 2) for pid in IDS for kind in kinds]
    assert read_jsonl(tmp_path / "related.jsonl") == json.loads(json.dumps(expected))
    # flat: one row per related item, anchor repeated, evidence as JSON text
    flat = [
        (
            a["product"]["product_id"],
            a["kind"],
            i,
            r["product_id"],
            r["score"],
            r["evidence"],
            r["explanation_en"],
        )
        for a in expected
        for i, r in enumerate(a["related"], 1)
    ]
    for fmt in ("csv", "parquet"):
        rows = read_flat(tmp_path / f"related.{fmt}", "related")
        got = [
            (
                r["anchor_product_id"],
                r["kind"],
                r["rank"],
                r["product_id"],
                r["score"],
                json.loads(r["evidence"]),
                r["explanation_en"],
            )
            for r in rows
        ]
        assert got == flat, fmt
    rows = read_flat(tmp_path / "related.parquet", "related")
    assert rows == read_flat(tmp_path / "related.csv", "related")
    # by hand: complements of phone-a are case-a, then the 0.75 tie charger / film-a by id (k=2)
    comp = [(r["anchor_product_id"], r["rank"], r["product_id"]) for r in rows if r["kind"] == "complement"]
    assert comp == [
        ("case-a", 1, "film-a"),
        ("phone-a", 1, "case-a"),
        ("phone-a", 2, "charger"),
        ("phone-b", 1, "charger"),
    ]
    top = rows[[r["anchor_product_id"] for r in rows].index("phone-a")]
    assert (top["anchor_title"], top["anchor_price"], top["title"], top["price"], top["stock"]) == (
        "Phone A 128GB",
        699.0,
        "Phone A case 手机壳",
        19.99,
        100,
    )


def test_bundles_all_formats_agree_with_the_live_store(store: GraphStore, tmp_path: Path) -> None:
    for fmt in FORMATS:
        export(store, "bundles", tmp_path / f"b.{fmt}", fmt=fmt, size=3, chunk_size=2)
    expected = [bundle_payload(store, pid, size=3) for pid in IDS]
    assert read_jsonl(tmp_path / "b.jsonl") == json.loads(json.dumps(expected))
    rows = read_flat(tmp_path / "b.parquet", "bundles")
    assert rows == read_flat(tmp_path / "b.csv", "bundles")
    # one row per item, or one row with the reason when there is no bundle
    want = []
    for b in expected:
        reason = (b["reason"] or {}).get("code")
        items = [i["product"]["product_id"] for i in b["items"]] or [None]
        want += [(b["anchor"]["product_id"], reason, item, len(b["items"]), b["total"]) for item in items]
    got = [
        (r["anchor_product_id"], r["reason_code"], r["item_product_id"], r["items"], r["total"]) for r in rows
    ]
    assert got == want
    assert [r["anchor_product_id"] for r in rows] == sorted(r["anchor_product_id"] for r in rows)


def test_scene_limits_the_anchors(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "scene.jsonl"
    r = export(store, "related", out, fmt="jsonl", scene="新手机套装")  # by name
    assert r.anchors == 3
    assert [a["product"]["product_id"] for a in read_jsonl(out)] == ["case-a", "film-a", "phone-a"]
    with pytest.raises(NotFound):
        export(store, "related", tmp_path / "nope.csv", fmt="csv", scene="no such scene")
    assert not (tmp_path / "nope.csv").exists()


# ----------------------------------------------------------------------------- resume, atomicity
class Stop(Exception):
    pass


def stop_after(chunks: int, chunk_size: int):  # type: ignore[no-untyped-def]
    def progress(step: str, done: int, total: int) -> None:
        if done >= chunks * chunk_size:
            raise Stop(f"interrupted after {done} anchors")

    return progress


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("what", ["bundles", "related"])
def test_interrupted_export_resumes_to_the_same_bytes(
    store: GraphStore, tmp_path: Path, fmt: str, what: str
) -> None:
    whole = tmp_path / f"whole.{fmt}"
    first = export(store, what, whole, fmt=fmt, chunk_size=2, kinds=["complement", "series"])
    assert first.chunks == 4 and first.chunks_reused == 0

    out = tmp_path / f"resumed.{fmt}"
    with pytest.raises(Stop):
        export(
            store, what, out, fmt=fmt, chunk_size=2, kinds=["complement", "series"], progress=stop_after(2, 2)
        )
    assert not out.exists() and leftovers(tmp_path) == []
    parts = out.with_name(out.name + ".parts")
    assert len([p for p in parts.iterdir() if p.name.startswith("part-")]) == 2
    again = export(store, what, out, fmt=fmt, chunk_size=2, kinds=["complement", "series"])
    assert (again.chunks_reused, again.restarted) == (2, False)
    assert out.read_bytes() == whole.read_bytes()
    assert not parts.exists() and leftovers(tmp_path) == []


def test_another_export_discards_the_parts(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    with pytest.raises(Stop):
        export(store, "related", out, fmt="csv", chunk_size=2, k=5, progress=stop_after(2, 2))
    r = export(store, "related", out, fmt="csv", chunk_size=2, k=1)  # other options: start over
    assert (r.chunks_reused, r.restarted) == (0, True)
    assert max(row["rank"] for row in read_flat(out, "related")) == 1


def test_failed_export_leaves_no_file(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "b.parquet"
    with pytest.raises(Stop):
        export(store, "bundles", out, fmt="parquet", chunk_size=100, progress=stop_after(1, 1))
    assert not out.exists() and leftovers(tmp_path) == []
    out.write_bytes(b"previous export")  # a failed rerun keeps the previous file
    with pytest.raises(Stop):
        export(store, "bundles", out, fmt="parquet", chunk_size=1, k=3, progress=stop_after(3, 1))
    assert out.read_bytes() == b"previous export"


def test_bad_options_write_nothing(store: GraphStore, tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"what": "bundles", "fmt": "xls"}, "format"),
        (
            {"what": "related", "fmt": "csv", "layout": "bundle"},
            "for a csv, parquet or xlsx export of bundles",
        ),
        ({"what": "bundles", "fmt": "jsonl", "layout": "bundle"}, "one line per bundle already"),
        ({"what": "bundles", "fmt": "csv", "layout": "wide"}, "unknown layout"),
        ({"what": "bundles", "fmt": "parquet", "headers": "zh-en"}, "csv and xlsx"),
        ({"what": "bundles", "fmt": "xlsx", "bom": True}, "csv only"),
        ({"what": "pairs", "fmt": "csv"}, "unknown export"),
        ({"what": "related", "fmt": "csv", "kinds": ["bundle"]}, "relation kind"),
        ({"what": "related", "fmt": "csv", "k": 0}, "k must"),
        ({"what": "bundles", "fmt": "csv", "size": 1}, "size"),
        ({"what": "bundles", "fmt": "csv", "chunk_size": 0}, "chunk_size"),
        ({"what": "bundles", "fmt": "parquet", "bom": True}, "csv only"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ConfigError, match=match):
            export(store, out=tmp_path / "x.csv", **kwargs)
    with pytest.raises(ConfigError, match="directory"):
        export(store, "related", tmp_path, fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_export(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "bundles.csv"
    env = {k: v for k, v in os.environ.items() if k not in ("TIEIN_STORE", "TIEIN_HOME")}
    args = [
        "export",
        "related",
        "--format",
        "csv",
        "--out",
        str(out),
        "--kind",
        "substitute",
        "--store",
        str(store.path),
        "--quiet",
    ]  # type: ignore[attr-defined]
    proc = subprocess.run(
        [sys.executable, "-m", "tiein.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {out}: 2 rows for 7 products")
    rows = read_flat(out, "related")
    assert [(r["anchor_product_id"], r["product_id"]) for r in rows] == [
        ("phone-a", "phone-b"),
        ("phone-b", "phone-a"),
    ]
    # --bom: the same bytes after a UTF-8 byte-order mark (for Excel)
    excel = tmp_path / "excel.csv"
    args[args.index(str(out))] = str(excel)
    proc = subprocess.run(
        [sys.executable, "-m", "tiein.cli", *args, "--bom"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert excel.read_bytes() == b"\xef\xbb\xbf" + out.read_bytes()
    assert excel.read_text(encoding="utf-8-sig").startswith('"anchor_product_id"')
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiein.cli",
            "export",
            "bundles",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "s.csv"),
            "--scene",
            "nope",
            "--store",
            str(store.path),
        ],  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: scene 'nope'") and "Traceback" not in bad.stderr
    )

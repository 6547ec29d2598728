"""A damaged or missing store answers 503 with a clear message and no filesystem path; a full
disk answers 507; a feedback compaction killed half-way never doubles or loses an event.

Damage is done for real to a copy of the camping home (tests/test_api.py builds it once) under a
real uvicorn server; only the full disk is simulated (no filesystem can be filled here without
privileges), by making the Parquet writer raise ENOSPC as the OS would.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_api import assert_envelope, camping_home, serve_in_thread

from tiein.api import Settings, create_app
from tiein.faults import EXIT_CODE
from tiein.feedback import log_dir, read_log


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(camping_home(tmp_path_factory), dst)
    return dst


def current_gen(home: Path) -> Path:
    return home / "graph" / (home / "graph" / "CURRENT").read_text().strip()


def no_path(err: dict, home: Path) -> None:
    assert str(home) not in err["message"] and "/tmp" not in err["message"], err["message"]


@pytest.mark.parametrize("snapshot", [True, False])
def test_store_deleted_under_a_running_server_is_503(home: Path, snapshot: bool) -> None:
    with serve_in_thread(create_app(Settings(home=home, snapshot=snapshot))) as url:
        assert httpx.get(f"{url}/v1/products/tent/related", timeout=30).status_code == 200
        (home / "graph" / "CURRENT").unlink()
        for path in ("/v1/health", "/v1/products/tent/related", "/v1/products/tent"):
            err = assert_envelope(httpx.get(url + path, timeout=30), 503, "store_unavailable")
            no_path(err, home)
        shutil.rmtree(home / "graph")
        err = assert_envelope(httpx.get(f"{url}/v1/health", timeout=30), 503, "store_unavailable")
        no_path(err, home)


def test_damaged_meta_and_database_are_503(home: Path) -> None:
    gen = current_gen(home)
    (gen / "meta.json").write_text("{not json", encoding="utf-8")
    with serve_in_thread(create_app(Settings(home=home, snapshot=False))) as url:
        err = assert_envelope(httpx.get(f"{url}/v1/health", timeout=30), 503, "store_unavailable")
        assert "meta.json" in err["message"]
        no_path(err, home)
    (gen / "meta.json").write_text("{}", encoding="utf-8")
    os.truncate(gen / "graph.lbug", 0)
    with serve_in_thread(create_app(Settings(home=home, snapshot=False))) as url:
        for path in ("/v1/health", "/v1/products/tent/related"):
            err = assert_envelope(httpx.get(url + path, timeout=30), 503, "store_unavailable")
            no_path(err, home)


def test_garbage_feedback_part_is_503_and_full_disk_is_507(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    ev = {
        "event_id": "e1",
        "ts": "2024-05-01T10:00:00",
        "user_id": "u1",
        "anchor_id": "tent",
        "item_id": "chair",
        "kind": "complement",
        "event": "impression",
    }
    with serve_in_thread(create_app(Settings(home=home, feedback_refresh_s=0))) as url:
        assert httpx.post(f"{url}/v1/events", json={"events": [ev]}, timeout=30).status_code == 200
        (log_dir(home) / "part-20990101T000000-garbage.parquet").write_bytes(b"not parquet at all")
        err = assert_envelope(
            httpx.get(f"{url}/v1/products/tent/related", params={"feedback": "true"}, timeout=30),
            503,
            "store_unavailable",
        )
        assert "feedback log" in err["message"]
        no_path(err, home)
        (log_dir(home) / "part-20990101T000000-garbage.parquet").unlink()

        def full(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pq, "write_table", full)
        err = assert_envelope(
            httpx.post(f"{url}/v1/events", json={"events": [{**ev, "event_id": "e2"}]}, timeout=30),
            507,
            "storage_full",
        )
        no_path(err, home)
    assert read_log(home).column("event_id").to_pylist() == ["e1"]  # nothing half-written


COMPACT = """
import sys
import tiein.feedback.log as fb
fb.COMPACT_PARTS = 3
home = sys.argv[1]
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    fb.ingest_records(home, [{"event_id": f"e{i}", "ts": "2024-05-01T10:00:00", "user_id": "u1",
                              "anchor_id": "tent", "item_id": f"x{i}", "kind": "complement",
                              "event": "impression"}])
"""


@pytest.mark.parametrize("point", ["feedback.after_merge", "feedback.mid_delete"])
def test_compaction_killed_half_way_neither_doubles_nor_loses(tmp_path: Path, point: str) -> None:
    def ingest(start: int, stop: int, fault: str | None = None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "TIEIN_FAULT"}
        if fault:
            env["TIEIN_FAULT"] = fault
        return subprocess.run(
            [sys.executable, "-c", COMPACT, str(tmp_path), str(start), str(stop)], env=env, timeout=120
        ).returncode

    assert ingest(0, 3) == 0
    assert ingest(3, 4, fault=point) == EXIT_CODE  # the 4th part triggers the merge, killed in it
    log = read_log(tmp_path)
    assert sorted(log.column("event_id").to_pylist()) == [f"e{i}" for i in range(4)]
    assert ingest(4, 6) == 0  # the next ingest finishes the compaction
    log = read_log(tmp_path)
    assert sorted(log.column("event_id").to_pylist()) == sorted(f"e{i}" for i in range(6))
    names = [p.name for p in log_dir(tmp_path).iterdir()]
    assert not [n for n in names if n.endswith(".tmp")]
    merged = [n for n in names if n.endswith("-merged.parquet")]
    assert merged and len(names) <= 3, names
    held = json.loads(pq_meta(log_dir(tmp_path) / merged[-1]))
    assert not set(held) & (set(names) - {merged[-1]})


def pq_meta(path: Path) -> bytes:
    import pyarrow.parquet as pq

    return (pq.read_schema(path).metadata or {})[b"tiein.replaces"]

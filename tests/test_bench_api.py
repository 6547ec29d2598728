"""bench/api.py keeps working: a 1-second run of each mode against the camping fixture home (the
Online Retail I numbers go in the closing notes; no latency bar is asserted on a shared machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_api import camping_home

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--seconds", "1", "--warmup", "0", "--json", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_closed_loop_reports_both_endpoints(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = camping_home(tmp_path_factory)
    r = run_bench("--home", str(home), "--concurrency", "2")
    assert r["mode"] == "closed loop, concurrency 2, snapshot store"
    assert set(r["endpoints"]) == {"related", "bundle"}
    for s in (*r["endpoints"].values(), r["all"]):
        assert s["requests"] > 0 and s["errors"] == 0
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert r["all"]["requests"] == sum(s["requests"] for s in r["endpoints"].values())
    assert r["server_cpu_ms_per_request"] > 0 and r["generator_cpu_ms_per_request"] > 0


def test_open_loop_sends_the_scheduled_requests(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = camping_home(tmp_path_factory)
    r = run_bench("--home", str(home), "--rate", "40", "--endpoints", "related", "--no-snapshot")
    assert r["mode"] == "open loop at 40 req/s, LadybugDB per request"
    assert set(r["endpoints"]) == {"related"}
    assert r["all"]["requests"] == 40 and r["all"]["errors"] == 0


def test_bad_arguments_are_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--endpoints", "checkout"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown endpoint" in proc.stderr and "Traceback" not in proc.stderr

"""The server side of bench/api.py's load test: the home it serves (Online Retail I built once
into a cached home, the anchors asked for), the `tiein serve` process (a free port, start, wait
until ready, its CPU seconds and memory from /proc) and the generation switches made during a run
(`tiein rollback` or a stock-only `tiein update`)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ANCHOR_QUERY = "MATCH (p:Product)-[:COMPLEMENT]->(:Product) RETURN DISTINCT p.product_id AS id ORDER BY id"
MAX_ANCHORS = 1000


def default_home() -> Path:
    env = os.environ.get("TIEIN_BENCH_HOME")
    return Path(env) if env else Path(tempfile.gettempdir()) / "tiein-bench" / "online_retail"


def ensure_home(home: Path, dataset: str, rebuild: bool = False) -> None:
    """Build ``dataset`` into ``home`` unless a graph this version can read is already there."""
    if not rebuild and (home / "graph" / "CURRENT").exists() and _readable(home):
        return
    from tiein.pipeline import BuildOptions, build

    print(f"building {dataset} into {home} (once) …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    build(BuildOptions(dataset=dataset, home=home, threads=1))
    print(f"built in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def _readable(home: Path) -> bool:
    """Whether this version's store reads the cached graph (an older build may lack a property)."""
    from tiein.errors import TieinError
    from tiein.graph.ladybug_store import EmbeddedStore

    store = EmbeddedStore(home / "graph")
    try:
        rows = store.query("MATCH (p:Product) RETURN p.product_id AS id ORDER BY id LIMIT 1")
        if rows:
            store.related(rows[0]["id"], "complement", 1)
        return True
    except TieinError as exc:
        print(
            f"the cached graph in {home} is not readable by this version ({exc}): rebuilding", file=sys.stderr
        )
        return False
    finally:
        store.close()


def anchors(home: Path, seed: int) -> list[str]:
    """Product ids with complements (read-only handle; closed before the server starts)."""
    from tiein.graph.ladybug_store import EmbeddedStore

    store = EmbeddedStore(home / "graph")
    try:
        ids = [r["id"] for r in store.query(ANCHOR_QUERY)]
    finally:
        store.close()
    if not ids:
        raise SystemExit(f"the graph in {home} has no complements to ask for")
    random.Random(seed).shuffle(ids)
    return ids[:MAX_ANCHORS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, workers: int, snapshot: bool = True) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TIEIN_API_TOKEN", "TIEIN_STORE", "TIEIN_API_SNAPSHOT")
    }
    cmd = [
        sys.executable,
        "-m",
        "tiein.cli",
        "serve",
        "--home",
        str(home),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--snapshot" if snapshot else "--no-snapshot",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"the server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not answer in {timeout:.0f} s")


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc);
    None where /proc is not available."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for p in entries:
        try:
            with open(f"/proc/{p}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[p] = int(fields[1])  # ppid
        cpu[p] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    if pid not in cpu:
        return None
    family, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in family:
                family.add(child)
                todo.append(child)
    return sum(cpu[p] for p in family)


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat", encoding="ascii", errors="replace") as f:
                    parents[int(e)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    family, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in family:
                family.append(child)
                todo.append(child)
    return family


def server_memory(pid: int) -> dict[str, Any] | None:
    """Memory of the server ``pid`` and its processes (Linux ``/proc/<pid>/smaps_rollup``): RSS
    (counts a shared page in every process that maps it) and PSS (a page shared by n processes
    counts 1/n in each: their sum is the memory the server really takes), in MB, per process
    and summed; None where /proc is not available."""
    procs = []
    try:
        family = _family(pid)
    except OSError:
        return None
    for p in family:
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as f:
                fields = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f if ":" in line)}
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        role = "worker" if "spawn_main" in cmd else ("server" if p == pid else "other")
        procs.append(
            {
                "pid": p,
                "role": role,
                "rss_mb": round(fields.get("Rss", 0) / 1024, 1),
                "pss_mb": round(fields.get("Pss", 0) / 1024, 1),
                "shared_mb": round((fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0)) / 1024, 1),
            }
        )
    if not procs:
        return None
    return {
        "processes": procs,
        "total_rss_mb": round(sum(p["rss_mb"] for p in procs), 1),
        "total_pss_mb": round(sum(p["pss_mb"] for p in procs), 1),
    }


def ensure_two_generations(home: Path, dataset: str) -> None:
    """Make ``home`` hold a previous generation to roll back to (a second build, once)."""
    probe = subprocess.run(_tiein("rollback", home), capture_output=True, text=True)
    if probe.returncode == 0:  # it had one: switch back to where it was
        subprocess.run(_tiein("rollback", home), check=True, capture_output=True)
        return
    from tiein.pipeline import BuildOptions, build

    print(
        f"building {dataset} into {home} a second time (once, for --switches) …", file=sys.stderr, flush=True
    )
    build(BuildOptions(dataset=dataset, home=home, threads=1))


def _tiein(command: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "tiein.cli", command, "--home", str(home)]


class Switcher:
    """Runs ``tiein rollback`` (or, with ``by="update"``, a stock-only ``tiein update`` of
    ``ids``: a new generation the servers have no snapshot files for yet) at the given offsets (s)
    from :meth:`start` in a thread; ``done`` holds when each switch finished (perf_counter)."""

    def __init__(
        self, home: Path, offsets: list[float], by: str = "rollback", ids: list[str] | None = None
    ) -> None:
        import threading

        self.home, self.offsets, self.by, self.ids = home, offsets, by, ids or []
        self.started: list[float] = []
        self.done: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.thread.start()

    def _run(self) -> None:
        for off in self.offsets:
            time.sleep(max(0.0, self.t0 + off - time.perf_counter()))
            self.started.append(time.perf_counter())
            subprocess.run(self._command(len(self.done)), check=True, capture_output=True)
            self.done.append(time.perf_counter())

    def _command(self, i: int) -> list[str]:
        if self.by == "rollback":
            return _tiein("rollback", self.home)
        stock = Path(tempfile.gettempdir()) / f"tiein-bench-stock-{os.getpid()}.csv"
        level = 0 if i % 2 == 0 else 50  # the first 100 anchors out of stock, then back in
        stock.write_text(
            "product_id,stock\n" + "".join(f'"{p}",{level}\n' for p in self.ids[:100]), encoding="utf-8"
        )
        return [*_tiein("update", self.home), "--catalog", str(stock), "--quiet"]

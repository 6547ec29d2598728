"""Analysts' Cypher on the embedded store, in a worker process that cannot hurt serving.

:func:`run_isolated` starts ``python -m tiein.cypher_worker`` for one query. The worker

- opens the store's current generation itself, READ-ONLY (its own ``ladybug.Database``: it never
  touches the server's connection nor the lock that ``related`` / ``bundle`` / ``health`` take);
- caps its address space (``RLIMIT_AS``, :data:`DEFAULT_MEMORY_MB` by default) and LadybugDB's
  buffer pool under it, so a query that builds a huge list fails with "out of memory" instead of
  growing the server;
- runs as an idle-priority process (Linux ``SCHED_IDLE``, else ``nice``) with few LadybugDB
  threads, so the server's requests always get the CPU first;
- checks the query (:func:`graph.cypher_guard.refuse_writes`, then LadybugDB's own plan of it, see
  :func:`tiein.graph.ladybug_support.refuse_unsafe_plan`) and runs it with LadybugDB's query timeout.

At most ``WorkerLimits.max_running`` workers run at once (default: half the CPUs, at least one);
a query that finds them all busy waits for one within its time limit, else it is refused
("busy"), so analysts can never take every core from the server.

The parent sends the request (pickle, on stdin) and reads one JSON answer (stdout; JSON, so a
worker can never make the server run code). It kills the worker when the answer is not there
``timeout_s`` (+ :data:`KILL_GRACE_S`) after the worker said it was ready: the time limit holds even
when LadybugDB would not stop. A worker that crashes (a signal) or runs out of memory is a
CypherError naming the cause; the server carries on. Start-up (interpreter, imports, opening the
database) is ~0.2-0.4 s, measured on a 2-core machine, small next to the queries that need it.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiein.errors import CypherError, StoreError, StoreUnavailable, TieinError, WriteRefused

DEFAULT_MEMORY_MB = 2048
DEFAULT_THREADS = 1
STARTUP_TIMEOUT_S = 30.0  # interpreter + imports; generous for a loaded machine
KILL_GRACE_S = 1.0  # after the time limit, LadybugDB's own interrupt gets this long before the kill
MAX_ANSWER_BYTES = 256 * 1024 * 1024
READY = b"ready\n"
_ERRORS: dict[str, type[TieinError]] = {
    cls.__name__: cls for cls in (CypherError, WriteRefused, StoreError, StoreUnavailable)
}


@dataclass(frozen=True)
class WorkerLimits:
    """What analyst workers may use: ``memory_mb`` of address space each (the process's whole
    virtual memory: interpreter, libraries, LadybugDB's buffer pool and the query), ``threads``
    LadybugDB threads each, at idle CPU priority (``nice``: the niceness where there is no
    SCHED_IDLE), at most ``max_running`` at once among the queries given these same limits (one
    object per server: the API keeps one)."""

    memory_mb: int = DEFAULT_MEMORY_MB
    threads: int = DEFAULT_THREADS
    nice: int = 19
    max_running: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    slots: threading.BoundedSemaphore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int) or self.memory_mb < 512:
            raise CypherError(
                f"the analyst worker's memory limit must be at least 512 MB, got {self.memory_mb!r}"
            )
        if not 1 <= self.threads <= 64:
            raise CypherError(f"the analyst worker's threads must be from 1 to 64, got {self.threads!r}")
        if not 1 <= self.max_running <= 1024:
            raise CypherError(f"the analyst workers at once must be from 1 to 1024, got {self.max_running!r}")
        object.__setattr__(self, "slots", threading.BoundedSemaphore(self.max_running))


def db_options(memory_mb: int, db_bytes: int) -> dict[str, Any]:
    """LadybugDB options for a worker with ``memory_mb`` and a database file of ``db_bytes``: a
    buffer pool of a quarter of the memory, and ``max_db_size`` (LadybugDB reserves two address
    ranges of it, for the database's pages and for temporary pages) the power of two at least
    twice the file and at least 128 MiB.

    >>> db_options(2048, 157_000_000)
    {'buffer_pool_size': 536870912, 'max_db_size': 536870912}
    """
    max_db = 1 << max(27, (2 * db_bytes - 1).bit_length())
    return {"buffer_pool_size": memory_mb * 1024 * 1024 // 4, "max_db_size": max_db}


def address_space(memory_mb: int, options: dict[str, Any]) -> int:
    """The worker's RLIMIT_AS: ``memory_mb`` for the interpreter, the libraries and the query,
    plus the address ranges LadybugDB reserves (only the buffer pool's share of them is ever
    memory)."""
    return memory_mb * 1024 * 1024 + 2 * int(options["max_db_size"])


def run_isolated(
    path: Path | str,
    query: str,
    params: dict[str, Any] | None,
    *,
    limit: int,
    timeout_s: float,
    limits: WorkerLimits | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows as JSON values) of the analyst's ``query`` on the embedded store at
    ``path``, run in a worker process (see the module doc): at most ``limit`` rows, stopped after
    ``timeout_s`` seconds. Raises what the store would (WriteRefused, CypherError,
    StoreUnavailable) and CypherError when the worker is out of time or memory or crashed."""
    limits = limits or WorkerLimits()
    started = time.monotonic()
    if not limits.slots.acquire(timeout=timeout_s):
        raise CypherError(
            f"the analyst workers are busy ({limits.max_running} queries running) for longer than the "
            f"time limit of {timeout_s:g} s: try again later"
        )
    try:
        return _run(path, query, params, limit, max(0.001, timeout_s - (time.monotonic() - started)), limits)
    finally:
        limits.slots.release()


def _run(
    path: Path | str,
    query: str,
    params: dict[str, Any] | None,
    limit: int,
    timeout_s: float,
    limits: WorkerLimits,
) -> tuple[list[str], list[list[Any]]]:
    request = pickle.dumps(
        {
            "path": str(path),
            "query": query,
            "params": params or {},
            "limit": limit,
            "timeout_s": timeout_s,
            "memory_mb": limits.memory_mb,
            "threads": limits.threads,
            "nice": limits.nice,
        }
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiein.cypher_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lower_priority(proc.pid, limits.nice)  # at once (the worker does it too, first thing)
    try:
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the worker died at once: its exit status says why below
        out = _Pipe(proc.stdout.fileno())
        if not out.read_until(time.monotonic() + STARTUP_TIMEOUT_S, READY):
            raise _failure(proc, "the analyst worker did not start in time")
        if not out.read_until(time.monotonic() + timeout_s + KILL_GRACE_S, None):
            if out.too_big:
                raise CypherError(
                    f"the answer is larger than {MAX_ANSWER_BYTES >> 20} MB: ask for fewer rows or columns"
                )
            raise CypherError(
                f"query interrupted (time limit of {timeout_s:g} s exceeded): the analyst worker was stopped"
            )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    body = bytes(out.data[len(READY) :])
    if not body:
        raise _failure(proc, "the analyst worker stopped without an answer")
    answer = json.loads(body)
    if "error" in answer:
        raise _ERRORS.get(answer["error"], CypherError)(answer["message"])
    return answer["columns"], answer["rows"]


def lower_priority(pid: int, nice: int) -> None:
    """Make process ``pid`` (0: this one) run only when the CPU is otherwise idle: SCHED_IDLE
    where there is one (Linux), and the niceness ``nice``; best effort."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (AttributeError, OSError):
        pass


def _failure(proc: subprocess.Popen[bytes], what: str) -> CypherError:
    code = proc.poll()
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return CypherError(
            f"query failed: the analyst worker was killed by {name} (the server is unaffected)"
        )
    return CypherError(f"query failed: {what} (exit status {code})")


class _Pipe:
    """Bytes from a pipe, read up to a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.eof = False
        self.too_big = False

    def read_until(self, deadline: float, marker: bytes | None) -> bool:
        """Read until ``marker`` was seen (None: until end of file) or the deadline; True when
        it got there (end of file also counts for a marker: the caller then finds no answer)."""
        while not self.eof and (marker is None or marker not in self.data):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return False
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.eof = True
            self.data += chunk
            if len(self.data) > MAX_ANSWER_BYTES:
                self.too_big = True
                return False
        return True


# ----------------------------------------------------------------------------- the worker
def _limit_memory(cap: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _answer(req: dict[str, Any]) -> dict[str, Any]:
    from tiein.cypher import json_safe
    from tiein.graph.ladybug_gens import DB_FILE
    from tiein.graph.ladybug_store import EmbeddedStore

    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    store = EmbeddedStore(req["path"], query_timeout_s=req["timeout_s"], num_threads=req["threads"])
    gen = store.generation()
    try:
        size = (store.path / gen / DB_FILE).stat().st_size if gen else 0
    except OSError:
        size = 0  # the store says why when it opens
    store.db_options = db_options(req["memory_mb"], size)
    _limit_memory(address_space(req["memory_mb"], store.db_options))
    cols, rows = store.query_rows(req["query"], req["params"], limit=req["limit"], timeout_s=req["timeout_s"])
    return {"columns": list(cols), "rows": [[json_safe(v) for v in row] for row in rows]}


def main() -> None:
    """The worker: one request on stdin, ``ready`` then one JSON answer on stdout."""
    req = pickle.loads(sys.stdin.buffer.read())
    lower_priority(0, req["nice"])
    try:
        answer = _answer(req)
    except TieinError as exc:
        answer = {"error": type(exc).__name__, "message": str(exc)}
    except (MemoryError, RuntimeError, OSError) as exc:  # bad_alloc from LadybugDB, mmap refused
        text = str(exc)
        if isinstance(exc, MemoryError) or "bad_alloc" in text or "memory" in text.lower() or "mmap" in text:
            text = f"the query ran out of memory (the analyst worker may use {req['memory_mb']} MB): {text or 'MemoryError'}"
        answer = {"error": "CypherError", "message": f"query failed: {text}"}
    try:
        data = json.dumps(answer, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, MemoryError) as exc:
        data = json.dumps(
            {"error": "CypherError", "message": f"query failed: the answer cannot be sent ({exc})"}
        ).encode()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    os._exit(0)  # no interpreter teardown: the database closes with the process


if __name__ == "__main__":
    main()

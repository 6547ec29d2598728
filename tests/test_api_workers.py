"""``tiein serve --workers N`` (tiein/api/workers.py): each worker accepts on its own
``SO_REUSEPORT`` socket, so keep-alive connections opened together spread over the workers (with
one shared socket the first worker to wake took them all); a worker that dies is started again on
its socket and the server keeps answering."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from test_api import camping_home, serve

from tiein.api.workers import reuseport_sockets

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to see which worker holds a connection"
)


def test_reuseport_sockets_share_one_port_and_each_accepts() -> None:
    socks = reuseport_sockets("127.0.0.1", 0, 3)
    try:
        port = socks[0].getsockname()[1]
        assert port > 0 and {s.getsockname()[1] for s in socks} == {port}
        for s in socks:
            s.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        time.sleep(0.2)
        accepted = []
        for s in socks:
            n = 0
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                conn.close()
                n += 1
            accepted.append(n)
        assert sum(accepted) == 30 and min(accepted) > 0, accepted  # (1/3)^30-ish odds otherwise
        for c in clients:
            c.close()
    finally:
        for s in socks:
            s.close()


def test_a_port_in_use_is_a_plain_error() -> None:
    from tiein.api.workers import run_workers
    from tiein.errors import ConfigError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        import uvicorn

        config = uvicorn.Config(
            "tiein.api:app_from_env", factory=True, port=taken.getsockname()[1], workers=2
        )
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            run_workers(config)
    finally:
        taken.close()


# ----------------------------------------------------------------------------- real server
def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _connections(port: int) -> dict[int, str]:
    """inode -> TCP state of the sockets whose local port is ``port`` (/proc/net/tcp)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found[int(fields[9])] = fields[3]  # 01 established, 0A listening
    return found


def _pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and int(e.name) != os.getpid()]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _workers(port: int) -> dict[int, int]:
    """Worker pid -> established connections it holds, for the server listening on ``port``
    (the parent holds every listening socket and no connection; each worker one of each)."""
    conns = _connections(port)
    listening = {i for i, state in conns.items() if state == "0A"}
    holders = {}
    for pid in _pids():
        try:
            inodes = _socket_inodes(pid)
        except OSError:
            continue
        if inodes & listening:
            holders[pid] = inodes
    parents = [p for p in holders if _parent(p) not in holders]
    assert len(parents) == 1, holders
    return {
        pid: sum(conns.get(i) == "01" for i in inodes) for pid, inodes in holders.items() if pid != parents[0]
    }


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock.recv(65536).split(b"\r\n", 1)[0]


def test_workers_share_the_connections_and_a_dead_one_is_replaced(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home), "--workers", "2") as url:
        port = int(url.rsplit(":", 1)[1])
        # 16 keep-alive connections opened at once, as a client's connection pool does
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            for c in clients:
                assert _get(c, "/v1/products/tent") == b"HTTP/1.1 200 OK"
            held = _workers(port)
            assert len(held) == 2 and sum(held.values()) == 16, held
            assert min(held.values()) > 0, held  # both workers hold some (all on one: 2 in 65,536)
            victim = next(iter(held))
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                alive = _workers(port)
                if len(alive) == 2 and victim not in alive:
                    break
                time.sleep(0.2)
            assert len(alive) == 2 and victim not in alive, alive
            for _ in range(20):  # new connections: every one answered, whichever socket took it
                with socket.create_connection(("127.0.0.1", port)) as fresh:
                    assert _get(fresh, "/v1/products/tent/related?kind=complement") == b"HTTP/1.1 200 OK"
        finally:
            for c in clients:
                c.close()

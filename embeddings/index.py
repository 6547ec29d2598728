"""A persisted FAISS index of product vectors (cosine similarity = inner product of unit vectors).

On disk, a directory::

    index.faiss     the FAISS index (exact IndexFlatIP)
    ids.json        product ids, in index row order
    manifest.json   {"format", "model", "dim", "count", "metric", "index", "created", "tiein_version"}

``save`` writes a new directory next to the target and swaps it in with renames, so an
interrupted save leaves the previous index as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.errors import ConfigError, InputError, MissingDependency, ProductNotFound

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
FORMAT = 1
METRIC = "inner_product"

# neighbours(): above this many products an exact all-pairs search costs n² · dim flops
# (50k × 512-d ≈ 30 s on 2 cores), so a temporary IVF index answers instead (see neighbours()).
EXACT_NEIGHBOURS_MAX = 20_000
_QUERY_BATCH = 8_192


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependency("faiss-cpu", "embeddings") from exc
    return faiss


def _tiein_version() -> str:
    try:
        from importlib.metadata import version

        return version("tiein")
    except Exception:  # noqa: BLE001 - metadata is informational only
        return "unknown"


class ProductIndex:
    """Product ids plus an exact inner-product FAISS index over their (unit) vectors."""

    def __init__(self, index: Any, ids: list[str], model: str) -> None:
        self._index = index
        self._ids = list(ids)
        self._row = {pid: i for i, pid in enumerate(self._ids)}
        self.model = model
        self._vectors: np.ndarray | None = None

    # ------------------------------------------------------------------ build / persist
    @classmethod
    def build(cls, ids: list[str], vectors: np.ndarray, model: str) -> ProductIndex:
        """Index ``vectors`` (one unit row per id, as from :func:`embeddings.embed_products`)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise InputError(f"vectors must be a 2-D array (n, dim), got shape {vectors.shape}")
        if len(ids) != vectors.shape[0]:
            raise InputError(f"{len(ids)} ids but {vectors.shape[0]} vectors")
        ids = [str(i) for i in ids]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise InputError(f"product id {dup!r} occurs more than once", column="product_id")
        if not model:
            raise ConfigError("the index needs the model name")
        faiss = _faiss()
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        out = cls(index, ids, model)
        out._vectors = vectors
        return out

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` atomically (temp directory, then rename)."""
        directory = Path(directory)
        parent = directory.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=parent))
        try:
            _faiss().write_index(self._index, str(tmp / INDEX_FILE))
            _write_json(tmp / IDS_FILE, self._ids)
            _write_json(tmp / MANIFEST_FILE, self.manifest())
            _swap_in(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def manifest(self) -> dict[str, Any]:
        """What ``manifest.json`` holds."""
        return {
            "format": FORMAT,
            "model": self.model,
            "dim": self.dim,
            "count": len(self),
            "metric": METRIC,
            "index": type(self._index).__name__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "tiein_version": _tiein_version(),
        }

    @classmethod
    def load(cls, directory: Path, expect_model: str | None = None) -> ProductIndex:
        """Open an index saved by :meth:`save`, checking the manifest against the files.

        ``expect_model``: the encoder the caller will query with; a different model in the
        manifest raises ConfigError (its vectors would not be comparable). Missing or
        inconsistent files raise InputError naming the file.
        """
        directory = Path(directory)
        manifest_path, ids_path, index_path = (directory / f for f in (MANIFEST_FILE, IDS_FILE, INDEX_FILE))
        if not directory.is_dir():
            raise ConfigError(f"no embedding index at {directory}")
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, dict):
            raise InputError("expected a JSON object", file=str(manifest_path))
        for key, kind in (("model", str), ("dim", int), ("count", int), ("metric", str)):
            if not isinstance(manifest.get(key), kind):
                raise InputError(f"missing or invalid {key!r}", file=str(manifest_path))
        if manifest["metric"] != METRIC:
            raise InputError(f"metric {manifest['metric']!r}, expected {METRIC!r}", file=str(manifest_path))
        if expect_model is not None and manifest["model"] != expect_model:
            raise ConfigError(
                f"{manifest_path}: the index was built with model {manifest['model']!r}, "
                f"but model {expect_model!r} is configured; rebuild the index"
            )
        ids = _read_json(ids_path)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InputError("expected a JSON list of product id strings", file=str(ids_path))
        if len(ids) != manifest["count"]:
            raise InputError(
                f"{len(ids)} ids but the manifest says count {manifest['count']}", file=str(ids_path)
            )
        if not index_path.is_file():
            raise InputError("file is missing", file=str(index_path))
        faiss = _faiss()
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as exc:
            raise InputError(f"not a readable FAISS index ({exc})", file=str(index_path)) from exc
        if index.d != manifest["dim"]:
            raise InputError(
                f"index dimension {index.d} but the manifest says dim {manifest['dim']}", file=str(index_path)
            )
        if index.ntotal != manifest["count"]:
            raise InputError(
                f"index holds {index.ntotal} vectors but the manifest says count {manifest['count']}",
                file=str(index_path),
            )
        return cls(index, ids, manifest["model"])

    # ------------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        """Product ids in index row order."""
        return list(self._ids)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def vectors(self) -> np.ndarray:
        """The indexed vectors, ``(len(self), dim)`` float32 (read back from the index once)."""
        if self._vectors is None:
            self._vectors = (
                self._index.reconstruct_n(0, len(self))
                if len(self)
                else np.zeros((0, self.dim), dtype=np.float32)
            )
        return self._vectors

    # ------------------------------------------------------------------ queries
    def similar(self, product_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` products most similar to ``product_id`` (itself excluded), best first."""
        row = self._row.get(product_id)
        if row is None:
            raise ProductNotFound(product_id)
        _check_k(k)
        scores, labels = self._index.search(self.vectors()[row : row + 1], min(k + 1, len(self)))
        pairs = [
            (self._ids[j], float(s)) for s, j in zip(scores[0], labels[0], strict=True) if j >= 0 and j != row
        ]
        return pairs[:k]

    def search(self, vectors: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
        """For each query row, the ``k`` most similar products ``(id, cosine)``, best first."""
        _check_k(k)
        queries = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InputError(f"query vectors must have shape (m, {self.dim}), got {np.shape(vectors)}")
        if len(self) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, labels = self._index.search(queries, min(k, len(self)))
        ids = self._ids
        return [
            [(ids[j], float(s)) for s, j in zip(srow, lrow, strict=True) if j >= 0]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def neighbours(
        self, k: int = 10, *, exact: bool | None = None, nprobe: int | None = None
    ) -> pa.Table:
        """Every product's ``k`` most similar other products as a table (src, dst, similarity).

        ``min(k, len(self) - 1)`` rows per product, best first within each src. ``exact=None``
        searches exactly up to :data:`EXACT_NEIGHBOURS_MAX` products and, above that, with a
        temporary IVF index (nlist ≈ 4·√n clusters, ``nprobe`` probed; measured recall@10 vs exact
        in bench/embedding_models.py): all-pairs exact search costs n²·dim and is ~30 s for 50k
        products on 2 cores.
        """
        _check_k(k)
        n = len(self)
        schema = pa.schema([("src", pa.string()), ("dst", pa.string()), ("similarity", pa.float64())])
        if n < 2:
            return schema.empty_table()
        kk = min(k + 1, n)
        vectors = self.vectors()
        index = self._index
        if exact is None:
            exact = n <= EXACT_NEIGHBOURS_MAX
        if not exact:
            index = _ivf_index(vectors, nprobe)
        scores = np.empty((n, kk), dtype=np.float32)
        labels = np.empty((n, kk), dtype=np.int64)
        for start in range(0, n, _QUERY_BATCH):
            stop = min(start + _QUERY_BATCH, n)
            scores[start:stop], labels[start:stop] = index.search(vectors[start:stop], kk)
        keep = _drop_self(labels, k)
        src_rows = np.nonzero(keep)[0]
        dst_rows = labels[keep]
        ids = pa.array(self._ids, type=pa.string())
        return pa.table(
            {
                "src": ids.take(pa.array(src_rows)),
                "dst": ids.take(pa.array(dst_rows)),
                "similarity": pa.array(scores[keep].astype(np.float64)),
            },
            schema=schema,
        )


def _drop_self(labels: np.ndarray, k: int) -> np.ndarray:
    """Mask of the (row, column) cells to keep: not the row itself, not -1, at most k per row.

    When a row's own id is not among its results (ties between duplicate vectors), the last
    column is dropped instead, so every row keeps at most k."""
    n, kk = labels.shape
    is_self = labels == np.arange(n)[:, None]
    keep = ~is_self & (labels >= 0)
    over = np.cumsum(keep, axis=1) > k
    keep &= ~over
    return keep


def _ivf_index(vectors: np.ndarray, nprobe: int | None) -> Any:
    """A temporary IVF-flat inner-product index over ``vectors`` for the all-pairs search."""
    faiss = _faiss()
    n, dim = vectors.shape
    nlist = max(16, int(4 * math.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    # k-means on a sample of ~40 points per cluster is as good as on all points and much faster.
    sample_size = min(n, 40 * nlist)
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(n, size=sample_size, replace=False))]
    ivf.cp.seed = 0
    ivf.train(sample)
    ivf.add(vectors)
    ivf.nprobe = nprobe if nprobe is not None else max(8, nlist // 16)
    return ivf


def _check_k(k: int) -> None:
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise InputError("file is missing", file=str(path)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", file=str(path)) from exc


def _swap_in(new: Path, target: Path) -> None:
    """Replace directory ``target`` by ``new``: rename the old one aside, rename the new one in
    (restoring the old one if that fails), then delete the old one. Both renames are atomic;
    ``new`` is complete before either happens."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)

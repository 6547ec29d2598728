"""A persisted FAISS index of product vectors (cosine similarity = inner product of unit vectors).

On disk, a directory::

    index.faiss     the FAISS index: exact IndexFlatIP, or IndexIVFFlat above FLAT_MAX products
    ids.json        product ids, in index row order
    manifest.json   {"format", "model", "dim", "count", "metric", "index", "kind", "created",
                     "tiein_version"} plus, for "kind": "ivf", "nlist", "nprobe", "trained_count"
                     and "tuned_recall" (an index saved before "kind" existed is a flat one)

Index kind, chosen by size (:func:`choose_kind`): up to :data:`FLAT_MAX` products an exact
``IndexFlatIP``; above, an ``IndexIVFFlat`` (inverted lists over spherical k-means centroids, the
vectors stored uncompressed, so scores are exact cosines; only which products are looked at is
approximate). ``nlist`` = √n (:func:`ivf_nlist`), trained on a seeded sample of
:data:`TRAIN_POINTS_PER_LIST` × nlist vectors. ``nprobe`` is tuned at build time: the smallest of
8, 12, 16, 24, 32, ... whose recall@20 against an exact search reaches :data:`RECALL_TARGET` on
:data:`TUNE_QUERIES` of the catalog's own vectors and on as many moved off the catalog to cosine
0.8 (:func:`_tune_nprobe`); it is saved in the index and the manifest. The tuning adapts to
how clustered the vectors are: on clustered synthetic vectors it picks 8 of 224 lists (50k) and
8 of 707 (500k); on the 49,651 real Instacart title vectors (USE) it picks 48 of 223: recall@20
0.985 for similar(), 0.966 for the 155 aisle and department names as search texts (0.95 at 32,
which a 0.97 target chose).
Measured with ``bench/scale.py --only search`` (clustered synthetic 512-d unit vectors, 1 FAISS
thread, 2 shared cores): see that file's docstring.

Threads: every query sets FAISS's OpenMP thread count in the calling thread (OpenMP keeps it per
thread, so setting it once at import would not reach a server's worker threads) to
:func:`faiss_threads` = ``$TIEIN_FAISS_THREADS``, default 1: a single query gains nothing from
more, and an unset count lets OpenMP spin one thread per core against the other requests. Batch
work (training, :meth:`ProductIndex.neighbours`) takes ``threads=`` (default: all CPUs) and sets
the query count back afterwards.

``save`` writes a new directory next to the target and swaps it in with renames, so an
interrupted save leaves the previous index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tiein.embeddings.ivf import (  # noqa: F401  (RECALL_TARGET, ivf_nlist: re-exported)
    RECALL_TARGET,
    TIE_MARGIN,
    _approx_search,
    _drop_self,
    _faiss,
    _stable_order,
    _train_ivf,
    ivf_nlist,
)
from tiein.errors import ConfigError, InputError, ProductNotFound

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
FORMAT = 1
METRIC = "inner_product"

# neighbours(): above this many products an exact all-pairs search (n² · dim flops; 50k × 512-d
# ≈ 18-20 s on 2 cores) gives way to an approximate one (see neighbours()). 20k exact ≈ 3 s.
EXACT_NEIGHBOURS_MAX = 20_000
_QUERY_BATCH = 8_192

# search()/similar(): an exact flat index up to this many products, an IVF index above.
FLAT_MAX = 10_000
FLAT, IVF = "flat", "ivf"
KINDS = (FLAT, IVF)
RETRAIN_GROWTH = 2.0  # add(): an IVF index is retrained when it holds this many times its training count
FAISS_THREADS_ENV = "TIEIN_FAISS_THREADS"
DEFAULT_FAISS_THREADS = 1


def faiss_threads() -> int:
    """FAISS threads per query: ``$TIEIN_FAISS_THREADS`` (a positive integer), default 1."""
    raw = os.environ.get(FAISS_THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_FAISS_THREADS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{FAISS_THREADS_ENV} must be a positive integer, got {raw!r}")
    return value


def _set_threads(faiss: Any, threads: int) -> None:
    """``faiss.omp_set_num_threads(threads)`` in the calling thread (OpenMP keeps the count per
    thread). Called before every query (~0.5 µs): a cached "already set" could be stale after
    other code (torch.set_num_threads, which may share the OpenMP runtime) changed it."""
    faiss.omp_set_num_threads(threads)


@contextmanager
def _batch_threads(threads: int | None) -> Iterator[Any]:
    """FAISS with ``threads`` OpenMP threads (None: all CPUs) for batch work, then the query
    count (:func:`faiss_threads`) again. Yields the faiss module."""
    faiss = _faiss()
    serving = faiss_threads()
    _set_threads(faiss, threads if threads is not None else max(1, os.cpu_count() or 1))
    try:
        yield faiss
    finally:
        _set_threads(faiss, serving)


def choose_kind(n: int) -> str:
    """The index kind :meth:`ProductIndex.build` uses for ``n`` products."""
    return FLAT if n <= FLAT_MAX else IVF


def _tiein_version() -> str:
    try:
        from importlib.metadata import version

        return version("tiein")
    except Exception:  # noqa: BLE001 - metadata is informational only
        return "unknown"


class ProductIndex:
    """Product ids plus an inner-product FAISS index over their (unit) vectors: exact flat up to
    :data:`FLAT_MAX` products, IVF above (see the module docstring)."""

    def __init__(self, index: Any, ids: list[str], model: str, ivf: dict[str, Any] | None = None) -> None:
        self._index = index
        self._ids = list(ids)
        self._row = {pid: i for i, pid in enumerate(self._ids)}
        self.model = model
        self._vectors: np.ndarray | None = None
        self._ivf = dict(ivf) if ivf is not None else None  # manifest fields of an IVF index
        self.query_threads = faiss_threads()  # FAISS threads per search() / similar() call

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"ivf"`` (approximate)."""
        return FLAT if self._ivf is None else IVF

    @property
    def nprobe(self) -> int | None:
        """Inverted lists an IVF search visits (None for a flat index)."""
        return int(self._index.nprobe) if self._ivf is not None else None

    # ------------------------------------------------------------------ build / persist
    @classmethod
    def build(
        cls,
        ids: list[str],
        vectors: np.ndarray,
        model: str,
        *,
        kind: str | None = None,
        threads: int | None = None,
    ) -> ProductIndex:
        """Index ``vectors`` (one unit row per id, as from :func:`embeddings.embed_products`).

        ``kind``: ``"flat"`` or ``"ivf"``; None chooses by size (:func:`choose_kind`).
        ``threads``: FAISS threads for the IVF training and tuning (None: all CPUs); queries
        use :func:`faiss_threads`. The same ids and vectors give the same index."""
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
        kind = choose_kind(len(ids)) if kind is None else kind
        if kind not in KINDS:
            raise ConfigError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind == IVF and len(ids) < 2:
            kind = FLAT  # nothing to cluster
        ivf: dict[str, Any] | None = None
        with _batch_threads(threads) as faiss:
            if kind == FLAT:
                index = faiss.IndexFlatIP(vectors.shape[1])
                index.add(vectors)
            else:
                index, ivf = _train_ivf(faiss, vectors)
        out = cls(index, ids, model, ivf)
        out._vectors = vectors
        return out

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Append products (new ids only) with their unit vectors; :meth:`save` then writes the
        index with an updated manifest.

        A flat index stays exact (equal to :meth:`build` on the old ids followed by these) until
        it grows from at most :data:`FLAT_MAX` products to more: then it is rebuilt as IVF. An
        IVF index files the new vectors into its trained lists (its centroids and nprobe stay)
        until it holds :data:`RETRAIN_GROWTH` times the products it was trained on: then it is
        retrained on all of them, as :meth:`build` would (same ids and vectors, same index)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = [str(i) for i in ids]
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise InputError(
                f"expected {len(ids)} vectors of dimension {self.dim}, got shape {vectors.shape}"
            )
        clash = [i for i in ids if i in self._row]
        if clash or len(set(ids)) != len(ids):
            raise InputError(f"product id {(clash or ids)[0]!r} is already in the index", column="product_id")
        old = self.vectors()
        total = len(self) + len(ids)
        if self._ivf is None:
            rebuild = len(self) <= FLAT_MAX < total
        else:
            rebuild = total >= RETRAIN_GROWTH * int(self._ivf.get("trained_count") or len(self))
        both = np.concatenate([old, vectors]) if len(old) else vectors
        if rebuild:
            fresh = ProductIndex.build(self._ids + ids, both, self.model, kind=IVF)
            self._index, self._ivf = fresh._index, fresh._ivf
        else:
            with _batch_threads(None):
                self._index.add(vectors)
        for i, pid in enumerate(ids, start=len(self._ids)):
            self._row[pid] = i
        self._ids.extend(ids)
        self._vectors = both

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
            "kind": self.kind,
            **({**self._ivf, "nprobe": self.nprobe} if self._ivf is not None else {}),
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
        ivf: dict[str, Any] | None = None
        kind = manifest.get("kind", FLAT)  # a manifest from before "kind" existed: a flat index
        if kind not in KINDS or isinstance(index, faiss.IndexIVF) != (kind == IVF):
            raise InputError(
                f"kind {kind!r} but {INDEX_FILE} is a {type(index).__name__}", file=str(manifest_path)
            )
        if kind == IVF:
            ivf = {
                "nlist": int(index.nlist),
                "nprobe": int(index.nprobe),
                "trained_count": int(index.ntotal),
                "tuned_recall": None,
            }
            for key in ivf:
                value = manifest.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    ivf[key] = value
            nprobe = int(ivf["nprobe"])
            if not 1 <= nprobe <= index.nlist:
                raise InputError(f"nprobe {nprobe} outside 1..{index.nlist}", file=str(manifest_path))
            index.nprobe = nprobe
            if index.direct_map.type == faiss.DirectMap.NoMap:
                index.make_direct_map()
        return cls(index, ids, manifest["model"], ivf)

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
        query = (
            self._vectors[row : row + 1]
            if self._vectors is not None
            else self._index.reconstruct(row)[None, :]
        )
        _set_threads(_faiss(), self.query_threads)
        scores, labels = self._index.search(query, min(k + 1, len(self)))
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
        _set_threads(_faiss(), self.query_threads)
        scores, labels = self._index.search(queries, min(k, len(self)))
        ids = self._ids
        return [
            [(ids[j], float(s)) for s, j in zip(srow, lrow, strict=True) if j >= 0]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def neighbours(
        self, k: int = 10, *, exact: bool | None = None, nprobe: int | None = None, threads: int | None = None
    ) -> pa.Table:
        """Every product's ``k`` most similar other products as a table (src, dst, similarity).

        ``min(k, len(self) - 1)`` rows per product, best first within each src. ``exact=None``
        searches exactly up to :data:`EXACT_NEIGHBOURS_MAX` products and approximately above
        (see :func:`_approx_search`; ``nprobe`` trades time for recall). Measured on the 49,688
        Instacart titles (USE, 512-d, 2 busy cores): exact 18-20 s; approximate with the default
        nprobe (13 of 223 lists) 3-8 s with recall@10 ≈ 0.93 (nprobe 8: 0.90, 16: 0.94).
        The exact search is exact whatever the index kind. ``threads``: FAISS threads (None:
        all CPUs).
        """
        _check_k(k)
        n = len(self)
        schema = pa.schema([("src", pa.string()), ("dst", pa.string()), ("similarity", pa.float64())])
        if n < 2:
            return schema.empty_table()
        kk = min(k + 1 + TIE_MARGIN, n)  # a few more, so ties at the cut are broken by rule
        vectors = self.vectors()
        if exact is None:
            exact = n <= EXACT_NEIGHBOURS_MAX
        with _batch_threads(threads) as faiss:
            if exact:
                flat = self._index
                if self._ivf is not None:
                    flat = faiss.IndexFlatIP(self.dim)
                    flat.add(vectors)
                scores = np.empty((n, kk), dtype=np.float32)
                labels = np.empty((n, kk), dtype=np.int64)
                for start in range(0, n, _QUERY_BATCH):
                    stop = min(start + _QUERY_BATCH, n)
                    scores[start:stop], labels[start:stop] = flat.search(vectors[start:stop], kk)
            else:
                scores, labels = _approx_search(vectors, kk, nprobe)
        scores, labels = _stable_order(scores, labels)
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

"""The search arithmetic behind :class:`tiein.embeddings.index.ProductIndex`: training an IVF
index and tuning how many lists a query searches (nprobe) to a measured recall, exact top-k for
checking it, and the build's neighbour search (exact or IVF) with a stable order for ties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tiein.errors import MissingDependency

TRAIN_POINTS_PER_LIST = 40  # k-means training sample per inverted list (FAISS warns below 39)
RECALL_TARGET = 0.98  # build-time nprobe tuning: recall@TUNE_K on sampled queries (_tune_nprobe)
TUNE_QUERIES = 200
TUNE_K = 20
TUNE_QUERY_COSINE = 0.8  # tuning's off-catalog queries: this cosine to the product they come from
NPROBE_MIN = 8
SCORE_DECIMALS = 6  # similarities equal to this many decimals are ties
TIE_MARGIN = 8  # extra neighbours fetched per row so that a tie at the k-th place is seen


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependency("faiss-cpu", "embeddings") from exc
    return faiss


def ivf_nlist(n: int) -> int:
    """Inverted lists of an IVF index over ``n`` vectors: √n (at least 4, at most n / 39 so that
    every list has training points)."""
    return max(4, min(int(round(math.sqrt(n))), n // 39))


def _nprobe_steps(nlist: int) -> list[int]:
    """The nprobe values tuning tries, ascending: 8, 12, 16, 24, 32, 48, ... up to nlist."""
    steps: list[int] = []
    p = NPROBE_MIN
    while p < nlist:
        steps.append(p)
        steps.append(p * 3 // 2)
        p *= 2
    return sorted({min(x, nlist) for x in steps} | {nlist})


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of each query's ``k`` best inner products among ``vectors`` (unordered)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 65_536):
        block = queries @ vectors[start : start + 65_536].T
        take = min(k, block.shape[1])
        top = np.argpartition(-block, take - 1, axis=1)[:, :take]
        best_s = np.concatenate([best_s, np.take_along_axis(block, top, axis=1)], axis=1)
        best_i = np.concatenate([best_i, top + start], axis=1)
        if best_s.shape[1] > k:
            keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(best_s, keep, axis=1)
            best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of each row's true top ``k`` (``truth``, row numbers) that ``found`` holds."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)]
    return float(sum(hits)) / float(truth.shape[0] * min(k, truth.shape[1]))


def _train_ivf(faiss: Any, vectors: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """An IndexIVFFlat over ``vectors`` with its nprobe tuned (see the module docstring), and the
    manifest fields describing it. Deterministic: seeded sample and k-means."""
    n, dim = vectors.shape
    nlist = ivf_nlist(n)
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(n, size=min(n, TRAIN_POINTS_PER_LIST * nlist), replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer
    index.cp.seed = 0
    index.cp.niter = 12
    index.cp.spherical = True
    index.train(sample)
    index.add(vectors)
    index.make_direct_map()  # similar() and vectors() read rows back
    nprobe, recall = _tune_nprobe(index, vectors, rng)
    index.nprobe = nprobe
    return index, {
        "nlist": nlist,
        "nprobe": nprobe,
        "trained_count": n,
        "tuned_recall": round(recall, 4),
    }


def _tune_nprobe(index: Any, vectors: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
    """The smallest nprobe step whose recall@TUNE_K reaches RECALL_TARGET on two seeded query
    sets, and that recall (the lower of the two): (1) indexed vectors, as :meth:`similar` asks
    (each query's own row left out of both sides); (2) indexed vectors moved off the catalog by
    noise to cosine ≈ :data:`TUNE_QUERY_COSINE`, as a search text is (its closest titles are
    near, not equal, and it may fall between clusters)."""
    n, dim = vectors.shape
    rows = np.sort(rng.choice(n, size=min(n, TUNE_QUERIES), replace=False))
    own = vectors[rows]
    spread = math.sqrt(1.0 / TUNE_QUERY_COSINE**2 - 1.0)
    moved = own + np.float32(spread / math.sqrt(dim)) * rng.standard_normal(own.shape, dtype=np.float32)
    moved = np.ascontiguousarray(moved / np.linalg.norm(moved, axis=1, keepdims=True), dtype=np.float32)
    k = min(TUNE_K + 1, n)
    truth_own = _without_self(_exact_top(vectors, own, k), rows, k - 1)
    truth_moved = _exact_top(vectors, moved, k - 1)
    recall = 0.0
    nprobe = index.nlist
    for nprobe in _nprobe_steps(index.nlist):
        index.nprobe = nprobe
        _, labels = index.search(own, k)
        _, labels_moved = index.search(moved, k - 1)
        recall = min(
            recall_at(_without_self(labels, rows, k - 1), truth_own, k - 1),
            recall_at(labels_moved, truth_moved, k - 1),
        )
        if recall >= RECALL_TARGET:
            break
    return nprobe, recall


def _without_self(labels: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Each row of ``labels`` without its own row number (or its last column), ``k`` columns."""
    out = np.empty((len(labels), k), dtype=np.int64)
    for i, (lab, own) in enumerate(zip(labels, rows, strict=True)):
        kept = lab[lab != own]
        out[i] = kept[:k] if len(kept) >= k else np.pad(kept, (0, k - len(kept)), constant_values=-1)
    return out


def _stable_order(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's results ordered by similarity rounded to :data:`SCORE_DECIMALS` (descending),
    ties by row number: the same vectors give the same neighbours whatever the BLAS threads or a
    cache made of the last float bits (a fresh build and a rebuild from the embedding cache agree).

    >>> s = np.array([[0.5, 0.9000001, 0.9]], dtype=np.float32)
    >>> _stable_order(s, np.array([[7, 3, 2]]))[1].tolist()
    [[2, 3, 7]]
    """
    rounded = np.round(scores.astype(np.float64), SCORE_DECIMALS)
    missing = labels < 0
    order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, labels), -rounded, missing), axis=-1)
    rows = np.arange(labels.shape[0])[:, None]
    return rounded[rows, order].astype(np.float32), labels[rows, order]


def _drop_self(labels: np.ndarray, k: int) -> np.ndarray:
    """Mask of the (row, column) cells to keep: not the row itself, not -1, at most k per row.

    When a row's own id is not among its results (ties between duplicate vectors), the last
    column is dropped instead, so every row keeps at most k."""
    n, kk = labels.shape
    is_self = labels == np.arange(n)[:, None]
    keep = ~is_self & (labels >= 0)
    over = np.cumsum(keep, axis=1) > k
    keep &= ~over
    return np.asarray(keep)


def _approx_search(vectors: np.ndarray, kk: int, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-``kk`` inner-product search of every row of ``vectors`` among all rows.

    An IVF search done with matrix products: spherical k-means puts the rows into ``nlist ≈ √n``
    lists; each row probes its ``nprobe`` nearest lists; for each list, one matrix product scores
    all rows probing it against all its members, and the per-list top-kk are merged. FAISS's
    IndexIVFFlat scans list by list per query: 8-10 s for the same 50k all-pairs search here
    against 3-5 s for this. Returns
    ``(scores, labels)`` shaped ``(n, kk)``, best first, label -1 where fewer were found.
    """
    faiss = _faiss()
    n, dim = vectors.shape
    nlist = max(4, int(math.sqrt(n)))
    nprobe = min(nlist, nprobe if nprobe is not None else max(8, nlist // 16))
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
    kmeans = faiss.Kmeans(dim, nlist, niter=12, seed=0, spherical=True, min_points_per_centroid=8)
    kmeans.train(sample)
    _, probes = kmeans.index.search(vectors, nprobe)
    _, assign = kmeans.index.search(vectors, 1)
    assign = assign[:, 0]

    member_order = np.argsort(assign, kind="stable")
    member_bounds = np.searchsorted(assign[member_order], np.arange(nlist + 1))
    flat = probes.ravel()
    probe_order = np.argsort(flat, kind="stable")
    probe_bounds = np.searchsorted(flat[probe_order], np.arange(nlist + 1))

    # running top-kk of every row, merged block by block: memory O(n * kk) (collecting every
    # block's candidates first took n * nprobe * kk of them: +6 GB at 200k products)
    scores = np.full((n, kk), -np.inf, dtype=np.float32)
    labels = np.full((n, kk), -1, dtype=np.int64)
    for lst in range(nlist):
        members = member_order[member_bounds[lst] : member_bounds[lst + 1]]
        queries = probe_order[probe_bounds[lst] : probe_bounds[lst + 1]] // nprobe
        if len(members) == 0 or len(queries) == 0:
            continue
        take = min(kk, len(members))
        block_vectors = vectors[members].T
        for start in range(0, len(queries), 4096):
            q = queries[start : start + 4096]  # distinct: a row probes a list once
            sims = vectors[q] @ block_vectors
            if take < len(members):
                top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
            else:
                top = np.broadcast_to(np.arange(take), (len(q), take))
            s = np.concatenate((scores[q], np.take_along_axis(sims, top, axis=1)), axis=1)
            m = np.concatenate((labels[q], members[top]), axis=1)
            best = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            scores[q] = np.take_along_axis(s, best, axis=1)
            labels[q] = np.take_along_axis(m, best, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")  # best first
    scores = np.take_along_axis(scores, order, axis=1)
    labels = np.take_along_axis(labels, order, axis=1)
    return scores, labels

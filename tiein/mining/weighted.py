"""Basket-size weighted co-occurrence of given product pairs (the complement ranker's counts).

A basket of ``s`` distinct products weighs ``unit // s`` (a pair in a 200-product wholesale order
says less than in a 3-product one); baskets of one product or of more than ``max_basket`` are
skipped, as the miner skips them. :func:`weighted_pair_counts` returns, for each asked pair, the
summed weight of the baskets holding both, and of those holding each product: integers (sums of
integer weights), so the numbers are exact and the same at any chunking.

How: the distinct (basket, product) lines sorted by basket then product; every line is paired
with the lines after it in its basket (:func:`tiein.mining.kernels.expand`), chunk by chunk of
left products (about ``CHUNK_PAIRS`` pair instances each), and the instances' weights are summed
per pair key: into a dense array where the chunk's key range is small, else only at the asked
pairs' keys (binary search). Chunks holding no asked pair are not expanded. On Online Retail
(485k lines, 1.3M asked pairs) 0.8 s where the DuckDB self-join it replaces took 2.2 s; on
Instacart's sample 0.22 s against 0.38 s; the same numbers (tests/test_ranker.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.mining.kernels import DENSE_FACTOR, expand

CHUNK_PAIRS = 1 << 22  # pair instances expanded at a time (float64 weights: ~100 MB of temporaries)


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    enc = pc.dictionary_encode(col)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def weighted_pair_counts(
    orders: pa.Table, src: pa.Array, dst: pa.Array, *, max_basket: int, unit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w_ab, w_src, w_dst)``, int64 arrays aligned with the pairs ``src[i], dst[i]`` (product id
    strings): the summed basket weights (see the module docstring) of the ``orders`` (ORDERS:
    ``order_id``, ``product_id``) holding both products, holding ``src[i]``, holding ``dst[i]``.
    A product with no order gets 0; a pair is counted the same in either direction."""
    n = len(src)
    zeros = np.zeros(n, np.int64)
    if n == 0 or orders.num_rows == 0:
        return zeros, zeros.copy(), zeros.copy()
    p, names = _codes(orders.column("product_id"))
    o, _ = _codes(orders.column("order_id"))
    n_items = len(names)
    key = o * n_items + p  # distinct lines, sorted by basket then product
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]]
    o, p = key // n_items, key % n_items
    size = np.bincount(o)
    w_basket = np.where((size >= 2) & (size <= max_basket), unit // np.maximum(size, 1), 0)
    kept = w_basket[o] > 0
    o, p = o[kept], p[kept]
    w_line = w_basket[o].astype(np.float64)
    w_item = np.rint(np.bincount(p, weights=w_line, minlength=n_items)).astype(np.int64)

    s = pc.fill_null(pc.index_in(src, value_set=names), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    d = pc.fill_null(pc.index_in(dst, value_set=names), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    known = (s >= 0) & (d >= 0) & (s != d)
    w_src = np.where(s >= 0, w_item[np.maximum(s, 0)], 0)
    w_dst = np.where(d >= 0, w_item[np.maximum(d, 0)], 0)
    a, b = np.minimum(s, d), np.maximum(s, d)  # within a basket, later lines hold larger codes

    rem = np.searchsorted(o, o, side="right") - np.arange(o.size) - 1  # partners after each line
    cum = np.cumsum(np.bincount(p, weights=rem, minlength=n_items))
    bounds = np.searchsorted(cum, np.arange(CHUNK_PAIRS, cum[-1], CHUNK_PAIRS), side="left") + 1
    edges = np.unique(np.concatenate(([0], bounds, [n_items])))
    no_weight = np.zeros(o.size, np.float64)
    w_ab = np.zeros(n, np.int64)
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        asked = np.flatnonzero(known & (a >= lo) & (a < hi))
        if asked.size == 0:
            continue
        sel = np.flatnonzero((p >= lo) & (p < hi) & (rem > 0))
        keys = expand((p[sel] - lo) * n_items, sel + 1, rem[sel], p)
        weights = expand(w_line[sel], sel + 1, rem[sel], no_weight)  # each instance's basket weight
        want = (a[asked] - lo) * n_items + b[asked]
        span = (hi - lo) * n_items
        if span <= DENSE_FACTOR * max(keys.size, 1):
            sums = np.bincount(keys, weights=weights, minlength=span)[want]
        else:
            distinct, inverse = np.unique(want, return_inverse=True)
            pos = np.minimum(np.searchsorted(distinct, keys), distinct.size - 1)
            hit = distinct[pos] == keys
            sums = np.bincount(pos[hit], weights=weights[hit], minlength=distinct.size)[inverse]
        w_ab[asked] = np.rint(sums).astype(np.int64)
    return w_ab, w_src, w_dst

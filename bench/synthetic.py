"""A deterministic synthetic order set for the pair-mining benchmark.

Shape (defaults): ~4M order lines, 50k products in 500 categories, Zipf popularity,
realistic basket sizes (mostly 1-20 lines, a long tail, a few B2B baskets of 1,200-2,000
lines that mining skips as giant), customers with 1 to 400 orders (most 1-3) over one year.
Half of a basket's lines come from the basket's "theme" category, so pairs are not
pure popularity noise. Some lines repeat an item already in the basket (as real exports
do), which mining must count once.

Everything is drawn from one ``numpy.random.default_rng(seed)``: same arguments, same
table, byte for byte. The table follows ``tiein.model.ORDERS``.

    python bench/synthetic.py --lines 4000000 --out /tmp/synthetic.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tiein.model import ORDERS


def _zipf_weights(n: int, s: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf(s) probabilities over n ranks, assigned to a random permutation of 0..n-1."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    w /= w.sum()
    return w[rng.permutation(n)]


def synthetic_orders(
    lines: int = 4_000_000,
    products: int = 50_000,
    categories: int = 500,
    seed: int = 7,
) -> pa.Table:
    """Return about ``lines`` order lines (exactly ``lines`` after trimming) as an ORDERS table."""
    rng = np.random.default_rng(seed)
    # Basket sizes: 1 + negative binomial (mean ~9, long tail), plus rare B2B giants of 1,200-2,000 lines.
    mean_size = 9.5
    n_baskets = int(1.5 * lines / mean_size) + 10  # enough; trimmed below
    sizes = 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + mean_size - 1.0), size=n_baskets)
    sizes = np.minimum(sizes, 200)
    giant = rng.random(n_baskets) < 1e-4
    sizes[giant] = rng.integers(1200, 2000, size=int(giant.sum()))
    cum = np.cumsum(sizes)
    n_baskets = int(np.searchsorted(cum, lines) + 1)
    sizes = sizes[:n_baskets]
    sizes[-1] -= int(cum[n_baskets - 1] - lines)
    basket_of_line = np.repeat(np.arange(n_baskets, dtype=np.int64), sizes)
    n_lines = int(basket_of_line.size)

    # Products: category = product % categories; global and within-category Zipf popularity.
    global_w = _zipf_weights(products, 1.05, rng)
    global_cdf = np.cumsum(global_w)
    per_cat = products // categories
    within_cdf = np.cumsum(_zipf_weights(per_cat, 1.1, rng))
    theme = rng.integers(0, categories, size=n_baskets)[basket_of_line]
    from_theme = rng.random(n_lines) < 0.5
    g = np.searchsorted(global_cdf, rng.random(n_lines) * global_cdf[-1])
    g = np.minimum(g, products - 1)
    r = np.minimum(np.searchsorted(within_cdf, rng.random(n_lines) * within_cdf[-1]), per_cat - 1)
    item = np.where(from_theme, r * categories + theme, g)

    # Customers: orders per customer 1 + geometric (mean ~4, most buy once or twice), a few
    # heavy buyers (up to 400 orders); 3% guest orders (null customer); times over one year.
    per_cust = np.minimum(rng.geometric(0.3, size=n_baskets), 60)
    heavy = rng.random(n_baskets) < 2e-4
    per_cust[heavy] = rng.integers(100, 400, size=int(heavy.sum()))
    n_cust = int(np.searchsorted(np.cumsum(per_cust), n_baskets) + 1)
    cust = rng.permutation(np.repeat(np.arange(n_cust), per_cust[:n_cust])[:n_baskets])
    guest = rng.random(n_baskets) < 0.03
    start = np.datetime64("2023-01-01T00:00:00", "us").astype(np.int64)
    ts = start + rng.integers(0, 365 * 86_400, size=n_baskets) * 1_000_000
    qty = rng.integers(1, 4, size=n_lines).astype(np.float64)

    # Ids as strings (zero-padded; product ids shuffled so string order != popularity order).
    product_names = pc.binary_join_element_wise(
        "P", pc.utf8_lpad(pa.array(rng.permutation(products)).cast(pa.string()), 6, "0"), ""
    )
    order_names = pc.binary_join_element_wise(
        "O", pc.utf8_lpad(pa.array(np.arange(n_baskets)).cast(pa.string()), 8, "0"), ""
    )
    cust_names = pc.binary_join_element_wise("C", pc.utf8_lpad(pa.array(cust).cast(pa.string()), 6, "0"), "")
    cust_names = pc.if_else(pa.array(guest), pa.scalar(None, pa.string()), cust_names)
    basket_idx = pa.array(basket_of_line)
    return pa.table(
        [
            order_names.take(basket_idx),
            product_names.take(pa.array(item)),
            pa.array(qty),
            cust_names.take(basket_idx),
            pa.array(ts, pa.int64()).cast(pa.timestamp("us")).take(basket_idx),
        ],
        schema=ORDERS,
    )


def main() -> None:
    """Write a synthetic order set to Parquet."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=4_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    t = synthetic_orders(args.lines, seed=args.seed)
    pq.write_table(t, args.out)
    print(f"{t.num_rows:,} lines -> {args.out}")


if __name__ == "__main__":
    main()

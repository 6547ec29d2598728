"""Co-purchase / co-view pair statistics (the ``PAIR_STATS`` table).

:func:`mine_pairs` turns basket lines (``ORDERS``, or ``VIEWS`` with ``basket_col="session_id"``)
into one row per unordered product pair ``a < b`` (string order) with

- ``n_ab``: baskets holding both, ``n_a`` / ``n_b``: baskets holding each, ``n``: baskets;
- ``support = n_ab / n``, ``conf_ab = n_ab / n_a``, ``conf_ba = n_ab / n_b``,
  ``lift = n_ab * n / (n_a * n_b)``;
- ``after_ab``: distinct customers who bought ``a`` and then, at a strictly later time no more
  than ``after_window_days`` later (edge included), bought ``b``; ``after_ba`` the other way.

How it is computed (columnar, no Python loop over lines or pairs):

1. ids are integer-encoded with Arrow; product codes follow the string order of the ids, so
   ``code(a) < code(b)`` exactly when ``a < b`` and the output comes out sorted by ``(a, b)``;
2. duplicate ``(basket, product)`` lines collapse (one sort of 64-bit keys);
3. baskets with more than ``max_basket`` distinct products ("giant": B2B orders, bots,
   crawler sessions) are dropped before ANY counting: they count neither in ``n`` nor in
   ``n_a`` nor in the after counts, so confidence and lift describe the baskets that were
   mined. The report says how many were dropped;
4. pairs are counted by a compiled kernel (numba, tiein/mining/jit.py) in chunks by the
   smaller product's code (the chunks hold disjoint key ranges, so nothing needs merging): an
   inverted index product -> (its lines, the rest of each basket), each product's partners
   counted in a dense row and read back in order from a bitmap of the ones touched, as packed
   keys ``a << B | b``. No temporary per pair instance. Chunks run on a thread pool (the kernel
   releases the GIL), each writing to a region of its own;
5. "bought after" pairs come from each customer's timeline of distinct
   ``(time, product)`` events: every event is paired with the events of the same customer in
   ``(t, t + window]`` and each pair counts its distinct customers (the same compiled counter,
   a customer stamp per partner product), then keyed by the unordered pair and the direction.
   Customers with more than ``max_customer_items`` distinct products, or whose timeline would
   produce more than ``max_customer_items ** 2`` pair instances, are skipped (wholesalers) and
   counted in the report. The same timelines give each product's :data:`~tiein.model.TIMELINE`
   counts (``MinedPairs.timeline``: customers, returning customers, customers who bought it as a
   later purchase), which "next purchase" relations need for their confidence and lift.

A pair is kept when ``n_ab``, ``after_ab`` or ``after_ba`` reaches ``min_count`` (products
bought in sequence may never share a basket), so kept rows may carry ``n_ab == 0``.

Modules: :mod:`~tiein.mining.mine` (:func:`mine_pairs`), :mod:`~tiein.mining.counts`
(:class:`PairCounts`, :func:`count_pairs`), :mod:`~tiein.mining.jit` and
:mod:`~tiein.mining.jit_keys` (compiled kernels), :mod:`~tiein.mining.kernels` (the numpy
kernels and their tuning constants).
"""

from tiein.mining.counts import PairCounts, count_pairs
from tiein.mining.mine import MinedPairs, mine_pairs

__all__ = ["MinedPairs", "PairCounts", "count_pairs", "mine_pairs"]

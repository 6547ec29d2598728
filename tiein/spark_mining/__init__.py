"""Pair statistics on Apache Spark: the scale-out twin of :func:`tiein.mining.mine_pairs`.

:func:`mine_pairs_spark` takes the same options and returns the same :class:`MinedPairs`: the
same ``PAIR_STATS`` rows in the same order, with equal counts and bit-identical floats (the
four ratios are computed from the same integers by the same IEEE-754 double operations in the
same order; Java's double arithmetic is strict, so the bits agree), and the same report keys.

Use it when the order history does not fit one machine. On one machine it is much slower
than the numpy engine (see docs/scale-out.md). Input is an ``ORDERS``/``VIEWS`` Arrow
table or, for data beyond the driver, Parquet files read by the Spark job itself.

How the job runs (DataFrame API; nothing is collected to the driver but the result table):

1. baskets: ``groupBy(basket)`` → the sorted distinct products of each basket
   (``array_sort(collect_set)``; Spark's string order is the byte order, as Arrow's);
   giant baskets (more than ``max_basket`` products) are dropped before any counting;
2. co-basket pairs: each product with the products after it in its sorted basket
   (``posexplode`` + ``slice``), no self-join;
3. bought-after pairs: distinct ``(customer, time, product)`` events outside giant baskets;
   two window frames per customer ordered by time give each event the start and the length of
   its partner range ``(t, t + window]``; customers over ``max_customer_items`` distinct
   products or ``max_customer_items ** 2`` pair instances are skipped; the others' sorted
   event arrays are sliced per event (no self-join), then ``(customer, a, b)`` made distinct;
4. one aggregation over the union of both kinds of pair instances gives ``n_ab``,
   ``after_ab`` and ``after_ba``; the kept pairs are joined with the product counts, the ratios
   computed, and the result collected as Arrow and sorted by ``(a, b)``.

Modules: :mod:`~tiein.spark_mining.session` (pyspark on demand, the session, :func:`~tiein.spark_mining.session.session_for`),
:mod:`~tiein.spark_mining.inputs` (Arrow or Parquet order lines), :mod:`~tiein.spark_mining.mine`
(:func:`mine_pairs_spark`).
"""

from tiein.spark_mining.mine import mine_pairs_spark
from tiein.spark_mining.session import spark_session

__all__ = ["mine_pairs_spark", "spark_session"]

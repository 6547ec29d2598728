"""Is a freshly built graph whole and plausible? Checked before anything is written, so a build
that kept nothing (a wrong ``--map``, orders of another shop, a file of blank ids) refuses with
one line instead of replacing a good graph with an empty one.

The floors (:class:`Floors`) are the user's to lower: ``--min-matched SHARE`` or
``--allow-empty`` (no floor at all, for a deliberately empty catalog).

>>> f = Floors()
>>> check_counts(f, products=0, blank_ids=12, order_lines=0, unknown_lines=0, samples=[],
...              baskets=0, multi_baskets=0, relations=0)
Traceback (most recent call last):
...
tiein.errors.ConfigError: the build kept no products (12 rows without a product id): is --map product_id the id column? Nothing was changed (--allow-empty builds it anyway).
>>> check_counts(f, products=9, blank_ids=0, order_lines=10, unknown_lines=90,
...              samples=["u1", "u2"], baskets=4, multi_baskets=4, relations=3)
Traceback (most recent call last):
...
tiein.errors.ConfigError: only 10% of the order lines (10 of 100) are for products of the catalog (unmatched ids such as 'u1', 'u2'): does --map product_id name the same id in both files? Nothing was changed (--min-matched 0.1 or --allow-empty builds it anyway).
>>> check_counts(f, products=9, blank_ids=0, order_lines=90, unknown_lines=10, samples=[],
...              baskets=40, multi_baskets=30, relations=5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tiein.errors import ConfigError

_UNCHANGED = "Nothing was changed"


@dataclass(frozen=True)
class Floors:
    """What a build must reach to replace the graph.

    ``min_matched``: share of the order lines with a product id whose id is in the catalog;
    ``min_baskets_for_pairs``: with at least this many baskets, some basket must hold two
    products (else the product column is probably the customer or order column);
    ``allow_empty``: no floor at all."""

    min_matched: float = 0.5
    min_baskets_for_pairs: int = 20
    allow_empty: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_matched <= 1.0:
            raise ConfigError(f"--min-matched must be a share from 0 to 1, got {self.min_matched}")


def check_counts(
    floors: Floors,
    *,
    products: int,
    blank_ids: int,
    order_lines: int,
    unknown_lines: int,
    samples: list[str],
    baskets: int,
    multi_baskets: int,
    relations: int,
) -> None:
    """Raise ConfigError (one line: what is wrong, the likely cause, the flag that overrides it)
    when the counts of a build fall under ``floors``."""
    if floors.allow_empty:
        return
    if products == 0:
        why = f" ({blank_ids:,} rows without a product id)" if blank_ids else ""
        raise ConfigError(
            f"the build kept no products{why}: is --map product_id the id column? "
            f"{_UNCHANGED} (--allow-empty builds it anyway)."
        )
    total = order_lines + unknown_lines
    if total and order_lines / total < floors.min_matched:
        share = order_lines / total
        eg = f" (unmatched ids such as {', '.join(repr(s) for s in samples[:3])})" if samples else ""
        raise ConfigError(
            f"only {share:.0%} of the order lines ({order_lines:,} of {total:,}) are for products of "
            f"the catalog{eg}: does --map product_id name the same id in both files? "
            f"{_UNCHANGED} (--min-matched {max(0.0, round(share - 0.005, 2))} or --allow-empty builds it anyway)."
        )
    if baskets >= floors.min_baskets_for_pairs and multi_baskets == 0:
        raise ConfigError(
            f"none of the {baskets:,} baskets holds two different products, so no relation can be "
            "learnt: is --map order_id the order (basket) column and --map product_id the product "
            f"column, not the customer? {_UNCHANGED} (--allow-empty builds it anyway)."
        )


def basket_counts(orders: pa.Table) -> tuple[int, int]:
    """(baskets, baskets with at least two distinct products) of an ORDERS table."""
    if orders.num_rows == 0:
        return 0, 0
    sizes = (
        orders.select(["order_id", "product_id"])
        .group_by("order_id")
        .aggregate([("product_id", "count_distinct")])
        .column("product_id_count_distinct")
    )
    return len(sizes), int(pc.sum(pc.greater_equal(sizes, 2)).as_py() or 0)


def check_build(floors: Floors, loaded: Any, relations: pa.Table) -> None:
    """:func:`check_counts` on a ``loaders.Loaded`` and the classified relations."""
    report = loaded.report
    baskets, multi = basket_counts(loaded.orders)
    check_counts(
        floors,
        products=loaded.products.num_rows,
        blank_ids=report.blank_product_ids,
        # lines kept, counted as read (repeated lines were merged into one)
        order_lines=loaded.orders.num_rows + report.merged_duplicate_lines,
        unknown_lines=report.unknown_order_lines,
        samples=list(report.unknown_product_samples),
        baskets=baskets,
        multi_baskets=multi,
        relations=relations.num_rows,
    )

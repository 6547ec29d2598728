"""The livestream lineup (直播排品) and 组货: from a product pool (ids, a category or the shop's top
N by orders), a broadcast length and a slot length, the ordered slots a host works through.

Order (:mod:`tiein.lineup.plan`): traffic items (引流款) open; each hero (主推/爆款) comes with its
complements right after it (merchant rules kept: blocked pairs never together) and a traffic item
after it to hold the room; then profit items (利润款), then the rest, each by orders; a 福利加推
slot every N minutes at a product boundary; a closing bundle (:func:`tiein.service.bundle_payload`)
last. No two substitutes follow each other unless the slot is a deliberate comparison
(``compare``); price jumps and stock are checked; out-of-stock products are left out and listed.
``mode="assort"`` (组货, :mod:`tiein.lineup.assort`) first picks the N products covering the most
orders with the fewest substitutes, then lines them up. Everything is deterministic (ties by
product id) and explained in Chinese and English.

Layer: service. It reads the store only through :class:`tiein.graph.base.GraphReader`.

Modules: :mod:`~tiein.lineup.pool` (options, the pool, order counts), :mod:`~tiein.lineup.plan`
(units and layout), :mod:`~tiein.lineup.assort`, :mod:`~tiein.lineup.talk` (texts),
:mod:`~tiein.lineup.service` (:func:`lineup_payload`), :mod:`~tiein.lineup.types`.
"""

from tiein.lineup.pool import MAX_POOL, MODES, LineupOptions, order_counts, resolve_pool
from tiein.lineup.service import OPTION_NAMES, lineup_options, lineup_payload
from tiein.lineup.types import LineupPayload

__all__ = [
    "MAX_POOL",
    "MODES",
    "OPTION_NAMES",
    "LineupOptions",
    "LineupPayload",
    "lineup_options",
    "lineup_payload",
    "order_counts",
    "resolve_pool",
]

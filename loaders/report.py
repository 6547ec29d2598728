"""What a load read, kept, dropped and why: :class:`LoadReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FileRead:
    """One input file as read."""

    role: str  # catalog | orders | views | extra
    path: str
    format: str
    rows: int
    encoding: str | None = None
    delimiter: str | None = None


@dataclass
class LoadReport:
    """Counts of one load. Quality problems are counted here instead of failing the load.

    Order-line counts are in lines of the source file; ``*_quantity`` fields in units.
    """

    name: str = ""
    files: list[FileRead] = field(default_factory=list)
    seconds: float = 0.0
    # results
    products: int = 0
    order_lines: int = 0
    orders: int = 0
    customers: int = 0
    segments: int = 0  # distinct customer segments of the orders (--map segment=COLUMN)
    views: int = 0
    sessions: int = 0
    listed_pairs: dict[str, int] = field(default_factory=dict)
    products_derived_from: str | None = None  # "orders" / "views" when no catalog file was given
    # catalog quality
    duplicate_products: int = 0  # catalog rows dropped: their product id came earlier
    older_snapshot_rows: int = 0  # catalog rows dropped by latest_by (older versions)
    missing_titles: int = 0  # products whose title was blank (product id used)
    blank_product_ids: int = 0  # rows of any file without a product id (dropped)
    excluded_products: int = 0  # catalog rows excluded by the exclude rule
    # orders quality
    excluded_lines: int = 0  # order/view rows whose product id matched the exclude rule
    excluded_codes: dict[str, int] = field(default_factory=dict)  # the excluded ids, top 20 by rows
    blank_order_ids: int = 0
    zero_quantity_lines: int = 0
    zero_price_lines: int = 0  # dropped because options.zero_price == "drop"
    cancellation_lines: int = 0  # cancellation/return lines (order id prefix or negative quantity)
    cancelled_quantity: float = 0.0
    netted_quantity: float = 0.0  # cancelled units taken off the same customer's earlier purchases
    unmatched_cancellation_lines: int = 0  # no earlier purchase by that customer (or no customer)
    purchase_lines_cancelled: int = 0  # purchase lines that netting brought to zero (dropped)
    unknown_product_lines: int = 0  # order/view rows whose product is not in the catalog (dropped)
    unknown_product_ids: int = 0
    unknown_order_lines: int = 0  # of those, order lines (the build's matched-share floor)
    unknown_product_samples: list[str] = field(
        default_factory=list
    )  # up to 5 of the unknown ids in orders, for messages
    merged_duplicate_lines: int = 0  # repeated (order, product) lines summed into one
    empty_baskets: int = 0  # orders that had lines in the file but none left after cleaning
    giant_baskets: int = 0  # orders with more than giant_basket_limit products (dropped)
    giant_basket_lines: int = 0
    giant_basket_limit: int = 0
    dropped_listed_pairs: int = 0  # listed pairs with an end outside the catalog
    extra: dict[str, int] = field(default_factory=dict)  # dataset-specific counts, label -> n
    notes: list[str] = field(default_factory=list)  # decisions a reader should know about

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A short English summary, one line per fact; zero quality counts are left out."""
        out = [f"{self.name or 'load'}: {self.seconds:.2f} s"]
        for f in self.files:
            enc = f", {f.encoding}" if f.encoding else ""
            delim = f", delimiter {f.delimiter!r}" if f.delimiter else ""
            out.append(f"read {f.role} {f.path}: {f.rows:,} rows ({f.format}{enc}{delim})")
        derived = f" (derived from {self.products_derived_from})" if self.products_derived_from else ""
        out.append(f"products: {self.products:,}{derived}")
        if self.order_lines:
            out.append(
                f"orders: {self.orders:,} baskets, {self.order_lines:,} lines, {self.customers:,} customers"
                + (f", {self.segments:,} customer segments" if self.segments else "")
            )
        if self.views:
            out.append(f"views: {self.views:,} events in {self.sessions:,} sessions")
        for kind, n in self.listed_pairs.items():
            out.append(f"listed pairs {kind}: {n:,}")
        quality = [
            (self.duplicate_products, "catalog rows with a repeated product id dropped (first kept)"),
            (self.older_snapshot_rows, "older catalog snapshot rows dropped (latest kept)"),
            (self.missing_titles, "products without a title (product id used)"),
            (self.blank_product_ids, "rows without a product id dropped"),
            (self.excluded_products, "catalog rows excluded by rule"),
            (self.excluded_lines, "order/view rows excluded by rule"),
            (self.blank_order_ids, "order lines without an order id dropped"),
            (self.zero_quantity_lines, "order lines with quantity 0 dropped"),
            (self.zero_price_lines, "order lines with price 0 dropped"),
            (self.cancellation_lines, "cancellation/return lines"),
            (self.unmatched_cancellation_lines, "cancellation lines without an earlier purchase to net"),
            (self.purchase_lines_cancelled, "purchase lines fully cancelled (dropped)"),
            (
                self.unknown_product_lines,
                f"order/view rows with {self.unknown_product_ids:,} unknown product ids dropped",
            ),
            (self.merged_duplicate_lines, "repeated (order, product) lines merged"),
            (self.empty_baskets, "orders left empty after cleaning"),
            (
                self.giant_baskets,
                f"giant orders (> {self.giant_basket_limit} products, {self.giant_basket_lines:,} lines) dropped",
            ),
            (self.dropped_listed_pairs, "listed pairs with an end outside the catalog dropped"),
        ]
        out.extend(f"{n:,} {what}" for n, what in quality if n)
        if self.cancellation_lines:
            out.append(
                f"cancelled quantity {self.cancelled_quantity:,.0f}, netted against earlier purchases "
                f"{self.netted_quantity:,.0f}"
            )
        if self.excluded_codes:
            top = ", ".join(f"{k} ({v:,})" for k, v in list(self.excluded_codes.items())[:8])
            out.append(f"excluded ids: {top}")
        out.extend(f"{n:,} {label}" for label, n in self.extra.items())
        out.extend(self.notes)
        return out

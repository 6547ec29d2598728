"""Query filters shared by every list surface: in stock, exclude, category, brand, price range,
minimum score, offset."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tiein.errors import ConfigError


# ----------------------------------------------------------------------------- query filters
@dataclass(frozen=True)
class Filters:
    """What a caller narrows a list answer to (related, add-ons, bundle add-ons, search, export):

    in_stock: only products with stock > 0 or unknown stock; exclude: product ids left out;
    category: the leaf category or any level of the category path (case-insensitive); brand
    (case-insensitive); min_price / max_price: the price range (an unpriced product is left out
    when a bound is set); min_score: the relation score (similarity for search) at least this
    (pinned rows are kept); offset: rows skipped before the ``k`` returned (not for bundles)."""

    in_stock: bool = False
    exclude: frozenset[str] = frozenset()
    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    min_score: float | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        for name in ("min_price", "max_price", "min_score"):
            v = getattr(self, name)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            ):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ConfigError(f"min_price {self.min_price} is above max_price {self.max_price}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ConfigError(f"offset must be a whole number >= 0, got {self.offset!r}")
        if isinstance(self.exclude, str) or not all(isinstance(x, str) for x in self.exclude):
            raise ConfigError(f"exclude must be product ids, got {self.exclude!r}")
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        for name in ("category", "brand"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"{name} must be a non-empty text, got {v!r}")

    @classmethod
    def make(
        cls,
        *,
        in_stock: bool | None = None,
        exclude: Iterable[str] | str | None = None,
        category: str | None = None,
        brand: str | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        min_score: float | None = None,
        offset: int | None = None,
    ) -> Filters:
        """Filters from optional values; ``exclude`` also as one text of ids joined by commas."""
        ids: list[str] = []
        for part in [exclude] if isinstance(exclude, str) else list(exclude or ()):
            ids += [p.strip() for p in str(part).split(",") if p.strip()]
        return cls(
            in_stock=bool(in_stock),
            exclude=frozenset(ids),
            category=category,
            brand=brand,
            min_price=min_price,
            max_price=max_price,
            min_score=min_score,
            offset=offset or 0,
        )

    @property
    def narrows(self) -> bool:
        """Whether any filter but the offset is set."""
        return bool(
            self.in_stock
            or self.exclude
            or self.category
            or self.brand
            or self.min_price is not None
            or self.max_price is not None
            or self.min_score is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """The filters set, as JSON (what an answer reports it applied)."""
        out: dict[str, Any] = {}
        if self.in_stock:
            out["in_stock"] = True
        if self.exclude:
            out["exclude"] = sorted(self.exclude)
        for name in ("category", "brand", "min_price", "max_price", "min_score"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.offset:
            out["offset"] = self.offset
        return out

    def allows(self, product: Mapping[str, Any]) -> bool:
        """Whether ``product`` (a product dict or a row holding its fields) passes every filter
        but the score."""
        if product.get("product_id") in self.exclude:
            return False
        if self.in_stock:
            stock = product.get("stock")
            if stock is not None and stock <= 0:
                return False
        if (
            self.brand is not None
            and str(product.get("brand") or "").casefold() != self.brand.strip().casefold()
        ):
            return False
        if self.category is not None:
            want = self.category.strip().casefold()
            names = {str(product.get("category") or "").casefold()}
            names |= {p.strip().casefold() for p in str(product.get("category_path") or "").split(">")}
            if want not in names:
                return False
        if self.min_price is not None or self.max_price is not None:
            price = product.get("price")
            if price is None or isinstance(price, bool) or not math.isfinite(float(price)):
                return False
            if self.min_price is not None and price < self.min_price - 1e-9:
                return False
            if self.max_price is not None and price > self.max_price + 1e-9:
                return False
        return True

    def allows_score(self, score: float | None, *, pinned: bool = False) -> bool:
        return pinned or self.min_score is None or (score is not None and score >= self.min_score - 1e-12)

    def keep(self, rows: Iterable[dict[str, Any]], score: str = "score") -> list[dict[str, Any]]:
        """The rows that pass every filter (``score``: the row's score field)."""
        return [
            r
            for r in rows
            if self.allows(r) and self.allows_score(r.get(score), pinned=bool(r.get("pinned")))
        ]


NO_FILTERS = Filters()

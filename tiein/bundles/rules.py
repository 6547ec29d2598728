"""The merchant's bundle rules and the checks on a request's arguments.

First step of the bundle data flow: :class:`BundleRules` (config, with named defaults) and the
validators that turn a caller's ``budget`` / ``threshold``, ``roles`` and ``mix`` into checked
values (or a ConfigError) before any store read; :mod:`tiein.bundles.assembly` and
:mod:`tiein.bundles.cart` call them first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tiein.errors import ConfigError
from tiein.model import SALES_ROLES


@dataclass(frozen=True)
class BundleRules:
    """The merchant's bundle rules, with named defaults.

    min_price_ratio / max_price_ratio: each add-on's price as a share of the anchor's price
        (0.3-0.8: a 299 tent takes add-ons from 89.70 to 239.20). Applied only when both prices are
        known; an unpriced anchor or add-on skips the band for that pair.
    same_price_ok: an add-on at exactly the anchor's price (to the cent) passes the band too, so a
        one-price shop (everything 10) gets bundles; the band's job is to keep add-ons from
        dwarfing the anchor, and an equal price does not.
    size: default bundle size, anchor included (3 = anchor + 2 add-ons); :func:`bundle` takes its
        size from its own ``size`` argument, callers building from config pass ``rules.size``.
    max_size: the largest size accepted (anchor + 5).
    max_per_category: items per leaf category in a bundle, anchor included.
    cart_per_category: items per leaf category among cart add-ons (the cart's own items do not
        count: a second yogurt for a cart with yogurt is fine); on held-out carts
        (bench/quality.py) 2 completed 25 % more Instacart carts than 1, and 3 completed 7 % more
        than 2 (Groceries-zh 5 %; 4 and more: within noise of 3).
    require_in_stock: drop items with stock <= 0 (null stock = unknown = allowed).
    exclude_substitutes: never offer a substitute of the anchor / cart, nor two substitutes of
        each other. Switch off only to see what the rule removes.
    reverse_substitutes: check substitutes both ways, i.e. also read each candidate's own
        substitute list before taking it (one store read per item taken, ~0.8 ms embedded). False
        trusts the anchor's / cart's / chosen items' lists alone (the classifier scores substitutes
        almost symmetrically), saving that read for the last item and for every add-on shown.
    discount: bundle discount the suggested price is computed for (0.1 = 10 %).
    charm_digit: last digit of a suggested price (8: 398; 9 for Western shops; None: whole tens).
    rounding_slack: how far below the discounted price rounding may go, as a share of the total.
    candidate_k: complements (and substitutes) read per product from the store.
    """

    min_price_ratio: float = 0.3
    max_price_ratio: float = 0.8
    size: int = 3
    max_size: int = 6
    max_per_category: int = 1
    cart_per_category: int = 3
    require_in_stock: bool = True
    exclude_substitutes: bool = True
    reverse_substitutes: bool = True
    discount: float = 0.1
    charm_digit: int | None = 8
    rounding_slack: float = 0.03
    candidate_k: int = 50
    same_price_ok: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not (0 <= self.min_price_ratio <= self.max_price_ratio):
            problems.append(
                f"price ratios need 0 <= min_price_ratio <= max_price_ratio, got {self.min_price_ratio} and {self.max_price_ratio}"
            )
        if not _is_int(self.max_size) or self.max_size < 2:
            problems.append(f"max_size must be an integer >= 2, got {self.max_size!r}")
        elif not _is_int(self.size) or not 2 <= self.size <= self.max_size:
            problems.append(f"size must be an integer from 2 to {self.max_size}, got {self.size!r}")
        if not _is_int(self.max_per_category) or self.max_per_category < 1:
            problems.append(f"max_per_category must be an integer >= 1, got {self.max_per_category!r}")
        if not _is_int(self.cart_per_category) or self.cart_per_category < 1:
            problems.append(f"cart_per_category must be an integer >= 1, got {self.cart_per_category!r}")
        if not (0 <= self.discount < 1):
            problems.append(f"discount must be in [0, 1), got {self.discount!r}")
        if self.charm_digit is not None and (not _is_int(self.charm_digit) or not 0 <= self.charm_digit <= 9):
            problems.append(f"charm_digit must be a digit 0-9 or None, got {self.charm_digit!r}")
        if not (0 <= self.rounding_slack < 1):
            problems.append(f"rounding_slack must be in [0, 1), got {self.rounding_slack!r}")
        if not _is_int(self.candidate_k) or self.candidate_k < 1:
            problems.append(f"candidate_k must be an integer >= 1, got {self.candidate_k!r}")
        if problems:
            raise ConfigError("bad bundle rules: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- request arguments
def _validate_budget(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _validate_mix(mix: Sequence[str] | str | None) -> list[str] | None:
    """Sales roles in add-on order: a sequence or a ``"hero+profit"`` / ``"hero,profit"`` string.
    Each must be one of tiein.model.SALES_ROLES."""

    if mix is None:
        return None
    if isinstance(mix, str):
        parts = [p.strip() for p in mix.replace(",", "+").split("+")]
    elif isinstance(mix, Iterable) and not isinstance(mix, bytes | Mapping):
        parts = list(mix)
    else:
        raise ConfigError(f"mix must be sales roles such as 'hero+profit', got {mix!r}")
    out = [p.strip().lower() if isinstance(p, str) else p for p in parts]
    bad = [p for p in out if p not in SALES_ROLES]
    if not out or bad:
        raise ConfigError(
            f"mix must name sales roles from {', '.join(SALES_ROLES)} (e.g. hero+profit), got {mix!r}"
        )
    return out


def _validate_roles(roles: list[set[str]] | None) -> list[tuple[set[str], str]] | None:
    """Roles as (casefolded names, label); the label is the first name in sorted order."""
    if roles is None:
        return None
    if isinstance(roles, str | bytes) or not isinstance(roles, Iterable):
        raise ConfigError(f"roles must be a list of sets of category names or product ids, got {roles!r}")
    out = []
    for i, role in enumerate(roles, 1):
        names = {role} if isinstance(role, str) else role
        if (
            not isinstance(names, Iterable)
            or not names
            or not all(isinstance(n, str) and n.strip() for n in names)
        ):
            raise ConfigError(
                f"role {i} must be a non-empty set of category names or product ids, got {role!r}"
            )
        out.append(({n.strip().casefold() for n in names}, sorted(n.strip() for n in names)[0]))
    if not out:
        raise ConfigError("roles is empty; leave it out to pick add-ons by score")
    return out

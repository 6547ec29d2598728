"""Bundle price maths: the price band, the sayable bundle price and the pitch.

Used twice in the bundle data flow: while candidates are checked (:func:`_in_band`, the add-on's
price against the anchor's) and once a bundle is assembled (:func:`price_maths`: the discounted,
charm-rounded suggested price, the saving and the one-line pitch; :func:`unpriced_pitch` when a
price is missing). See :mod:`tiein.bundles` for the rounding order. The pitch shows money with the
shop's currency and two decimals (:func:`tiein.explain.format_money`: ``TIEIN_CURRENCY``, default
¥; a ``currency`` on the rules wins).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tiein.bundles.rules import BundleRules
from tiein.money import format_money


def charm_price(amount: float, total: float, *, charm_digit: int | None = 8, slack: float = 0.03) -> float:
    """The largest sayable price at or below ``amount`` (the discounted total) that is no more
    than ``slack × total`` below it; see the module docstring for the order tried.

    >>> charm_price(403.2, 448)            # 448 apart, 10 % off: 398 together
    398.0
    >>> charm_price(474.3, 527)
    468.0
    >>> charm_price(474.3, 527, charm_digit=None)
    470.0
    >>> charm_price(45.0, 50)              # 38 gives away too much: whole number
    45.0
    >>> charm_price(13.5, 15)
    13.5
    """
    floor_limit = amount - slack * total - 1e-9
    eps = 1e-9
    candidates: list[float] = []
    if charm_digit is not None:
        candidates.append(math.floor((amount - charm_digit + eps) / 10) * 10 + charm_digit)
    candidates += [
        math.floor(amount / 10 + eps) * 10,
        math.floor(amount + eps),
        math.floor(amount * 10 + eps) / 10,
    ]
    for price in candidates:
        if 0 < price <= amount + eps and price >= floor_limit:
            return float(price)
    return round(amount, 2)


def pitch(total: float, price: float, saving: float, currency: str | None = None) -> tuple[str, str]:
    """The one-line pitch in Chinese and English, every amount with the currency and two decimals
    (``currency``: a symbol or code, default ``TIEIN_CURRENCY`` or ¥).

    >>> pitch(448, 398, 50, "¥")
    ('分开买 ¥448.00，一起拿 ¥398.00，省 ¥50.00', '¥448.00 separately, ¥398.00 together, save ¥50.00')
    >>> pitch(102.8, 90, 12.8, "USD")[1]
    '$102.80 separately, $90.00 together, save $12.80'
    """
    t, p, s = (format_money(v, currency) for v in (total, price, saving))
    return f"分开买 {t}，一起拿 {p}，省 {s}", f"{t} separately, {p} together, save {s}"


def unpriced_pitch(n: int) -> tuple[str, str]:
    """The pitch of a bundle of ``n`` items (anchor included) not all of which have a price.

    >>> unpriced_pitch(3)
    ('这 3 件一起买，价格以店内为准', 'these 3 go together, prices at checkout')
    """
    return f"这 {n} 件一起买，价格以店内为准", f"these {n} go together, prices at checkout"


def price_maths(total: float, rules: BundleRules) -> tuple[float, float, str, str]:
    """(suggested price, saving, pitch_zh, pitch_en) for a bundle total under ``rules``."""
    if rules.discount == 0:
        suggested = round(total, 2)
    else:
        suggested = charm_price(
            total * (1 - rules.discount), total, charm_digit=rules.charm_digit, slack=rules.rounding_slack
        )
    saving = round(total - suggested, 2)
    # rules without a currency field (or None) show the shop's: TIEIN_CURRENCY, else ¥
    zh, en = pitch(total, suggested, saving, getattr(rules, "currency", None))
    return suggested, saving, zh, en


# ----------------------------------------------------------------------------- price band
def _price(p: Mapping[str, Any]) -> float | None:
    v = p.get("price")
    if v is None or isinstance(v, bool):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _in_band(price: float | None, anchor_price: float | None, rules: BundleRules) -> bool:
    """Whether an add-on at ``price`` passes the price band of an anchor at ``anchor_price``: any
    unknown price passes (the band needs both), and so does the anchor's own price with
    ``rules.same_price_ok``.

    >>> r = BundleRules()
    >>> [_in_band(p, 100, r) for p in (29, 30, 80, 81, 100, 101, None)]
    [False, True, True, False, True, False, True]
    >>> _in_band(50, None, r), _in_band(100, 100, BundleRules(same_price_ok=False))
    (True, False)
    """
    if price is None or anchor_price is None:
        return True
    if rules.same_price_ok and abs(price - anchor_price) < 0.005:
        return True
    return rules.min_price_ratio * anchor_price - 1e-9 <= price <= rules.max_price_ratio * anchor_price + 1e-9

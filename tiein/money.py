"""Money and shares as a seller says them: the shop's currency symbol (``TIEIN_CURRENCY``, default
¥; the same symbol in Chinese and English text), two decimals, thousands grouped, 元 after the
amount; percentages without noise. Used by the explanations and the bundle pitches."""

from __future__ import annotations

import os
import unicodedata

from tiein.errors import ConfigError

# The shop's currency: a symbol (¥, $, €, 元) or an ISO code (CNY, USD, …) in TIEIN_CURRENCY; both
# languages show the same symbol, so a shop's zh and en texts quote the same prices.
CURRENCY_ENV = "TIEIN_CURRENCY"
DEFAULT_CURRENCY = "¥"
CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥",
    "RMB": "¥",
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "HKD": "HK$",
    "TWD": "NT$",
    "SGD": "S$",
    "AUD": "A$",
    "CAD": "C$",
    "KRW": "₩",
    "INR": "₹",
}
# Symbols written after the amount ("98.00 元").
SUFFIX_SYMBOLS = frozenset({"元", "円", "圆"})
MAX_CURRENCY_CHARS = 8


def format_amount(value: float) -> str:
    """A count or a number of days as a seller says it: whole numbers without decimals, else two
    decimals. Money goes through :func:`format_money`.

    >>> format_amount(398.0), format_amount(13.5), format_amount(0.1 + 0.2)
    ('398', '13.50', '0.30')
    """
    rounded = round(float(value), 2)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.2f}"


def currency_symbol(currency: str | None = None) -> str:
    """The symbol prices are shown with: ``currency`` (a symbol or an ISO code), else the
    environment's ``TIEIN_CURRENCY``, else ¥. ConfigError for an over-long or control-character value.

    >>> currency_symbol(), currency_symbol("usd"), currency_symbol("€"), currency_symbol(" 元 ")
    ('¥', '$', '€', '元')
    """
    raw = currency if currency is not None else os.environ.get(CURRENCY_ENV)
    text = (raw or "").strip()
    if not text:
        return DEFAULT_CURRENCY
    if len(text) > MAX_CURRENCY_CHARS or any(unicodedata.category(c).startswith("C") for c in text):
        raise ConfigError(
            f"currency {raw!r}: expected a symbol (¥, $, €, 元) or a currency code (CNY, USD, EUR)"
        )
    return CURRENCY_SYMBOLS.get(text.upper(), text)


def format_money(value: float, currency: str | None = None) -> str:
    """A price with the shop's currency and always two decimals (thousands grouped), the same in
    Chinese and English text; ``currency`` as for :func:`currency_symbol`.

    >>> format_money(102.8), format_money(90), format_money(1299, "USD"), format_money(98, "元")
    ('¥102.80', '¥90.00', '$1,299.00', '98.00 元')
    >>> format_money(-5, "EUR")
    '-€5.00'
    """
    symbol = currency_symbol(currency)
    amount = round(float(value), 2) + 0.0  # no "-0.00"
    number = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    if symbol in SUFFIX_SYMBOLS:
        return f"{sign}{number} {symbol}"
    return f"{sign}{symbol}{number}"


def format_percent(ratio: float) -> str:
    """A price ratio as a whole percent.

    >>> format_percent(0.4514), format_percent(1.5)
    ('45%', '150%')
    """
    return f"{round(ratio * 100):d}%"

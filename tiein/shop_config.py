"""The shop's own settings, in one file beside the graph: ``HOME/shop.toml``.

Every key is optional; a home without the file behaves as before::

    # HOME/shop.toml
    currency = "¥"              # prices in bundle pitches and reasons (a symbol or CNY/USD/EUR…)
    timezone = "Asia/Shanghai"  # zone-less event times; the days of the A/B report

    [bundle]                    # the bundle rules: tiein bundle / addons / export and the API
    size = 3                    # items per bundle, anchor included (2-6)
    min_price_ratio = 0.3       # an add-on costs 30-80 % of the main item
    max_price_ratio = 0.8
    discount = 0.1              # 10 % off for the suggested bundle price
    charm_digit = 8             # last digit of a bundle price (398); -1: whole tens
    rounding_slack = 0.03       # how far below the discounted price rounding may go

What wins, most specific first: a command option or an API parameter, then the environment
(``TIEIN_CURRENCY``, ``TIEIN_TIMEZONE``), then this file, then the built-in default. The file is
read again when it changes (a running server picks an edit up at its next request). A bad file is
a ConfigError naming the file, the key and why; it never falls back silently.
"""

from __future__ import annotations

import math
import os
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiein.errors import ConfigError
from tiein.money import CURRENCY_ENV, currency_symbol

SHOP_FILE = "shop.toml"
TOP_KEYS = ("currency", "timezone", "bundle")
# bundle key -> (type, lowest, highest, highest is inclusive)
BUNDLE_KEYS: dict[str, tuple[type, float, float, bool]] = {
    "size": (int, 2, 6, True),
    "min_price_ratio": (float, 0.0, 100.0, True),
    "max_price_ratio": (float, 0.0, 100.0, True),
    "discount": (float, 0.0, 1.0, False),
    "charm_digit": (int, -1, 9, True),
    "rounding_slack": (float, 0.0, 1.0, False),
}


@dataclass(frozen=True)
class ShopConfig:
    """What ``HOME/shop.toml`` says (None / empty where it says nothing); ``path`` is the file
    read, None when there is none."""

    currency: str | None = None
    timezone: str | None = None
    bundle: dict[str, int | float] = field(default_factory=dict)
    path: Path | None = None


_CACHE: dict[Path, tuple[tuple[int, int], ShopConfig]] = {}


def shop_file(home: Path | str) -> Path:
    return Path(home) / SHOP_FILE


def load_shop_config(home: Path | str | None) -> ShopConfig:
    """The shop config of ``home`` (an empty one when ``home`` is None or has no shop.toml);
    re-read only when the file changed. ConfigError for a bad file."""
    if home is None:
        return ShopConfig()
    path = shop_file(home)
    try:
        st = path.stat()
    except FileNotFoundError:
        return ShopConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the shop config: {exc.strerror or exc}") from None
    key = (st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    config = parse_shop_config(path)
    _CACHE[path] = (key, config)
    return config


def parse_shop_config(path: Path) -> ShopConfig:
    """``path`` read and checked (see the module docstring for the keys)."""
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the shop config must be UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the shop config: {exc.strerror or exc}") from None
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(TOP_KEYS)}")
    currency = _text(path, raw, "currency")
    if currency is not None:
        try:
            currency_symbol(currency)
        except ConfigError as exc:
            raise ConfigError(f"{path}: currency: {exc}") from None
    zone = _text(path, raw, "timezone")
    if zone is not None:
        check_zone(zone, f"{path}: timezone")
    bundle = raw.get("bundle", {})
    if not isinstance(bundle, dict):
        raise ConfigError(f"{path}: bundle must be a table ([bundle] with key = value lines)")
    return ShopConfig(currency, zone, _bundle(path, bundle), path)


def _text(path: Path, raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: {key} must be a non-empty text, got {value!r}")
    return value.strip()


def _bundle(path: Path, table: dict[str, Any]) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for key, value in table.items():
        if key not in BUNDLE_KEYS:
            raise ConfigError(f"{path}: unknown bundle key {key!r}; the keys are {', '.join(BUNDLE_KEYS)}")
        kind, lo, hi, hi_in = BUNDLE_KEYS[key]
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{path}: bundle.{key} must be a whole number, got {value!r}")
        if not number_ok or not math.isfinite(value):
            raise ConfigError(f"{path}: bundle.{key} must be a number, got {value!r}")
        if not (lo <= value <= hi if hi_in else lo <= value < hi):
            upper = f"<= {hi:g}" if hi_in else f"< {hi:g}"
            raise ConfigError(f"{path}: bundle.{key} must be >= {lo:g} and {upper}, got {value!r}")
        out[key] = kind(value)
    lo_r, hi_r = out.get("min_price_ratio"), out.get("max_price_ratio")
    if lo_r is not None and hi_r is not None and lo_r > hi_r:
        raise ConfigError(f"{path}: bundle.min_price_ratio {lo_r:g} is above bundle.max_price_ratio {hi_r:g}")
    return out


def check_zone(name: str, where: str) -> str:
    """``name`` if the time zone database knows it, else ConfigError naming ``where``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r} ({where}); give an IANA name such as Asia/Shanghai, "
            "Europe/Berlin, America/New_York or UTC"
        ) from None
    return name


def shop_currency(home: Path | str | None, currency: str | None = None) -> str | None:
    """The currency a command or request uses: ``currency``, else ``TIEIN_CURRENCY`` (None: the
    money formatting reads it), else the shop config's, else None (the default, ¥)."""
    if currency is not None:
        return currency
    if os.environ.get(CURRENCY_ENV):
        return None
    return load_shop_config(home).currency

"""CJK fonts for the report charts: find one (installed with the OS: Debian/Ubuntu
``apt-get install fonts-noto-cjk``, as ``make setup`` and ``.ci/run`` do) and let matplotlib fall
back to it for the glyphs its default font lacks, so Chinese labels are drawn, not empty boxes.

matplotlib caches its font list on first use; a font installed later is not in that cache, so
:func:`cjk_font` also looks at the font files on disk and registers the ones it recognises.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Family names tried in order (Linux packages first, then macOS / Windows system fonts).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Microsoft YaHei",
    "SimHei",
    "Arial Unicode MS",
)
# Font file names that hold CJK glyphs (for fonts installed after matplotlib built its cache).
_FILE_RE = re.compile(
    r"(cjk|wqy|wenquanyi|sourcehan|droidsansfallback|notosans(sc|tc)|pingfang|hiragino|msyh|simhei|arialuni)",
    re.IGNORECASE,
)
SAMPLE = "转化率提升显著客单价每日用户"  # characters the report draws; a usable font has them all


def covers(path: str, text: str = SAMPLE) -> bool:
    """Whether the font file at ``path`` has a glyph (not .notdef) for every character of ``text``."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(c)) != 0 for c in text if not c.isspace())


@lru_cache(maxsize=1)
def cjk_font() -> tuple[str, str] | None:
    """(family name, file) of a font that draws Chinese, or None when the system has none."""
    from matplotlib import font_manager as fm

    def known() -> dict[str, str]:
        return {f.name: f.fname for f in fm.fontManager.ttflist}

    fonts = known()
    if not any(name in fonts for name in CJK_FAMILIES):
        for path in fm.findSystemFonts():
            if _FILE_RE.search(path.rsplit("/", 1)[-1]):
                try:
                    fm.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        fonts = known()
    candidates = [n for n in CJK_FAMILIES if n in fonts]
    candidates += sorted(n for n in fonts if "CJK" in n and n not in candidates)
    for name in candidates:
        if covers(fonts[name]):
            return name, fonts[name]
    return None


def font_rc() -> dict[str, Any]:
    """matplotlib rc settings: the default sans-serif font first, the CJK font as the fallback for
    the glyphs it lacks (matplotlib >= 3.6 falls back glyph by glyph); {} without a CJK font."""
    found = cjk_font()
    if found is None:
        return {}
    return {"font.family": ["DejaVu Sans", found[0]], "axes.unicode_minus": False}

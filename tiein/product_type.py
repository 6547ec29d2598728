"""Product type: what kind of thing a product is ("lunch bag", "t-light holder", 牛奶, 面霜).

The catalog's leaf category is the type where there is one. Without categories the type comes
from the title, learnt over the whole catalog:

- **English-style titles** (giftware: ``LUNCH BAG RED RETROSPOT``, ``WHITE HANGING HEART T-LIGHT
  HOLDER``, ``SET OF 3 BLACK FLYING DUCKS``): quantity openers (SET OF 3, PACK OF 12, numbers),
  colours, sizes and pattern words are attributes, not the type; a pattern word is learnt as one
  when it mostly follows a colour (RED RETROSPOT, PINK POLKADOT). A *family prefix* — the first
  two words shared by at least ``min_family`` titles that go on differently (LUNCH BAG …, JUMBO
  BAG …) — is the type; otherwise the head of the title: the word(s) before OF (HEART OF WICKER →
  heart), else the last two remaining words (passport cover, t-light holder).
- **Chinese titles** (``全脂牛奶``, ``资生堂悦薇珀翡焕活洁面膏125ml 去角质保湿柔肤``): the head noun
  closes a run of Chinese characters, so the type is the run-final two characters that are most
  common across the catalog (牛奶, 面膏), ignoring selling words (包邮, 正品, 多色 …).

Types are lower-case strings; None when a title gives nothing to go on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pyarrow as pa

from tiein.model import CATEGORY_SEP

COLOURS = frozenset(
    """RED PINK BLUE GREEN WHITE BLACK IVORY CREAM YELLOW ORANGE PURPLE LILAC GREY GRAY SILVER GOLD
    BROWN BEIGE NATURAL CLEAR TURQUOISE TEAL AQUA NAVY MINT ROSE AMBER COPPER ZINC CHROME PASTEL
    MULTICOLOUR MULTI COLOUR COLOURED ASSORTED""".split()
)
SIZES = frozenset(
    """SMALL LARGE MEDIUM MINI JUMBO BIG GIANT TALL ROUND SQUARE XL XXL S M L SINGLE DOUBLE TRIPLE
    LONG SHORT WIDE TINY""".split()
)
FILLERS = frozenset("THE A AN AND WITH IN ON FOR DESIGN DESIGNS STYLE NEW".split())
QUANTITY = re.compile(r"^(?:(?:SET|PACK|BOX|BAG|TUB|TIN|PAIR)\s+(?:OF\s+)?\d+\s+|\d+\s+)")
WORD = re.compile(r"[A-Z0-9][A-Z0-9'\-]*")
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
ZH_STOP = frozenset(
    "包邮 正品 多色 新品 专柜 官方 旗舰 特价 限量 套装 礼盒 女士 男士 保湿 补水 滋润 清洁 秋冬".split()
)
# 套装/礼盒 (sets) and effect words (保湿 …) describe, they do not name a product kind


def _words(title: str) -> list[str]:
    head = re.split(r"[,;:/(]|\s-\s", title.upper(), maxsplit=1)[0]  # KEY FOB , GARAGE DESIGN
    head = QUANTITY.sub("", head.strip())
    return [w.strip("'-") for w in WORD.findall(head) if w.strip("'-")]


def learn_patterns(titles: Sequence[str | None], min_count: int = 3, share: float = 0.5) -> frozenset[str]:
    """Words that mostly follow a colour (RETROSPOT, POLKADOT): patterns, not product types.

    >>> sorted(learn_patterns(["LUNCH BAG RED RETROSPOT", "JUMBO BAG RED RETROSPOT",
    ...                         "CAKE TIN PINK RETROSPOT", "RETROSPOT APRON"], min_count=3))
    ['RETROSPOT']
    """
    seen: Counter[str] = Counter()
    after_colour: Counter[str] = Counter()
    for t in titles:
        if not t or CJK_RUN.search(t):
            continue
        ws = _words(t)
        for i, w in enumerate(ws):
            seen[w] += 1
            if i and ws[i - 1] in COLOURS and w not in COLOURS:
                after_colour[w] += 1
    return frozenset(w for w, n in after_colour.items() if n >= min_count and n >= share * seen[w])


def _content(words: list[str], attributes: frozenset[str]) -> list[str]:
    return [w for w in words if w not in attributes and not w.isdigit()]


def english_types(titles: Sequence[str | None], min_family: int = 4) -> list[str | None]:
    """The type of every English-style title (None for empty or Chinese ones).

    >>> english_types(["LUNCH BAG RED RETROSPOT", "LUNCH BAG PINK POLKADOT", "LUNCH BAG SUKI",
    ...                "LUNCH BAG APPLE", "WHITE HANGING HEART T-LIGHT HOLDER",
    ...                "HEART OF WICKER SMALL", "SET OF 3 BLACK FLYING DUCKS", "BLUE POLKADOT PASSPORT COVER"])
    ['lunch bag', 'lunch bag', 'lunch bag', 'lunch bag', 't-light holder', 'heart', 'flying ducks', 'passport cover']
    """
    attributes = COLOURS | SIZES | FILLERS | learn_patterns(titles)
    words = [_words(t) if t and not CJK_RUN.search(t) else [] for t in titles]
    # family prefixes: the first two words (no attribute among them) shared by titles going on differently
    tails: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for ws in words:
        if len(ws) >= 3 and ws[0] not in attributes and ws[1] not in attributes and "OF" not in ws[:2]:
            tails.setdefault((ws[0], ws[1]), set()).add(tuple(ws[2:]))
    families = {k for k, v in tails.items() if len(v) >= min_family}
    out: list[str | None] = []
    for ws in words:
        if not ws:
            out.append(None)
            continue
        if len(ws) >= 3 and (ws[0], ws[1]) in families:
            out.append(f"{ws[0]} {ws[1]}".lower())
            continue
        if "OF" in ws[1:]:  # HEART OF WICKER → heart; HEART OF GLASS BRACELET → glass bracelet
            of = ws.index("OF", 1)
            head = _content(ws[:of], attributes)
            if head and len(_content(ws[of + 1 :], attributes)) <= 1:
                out.append(" ".join(head[-2:]).lower())
                continue
        body = _content([w for w in ws if w != "OF"], attributes) or [w for w in ws if not w.isdigit()]
        out.append(" ".join(body[-2:]).lower() if body else None)
    return out


def chinese_types(titles: Sequence[str | None]) -> list[str | None]:
    """The type of every title with Chinese characters (None for the others): the run-final
    character pair most common across the catalog.

    >>> chinese_types(["全脂牛奶", "酸奶", "低脂牛奶", "资生堂洁面膏125ml 去角质柔肤", "美加净洁面膏", "apple"])
    ['牛奶', '酸奶', '牛奶', '面膏', '面膏', None]
    """
    finals: list[list[str]] = []
    df: Counter[str] = Counter()
    for t in titles:
        runs = CJK_RUN.findall(t or "")
        cands = [r[-2:] for r in runs if r[-2:] not in ZH_STOP] or [r[-2:] for r in runs]
        finals.append(cands)
        df.update(set(cands))
    return [max(c, key=lambda x: (df[x], -c.index(x))) if c else None for c in finals]


def type_keys(
    titles: Sequence[str | None], types: Sequence[str | None]
) -> tuple[list[str], list[str | None]]:
    """For the soft same-type test of :mod:`tiein.features`: each title as a padded word string
    (`` LUNCH BAG RED RETROSPOT ``; Chinese titles as they are) and the pattern of its type's head
    (`` BAG ``; a Chinese type whole). Two products are of the same type when the types are equal
    or either head occurs in the other's title (PARTY BUNTING and PAPER BUNTING VINTAGE PARTY).

    >>> type_keys(["Lunch bag red retrospot", "全脂牛奶"], ["lunch bag", "牛奶"])
    ([' LUNCH BAG RED RETROSPOT ', '全脂牛奶'], [' BAG ', '牛奶'])
    """
    padded: list[str] = []
    heads: list[str | None] = []
    for title, ptype in zip(titles, types, strict=True):
        if title and CJK_RUN.search(title):
            padded.append(title)
            heads.append(ptype)
        else:
            padded.append(" " + " ".join(WORD.findall((title or "").upper())) + " ")
            heads.append(f" {ptype.split()[-1].upper()} " if ptype and ptype.split() else None)
    return padded, heads


def product_types(
    titles: Sequence[str | None], categories: Sequence[str | None] | None = None
) -> list[str | None]:
    """Each product's type: its leaf category where it has one, else learnt from the titles."""
    eng = english_types(titles)
    zh = chinese_types(titles)
    cats = categories if categories is not None else [None] * len(titles)
    out: list[str | None] = []
    for c, e, z in zip(cats, eng, zh, strict=True):
        if c:
            out.append(c.rsplit(CATEGORY_SEP, 1)[-1].strip().lower() or None)
        else:
            out.append(z or e)
    return out


def with_product_types(products: pa.Table) -> pa.Table:
    """``products`` (PRODUCTS) with ``product_type`` filled by :func:`product_types`."""
    types = product_types(products.column("title").to_pylist(), products.column("category_path").to_pylist())
    col = pa.array(types, pa.string())
    if "product_type" in products.column_names:
        return products.set_column(products.column_names.index("product_type"), "product_type", col)
    return products.append_column("product_type", col)


def types_of(products: pa.Table) -> list[str | None]:
    """The products' types: the ``product_type`` column where the build filled it, else computed."""
    if "product_type" in products.column_names and products.column("product_type").null_count < len(products):
        given: list[str | None] = products.column("product_type").to_pylist()
        return given
    return product_types(products.column("title").to_pylist(), products.column("category_path").to_pylist())

"""Which text encoding a file is in — decided from its bytes, or refused; never guessed wrong
silently.

Rules, in order (:func:`detect`):

1. a byte-order mark wins (UTF-8, UTF-16);
2. a NUL byte is refused: binary data, or UTF-16/32 without a BOM (``encoding=utf-16-le`` reads it);
3. a file that is valid UTF-8 is UTF-8;
4. a file where some lines are UTF-8 with Chinese (or other 3-byte) characters and other lines
   are not UTF-8 is refused as mixed, naming the first line that is not UTF-8;
5. otherwise the legacy Chinese encodings: the file is decoded as GB18030 (a superset of
   GBK/GB2312) and as Big5 (CP950). Big5 bytes mostly decode as GBK too, so each decoding is
   scored by the share of its CJK ideographs that are *common* characters (GB2312 level 1 or
   Big5 "frequently used"): the right decoding scores ~1, the wrong one less. GB18030 wins when
   it scores at least ``MIN_SCORE`` and strictly more than Big5 (GB text read as Big5 still
   scores 0.5-0.9); Big5 wins when it scores at least ``MIN_SCORE`` and ``MARGIN`` more than
   GB18030 (Big5 text read as GB scores 0.3-0.6); otherwise (a tie, or too little text to tell)
   the file is refused, naming the encodings tried. A Big5 file is never read as GB18030.

    >>> detect("商品,价格\\n".encode("gbk"), "f.csv")
    'gb18030'
    >>> detect("商品,價格,無線藍牙耳機\\n".encode("big5"), "f.csv")
    'big5'
"""

from __future__ import annotations

import codecs
import functools
import re

from tiein.errors import InputError

MIN_SCORE = 0.8
MARGIN = 0.2
_CJK = re.compile("[\u4e00-\u9fff]")
_WIDE = re.compile("[\u0800-\U0010ffff]")  # a character UTF-8 writes with 3 or 4 bytes
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_SCORE_CHARS = 4_000_000  # decoded characters scanned for the score


@functools.cache
def common_chars() -> frozenset[str]:
    """GB2312 level 1 (the 3,755 most used simplified characters) ∪ Big5's 5,401 frequently
    used traditional characters, built from Python's own codecs."""
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            chars.add(bytes((lead, trail)).decode("gb2312", errors="ignore"))
    for lead in range(0xA4, 0xC7):
        for trail in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            chars.add(bytes((lead, trail)).decode("big5", errors="ignore"))
    return frozenset(c for c in chars if c and _CJK.fullmatch(c))


def score(text: str) -> tuple[float, int]:
    """``(share of common characters among the CJK ideographs, number of ideographs)`` of the
    first ``_SCORE_CHARS`` characters of ``text``; ``(1.0, 0)`` without any ideograph."""
    cjk = _CJK.findall(text, 0, _SCORE_CHARS)
    if not cjk:
        return 1.0, 0
    common = common_chars()
    return sum(c in common for c in cjk) / len(cjk), len(cjk)


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def detect(data: bytes, file: str) -> str:
    """The encoding to read ``data`` with (a Python codec name), or :class:`InputError`."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(
            "NUL bytes: binary data, or UTF-16/32 without a byte-order mark; save the file as UTF-8 "
            "(or pass encoding=utf-16-le if it is UTF-16)",
            file=file,
            row=_line_of(data, nul),
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    _refuse_mixed(data, file)
    return _legacy(data, file)


def _refuse_mixed(data: bytes, file: str) -> None:
    """Refuse a file with both UTF-8 lines (with characters of 3+ bytes) and non-UTF-8 lines."""
    first_utf8 = first_bad = None
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            first_bad = first_bad or number
        else:
            if first_utf8 is None and _WIDE.search(text):
                first_utf8 = number
        if first_bad and first_utf8:
            raise InputError(
                f"mixed encodings: line {first_utf8:,} is UTF-8 but line {first_bad:,} is not "
                f"(tried utf-8, gb18030, big5); save the whole file in one encoding",
                file=file,
                row=first_bad,
            )


def _legacy(data: bytes, file: str) -> str:
    scores: dict[str, tuple[float, int]] = {}
    failures: list[UnicodeDecodeError] = []
    for family in (("gb18030",), ("big5", "cp950")):
        for enc in family:
            try:
                scores[enc] = score(data.decode(enc))
            except UnicodeDecodeError as exc:
                failures.append(exc)
                continue
            break
    if not scores:
        worst = max(failures, key=lambda e: e.start)
        bad = data[worst.start : worst.start + 4].hex(" ")
        raise InputError(
            f"undecodable bytes ({bad}) at byte {worst.start}: the file is not utf-8, gb18030 or big5; "
            "pass the right encoding (option encoding=...)",
            file=file,
            row=_line_of(data, worst.start),
        )
    gb = scores.get("gb18030", (0.0, 0))
    big5_enc = next((e for e in ("big5", "cp950") if e in scores), None)
    big5 = scores[big5_enc] if big5_enc else (0.0, 0)
    if not gb[1] and not big5[1]:
        return next(iter(scores))  # no ideograph either way: symbols or Latin text; gb18030 first
    # GB text read as Big5 still scores 0.5-0.9 (GB2312's common rows overlap Big5's), Big5 text
    # read as GB only 0.3-0.6: GB wins when strictly more plausible, Big5 needs a clear margin.
    if gb[1] and gb[0] >= MIN_SCORE and (not big5[1] or gb[0] > big5[0]):
        return "gb18030"
    if big5_enc and big5[0] >= MIN_SCORE and big5[0] >= (gb[0] if gb[1] else 0.0) + MARGIN:
        return big5_enc
    shares = ", ".join(f"{enc} {s:.0%}" for enc, (s, n) in scores.items() if n)
    first = _NON_ASCII.search(data)
    raise InputError(
        f"cannot tell the encoding: not UTF-8, and no Chinese encoding reads it clearly better "
        f"(share of common characters: {shares}; tried utf-8, gb18030, big5); "
        "pass the right encoding (option encoding=...)",
        file=file,
        row=_line_of(data, first.start()) if first else None,
    )

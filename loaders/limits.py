"""Input limits: what a file may cost before and while it is read, so that no input can run a
build out of memory or time, hang it, or crash the parser.

    Limits                          the caps, with named defaults
    read_input(path, limits)        the bytes of a *regular* file (a device, FIFO, socket or
                                    directory is refused before a byte is read), gunzipped
                                    within the caps
    require_regular_file(path)      the same refusal for a file another module opens
    check_zip(data, file, limits)   an XLSX (zip) whose members would inflate past the caps
    check_lines(body, file, limits) a line longer than the cap
    check_json_depth(...)           JSON nested deeper than the cap (the JSON parser would crash)

Every refusal is an :class:`~tiein.errors.InputError` naming the file (and the row where there
is one). ``TIEIN_MAX_INPUT_MB`` raises the size cap for a legitimately huge file.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiein.errors import InputError

MAX_INPUT_BYTES = 2 << 30  # a file, or what it decompresses to
MAX_RATIO = 200  # decompressed / compressed, checked once past RATIO_FLOOR
RATIO_FLOOR = 16 << 20
MAX_LINE_BYTES = 4 << 20  # a 1 MB title in Chinese (3 MB of UTF-8) still fits
MAX_CELLS = 50_000_000
MAX_COLUMNS = 16_384  # Excel's own limit
MAX_ZIP_MEMBERS = 10_000
MAX_JSON_DEPTH = 64
MAX_CONFIG_BYTES = 16 << 20  # a mapping or scenes file
_CHUNK = 64 << 20


@dataclass(frozen=True)
class Limits:
    """Caps on one input file (see the module constants for the defaults)."""

    max_input_bytes: int = MAX_INPUT_BYTES
    max_ratio: int = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR
    max_line_bytes: int = MAX_LINE_BYTES
    max_cells: int = MAX_CELLS
    max_columns: int = MAX_COLUMNS
    max_json_depth: int = MAX_JSON_DEPTH

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with ``TIEIN_MAX_INPUT_MB`` (read now, not at import) as the size cap."""
        raw = os.environ.get("TIEIN_MAX_INPUT_MB", "").strip()
        if not raw:
            return cls()
        try:
            mb = float(raw)
        except ValueError:
            mb = 0.0
        if not mb > 0:
            from tiein.errors import ConfigError

            raise ConfigError(f"TIEIN_MAX_INPUT_MB must be a positive number of megabytes, got {raw!r}")
        return cls(max_input_bytes=int(mb * (1 << 20)))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_input(path: Path, limits: Limits | None = None) -> bytes:
    """The bytes of ``path`` (gunzipped when it starts with the gzip magic), within ``limits``.

    The file is opened without blocking (a FIFO would wait for a writer) and checked with
    ``fstat`` before reading: only a regular file is read, and at most the cap plus one byte, so
    a file that grows while it is read is refused too."""
    limits = limits or Limits.from_env()
    file = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except NotADirectoryError:
        raise InputError("file not found (a parent is not a directory)", file=file) from None
    except IsADirectoryError:  # Windows; Linux opens a directory and fstat tells
        raise InputError("is a directory, not a file", file=file) from None
    except OSError as exc:
        raise InputError(f"cannot open the file: {exc.strerror or exc}", file=file) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError("is a directory, not a file", file=file)
        if not stat.S_ISREG(mode):
            raise InputError(f"is {_kind(mode)}, not a regular file: give a file on disk", file=file)
        size = os.fstat(fd).st_size
        if size > limits.max_input_bytes:
            raise InputError(
                f"the file is {_mib(size)}, over the {_mib(limits.max_input_bytes)} limit "
                "(raise it with TIEIN_MAX_INPUT_MB)",
                file=file,
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limits.max_input_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    finally:
        os.close(fd)
    if len(data) > limits.max_input_bytes:
        raise InputError(
            f"the file grew past the {_mib(limits.max_input_bytes)} limit while being read", file=file
        )
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, file, limits)
    return data


def require_regular_file(path: Path) -> None:
    """Refuse ``path`` unless it is an existing regular file (a stat: nothing is opened)."""
    file = str(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise InputError("file not found", file=file) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a file", file=file)
    if not stat.S_ISREG(mode):
        raise InputError(f"is {_kind(mode)}, not a regular file: give a file on disk", file=file)


def _inflated(total: int, compressed: int, file: str, limits: Limits, what: str = "") -> None:
    if total > limits.max_input_bytes:
        raise InputError(
            f"{what}decompresses to more than the {_mib(limits.max_input_bytes)} limit "
            "(raise it with TIEIN_MAX_INPUT_MB)",
            file=file,
        )
    if total > limits.ratio_floor and total > limits.max_ratio * max(compressed, 1):
        raise InputError(
            f"{what}decompresses more than {limits.max_ratio}x ({_mib(compressed)} to over {_mib(total)}): "
            "refused as a possible decompression bomb",
            file=file,
        )


def gunzip(data: bytes, file: str, limits: Limits) -> bytes:
    """Decompress gzip ``data`` (several members too) in bounded steps, refusing a bomb early."""
    out: list[bytes] = []
    total = 0
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                piece = d.decompress(rest, _CHUNK)
                rest = d.unconsumed_tail
                total += len(piece)
                _inflated(total, len(data), file, limits)
                out.append(piece)
                if d.eof or (not piece and not rest):
                    break
            if not d.eof:
                raise InputError("broken gzip data: the file is truncated", file=file)
            rest = d.unused_data.lstrip(b"\x00")  # gzip pads with zeros; another member may follow
    except zlib.error as exc:
        raise InputError(f"broken gzip data: {exc}", file=file) from None
    return b"".join(out)


def check_zip(data: bytes, file: str, limits: Limits) -> None:
    """Refuse an XLSX (zip) before a parser opens it: too many members, or members whose
    declared sizes exceed the caps (zipfile never inflates a member past its declared size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable XLSX file (broken zip): {exc}", file=file) from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputError(f"not a plausible XLSX file: {len(infos):,} zip members", file=file)
    total = 0
    for info in infos:
        total += info.file_size
        _inflated(info.file_size, info.compress_size, file, limits, f"zip member {info.filename!r} ")
        _inflated(total, len(data), file, limits, "the workbook ")


def check_lines(body: bytes, file: str, limits: Limits) -> None:
    """Refuse a line (= row in a CSV without quoted line breaks) longer than the cap."""
    cap = limits.max_line_bytes
    if len(body) <= cap:
        return
    start = 0  # offset of the current line's start
    lines_before = 0
    for offset in range(0, len(body), _CHUNK):
        chunk = np.frombuffer(body, dtype=np.uint8, count=min(_CHUNK, len(body) - offset), offset=offset)
        ends = np.flatnonzero(chunk == 10) + offset
        if len(ends):
            starts = np.concatenate(([start], ends[:-1] + 1))
            long = np.flatnonzero(ends - starts > cap)
            if len(long):
                _too_long(file, lines_before + int(long[0]) + 1, cap)
            start = int(ends[-1]) + 1
            lines_before += len(ends)
        if offset + len(chunk) - start > cap:
            _too_long(file, lines_before + 1, cap)


def _too_long(file: str, line: int, cap: int) -> None:
    raise InputError(f"line {line:,} is longer than the {_mib(cap)} limit for one line", file=file, row=line)


def check_json_depth(body: bytes, file: str, limits: Limits) -> None:
    """Refuse a JSON line nested deeper than the cap (pyarrow's parser crashes on deep nesting).

    Only lines with more ``[``/``{`` bytes than the cap can be that deep; those are parsed here
    (Python's parser stops at its recursion limit instead of crashing)."""
    cap = limits.max_json_depth
    if body.count(b"[") + body.count(b"{") <= cap:
        return
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.count(b"[") + line.count(b"{") <= cap:
            continue
        try:
            depth = _depth(json.loads(line))
        except RecursionError:
            depth = cap + 1
        except ValueError as exc:
            raise InputError(f"invalid JSON: {exc}", file=file, row=number) from None
        if depth > cap:
            raise InputError(f"JSON nested deeper than {cap} levels", file=file, row=number)


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a scalar is 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return deepest

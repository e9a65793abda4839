"""`horde.cli.progress`: the progress line and the follow loop (no I/O: fake fetches, a string stream)."""

from __future__ import annotations

import asyncio
import io

import pytest

from horde.cli.progress import Polling, Progress, Snapshot, follow


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render_shows_bar_queue_and_wait() -> None:
    line = Progress("text abc").render(Snapshot(finished=1, total=4, queue_position=3, wait_time=12))
    assert line.startswith("text abc [######------------------] 1/4 · queue position 3 · ~12s left · ")


def test_render_of_processing_and_done() -> None:
    progress = Progress("image")
    assert "2 processing" in progress.render(Snapshot(finished=0, total=2, processing=2))
    done = progress.render(Snapshot(finished=2, total=2, done=True, note="done", wait_time=5))
    assert "[########################] 2/2 · done" in done
    assert "left" not in done


def test_a_log_gets_one_line_per_change() -> None:
    stream = io.StringIO()
    progress = Progress("text", stream=stream)
    for snap in [
        Snapshot(0, 1, queue_position=2, wait_time=9),
        Snapshot(0, 1, queue_position=2, wait_time=8),  # only the estimate moved: no line
        Snapshot(0, 1, processing=1),
        Snapshot(1, 1, done=True),
    ]:
        progress.update(snap)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "queue position 2" in lines[0]
    assert "1 processing" in lines[1]
    assert "done" in lines[2]


def test_a_terminal_gets_one_line_redrawn() -> None:
    stream = Tty()
    progress = Progress("text", stream=stream)
    progress.update(Snapshot(0, 1, queue_position=1))
    progress.update(Snapshot(1, 1, done=True))
    progress.close()
    out = stream.getvalue()
    assert out.count("\r\x1b[K") == 2
    assert out.endswith("\n")
    assert out.count("\n") == 1


def test_disabled_progress_writes_nothing() -> None:
    stream = Tty()
    progress = Progress("text", stream=stream, enabled=False)
    progress.update(Snapshot(0, 1))
    progress.close()
    assert stream.getvalue() == ""
    assert not progress.live


async def test_follow_waits_on_the_server_when_it_holds_calls() -> None:
    asked: list[float | None] = []
    answers = iter(
        [Snapshot(0, 1, queue_position=1), Snapshot(0, 1, processing=1), Snapshot(1, 1, done=True)]
    )

    async def fetch(wait: float | None) -> Snapshot:
        asked.append(wait)
        return next(answers)

    progress = Progress("t", stream=io.StringIO())
    done = await follow(fetch, lambda s: s, progress, long_poll=lambda: True, polling=Polling(wait=7))
    assert done.done
    assert asked == [None, 7, 7]  # a first quick look, then server-side waits


async def test_follow_polls_with_growing_pauses_without_server_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    answers = iter([Snapshot(0, 1)] * 5 + [Snapshot(1, 1, done=True)])

    async def fetch(_wait: float | None) -> Snapshot:
        return next(answers)

    polling = Polling(first=0.5, cap=1.0, growth=2)
    await follow(
        fetch, lambda s: s, Progress("t", stream=io.StringIO()), long_poll=lambda: False, polling=polling
    )
    assert slept == [0.5, 1.0, 1.0, 1.0]  # after the first quick look: 0.5, then capped at 1.0


async def test_follow_times_out() -> None:
    async def fetch(wait: float | None) -> Snapshot:
        await asyncio.sleep(0.05)
        return Snapshot(0, 1)

    with pytest.raises(TimeoutError, match=r"not done after 0\.2s"):
        await follow(
            fetch, lambda s: s, Progress("t", stream=io.StringIO()), long_poll=lambda: False,
            polling=Polling(first=0.05), timeout=0.2,
        )  # fmt: skip

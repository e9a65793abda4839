"""`horde up` as a user runs it: one command, then `horde generate text` gets real text from the bundled
Gemma model, then Ctrl-C (SIGINT) stops everything it started. A second start reuses the key.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import _horde_command

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("horde-up")]

START_TIMEOUT = 180.0  # first run: imports, the GGUF assembled into the data dir, models loaded
STOP_TIMEOUT = 60.0


def _entry() -> list[str]:
    return _horde_command(0)[:-5]  # without "serve --host H --port P"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    return {**env, "HORDE_DATA_DIR": str(data_dir), **extra}


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    log: Path

    def expect(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first stdout line matching ``pattern``; fails with the log when none comes in time."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if found := re.search(pattern, line):
                return found
        pytest.fail(f"no line matching {pattern!r}; horde up log:\n{self.tail()}")

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _start(data_dir: Path, *args: str) -> Up:
    log = data_dir.parent / f"{data_dir.name}-up-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [*_entry(), "up", "--port", "0", *args],
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # our SIGINT goes to `horde up` alone, as a terminal's would to its group
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return Up(process, lines, log)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop(up: Up) -> None:
    if up.process.poll() is None:
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(up.process.pid, signal.SIGKILL)
            up.process.wait(10)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find orphans")
def test_up_generate_and_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "horde-data"
    up = _start(data_dir)
    try:
        url = up.expect(r"^horde is up at (http://127\.0\.0\.1:\d+)").group(1)
        key = up.expect(r"^API key: (\S+)$").group(1)
        env = _env(data_dir, HORDE_URL=url, HORDE_API_KEY=key)
        generated = subprocess.run(
            [*_entry(), "generate", "text", "Once upon a time", "--max-length", "24", "--timeout", "240"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert generated.returncode == 0, f"{generated.stderr}\nhorde up log:\n{up.tail()}"
        assert generated.stdout.strip(), generated.stderr
        assert "gemma-3-270m" in generated.stderr  # made by the bundled model
        started = _descendants(up.process.pid)
        assert started, "the worker child is missing"
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(STOP_TIMEOUT) == 0, up.tail()
        assert [pid for pid in started if _alive(pid)] == []
        assert "worker stopped (code 0)" in up.log.read_text()
    finally:
        _stop(up)

    again = _start(data_dir, "--no-worker")
    try:
        assert again.expect(r"^API key: (\S+)$").group(1) == key  # the first run's user and key
        again.process.send_signal(signal.SIGTERM)
        assert again.process.wait(STOP_TIMEOUT) == 0, again.tail()
    finally:
        _stop(again)

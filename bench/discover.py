"""Finding a local horde's API process and database, so `bench run` can read their CPU clocks.

Linux only, and only for a server on this machine: the process listening on the URL's port (from
/proc/net/tcp and the sockets in /proc/*/fd) and the HORDE_DATABASE_URL in its environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listener_pid(url: str) -> int | None:
    """The pid of the (first) process listening on the URL's port, or None."""
    port = urlsplit(url).port or 80
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:
            continue
    return None


def database_of(pid: int) -> str | None:
    """The asyncpg DSN of a local horde process's PostgreSQL database, from its environment."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
    url = env.get("HORDE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return None
    return "postgresql://" + url.split("://", 1)[1]

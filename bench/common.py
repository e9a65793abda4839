"""Measurement helpers shared by every scenario: latency records, CPU clocks, result files."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Record:
    """What one generator process saw: latencies (seconds) and outcomes per operation."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    values: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    cpu: float = 0.0  # this process's user+system CPU seconds over its load window
    first: float = math.inf  # wall clock of the first and last timed operation
    last: float = 0.0

    def time(self, op: str, started: float, ended: float) -> None:
        self.latencies[op].append(ended - started)
        self.counts[op] += 1
        self.first = min(self.first, started)
        self.last = max(self.last, ended)

    def error(self, op: str, what: str) -> None:
        self.errors[f"{op}: {what}"] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "latencies": dict(self.latencies), "errors": dict(self.errors), "counts": dict(self.counts),
            "values": dict(self.values), "cpu": self.cpu, "first": self.first, "last": self.last,
        }  # fmt: skip


def merge(parts: list[dict[str, Any]]) -> Record:
    """One record from the records of several generator processes."""
    total = Record()
    for part in parts:
        for op, values in part["latencies"].items():
            total.latencies[op].extend(values)
        total.errors.update(part["errors"])
        total.counts.update(part["counts"])
        for key, values in part["values"].items():
            total.values[key].extend(values)
        total.cpu += part["cpu"]
        total.first = min(total.first, part["first"])
        total.last = max(total.last, part["last"])
    return total


def percentiles(values: list[float]) -> dict[str, float]:
    """Count, mean and percentiles in milliseconds (nearest rank)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000

    return {
        "n": len(ordered), "mean": sum(ordered) / len(ordered) * 1000, "p50": rank(0.50), "p90": rank(0.90),
        "p95": rank(0.95), "p99": rank(0.99), "p999": rank(0.999), "max": ordered[-1] * 1000,
    }  # fmt: skip


def process_cpu(pid: int) -> float:
    """User+system CPU seconds a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_load() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {"cpus": os.cpu_count(), "load1": load1, "load5": load5, "python": platform.python_version()}


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def save(name: str, result: dict[str, Any]) -> Path:
    """Write a scenario's figures to bench/results/<name>-<timestamp>.json."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    result = {"scenario": name, "at": stamp, "revision": git_revision(), "machine": machine_load(), **result}
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def fmt_latency(stats: dict[str, float]) -> str:
    if not stats.get("n"):
        return "n=0"
    return (
        f"n={stats['n']} p50={stats['p50']:.1f} p95={stats['p95']:.1f} p99={stats['p99']:.1f} "
        f"max={stats['max']:.1f} ms"
    )

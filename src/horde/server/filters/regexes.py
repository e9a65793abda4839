"""Compiling moderator regexes, and bounding what a bad one can cost (ADR 0018).

Filters use the `regex` package rather than `re`: its searches take a timeout, so a pattern that
backtracks catastrophically costs at most that long per search. At write time a pattern must compile
and must finish every probe below within the probe timeout; probes cannot prove a pattern safe, so the
search timeout is the bound that holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

FLAGS = regex.IGNORECASE | regex.V0
GROUP_ONE = (10, 11)  # the reference's first group (with the child emojis); 10 also carries replacements
GROUP_TWO = (20,)
_PROBE_LENGTHS = (24, 2000)


class BadRegex(ValueError):
    """A filter regex that does not compile or that backtracks too long on a probe."""


def compile_filter(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern, FLAGS)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise BadRegex(f"The regex does not compile: {exc}") from None


def _probes(pattern: str) -> list[str]:
    """Strings that make a backtracking pattern blow up: runs of its own characters (and of a few common
    ones), each followed by a character that makes the match fail at the end."""
    chars = {c for c in pattern if c.isalnum() or c == " "} | {"a", " ", "1"}
    literal = "".join(c for c in pattern if c.isalnum() or c == " ") or "a"
    runs = [c * n for c in sorted(chars) for n in _PROBE_LENGTHS]
    runs += [(literal * n)[: n * 4] for n in _PROBE_LENGTHS]
    runs += [("a " * n) for n in _PROBE_LENGTHS]
    return [run + tail for run in runs for tail in ("!", "\x00")]


def check_filter(pattern: str, *, timeout: float) -> regex.Pattern[str]:
    """The compiled pattern, or BadRegex when it does not compile or a probe search times out."""
    compiled = compile_filter(pattern)
    for probe in _probes(pattern):
        try:
            compiled.search(probe, timeout=timeout, concurrent=True)
        except TimeoutError:
            raise BadRegex("The regex backtracks catastrophically (a search of a probe timed out)") from None
    return compiled


def joined(patterns: list[str]) -> str:
    """Several patterns as one alternation (what `/filters/regex` shows)."""
    return "|".join(f"(?:{p})" for p in patterns)


@dataclass(frozen=True)
class FilterSet:
    """The compiled filters a node matches prompts against, as of one version of the filters table."""

    version: int = -1
    sources: dict[int, str] = field(default_factory=dict)  # type -> OR-joined pattern
    by_type: dict[int, regex.Pattern[str]] = field(default_factory=dict)
    replacements: tuple[tuple[regex.Pattern[str], str], ...] = ()  # type 10, in creation order

    @classmethod
    def build(cls, version: int, rows: list[tuple[int, str, str]]) -> FilterSet:
        """From (filter_type, regex, replacement) rows; a stored pattern that no longer compiles is
        skipped (it was checked at write, by this or an older version of the package)."""
        patterns: dict[int, list[str]] = {}
        replacements = []
        for filter_type, pattern, replacement in rows:
            try:
                compiled = compile_filter(pattern)
            except BadRegex:
                continue
            patterns.setdefault(filter_type, []).append(pattern)
            if filter_type == 10:
                replacements.append((compiled, replacement))
        sources = {t: joined(p) for t, p in sorted(patterns.items())}
        by_type = {t: regex.compile(s, FLAGS) for t, s in sources.items()}
        return cls(version=version, sources=sources, by_type=by_type, replacements=tuple(replacements))

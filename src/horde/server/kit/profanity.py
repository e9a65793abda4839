"""The profanity check behind the reference's Profane* rcs (SEMANTICS.md 2): worker names, worker info,
bridge agents, usernames, contacts, admin comments, team names and team infos.

A text is profane when one of its words, or a run of its words, is on the list: the small list shipped
beside this module plus the operator's own file (`HORDE_PROFANITY_WORDS_FILE`, one word or phrase a
line, `#` comments). Words are compared whole (or as a plural of a listed word) after lowercasing,
splitting camelCase and undoing common leetspeak, so "FuckWorker", "sh1t" and "twats" are caught and
"Scunthorpe" or "class" are not.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from horde.server.config import Settings
from horde.server.errors import HordeError

DEFAULT_WORDS = Path(__file__).with_name("profanity_words.txt")
_LEET = str.maketrans({"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "$": "s", "5": "s",
                       "7": "t", "+": "t", "|": "l"})  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORD = re.compile(r"[a-z]+")


def words_of(text: str, *, leet: bool = True) -> list[str]:
    """The words of `text` as the list is matched against them (leetspeak undone unless `leet` is
    False: "@" is a letter in "sh@me" and a separator in "name@example.org")."""
    lowered = _CAMEL.sub(" ", text).lower()
    return _WORD.findall(lowered.translate(_LEET) if leet else lowered)


class WordList:
    """Words and phrases (runs of words) that make a text profane."""

    def __init__(self, entries: list[str]) -> None:
        phrases = {tuple(words_of(entry, leet=False)) for entry in entries}
        self.phrases = frozenset(p for p in phrases if p)
        self.longest = max((len(p) for p in self.phrases), default=0)

    def contains_profanity(self, text: str) -> bool:
        """Whether a word, or a run of up to `longest` words, of `text` is on the list."""
        return self._listed(words_of(text)) or self._listed(words_of(text, leet=False))

    def _listed(self, words: list[str]) -> bool:
        if any((word[:-1],) in self.phrases for word in words if len(word) > 3 and word.endswith("s")):
            return True  # a plural of a listed word
        return any(
            tuple(words[i : i + n]) in self.phrases
            for n in range(1, self.longest + 1)
            for i in range(len(words) - n + 1)
        )


def _entries(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@lru_cache(maxsize=4)
def load_words(extra_file: str = "") -> WordList:
    """The shipped list plus the operator's file (read once per path; a restart re-reads it)."""
    entries = _entries(DEFAULT_WORDS)
    if extra_file:
        entries += _entries(Path(extra_file))
    return WordList(entries)


def refuse_profane(settings: Settings, text: str | None, *, rc: str, what: str) -> None:
    """Raise 400 `rc` (a Profane* code) when `text` is profane; `what` names the field in the message."""
    if text and load_words(settings.profanity_words_file).contains_profanity(text):
        raise HordeError(rc, f"This {what} contains profanity")

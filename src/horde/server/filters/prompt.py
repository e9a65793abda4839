"""The prompt pipeline of SEMANTICS.md 8, without I/O: normalise, match the two groups, sanitise.

Matching runs on several normalised forms of the positive prompt (weights, punctuation, spaced letters,
homoglyphs, leetspeak and letter-like emoji undone); a group counts when any form matches. Sanitising
edits the prompt the worker gets: type-10 replacements, and the protective terms in the negative prompt.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import partial

import regex

from horde.server.filters.regexes import GROUP_ONE, GROUP_TWO, FilterSet

REPLACEMENT_MAX_CHARS = 7000
PROTECTIVE_TERMS = "child, infant, underage, immature, teenager, tween"
CHILD_EMOJIS = frozenset("👶🧒👦👧🚸🍼🐣🧸")
_HOMOGLYPHS = str.maketrans(
    "асеорхуіјѕԁһкмтвнlАВЕКМНОРСТХУІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aceopxyijsdhkmtbhlabekmhopctxyijsabeiknoptuxabezhikmnoptyx",
)
_LEETS = (str.maketrans("01345789@$!|", "oieastbgasil"), str.maketrans("01345789@$!|", "oleastbgasil"))
# regional indicators and the squared / circled letter emoji, to ascii letters
_EMOJI_LETTERS = {
    start + i: chr(ord("a") + i) for start in (0x1F1E6, 0x1F130, 0x1F150, 0x1F170) for i in range(26)
}
_WEIGHT = regex.compile(r":\s*-?\d+(?:\.\d+)?")
_CONNECTORS = regex.compile(r"[.\-_*'`~^|/\\+]+")
_NOT_WORD = regex.compile(r"[^\p{L}\p{N}\s]+")
_SEPARATORS = regex.compile(r"[^\p{L}\p{N}\s.\-_*'`~^|/\\+]+")  # what ends a run of spaced letters
_SPACED = regex.compile(r"\b(?:\p{L}\s+){2,}\p{L}\b")
_SPACED_AFTER_ARTICLE = regex.compile(r"\b(?![ai]\s)(?:\p{L}\s+){2,}\p{L}\b")  # "a c h i l d": "a child"
_LEET_WORD = regex.compile(r"\S*\p{L}\S*")
_AGE_WORDS = regex.compile(
    r"\b(?:child(?:ren)?|kids?|teen(?:ager)?s?|young(?:er|est)?|little|underage|minors?|loli|shota|"
    r"boys?|girls?|schoolgirls?|infants?|toddlers?|tweens?|preteens?|baby|babies)\b",
    regex.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PromptScreen:
    """What a kind asks to have screened: the prompt, whether to sanitise rather than refuse, and
    whether the request names a model flagged NSFW."""

    prompt: str
    replacement: bool
    nsfw_models: bool = False


def fold(text: str) -> str:
    """Letters as plain lowercase ascii where they look like it: compatibility forms, emoji letters,
    lookalike Cyrillic and Greek, accents."""
    text = unicodedata.normalize("NFKC", text).translate(_EMOJI_LETTERS).translate(_HOMOGLYPHS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.lower()


def _words(text: str, spaced: regex.Pattern[str] = _SPACED_AFTER_ARTICLE) -> str:
    """Punctuation as spaces, and spaced letters joined within each stretch between separators."""
    chunks = [_NOT_WORD.sub(" ", chunk) for chunk in _SEPARATORS.split(text)]
    joined = [spaced.sub(lambda m: regex.sub(r"\s+", "", m.group(0)), chunk) for chunk in chunks]
    return " ".join(" ".join(joined).split())


def forms(prompt: str) -> list[str]:
    """The forms of a positive prompt that filters are matched against."""
    folded = _WEIGHT.sub(" ", fold(prompt))
    leets = [_LEET_WORD.sub(partial(_translated, table=table), folded) for table in _LEETS]
    variants = [prompt, folded]
    for base in (folded, *leets):
        variants += [_words(base), _words(base, _SPACED), _words(_CONNECTORS.sub("", base))]
    return list(dict.fromkeys(variants))


def _translated(match: regex.Match[str], *, table: dict[int, int]) -> str:
    return match.group(0).translate(table)


def plain(prompt: str) -> str:
    """The prompt folded, without weights, punctuation or spaced letters (what an evasion is rewritten
    to before it is sanitised)."""
    return _words(_WEIGHT.sub(" ", fold(prompt)))


def split(prompt: str) -> tuple[str, str | None]:
    positive, sep, negative = prompt.partition("###")
    return positive, (negative if sep else None)


@dataclass(frozen=True)
class Rating:
    suspicion: int
    matches: list[str] = field(default_factory=list)
    group_one: bool = False


def _search(pattern: regex.Pattern[str], texts: list[str], timeout: float) -> list[str]:
    found: list[str] = []
    for text in texts:
        try:
            found += [m.group(0) for m in pattern.finditer(text, timeout=timeout)]
        except TimeoutError:
            found.append("(a filter timed out)")  # counted as a match: a prompt cannot evade by stalling
    return found


def rate(filters: FilterSet, prompt: str, *, timeout: float, only_type: int | None = None) -> Rating:
    """Suspicion = how many of the two groups match the positive prompt (or whether `only_type` does)."""
    texts = forms(split(prompt)[0])
    emojis = [c for c in prompt if c in CHILD_EMOJIS]
    if only_type is not None:
        pattern = filters.by_type.get(only_type)
        matches = _search(pattern, texts, timeout) if pattern is not None else []
        return Rating(int(bool(matches)), list(dict.fromkeys(matches)))
    one = emojis + [m for t in GROUP_ONE if (p := filters.by_type.get(t)) for m in _search(p, texts, timeout)]
    two = [m for t in GROUP_TWO if (p := filters.by_type.get(t)) for m in _search(p, texts, timeout)]
    suspicion = int(bool(one)) + int(bool(two))
    return Rating(suspicion, list(dict.fromkeys(one + two)), group_one=bool(one))


def _replace(filters: FilterSet, text: str, timeout: float) -> str:
    for pattern, replacement in filters.replacements:
        try:
            text = pattern.sub(replacement, text, timeout=timeout)
        except (TimeoutError, regex.error, IndexError):
            continue  # a bad replacement template or a stall leaves the text as it was
    return text


def sanitise(filters: FilterSet, prompt: str, *, timeout: float) -> str | None:
    """The prompt with type-10 replacements applied and the protective terms in its negative part;
    None when nothing of the positive prompt remains. An evasion the replacements miss on the prompt as
    sent is replaced on its normalised form instead."""
    positive, negative = split(prompt)
    cleaned = _replace(filters, positive, timeout)
    if rate(filters, cleaned, timeout=timeout).group_one:
        cleaned = _replace(filters, plain(positive), timeout)
    if not plain(cleaned):  # nothing but weights and punctuation is left
        return None
    negative = f"{PROTECTIVE_TERMS}, {negative}" if negative and negative.strip() else PROTECTIVE_TERMS
    return f"{cleaned}###{negative}"


def adult_pass(prompt: str) -> str | None:
    """NSFW models and flagged users: age words in the positive prompt become `adult` (SEMANTICS 8);
    None when nothing else remains."""
    positive, negative = split(prompt)
    if not any(_AGE_WORDS.search(form) for form in forms(positive)):
        return prompt
    cleaned = _AGE_WORDS.sub("adult", positive)
    if any(_AGE_WORDS.search(form) for form in forms(cleaned)):
        cleaned = _AGE_WORDS.sub("adult", plain(positive))  # an evasion: rewrite its normalised form
    if not plain(regex.sub(r"\badult\b", "", cleaned)):
        return None
    return cleaned if negative is None else f"{cleaned}###{negative}"

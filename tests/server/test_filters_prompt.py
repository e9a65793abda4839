"""The prompt pipeline without I/O: normalisation against evasions, the two groups, sanitising, the
adult pass, and the checks a moderator's regex must pass (SEMANTICS.md 8, ADR 0018)."""

from __future__ import annotations

import pytest

from horde.server.filters import prompt as pipeline
from horde.server.filters.regexes import BadRegex, FilterSet, check_filter

FILTERS = FilterSet.build(
    1,
    [
        (10, r"\bchild\b", "adult"),
        (10, r"\bkids?\b", "adults"),
        (11, r"\bloli\b", ""),
        (20, r"\bnude\b", ""),
        (20, r"\bnsfw\b", ""),
    ],
)
T = 0.5


def rate(prompt: str) -> int:
    return pipeline.rate(FILTERS, prompt, timeout=T).suspicion


def test_a_clean_prompt_is_not_suspicious() -> None:
    assert rate("a lighthouse on a cliff at dawn, (oil painting:1.2)") == 0
    assert rate("a childlike wonder in the nude colour palette") == 1  # \bchild\b does not match childlike


@pytest.mark.parametrize(
    "prompt",
    [
        "a child, nude",  # as written
        "a (child:1.4), (nude:1.3)",  # weights
        "a [[child]] {nude}",  # brackets
        "a c.h.i.l.d, n-u-d-e",  # punctuation between letters
        "a c h i l d, n u d e",  # spaced letters
        "a сhild, nudе",  # Cyrillic lookalikes
        "a ｃｈｉｌｄ, ｎｕｄｅ",  # fullwidth
        "a chíld, nüde",  # accents
        "a ch1ld, nud3",  # digits for letters
        "a 🇨🇭🇮🇱🇩, 🅽🆄🅳🅴",  # letter emoji
        "a 👧, nude",  # a child emoji counts for the first group
        "a l0li, NSFW",  # type 11, and case
    ],
)
def test_evasions_are_seen(prompt: str) -> None:
    assert rate(prompt) == 2, pipeline.forms(pipeline.split(prompt)[0])


def test_the_negative_prompt_is_not_rated() -> None:
    assert rate("a portrait###child, nude") == 0


def test_sanitise_replaces_and_protects() -> None:
    out = pipeline.sanitise(FILTERS, "a (child:1.2) on a beach, nude###blurry", timeout=T)
    assert out is not None
    positive, negative = out.split("###")
    assert "child" not in positive and "adult" in positive
    assert negative.startswith(pipeline.PROTECTIVE_TERMS) and negative.endswith("blurry")
    assert pipeline.sanitise(FILTERS, "kid, nude", timeout=T) == f"adults, nude###{pipeline.PROTECTIVE_TERMS}"


def test_an_evasion_is_replaced_on_its_normalised_form() -> None:
    out = pipeline.sanitise(FILTERS, "a c.h.i.l.d on a beach, nude", timeout=T)
    assert out is not None
    assert rate(out) < 2 and "adult" in out.split("###")[0]


def test_a_prompt_empty_after_sanitising_is_none() -> None:
    emptied = FilterSet.build(1, [(10, r"\bchild\b", ""), (20, r"\bnude\b", "")])
    assert pipeline.sanitise(emptied, "child", timeout=T) is None
    assert pipeline.sanitise(emptied, " (child:1.3), ###nude", timeout=T) is None


def test_the_adult_pass() -> None:
    assert pipeline.adult_pass("a pretty woman") == "a pretty woman"
    assert pipeline.adult_pass("a young woman###ugly") == "a adult woman###ugly"
    assert pipeline.adult_pass("a g.i.r.l at the beach") == "a adult at the beach"
    assert pipeline.adult_pass("girl") is None  # nothing but the age word


def test_a_filter_type_alone() -> None:
    rating = pipeline.rate(FILTERS, "a child, nude", timeout=T, only_type=20)
    assert rating.suspicion == 1 and rating.matches == ["nude"]
    assert pipeline.rate(FILTERS, "a cat", timeout=T, only_type=20).suspicion == 0
    assert pipeline.rate(FILTERS, "a cat", timeout=T, only_type=29).suspicion == 0


def test_regexes_that_do_not_compile() -> None:
    for bad in ("(unclosed", "[z-a]", "*start", "a{2,1}"):
        with pytest.raises(BadRegex, match="compile"):
            check_filter(bad, timeout=0.1)


def test_regexes_that_backtrack_are_refused() -> None:
    for bad in (r"(a|aa)+$", r"^(\w|\w\w)+$", r"(x|xx)+y"):
        with pytest.raises(BadRegex, match="backtracks"):
            check_filter(bad, timeout=0.05)
    assert check_filter(r"\b(?:child|kid)s?\b", timeout=0.05).search("Kids")  # case-insensitive


def test_a_search_that_times_out_counts_as_a_match() -> None:
    stalling = FilterSet.build(1, [(20, r"(a|aa)+$", "")])
    rating = pipeline.rate(stalling, "a" * 60 + "!", timeout=0.01)
    assert rating.suspicion == 1

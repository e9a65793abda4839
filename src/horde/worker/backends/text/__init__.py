"""Text backends: llama.cpp in-process, OpenAI-compatible HTTP, KoboldAI-compatible HTTP."""

from horde.worker.backends.text.kobold import KoboldBackend
from horde.worker.backends.text.llamacpp import LlamaCppBackend, bundled_gguf
from horde.worker.backends.text.openai import OpenAIBackend
from horde.worker.backends.text.params import TextParams, format_output

__all__ = ["KoboldBackend", "LlamaCppBackend", "OpenAIBackend", "TextParams", "bundled_gguf", "format_output"]

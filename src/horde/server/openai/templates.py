"""Chat templates: how a list of chat messages becomes one prompt for a model family.

The family is chosen from the `HORDE_CHAT_TEMPLATES` setting (a list of `[regex, family]` pairs tried
in order against the model's name), then from the model's name and its reference baseline (gemma,
llama 3, mistral, chatml for Qwen and others), and is ChatML when nothing says otherwise. Each family
carries the stop sequence that ends the assistant's turn, added to the request's own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    role: str  # one of ROLES
    content: str


@dataclass(frozen=True)
class Template:
    name: str
    stop: str
    system_as_user: bool = False  # the family has no system turn: it is folded into the first user turn

    def render(self, turns: Sequence[Turn]) -> str:
        turns = _fold_system(turns) if self.system_as_user else list(turns)
        return "".join(self._turn(turn) for turn in turns) + self._open_assistant()

    def _turn(self, turn: Turn) -> str:
        match self.name:
            case "gemma":
                role = "model" if turn.role == "assistant" else "user"
                return f"<start_of_turn>{role}\n{turn.content}<end_of_turn>\n"
            case "llama3":
                return f"<|start_header_id|>{turn.role}<|end_header_id|>\n\n{turn.content}<|eot_id|>"
            case "mistral":
                return f"{turn.content}</s>" if turn.role == "assistant" else f"[INST] {turn.content} [/INST]"
            case "alpaca":
                if turn.role == "assistant":
                    return f"{turn.content}\n\n"
                heading = "### Instruction:" if turn.role == "user" else "### System:"
                return f"{heading}\n{turn.content}\n\n"
            case _:
                return f"<|im_start|>{turn.role}\n{turn.content}<|im_end|>\n"

    def _open_assistant(self) -> str:
        return {
            "gemma": "<start_of_turn>model\n",
            "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "mistral": "",
            "alpaca": "### Response:\n",
        }.get(self.name, "<|im_start|>assistant\n")


TEMPLATES = {
    "chatml": Template("chatml", "<|im_end|>"),
    "gemma": Template("gemma", "<end_of_turn>", system_as_user=True),
    "llama3": Template("llama3", "<|eot_id|>"),
    "mistral": Template("mistral", "</s>", system_as_user=True),
    "alpaca": Template("alpaca", "### Instruction:"),
}
_BY_NAME = (
    (re.compile(r"gemma", re.I), "gemma"),
    (re.compile(r"llama[-_ ]?3", re.I), "llama3"),
    (re.compile(r"mistral|mixtral|magistral|ministral", re.I), "mistral"),
    (re.compile(r"alpaca", re.I), "alpaca"),
)


def _fold_system(turns: Sequence[Turn]) -> list[Turn]:
    system = "\n\n".join(turn.content for turn in turns if turn.role == "system")
    rest = [turn for turn in turns if turn.role != "system"]
    if not system:
        return rest
    for i, turn in enumerate(rest):
        if turn.role == "user":
            rest[i] = Turn("user", f"{system}\n\n{turn.content}")
            return rest
    return [Turn("user", system), *rest]


def template_for(model: str, *, baseline: str | None, configured: Sequence[tuple[str, str]] = ()) -> Template:
    """The chat template of `model` (its name as the horde lists it)."""
    for pattern, family in configured:
        if re.search(pattern, model, re.I) and family in TEMPLATES:
            return TEMPLATES[family]
    for text in (model, baseline or ""):
        for pattern_re, family in _BY_NAME:
            if pattern_re.search(text):
                return TEMPLATES[family]
    return TEMPLATES["chatml"]

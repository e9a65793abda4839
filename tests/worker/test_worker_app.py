"""From configuration to handlers: the pop templates and the backends each kind gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from horde.client import HordeClient
from horde.worker import BRIDGE_AGENT, ImageJobs, TextJobs, Worker, WorkerError, build_handlers, load_config
from horde.worker.backends.image import DiffusersBackend
from horde.worker.backends.text import OpenAIBackend


def test_bridge_agent_names_our_bridge() -> None:
    name, version, url = BRIDGE_AGENT.split(":", 2)
    assert name == "horde-worker" and version and url.startswith("https://")


def test_text_and_image_handlers_carry_the_configuration(tmp_path: Path) -> None:
    checkpoint = tmp_path / "sd15.safetensors"
    checkpoint.write_bytes(b"weights")
    overrides = {
        "api_key": "k", "name": "both kinds", "kinds": ["text", "image"], "threads": 2, "nsfw": False,
        "text.backend": "openai", "text.openai.url": "http://127.0.0.1:9", "text.models": ["e2e/x"],
        "text.max_length": 300, "image.backend": "diffusers", "image.diffusers.checkpoint": str(checkpoint),
        "image.max_pixels": 1048576, "image.max_batch": 4, "image.threads": 1,
    }  # fmt: skip
    text, image = build_handlers(load_config(None, env={}, overrides=overrides))
    assert isinstance(text, TextJobs) and isinstance(text.backends[0], OpenAIBackend)
    assert text.template.name == "both kinds (text)" and text.template.bridge_agent == BRIDGE_AGENT
    assert text.template.max_length == 300 and text.threads == 2 and text.template.nsfw is False
    assert text.offers() == ["e2e/x"]
    assert isinstance(image, ImageJobs) and isinstance(image.backends[0], DiffusersBackend)
    assert image.template.name == "both kinds (image)" and image.template.max_pixels == 1048576
    assert image.template.amount == 4 and image.threads == 1 and image.offers() == ["sd15"]


async def test_a_kind_whose_backend_cannot_load_is_not_served(tmp_path: Path) -> None:
    overrides = {
        "api_key": "k",
        "name": "text worker",
        "text.backend": "openai",
        "text.openai.url": "http://127.0.0.1:9",
    }
    handlers = build_handlers(load_config(None, env={}, overrides=overrides))
    async with HordeClient("http://127.0.0.1:9") as client:
        with pytest.raises(WorkerError, match="openai"):
            await Worker(client, handlers).start()

"""From a `WorkerConfig` to a running worker: the client, the backends, the handlers, the signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from horde.client import HordeClient, RetryPolicy
from horde.contract import InterrogationPopInput, PopInputKobold, PopInputStable
from horde.worker.backends import AlchemyBackend, ImageBackend, TextBackend, default_data_dir
from horde.worker.config import WorkerConfig
from horde.worker.jobs import AlchemyJobs, Handler, ImageJobs, TextJobs
from horde.worker.loop import Worker, WorkerError, WorkerOptions

__all__ = ["BRIDGE_AGENT", "build_client", "build_handlers", "run_worker"]

log = logging.getLogger("horde.worker")


def _version() -> str:
    try:
        return version("horde")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0"


BRIDGE_NAME = "horde-worker"  # the name the horde's capability table knows (server OUR_BRIDGE)
BRIDGE_AGENT = f"{BRIDGE_NAME}:{_version()}:https://github.com/horde/horde"

UPSCALER_FORMS = ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus")


def build_client(config: WorkerConfig) -> HordeClient:
    """The worker's client: its bridge agent as Client-Agent, and patient retries for submits."""
    retry = RetryPolicy(attempts=6, base=0.5, cap=10.0)
    return HordeClient(config.horde_url, config.api_key, client_agent=BRIDGE_AGENT, retry=retry)


def build_handlers(config: WorkerConfig) -> list[Handler]:
    """One handler per configured kind, with its (not yet loaded) backends."""
    builders = {"text": _text, "image": _image, "alchemy": _alchemy}
    return [builders[kind](config) for kind in config.kinds]


def _common(config: WorkerConfig, kind: Any) -> dict[str, Any]:
    return {
        "name": config.worker_name(kind),
        "priority_usernames": config.priority_usernames,
        "bridge_agent": BRIDGE_AGENT,
        "threads": config.threads_for(kind),
    }


def _pop_common(config: WorkerConfig, kind: Any) -> dict[str, Any]:
    return {
        **_common(config, kind),
        "nsfw": config.nsfw,
        "require_upfront_kudos": config.require_upfront_kudos,
        "extra_slow_worker": config.extra_slow_worker,
    }


def _text(config: WorkerConfig) -> Handler:
    text = config.text
    template = PopInputKobold(
        **_pop_common(config, "text"), max_length=text.max_length, max_context_length=text.max_context_length
    )
    return TextJobs(template, [_text_backend(config)])


def _text_backend(config: WorkerConfig) -> TextBackend:
    from horde.worker.backends.text import KoboldBackend, LlamaCppBackend, OpenAIBackend

    text = config.text
    if text.backend == "openai" and text.openai is not None:
        o = text.openai
        return OpenAIBackend(o.url, model=o.model, models=text.models, api_key=o.api_key, timeout=o.timeout)
    if text.backend == "kobold" and text.kobold is not None:
        return KoboldBackend(text.kobold.url, models=text.models, timeout=text.kobold.timeout)
    llama = text.llamacpp
    return LlamaCppBackend(
        llama.gguf,
        model_name=text.models[0] if text.models else None,
        data_dir=config.data_dir or default_data_dir(),
        n_ctx=llama.n_ctx,
        n_threads=llama.n_threads,
    )


def _image(config: WorkerConfig) -> Handler:
    image = config.image
    flags = {
        name: getattr(image, name)
        for name in ("allow_img2img", "allow_painting", "allow_post_processing", "allow_controlnet",
                     "allow_sdxl_controlnet", "allow_lora", "limit_max_steps")
    }  # fmt: skip
    template = PopInputStable(
        **_pop_common(config, "image"), models=image.models, max_pixels=image.max_pixels,
        blacklist=image.blacklist, allow_unsafe_ipaddr=config.allow_unsafe_ipaddr, amount=image.max_batch,
        **flags,
    )  # fmt: skip
    return ImageJobs(template, [_image_backend(config)])


def _image_backend(config: WorkerConfig) -> ImageBackend:
    from horde.worker.backends.image import DiffusersBackend

    settings = config.image.diffusers
    assert settings is not None  # the config requires it for the one image backend there is
    return DiffusersBackend(
        settings.checkpoint,
        models=config.image.models,
        kind=settings.kind,
        config=str(settings.config) if settings.config else None,
        device=settings.device,
        threads=settings.threads,
    )


def _alchemy(config: WorkerConfig) -> Handler:
    from horde.worker.backends.alchemy import NsfwBackend, StripBackgroundBackend, UpscaleBackend

    alchemy = config.alchemy
    wanted = set(alchemy.forms or ())
    backends: list[AlchemyBackend] = []
    if not wanted or "nsfw" in wanted:
        backends.append(NsfwBackend(threshold=alchemy.nsfw_threshold))
    if not wanted or wanted & set(UPSCALER_FORMS):
        backends.append(UpscaleBackend(approximate_x2plus=alchemy.approximate_x2plus))
    if not wanted or "strip_background" in wanted:
        backends.append(StripBackgroundBackend(config.data_dir or default_data_dir()))
    template = InterrogationPopInput(
        **_common(config, "alchemy"), forms=sorted(wanted), max_tiles=alchemy.max_tiles
    )
    return AlchemyJobs(template, backends, ttl=alchemy.ttl)


def options_for(config: WorkerConfig, *, burst: bool = False) -> WorkerOptions:
    return WorkerOptions(
        long_poll=config.long_poll,
        ttl_margin=config.ttl_margin,
        shutdown_timeout=config.shutdown_timeout,
        max_backoff=config.max_backoff,
        idle_backoff=config.idle_backoff,
        burst=burst,
    )


async def run_worker(config: WorkerConfig, *, burst: bool = False) -> int:
    """Run until SIGINT/SIGTERM (a second one abandons held jobs); the exit code: 0 clean, 1 failed."""
    handlers = build_handlers(config)
    async with build_client(config) as client:
        worker = Worker(client, handlers, options_for(config, burst=burst))
        stops = 0

        def on_signal() -> None:
            nonlocal stops
            stops += 1
            worker.stop(force=stops > 1)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await worker.run()
        except WorkerError as exc:
            log.error("%s", exc)
            return 1
        finally:
            # stopping already: a late signal must not kill the process while it closes (a supervisor's
            # second SIGTERM would make a clean stop look like a crash); the loop's close drops these
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: None)
        s = worker.stats
        log.info(
            "stopped: %d submitted, %d reported faulted, %d not reported", s.submitted, s.faulted, s.lost
        )
        return 1 if worker.failed else 0

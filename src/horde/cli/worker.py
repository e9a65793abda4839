"""`horde worker`: run the worker program (text, image and alchemy jobs from one process).

Configuration comes from a YAML file (``--config`` or ``HORDE_WORKER_CONFIG``), then ``HORDE_URL``,
``HORDE_API_KEY`` and ``HORDE_WORKER_NAME``, then the flags below. Exit codes: 0 after a clean stop
(SIGINT/SIGTERM), 1 when nothing could be served or the horde refused the worker, 2 for a bad
configuration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

KINDS = ("text", "image", "alchemy")


@click.command("worker")
@click.option(
    "-c", "--config", "config_path", envvar="HORDE_WORKER_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path), help="YAML configuration file.",
)  # fmt: skip
@click.option("--horde-url", help="The horde to work for (env HORDE_URL).")
@click.option("--api-key", help="The worker owner's API key (env HORDE_API_KEY).")
@click.option("--name", help="Worker name (env HORDE_WORKER_NAME).")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="A kind to serve (repeatable)."
)
@click.option("--threads", type=click.IntRange(1, 50), help="Jobs run at once, per kind.")
@click.option("--text-backend", type=click.Choice(["llamacpp", "openai", "kobold"]), help="Text backend.")
@click.option("--gguf", type=click.Path(dir_okay=False, path_type=Path), help="GGUF model file for llamacpp.")
@click.option("--openai-url", help="OpenAI-compatible server URL (implies --text-backend openai).")
@click.option("--kobold-url", help="KoboldAI-compatible server URL (implies --text-backend kobold).")
@click.option("--model", "models", multiple=True, help="Text model name to advertise (repeatable).")
@click.option("--burst", is_flag=True, help="Exit once the horde has no job for this worker.")
@click.option("--check", is_flag=True, help="Validate the configuration, print it and exit.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv: HTTP requests too).")
def worker(config_path: Path | None, burst: bool, check: bool, verbose: int, **flags: Any) -> None:
    """Run a worker: pop jobs from a horde, run them on local or remote models, submit the results."""
    from horde.worker import ConfigError, load_config, run_worker

    try:
        config = load_config(config_path, env=os.environ, overrides=_overrides(**flags))
    except ConfigError as exc:
        click.echo(f"horde worker: {exc}", err=True)
        sys.exit(2)
    if check:
        secrets: Any = {"api_key": True, "text": {"openai": {"api_key"}}}
        click.echo(config.model_dump_json(indent=2, exclude=secrets))
        return
    _setup_logging(verbose)
    code = asyncio.run(run_worker(config, burst=burst))
    for sig in (signal.SIGINT, signal.SIGTERM):  # the rest is interpreter shutdown: nothing to interrupt
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)


def _overrides(
    *,
    horde_url: str | None,
    api_key: str | None,
    name: str | None,
    kinds: tuple[str, ...],
    threads: int | None,
    text_backend: str | None,
    gguf: Path | None,
    openai_url: str | None,
    kobold_url: str | None,
    models: tuple[str, ...],
) -> dict[str, Any]:
    """Flags as dotted configuration keys (only those given)."""
    if text_backend is None:
        text_backend = "openai" if openai_url else "kobold" if kobold_url else None
    values: dict[str, Any] = {
        "horde_url": horde_url,
        "api_key": api_key,
        "name": name,
        "kinds": list(kinds) or None,
        "threads": threads,
        "text.backend": text_backend,
        "text.llamacpp.gguf": gguf,
        "text.openai.url": openai_url,
        "text.kobold.url": kobold_url,
        "text.models": list(models) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


def _setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

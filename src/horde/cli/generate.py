"""`horde generate text|image`, `horde interrogate` and `horde status`: submit a request, follow it, show it.

Results go to stdout (texts; the paths of written image files; one line per form), everything else
(progress, who made it, what it cost) to stderr. Ctrl-C or `--timeout` while waiting cancels the request
on the horde. Conventions (environment, `--json`, exit codes) are in `horde.cli.client_verbs`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from horde.cli.client_verbs import (
    EXIT_REFUSED,
    Target,
    build_body,
    client_options,
    echo_json,
    fail,
    run_verb,
    target_of,
)
from horde.cli.progress import Progress, Snapshot, follow

if TYPE_CHECKING:
    from horde.client import HordeClient
    from horde.contract import (
        InterrogationStatus,
        RequestStatusCheck,
        RequestStatusKobold,
        RequestStatusStable,
    )

__all__ = ["generate", "interrogate", "status"]

FINAL_FORM_STATES = ("done", "faulted", "cancelled")
FINAL_STATES = (*FINAL_FORM_STATES, "partial")  # an interrogation's: "partial" is some done, some not
timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Give up (and cancel) after SECONDS."
)


@click.group()
def generate() -> None:
    """Ask the horde for text or images and wait for them."""


@generate.command("text")
@click.argument("prompt")
@click.option("--model", "models", multiple=True, help="A model to use (repeatable; default any).")
@click.option("--max-length", type=int, help="Tokens to generate (default 80).")
@click.option("--max-context-length", type=int, help="Context the prompt may fill (default 2048).")
@click.option("--n", type=int, default=1, show_default=True, help="How many generations.")
@click.option("--temperature", type=float, help="Sampling temperature.")
@timeout_option
@client_options
def generate_text(
    prompt: str,
    models: tuple[str, ...],
    max_length: int | None,
    max_context_length: int | None,
    n: int,
    temperature: float | None,
    timeout: float | None,
    **options: Any,
) -> None:
    """Generate text that continues PROMPT; print it."""
    from horde.contract import GenerationInputKobold

    target = target_of(**options)
    params = {"max_length": max_length, "max_context_length": max_context_length, "n": n,
              "temperature": temperature}  # fmt: skip
    body = build_body(
        GenerationInputKobold,
        {"prompt": prompt, "models": list(models), "params": _given(params)},
    )

    async def verb(client: HordeClient) -> int:
        accepted = await client.text_async(body)
        request_id = _accepted_id(accepted)
        final = await _follow(
            client, target, "text", request_id, n, timeout, lambda w: client.text_status(request_id, wait=w)
        )
        return show_text(final, target, request_id)

    run_verb(target, verb)


@generate.command("image")
@click.argument("prompt")
@click.option("--model", "models", multiple=True, help="A model to use (repeatable; default any).")
@click.option("--width", type=int, help="Width in pixels, a multiple of 64 (default 512).")
@click.option("--height", type=int, help="Height in pixels, a multiple of 64 (default 512).")
@click.option("--steps", type=int, help="Sampling steps (default 30).")
@click.option("--n", type=int, default=1, show_default=True, help="How many images.")
@click.option("--seed", help="Seed (text or digits; default random).")
@click.option("--sampler", help="Sampler name, e.g. k_euler_a.")
@click.option("--cfg-scale", type=float, help="Classifier-free guidance scale.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
    help="Folder to write the images to.",
)  # fmt: skip
@timeout_option
@client_options
def generate_image(
    prompt: str,
    models: tuple[str, ...],
    width: int | None,
    height: int | None,
    steps: int | None,
    n: int,
    seed: str | None,
    sampler: str | None,
    cfg_scale: float | None,
    out: Path,
    timeout: float | None,
    **options: Any,
) -> None:
    """Generate images of PROMPT and write them to --out."""
    from horde.contract import GenerationInputStable

    target = target_of(**options)
    params = {"width": width, "height": height, "steps": steps, "n": n, "seed": seed,
              "sampler_name": sampler, "cfg_scale": cfg_scale}  # fmt: skip
    data: dict[str, Any] = {"prompt": prompt, "params": _given(params)}
    if models:
        data["models"] = list(models)
    body = build_body(GenerationInputStable, data)

    async def verb(client: HordeClient) -> int:
        accepted = await client.image_async(body)
        request_id = _accepted_id(accepted)
        await _follow(
            client, target, "image", request_id, n, timeout, lambda w: client.image_check(request_id, wait=w)
        )
        final = await client.image_status(request_id)
        return await save_images(client, final, target, request_id, out)

    run_verb(target, verb)


@click.command()
@click.argument("image")
@click.option(
    "--form", "forms", multiple=True, required=True,
    help="A form: caption, nsfw, interrogation, RealESRGAN_x4plus, strip_background... (repeatable).",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
    help="Folder to write post-processed images to.",
)  # fmt: skip
@timeout_option
@client_options
def interrogate(image: str, forms: tuple[str, ...], out: Path, timeout: float | None, **options: Any) -> None:
    """Run alchemy forms on IMAGE (a file or an http(s) URL); print each form's result."""
    from horde.contract import ModelInterrogationInputStable

    target = target_of(**options)
    source = image if image.startswith(("http://", "https://")) else _read_source(Path(image))
    body = build_body(
        ModelInterrogationInputStable,
        {"source_image": source, "forms": [{"name": form} for form in dict.fromkeys(forms)]},
    )

    async def verb(client: HordeClient) -> int:
        accepted = await client.alchemy_async(body)
        fetch = lambda w: client.alchemy_status(accepted.id, wait=w)  # noqa: E731
        final = await _follow(client, target, "alchemy", accepted.id, len(body.forms), timeout, fetch)
        return await show_forms(client, final, target, accepted.id, out)

    run_verb(target, verb)


@click.command()
@click.argument("request_id", metavar="ID")
@click.option(
    "--kind", type=click.Choice(["text", "image", "alchemy"]), help="The request's kind (default: any)."
)
@client_options
def status(request_id: str, kind: str | None, **options: Any) -> None:
    """Show a request's progress and results (exit 1 when it faulted)."""
    target = target_of(**options)

    async def verb(client: HordeClient) -> int:
        from horde.client import NotFound

        fetchers: dict[str, Callable[[], Awaitable[Any]]] = {
            "text": lambda: client.text_status(request_id),
            "image": lambda: client.image_status(request_id),
            "alchemy": lambda: client.alchemy_status(request_id),
        }
        for name in [kind] if kind else list(fetchers):
            try:
                found = await fetchers[name]()
            except NotFound:
                if kind:
                    raise
                continue
            return await _show_status(client, name, found, target, request_id)
        fail(f"no text, image or alchemy request has the id {request_id}")
        return EXIT_REFUSED

    run_verb(target, verb)


# Following a request ---------------------------------------------------------------------------------
async def _follow[S](
    client: HordeClient,
    target: Target,
    kind: str,
    request_id: str,
    total: int,
    timeout: float | None,
    fetch: Callable[[float | None], Awaitable[S]],
) -> S:
    """Follow to the end with progress on stderr; on Ctrl-C or timeout, cancel the request and re-raise."""
    from horde.client import HordeError

    progress = Progress(f"{kind} {request_id[:8]}", enabled=not target.quiet)

    def snapshot(current: Any) -> Snapshot:
        return snapshot_of(current, total)

    try:
        return await follow(
            fetch, snapshot, progress, long_poll=lambda: client.long_poll_supported, timeout=timeout
        )
    except (asyncio.CancelledError, TimeoutError) as exc:
        progress.close()
        cancel = {"text": client.text_cancel, "image": client.image_cancel, "alchemy": client.alchemy_cancel}
        with contextlib.suppress(HordeError):
            await cancel[kind](request_id)
            click.echo(f"horde: request {request_id} cancelled", err=True)
        if isinstance(exc, TimeoutError):
            fail(f"{exc}")
        raise
    finally:
        progress.close()


def snapshot_of(current: Any, total: int) -> Snapshot:
    """The progress of any kind's status answer."""
    from horde.contract import InterrogationStatus

    if isinstance(current, InterrogationStatus):
        states = [form.state for form in current.forms]
        return Snapshot(
            finished=sum(state in FINAL_FORM_STATES for state in states),
            total=len(states) or total,
            processing=states.count("processing"),
            done=current.state in FINAL_STATES,
            note=current.state,
        )
    check: RequestStatusCheck = current
    return Snapshot(
        finished=check.finished,
        total=max(total, check.finished + check.processing + check.waiting),
        queue_position=check.queue_position,
        wait_time=check.wait_time,
        processing=check.processing,
        done=check.done or check.faulted,
        note="faulted" if check.faulted else "done",
    )


# Showing results -------------------------------------------------------------------------------------
def show_text(status: RequestStatusKobold, target: Target, request_id: str) -> int:
    if target.json:
        echo_json(status)
    else:
        many = len(status.generations) > 1
        for i, generation in enumerate(status.generations, 1):
            if many:
                click.echo(f"--- {i}/{len(status.generations)} ---")
            click.echo(generation.text)
            made = " on ".join(part for part in (generation.model, generation.worker_name) if part)
            _note(target, f"{made} ({generation.state})")
        _note(target, f"request {request_id}: {status.kudos:g} kudos")
    return _faulted(status.faulted, request_id)


async def save_images(
    client: HordeClient, status: RequestStatusStable, target: Target, request_id: str, out: Path
) -> int:
    for i, generation in enumerate(status.generations):
        data = await _image_bytes(client, generation.img)
        path = await asyncio.to_thread(_write, out, f"{request_id}-{i}", data)
        if not target.json:
            click.echo(str(path))
        censored = ", censored" if generation.censored else ""
        made = f"{generation.model} on {generation.worker_name}, seed {generation.seed}{censored}"
        _note(target, f"{path.name}: {made}")
    if target.json:
        echo_json(status)
    return _faulted(status.faulted, request_id)


async def show_forms(
    client: HordeClient | None, status: InterrogationStatus, target: Target, request_id: str, out: Path | None
) -> int:
    """One line per form; post-processed images are written to ``out`` (listed as URLs when None)."""
    if target.json:
        echo_json(status)
    for form in status.forms:
        if form.state != "done" or not form.result:
            line = form.state
        else:
            values = [await _form_value(client, form.form, v, request_id, out) for v in form.result.values()]
            line = " ".join(values)
        if not target.json:
            click.echo(f"{form.form}: {line}")
    failed = status.state == "faulted" or any(form.state == "faulted" for form in status.forms)
    return _faulted(failed, request_id)


async def _form_value(
    client: HordeClient | None, form: str, value: Any, request_id: str, out: Path | None
) -> str:
    if isinstance(value, str) and value.startswith(("http://", "https://")) and client and out:
        data = await client.download(value)
        return str(await asyncio.to_thread(_write, out, f"{request_id}-{form}", data))
    return value if isinstance(value, str) else json.dumps(value)


async def _show_status(client: HordeClient, kind: str, found: Any, target: Target, request_id: str) -> int:
    if kind == "alchemy":
        if not target.json:
            click.echo(Progress(f"alchemy {request_id[:8]}").render(snapshot_of(found, 0), clock=False))
        return await show_forms(None, found, target, request_id, None)
    if target.json:
        echo_json(found)
        return _faulted(found.faulted, request_id)
    click.echo(Progress(f"{kind} {request_id[:8]}").render(snapshot_of(found, 0), clock=False))
    for generation in found.generations:
        shown = generation.text if kind == "text" else _short_image(generation.img)
        click.echo(f"{generation.worker_name} ({generation.model}): {shown}")
    return _faulted(found.faulted, request_id)


# Helpers -----------------------------------------------------------------------------------------------
def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _accepted_id(accepted: Any) -> str:
    if not accepted.id:
        fail("the horde accepted the request without an id")
    for warning in accepted.warnings or []:
        click.echo(f"horde: warning: {warning.message} ({warning.code})", err=True)
    return str(accepted.id)


def _read_source(path: Path) -> str:
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", code=2)


async def _image_bytes(client: HordeClient, img: str) -> bytes:
    if img.startswith(("http://", "https://")):
        return await client.download(img)
    return base64.b64decode(img)


def _write(out: Path, stem: str, data: bytes) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.{_extension(data)}"
    path.write_bytes(data)
    return path


def _extension(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    return "bin"


def _short_image(img: str) -> str:
    return img if img.startswith(("http://", "https://")) else f"<base64 image, {len(img)} characters>"


def _note(target: Target, message: str) -> None:
    if not target.quiet:
        click.echo(message, err=True)


def _faulted(faulted: bool, request_id: str) -> int:
    if faulted:
        click.echo(f"horde: request {request_id} faulted", err=True)
        return EXIT_REFUSED
    return 0

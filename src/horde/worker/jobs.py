"""Per-kind job handling: how to pop, run one job on a backend, and submit its result or its fault.

A :class:`Job` is what one worker slot runs: one text job, one image job (possibly several ids that
share one backend call) or one alchemy form. Each handler turns a pop reply into jobs, runs a job
into submit bodies (`produce`, which the loop bounds by the job's ttl), and builds the faulted
bodies when a job cannot be finished.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from horde.client import HordeClient, JobSubmitted
from horde.contract import (
    GenerationMetadataKobold,
    GenerationMetadataStable,
    GenerationPayloadKobold,
    GenerationPayloadStable,
    InterrogationPopFormPayload,
    InterrogationPopInput,
    InterrogationSubmitInput,
    PopInputKobold,
    PopInputStable,
    ResponseModelMessagePop,
    SubmitInputKobold,
    SubmitInputStable,
    limits,
)
from horde.worker.backends import (
    AlchemyBackend,
    Backend,
    GeneratedImage,
    ImageBackend,
    JobFailed,
    ParamNote,
    TextBackend,
    TextParams,
)

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["AlchemyJobs", "Handler", "ImageJobs", "Job", "Popped", "TextJobs"]

log = logging.getLogger("horde.worker")


@dataclass(eq=False)
class Job:
    """One unit of work for one slot: the ids it covers, its ttl and the popped item."""

    kind: str
    ids: tuple[str, ...]
    ttl: float
    item: Any
    popped_at: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        return f"{self.kind} job {', '.join(self.ids)}"


@dataclass
class Popped:
    """What one pop brought: jobs (maybe none) and the horde's messages to this worker."""

    jobs: list[Job] = field(default_factory=list)
    messages: list[ResponseModelMessagePop] = field(default_factory=list)


class Handler(Protocol):
    """What the loop needs from each kind."""

    kind: str
    name: str
    threads: int
    backends: list[Any]

    def offers(self) -> list[str]:
        """The model or form names this handler can serve with its loaded backends."""

    def amount(self, free: int) -> int:
        """How many jobs to ask for when ``free`` slots are free."""

    async def pop(self, client: HordeClient, *, amount: int, wait: float | None) -> Popped: ...

    async def produce(self, client: HordeClient, job: Job) -> list[BaseModel]:
        """Run ``job`` and return its submit bodies; raise when it cannot be done."""

    def faulted(self, job: Job) -> list[BaseModel]:
        """Submit bodies reporting ``job`` as faulted."""

    async def submit(self, client: HordeClient, body: BaseModel) -> JobSubmitted: ...


def _route[B: Backend](backends: Sequence[B], names: Any) -> dict[str, B]:
    """Name -> the first backend serving it."""
    table: dict[str, B] = {}
    for backend in backends:
        for name in names(backend):
            table.setdefault(name, backend)
    return table


def _pick[B](table: dict[str, B], name: str | None, what: str) -> B:
    if name and name in table:
        return table[name]
    if not name and len(set(map(id, table.values()))) == 1:
        return next(iter(table.values()))
    raise JobFailed(f"no loaded backend serves the {what} {name!r}")


class TextJobs:
    """Text jobs on `TextBackend`s; each id of a pop is a job of its own."""

    kind = "text"

    def __init__(self, template: PopInputKobold, backends: Sequence[TextBackend]) -> None:
        self.template = template
        self.name = template.name
        self.threads = template.threads
        self.backends: list[TextBackend] = list(backends)

    def _table(self) -> dict[str, TextBackend]:
        return _route(self.backends, lambda b: b.models)

    def offers(self) -> list[str]:
        return list(self._table())

    def amount(self, free: int) -> int:
        return max(1, min(free, limits.MAX_POP_AMOUNT))

    async def pop(self, client: HordeClient, *, amount: int, wait: float | None) -> Popped:
        body = self.template.model_copy(update={"amount": amount, "models": self.offers()})
        reply = await client.text_pop(body, wait=wait)
        popped = Popped(messages=list(reply.messages))
        if reply.id is None:
            return popped
        ttl = float(reply.ttl or 150)
        popped.jobs = [Job(self.kind, (job_id,), ttl, reply) for job_id in (reply.ids or [reply.id])]
        return popped

    async def produce(self, client: HordeClient, job: Job) -> list[BaseModel]:
        reply: GenerationPayloadKobold = job.item
        backend = _pick(self._table(), reply.model, "model")
        try:
            params = TextParams.from_payload(reply.payload.model_dump(mode="json"))
        except ValidationError as exc:
            raise JobFailed(f"unusable text payload: {exc.errors()[0]['msg']}") from exc
        result = await backend.generate(reply.payload.prompt or "", params)
        meta = None
        if result.notes:
            log.info("%s: %s", job.describe(), _notes(result.notes))
            # Our horde (it honours Horde-Wait) records the notes; the reference's text submit accepts
            # only censorship entries, so against it they stay in the log.
            if client.long_poll_supported:
                meta = [
                    GenerationMetadataKobold(
                        type="information", value="see_ref", ref=_notes(result.notes)[:255]
                    )
                ]
        body = SubmitInputKobold(id=job.ids[0], generation=result.text, state="ok", seed=result.seed)
        if meta:
            body.gen_metadata = meta
        return [body]

    def faulted(self, job: Job) -> list[BaseModel]:
        return [SubmitInputKobold(id=i, generation="", state="faulted") for i in job.ids]

    async def submit(self, client: HordeClient, body: BaseModel) -> JobSubmitted:
        assert isinstance(body, SubmitInputKobold)
        return await client.text_submit(body)


class ImageJobs:
    """Image jobs on `ImageBackend`s; the ids of one pop share one backend call (``n_iter``)."""

    kind = "image"

    def __init__(self, template: PopInputStable, backends: Sequence[ImageBackend]) -> None:
        self.template = template
        self.name = template.name
        self.threads = template.threads
        self.backends: list[ImageBackend] = list(backends)

    def _table(self) -> dict[str, ImageBackend]:
        return _route(self.backends, lambda b: b.models)

    def offers(self) -> list[str]:
        return list(self._table())

    def amount(self, free: int) -> int:
        return self.template.amount

    async def pop(self, client: HordeClient, *, amount: int, wait: float | None) -> Popped:
        body = self.template.model_copy(update={"amount": amount, "models": self.offers()})
        reply = await client.image_pop(body, wait=wait)
        popped = Popped(messages=list(reply.messages))
        if reply.id is not None:
            popped.jobs = [Job(self.kind, tuple(reply.ids or [reply.id]), float(reply.ttl or 150), reply)]
        return popped

    async def produce(self, client: HordeClient, job: Job) -> list[BaseModel]:
        reply: GenerationPayloadStable = job.item
        backend = _pick(self._table(), reply.model, "model")
        source = await load_image(client, reply.source_image) if reply.source_image else None
        payload = reply.payload.model_dump(mode="json")
        payload.update(n_iter=len(job.ids), source_processing=reply.source_processing)
        images = await backend.generate(payload, source_image=source)
        uploads = reply.r2_uploads or ([reply.r2_upload] if reply.r2_upload else [])
        bodies: list[BaseModel] = []
        for index, job_id in enumerate(job.ids):
            if index >= len(images):
                bodies.append(SubmitInputStable(id=job_id, generation="", state="faulted", seed=0))
                continue
            url = uploads[index] if index < len(uploads) else None
            bodies.append(await self._finish(client, job_id, images[index], url))
        return bodies

    @staticmethod
    async def _finish(
        client: HordeClient, job_id: str, image: GeneratedImage, url: str | None
    ) -> SubmitInputStable:
        data = await asyncio.to_thread(encode_webp, image.image)
        if url:
            await client.upload(url, data)
        meta = [GenerationMetadataStable(type="information", value="see_ref", ref=_notes(image.notes)[:255])]
        return SubmitInputStable(
            id=job_id,
            generation="R2" if url else base64.b64encode(data).decode("ascii"),
            state="ok",
            seed=image.seed,
            gen_metadata=meta if image.notes else None,
        )

    def faulted(self, job: Job) -> list[BaseModel]:
        return [SubmitInputStable(id=i, generation="", state="faulted", seed=0) for i in job.ids]

    async def submit(self, client: HordeClient, body: BaseModel) -> JobSubmitted:
        assert isinstance(body, SubmitInputStable)
        return await client.image_submit(body)


class AlchemyJobs:
    """Alchemy forms on `AlchemyBackend`s; each form is a job; forms of one image share its download."""

    kind = "alchemy"

    def __init__(
        self, template: InterrogationPopInput, backends: Sequence[AlchemyBackend], *, ttl: float
    ) -> None:
        self.template = template
        self.name = template.name
        self.threads = template.threads
        self.backends: list[AlchemyBackend] = list(backends)
        self.ttl = ttl
        self._wanted = set(template.forms)
        self._sources: OrderedDict[str, asyncio.Task[Image]] = OrderedDict()

    def _table(self) -> dict[str, AlchemyBackend]:
        table = _route(self.backends, lambda b: b.forms)
        return {form: b for form, b in table.items() if not self._wanted or form in self._wanted}

    def offers(self) -> list[str]:
        return list(self._table())

    def amount(self, free: int) -> int:
        return max(1, min(free, limits.MAX_POP_AMOUNT))

    async def pop(self, client: HordeClient, *, amount: int, wait: float | None) -> Popped:
        body = self.template.model_copy(update={"amount": amount, "forms": self.offers()})
        reply = await client.alchemy_pop(body, wait=wait)
        return Popped(jobs=[Job(self.kind, (form.id,), self.ttl, form) for form in reply.forms])

    async def produce(self, client: HordeClient, job: Job) -> list[BaseModel]:
        form: InterrogationPopFormPayload = job.item
        backend = _pick(self._table(), form.form, "form")
        image = await self._source(client, form.source_image)
        outcome = await backend.run(form.form, image, dict(form.payload or {}))
        result: dict[str, Any] = outcome.submit_result(uploaded=bool(form.r2_upload))
        if outcome.image is not None:
            data = await asyncio.to_thread(encode_webp, outcome.image)
            if form.r2_upload:
                await client.upload(form.r2_upload, data)
            else:
                result = {form.form: base64.b64encode(data).decode("ascii")}
        return [InterrogationSubmitInput(id=form.id, result=result, state="ok")]

    async def _source(self, client: HordeClient, source: str) -> Image:
        task = self._sources.get(source)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._sources[source] = asyncio.ensure_future(load_image(client, source))
            while len(self._sources) > 8:
                self._sources.popitem(last=False)
        return await asyncio.shield(task)

    def faulted(self, job: Job) -> list[BaseModel]:
        return [InterrogationSubmitInput(id=i, result="", state="faulted") for i in job.ids]

    async def submit(self, client: HordeClient, body: BaseModel) -> JobSubmitted:
        assert isinstance(body, InterrogationSubmitInput)
        return await client.alchemy_submit(body)


async def load_image(client: HordeClient, source: str) -> Image:
    """A source image from a URL (fetched through the client) or base64; unreadable -> JobFailed."""
    if source.startswith(("http://", "https://")):
        data = await client.download(source)
    else:
        try:
            data = base64.b64decode(source.split(",", 1)[-1], validate=False)
        except (binascii.Error, ValueError) as exc:
            raise JobFailed("the source image is not valid base64") from exc
    return await asyncio.to_thread(decode_image, data)


def decode_image(data: bytes) -> Image:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise JobFailed(f"the source image cannot be read: {exc}") from exc
    return image


def encode_webp(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=95)
    return buffer.getvalue()


def _notes(notes: Sequence[ParamNote]) -> str:
    return "; ".join(f"{n.field} {n.how}" + (f" ({n.detail})" if n.detail else "") for n in notes)

"""A scripted in-memory horde behind an httpx MockTransport, and fake backends, for the worker tests.

The fake horde is not the server: it hands out the jobs a test queues, records every pop, submit and
upload, answers a repeated submit with DuplicateGen, and can be told to fail the next calls of a path.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

from horde.worker.backends import AlchemyResult, GeneratedImage, JobFailed, TextParams, TextResult

V2 = "/api/v2"


@dataclass
class FakeHorde:
    text_jobs: list[dict[str, Any]] = field(default_factory=list)
    image_jobs: list[dict[str, Any]] = field(default_factory=list)
    forms: list[dict[str, Any]] = field(default_factory=list)
    pops: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    submits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, list[httpx.Response | Exception]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    def queue_text(
        self, prompt: str = "Once", *, ttl: int = 150, model: str = "fake/model", n: int = 1, **params: Any
    ):
        ids = [str(uuid.uuid4()) for _ in range(n)]
        self.text_jobs.append({"ids": ids, "prompt": prompt, "ttl": ttl, "model": model, "params": params})
        return ids

    def queue_image(self, *, n: int = 1, upload: bool = True, source: str | None = None, ttl: int = 150):
        ids = [str(uuid.uuid4()) for _ in range(n)]
        self.image_jobs.append({"ids": ids, "upload": upload, "source": source, "ttl": ttl})
        return ids

    def queue_form(self, form: str, source: str, *, upload: bool = False) -> str:
        form_id = str(uuid.uuid4())
        self.forms.append({"id": form_id, "form": form, "source": source, "upload": upload})
        return form_id

    def fail(self, path: str, *answers: httpx.Response | Exception) -> None:
        self.failures.setdefault(path, []).extend(answers)

    def submitted(self, kind: str) -> dict[str, dict[str, Any]]:
        return {body["id"]: body for body in self.submits.get(kind, [])}

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if pending := self.failures.get(path):
            answer = pending.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        body = json.loads(request.content) if request.content and request.method == "POST" else {}
        if request.method == "PUT":
            self.uploads[str(request.url)] = request.content
            return httpx.Response(200)
        if request.method == "GET" and path.startswith("/objects/"):
            return httpx.Response(200, content=self.objects[path.removeprefix("/objects/")])
        routes: dict[str, Callable[[dict[str, Any]], httpx.Response]] = {
            f"{V2}/generate/text/pop": self._text_pop,
            f"{V2}/generate/pop": self._image_pop,
            f"{V2}/interrogate/pop": self._alchemy_pop,
            f"{V2}/generate/text/submit": lambda b: self._submit("text", b),
            f"{V2}/generate/submit": lambda b: self._submit("image", b),
            f"{V2}/interrogate/submit": lambda b: self._submit("alchemy", b),
        }
        if path not in routes:
            return httpx.Response(404, json={"message": "Not Found", "rc": "NotFound"})
        return routes[path](body)

    def _text_pop(self, body: dict[str, Any]) -> httpx.Response:
        self.pops.setdefault("text", []).append(body)
        if not self.text_jobs:
            return httpx.Response(
                200, json={"payload": {}, "id": None, "ids": [], "skipped": {}, "messages": self.messages}
            )
        job = self.text_jobs.pop(0)
        ids = job["ids"][: body.get("amount", 1)]
        if rest := job["ids"][len(ids) :]:
            self.text_jobs.insert(0, {**job, "ids": rest})
        payload = {"prompt": job["prompt"], "n": 1, "max_length": 32, **job["params"]}
        reply = {"payload": payload, "id": ids[0], "ids": ids, "model": job["model"], "ttl": job["ttl"]}
        return httpx.Response(200, json={**reply, "skipped": {}, "messages": self.messages})

    def _image_pop(self, body: dict[str, Any]) -> httpx.Response:
        self.pops.setdefault("image", []).append(body)
        if not self.image_jobs:
            return httpx.Response(200, json={"payload": {}, "id": None, "ids": [], "skipped": {}})
        job = self.image_jobs.pop(0)
        ids = job["ids"]
        reply: dict[str, Any] = {
            "payload": {"prompt": "a cat", "seed": "42", "n_iter": len(ids), "width": 64, "height": 64},
            "id": ids[0], "ids": ids, "model": "fake-image", "ttl": job["ttl"], "skipped": {},
        }  # fmt: skip
        if job["upload"]:
            reply["r2_uploads"] = [f"http://bucket.test/{i}.webp?sig=x" for i in ids]
            reply["r2_upload"] = reply["r2_uploads"][0]
        if job["source"]:
            reply["source_image"] = job["source"]
        return httpx.Response(200, json=reply)

    def _alchemy_pop(self, body: dict[str, Any]) -> httpx.Response:
        self.pops.setdefault("alchemy", []).append(body)
        taken, self.forms = self.forms[: body.get("amount", 1)], self.forms[body.get("amount", 1) :]
        forms = []
        for form in taken:
            item = {"id": form["id"], "form": form["form"], "source_image": form["source"]}
            if form["upload"]:
                item["r2_upload"] = f"http://bucket.test/{form['id']}.webp?sig=x"
            forms.append(item)
        return httpx.Response(200, json={"forms": forms, "skipped": {}})

    def _submit(self, kind: str, body: dict[str, Any]) -> httpx.Response:
        self.submits.setdefault(kind, []).append(body)
        if body["id"] in self.done:
            return httpx.Response(400, json={"message": "already submitted", "rc": "DuplicateGen"})
        self.done.add(body["id"])
        return httpx.Response(200, json={"reward": 0 if body.get("state") == "faulted" else 5})


Generate = Callable[[str, TextParams], Awaitable[TextResult]]


class FakeText:
    """A text backend whose behaviour the test supplies; counts concurrent calls."""

    def __init__(
        self,
        generate: Generate | None = None,
        *,
        models: tuple[str, ...] = ("fake/model",),
        load_error: str = "",
    ):
        self.name = "fake-text"
        self._models = models
        self._generate = generate
        self._load_error = load_error
        self.calls: list[tuple[str, TextParams]] = []
        self.running = 0
        self.peak = 0
        self.closed = False

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    async def load(self) -> None:
        if self._load_error:
            from horde.worker.backends import BackendUnavailable

            raise BackendUnavailable(self.name, self._load_error)

    async def generate(self, prompt: str, params: TextParams) -> TextResult:
        self.calls.append((prompt, params))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self._generate is not None:
                return await self._generate(prompt, params)
            return TextResult(text=f"{prompt} and then", seed=7)
        finally:
            self.running -= 1

    async def close(self) -> None:
        self.closed = True


async def hang(_prompt: str, _params: TextParams) -> TextResult:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def broken(_prompt: str, _params: TextParams) -> TextResult:
    raise JobFailed("the model server is down")


class FakeImage:
    name = "fake-image"
    models = ("fake-image",)

    def __init__(self, *, produce: int | None = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.sources: list[Image.Image | None] = []
        self._produce = produce
        self._seeds = itertools.count(100)

    async def load(self) -> None:
        pass

    async def generate(
        self, payload: dict[str, Any], *, source_image: Image.Image | None = None
    ) -> list[GeneratedImage]:
        self.payloads.append(payload)
        self.sources.append(source_image)
        count = payload["n_iter"] if self._produce is None else self._produce
        return [
            GeneratedImage(Image.new("RGB", (64, 64), "red"), seed=next(self._seeds)) for _ in range(count)
        ]

    async def close(self) -> None:
        pass


class FakeAlchemy:
    name = "fake-alchemy"
    forms = ("nsfw", "RealESRGAN_x4plus")

    async def load(self) -> None:
        pass

    async def run(self, form: str, image: Image.Image, payload: dict[str, Any]) -> AlchemyResult:
        if form == "nsfw":
            return AlchemyResult(form, {"nsfw": False})
        return AlchemyResult(form, image=image.resize((image.width * 4, image.height * 4)))

    async def close(self) -> None:
        pass


def png_bytes(size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "blue").save(buffer, format="PNG")
    return buffer.getvalue()

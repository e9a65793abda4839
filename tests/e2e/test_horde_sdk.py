"""horde-sdk, the reference's Python client, drives image, text and alchemy round trips on the real server.

The client side is horde-sdk's `AIHordeAPIAsyncSimpleClient` (submit, poll check/status, fetch results,
download images); the worker side is horde-sdk's own worker request classes (`*PopRequest`,
`*SubmitRequest`) through its manual client, plus a plain PUT to the `r2_upload` URLs.

It runs in a subprocess (this file run as a script) because horde-sdk reads its settings from the
environment at import time:
* `AI_HORDE_URL=<server>/api/`: the horde it talks to (read by `horde_sdk.ai_horde_api.endpoints`);
* `TESTS_ONGOING=1` (the strict run): every horde-sdk model forbids unknown fields, so a key our server
  sends that horde-sdk does not know fails the parse (`get_default_frozen_model_config_dict`);
* the offline switch: horde-sdk's model reference layer (`horde_model_reference`) downloads references
  from GitHub or models.aihorde.net when asked for them; `HORDE_MODEL_REFERENCE_OFFLINE=1` makes it read
  local files only and never download. The script also refuses every non-loopback DNS lookup, so any
  attempt to reach the network fails the run loudly instead of hanging.
Every response body horde-sdk parsed is recorded with the swagger definition horde-sdk names for it
(`get_api_model_name()`) and checked here against the reference's swagger (`check_body`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.swagger import check_body, definition, requires_swagger

if TYPE_CHECKING:  # the subprocess half must not import the server (tests.e2e.conftest does)
    from tests.e2e.conftest import HordeServer, ServerPool

# One xdist worker should run every test of the shared servers (tests/e2e/conftest.py) so they start once;
# other workers still pass, each with servers of its own (pytest 9.2 + xdist 3.8 ignore the groups).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-horde-server"), requires_swagger]

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180.0  # importing horde-sdk alone takes 10-20 s on a busy 2-core machine
FLOW_TIMEOUT = 60  # seconds horde-sdk's simple client polls one request before giving up
TEXT_MODEL = "koboldcpp/Marx-3B-V3"
TEXT_PROMPT = "Once upon a time, said horde-sdk,"
IMAGE_PROMPT = "a green field, drawn for horde-sdk"
IMAGE_MODEL = "stable_diffusion"
ALCHEMY_FORMS = ["caption", "nsfw", "RealESRGAN_x2plus"]
STYLE_EXAMPLE = "https://example.org/sdk-style.webp"
SIDE = 64  # image width and height: the smallest the API allows keeps the round trip cheap
BRIDGE = "AI Horde Worker reGen:10.1.0:https://github.com/Haidra-Org/horde-worker-reGen"


def _sdk_env(server: HordeServer, api_key: str, *, strict: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_HORDE", "HORDE_", "TESTS_ONGOING"))}
    env.update(
        AI_HORDE_URL=f"{server.base_url}/api/",
        HORDE_MODEL_REFERENCE_OFFLINE="1",
        HORDE_SDK_LOG_VERBOSITY="20",
        E2E_API_KEY=api_key,
        PYTHONPATH=str(REPO),
    )
    if strict:
        env["TESTS_ONGOING"] = "1"
    return env


# horde-sdk's names for definitions the swagger names otherwise.
SWAGGER_NAMES = {"RequestAsyncStable": "RequestAsync", "RequestAsyncKobold": "RequestAsync"}
# horde-sdk response types that name no definition of their own (its `_OVERLOADED_MODEL`).
SWAGGER_NAMES_OF_TYPES = {"ExpiryStrSharedKeyDetailsResponse": "SharedKeyDetails"}
# horde-sdk's list responses name no definition (`_ANONYMOUS_MODEL`): the swagger's arrays, by type
LIST_RESPONSES = {
    "AllStylesImageResponse": "StyleStable[]", "AllStylesTextResponse": "StyleKobold[]",
    "AllCollectionsResponse": "ResponseModelCollection[]",
}  # fmt: skip

# Each database runs one of the two modes, both at once: the whole matrix would cost twice as long
# and add nothing the pairing misses (the modes differ in the client, the databases in the server).
PAIRS = {"lenient": "sqlite", "strict": "postgresql"}
MODES = pytest.mark.parametrize(
    ("horde_server", "mode"), [(db, mode) for mode, db in PAIRS.items()], indirect=["horde_server"]
)
STRICT_XFAILS_ON_TEXT_ID = pytest.mark.parametrize(
    ("horde_server", "mode"),
    [
        pytest.param("sqlite", "lenient"),
        pytest.param("postgresql", "strict"),
    ],
    indirect=["horde_server"],
)


@pytest.fixture(scope="session")  # not module: with xdist, a module's tests may not run in a row
def sdk_runs(horde_pool: ServerPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both runs start together (each on its own server, with its own user and workers)."""
    out = tmp_path_factory.mktemp("sdk")
    runs: dict[str, Any] = {}
    for mode, database in PAIRS.items():
        try:
            server = horde_pool.get(database)
        except pytest.skip.Exception as skipped:
            runs[mode] = {"skipped": str(skipped)}
            continue
        key = server.api_key(f"sdk_{mode}")
        log = out / f"{mode}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, __file__, str(out / f"{mode}.json"), mode],
                env={**_sdk_env(server, key, strict=mode == "strict"), "AIWORKER_CACHE_HOME": str(out)},
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=out,  # horde-sdk loads a `.env` from its working directory: this one has none
            )
        runs[mode] = {"process": process, "report": out / f"{mode}.json", "log": log}
    yield runs
    for run in runs.values():
        if "process" in run and run["process"].poll() is None:
            run["process"].kill()
            run["process"].wait(10)


def _report(sdk_runs: dict[str, Any], mode: str) -> dict[str, Any]:
    """The run's report (waiting for it the first time); fails when the run itself broke."""
    run = sdk_runs[mode]
    if "skipped" in run:
        pytest.skip(run["skipped"])
    if "result" not in run:
        process: subprocess.Popen[bytes] = run["process"]
        try:
            code: int | None = process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            code = None
        output = Path(run["log"]).read_text(encoding="utf-8", errors="replace")[-10000:]
        report_path: Path = run["report"]
        result = json.loads(report_path.read_text()) if report_path.is_file() else None
        run["result"] = (code, output, result)
    code, output, result = run["result"]
    assert result is not None, f"the horde-sdk run wrote no report (exit {code}); its output:\n{output}"
    assert result["error"] is None, f"the horde-sdk run broke:\n{result['error']}\n--- output ---\n{output}"
    assert result["network_attempts"] == [], "horde-sdk tried to reach the network"
    report: dict[str, Any] = result
    return report


def _flow(report: dict[str, Any], name: str) -> dict[str, Any]:
    """One round trip's result, after checking that horde-sdk parsed every body of it."""
    worker = f"worker-{name.split('_')[0]}"
    responses = [r for r in report["responses"] if r["flow"] == name or (r["flow"] == worker and _has_job(r))]
    assert responses, f"no response was recorded for {name}"
    unparsed = [f"{r['type']}: {r['parse_error']}\n{r['body']}" for r in responses if r["parse_error"]]
    assert unparsed == [], "horde-sdk could not parse these responses:\n" + "\n".join(unparsed)
    flow: dict[str, Any] = report["flows"][name]
    assert flow["error"] is None, flow["error"]
    return flow


def _has_job(response: dict[str, Any]) -> bool:
    """Whether a worker's response is about a job (empty pops are `test_empty_pops_parse`'s)."""
    body = response["body"]
    return not response["type"].endswith("PopResponse") or bool(body.get("ids") or body.get("forms"))


# Keys the reference sends that its swagger lacks (SEMANTICS.md wins over the swagger).
BEYOND_SWAGGER = {
    # SEMANTICS 8: every pop carries the worker's `messages`, the alchemy pop too; a broadcast message
    # another test of the shared server sent reaches this run's workers
    ("InterrogationPopPayload", "messages"),
}


def _swagger_problems(responses: list[dict[str, Any]]) -> list[str]:
    problems = []
    for item in responses:
        name = "RequestError" if item["status"] >= 400 else item["definition"]
        name = LIST_RESPONSES.get(
            item["type"], SWAGGER_NAMES_OF_TYPES.get(item["type"], SWAGGER_NAMES.get(name, name))
        )
        try:
            definition(name.removesuffix("[]"))
        except KeyError:
            problems.append(f"{item['type']}: horde-sdk names {name!r}, which the swagger lacks")
            continue
        found = check_body(name, item["body"], enums=item["status"] < 400)
        found = [p for p in found if not any(
            name == where and p == f"$: unexpected key {key!r}" for where, key in BEYOND_SWAGGER
        )]  # fmt: skip
        problems += [re.sub(r"\[\d+\]", "[*]", f"{item['type']} ({name}) {p}") for p in found]
    return sorted(set(problems))


@STRICT_XFAILS_ON_TEXT_ID
def test_text(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    report = _report(sdk_runs, mode)
    text = _flow(report, "text")
    assert text["done"] is True and text["finished"] == 1
    assert text["texts"] == [f"{TEXT_PROMPT} there was a test"]
    assert text["models"] == [TEXT_MODEL]
    assert report["worker"]["submitted"]["text"] == 1


@MODES
def test_sharedkeys(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """A shared key's life through horde-sdk's requests, each answer parsed (strict: no unknown key)."""
    flow = _flow(_report(sdk_runs, mode), "sharedkeys")
    assert flow["kudos"] == [500, 500, 300]
    assert flow["name"] == "sdk key" and flow["limits"] == [262144, 30, 100]
    assert flow["username"].endswith(" (Shared Key: sdk key)")
    assert flow["deleted"] == "OK"


@MODES
def test_stats(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """The statistics as horde-sdk parses them (the figures depend on what the other flows did when)."""
    flow = _flow(_report(sdk_runs, mode), "stats")
    assert flow["image_total"] >= 0 and flow["text_total"] >= 0


@MODES
def test_documents(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """The packaged documents as horde-sdk's document requests parse them."""
    documents = _flow(_report(sdk_runs, mode), "documents")
    texts = {name: text for name, text in documents.items() if name not in ("error", "seconds")}
    assert len(texts) == 3
    assert all(isinstance(text, str) and "self-hosted AI Horde" in text for text in texts.values()), texts
    assert all(text.startswith("<h1>") for text in texts.values())


@MODES
def test_styles(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """Styles, an example and a collection through horde-sdk's requests (strict: every body parses)."""
    styles = _flow(_report(sdk_runs, mode), "styles")
    image = styles["image"]
    assert image["id"] == image["by_name"] == styles["style_id"]
    assert image["prompt"] == "{p}, by the sdk###{np}" and image["steps"] == 10
    assert image["examples"] == [STYLE_EXAMPLE]
    assert styles["style_id"] in styles["listed"]
    assert styles["text"] == {"prompt": "Told by the sdk: {p}", "temperature": 0.5}
    assert styles["collection"] == {"styles": [styles["style_id"]], "type": "image"}
    assert styles["collection_id"] in styles["collections"]


@MODES
def test_image_inline_base64(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """r2=false: the status inlines each image as base64 webp."""
    image = _flow(_report(sdk_runs, mode), "image_base64")
    assert image["done"] is True and image["finished"] == 2
    assert image["models"] == [IMAGE_MODEL, IMAGE_MODEL]
    assert image["images"] == [{"size": [SIDE, SIDE], "format": "WEBP", "is_url": False}] * 2


@MODES
def test_image_r2(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """r2=true (the default): the worker PUTs each image to its r2_upload URL; the status hands out URLs."""
    report = _report(sdk_runs, mode)
    image = _flow(report, "image_r2")
    assert image["done"] is True and image["finished"] == 2
    assert image["models"] == [IMAGE_MODEL, IMAGE_MODEL]
    assert image["images"] == [{"size": [SIDE, SIDE], "format": "WEBP", "is_url": True}] * 2
    assert report["worker"]["submitted"]["image"] == 4  # both image requests' jobs
    assert [error for error in report["worker"]["errors"] if error.startswith("image:")] == []


@MODES
def test_alchemy(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """caption, nsfw and a post-processor form; the worker fetches the source and uploads the upscale."""
    report = _report(sdk_runs, mode)
    alchemy = _flow(report, "alchemy")
    assert alchemy["state"] == "done"
    assert sorted(alchemy["forms"]) == sorted(ALCHEMY_FORMS)
    assert alchemy["caption"] == ["a small red square"]
    assert alchemy["nsfw"] == [False]
    assert alchemy["upscale_size"] == [SIDE * 2, SIDE * 2]
    assert report["worker"]["source_image_size"] == [SIDE, SIDE]
    assert report["worker"]["submitted"]["alchemy"] == 3
    assert [error for error in report["worker"]["errors"] if error.startswith("alchemy:")] == []


@MODES
def test_empty_pops_parse(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """A worker pops far more often than it gets a job: horde-sdk must parse the empty answers too."""
    report = _report(sdk_runs, mode)
    empty = [r for r in report["responses"] if r["flow"].startswith("worker-") and not _has_job(r)]
    assert {r["flow"] for r in empty} == {"worker-text", "worker-image", "worker-alchemy"}
    unparsed = sorted({f"{r['type']}: {r['body']}" for r in empty if r["parse_error"]})
    assert unparsed == []


@MODES
def test_bodies_match_swagger(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    """Every body horde-sdk received has the names and types of the swagger definition it names."""
    report = _report(sdk_runs, mode)
    assert len(report["responses"]) > 10
    assert _swagger_problems(report["responses"]) == []


@MODES
def test_worker_rewards(sdk_runs: dict[str, Any], horde_server: HordeServer, mode: str) -> None:
    rewards = _report(sdk_runs, mode)["worker"]["rewards"]
    assert rewards and all(reward > 0 for reward in rewards), rewards


# ---------------------------------------------------------------------------------------------------
# The subprocess: everything below runs with the environment above, horde-sdk imported only here.


FLOW: ContextVar[str] = ContextVar("flow", default="setup")  # which round trip a response belongs to


def _guard_network(attempts: list[str]) -> None:
    """Refuse (and record) every lookup of a host that is not this machine: the network is closed."""
    import socket

    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            attempts.append(str(host))
            raise OSError(f"e2e: the network is closed (lookup of {host!r})")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded


def _record_responses(responses: list[dict[str, Any]]) -> None:
    """Keep every raw body horde-sdk parses, with the swagger definition horde-sdk names for it."""
    from horde_sdk.generic_api.apimodels import RequestErrorResponse
    from horde_sdk.generic_api.generic_clients import BaseHordeAPIClient

    original = BaseHordeAPIClient._after_request_handling

    def recording(
        self: Any, *, raw_response_json: Any, returned_status_code: int, expected_response_type: Any
    ) -> Any:
        result = original(
            self,
            raw_response_json=raw_response_json,
            returned_status_code=returned_status_code,
            expected_response_type=expected_response_type,
        )
        parse_error = None
        if isinstance(result, RequestErrorResponse) and returned_status_code < 400:
            data: Any = result.object_data or {}
            parse_error = str(data.get("exception", result.message))
        responses.append({
            "flow": FLOW.get(),
            "type": expected_response_type.__name__,
            "definition": expected_response_type.get_api_model_name(),
            "status": returned_status_code,
            "body": raw_response_json,
            "parse_error": parse_error,
        })  # fmt: skip
        return result

    BaseHordeAPIClient._after_request_handling = recording  # type: ignore[method-assign]


def _webp(color: str, side: int = SIDE) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buffer, format="WEBP")
    return buffer.getvalue()


class _Worker:
    """Plays one worker per kind with horde-sdk's worker requests until stopped.

    A failed upload is recorded in `errors` and the job still completes the way a real worker may
    (image: the base64 submit the reference also accepts; alchemy: a faulted form).
    """

    def __init__(self, session: Any, api_key: str, mode: str) -> None:
        from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient

        self.session = session
        self.client = AIHordeAPIAsyncManualClient(session)
        self.key = api_key
        self.mode = mode
        self.submitted = {"text": 0, "image": 0, "alchemy": 0}  # jobs of this run's requests only
        self.rewards: list[float] = []
        self.errors: list[str] = []
        self.source_image_size: list[int] | None = None
        self.empty: set[str] = set()  # the flows that have had an empty pop

    async def _call(self, request: Any) -> Any:
        from horde_sdk.generic_api.apimodels import RequestErrorResponse

        response = await self.client.submit_request(request, request.get_default_success_response_type())
        if isinstance(response, RequestErrorResponse):
            raise RuntimeError(f"{type(request).__name__} failed: {response.message} ({response.rc})")
        return response

    async def _pop(self, request: Any) -> Any:
        """The popped job, or None when nothing was popped or horde-sdk could not parse the answer.

        A body horde-sdk cannot parse is recorded (see `_record_responses`) and tested on its own
        (`test_empty_pops_parse`); like a real worker, this one just pops again.
        """
        from horde_sdk.generic_api.apimodels import RequestErrorResponse

        response = await self.client.submit_request(request, request.get_default_success_response_type())
        if isinstance(response, RequestErrorResponse):
            if "doesn't match expected" in response.message:
                return None
            raise RuntimeError(f"{type(request).__name__} failed: {response.message} ({response.rc})")
        if not (getattr(response, "ids", None) or getattr(response, "forms", None)):
            self.empty.add(FLOW.get())
        return response

    async def _submit(self, request: Any, kind: str, *, ours: bool = True) -> None:
        response = await self._call(request)
        if ours:  # other tests may have left requests in the queue: serve them, count only ours
            self.rewards.append(float(response.reward))
            self.submitted[kind] += 1

    async def _put(self, kind: str, url: str, data: bytes) -> bool:
        async with self.session.put(url, data=data, headers={"Content-Type": "image/webp"}) as response:
            if response.status == 200:
                return True
            answer = f"{response.status}: {await response.text()}"
            self.errors.append(f"{kind}: PUT {url.split('?')[0]} answered {answer}")
            return False

    async def text(self) -> None:
        from horde_sdk.ai_horde_api.apimodels import TextGenerateJobPopRequest, TextGenerationJobSubmitRequest

        FLOW.set("worker-text")
        pop = TextGenerateJobPopRequest(
            apikey=self.key, name=f"sdk text worker {self.mode}", models=[TEXT_MODEL], bridge_agent=BRIDGE,
            max_length=512, max_context_length=2048, amount=2, threads=1, nsfw=True,
        )  # fmt: skip
        job = await self._pop(pop)
        for job_id in job.ids if job else []:
            generation = f"{job.payload.prompt} there was a test"
            submit = TextGenerationJobSubmitRequest(
                apikey=self.key, id=job_id, generation=generation, state="ok"
            )
            await self._submit(submit, "text", ours=job.payload.prompt == TEXT_PROMPT)

    async def image(self) -> None:
        from horde_sdk.ai_horde_api.apimodels import (
            ImageGenerateJobPopRequest,
            ImageGenerationJobSubmitRequest,
        )

        FLOW.set("worker-image")
        pop = ImageGenerateJobPopRequest(
            apikey=self.key, name=f"sdk image worker {self.mode}", models=[IMAGE_MODEL], bridge_agent=BRIDGE,
            max_pixels=262144, amount=2, threads=1, nsfw=True, extra_slow_worker=False,
        )  # fmt: skip
        job = await self._pop(pop)
        if job is None:
            return
        uploads = job.r2_uploads or []
        for i, job_id in enumerate(job.ids):
            data = _webp(("green", "blue")[i % 2])
            uploaded = bool(uploads) and await self._put("image", uploads[i], data)
            generation = "R2" if uploaded else base64.b64encode(data).decode()
            seed = int(job.payload.seed) if str(job.payload.seed or "").isdigit() else 0
            submit = ImageGenerationJobSubmitRequest(
                apikey=self.key, id=job_id, generation=generation, state="ok", seed=seed
            )
            await self._submit(submit, "image", ours=job.payload.prompt == IMAGE_PROMPT)

    async def alchemy(self) -> None:
        from horde_sdk.ai_horde_api.apimodels import AlchemyJobSubmitRequest, AlchemyPopRequest
        from PIL import Image

        FLOW.set("worker-alchemy")
        pop = AlchemyPopRequest(
            apikey=self.key, name=f"sdk alchemist {self.mode}", priority_usernames=[], forms=ALCHEMY_FORMS,
            amount=3, bridge_agent=BRIDGE, threads=1, max_tiles=16,
        )  # fmt: skip
        job = await self._pop(pop)
        for form in (job.forms or []) if job else []:
            if form.source_image:
                async with self.session.get(form.source_image) as response:
                    response.raise_for_status()
                    self.source_image_size = list(Image.open(io.BytesIO(await response.read())).size)
            name, state = str(form.form), "ok"
            result: dict[str, object]
            if name == "caption":
                result = {"caption": "a small red square"}
            elif name == "nsfw":
                result = {"nsfw": False}
            elif form.r2_upload and await self._put("alchemy", form.r2_upload, _webp("red", SIDE * 2)):
                result = {name: "R2"}
            else:
                self.errors.append(f"alchemy: form {name} came without r2_upload or its upload failed")
                result, state = {}, "faulted"
            submit = AlchemyJobSubmitRequest(apikey=self.key, id=form.id_, result=result, state=state)
            await self._submit(submit, "alchemy")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.text()
            await self.image()
            await self.alchemy()
            await asyncio.sleep(0.5)

    async def until_each_pop_was_empty(self, rounds: int = 40) -> None:
        """Pop on until every kind has had an empty answer: other tests' requests may fill the queue."""
        for _ in range(rounds):
            if self.empty >= {"worker-text", "worker-image", "worker-alchemy"}:
                return
            await self.text()
            await self.image()
            await self.alchemy()
            await asyncio.sleep(0.2)


async def _text_round_trip(client: Any, api_key: str) -> dict[str, Any]:
    from horde_sdk.ai_horde_api.apimodels import ModelGenerationInputKobold, TextGenerateAsyncRequest

    request = TextGenerateAsyncRequest(
        apikey=api_key, prompt=TEXT_PROMPT, models=[TEXT_MODEL],
        params=ModelGenerationInputKobold(max_length=64, max_context_length=1024, n=1),
    )  # fmt: skip
    # n=1: horde-sdk's simple client waits for exactly one generation (`number_of_responses=1`), so with
    # n=2 it would poll until its timeout whenever both texts arrive between two polls.
    status, _ = await client.text_generate_request(request, timeout=FLOW_TIMEOUT)
    return {
        "done": status.done,
        "finished": status.finished,
        "texts": [g.text for g in status.generations],
        "models": [g.model for g in status.generations],
    }


async def _image_round_trip(client: Any, api_key: str, *, r2: bool) -> dict[str, Any]:
    from horde_sdk.ai_horde_api.apimodels import ImageGenerateAsyncRequest, ImageGenerationInputPayload

    request = ImageGenerateAsyncRequest(
        apikey=api_key, prompt=IMAGE_PROMPT, models=[IMAGE_MODEL], r2=r2,
        params=ImageGenerationInputPayload(width=SIDE, height=SIDE, steps=10, n=2),
    )  # fmt: skip
    status, _ = await client.image_generate_request(request, timeout=FLOW_TIMEOUT)
    images = []
    for generation in status.generations:
        image, _ = await client.download_image_from_generation(generation)
        is_url = str(generation.img).startswith(("http://", "https://"))
        images.append({"size": list(image.size), "format": image.format, "is_url": is_url})
    return {
        "done": status.done,
        "finished": status.finished,
        "images": images,
        "models": [g.model for g in status.generations],
    }


async def _alchemy_round_trip(client: Any, api_key: str) -> dict[str, Any]:
    from horde_sdk.ai_horde_api.apimodels import AlchemyAsyncRequest, AlchemyAsyncRequestFormItem

    request = AlchemyAsyncRequest(
        apikey=api_key, source_image=base64.b64encode(_webp("red")).decode(),
        forms=[AlchemyAsyncRequestFormItem(name=form) for form in ALCHEMY_FORMS],
    )  # fmt: skip
    status, _ = await client.alchemy_request(request, timeout=FLOW_TIMEOUT)
    upscale_sizes = [
        list((await client.download_image_from_url(u.url)).size) for u in status.all_upscale_results
    ]
    return {
        "state": str(status.state),
        "forms": [str(form.form) for form in status.forms],
        "caption": [c.caption for c in status.all_caption_results],
        "nsfw": [n.nsfw for n in status.all_nsfw_results],
        "upscale_size": upscale_sizes[0] if upscale_sizes else None,
    }


async def _documents(session: Any) -> dict[str, Any]:
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient
    from horde_sdk.ai_horde_api.apimodels import (
        AIHordeGetPrivacyPolicyRequest,
        AIHordeGetSponsorsRequest,
        AIHordeGetTermsRequest,
    )

    client = AIHordeAPIAsyncManualClient(session)
    found = {}
    # html only: horde-sdk's document requests never send their `format` (it is no query field of theirs)
    for kind in (AIHordeGetTermsRequest, AIHordeGetPrivacyPolicyRequest, AIHordeGetSponsorsRequest):
        request = kind()
        document = await client.submit_request(request, request.get_default_success_response_type())
        found[kind.__name__] = document.html
    return found


async def _submit(client: Any, request: Any) -> Any:
    from horde_sdk.generic_api.apimodels import RequestErrorResponse

    response = await client.submit_request(request, request.get_default_success_response_type())
    if isinstance(response, RequestErrorResponse):
        raise RuntimeError(f"{type(request).__name__} failed: {response.message} ({response.rc})")
    return response


async def _sharedkeys(session: Any, api_key: str) -> dict[str, Any]:
    """Create, read, change, use (find_user) and delete a shared key with horde-sdk's requests."""
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient
    from horde_sdk.ai_horde_api.apimodels import (
        FindUserRequest,
        SharedKeyCreateRequest,
        SharedKeyDeleteRequest,
        SharedKeyDetailsRequest,
        SharedKeyModifyRequest,
    )

    client = AIHordeAPIAsyncManualClient(session)
    limits = {"max_image_pixels": 262144, "max_image_steps": 30, "max_text_tokens": 100}
    created = await _submit(
        client, SharedKeyCreateRequest(apikey=api_key, kudos=500, name="sdk key", **limits)
    )
    key = str(created.sharedkey_id)
    details = await _submit(client, SharedKeyDetailsRequest(id=key))
    changed = await _submit(
        client, SharedKeyModifyRequest(apikey=api_key, id=key, kudos=300, name="sdk key", **limits)
    )
    owner = await _submit(client, FindUserRequest(apikey=key))
    deleted = await _submit(client, SharedKeyDeleteRequest(apikey=api_key, id=key))
    return {
        "kudos": [created.kudos, details.kudos, changed.kudos], "name": details.name,
        "limits": [details.max_image_pixels, details.max_image_steps, details.max_text_tokens],
        "username": owner.username, "deleted": deleted.message,
    }  # fmt: skip


async def _stats(session: Any) -> dict[str, Any]:
    """Every statistics request of horde-sdk's, parsed."""
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient
    from horde_sdk.ai_horde_api.apimodels import (
        ImageStatsModelsRequest,
        ImageStatsModelsTotalRequest,
        TextStatsModelsRequest,
        TextStatsModelsTotalRequest,
    )

    client = AIHordeAPIAsyncManualClient(session)
    image_totals = await _submit(client, ImageStatsModelsTotalRequest())
    image_models = await _submit(client, ImageStatsModelsRequest())
    text_totals = await _submit(client, TextStatsModelsTotalRequest())
    text_models = await _submit(client, TextStatsModelsRequest())
    return {
        "image_total": image_totals.total.images, "text_total": text_totals.total["requests"],
        "image_models": sorted(image_models.total), "text_models": sorted(text_models.total),
    }  # fmt: skip


async def _styles(session: Any, api_key: str, mode: str) -> dict[str, Any]:
    """Styles, an example and a collection made, read and deleted with horde-sdk's own requests."""
    from horde_sdk.ai_horde_api import apimodels as sdk
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient
    from horde_sdk.generic_api.apimodels import RequestErrorResponse

    client = AIHordeAPIAsyncManualClient(session)

    async def call(request: Any) -> Any:
        response = await client.submit_request(request, request.get_default_success_response_type())
        if isinstance(response, RequestErrorResponse):
            raise RuntimeError(f"{type(request).__name__} failed: {response.message} ({response.rc})")
        return response

    name, text_name = f"sdk style {mode}", f"sdk text style {mode}"
    made = await call(sdk.CreateStyleImageRequest(
        apikey=api_key, name=name, info="made by horde-sdk", prompt="{p}, by the sdk###{np}",
        params=sdk.ModelStyleInputParamsStable(steps=10), models=[IMAGE_MODEL], tags=["sdk"],
    ))  # fmt: skip
    style_id = made.id_
    await call(sdk.StyleImageExampleAddRequest(apikey=api_key, style_id=style_id, url=STYLE_EXAMPLE))
    by_id = await call(sdk.SingleStyleImageByIDRequest(style_id=style_id))
    by_name = await call(sdk.SingleStyleImageByNameRequest(style_name=f"style::{name}"))
    listed = await call(sdk.AllStylesImageRequest(tag="sdk"))
    text = await call(sdk.CreateStyleTextRequest(
        apikey=api_key, name=text_name, prompt="Told by the sdk: {p}",
        params=sdk.ModelStyleInputParamsKobold(temperature=0.5), models=[TEXT_MODEL],
    ))  # fmt: skip
    text_style = await call(sdk.SingleStyleTextByIDRequest(style_id=text.id_))
    collection = await call(
        sdk.CreateCollectionRequest(apikey=api_key, name=f"sdk collection {mode}", styles=[name])
    )
    got = await call(sdk.CollectionByIDRequest(collection_id=collection.id_))
    collections = await call(sdk.AllCollectionsRequest())
    await call(sdk.DeleteCollectionRequest(apikey=api_key, collection_id=collection.id_))
    await call(sdk.DeleteStyleTextRequest(apikey=api_key, style_id=text.id_))
    await call(sdk.DeleteStyleImageRequest(apikey=api_key, style_id=style_id))
    return {
        "image": {"id": by_id.id_, "prompt": by_id.prompt, "steps": by_id.params.steps,
                  "examples": [e.url for e in by_id.examples or []], "by_name": by_name.id_},
        "listed": [s.id_ for s in listed.root], "style_id": style_id,
        "text": {"prompt": text_style.prompt, "temperature": text_style.params.temperature},
        "collection": {"styles": [s.id_ for s in got.styles], "type": got.type},
        "collections": [c.id for c in collections.root], "collection_id": collection.id_,
    }  # fmt: skip


async def _flow_result(name: str, flow: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    FLOW.set(name)
    started = time.monotonic()
    try:
        result = {**await flow, "error": None}
    except Exception:
        result = {"error": traceback.format_exc()}
    return {**result, "seconds": round(time.monotonic() - started, 1)}


async def _main(report: dict[str, Any], mode: str) -> None:
    from horde_sdk import create_aiohttp_client_session
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncSimpleClient

    api_key = os.environ["E2E_API_KEY"]
    async with create_aiohttp_client_session() as session:
        worker = _Worker(session, api_key, mode)
        stop = asyncio.Event()
        worker_task = asyncio.create_task(worker.run(stop))
        client = AIHordeAPIAsyncSimpleClient(aiohttp_session=session, apikey=api_key)
        flows = {
            "text": _text_round_trip(client, api_key),
            "image_r2": _image_round_trip(client, api_key, r2=True),
            "image_base64": _image_round_trip(client, api_key, r2=False),
            "alchemy": _alchemy_round_trip(client, api_key),
            "documents": _documents(session),
            "sharedkeys": _sharedkeys(session, api_key),
            "stats": _stats(session),
            "styles": _styles(session, api_key, mode),
        }
        gathered = asyncio.gather(*(_flow_result(name, flow) for name, flow in flows.items()))
        try:
            both: list[asyncio.Future[Any]] = [gathered, worker_task]
            done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
            if worker_task in done:  # the worker only ends by failing
                gathered.cancel()
                worker_task.result()
            report["flows"] = dict(zip(flows, await gathered, strict=True))
        finally:
            stop.set()
            await asyncio.wait_for(worker_task, 30)
        await worker.until_each_pop_was_empty()
    report["worker"] = {
        "submitted": worker.submitted,
        "rewards": worker.rewards,
        "errors": worker.errors,
        "source_image_size": worker.source_image_size,
    }


def main() -> int:
    """Run the round trips; write a JSON report to argv[1] (also when the run breaks)."""
    report_path, mode = Path(sys.argv[1]), sys.argv[2]
    report: dict[str, Any] = {"network_attempts": [], "responses": [], "flows": {}, "error": None}
    _guard_network(report["network_attempts"])
    started = time.monotonic()
    try:
        _record_responses(report["responses"])
        asyncio.run(asyncio.wait_for(_main(report, mode), RUN_TIMEOUT - 30))
    except BaseException:  # report whatever broke, then fail the run
        report["error"] = traceback.format_exc()
    report["seconds"] = round(time.monotonic() - started, 1)
    report_path.write_text(json.dumps(report, default=str, indent=1))
    return 1 if report["error"] else 0


if __name__ == "__main__":
    sys.exit(main())

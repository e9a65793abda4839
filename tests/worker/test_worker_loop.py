"""The worker loop against the scripted fake horde and fake backends (no server, no model).

Covers: the pop body, concurrency up to `threads`, ttl abandonment, faults, back-off, graceful and
forced stop, fatal refusals, messages, safe submit retries, and the image and alchemy job paths.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import httpx
import pytest

from horde.client import HordeClient
from horde.contract import InterrogationPopInput, PopInputKobold, PopInputStable
from horde.worker import AlchemyJobs, ImageJobs, TextJobs, Worker, WorkerError, WorkerOptions
from horde.worker.backends import TextParams, TextResult
from tests.worker.fakes import FakeAlchemy, FakeHorde, FakeImage, FakeText, broken, hang, png_bytes

AGENT = "horde-worker:0.1.0:https://github.com/horde/horde"
QUICK = WorkerOptions(long_poll=0, ttl_margin=0.2, burst=True, idle_backoff=0.05)


def _text(backend: FakeText, *, threads: int = 1) -> TextJobs:
    template = PopInputKobold(name="test worker", bridge_agent=AGENT, threads=threads, max_length=256)
    return TextJobs(template, [backend])


async def _run(
    client: HordeClient, *handlers: object, options: WorkerOptions = QUICK, timeout: float = 10
) -> Worker:
    worker = Worker(client, list(handlers), options)  # type: ignore[arg-type]
    await asyncio.wait_for(worker.run(), timeout)
    return worker


async def test_text_job_is_generated_and_submitted(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    [job_id] = fake_horde.queue_text("Once upon", temperature=0.5, stop_sequence=["\n"])
    backend = FakeText()
    worker = await _run(horde_client, _text(backend))
    prompt, params = backend.calls[0]
    assert prompt == "Once upon" and params.temperature == 0.5 and params.stop_sequence == ["\n"]
    submit = fake_horde.submitted("text")[job_id]
    assert submit == {"id": job_id, "generation": "Once upon and then", "state": "ok", "seed": 7}
    pop = fake_horde.pops["text"][0]
    assert pop["name"] == "test worker" and pop["models"] == ["fake/model"] and pop["bridge_agent"] == AGENT
    assert pop["max_length"] == 256 and pop["amount"] == 1
    assert worker.stats.submitted == 1 and backend.closed


async def test_jobs_run_concurrently_up_to_threads(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    ids = fake_horde.queue_text(n=5)

    async def slow(prompt: str, _params: TextParams) -> TextResult:
        await asyncio.sleep(0.2)
        return TextResult(text="done", seed=1)

    backend = FakeText(slow)
    await _run(horde_client, _text(backend, threads=3))
    assert backend.peak == 3 and len(backend.calls) == 5
    assert set(fake_horde.submitted("text")) == set(ids)
    assert fake_horde.pops["text"][0]["amount"] == 3 and fake_horde.pops["text"][0]["threads"] == 3


async def test_job_past_its_ttl_is_abandoned_and_reported_faulted(
    fake_horde: FakeHorde, horde_client: HordeClient
) -> None:
    [job_id] = fake_horde.queue_text(ttl=1)
    started = time.monotonic()
    worker = await _run(horde_client, _text(FakeText(hang)))
    elapsed = time.monotonic() - started
    assert fake_horde.submitted("text")[job_id]["state"] == "faulted"
    assert 0.7 < elapsed < 3 and worker.stats.faulted == 1


async def test_backend_failure_is_reported_faulted_and_pauses_popping(
    fake_horde: FakeHorde, horde_client: HordeClient, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = fake_horde.queue_text()[0], fake_horde.queue_text()[0]
    caplog.set_level(logging.WARNING, "horde.worker")
    worker = await _run(horde_client, _text(FakeText(broken)), timeout=15)
    assert {first, second} == {k for k, v in fake_horde.submitted("text").items() if v["state"] == "faulted"}
    assert worker.stats.faulted == 2
    assert "the model server is down" in caplog.text and "next pop in" in caplog.text


async def test_pop_errors_back_off_and_recover(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    [job_id] = fake_horde.queue_text()
    pop = "/api/v2/generate/text/pop"
    fake_horde.fail(pop, httpx.Response(500, text="boom"), httpx.Response(200, content=b"{garbage"))
    fake_horde.fail(pop, httpx.ConnectError("refused"), httpx.Response(502, text="bad gateway"))
    worker = Worker(horde_client, [_text(FakeText())], QUICK)
    worker._lanes[0].errors.base = 0.01  # keep the test quick; the policy itself is tested elsewhere
    await asyncio.wait_for(worker.run(), 10)
    assert fake_horde.submitted("text")[job_id]["state"] == "ok"


async def test_fatal_refusal_stops_the_kind(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    fake_horde.fail(
        "/api/v2/generate/text/pop", httpx.Response(401, json={"message": "bad key", "rc": "InvalidAPIKey"})
    )
    worker = await _run(horde_client, _text(FakeText()), options=WorkerOptions(long_poll=0))
    assert worker.failed and len(fake_horde.pops.get("text", [])) == 0


async def test_maintenance_is_waited_out(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    [job_id] = fake_horde.queue_text()
    refusal = httpx.Response(403, json={"message": "in maintenance", "rc": "WorkerMaintenance"})
    fake_horde.fail("/api/v2/generate/text/pop", refusal)
    worker = Worker(horde_client, [_text(FakeText())], QUICK)
    worker._lanes[0].errors.base = 0.01
    await asyncio.wait_for(worker.run(), 10)
    assert not worker.failed and job_id in fake_horde.submitted("text")


async def test_lost_submit_answer_is_retried_and_not_paid_twice(
    fake_horde: FakeHorde, horde_client: HordeClient
) -> None:
    [job_id] = fake_horde.queue_text()

    def landed_then_lost(request: httpx.Request) -> httpx.Response:
        fake_horde.handle(request)  # the horde stores it...
        raise httpx.ReadTimeout("...but the answer is lost")

    original = fake_horde.handle
    calls = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/text/submit") and calls["n"] == 0:
            calls["n"] += 1
            return landed_then_lost(request)
        return original(request)

    client = HordeClient(
        "http://horde.test", "key", transport=httpx.MockTransport(handle), retry=horde_client.retry
    )
    worker = await _run(client, _text(FakeText()))
    assert [s["id"] for s in fake_horde.submits["text"]] == [job_id, job_id]
    assert len(fake_horde.done) == 1 and worker.stats.submitted == 1 and worker.stats.lost == 0
    await client.aclose()


async def test_messages_are_shown_once(
    fake_horde: FakeHorde, horde_client: HordeClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_horde.messages = [
        {"id": "m1", "message": "please update", "origin": "mods", "expiry": "2030-01-01T00:00:00"}
    ]
    fake_horde.queue_text()
    caplog.set_level(logging.WARNING, "horde.worker")
    await _run(horde_client, _text(FakeText()))
    assert caplog.text.count("please update") == 1 and "from mods" in caplog.text


async def test_stop_lets_held_jobs_finish(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    [job_id] = fake_horde.queue_text()
    started = asyncio.Event()

    async def slow(prompt: str, _params: TextParams) -> TextResult:
        started.set()
        await asyncio.sleep(0.3)
        return TextResult(text="finished", seed=1)

    worker = Worker(horde_client, [_text(FakeText(slow))], WorkerOptions(long_poll=0))
    await worker.start()
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(worker.wait(), 5)
    assert fake_horde.submitted("text")[job_id]["generation"] == "finished"
    pops = len(fake_horde.pops["text"])
    await asyncio.sleep(0.1)
    assert len(fake_horde.pops["text"]) == pops  # no popping after stop


@pytest.mark.parametrize("how", ["force", "shutdown_timeout"])
async def test_stop_abandons_held_jobs_as_faulted(
    fake_horde: FakeHorde, horde_client: HordeClient, how: str
) -> None:
    [job_id] = fake_horde.queue_text()
    started = asyncio.Event()

    async def hang_started(prompt: str, params: TextParams) -> TextResult:
        started.set()
        return await hang(prompt, params)

    options = WorkerOptions(long_poll=0, shutdown_timeout=0.2 if how == "shutdown_timeout" else None)
    worker = Worker(horde_client, [_text(FakeText(hang_started))], options)
    await worker.start()
    await asyncio.wait_for(started.wait(), 5)
    worker.stop(force=how == "force")
    await asyncio.wait_for(worker.wait(), 5)
    assert fake_horde.submitted("text")[job_id]["state"] == "faulted"


async def test_nothing_to_serve_is_an_error(horde_client: HordeClient) -> None:
    worker = Worker(horde_client, [_text(FakeText(load_error="no GGUF"))], QUICK)
    with pytest.raises(WorkerError, match="no GGUF"):
        await worker.start()


def _image(backend: FakeImage) -> ImageJobs:
    template = PopInputStable(name="image worker", bridge_agent=AGENT, amount=4, max_pixels=1024 * 1024)
    return ImageJobs(template, [backend])


async def test_image_job_is_uploaded_then_submitted_as_r2(
    fake_horde: FakeHorde, horde_client: HordeClient
) -> None:
    ids = fake_horde.queue_image(n=2)
    backend = FakeImage()
    await _run(horde_client, _image(backend))
    assert backend.payloads[0]["n_iter"] == 2 and backend.payloads[0]["prompt"] == "a cat"
    submitted = fake_horde.submitted("image")
    for index, job_id in enumerate(ids):
        assert submitted[job_id]["generation"] == "R2" and submitted[job_id]["seed"] == 100 + index
        assert fake_horde.uploads[f"http://bucket.test/{job_id}.webp?sig=x"][:4] == b"RIFF"
    assert (
        fake_horde.pops["image"][0]["amount"] == 4
        and fake_horde.pops["image"][0]["max_pixels"] == 1024 * 1024
    )


async def test_image_without_upload_url_goes_as_base64_with_its_source(
    fake_horde: FakeHorde, horde_client: HordeClient
) -> None:
    fake_horde.objects["src.png"] = png_bytes()
    [job_id] = fake_horde.queue_image(upload=False, source="http://horde.test/objects/src.png")
    backend = FakeImage()
    await _run(horde_client, _image(backend))
    assert backend.sources[0] is not None and backend.sources[0].size == (16, 16)
    generation = fake_horde.submitted("image")[job_id]["generation"]
    assert base64.b64decode(generation)[:4] == b"RIFF" and not fake_horde.uploads


async def test_image_backend_short_of_images_faults_the_rest(
    fake_horde: FakeHorde, horde_client: HordeClient
) -> None:
    first, second = fake_horde.queue_image(n=2)
    await _run(horde_client, _image(FakeImage(produce=1)))
    submitted = fake_horde.submitted("image")
    assert submitted[first]["state"] == "ok" and submitted[second]["state"] == "faulted"


async def test_alchemy_forms(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    fake_horde.objects["src.png"] = png_bytes()
    source = "http://horde.test/objects/src.png"
    nsfw = fake_horde.queue_form("nsfw", source)
    upscale = fake_horde.queue_form("RealESRGAN_x4plus", source, upload=True)
    inline = fake_horde.queue_form("RealESRGAN_x4plus", base64.b64encode(png_bytes()).decode())
    template = InterrogationPopInput(name="alchemist", bridge_agent=AGENT, threads=3, forms=[])
    await _run(horde_client, AlchemyJobs(template, [FakeAlchemy()], ttl=30))
    submitted = fake_horde.submitted("alchemy")
    assert submitted[nsfw]["result"] == {"nsfw": False}
    assert submitted[upscale]["result"] == {"RealESRGAN_x4plus": "R2"}
    assert f"http://bucket.test/{upscale}.webp?sig=x" in fake_horde.uploads
    assert base64.b64decode(submitted[inline]["result"]["RealESRGAN_x4plus"])[:4] == b"RIFF"
    assert sorted(fake_horde.pops["alchemy"][0]["forms"]) == ["RealESRGAN_x4plus", "nsfw"]


async def test_alchemy_unreadable_source_is_faulted(fake_horde: FakeHorde, horde_client: HordeClient) -> None:
    form = fake_horde.queue_form("nsfw", base64.b64encode(b"not an image").decode())
    template = InterrogationPopInput(name="alchemist", bridge_agent=AGENT)
    await _run(horde_client, AlchemyJobs(template, [FakeAlchemy()], ttl=30))
    assert fake_horde.submitted("alchemy")[form]["state"] == "faulted"


async def test_long_poll_pops_back_to_back_and_a_held_pop_is_dropped_on_stop() -> None:
    pops: list[httpx.Request] = []
    held = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        pops.append(request)
        if len(pops) >= 3:  # the third pop is held by the horde until a job arrives (never)
            held.set()
            await asyncio.sleep(3600)
        await asyncio.sleep(1.0)  # a held pop that times out empty
        empty = {"payload": {}, "id": None, "ids": [], "skipped": {}}
        return httpx.Response(200, json=empty, headers={"Horde-Wait-Supported": "1"})

    async with HordeClient("http://horde.test", "k", transport=httpx.MockTransport(handler)) as client:
        worker = Worker(client, [_text(FakeText())], WorkerOptions(long_poll=20, idle_backoff=30))
        await worker.start()
        await asyncio.wait_for(held.wait(), 10)  # no idle back-off between held pops
        worker.stop()
        await asyncio.wait_for(worker.wait(), 2)
    assert all(r.headers["horde-wait"] == "20" for r in pops) and len(pops) == 3

"""`HordeClient`: the AI Horde API v2 over httpx, typed by `horde.contract`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from horde.client import _wire as wire
from horde.client._exceptions import (
    DuplicateGen,
    HordeError,
    HordeUnreachable,
    error_from_answer,
)
from horde.client._retry import Idempotency, RetryPolicy
from horde.contract import (
    ActiveModel,
    GenerationInputKobold,
    GenerationInputStable,
    GenerationPayloadKobold,
    GenerationPayloadStable,
    GenerationSubmitted,
    HeartbeatResponse,
    InterrogationPopInput,
    InterrogationPopPayload,
    InterrogationStatus,
    InterrogationSubmitInput,
    KudosTransferInput,
    KudosTransferred,
    ModelInterrogationInputStable,
    ModelState,
    ModelType,
    PopInputKobold,
    PopInputStable,
    RequestAsync,
    RequestInterrogationResponse,
    RequestStatusCheck,
    RequestStatusKobold,
    RequestStatusStable,
    SubmitInputKobold,
    SubmitInputStable,
    UserDetails,
    WorkerDetails,
    WorkerType,
)

__all__ = ["DEFAULT_CLIENT_AGENT", "HordeClient", "JobSubmitted"]

try:
    _VERSION = version("horde")
except PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "0"
PROJECT_URL = "https://github.com/horde/horde"
DEFAULT_CLIENT_AGENT = f"horde-client:{_VERSION}:{PROJECT_URL}"
WAIT_HEADER = "Horde-Wait"
WAIT_SUPPORTED_HEADER = "Horde-Wait-Supported"


class JobSubmitted(GenerationSubmitted):
    """A submit's outcome; ``already_submitted`` when a retry found the first try had landed."""

    already_submitted: bool = False


class HordeClient:
    """An async client of one horde.

    ``api_key`` is sent on calls that need one; ``transport`` replaces the network (tests use
    ``httpx.MockTransport``); ``retry`` decides retries (see ``horde.client._retry``); ``sleep`` is what
    waits between them. ``long_poll_supported`` tells whether the horde honoured the last ``wait``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        client_agent: str = DEFAULT_CLIENT_AGENT,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = wire.api_root(base_url)
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self.long_poll_supported: bool | None = None
        self._timeout = timeout
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"Client-Agent": client_agent},
            follow_redirects=False,
        )

    async def __aenter__(self) -> HordeClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # Requests -------------------------------------------------------------------------------------
    async def text_async(self, body: GenerationInputKobold) -> RequestAsync:
        """Queue a text request (POST /generate/text/async)."""
        return await self._model("POST", "/generate/text/async", RequestAsync, body=body, auth=True)

    async def text_status(self, request_id: str, *, wait: float | None = None) -> RequestStatusKobold:
        """A text request's status and generations."""
        return await self._model(
            "GET",
            f"/generate/text/status/{request_id}",
            RequestStatusKobold,
            idem=Idempotency.SAFE,
            wait=wait,
        )

    async def text_cancel(self, request_id: str) -> RequestStatusKobold:
        """Cancel a text request; answers its status before the cancel."""
        path = f"/generate/text/status/{request_id}"
        return await self._model("DELETE", path, RequestStatusKobold, idem=Idempotency.SAFE)

    async def text_wait(
        self, request_id: str, *, timeout: float | None = None, poll_interval: float = 2.0, wait: float = 20.0
    ) -> RequestStatusKobold:
        """Poll (long-polling when the horde supports it) until the request is done."""
        return await self._until_done(
            lambda w: self.text_status(request_id, wait=w), timeout, poll_interval, wait
        )

    async def image_async(self, body: GenerationInputStable) -> RequestAsync:
        """Queue an image request (POST /generate/async)."""
        return await self._model("POST", "/generate/async", RequestAsync, body=body, auth=True)

    async def image_check(self, request_id: str, *, wait: float | None = None) -> RequestStatusCheck:
        """An image request's progress without the images (cheap: poll this one)."""
        path = f"/generate/check/{request_id}"
        return await self._model("GET", path, RequestStatusCheck, idem=Idempotency.SAFE, wait=wait)

    async def image_status(self, request_id: str, *, wait: float | None = None) -> RequestStatusStable:
        """An image request's status and images."""
        path = f"/generate/status/{request_id}"
        return await self._model("GET", path, RequestStatusStable, idem=Idempotency.SAFE, wait=wait)

    async def image_cancel(self, request_id: str) -> RequestStatusStable:
        """Cancel an image request; answers its status before the cancel."""
        path = f"/generate/status/{request_id}"
        return await self._model("DELETE", path, RequestStatusStable, idem=Idempotency.SAFE)

    async def image_wait(
        self, request_id: str, *, timeout: float | None = None, poll_interval: float = 2.0, wait: float = 20.0
    ) -> RequestStatusStable:
        """Poll the cheap check until done, then fetch the full status once."""
        await self._until_done(lambda w: self.image_check(request_id, wait=w), timeout, poll_interval, wait)
        return await self.image_status(request_id)

    async def alchemy_async(self, body: ModelInterrogationInputStable) -> RequestInterrogationResponse:
        """Queue an interrogation (POST /interrogate/async)."""
        return await self._model(
            "POST", "/interrogate/async", RequestInterrogationResponse, body=body, auth=True
        )

    async def alchemy_status(self, request_id: str, *, wait: float | None = None) -> InterrogationStatus:
        """An interrogation's forms and results."""
        path = f"/interrogate/status/{request_id}"
        return await self._model("GET", path, InterrogationStatus, idem=Idempotency.SAFE, wait=wait)

    async def alchemy_cancel(self, request_id: str) -> InterrogationStatus:
        """Cancel an interrogation; answers its status before the cancel."""
        path = f"/interrogate/status/{request_id}"
        return await self._model("DELETE", path, InterrogationStatus, idem=Idempotency.SAFE)

    async def alchemy_wait(
        self, request_id: str, *, timeout: float | None = None, poll_interval: float = 2.0, wait: float = 20.0
    ) -> InterrogationStatus:
        """Poll until every form is done, faulted or cancelled."""
        return await self._until_done(
            lambda w: self.alchemy_status(request_id, wait=w), timeout, poll_interval, wait
        )

    # Jobs -----------------------------------------------------------------------------------------
    async def text_pop(self, body: PopInputKobold, *, wait: float | None = None) -> GenerationPayloadKobold:
        """Ask for text jobs; ``wait`` asks the horde to hold the call until one arrives."""
        return await self._model(
            "POST", "/generate/text/pop", GenerationPayloadKobold, body=body, auth=True, wait=wait
        )

    async def text_submit(self, body: SubmitInputKobold) -> JobSubmitted:
        """Submit a text job's result (or ``state: faulted``); a retry that finds it landed succeeds."""
        return await self._submit("/generate/text/submit", body)

    async def image_pop(self, body: PopInputStable, *, wait: float | None = None) -> GenerationPayloadStable:
        """Ask for image jobs."""
        return await self._model(
            "POST", "/generate/pop", GenerationPayloadStable, body=body, auth=True, wait=wait
        )

    async def image_submit(self, body: SubmitInputStable) -> JobSubmitted:
        """Submit one image of a job."""
        return await self._submit("/generate/submit", body)

    async def alchemy_pop(
        self, body: InterrogationPopInput, *, wait: float | None = None
    ) -> InterrogationPopPayload:
        """Ask for alchemy forms."""
        path = "/interrogate/pop"
        return await self._model("POST", path, InterrogationPopPayload, body=body, auth=True, wait=wait)

    async def alchemy_submit(self, body: InterrogationSubmitInput) -> JobSubmitted:
        """Submit one form's result."""
        return await self._submit("/interrogate/submit", body)

    async def upload(self, url: str, data: bytes, *, content_type: str = "image/webp") -> None:
        """PUT ``data`` to a presigned URL the horde handed out (``r2_upload``); no API key is sent."""
        headers = {"Content-Type": content_type}
        await self._call(
            "PUT", url, lambda _: None, idem=Idempotency.SAFE, raw=True, content=data, headers=headers
        )

    async def download(self, url: str) -> bytes:
        """GET a source image URL the horde handed out; no API key is sent."""
        response = await self._call("GET", url, lambda r: r, idem=Idempotency.SAFE, raw=True)
        content: bytes = response.content
        return content

    # Kudos ----------------------------------------------------------------------------------------
    async def transfer_kudos(
        self, username: str, amount: int, *, idempotency_key: str | None = None
    ) -> float:
        """Send kudos to ``username`` ("alias#id"); answers the amount transferred.

        Every try carries the same ``Idempotency-Key`` (a fresh UUID unless given), so the horde applies
        the transfer once however often a lost answer makes the client retry.
        """
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        answer = await self._call(
            "POST", self.base_url + "/kudos/transfer", KudosTransferred.model_validate, idem=Idempotency.SAFE,
            body=KudosTransferInput(username=username, amount=amount), auth=True, headers=headers,
        )  # fmt: skip
        return answer.transferred

    # Information ----------------------------------------------------------------------------------
    async def heartbeat(self) -> HeartbeatResponse:
        """Whether the horde is up."""
        return await self._model("GET", "/status/heartbeat", HeartbeatResponse, idem=Idempotency.SAFE)

    async def models(
        self,
        type: ModelType = "image",
        *,
        min_count: int | None = None,
        max_count: int | None = None,
        model_state: ModelState = "all",
    ) -> list[ActiveModel]:
        """The models workers serve now, with queue and speed figures."""
        params = wire.query(type=type, min_count=min_count, max_count=max_count, model_state=model_state)
        return await self._list("/status/models", list[ActiveModel], params=params)

    async def workers(
        self, type: WorkerType | None = None, *, name: str | None = None
    ) -> list[WorkerDetails]:
        """Workers seen in the last five minutes (``name``: an exact, case-insensitive match)."""
        return await self._list("/workers", list[WorkerDetails], params=wire.query(type=type, name=name))

    async def worker(self, worker_id: str) -> WorkerDetails:
        """One worker, online or not."""
        return await self._model(
            "GET", f"/workers/{worker_id}", WorkerDetails, idem=Idempotency.SAFE, auth=True
        )

    async def worker_by_name(self, name: str) -> WorkerDetails:
        """One worker by its exact name, any kind."""
        path = f"/workers/name/{quote(name, safe='')}"
        return await self._model("GET", path, WorkerDetails, idem=Idempotency.SAFE, auth=True)

    async def find_user(self) -> UserDetails:
        """The user owning this client's API key."""
        return await self._model("GET", "/find_user", UserDetails, idem=Idempotency.SAFE, auth=True)

    async def users(self, *, page: int = 1, sort: Literal["kudos", "age"] = "kudos") -> list[UserDetails]:
        """One page (25) of users."""
        return await self._list("/users", list[UserDetails], params={"page": page, "sort": sort})

    async def user(self, user_id: int | str) -> UserDetails:
        """One user by numeric id (more detail when the key is theirs or a moderator's)."""
        return await self._model("GET", f"/users/{user_id}", UserDetails, idem=Idempotency.SAFE, auth=True)

    # Plumbing -------------------------------------------------------------------------------------
    async def _submit(self, path: str, body: BaseModel) -> JobSubmitted:
        try:
            return await self._model("POST", path, JobSubmitted, body=body, auth=True, idem=Idempotency.SAFE)
        except DuplicateGen as exc:
            if exc.attempts > 1:  # an earlier try landed but its answer was lost
                return JobSubmitted(reward=0, already_submitted=True)
            raise

    async def _model[M: BaseModel](
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        body: BaseModel | None = None,
        idem: Idempotency = Idempotency.UNSENT,
        auth: bool = False,
        wait: float | None = None,
    ) -> M:
        return await self._call(
            method, self.base_url + path, model.model_validate, body=body, idem=idem, auth=auth, wait=wait
        )

    async def _list[T](self, path: str, shape: type[T], *, params: dict[str, Any]) -> T:
        adapter = TypeAdapter(shape)
        url = self.base_url + path
        return await self._call(
            "GET", url, adapter.validate_python, idem=Idempotency.SAFE, auth=True, params=params
        )

    async def _call[T](
        self,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        idem: Idempotency,
        body: BaseModel | None = None,
        auth: bool = False,
        wait: float | None = None,
        raw: bool = False,
        **extra: Any,
    ) -> T:
        """Send, check, parse; retry per the policy. Parsing is inside the loop: a garbled answer retries."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(method, url, body=body, auth=auth, wait=wait, **dict(extra))
                return wire.parse(parse, response, raw=raw)
            except HordeError as error:
                error.attempts = attempt
                if not self.retry.should_retry(error, attempt=attempt, idempotency=idem):
                    raise
                await self._sleep(self.retry.delay(attempt, error))

    async def _send(
        self, method: str, url: str, *, body: BaseModel | None, auth: bool, wait: float | None, **extra: Any
    ) -> httpx.Response:
        headers: dict[str, str] = dict(extra.pop("headers", None) or {})
        if auth and self.api_key:
            headers["apikey"] = self.api_key
        timeout: float | httpx.Timeout = self._timeout
        if wait:
            headers[WAIT_HEADER] = f"{wait:g}"
            timeout = self._timeout + wait
        json = body.model_dump(mode="json") if body is not None else None
        try:
            response = await self._http.request(
                method, url, json=json, headers=headers, timeout=timeout, **extra
            )
        except httpx.TransportError as exc:
            raise HordeUnreachable(f"{method} {url}: {exc or type(exc).__name__}") from exc
        if wait:
            self.long_poll_supported = response.headers.get(WAIT_SUPPORTED_HEADER) == "1"
        if response.is_success:
            return response
        raise error_from_answer(
            response.status_code, wire.try_json(response), retry_after=wire.retry_after(response)
        )

    async def _until_done[M: BaseModel](
        self, status: Callable[[float | None], Awaitable[M]], timeout: float | None, poll: float, wait: float
    ) -> M:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("the request was not done in time")
            asked = time.monotonic()
            current = await status(min(wait, left) if left is not None else wait)
            if wire.is_done(current):
                return current
            # Poll at `poll` intervals unless the horde held the call (a quick answer is a change: go on).
            pause = poll if not self.long_poll_supported else max(0.0, 0.2 - (time.monotonic() - asked))
            if pause:
                await self._sleep(pause if left is None else max(0.0, min(pause, left)))

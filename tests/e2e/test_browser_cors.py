"""A page on another origin runs a text request through the API in headless Chromium, with real CORS.

The page (tests/e2e/pages/text_request.html) is served by a second tiny HTTP server on its own port,
so every call it makes to the horde is cross-origin: POST /generate/text/async with an `apikey` header
(a preflighted request), then GET /generate/text/status/{id} until done. A worker played here over
plain httpx pops and submits, so the page shows the text. The page also reads an error answer (a wrong
key, which must carry the CORS headers too) and, as a control that the browser does enforce CORS,
fetches a server that sends no CORS headers, which must fail.

Chromium is Debian's (`scripts/install-chromium.sh`), driven by Playwright; Playwright's own browsers
are never downloaded. Without /usr/bin/chromium the test is skipped, or fails under CI=true.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import needs
from tests.contract.swagger import check_body, requires_swagger
from tests.e2e.conftest import HordeServer

# One xdist worker should run every test of the shared servers (tests/e2e/conftest.py) so they start once;
# other workers still pass, each with servers of its own (pytest 9.2 + xdist 3.8 ignore the groups).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-horde-server"), requires_swagger]

PAGES = Path(__file__).with_name("pages")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TEXT_MODEL = "koboldcpp/Marx-3B-V3"
PROMPT = "A browser asks:"  # the page's prompt
PAGE_TIMEOUT = 60.0


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def static_server() -> Iterator[str]:
    """tests/e2e/pages on http://127.0.0.1:<another ephemeral port>: another origin than the horde's."""
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        needs.missing(f"{CHROMIUM} is missing: run scripts/install-chromium.sh")
    return CHROMIUM


def _work_until_served(server: HordeServer, key: str, worked: dict[str, Any]) -> None:
    """Pop as a text worker until the page's request is served; submit every job popped."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    with httpx.Client(base_url=server.api, headers={"apikey": key}, timeout=30) as http:
        while time.monotonic() < deadline and not worked.get("served"):
            pop = http.post(
                "/generate/text/pop",
                json={"name": "browser test worker", "models": [TEXT_MODEL], "max_length": 512},
            )
            assert pop.status_code == 200, pop.text
            job = pop.json()
            worked["pops"].append(job)
            if not job.get("id"):
                time.sleep(0.2)
                continue
            prompt = job["payload"]["prompt"]
            submit = http.post(
                "/generate/text/submit",
                json={"id": job["id"], "generation": f"{prompt} the browser got an answer"},
            )
            assert submit.status_code == 200, submit.text
            worked["submits"].append(submit.json())
            worked["served"] = prompt == PROMPT


@dataclass
class BrowserRun:
    log: dict[str, Any]  # what the page saw (window.hordeLog)
    shown: str  # the text on the page
    worked: dict[str, Any]  # what the worker saw: pops, submits
    console: list[str]


@pytest.fixture(scope="session")  # not module: with xdist, a module's tests may not run in a row
def browser_run(horde_server: HordeServer, static_server: str, chromium_path: Path) -> BrowserRun:
    from playwright.sync_api import sync_playwright

    key = horde_server.api_key("browser")
    closed = f"{static_server}/text_request.html"  # the static server sends no CORS headers
    # The page is loaded from `localhost`, so the closed server at 127.0.0.1 is another origin too.
    page_url = (
        f"http://localhost:{static_server.rsplit(':', 1)[1]}/text_request.html"
        f"?horde={horde_server.base_url}&key={key}&closed={closed}"
    )
    worked: dict[str, Any] = {"pops": [], "submits": []}
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(page_url)
            page.wait_for_function("window.hordeRequestId || window.hordeDone", timeout=PAGE_TIMEOUT * 1000)
            if page.evaluate("window.hordeRequestId"):
                _work_until_served(horde_server, key, worked)
            page.wait_for_function("window.hordeDone", timeout=PAGE_TIMEOUT * 1000)
            return BrowserRun(page.evaluate("window.hordeLog"), page.inner_text("#result"), worked, console)
        finally:
            browser.close()


SQLITE_ONLY = pytest.mark.parametrize("horde_server", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_text_request_from_another_origin(browser_run: BrowserRun, horde_server: HordeServer) -> None:
    log = browser_run.log
    assert log["errors"] == [], f"{log['errors']}\nconsole: {browser_run.console}"
    assert browser_run.worked.get("served"), "the worker never popped the page's request"
    assert log["text"] == f"{PROMPT} the browser got an answer"
    assert browser_run.shown == log["text"]


@SQLITE_ONLY
def test_error_answers_are_readable_cross_origin(browser_run: BrowserRun, horde_server: HordeServer) -> None:
    """A browser client can read the rc of a refusal: error answers carry the CORS headers too."""
    wrong_key = browser_run.log["wrongKey"]
    assert wrong_key["status"] == 401 and wrong_key["body"]["rc"] == "InvalidAPIKey"


@SQLITE_ONLY
def test_the_browser_enforces_cors(browser_run: BrowserRun, horde_server: HordeServer) -> None:
    """The control: a server that allows no other origin is refused, so the passes above mean something."""
    assert browser_run.log["closedServer"].startswith("refused")


@SQLITE_ONLY
def test_bodies_match_swagger(browser_run: BrowserRun, horde_server: HordeServer) -> None:
    definitions = {"async": "RequestAsync", "status": "RequestStatusKobold", "wrong key": "RequestError"}
    checked = [
        (f"page {item['label']}", definitions[item["label"]], item["body"])
        for item in browser_run.log["responses"]
    ]
    checked += [("worker pop", "GenerationPayloadKobold", body) for body in browser_run.worked["pops"]]
    checked += [("worker submit", "GenerationSubmitted", body) for body in browser_run.worked["submits"]]
    assert {label for label, _, _ in checked} >= {"page async", "page status", "worker pop", "worker submit"}
    problems = {
        re.sub(r"\[\d+\]", "[*]", f"{label}: {problem}")
        for label, name, body in checked
        for problem in check_body(name, body, enums=name != "RequestError")
    }
    assert sorted(problems) == []

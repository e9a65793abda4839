"""`/documents/{terms,privacy,sponsors}` and the packaged news: the operator's files, or the defaults
that say this is a self-hosted horde."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from horde.server.kit.clock import FakeClock
from tests.contract.swagger import check_response, requires_swagger

V2 = "/api/v2"
DOCUMENTS = ("terms", "privacy", "sponsors")

pytestmark = requires_swagger


@pytest.fixture
def operator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("documents")
    (path / "terms.md").write_text("# Our terms\n\nBe kind.\n")
    return path


@pytest.fixture
def settings_overrides(operator_dir: Path) -> dict[str, Any]:
    return {"documents_dir": str(operator_dir)}


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_defaults_in_both_formats(client: httpx.AsyncClient, name: str) -> None:
    for fmt in ("html", "markdown"):
        response = await client.get(f"{V2}/documents/{name}", params={"format": fmt})
        assert response.status_code == 200, response.text
        body = response.json()
        assert check_response("GET", f"{V2}/documents/{name}", 200, body) == []
        assert list(body) == [fmt]
        if name != "terms":  # the operator replaced only the terms' markdown
            assert "self-hosted AI Horde" in body[fmt]
    default = await client.get(f"{V2}/documents/{name}")
    assert list(default.json()) == ["html"]
    assert default.json()["html"].startswith("<h1>")


async def test_an_operator_file_replaces_the_default(
    client: httpx.AsyncClient, operator_dir: Path, clock: FakeClock
) -> None:
    markdown = await client.get(f"{V2}/documents/terms", params={"format": "markdown"})
    assert markdown.json() == {"markdown": "# Our terms\n\nBe kind.\n"}
    html = await client.get(f"{V2}/documents/terms", params={"format": "html"})
    assert "self-hosted AI Horde" in html.json()["html"]  # no terms.html of the operator's: the default
    (operator_dir / "terms.html").write_text("<h1>Our terms</h1>")
    clock.advance(61)  # answers are kept a minute; a replaced file is served after that
    html = await client.get(f"{V2}/documents/terms", params={"format": "html"})
    assert html.json() == {"html": "<h1>Our terms</h1>"}


@pytest.mark.parametrize("fmt", ["pdf", "", "HTML"])
async def test_other_formats_are_refused(client: httpx.AsyncClient, fmt: str) -> None:
    for name in DOCUMENTS:
        response = await client.get(f"{V2}/documents/{name}", params={"format": fmt})
        assert response.status_code == 400
        assert response.json()["rc"] == "BadRequest"


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_the_packaged_news_has_a_first_item(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V2}/status/news")
    news = response.json()
    assert check_response("GET", f"{V2}/status/news", 200, news) == []
    assert len(news) == 1 and "self-hosted" in news[0]["title"]
    assert news[0]["importance"] == "Information" and news[0]["date_published"]

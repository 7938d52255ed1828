"""The playground page over HTTP (in-process): served at /playground with `/` redirecting to it,
open without a key (the page holds nothing) while the API it calls is not, told whether auth
is on, self-contained, and gone with `--no-playground`."""

from __future__ import annotations

import re

import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import ServerSettings
from tests.conftest import fake_runner, serve_in_process


async def page_and_home(spec: ModelSpec, settings: ServerSettings) -> tuple[str, str, int]:
    runner, _ = fake_runner(spec)
    async with serve_in_process(Engine([runner]), settings) as client:
        page = await client.get("/playground")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        home = await client.get("/", follow_redirects=False)
        assert home.status_code == 307
        models = await client.get("/v1/models")
        return page.text, home.headers["location"], models.status_code


async def test_page_without_auth(bundled_spec: ModelSpec) -> None:
    page, location, models = await page_and_home(bundled_spec, ServerSettings())
    assert location == "playground"  # relative: right under a proxy's root path too
    assert 'data-auth="false"' in page and models == 200
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN: self-contained
    assert len(page.encode()) < 20_000


async def test_page_is_open_but_the_api_needs_the_key(bundled_spec: ModelSpec) -> None:
    page, _, models = await page_and_home(bundled_spec, ServerSettings(api_keys=("sesame",)))
    assert 'data-auth="true"' in page
    assert "sesame" not in page
    assert models == 401


async def test_only_get_of_the_page_is_open(bundled_spec: ModelSpec) -> None:
    runner, _ = fake_runner(bundled_spec)
    settings = ServerSettings(api_keys=("sesame",))
    async with serve_in_process(Engine([runner]), settings) as client:
        embed = await client.post("/", json={"inputs": "TEI's embed route on /"})
        assert embed.status_code == 401
        posted = await client.post("/playground", json={})
        assert posted.status_code == 401
        keyed = await client.post(
            "/", json={"inputs": "hello"}, headers={"authorization": "Bearer sesame"}
        )
        assert keyed.status_code == 200, keyed.text


@pytest.mark.parametrize("path", ["/playground", "/"])
async def test_no_playground(bundled_spec: ModelSpec, path: str) -> None:
    runner, _ = fake_runner(bundled_spec)
    async with serve_in_process(Engine([runner]), ServerSettings(playground=False)) as client:
        answer = await client.get(path, follow_redirects=False)
        assert answer.status_code in (404, 405)  # `POST /` is TEI's embed route
        assert "html" not in answer.headers["content-type"]

"""The result cache over HTTP (in-process app, fake backend): repeated inputs skip the model,
answer the same bytes in every post-processing, and are counted in /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from tests.conftest import fake_runner, serve_in_process
from tests.integration.helpers import metric, post

TEXTS = ["first text", "a second, longer text", "first text"]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
async def cached(bundled_spec: ModelSpec) -> AsyncIterator[tuple[httpx.AsyncClient, FakeBackend]]:
    runner, backend = fake_runner(bundled_spec, cache_entries=2)
    async with serve_in_process(Engine([runner])) as client:
        yield client, backend


async def answer(client: httpx.AsyncClient, **body: object) -> list[str]:
    data = (await post(client, {"input": TEXTS, "encoding_format": "base64", **body})).json()
    return [item["embedding"] for item in data["data"]]


@pytest.mark.parametrize(
    "fields",
    [{}, {"normalize": False}, {"output_dtype": "float16"}, {"output_dtype": "ubinary"}],
)
async def test_hits_answer_what_misses_did(
    cached: tuple[httpx.AsyncClient, FakeBackend], fields: dict[str, object]
) -> None:
    client, backend = cached
    first = await answer(client, **fields)
    batches = backend.batches
    assert await answer(client, **fields) == first
    assert backend.batches == batches
    assert first[0] == first[2]


async def test_counters_and_evictions(cached: tuple[httpx.AsyncClient, FakeBackend]) -> None:
    client, backend = cached
    before = len(backend.seen)  # warm-up and speed measurement
    await answer(client)  # 2 computed (the repeat is a hit), cache full
    await answer(client)  # 3 hits
    await post(client, {"input": ["a third text"]})  # computed, evicts the least recent
    page = (await client.get("/metrics")).text
    assert metric(page, "embedserve_result_cache_hits_total", model=MODEL) == 4
    assert metric(page, "embedserve_result_cache_misses_total", model=MODEL) == 3
    assert metric(page, "embedserve_result_cache_evictions_total", model=MODEL) == 1
    assert metric(page, "embedserve_result_cache_entries", model=MODEL) == 2
    assert len(backend.seen) - before == 3


async def test_models_list_shows_the_cache_and_mode(
    cached: tuple[httpx.AsyncClient, FakeBackend],
) -> None:
    client, _ = cached
    (card, *_) = (await client.get("/v1/models")).json()["data"]
    assert card["cache_entries"] == 2 and card["deterministic"] is False

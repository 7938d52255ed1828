"""`--deterministic` on the real model, for each CPU backend: the same 100 texts (200 with
EMBEDSERVE_LONG_TESTS=1) sent alone, in shuffled batches of mixed lengths, and by 16 (32)
concurrent clients come back byte-identical (compared as base64). Without it, the torch backend
shows why the mode exists."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from embedserve.bench.workloads import generate_texts
from tests.conftest import ServerProcess, start_server
from tests.e2e.shared import LONG_TESTS, MODEL_ID, TIMEOUT_S

pytestmark = pytest.mark.slow
SCALE = 2 if LONG_TESTS else 1
TEXTS = generate_texts("mixed", 75 * SCALE, seed=9) + generate_texts("short", 25 * SCALE, seed=9)
CLIENTS = 16 * SCALE


@pytest.fixture
def serve(tmp_path: Path, onnx_cache_dir: Path) -> Iterator[object]:
    started: list[ServerProcess] = []

    def launch(*args: str) -> ServerProcess:
        args = ("--cache-dir", str(onnx_cache_dir), "--cache-entries", "0", *args)
        server = start_server(list(args), tmp_path / "log")
        started.append(server)
        return server

    yield launch
    for server in started:
        server.stop()


async def embed(http: httpx.AsyncClient, texts: Sequence[str]) -> list[str]:
    body = {"model": MODEL_ID, "input": list(texts), "encoding_format": "base64"}
    answer = await http.post("/v1/embeddings", json=body)
    assert answer.status_code == 200, answer.text
    return [item["embedding"] for item in answer.json()["data"]]


def shuffled_batches(seed: int) -> list[list[int]]:
    """Every text once, in random order, in batches of 1 to 40."""
    rng = random.Random(seed)
    order = list(range(len(TEXTS)))
    rng.shuffle(order)
    batches = []
    while order:
        size = rng.randint(1, 40)
        batches.append(order[:size])
        order = order[size:]
    return batches


async def three_ways(
    base_url: str, *, concurrent: bool = True
) -> tuple[list[str], dict[int, set[str]]]:
    """Each text alone (the reference), then every other answer seen for it: in shuffled
    batches, then (if `concurrent`) from `CLIENTS` clients sending two shuffled batches each."""
    seen: dict[int, set[str]] = {i: set() for i in range(len(TEXTS))}
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S) as http:
        alone = [(await embed(http, [text]))[0] for text in TEXTS]
        for batch in shuffled_batches(seed=1):
            answer = await embed(http, [TEXTS[i] for i in batch])
            for index, vector in zip(batch, answer, strict=True):
                seen[index].add(vector)

        async def client(number: int) -> None:
            for batch in shuffled_batches(seed=100 + number)[:2]:
                answer = await embed(http, [TEXTS[i] for i in batch])
                for index, vector in zip(batch, answer, strict=True):
                    seen[index].add(vector)

        if concurrent:
            await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return alone, seen


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_vectors_are_byte_identical_however_batched(serve: object, backend: str) -> None:
    server = serve("--backend", backend, "--deterministic")  # type: ignore[operator]
    alone, seen = asyncio.run(three_ways(server.base_url))
    differing = [i for i, vectors in seen.items() if vectors - {alone[i]}]
    assert sum(len(vectors) > 0 for vectors in seen.values()) == len(TEXTS)
    assert not differing, f"{len(differing)} of {len(TEXTS)} texts got other bytes in a batch"


def test_without_it_batching_changes_torch_vectors(serve: object) -> None:
    """The control: the same checks fail on the torch backend in the default mode (padding
    changes the last bits), so the test above can tell."""
    server = serve("--backend", "torch", "--no-deterministic")  # type: ignore[operator]
    alone, seen = asyncio.run(three_ways(server.base_url, concurrent=False))
    assert any(vectors - {alone[i]} for i, vectors in seen.items())


def test_cache_hits_equal_deterministic_misses(serve: object) -> None:
    """With --deterministic, a hit answers exactly what a miss computes in any batch: here a
    server without the cache computes, one with it answers from the cache (second round)."""
    plain = serve("--deterministic")  # type: ignore[operator]
    cached = serve("--deterministic", "--cache-entries", "1000")  # type: ignore[operator]

    async def rounds() -> tuple[list[str], list[list[str]]]:
        async with (
            httpx.AsyncClient(base_url=plain.base_url, timeout=TIMEOUT_S) as miss,
            httpx.AsyncClient(base_url=cached.base_url, timeout=TIMEOUT_S) as hit,
        ):
            reference = await embed(miss, TEXTS[:60])
            answers = [(await embed(hit, TEXTS[:60][::-1]))[::-1] for _ in range(2)]
            return reference, answers

    reference, answers = asyncio.run(rounds())
    assert answers == [reference, reference]
    page = httpx.get(cached.base_url + "/metrics").text
    assert f'embedserve_result_cache_hits_total{{model="{MODEL_ID}"}} 60.0' in page

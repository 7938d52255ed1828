"""`embedserve serve --ray ADDRESS --replicas 2` on a real two-node Ray cluster: the contract
tests of the plain server (test_http_client, test_clients) pass through Ray's HTTP proxy,
requests are spread over both replicas, 64 in flight get no refusal, and when one replica's
process is killed no request a client retries is lost, and Ray starts a new replica."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from embedserve.ray_replicas import REPLICA_HEADER
from embedserve.testing_ray import UNAUTHENTICATED, RayCluster, processes_titled
from tests.conftest import ServerProcess, start_server
from tests.e2e import test_clients, test_http_client
from tests.e2e.shared import (
    MODEL_ID,
    TIMEOUT_S,
    Reference,
    assert_bounded_load_never_refused,
    assert_matches_reference,
)

pytestmark = pytest.mark.slow
REPLICA_TITLE = b"ServeReplica:embedserve:EmbedReplica"

# The plain server's contract tests, collected again here: their `real_server` is the one below.
for _module in (test_http_client, test_clients):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_"):
            globals()[_name] = _test


@pytest.fixture(scope="module")
def real_server(
    ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory, onnx_cache_dir: Path
) -> Iterator[ServerProcess]:
    """`embedserve serve --ray` with two replicas; ready once both are running."""
    log = tmp_path_factory.mktemp("ray-serve") / "serve.log"
    args = ["--ray", ray_cluster.address, "--replicas", "2", "--cache-dir", str(onnx_cache_dir)]
    server = start_server(args, log, env=UNAUTHENTICATED)
    try:
        deadline = time.monotonic() + 180
        while "behind Ray's proxy" not in server.log():
            assert server.process.poll() is None, server.log()[-3000:]
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.5)
        yield server
    finally:
        server.stop(timeout_s=60)


def replica_pids() -> list[int]:
    """The processes of the live replicas."""
    return processes_titled(REPLICA_TITLE)


def answering_replicas(base_url: str, requests: int) -> Counter[str]:
    """Which replica answered each of `requests` concurrent embedding requests."""

    def one(index: int) -> str:
        body = {"model": MODEL_ID, "input": f"which replica answers request {index}?"}
        response = httpx.post(base_url + "/v1/embeddings", json=body, timeout=TIMEOUT_S)
        assert response.status_code == 200, response.text
        return response.headers[REPLICA_HEADER]

    with ThreadPoolExecutor(8) as pool:
        return Counter(pool.map(one, range(requests)))


def test_requests_are_spread_over_both_replicas(real_server: ServerProcess) -> None:
    counts = answering_replicas(real_server.base_url, 64)
    assert len(counts) == 2, counts
    assert min(counts.values()) >= 8, counts
    assert "x-request-id" in httpx.get(real_server.base_url + "/health").headers


def test_a_bounded_indexer_is_never_refused_through_the_proxy(real_server: ServerProcess) -> None:
    """64 requests in flight of 16 mixed texts each, no retries, at the defaults: Ray's proxy
    and the replicas' own admission answer every one 200."""
    assert_bounded_load_never_refused(
        real_server.base_url, in_flight=64, inputs=16, seed=5, label="ray proxy, 64 in flight"
    )


def test_killed_replica_loses_no_retried_request(
    real_server: ServerProcess, reference: Reference
) -> None:
    before = replica_pids()
    assert len(before) == 2, before
    texts = [f"request {i} survives a dead replica: " + "word " * (i % 25) for i in range(240)]
    failures: list[int] = []  # what the clients saw and retried past

    def note(response: httpx.Response) -> None:
        if response.status_code >= 500:
            failures.append(response.status_code)

    transport = httpx.Client(event_hooks={"response": [note]}, timeout=TIMEOUT_S)
    done = threading.Semaphore(0)
    with openai.OpenAI(
        base_url=real_server.base_url + "/v1",
        api_key="unused",
        max_retries=8,
        http_client=transport,
    ) as client:

        def embed(text: str) -> list[float]:
            result = client.embeddings.create(model=MODEL_ID, input=[text], encoding_format="float")
            done.release()
            return result.data[0].embedding

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(embed, text) for text in texts]
            for _ in range(40):
                assert done.acquire(timeout=TIMEOUT_S)
            os.kill(before[0], signal.SIGKILL)
            vectors = [future.result(timeout=300) for future in futures]
    assert_matches_reference(np.array(vectors, dtype=np.float32), reference.vectors(texts))

    deadline = time.monotonic() + 180
    while len(after := replica_pids()) < 2 or before[0] in after:
        assert time.monotonic() < deadline, f"no new replica: {after}; 5xx seen: {failures}"
        time.sleep(1)
    assert before[1] in after
    while len(replicas := answering_replicas(real_server.base_url, 32)) < 2:
        assert time.monotonic() < deadline, f"the new replica never answered: {replicas}"
        time.sleep(1)

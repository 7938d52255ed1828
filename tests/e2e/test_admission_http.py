"""Admission over real sockets: bounded closed-loop clients are never refused at defaults, and
a 4x open-loop overload gets only 200s and 429s (with Retry-After), with the queue bounded."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from embedserve.bench.loadgen import LoadSettings, run_load
from embedserve.bench.workloads import generate_texts
from tests.conftest import ServerProcess, start_server
from tests.e2e.shared import assert_bounded_load_never_refused


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """Default admission flags; a fake device of ~400k tokens/s so that the queue fills."""
    server = start_server(
        ["--backend", "fake", "--fake-faults", "delay=0.01", "--drain-delay", "0"],
        tmp_path_factory.mktemp("admission") / "server.log",
    )
    yield server  # type: ignore[misc]
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("workload", "requests"), [("short", 256), ("mixed", 256), ("long", 128)])
def test_128_clients_of_64_inputs_get_no_429_at_defaults(
    fake_server: ServerProcess, workload: str, requests: int
) -> None:
    report = run_load(
        LoadSettings(
            url=fake_server.base_url,
            texts=generate_texts(workload, 2000, seed=1),
            concurrency=128,
            requests=requests,
            inputs_per_request=64,
            encoding="base64",
            warmup=0,
            timeout_s=300,
            progress=False,
        ),
        f"{workload} c=128 x64",
    )
    assert report.errors == {}, report.errors
    assert report.requests == requests


@pytest.mark.slow
def test_ovms_benchmark_shape_gets_no_429_on_the_real_model(real_server: ServerProcess) -> None:
    """OVMS' demo client: up to 100 requests in flight of 16 mixed texts, no retries."""
    assert_bounded_load_never_refused(
        real_server.base_url, in_flight=100, inputs=16, seed=2, label="ovms shape"
    )


def _open_loop(server: ServerProcess, rate: float, seconds: float) -> list[tuple[int, float]]:
    """One request every 1/rate s for `seconds`, each in its own thread (arrivals do not wait
    for answers); returns (status, latency) per request, and checks every 429 has Retry-After."""
    answers: list[tuple[int, float]] = []
    retry_after_missing: list[int] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        started = time.monotonic()
        response = httpx.post(
            server.base_url + "/v1/embeddings",
            # Four different texts: repeats within a request are computed once.
            json={"input": [f"open loop text {index} part {part} " * 8 for part in range(4)]},
            timeout=60,
        )
        with lock:
            answers.append((response.status_code, time.monotonic() - started))
            if response.status_code == 429 and "retry-after" not in response.headers:
                retry_after_missing.append(index)

    threads = []
    for index in range(int(rate * seconds)):
        thread = threading.Thread(target=send, args=(index,))
        thread.start()
        threads.append(thread)
        time.sleep(1 / rate)
    for thread in threads:
        thread.join(timeout=120)
    assert not retry_after_missing
    return answers


@pytest.mark.slow
def test_open_loop_overload_gets_only_200_and_429(tmp_path: Path) -> None:
    # ~4 requests/s of capacity (two 4-input requests per 0.5 s batch); 16/s offered. The
    # request timeout makes admission refuse what could not finish in time.
    server = start_server(
        [
            "--backend", "fake", "--fake-faults", "delay=0.5", "--max-batch-tokens", "512",
            "--request-timeout", "2", "--drain-delay", "0",
        ],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        statuses = [status for status, _ in _open_loop(server, rate=16, seconds=5)]
        metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
    finally:
        server.stop()
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert set(counts) <= {200, 429}, counts
    assert counts.get(200, 0) >= 10 and counts.get(429, 0) >= 10, counts
    rejected = re.search(r"embedserve_rejected_requests_total\{[^}]*\} (\S+)", metrics)
    assert rejected is not None and float(rejected.group(1)) == counts[429]


@pytest.mark.slow
def test_latency_bound_keeps_admitted_requests_fast(tmp_path: Path) -> None:
    server = start_server(
        [
            "--backend", "fake", "--fake-faults", "delay=0.5", "--max-batch-tokens", "512",
            "--max-queue-seconds", "2", "--drain-delay", "0",
        ],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        answers = _open_loop(server, rate=16, seconds=5)
    finally:
        server.stop()
    statuses = {status for status, _ in answers}
    latencies = sorted(latency for status, latency in answers if status == 200)
    assert statuses == {200, 429}, statuses
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    # The 2 s queue bound + its own 0.5 s batch + HTTP on 2 shared cores.
    assert p99 < 3.0, latencies[-10:]

"""Faults turn a model unready, loudly, instead of failing requests forever: a backend that
fails batch after batch (until a probe batch succeeds) and a device thread that dies."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.errors import BackendFailure, NotReady
from embedserve.executor import Executor
from embedserve.models import ModelSpec
from embedserve.postprocess import l2_normalize
from embedserve.scheduler import Scheduler
from tests.conftest import start_server, until

EMBED = "/v1/embeddings"
HELLO = 7592  # "hello" in the bundled tokenizer
GOODBYE = 9119  # "goodbye"


def _metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name))
    return float(line.rsplit(" ", 1)[1])


async def test_failed_batches_in_a_row_make_the_model_unready_until_a_probe_works(
    bundled_spec: ModelSpec,
) -> None:
    backend = FakeBackend(bundled_spec, fail_token_id=HELLO)
    scheduler = Scheduler(
        Executor(backend, bundled_spec),
        max_batch_tokens=4096,
        max_queue_tokens=10_000,
        max_failed_batches=2,
        probe_interval_s=1.0,
    )
    scheduler.start()
    try:
        for _ in range(2):
            with pytest.raises(BackendFailure, match="fake backend failure"):
                await scheduler.embed([[101, HELLO, 102]], l2_normalize)
        assert not scheduler.ready and "last 2 batches failed" in str(scheduler.unready_reason)
        with pytest.raises(NotReady, match="not ready"):
            await scheduler.embed([[101, 5, 102]], l2_normalize)
        await until(lambda: scheduler.ready)  # a probe batch (without the failing token) works
        assert scheduler.alive
        assert (await scheduler.embed([[101, 5, 102]], l2_normalize)).shape == (1, 384)
        assert scheduler.stats.unready_events == 1
    finally:
        scheduler.stop()


async def test_one_success_resets_the_failure_count(bundled_spec: ModelSpec) -> None:
    backend = FakeBackend(bundled_spec, fail_token_id=HELLO)
    scheduler = Scheduler(
        Executor(backend, bundled_spec),
        max_batch_tokens=4096,
        max_queue_tokens=10_000,
        max_failed_batches=2,
    )
    scheduler.start()
    try:
        for _ in range(3):
            with pytest.raises(BackendFailure, match="fake backend failure"):
                await scheduler.embed([[101, HELLO, 102]], l2_normalize)
            await scheduler.embed([[101, 5, 102]], l2_normalize)
        assert scheduler.ready
    finally:
        scheduler.stop()


def test_failing_backend_over_http(tmp_path: Path) -> None:
    server = start_server(
        [
            "--backend", "fake", "--fake-faults", f"fail_token={HELLO}",
            "--max-failed-batches", "3", "--drain-delay", "0",
        ],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(3):
                failed = client.post(EMBED, json={"input": "hello"})
                assert failed.status_code == 500
                assert failed.json()["error"]["code"] == "internal_error"
            refused = client.post(EMBED, json={"input": "a healthy text"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "not_ready"
            assert "last 3 batches failed" in refused.json()["error"]["message"]
            health = client.get("/health")
            assert health.status_code == 503 and "batches failed" in health.text
            assert client.get("/v2/health/live").status_code == 200  # it can heal itself
            metrics = client.get("/metrics").text
            assert _metric(metrics, "embedserve_model_ready{") == 0
            assert _metric(metrics, "embedserve_model_unready_events_total{") == 1
            assert _metric(metrics, "embedserve_failed_batches_total{") == 3
            deadline = time.monotonic() + 10
            while client.get("/health").status_code != 200:
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.2)
            assert client.post(EMBED, json={"input": "a healthy text"}).status_code == 200
    finally:
        server.stop()
    assert "is not ready: its last 3 batches failed" in server.log()
    assert "ready again" in server.log()


def test_dead_device_thread_over_http(tmp_path: Path) -> None:
    server = start_server(
        [
            "--backend", "fake", "--fake-faults", f"kill_token={GOODBYE},delay=0.2",
            "--drain-delay", "0",
        ],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            started = time.monotonic()
            killed = client.post(EMBED, json={"input": "goodbye"})
            assert time.monotonic() - started < 5  # answered, not hung
            assert killed.status_code == 503
            assert "device thread died" in killed.json()["error"]["message"]
            after = client.post(EMBED, json={"input": "anyone there?"})
            assert after.status_code == 503 and after.json()["error"]["code"] == "not_ready"
            assert client.get("/health").status_code == 503
            live = client.get("/v2/health/live")
            assert live.status_code == 503 and "restart" in live.json()["error"]["message"]
            metrics = client.get("/metrics").text
            assert _metric(metrics, "embedserve_model_ready{") == 0
    finally:
        server.stop()
    assert "device thread of" in server.log() and "died" in server.log()

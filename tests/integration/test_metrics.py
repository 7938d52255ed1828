"""/metrics: the per-model histograms and counters operators expect, and the OVMS alias."""

from __future__ import annotations

import re

import httpx

from tests.conftest import MODEL_ID

SERIES = (
    "embedserve_queue_wait_seconds_bucket",
    "embedserve_inference_seconds_bucket",
    "embedserve_batch_size_bucket",
    "embedserve_tokenization_seconds_bucket",
    "embedserve_request_timeouts_total",
    "embedserve_client_disconnects_total",
    "embedserve_rejected_requests_total",
    "embedserve_model_unready_events_total",
    "embedserve_model_ready",
    "embedserve_queued_tokens",
)


async def test_every_series_has_a_model_label(fake_client: httpx.AsyncClient) -> None:
    for _ in range(3):
        response = await fake_client.post("/v1/embeddings", json={"input": ["a", "b c"]})
        assert response.status_code == 200
    text = (await fake_client.get("/metrics")).text
    for name in SERIES:
        assert re.search(rf'^{name}\{{[^}}]*model="{re.escape(MODEL_ID)}"', text, re.M), name
    count = re.search(rf'^embedserve_batch_size_count\{{model="{re.escape(MODEL_ID)}"\}} (\S+)',
                      text, re.M)  # fmt: skip
    assert count is not None and float(count.group(1)) >= 3
    tokenized = re.search(
        rf'^embedserve_tokenization_seconds_count\{{model="{re.escape(MODEL_ID)}"\}} (\S+)',
        text,
        re.M,
    )
    assert tokenized is not None and float(tokenized.group(1)) == 3
    ready = re.search(
        rf'^embedserve_model_ready\{{model="{re.escape(MODEL_ID)}"\}} (\S+)', text, re.M
    )
    assert ready is not None and float(ready.group(1)) == 1


async def test_ovms_demo_url_is_an_embeddings_alias(fake_client: httpx.AsyncClient) -> None:
    """OVMS' compare_results.py posts to `{--service_url}/embeddings`, documented as
    `http://localhost:8000/v3/embeddings`."""
    direct = await fake_client.post("/v3/embeddings", json={"input": "same text"})
    alias = await fake_client.post("/v3/embeddings/embeddings", json={"input": "same text"})
    assert alias.status_code == 200
    assert alias.json()["data"] == direct.json()["data"]

"""Helpers of the in-process HTTP contract tests."""

from __future__ import annotations

from typing import Any

import httpx

EMBED = "/v1/embeddings"


LONG_TEXT = " ".join(f"word{i}" for i in range(400))  # far more than 256 tokens


def assert_error(
    response: httpx.Response, status: int, code: str, *, type_: str = "invalid_request_error"
) -> dict[str, Any]:
    """The OpenAI envelope with exactly these keys, status, type and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


async def post(client: httpx.AsyncClient, body: Any, path: str = EMBED) -> httpx.Response:
    return await client.post(path, json=body)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0

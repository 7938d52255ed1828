"""Logs operators expect: JSON lines on request, the request id on every line of a request
(the access line included), and 499 for a client that hung up, without a traceback."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from embedserve.logs import JsonFormatter, RequestIdFilter, request_id_var
from tests.conftest import start_server


def test_json_formatter_carries_the_request_id_and_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "embedserve.access", "levelno": 20, "levelname": "INFO", "msg": "hi %s",
         "args": ("there",), "status": 200}
    )  # fmt: skip
    token = request_id_var.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hi there"
    assert entry["request_id"] == "req-42" and entry["status"] == 200
    assert entry["level"] == "info" and entry["logger"] == "embedserve.access"


@pytest.mark.slow
def test_json_logs_of_a_server_process(tmp_path: Path) -> None:
    server = start_server(
        ["--backend", "fake", "--fake-faults", "delay=0.5", "--log-format", "json",
         "--drain-delay", "0"],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        headers = {"x-request-id": "trace-abc"}
        ok = httpx.post(
            server.base_url + "/v1/embeddings", json={"input": "x"}, headers=headers, timeout=10
        )
        assert ok.status_code == 200
        with pytest.raises(httpx.ReadTimeout):  # hang up while it is queued
            httpx.post(
                server.base_url + "/v1/embeddings",
                json={"input": "abandoned"},
                headers={"x-request-id": "gone-1"},
                timeout=0.2,
            )
        time.sleep(0.8)
    finally:
        server.stop()
    lines = [line for line in server.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON
    access = [e for e in entries if e["logger"] == "embedserve.access"]
    ours = [e for e in access if e["request_id"] == "trace-abc"]
    assert ours and ours[0]["status"] == 200 and "POST /v1/embeddings" in ours[0]["message"]
    gone = [e for e in entries if e.get("request_id") == "gone-1"]
    assert {e["logger"] for e in gone} >= {"embedserve.access", "embedserve.api.handling"}
    assert any("client disconnected" in e["message"] for e in gone)
    assert any(e.get("status") == 499 for e in gone)
    assert all("traceback" not in e for e in entries)
    assert any(e["message"].startswith("auth: off") for e in entries)

"""Hostile bodies against a real server process with the real model: each gets the right 4xx
within a bounded time, and `/health`, polled by a separate process throughout, stays fast."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess

EMBED = "/v1/embeddings"
pytestmark = pytest.mark.usefixtures("health_prober")
JSON_HEADERS = {"content-type": "application/json"}
PROBER = """
import os, sys, time, urllib.request
url, stop_file, out_file = sys.argv[1:4]
with open(out_file, "w") as out:
    while not os.path.exists(stop_file):
        started = time.perf_counter()
        urllib.request.urlopen(url, timeout=5).read()
        out.write(f"{time.perf_counter() - started:.4f}\\n")
        out.flush()
        time.sleep(0.02)
"""


@pytest.fixture(scope="module")
def health_prober(
    real_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A separate process polling /health every 20 ms while this module's tests run; yields
    the file where it writes each probe's latency in seconds."""
    folder = tmp_path_factory.mktemp("prober")
    latencies = folder / "latencies.txt"
    process = subprocess.Popen(
        [
            sys.executable, "-c", PROBER,
            real_server.base_url + "/health", str(folder / "stop"), str(latencies),
        ]
    )  # fmt: skip
    time.sleep(0.5)
    yield latencies
    (folder / "stop").touch()
    process.wait(timeout=30)


def _post(server: ServerProcess, body: bytes | dict[str, Any], budget_s: float) -> httpx.Response:
    """POST and check the answer came within `budget_s`."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    response = httpx.post(
        server.base_url + EMBED, content=content, headers=JSON_HEADERS, timeout=60
    )
    assert time.monotonic() - started < budget_s, f"took {time.monotonic() - started:.2f}s"
    return response


def _error(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["param"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        (
            "token ids just under the body limit",
            b'{"input":[' + b"1," * 1_190_000 + b"1]}",
            400,
            "context_length_exceeded",
        ),
        (
            "2048 lists of 250 ids",
            json.dumps({"input": [[1] * 250] * 2048}).encode(),
            400,
            "max_tokens_per_request",
        ),
        (
            "3000 lists of 10 ids",
            json.dumps({"input": [[1] * 10] * 3000}).encode(),
            400,
            "too_many_inputs",
        ),
        (
            "4 million token ids",
            b'{"input":[' + b"1," * 4_000_000 + b"1]}",
            413,
            "payload_too_large",
        ),
        ("a 2 MB string", b'{"input":"' + b"a" * 2_000_000 + b'"}', 400, "context_length_exceeded"),
        ("a 6 MB string", b'{"input":"' + b"word " * 1_200_000 + b'"}', 413, "payload_too_large"),
        (
            "2048 long texts over the token limit",
            json.dumps({"input": ["word " * 200] * 2048, "truncate_prompt_tokens": -1}).encode(),
            400,
            "max_tokens_per_request",
        ),
        (
            "additional_data 300 deep",
            b'{"input":"x","additional_data":' + b"[" * 300 + b"]" * 300 + b"}",
            400,
            "invalid_request",
        ),
        (
            "additional_data 5000 deep",
            b'{"input":"x","additional_data":' + b"[" * 5000 + b"]" * 5000 + b"}",
            400,
            "invalid_request",
        ),
        (
            "additional_data with 100k values",
            b'{"input":"x","additional_data":[' + b"0," * 100_000 + b"0]}",
            400,
            "invalid_request",
        ),
        (
            "metadata with 100k keys",
            json.dumps({"input": "x", "metadata": {f"k{i}": "v" for i in range(100_000)}}).encode(),
            400,
            "invalid_request",
        ),
        ("NaN", b'{"input":"x","dimensions":NaN}', 400, "invalid_request"),
        ("a lone surrogate", b'{"input":"\\ud800"}', 400, "invalid_request"),
        ("invalid UTF-8", b'{"input":"\xff\xfe"}', 400, "invalid_request"),
        ("an empty body", b"", 400, "invalid_request"),
        ("a JSON array", b"[1,2]", 400, "invalid_request"),
        ("a huge integer id", b'{"input":[1' + b"0" * 400 + b"]}", 400, "invalid_request"),
        ("an id past int64", b'{"input":[1' + b"0" * 19 + b"]}", 400, "invalid_token_id"),
        ("a float among ids", b'{"input":[[101,1.0,102]]}', 400, "invalid_request"),
        ("a negative id", b'{"input":[[101,-5,102]]}', 400, "invalid_token_id"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)
def test_hostile_body_is_refused_quickly(
    real_server: ServerProcess,
    name: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = _post(real_server, body, budget_s=10)
    assert _error(response)[:2] == (status, code), (name, response.text[:300])
    assert len(response.json()["error"]["message"]) < 1000  # no echo of what was sent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input", 5), ("input", {"a": 1}), ("input", [1.5]), ("input", [True]),
        ("input", [[1, "a"]]), ("input", ["a", 1]), ("input", None), ("input", [None]),
        ("model", 5), ("model", ["x"]), ("encoding_format", "hex"), ("encoding_format", 1),
        ("dimensions", "3"), ("dimensions", 0), ("dimensions", -1), ("dimensions", 10**20),
        ("dimensions", 1.5), ("truncate_prompt_tokens", "x"), ("truncate_prompt_tokens", 0),
        ("truncate_prompt_tokens", -2), ("truncate_prompt_tokens", 10**30), ("user", 5),
        ("metadata", {"a": 1}), ("metadata", [1]), ("extra_body", 5),
    ],
)  # fmt: skip
def test_every_wrong_type_is_a_400_naming_the_field(
    real_server: ServerProcess, field: str, value: Any
) -> None:
    body = {"input": "a valid text", field: value}
    response = _post(real_server, body, budget_s=5)
    status, _, param = _error(response)
    assert status == 400, response.text
    assert param == field, response.text


@pytest.mark.slow
def test_odd_but_valid_texts_are_embedded(real_server: ServerProcess) -> None:
    texts = ["a\u0000b", "\u200b", "🙂" * 50, "x" * 16384, "\t\n", "é" * 300]
    response = _post(real_server, {"input": texts, "truncate_prompt_tokens": -1}, budget_s=10)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == len(texts)
    cut = _post(real_server, {"input": "word " * 100_000, "truncate_prompt_tokens": -1}, 5)
    assert cut.status_code == 200 and cut.json()["usage"]["prompt_tokens"] == 256


@pytest.mark.slow
def test_health_stayed_fast_throughout(real_server: ServerProcess, health_prober: Path) -> None:
    """Runs last in this module: one more round of the worst bodies, then the verdict over every
    probe made while the module ran."""
    for _ in range(3):
        _post(real_server, b'{"input":[' + b"1," * 1_190_000 + b"1]}", budget_s=10)
        _post(real_server, b'{"input":"' + b"a" * 2_000_000 + b'"}', budget_s=10)
    latencies = sorted(float(line) for line in health_prober.read_text().split())
    assert len(latencies) > 50
    p99 = latencies[int(len(latencies) * 0.99)]
    print(
        f"/health probes: {len(latencies)}, p99 {p99 * 1000:.1f} ms, max "
        f"{latencies[-1] * 1000:.1f} ms"
    )
    assert p99 < 0.1, latencies[-20:]
    assert latencies[-1] < 0.5, latencies[-20:]

"""The eval client against a stub OpenAI-compatible server (fault injection): base64 vectors in
order, batches in flight, 429 retried after Retry-After, a strict server's refusal of our extra
fields answered by sending OpenAI's fields only, and errors that say what the server said."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from embedserve.evaluation.client import ClientOptions, EmbeddingsClient, ServerError, base_url

Reply = tuple[int, dict[str, Any], dict[str, str]]


def vector_of(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


def embeddings(body: dict[str, Any], *, reverse: bool = False) -> dict[str, Any]:
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": base64.b64encode(np.asarray(vector_of(text), "<f4").tobytes()).decode(),
        }
        for index, text in enumerate(body["input"])
    ]
    return {"object": "list", "data": data[::-1] if reverse else data, "model": body["model"]}


@contextmanager
def stub(answer: Callable[[dict[str, Any]], Reply]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server answering POST /v1/embeddings with `answer(body)`; the bodies it received."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(200, {"data": [{"id": "served/model"}, {"id": "other"}]}, {})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_auth"] = self.headers.get("Authorization")
            received.append(body)
            self._send(*answer(body))

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/", received
    finally:
        server.shutdown()
        server.server_close()


def test_vectors_come_back_in_order_from_batches(caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"text number {i}" for i in range(23)]
    with stub(lambda body: (200, embeddings(body, reverse=True), {})) as (url, received):
        client = EmbeddingsClient(ClientOptions(url, api_key="k", batch_size=5, concurrency=3))
        done: list[int] = []
        vectors = client.embed(texts, input_type="query", on_progress=done.append)
    assert client.model == "served/model"  # the first one listed
    assert np.array_equal(vectors, np.array([vector_of(text) for text in texts], np.float32))
    assert sorted(done) == [3, 5, 5, 5, 5]
    assert sorted(len(body["input"]) for body in received) == sorted(done)
    assert {body["input_type"] for body in received} == {"query"}
    assert {body["truncate_prompt_tokens"] for body in received} == {-1}
    assert {body["encoding_format"] for body in received} == {"base64"}
    assert {body["_auth"] for body in received} == {"Bearer k"}
    assert not caplog.records


def test_a_strict_server_gets_openai_fields_only(caplog: pytest.LogCaptureFixture) -> None:
    def strict(body: dict[str, Any]) -> Reply:
        unknown = set(body) - {"model", "input", "encoding_format", "_auth"}
        if unknown:
            return 400, {"error": {"message": f"unrecognized: {sorted(unknown)}"}}, {}
        return 200, embeddings(body), {}

    with stub(strict) as (url, received):
        client = EmbeddingsClient(ClientOptions(url, model="m", batch_size=2, concurrency=1))
        vectors = client.embed(["a", "bb", "ccc"], input_type="document")
    assert vectors.shape == (3, 3)
    assert not client.extras_accepted
    assert "input_type" in received[0] and "input_type" not in received[-1]
    assert len(received) == 3  # refused, resent plain, then plain from the start
    assert "sending OpenAI's fields only" in caplog.text and "unrecognized" in caplog.text


def test_429_is_retried_after_its_retry_after() -> None:
    replies = iter([(429, {"error": {"message": "busy"}}, {"Retry-After": "0"})] * 2)

    def busy_twice(body: dict[str, Any]) -> Reply:
        return next(replies, (200, embeddings(body), {}))

    with stub(busy_twice) as (url, received):
        vectors = EmbeddingsClient(ClientOptions(url, model="m")).embed(["a"])
    assert vectors.shape == (1, 3) and len(received) == 3


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        ((401, {"error": {"message": "bad key"}}, {}), 401, "401 .*bad key"),
        ((503, {"error": {"message": "draining"}}, {"Retry-After": "0"}), 503, "draining"),
        ((200, {"data": []}, {}), 200, "0 embeddings for 1 inputs"),
        ((200, {"data": [{"index": 0, "embedding": "!!"}]}, {}), 200, "not an embeddings"),
        ((200, {"data": [{"index": 0}]}, {}), 200, "not an embeddings response .*KeyError"),
        ((200, {"error": "x"}, {}), 200, "not an embeddings response"),
    ],
)
def test_errors_carry_what_the_server_said(reply: Reply, status: int, message: str) -> None:
    with stub(lambda body: reply) as (url, received):
        client = EmbeddingsClient(ClientOptions(url, model="m", retries=2))
        with pytest.raises(ServerError, match=message) as error:
            client.embed(["a"])
    assert error.value.status == status
    assert len(received) == (3 if status == 503 else 1)  # only 429/5xx are retried


def test_no_server_is_an_error_not_a_hang() -> None:
    options = ClientOptions("http://127.0.0.1:9", model="m", retries=1)
    with pytest.raises(ServerError, match="ClientConnectorError"):
        EmbeddingsClient(options).embed(["a"])
    with pytest.raises(ValueError, match="at least 1"):
        EmbeddingsClient(ClientOptions("http://x", model="m", concurrency=0))


@pytest.mark.parametrize(
    "url", ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/", "http://h:1//v1"]
)
def test_base_url_takes_the_v1_form_or_not(url: str) -> None:
    assert base_url(url) == "http://h:1"

"""The draining server's shutdown, in-process on a real socket: a connection the kernel has
accepted but the event loop has not yet taken (it waits in the listener's accept queue) is
served when the listener closes, not reset, as closing a listening socket would do to it."""

from __future__ import annotations

import asyncio
import socket

import httpx

from embedserve.engine import Engine
from embedserve.models.spec import ModelSpec
from embedserve.server import build_server
from embedserve.settings import ServerSettings
from tests.conftest import fake_runner, free_port

REQUEST = b'{"input": "queued at close"}'


async def test_a_connection_in_the_accept_queue_is_served_at_shutdown(
    bundled_spec: ModelSpec,
) -> None:
    runner, _ = fake_runner(bundled_spec)
    port = free_port()
    settings = ServerSettings(host="127.0.0.1", port=port, log_level="warning")
    server = build_server(Engine([runner]), settings, on_fatal=lambda error: None)
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    await server.startup()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(2000):  # the model loads in the background: health answers 503 till then
            if (await http.get("/health")).status_code == 200:
                break
            await asyncio.sleep(0.005)
        assert (await http.get("/health")).status_code == 200
    # From here to the shutdown nothing awaits: the event loop cannot accept the connection.
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(
        b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(REQUEST)).encode() + b"\r\n\r\n" + REQUEST
    )
    await server.shutdown()
    answer = b""
    with client:
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"connection: close" in answer.lower()
    assert b'"embedding"' in answer

"""Connection guards over real sockets: header timeout (slowloris and idle), head size limit,
connection cap, write-stall timeout, and keep-alive still working."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 8
MAX_HEADER_BYTES = 8192
HEALTH_BUDGET_S = 0.1


@dataclass
class Servers:
    """Two fake-backend servers: `main` with short timeouts, `capped` with a long header timeout
    so that idle sockets stay open while the cap is tested."""

    main: ServerProcess
    capped: ServerProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Both servers, started side by side (each start is mostly imports)."""
    logs = tmp_path_factory.mktemp("connections")
    common = [
        "--backend",
        "fake",
        "--max-header-bytes",
        str(MAX_HEADER_BYTES),
        "--drain-delay",
        "0",
    ]
    main_args = [
        *common,
        *("--header-timeout", str(HEADER_TIMEOUT_S), "--write-timeout", str(WRITE_TIMEOUT_S)),
        *("--body-timeout", str(BODY_TIMEOUT_S)),
        *("--max-connections", "64", "--max-client-batch-size", "4096"),
    ]
    capped_args = [*common, "--header-timeout", "10", "--max-connections", str(MAX_CONNECTIONS)]
    with ThreadPoolExecutor(2) as pool:
        main = pool.submit(start_server, main_args, logs / "main.log")
        capped = pool.submit(start_server, capped_args, logs / "capped.log")
        started = Servers(main.result(), capped.result())
    yield started
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ServerProcess.stop, [started.main, started.capped]))


@dataclass
class Answer:
    """One HTTP response read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def envelope(self) -> dict[str, object]:
        """The `error` object of the body."""
        error: dict[str, object] = orjson.loads(self.body)["error"]
        return error


def connect(base_url: str, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the server, with a socket timeout."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_answer(sock: socket.socket, buffer: bytearray | None = None) -> Answer:
    """Read one response (content-length framed) from `sock`; leftovers stay in `buffer`."""
    data = bytearray() if buffer is None else buffer
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a full response head: {bytes(data)!r}"
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    data[:] = body[length:]
    return Answer(int(status_line.split()[1]), headers, bytes(body[:length]))


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (raises on a socket timeout)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def assert_closing_error(answer: Answer, status: int, type_: str, code: str) -> None:
    """The answer is the error envelope, on a connection the server closes."""
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    error = answer.envelope()
    assert (error["type"], error["code"], error["param"]) == (type_, code, None)
    assert isinstance(error["message"], str) and error["message"]


def timed_health(client: httpx.Client) -> float:
    """Seconds `/health` took to answer 200."""
    started = time.perf_counter()
    response = client.get("/health")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return elapsed


def test_slowloris_head_is_answered_408_while_others_are_served(servers: Servers) -> None:
    partial = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Drip: " + b"a" * 100
    with (
        httpx.Client(base_url=servers.main.base_url, timeout=5) as client,
        connect(servers.main.base_url) as sock,
    ):
        timed_health(client)  # the client's connection is open before the clock starts
        opened = time.monotonic()
        health_times = []
        for byte in partial:
            sock.send(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            health_times.append(timed_health(client))
            assert time.monotonic() - opened < HEADER_TIMEOUT_S + 1, "no answer to a slow head"
        answered_after = time.monotonic() - opened
        answer = read_answer(sock)
        assert read_to_eof(sock) == b""
    assert_closing_error(answer, 408, "invalid_request_error", "header_timeout")
    assert HEADER_TIMEOUT_S - 0.1 < answered_after < HEADER_TIMEOUT_S + 1
    assert len(health_times) >= 3
    assert max(health_times) < HEALTH_BUDGET_S, health_times
    assert "answered 408" in servers.main.log()


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 100\r\n\r\n" + b'{"input": "short',  # shorter than it says
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"inp\r\n',  # a chunk, then nothing
    ],
    ids=["short-body", "chunked-drip"],
)
def test_body_that_never_completes_is_answered_408(servers: Servers, head: bytes) -> None:
    request = b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    with (
        connect(servers.main.base_url) as sock,
        httpx.Client(base_url=servers.main.base_url, timeout=5) as client,
    ):
        started = time.monotonic()
        sock.sendall(request + head)
        assert timed_health(client) < HEALTH_BUDGET_S
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    assert BODY_TIMEOUT_S - 0.2 < elapsed < BODY_TIMEOUT_S + 2, elapsed
    assert answer.status == 408
    error = answer.envelope()
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_timeout")
    assert "--body-timeout" in str(error["message"])


def test_idle_connection_is_closed_after_the_header_timeout(servers: Servers) -> None:
    with connect(servers.main.base_url, timeout=HEADER_TIMEOUT_S + 3) as sock:
        opened = time.monotonic()
        assert read_to_eof(sock) == b""  # closed without an answer
        closed_after = time.monotonic() - opened
    assert HEADER_TIMEOUT_S - 0.1 < closed_after < HEADER_TIMEOUT_S + 1


def test_oversized_head_is_answered_431_at_once(servers: Servers) -> None:
    big = b"GET /health HTTP/1.1\r\nHost: big\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    with connect(servers.main.base_url, timeout=1) as sock:
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):  # the server may stop reading first
            sock.sendall(big)
        answer = read_answer(sock)
        answered_after = time.monotonic() - started
    assert_closing_error(answer, 431, "invalid_request_error", "headers_too_large")
    assert answered_after < 1.0
    near_limit = {"x-padding": "p" * (MAX_HEADER_BYTES - 500)}
    with httpx.Client(base_url=servers.main.base_url, timeout=5) as client:
        assert client.get("/health", headers=near_limit).status_code == 200
        assert timed_health(client) < 1.0


def test_connections_past_the_cap_get_429_and_room_comes_back(servers: Servers) -> None:
    base_url = servers.capped.base_url
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(connect(base_url)) for _ in range(MAX_CONNECTIONS)]
        time.sleep(0.2)
        readable, _, _ = select.select(idle, [], [], 0)
        assert readable == [], "a connection within the cap was answered"
        with connect(base_url, timeout=2) as extra:
            started = time.monotonic()
            answer = read_answer(extra)
            assert time.monotonic() - started < 1.0
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: late\r\n\r\n")  # no reset: it lingers
            assert read_to_eof(extra) == b""
        assert_closing_error(answer, 429, "rate_limit_error", "server_overloaded")
        assert answer.headers["retry-after"] == "1"
        assert "too many open connections" in str(answer.envelope()["message"])
        with pytest.raises(httpx.HTTPError):  # httpx reads the 429 as a broken exchange or 503
            response = httpx.get(base_url + "/health", timeout=2)
            response.raise_for_status()
        for sock in idle[:2]:
            sock.close()
        deadline = time.monotonic() + 2
        while True:
            try:
                response = httpx.get(base_url + "/health", timeout=2)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                break
            assert time.monotonic() < deadline, "no room after closing connections"
            time.sleep(0.05)
    assert "answered 429" in servers.capped.log()


def test_client_that_never_reads_is_cut_off_after_the_write_timeout(servers: Servers) -> None:
    body = json.dumps({"input": ["hello world"] * 2000}).encode()
    request = (
        b"POST /v1/embeddings HTTP/1.1\r\nHost: stall\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    host, port = servers.main.base_url.removeprefix("http://").split(":")
    sock.settimeout(5)
    with sock:
        sock.connect((host, int(port)))
        sock.sendall(request)
        started = time.monotonic()
        message = "read none of its response"
        with httpx.Client(base_url=servers.main.base_url, timeout=5) as client:
            while message not in servers.main.log():
                assert timed_health(client) < 1.0  # others are served during the stall
                assert time.monotonic() - started < WRITE_TIMEOUT_S + 5, "never cut off"
                time.sleep(0.1)
            cut_after = time.monotonic() - started
            assert timed_health(client) < 1.0
        received = bytearray()
        reset = False
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            reset = True
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0] or 0)
    assert reset or len(rest) < length, "the whole response arrived"
    assert WRITE_TIMEOUT_S - 0.1 < cut_after < WRITE_TIMEOUT_S + 5
    assert "Traceback" not in servers.main.log()


def test_keep_alive_and_pipelined_requests_still_work(servers: Servers) -> None:
    health = b"GET /health HTTP/1.1\r\nHost: ka\r\n\r\n"
    body = json.dumps({"input": ["one", "two"]}).encode()
    embed = (
        b"POST /v1/embeddings HTTP/1.1\r\nHost: ka\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    with connect(servers.main.base_url) as sock:
        buffer = bytearray()
        sock.sendall(health)
        assert read_answer(sock, buffer).status == 200
        sock.sendall(embed)
        answer = read_answer(sock, buffer)
        assert answer.status == 200
        assert len(orjson.loads(answer.body)["data"]) == 2
        sock.sendall(health + embed + health)  # pipelined, in one write
        assert [read_answer(sock, buffer).status for _ in range(3)] == [200, 200, 200]
    with httpx.Client(base_url=servers.main.base_url, timeout=5) as client:
        assert client.get("/health").status_code == 200
        assert client.post("/v1/embeddings", json={"input": "again"}).status_code == 200

"""Shared fixtures: the bundled model, engines over fake or real backends, a real server process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from embedserve.api import create_app
from embedserve.backends.fake import FakeBackend
from embedserve.config import BatchingLimits, ServerSettings
from embedserve.engine import Engine, ModelRunner
from embedserve.models import (
    BUNDLED_MODEL_ALIASES,
    BUNDLED_MODEL_ID,
    ModelSpec,
    bundled_model_path,
    load_model_spec,
)

MODEL_ID = BUNDLED_MODEL_ID
MODEL_ALIAS = BUNDLED_MODEL_ALIASES[0]
SERVER_START_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def bundled_spec() -> ModelSpec:
    """The spec of the bundled all-MiniLM-L6-v2 directory."""
    return load_model_spec(bundled_model_path())


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the whole session (the export takes a few seconds)."""
    return tmp_path_factory.mktemp("embedserve-cache")


def fake_runner(
    spec: ModelSpec,
    *,
    names: tuple[str, ...] = (MODEL_ID, MODEL_ALIAS),
    limits: BatchingLimits | None = None,
    delay_s: float = 0.0,
    fail_token_id: int | None = None,
) -> tuple[ModelRunner, FakeBackend]:
    """A runner with the real tokenizer and spec of `spec`, and a fake backend."""
    backend = FakeBackend(spec, delay_s=delay_s, fail_token_id=fail_token_id)
    runner = ModelRunner(spec, names, lambda: backend, limits=limits, backend_name="fake")
    return runner, backend


@contextlib.asynccontextmanager
async def serve_in_process(
    engine: Engine, settings: ServerSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Start `engine`, wrap it in the app, and give an httpx client talking ASGI to it."""
    await engine.start()
    app = create_app(engine, settings, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await engine.stop()


@pytest.fixture
async def fake_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app over the bundled model's tokenizer and a fake backend."""
    runner, _ = fake_runner(bundled_spec)
    async with serve_in_process(Engine([runner])) as client:
        yield client


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A real `embedserve serve` process on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate and reap the process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> ServerProcess:
    """Run `python -m embedserve serve ARGS` and wait until `/health` answers 200."""
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port), *args]
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not become healthy in time:\n{server.log()}")


@pytest.fixture(scope="session")
def real_server(
    tmp_path_factory: pytest.TempPathFactory, onnx_cache_dir: Path
) -> Iterator[ServerProcess]:
    """The bundled model on the default (ONNX) backend, in a real server process."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    server = start_server(["--cache-dir", str(onnx_cache_dir)], log_path)
    yield server
    server.stop()


@contextlib.contextmanager
def uvicorn_in_thread(engine: Engine) -> Iterator[str]:
    """A real uvicorn server (own event loop, real sockets) in a background thread."""
    port = free_port()
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                break
        time.sleep(0.05)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)

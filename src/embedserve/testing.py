"""Helpers shared by the test suite and the benchmarks (stdlib only): a free port, a real
`embedserve serve` process, an in-process engine run, and vectors from any served URL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.engine import EmbedResult, Engine
from embedserve.settings import ModelSettings
from embedserve.verify import served_vectors

SERVER_START_TIMEOUT_S = 180
__all__ = [
    "ServerProcess",
    "embed_in_process",
    "free_port",
    "from_base64",
    "launch",
    "running_server",
    "served_vectors",
    "start_server",
]


def from_base64(text: str) -> FloatArray:
    """Decode one `encoding_format: base64` vector (little-endian float32), as clients do."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


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

    def stop(self, timeout_s: float = 20, *, drain: bool = False) -> None:
        """Terminate and reap the process (killed if it does not exit within `timeout_s`): a
        SIGTERM, then (unless `drain`) a second one that skips the drain delay, as an operator
        would; in-flight work still finishes either way."""
        self.process.terminate()
        if not drain:
            try:
                self.process.wait(timeout=0.3)  # the first signal handled on its own
            except subprocess.TimeoutExpired:
                self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _healthy(url: str) -> bool:
    unverified = ssl._create_unverified_context()  # a test server's self-signed certificate
    try:
        with urllib.request.urlopen(url + "/health", timeout=2, context=unverified) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def launch(
    command: list[str],
    log_path: Path,
    base_url: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> ServerProcess:
    """Start any HTTP server `command` (its output to `log_path`) and wait until
    `base_url/health` answers 200; the tests and the benchmarks start every server with it."""
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )
    server = ServerProcess(process, base_url, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        if _healthy(server.base_url):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not become healthy in time:\n{server.log()}")


def start_server(
    args: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = SERVER_START_TIMEOUT_S,
    scheme: str = "http",
) -> ServerProcess:
    """Run `python -m embedserve serve --port FREE ARGS` and wait until `/health` is 200
    (`scheme="https"` when ARGS include the TLS files)."""
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port), *args]
    base_url = f"{scheme}://127.0.0.1:{port}"
    return launch(command, log_path, base_url, env=env, timeout_s=timeout_s)


@contextlib.contextmanager
def running_server(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Any:
    """`start_server` as a context manager that stops the process on exit."""
    server = start_server(args, log_path, env)
    try:
        yield server
    finally:
        server.stop()


def embed_in_process(
    settings: ModelSettings, cache_dir: Path, **request: Any
) -> tuple[str, EmbedResult]:
    """Load one model in a fresh engine, run one `Engine.embed(**request)`, stop; returns the
    backend's name and the result."""

    async def run() -> tuple[str, EmbedResult]:
        async with Engine.from_models(settings, cache_dir=cache_dir) as engine:
            executor = engine.runners[0].executor
            assert executor is not None
            return executor.backend.name, await engine.embed(**request)

    return asyncio.run(run())

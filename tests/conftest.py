"""Shared fixtures: the bundled model, engines over fake or real backends, a real server
process. Helpers shared with the benchmarks live in `embedserve.testing`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from embedserve.api import create_app
from embedserve.backends.fake import FakeBackend
from embedserve.calibration import Calibration
from embedserve.engine import Engine
from embedserve.models import (
    BUNDLED_MODEL_ALIASES,
    BUNDLED_MODEL_ID,
    ModelSpec,
    bundled_model_path,
    load_model_spec,
)
from embedserve.runner import ModelRunner
from embedserve.settings import BatchingLimits, ServerSettings
from embedserve.testing import ServerProcess, free_port
from embedserve.testing import start_server as _start_server

MODEL_ID = BUNDLED_MODEL_ID
MODEL_ALIAS = BUNDLED_MODEL_ALIASES[0]
TESTS = Path(__file__).resolve().parent
# Folders whose every test starts a process or loads a real model.
SLOW_FOLDERS = ("e2e", "models")
# Fixtures that load the real model or start a server.
SLOW_FIXTURES = {"real_server", "onnx_cache_dir"}
_running_slow_test = False
# Fake runners' calibration caches (int8 ranges of fake vectors): one fresh folder per session.
FAKE_CALIBRATION_DIR = Path(tempfile.mkdtemp(prefix="embedserve-test-calibration-"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` on every test in e2e/ and models/, and on any test using a slow fixture, so
    `pytest -m "not slow"` is the inner loop."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SLOW_FOLDERS or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note whether the test about to set up (fixtures of any scope included) is `slow`."""
    global _running_slow_test  # noqa: PLW0603 - read by start_server below
    _running_slow_test = item.get_closest_marker("slow") is not None


def start_server(
    args: list[str], log_path: Path, env: dict[str, str] | None = None, scheme: str = "http"
) -> ServerProcess:
    """`embedserve.testing.start_server`, refused in a test not marked `slow`."""
    if not _running_slow_test:
        raise RuntimeError("a test that starts a server process must be marked slow")
    return _start_server(args, log_path, env, scheme=scheme)


@pytest.fixture(scope="session")
def bundled_spec() -> ModelSpec:
    """The spec of the bundled all-MiniLM-L6-v2 directory."""
    return load_model_spec(bundled_model_path())


@pytest.fixture(scope="session")
def onnx_cache_dir() -> Path:
    """One export cache kept across test sessions (exports take seconds to minutes): under
    `.cache/test-exports` in the checkout, or `$EMBEDSERVE_TEST_CACHE_DIR`. Entries are keyed
    by the content of the model files and the tool versions, so a stale one is never used."""
    chosen = os.environ.get("EMBEDSERVE_TEST_CACHE_DIR")
    path = Path(chosen) if chosen else TESTS.parent / ".cache" / "test-exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fake_runner(
    spec: ModelSpec,
    *,
    names: tuple[str, ...] = (MODEL_ID, MODEL_ALIAS),
    limits: BatchingLimits | None = None,
    delay_s: float = 0.0,
    fail_token_id: int | None = None,
    cache_entries: int = 0,
) -> tuple[ModelRunner, FakeBackend]:
    """A runner with the real tokenizer and spec of `spec`, and a fake backend."""
    backend = FakeBackend(spec, delay_s=delay_s, fail_token_id=fail_token_id)
    calibration = Calibration(spec, cache_dir=FAKE_CALIBRATION_DIR, runtime="fake")
    runner = ModelRunner(
        spec,
        names,
        lambda: backend,
        limits=limits,
        backend_name="fake",
        calibration=calibration,
        cache_entries=cache_entries,
    )
    return runner, backend


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until `predicate()` holds (polling every 5 ms): instead of sleeping for a guessed
    time, so that a busy machine makes a test slower, never wrong."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.005)


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


__all__ = [
    "ServerProcess",
    "fake_runner",
    "free_port",
    "serve_in_process",
    "start_server",
    "until",
    "uvicorn_in_thread",
]

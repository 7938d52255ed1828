"""The container image (`make test-image` builds it and sets EMBEDSERVE_TEST_IMAGE): the plain
server's HTTP contract tests pass against a running container from outside it, its vectors match
sentence-transformers, it runs as a non-root user without PyTorch, it declares a health check
on /health, SIGTERM drains it to exit code 0, it serves with no network at all, and 100
clients in flight get no 429 at its defaults."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedserve.cli import main
from embedserve.testing import free_port, launch
from tests.conftest import ServerProcess
from tests.e2e import test_http_client
from tests.e2e.shared import assert_bounded_load_never_refused

pytestmark = pytest.mark.slow
IMAGE = os.environ.get("EMBEDSERVE_TEST_IMAGE", "")
ENGINE = [str(Path(__file__).resolve().parents[2] / "scripts" / "image.sh"), "engine"]
if not IMAGE:
    pytest.skip("the image tests run under `make test-image`", allow_module_level=True)

# The plain server's contract tests, collected again here: their `real_server` is the container.
# (The SDK clients' tests, test_clients, run against the same server code elsewhere.)
for _module in (test_http_client,):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_"):
            globals()[_name] = _test


def engine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENGINE, *args], capture_output=True, text=True, timeout=300, check=False
    )


def run_container(name: str, log: Path) -> ServerProcess:
    """The image in the foreground (the engine forwards SIGTERM to it), on a free port."""
    port = free_port()
    command = [*ENGINE, "run", "--rm", "--name", name, "--network", "host", "--ulimit", "host"]
    command += ["-e", f"EMBEDSERVE_PORT={port}", IMAGE]
    return launch(command, log, f"http://127.0.0.1:{port}", timeout_s=180)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    name = f"embedserve-test-{os.getpid()}"
    server = run_container(name, tmp_path_factory.mktemp("image") / "container.log")
    try:
        yield server
    finally:
        server.stop(timeout_s=60)
        engine("rm", "-f", name)


def test_vectors_match_sentence_transformers(
    real_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--url", real_server.base_url]) == 0
    assert "PASS" in capsys.readouterr().out


def test_non_root_no_torch_and_a_health_check(real_server: ServerProcess) -> None:
    name = f"embedserve-test-{os.getpid()}"
    assert engine("exec", name, "id", "-u").stdout.strip() == "10001"
    no_torch = engine("exec", name, "python3", "-c", "import torch")
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    health = engine("image", "inspect", IMAGE, "--format", "{{json .Config.Healthcheck}}")
    assert "/health" in health.stdout, health
    user = engine("image", "inspect", IMAGE, "--format", "{{.Config.User}}").stdout.strip()
    assert user == "10001:10001"
    assert "ready on onnx/cpu" in real_server.log()


def test_sigterm_drains_to_exit_0(tmp_path: Path) -> None:
    name = f"embedserve-drain-{os.getpid()}"
    server = run_container(name, tmp_path / "drain.log")
    try:
        server.process.terminate()  # SIGTERM to the engine, forwarded to the server (PID 1)
        assert server.process.wait(timeout=60) == 0, server.log()[-3000:]
        assert "SIGTERM received" in server.log()
    finally:
        engine("rm", "-f", name)


def test_it_serves_with_no_network_at_all() -> None:
    """`--network none`: nothing is downloaded at start; a request from inside the container's
    own loopback is answered."""
    name = f"embedserve-offline-{os.getpid()}"
    started = engine("run", "-d", "--name", name, "--network", "none", "--ulimit", "host", IMAGE)
    assert started.returncode == 0, started.stderr
    probe = (
        "import json, time, urllib.request as u\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        u.urlopen('http://127.0.0.1:8000/health', timeout=1); break\n"
        "    except OSError:\n"
        "        time.sleep(0.1)\n"
        "body = json.dumps({'model': 'all-MiniLM-L6-v2', 'input': 'offline'}).encode()\n"
        "request = u.Request('http://127.0.0.1:8000/v1/embeddings', body,\n"
        "                    {'content-type': 'application/json'})\n"
        "print(len(json.load(u.urlopen(request, timeout=30))['data'][0]['embedding']))\n"
    )
    try:
        answered = engine("exec", name, "python3", "-c", probe)
        assert answered.stdout.strip() == "384", answered.stderr + engine("logs", name).stderr
    finally:
        engine("rm", "-f", name)


def test_a_bounded_indexer_is_never_refused(real_server: ServerProcess) -> None:
    """The OVMS demo client's shape against the container, at its defaults: 100 requests in
    flight of 16 mixed texts each, no retries: every one answered 200."""
    assert_bounded_load_never_refused(
        real_server.base_url, in_flight=100, inputs=16, seed=4, label="container, ovms shape"
    )

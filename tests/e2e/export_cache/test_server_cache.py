"""The export cache under a real server process: healing at start, a clear exit on an
unwritable cache, SIGTERM during the first export."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from embedserve.backends.onnx_export import cached_onnx_path
from embedserve.models import ModelSpec
from tests.conftest import free_port, start_server
from tests.e2e.export_cache.damage import set_aside_folders, truncated


def served_once(tiny: ModelSpec, cache: Path, log_path: Path) -> str:
    """Start a server on the tiny model and `cache`, embed one text (200), stop; its log."""
    server = start_server(
        ["--model", str(tiny.path), "--cache-dir", str(cache), "--drain-delay", "0"], log_path
    )
    try:
        response = httpx.post(
            server.base_url + "/v1/embeddings", json={"model": "bert", "input": "hello"}
        )
        assert response.status_code == 200
    finally:
        server.stop()
    return server.log()


@pytest.mark.slow
def test_server_heals_a_corrupt_export(tiny: ModelSpec, cache: Path, tmp_path: Path) -> None:
    target = cached_onnx_path(tiny, cache)
    truncated(target)
    log = served_once(tiny, cache, tmp_path / "server.log")
    assert "moving it aside" in log and str(target.parent) in log
    assert len(set_aside_folders(target.parent)) == 1


@pytest.mark.slow
def test_server_with_an_unwritable_cache_exits_with_a_clear_message(
    tiny: ModelSpec, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(free_port())]
    command += ["--model", str(tiny.path), "--cache-dir", str(tmp_path / "a-file" / "cache")]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot write the export cache at" in output and "--cache-dir" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_sigterm_during_the_first_export_leaves_no_broken_cache(
    tiny: ModelSpec, tmp_path: Path
) -> None:
    """SIGTERM while the model is being exported: the process exits 0, no staging folder or
    half-written artefact is left, and the next start serves."""

    cache = tmp_path / "cache"
    log_path = tmp_path / "first.log"
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port)]
    command += ["--model", str(tiny.path), "--cache-dir", str(cache), "--drain-delay", "0"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not any(cache.glob("onnx/.build-*")):  # the export has begun
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=180) == 0, log_path.read_text()
    assert not list(cache.glob("onnx/.build-*")), list(cache.rglob("*"))
    target = cached_onnx_path(tiny, cache)
    assert not target.parent.exists() or target.is_file()  # nothing, or the whole artefact
    served_once(tiny, cache, tmp_path / "second.log")

"""Real HTTP: `embedserve serve` processes and a uvicorn server, with real sockets."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from tests.conftest import MODEL_ID, ServerProcess, fake_runner, start_server, uvicorn_in_thread

EMBED = "/v1/embeddings"


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_real_model_error_rows_over_http(real_server: ServerProcess) -> None:
    with httpx.Client(base_url=real_server.base_url, timeout=30) as client:
        bad_json = client.post(EMBED, content=b"{", headers={"content-type": "application/json"})
        assert (bad_json.status_code, error_code(bad_json)) == (400, "invalid_request")
        empty = client.post(EMBED, json={"input": [""]})
        assert (empty.status_code, error_code(empty)) == (400, "empty_input")
        too_long = client.post(EMBED, json={"input": "word " * 300})
        assert (too_long.status_code, error_code(too_long)) == (400, "context_length_exceeded")
        assert "302" in too_long.json()["error"]["message"]
        truncated = client.post(EMBED, json={"input": "word " * 300, "truncate_prompt_tokens": -1})
        assert truncated.json()["usage"]["prompt_tokens"] == 256
        unknown = client.post(EMBED, json={"model": "nope", "input": "x"})
        assert (unknown.status_code, error_code(unknown)) == (404, "model_not_found")
        route = client.get("/v1/unknown")
        assert (route.status_code, error_code(route)) == (404, "not_found")
        method = client.put(EMBED)
        assert (method.status_code, error_code(method)) == (405, "method_not_allowed")
        huge = client.post(
            EMBED,
            content=b"[" + b"1," * (9 * 1024 * 1024) + b"1]",
            headers={"content-type": "application/json"},
        )
        assert (huge.status_code, error_code(huge)) == (413, "payload_too_large")
        assert client.get("/health").json() == {"status": "ok"}
        ok = client.post(EMBED, json={"input": "still serving"}, headers={"x-request-id": "r-1"})
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "r-1"
        assert "embedserve_http_requests_total" in client.get("/metrics").text


def test_flags_from_environment_and_api_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# one key per line\nfile-key\n")
    server = start_server(
        ["--backend", "fake", "--api-key-file", str(key_file)],
        tmp_path / "server.log",
        env={"EMBEDSERVE_API_KEY": "env-key-1,env-key-2", "EMBEDSERVE_MAX_CLIENT_BATCH_SIZE": "3"},
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            refused = client.post(EMBED, json={"input": "x"})
            assert (refused.status_code, error_code(refused)) == (401, "invalid_api_key")
            for key in ("env-key-1", "env-key-2", "file-key"):
                headers = {"authorization": f"Bearer {key}"}
                assert client.post(EMBED, json={"input": "x"}, headers=headers).status_code == 200
            headers = {"authorization": "Bearer env-key-1"}
            many = client.post(EMBED, json={"input": ["a"] * 4}, headers=headers)
            assert (many.status_code, error_code(many)) == (400, "too_many_inputs")
            assert client.get("/health").status_code == 200
    finally:
        server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells the signal
    assert server.process.returncode in (0, -15), server.log()
    assert "Application shutdown complete" in server.log()


def test_bad_model_directory_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embedserve", "serve", "--model", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "config.json" in result.stderr


def test_client_disconnect_drops_queued_items(bundled_spec: ModelSpec) -> None:
    runner, backend = fake_runner(bundled_spec, delay_s=0.4)
    with uvicorn_in_thread(Engine([runner])) as base_url:
        busy = threading.Thread(
            target=lambda: httpx.post(
                base_url + EMBED, json={"input": "occupy the device"}, timeout=30
            )
        )
        busy.start()
        time.sleep(0.1)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(base_url + EMBED, json={"input": "abandoned request"}, timeout=0.15)
        busy.join()
        time.sleep(0.5)
        after = httpx.post(base_url + EMBED, json={"input": "next request"}, timeout=30)
        assert after.status_code == 200
        metrics = httpx.get(base_url + "/metrics", timeout=5).text
    assert runner.scheduler is None  # the app's lifespan stopped the engine
    tokenizer_ids = runner.tokenizer.encode(["abandoned request", "next request"])
    seen = [tuple(ids) for ids in backend.seen]
    assert tuple(tokenizer_ids[1]) in seen
    assert tuple(tokenizer_ids[0]) not in seen
    assert f'embedserve_dropped_inputs_total{{model="{MODEL_ID}"}} 1.0' in metrics

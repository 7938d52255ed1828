"""Authentication fails closed: empty keys and key files stop the start, the start-up log says
whether auth is on, keys never show, and unauthenticated clients learn no model ids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL_ID, start_server


def _serve(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "embedserve", "serve", "--backend", "fake", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--api-key", ""], None, "empty"),
        (["--api-key", "good", "--api-key", " "], None, "empty"),
        ([], {"EMBEDSERVE_API_KEY": ""}, "empty"),
        (["--api-key-file", "/nonexistent/keys.txt"], None, "cannot read it"),
    ],
)
def test_empty_or_missing_keys_refuse_to_start(
    args: list[str], env: dict[str, str] | None, message: str
) -> None:
    result = _serve(args, env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_key_file_with_only_comments_refuses_to_start(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# add keys here\n\n   \n")
    result = _serve(["--api-key-file", str(key_file)])
    assert result.returncode == 2 and "has no keys" in result.stderr


def test_auth_on_is_logged_keys_never_shown_and_ids_only_for_clients_with_a_key(
    tmp_path: Path,
) -> None:
    secret = "s3cret-key-value"
    server = start_server(
        ["--backend", "fake", "--drain-delay", "0", "--log-level", "debug"],
        tmp_path / "server.log",
        env={"EMBEDSERVE_API_KEY": f"{secret},other-key"},
    )
    try:
        good = {"authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for headers in ({}, {"authorization": "Bearer"}, {"authorization": "Bearer wrong"}):
                refused = client.post("/v1/embeddings", json={"input": "x"}, headers=headers)
                assert refused.status_code == 401
                assert secret not in refused.text
            # Probes stay open, but their 404 names no served model without a key.
            anonymous = client.get("/v2/models/nope/ready")
            assert anonymous.status_code == 404 and MODEL_ID not in anonymous.text
            known = client.get("/v2/models/nope/ready", headers=good)
            assert known.status_code == 404 and MODEL_ID in known.text
            assert client.get(f"/v2/models/{MODEL_ID}/ready").status_code == 200
            assert client.get("/health").status_code == 200
            assert client.get("/v1/models").status_code == 401
            ok = client.post("/v1/embeddings", json={"input": "x"}, headers=good)
            assert ok.status_code == 200
    finally:
        server.stop()
    log = server.log()
    assert "auth: on, 2 API keys" in log
    assert secret not in log


def test_auth_off_is_logged(tmp_path: Path) -> None:
    server = start_server(["--backend", "fake", "--drain-delay", "0"], tmp_path / "server.log")
    server.stop()
    assert "auth: off" in server.log()


def test_unready_details_only_for_clients_with_a_key(tmp_path: Path) -> None:
    server = start_server(
        [
            "--backend", "fake", "--fake-faults", "fail_token=7592", "--max-failed-batches", "1",
            "--api-key", "k1", "--drain-delay", "0",
        ],
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            key = {"authorization": "Bearer k1"}
            assert client.post("/v1/embeddings", json={"input": "hello"}, headers=key).status_code
            anonymous = client.get("/health")
            assert anonymous.status_code == 503
            assert MODEL_ID not in anonymous.text and "fake backend" not in anonymous.text
            detailed = client.get("/health", headers=key)
            assert detailed.status_code == 503 and MODEL_ID in detailed.text
    finally:
        server.stop()

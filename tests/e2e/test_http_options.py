"""The HTTP front options over a real server process: TLS files and the proxy root path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server

FAKE = ["--backend", "fake", "--drain-delay", "0"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_tls_files_serve_https(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    key, cert = certificate
    args = [*FAKE, "--ssl-keyfile", str(key), "--ssl-certfile", str(cert)]
    server = start_server(args, tmp_path / "server.log", scheme="https")
    try:
        assert server.base_url.startswith("https://")
        with httpx.Client(base_url=server.base_url, verify=str(cert), timeout=30) as client:
            answer = client.post("/v1/embeddings", json={"input": "over TLS"})
        assert answer.status_code == 200 and len(answer.json()["data"][0]["embedding"]) == 384
        plain = server.base_url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(plain + "/health", timeout=5)  # no plain HTTP on a TLS port
        assert "on https://127.0.0.1" in server.log()
    finally:
        server.stop()


def test_one_tls_file_alone_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--ssl-keyfile and --ssl-certfile go together"):
        start_server([*FAKE, "--ssl-certfile", str(tmp_path / "cert.pem")], tmp_path / "log")


def test_root_path_behind_a_prefix_stripping_proxy(tmp_path: Path) -> None:
    server = start_server([*FAKE, "--root-path", "/embed"], tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            # The proxy strips the prefix: the routes are where they always are.
            assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 200
            document = client.get("/openapi.json").json()
            assert document["servers"] == [{"url": "/embed"}]
            assert "/embed/openapi.json" in client.get("/docs").text
    finally:
        server.stop()

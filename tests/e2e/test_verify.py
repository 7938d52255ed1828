"""`embedserve verify`: passes on the real model, fails on wrong vectors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from embedserve.cli import main
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.verify import _transformers_reference, reference_vectors, sample_texts, verify
from tests.conftest import ServerProcess, fake_runner, uvicorn_in_thread


def min_cosine(output: str) -> float:
    match = re.search(r"min cosine: (-?[0-9.]+)", output)
    assert match, output
    return float(match.group(1))


def test_verify_a_running_server_passes(
    real_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--url", real_server.base_url]) == 0
    output = capsys.readouterr().out
    assert min_cosine(output) >= 0.99999
    assert "retrieval top-1 agreement: 100%" in output
    assert "reference: sentence-transformers" in output
    assert output.count("\n| ") >= len(sample_texts())  # one row per text


def test_verify_url_needs_only_the_server_install(real_server: ServerProcess) -> None:
    """After `make run` (no test extras) neither httpx nor sentence-transformers is there."""
    import subprocess
    import sys

    blocked = "import sys; sys.modules['httpx'] = None; sys.modules['sentence_transformers'] = None"
    run = f"{blocked}; from embedserve.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", run, "verify", "--url", real_server.base_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PASS" in result.stdout and "reference: transformers" in result.stdout


def test_verify_in_process_torch_backend() -> None:
    report = verify(None, backend="torch")
    assert report.min_cosine >= 0.99999 and report.top1_agreement == 1.0


def test_transformers_fallback_reference_agrees(bundled_spec: ModelSpec) -> None:
    texts = sample_texts()
    st_vectors, source = reference_vectors(bundled_spec, texts)
    assert source == "sentence-transformers"
    fallback = _transformers_reference(bundled_spec, texts)
    cosine = (st_vectors * fallback).sum(1) / np.linalg.norm(fallback, axis=1)
    assert cosine.min() >= 0.99999


def test_verify_fails_on_wrong_vectors(
    bundled_spec: ModelSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, _ = fake_runner(bundled_spec)
    with uvicorn_in_thread(Engine([runner])) as base_url:
        code = main(["verify", "--url", base_url])
    output = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in output and min_cosine(output) < 0.9

"""`embedserve verify` and `export` on a reranker: its scores against `CrossEncoder.predict` on
the built-in pairs, in-process per backend and from a running server; a wrong reference fails."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from embedserve.cli import main
from embedserve.library import Embedder
from embedserve.models import load_model_spec
from embedserve.verify import PAIRS
from embedserve.verify_scores import (
    ScoreReport,
    _transformers_reference,
    reference_scores,
    sample_pairs,
)
from tests.models.tiny_models import build_cross_encoder


def score_diff(output: str) -> float:
    match = re.search(r"max abs score difference: ([0-9.e+-]+)", output)
    assert match, output
    return float(match.group(1))


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("verify") / "ce", seed=5)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_verify_a_reranker_in_process(
    reranker: Path, tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["verify", "--model", str(reranker), "--backend", backend]
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert score_diff(output) <= 1e-5
    assert f"{len(PAIRS) ** 2} (query, passage) pairs" in output
    assert "top-1 passage agreement: 100%" in output and "PASS" in output


def test_export_of_a_reranker_reports_its_scores(
    reranker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "--model", str(reranker), "--format", "openvino"]
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "a reranker" in output and (tmp_path / "onnx").is_dir()
    assert 0 < score_diff(output) <= 5e-3  # OpenVINO's drift on this tiny model


def test_predict_and_the_transformers_fallback_equal_cross_encoder(reranker: Path) -> None:
    spec = load_model_spec(reranker)
    pairs = sample_pairs()[:40]
    expected, source = reference_scores(spec, pairs)
    assert source.startswith("sentence-transformers")
    assert np.allclose(_transformers_reference(spec, pairs), expected, atol=1e-5)
    with Embedder(reranker, backend="torch") as embedder:
        assert np.allclose(embedder.predict(pairs, batch_size=7), expected, atol=1e-5)
        raw = embedder.predict(pairs[:3], raw=True)
    assert np.allclose(1 / (1 + np.exp(-raw)), expected[:3], atol=1e-5)


def test_a_wrong_reranker_fails(reranker: Path, tmp_path: Path) -> None:
    """The check can fail: another draw of the same architecture is far from the reference."""
    other = build_cross_encoder(tmp_path / "other", seed=6)
    spec = load_model_spec(reranker)
    with Embedder(other, backend="torch") as embedder:
        candidate = embedder.predict(sample_pairs())
    reference, source = reference_scores(spec, sample_pairs())
    shape = (len(PAIRS), len(PAIRS))
    report = ScoreReport(candidate.reshape(shape), reference.reshape(shape), source)
    assert report.max_abs_diff > 1e-2

"""OpenVINO backend and `embedserve export`: fp32 parity, int8 accuracy reported, int8 serves."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from embedserve.backends import create_backend
from embedserve.cli import main
from embedserve.errors import ModelLoadError
from embedserve.models import ModelSpec
from embedserve.settings import ModelSettings
from embedserve.verify import engine_vectors, reference_vectors, sample_texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference(bundled_spec: ModelSpec) -> np.ndarray:
    return reference_vectors(bundled_spec, sample_texts())[0]


def test_openvino_fp32_matches_sentence_transformers(
    reference: np.ndarray, onnx_cache_dir: Path
) -> None:
    settings = ModelSettings(backend="openvino")
    served = engine_vectors(settings, sample_texts(), onnx_cache_dir)
    assert cosines(served, reference).min() >= 0.99999


def test_export_int8_reports_accuracy_and_serves(
    reference: np.ndarray, onnx_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "export",
            "--format",
            "openvino",
            "--precision",
            "int8",
            "--cache-dir",
            str(onnx_cache_dir),
        ]
    )
    assert code == 0
    output = capsys.readouterr().out
    match = re.search(r"min cosine ([0-9.]+)", output)
    assert match and 0.99 <= float(match.group(1)) < 0.99999  # quantised: close, not exact
    size = re.search(r"\(([0-9.]+) MiB, openvino int8\)", output)
    assert size and float(size.group(1)) < 30  # ~4x smaller than the 86 MiB of fp32 weights
    assert "retrieval top-1 agreement 100%" in output
    served = engine_vectors(
        ModelSettings(backend="openvino", precision="int8"), sample_texts(), onnx_cache_dir
    )
    assert 0.99 <= cosines(served, reference).min() < 0.99999


def test_precisions_are_offered_only_where_measured(
    bundled_spec: ModelSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelLoadError, match="not offered"):
        create_backend("onnx", bundled_spec, device="cpu", cache_dir=tmp_path, precision="int8")
    with pytest.raises(ModelLoadError, match="not offered"):
        create_backend("torch", bundled_spec, device="cpu", cache_dir=tmp_path, precision="fp16")
    assert main(["export", "--format", "onnx", "--precision", "int8"]) == 2
    assert "not offered" in capsys.readouterr().err


def test_onnx_fp16_export_is_accurate_and_serves(
    reference: np.ndarray, onnx_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["export", "--format", "onnx", "--precision", "fp16", "--cache-dir", str(onnx_cache_dir)]
    )
    assert code == 0
    output = capsys.readouterr().out
    assert "onnx-fp16/model.onnx" in output
    served = engine_vectors(
        ModelSettings(backend="onnx", precision="fp16"), sample_texts(), onnx_cache_dir
    )
    assert cosines(served, reference).min() >= 0.9999


def test_export_reads_the_cache_directory_variable(
    onnx_cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export` (and `verify`) honour EMBEDSERVE_CACHE_DIR as `serve` does."""
    monkeypatch.setenv("EMBEDSERVE_CACHE_DIR", str(onnx_cache_dir))
    monkeypatch.setenv("EMBEDSERVE_PORT", "not-a-port")  # a serve variable: not read here
    assert main(["export", "--format", "onnx"]) == 0
    assert str(onnx_cache_dir / "onnx") in capsys.readouterr().out

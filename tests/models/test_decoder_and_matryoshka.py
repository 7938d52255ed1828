"""A Qwen3-style decoder with LAST pooling and left padding, and a matryoshka model, on both
backends, against sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embedserve.models import Pooling, load_model_spec
from embedserve.settings import ModelSettings
from embedserve.testing import embed_in_process
from tests.models.tiny_models import build_bert, build_qwen3

TEXTS = [
    "a short one",
    "a somewhat longer text, with more words in it, so the batch needs padding",
    "x",
    "héllo wörld 123",
    " ".join(["decoder"] * 40),
]


def embed(settings: ModelSettings, cache_dir: Path, dimensions: int | None = None) -> np.ndarray:
    return embed_in_process(settings, cache_dir, texts=TEXTS, dimensions=dimensions)[1].vectors


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen3(tmp_path_factory.mktemp("decoder") / "tiny-qwen3")


def test_decoder_spec(qwen3: Path) -> None:
    spec = load_model_spec(qwen3)
    assert (spec.model_type, spec.pooling, spec.padding_side) == ("qwen3", Pooling.LAST, "left")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_decoder_last_pooling_left_padded(qwen3: Path, onnx_cache_dir: Path, backend: str) -> None:
    model = SentenceTransformer(str(qwen3), device="cpu")
    assert model.tokenizer.padding_side == "left"
    reference = model.encode(TEXTS)
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    assert (unit @ unit.T)[~np.eye(len(TEXTS), dtype=bool)].max() < 0.99  # can fail
    served = embed(ModelSettings(path=qwen3, backend=backend), onnx_cache_dir)
    assert cosines(served, reference).min() >= 0.99999


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_matryoshka_model_truncates_then_normalises(
    tmp_path_factory: pytest.TempPathFactory, onnx_cache_dir: Path, backend: str
) -> None:
    path = tmp_path_factory.mktemp("matryoshka") / "tiny-matryoshka"
    build_bert(path, pooling="mean", normalize=True)
    full = SentenceTransformer(str(path), device="cpu").encode(TEXTS)
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    settings = ModelSettings(path=path, backend=backend, matryoshka=True)
    served = embed(settings, onnx_cache_dir, dimensions=8)
    assert served.shape == (len(TEXTS), 8)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, rtol=1e-5)
    assert cosines(served, expected).min() >= 0.99999

"""Models with a sentence-transformers Dense head (pool -> Dense -> Normalize), saved by
sentence-transformers itself (6.x module names), served by both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from embedserve.backends import create_backend
from embedserve.executor import Executor
from embedserve.models import load_model_spec
from embedserve.scheduler.batching import bucket_length
from embedserve.settings import ModelSettings
from embedserve.testing import embed_in_process
from embedserve.tokenization import TextTokenizer
from tests.models.tiny_models import build_dense_model

TEXTS = [
    "A projection head after pooling.",
    "Dense layers change the output dimension",
    "Ünïcödé and emoji 🚀 and 数字 123",
    " ".join(["longer text"] * 30),
    "short",
    "the quick brown fox jumps over the lazy dog",
]


@pytest.fixture(scope="module")
def dense_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dense")
    return {
        "tanh+normalize": build_dense_model(root / "a", activation=torch.nn.Tanh(), normalize=True),
        "identity": build_dense_model(root / "b", activation=torch.nn.Identity(), normalize=False),
    }


def embed(path: Path, backend: str, cache_dir: Path) -> np.ndarray:
    settings = ModelSettings(path=path, backend=backend)
    return embed_in_process(settings, cache_dir, texts=TEXTS)[1].vectors


def test_spec_reads_the_dense_head(dense_models: dict[str, Path]) -> None:
    spec = load_model_spec(dense_models["tanh+normalize"])
    assert spec.dimension == 16 and spec.normalize is True
    assert [d.name for d in spec.dense_dirs] == ["2_Dense"]
    assert load_model_spec(dense_models["identity"]).normalize is False


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("kind", ["tanh+normalize", "identity"])
def test_dense_models_match_sentence_transformers(
    dense_models: dict[str, Path], onnx_cache_dir: Path, backend: str, kind: str
) -> None:
    path = dense_models[kind]
    reference = SentenceTransformer(str(path), device="cpu").encode(TEXTS)
    assert reference.shape == (len(TEXTS), 16)
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    assert (unit @ unit.T)[~np.eye(len(TEXTS), dtype=bool)].max() < 0.99  # can fail
    served = embed(path, backend, onnx_cache_dir)
    assert served.shape == reference.shape
    cosine = (
        (served * reference).sum(1)
        / np.linalg.norm(served, axis=1)
        / np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() >= 0.99999
    np.testing.assert_allclose(
        np.linalg.norm(served, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-4
    )


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_deterministic_rows_are_their_own_with_a_dense_head(
    dense_models: dict[str, Path], backend: str, onnx_cache_dir: Path
) -> None:
    """With a Dense head too, a text's bytes in a deterministic batch equal its bytes alone."""
    spec = load_model_spec(dense_models["tanh+normalize"])
    backend_ = create_backend(backend, spec, device="cpu", cache_dir=onnx_cache_dir)
    executor = Executor(backend_, spec, deterministic=True)
    ids = TextTokenizer(spec).encode(TEXTS)
    widths = {bucket_length(len(row), 16, spec.max_length) for row in ids}
    for width in widths:
        group = [row for row in ids if bucket_length(len(row), 16, spec.max_length) == width]
        together = executor.run(group * 3, width=width).vectors
        for position, row in enumerate(group):
            alone = executor.run([row], width=width).vectors[0]
            assert together[position].tobytes() == alone.tobytes()

"""Models with a sentence-transformers Dense head (pool -> Dense -> Normalize), saved by
sentence-transformers itself (6.x module names), served by both backends."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer, models
from transformers import BertConfig, BertModel

from embedserve.config import ModelSettings
from embedserve.engine import EmbedParams, Engine, ModelRunner
from embedserve.models import bundled_model_path, load_model_spec

TEXTS = [
    "A projection head after pooling.",
    "Dense layers change the output dimension",
    "Ünïcödé and emoji 🚀 and 数字 123",
    " ".join(["longer text"] * 30),
    "short",
    "the quick brown fox jumps over the lazy dog",
]


def build(root: Path, *, activation: torch.nn.Module, normalize: bool) -> Path:
    """A tiny random BERT with MEAN pooling and a Dense(32 -> 16) head, saved by ST."""
    torch.manual_seed(7)
    base = root / "base"
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.5,
    )
    BertModel(config).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(bundled_model_path() / name, base / name)
    modules = [
        models.Transformer(str(base), max_seq_length=128),
        models.Pooling(32, pooling_mode="mean"),
        models.Dense(32, 16, activation_function=activation),
    ]
    if normalize:
        modules.append(models.Normalize())
    target = root / "model"
    SentenceTransformer(modules=modules, device="cpu").save(str(target))
    return target


@pytest.fixture(scope="module")
def dense_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dense")
    return {
        "tanh+normalize": build(root / "a", activation=torch.nn.Tanh(), normalize=True),
        "identity": build(root / "b", activation=torch.nn.Identity(), normalize=False),
    }


def embed(path: Path, backend: str, cache_dir: Path) -> np.ndarray:
    async def run() -> np.ndarray:
        runner = ModelRunner.from_settings(ModelSettings(path=path, backend=backend), cache_dir)
        engine = Engine([runner])
        await engine.start()
        try:
            return (await engine.embed(EmbedParams(texts=TEXTS))).vectors
        finally:
            await engine.stop()

    return asyncio.run(run())


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

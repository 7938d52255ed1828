"""The CUDA path (PyTorch backend, `--device cuda`): runs only where a GPU is present."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from embedserve.config import ModelSettings
from embedserve.engine import EmbedParams, Engine, ModelRunner
from embedserve.models import bundled_model_path

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TEXTS = [f"sentence number {i} about {'graphics cards ' * (i % 7)}" for i in range(40)]


def test_cuda_torch_backend_matches_sentence_transformers(onnx_cache_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    async def embed() -> np.ndarray:
        settings = ModelSettings(device="cuda")
        assert settings.resolved_backend == "torch"
        engine = Engine([ModelRunner.from_settings(settings, onnx_cache_dir)])
        await engine.start()
        try:
            return (await engine.embed(EmbedParams(texts=TEXTS))).vectors
        finally:
            await engine.stop()

    served = asyncio.run(embed())
    reference = SentenceTransformer(str(bundled_model_path()), device="cpu").encode(TEXTS)
    cosine = (served * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999

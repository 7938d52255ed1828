"""The CUDA path (PyTorch backend, `--device cuda`): runs only where a GPU is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from embedserve.models import bundled_model_path
from embedserve.settings import ModelSettings, auto
from embedserve.testing import embed_in_process

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TEXTS = [f"sentence number {i} about {'graphics cards ' * (i % 7)}" for i in range(40)]


def test_cuda_torch_backend_matches_sentence_transformers(onnx_cache_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    settings = ModelSettings(device="cuda")
    assert auto.backend(settings) == "torch"
    served = embed_in_process(settings, onnx_cache_dir, texts=TEXTS)[1].vectors
    reference = SentenceTransformer(str(bundled_model_path()), device="cpu").encode(TEXTS)
    cosine = (served * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999

"""The tiny model, a clean export cache of it (never modified), its vectors, and a copy of the
cache for each test to damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embedserve.backends.onnx_export import ensure_onnx
from embedserve.backends.onnx_runtime import OnnxBackend
from embedserve.models import ModelSpec, load_model_spec
from tests.e2e.export_cache.damage import IDS, MASK
from tests.models.tiny_models import build_bert


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return load_model_spec(build_bert(tmp_path_factory.mktemp("tiny") / "bert"))


@pytest.fixture(scope="module")
def clean_cache(tiny: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding a good export of the tiny model (copied, never modified)."""
    cache = tmp_path_factory.mktemp("clean-cache")
    ensure_onnx(tiny, cache)
    return cache


@pytest.fixture(scope="module")
def fresh_vectors(tiny: ModelSpec, clean_cache: Path) -> np.ndarray:
    backend = OnnxBackend.load(tiny, device="cpu", cache_dir=clean_cache)
    try:
        return backend.forward(IDS, MASK)
    finally:
        backend.close()


@pytest.fixture
def cache(clean_cache: Path, tmp_path: Path) -> Path:
    """A copy of the clean cache, free to damage."""
    copy = tmp_path / "cache"
    shutil.copytree(clean_cache, copy)
    return copy

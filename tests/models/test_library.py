"""The library API: `embedserve.Embedder` (sync) and `embedserve.Engine` (async), on the real
bundled model, against sentence-transformers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import embedserve
from embedserve.errors import InvalidRequest
from embedserve.models import BUNDLED_MODEL_ID, bundled_model_path

TEXTS = [
    "a",
    "b",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings turn text into vectors. " * 3,
]


@pytest.fixture(scope="module")
def embedder(onnx_cache_dir: Path) -> Iterator[embedserve.Embedder]:
    with embedserve.Embedder(cache_dir=onnx_cache_dir) as model:
        yield model


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    return np.asarray(model.encode([*TEXTS, "word " * 400]), dtype=np.float32)


def test_public_names() -> None:
    assert embedserve.__all__ == [
        "EmbedResult",
        "Embedder",
        "Engine",
        "ModelSettings",
        "__version__",
    ]
    for name in embedserve.__all__:
        assert getattr(embedserve, name) is not None
    with pytest.raises(AttributeError, match="Scheduler"):
        embedserve.Scheduler  # noqa: B018 - private by convention, not exported


def test_encode_matches_sentence_transformers(
    embedder: embedserve.Embedder, reference: np.ndarray
) -> None:
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    cosines = (vectors * reference[:4]).sum(axis=1) / np.linalg.norm(reference[:4], axis=1)
    assert cosines.min() >= 0.99999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_encode_shapes_options_and_long_inputs(
    embedder: embedserve.Embedder, reference: np.ndarray
) -> None:
    single = embedder.encode(TEXTS[2])
    assert single.shape == (384,)
    assert np.allclose(single, embedder.encode(TEXTS)[2], atol=1e-6)
    assert embedder.encode([]).shape == (0, 384)
    # Many texts in small engine requests come back in order.
    many = [f"text number {i}" for i in range(70)]
    assert np.allclose(embedder.encode(many, batch_size=8), embedder.encode(many), atol=1e-5)
    # Over-long input: cut to the model's length as sentence-transformers does, or refused.
    long = embedder.encode(["word " * 400])[0]
    assert float(long @ reference[4]) / float(np.linalg.norm(reference[4])) >= 0.9999
    with pytest.raises(InvalidRequest, match="256"):
        embedder.encode(["word " * 400], truncate=False)
    with pytest.raises(InvalidRequest, match="dimensions"):
        embedder.encode(["x"], dimensions=64)  # not a matryoshka model


async def test_async_engine_serves_several_models(onnx_cache_dir: Path) -> None:
    cls = embedserve.ModelSettings(served_names=("cls",), pooling="cls")
    mean = embedserve.ModelSettings(served_names=("mean",))
    async with embedserve.Engine.from_models([mean, cls], cache_dir=onnx_cache_dir) as engine:
        a = await engine.embed(["hello"], model="mean")
        b = await engine.embed("hello", model="cls")
        assert (a.model, b.model) == ("mean", "cls")
        assert a.vectors.shape == b.vectors.shape == (1, 384)
        assert float(a.vectors[0] @ b.vectors[0]) < 0.99
        assert a.prompt_tokens == 3
    assert not engine.loaded


async def test_engine_from_models_defaults_to_the_bundled_model(onnx_cache_dir: Path) -> None:
    async with embedserve.Engine.from_models(cache_dir=onnx_cache_dir, max_batch_tokens=512) as e:
        assert e.served_ids() == [BUNDLED_MODEL_ID]
        assert e.runners[0].limits.max_batch_tokens == 512
        result = await e.embed(["x", "y"], dimensions=384)
        assert result.vectors.shape == (2, 384)


def test_the_readme_one_liner(onnx_cache_dir: Path) -> None:
    code = "import embedserve; v = embedserve.Embedder().encode(['a', 'b']); print(v.shape)"
    env = {**os.environ, "EMBEDSERVE_CACHE_DIR": str(onnx_cache_dir)}
    command = [sys.executable, "-c", code]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2, 384)"


def test_encode_passes_the_per_request_fields(embedder: embedserve.Embedder) -> None:
    unit = embedder.encode(TEXTS)
    raw = embedder.encode(TEXTS, normalize=False)
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1) > 1e-3)
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-6)
    assert np.array_equal(embedder.encode(TEXTS, input_type="query"), unit)  # no prompts here
    with pytest.raises(InvalidRequest, match="its prompts: none"):
        embedder.encode(TEXTS, prompt_name="query")

"""sentence-transformers metadata in config_sentence_transformers.json: the default prompt is
prepended and `truncate_dim` sets the default output size, so the server matches
`SentenceTransformer(path).encode(texts)`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embedserve.engine import EmbedResult
from embedserve.models import load_model_spec
from embedserve.settings import ModelSettings
from embedserve.testing import embed_in_process
from embedserve.tokenization import TextTokenizer
from tests.models.tiny_models import build_bert

TEXTS = ["what is a prompt?", "a passage about prompts and prefixes", "ok"]


@pytest.fixture(scope="module")
def prompted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prompted")
    base = build_bert(root / "base", pooling="mean")
    model = SentenceTransformer(
        str(base),
        device="cpu",
        prompts={"query": "query: ", "passage": "passage: "},
        default_prompt_name="query",
        truncate_dim=8,
    )
    model.save(str(root / "model"))
    return root / "model"


def embed(path: Path, backend: str, cache_dir: Path, dimensions: int | None) -> EmbedResult:
    settings = ModelSettings(path=path, backend=backend)
    return embed_in_process(settings, cache_dir, texts=TEXTS, dimensions=dimensions)[1]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_spec_reads_prompt_and_truncate_dim(prompted: Path) -> None:
    spec = load_model_spec(prompted)
    assert (spec.default_prompt, spec.default_dimensions) == ("query: ", 8)
    assert spec.matryoshka and spec.output_dimensions == 8 and spec.dimension == 32


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_default_output_matches_sentence_transformers(
    prompted: Path, onnx_cache_dir: Path, backend: str
) -> None:
    reference = SentenceTransformer(str(prompted), device="cpu").encode(TEXTS)
    assert reference.shape == (3, 8)
    result = embed(prompted, backend, onnx_cache_dir, dimensions=None)
    assert result.vectors.shape == (3, 8)
    assert cosines(result.vectors, reference).min() >= 0.99999
    tokenizer = TextTokenizer(load_model_spec(prompted))
    prompted_tokens = sum(len(ids) for ids in tokenizer.encode(["query: " + t for t in TEXTS]))
    assert result.prompt_tokens == prompted_tokens  # usage counts the prompt's tokens too


def test_native_dimensions_still_available(prompted: Path, onnx_cache_dir: Path) -> None:
    full = SentenceTransformer(str(prompted), device="cpu", truncate_dim=32).encode(TEXTS)
    result = embed(prompted, "onnx", onnx_cache_dir, dimensions=32)
    assert result.vectors.shape == (3, 32)
    assert cosines(result.vectors, full).min() >= 0.99999

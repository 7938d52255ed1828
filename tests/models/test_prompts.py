"""Prompts per request on a tiny model declaring `query` and `document` prompts: vectors equal
sentence-transformers `encode(..., prompt_name=...)`, for every way of choosing the prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embedserve.engine import Engine
from embedserve.errors import InvalidRequest
from embedserve.settings import ModelSettings
from embedserve.tokenization import TextTokenizer
from tests.models.tiny_models import build_bert

TEXTS = ["what is a prompt?", "a passage about prompts and prefixes", "ok"]
PROMPTS = {"query": "query: ", "document": "document: ", "clustering": "cluster this: "}


@pytest.fixture(scope="module")
def prompted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prompts")
    base = build_bert(root / "base", pooling="mean")
    model = SentenceTransformer(str(base), device="cpu", prompts=PROMPTS)
    model.save(str(root / "model"))
    return root / "model"


@pytest.fixture(scope="module")
def reference(prompted: Path) -> SentenceTransformer:
    return SentenceTransformer(str(prompted), device="cpu")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize(
    "case",
    [
        ({}, None),  # no default prompt declared: none
        ({"prompt_name": "query"}, "query"),
        ({"prompt_name": "document"}, "document"),
        ({"input_type": "query"}, "query"),
        ({"input_type": "search_query"}, "query"),
        ({"input_type": "document"}, "document"),
        ({"input_type": "search_document"}, "document"),
        ({"input_type": "clustering"}, "clustering"),
        ({"input_type": "classification"}, None),  # no such prompt: adds none
        ({"input_type": "document", "prompt_name": "document"}, "document"),
    ],
)
async def test_vectors_and_usage_match_sentence_transformers(
    prompted: Path,
    reference: SentenceTransformer,
    onnx_cache_dir: Path,
    backend: str,
    case: tuple[dict[str, str], str | None],
) -> None:
    request_fields, st_prompt_name = case
    settings = ModelSettings(path=prompted, backend=backend)
    async with Engine.from_models(settings, cache_dir=onnx_cache_dir) as engine:
        result = await engine.embed(TEXTS, **request_fields)
        tokenized = await engine.tokenize(TEXTS, **request_fields)
    if st_prompt_name is None:
        expected = reference.encode(TEXTS, prompt="")
        prompt = ""
    else:
        expected = reference.encode(TEXTS, prompt_name=st_prompt_name)
        prompt = PROMPTS[st_prompt_name]
    assert cosines(result.vectors, expected).min() >= 0.99999
    tokenizer = TextTokenizer(engine.runners[0].spec)
    prompted_tokens = tokenizer.encode([prompt + text for text in TEXTS])
    assert result.prompt_tokens == sum(len(ids) for ids in prompted_tokens)  # usage: the prompt too
    assert tokenized.tokens == prompted_tokens  # /tokenize sees what the model sees


async def test_models_file_prompts_and_default(prompted: Path, onnx_cache_dir: Path) -> None:
    settings = ModelSettings(
        path=prompted,
        prompts={"query": "search: ", "passage": "text: "},
        default_prompt_name="query",
    )
    async with Engine.from_models(settings, cache_dir=onnx_cache_dir) as engine:
        (info,) = engine.models()
        assert info.prompts == {**PROMPTS, "query": "search: ", "passage": "text: "}
        assert info.default_prompt_name == "query"
        assert info.input_types["document"] == "document"  # `document` before `passage`
        assert info.input_types["classification"] is None
        default = await engine.embed(TEXTS)
        explicit = await engine.embed(TEXTS, prompt_name="query")
        typed = await engine.embed(TEXTS, input_type="query")
        assert np.array_equal(default.vectors, explicit.vectors)
        assert np.array_equal(default.vectors, typed.vectors)
        none = await engine.embed(TEXTS, input_type="classification")  # no prompt, not the default
        assert not np.allclose(none.vectors, default.vectors, atol=1e-3)


async def test_prompt_errors(prompted: Path, onnx_cache_dir: Path) -> None:
    async with Engine.from_models(prompted, cache_dir=onnx_cache_dir) as engine:
        with pytest.raises(
            InvalidRequest, match=r"no prompt named 'passage'.*: clustering, document, query"
        ):
            await engine.embed(TEXTS, prompt_name="passage")
        with pytest.raises(
            InvalidRequest, match=r"selects the prompt 'query' .* asks for 'document'"
        ):
            await engine.embed(TEXTS, input_type="query", prompt_name="document")
        with pytest.raises(
            InvalidRequest, match=r"'classification' adds no prompt .* asks for 'query'"
        ):
            await engine.embed(TEXTS, input_type="classification", prompt_name="query")
        with pytest.raises(InvalidRequest, match="token ids are fed as given"):
            await engine.embed(token_ids=[[101, 102]], prompt_name="query")
        # token ids with an input_type: no prompt, no error (SDKs send input_type always)
        ids = await engine.embed(token_ids=[[101, 2000, 102]], input_type="query")
        assert ids.prompt_tokens == 3


async def test_normalize_false_returns_the_pooled_vector(onnx_cache_dir: Path) -> None:
    async with Engine.from_models(cache_dir=onnx_cache_dir) as engine:
        unit = await engine.embed(TEXTS)
        raw = await engine.embed(TEXTS, normalize=False)
    norms = np.linalg.norm(raw.vectors, axis=1)
    assert np.all(np.abs(norms - 1) > 1e-3)  # the bundled model's pooled vectors are not unit
    np.testing.assert_allclose(raw.vectors / norms[:, None], unit.vectors, atol=1e-6)

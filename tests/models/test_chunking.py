"""CHUNK on the bundled model: one vector per long text equals the token-weighted mean of the
windows' pooled vectors computed by hand with sentence-transformers' own modules, normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from embedserve.engine import Engine
from embedserve.errors import InvalidRequest
from embedserve.models import bundled_model_path
from embedserve.settings import ModelSettings
from tests.models.corpus import OVERLONG

MAX_LENGTH = 256


@pytest.fixture(scope="module")
def st_model() -> SentenceTransformer:
    return SentenceTransformer(str(bundled_model_path()), device="cpu")


def reference_vector(model: SentenceTransformer, text: str, overlap: int) -> tuple[np.ndarray, int]:
    """Windows of the text's content tokens, [CLS]/[SEP] around each, pooled by the model's
    Transformer and Pooling modules (no Normalize), averaged by token count, normalised."""
    tokenizer = model.tokenizer
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    room, start, windows = MAX_LENGTH - 2, 0, []
    while True:
        windows.append(
            [tokenizer.cls_token_id, *content[start : start + room], tokenizer.sep_token_id]
        )
        if start + room >= len(content):
            break
        start += room - overlap
    pooled, weights = [], []
    with torch.no_grad():
        for ids in windows:
            features = {
                "input_ids": torch.tensor([ids]),
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                "token_type_ids": torch.zeros(1, len(ids), dtype=torch.long),
            }
            output = model[1](model[0](features))  # Transformer, then Pooling
            pooled.append(output["sentence_embedding"][0].numpy())
            weights.append(len(ids))
    mean = np.average(np.stack(pooled), axis=0, weights=weights)
    return mean / np.linalg.norm(mean), sum(weights)


@pytest.mark.parametrize("overlap", [0, 32])
async def test_chunked_vectors_equal_the_hand_computed_mean(
    st_model: SentenceTransformer, onnx_cache_dir: Path, overlap: int
) -> None:
    texts = [*OVERLONG[:2], "a short text fits one window"]
    settings = ModelSettings(chunk_overlap=overlap)
    async with Engine.from_models(settings, cache_dir=onnx_cache_dir) as engine:
        result = await engine.embed(texts, truncate="CHUNK")
    expected = [reference_vector(st_model, text, overlap) for text in texts]
    for row, (vector, _) in zip(result.vectors, expected, strict=True):
        assert float(row @ vector) >= 0.99999
    assert result.prompt_tokens == sum(tokens for _, tokens in expected)  # every window token
    short = st_model.encode(texts[2:])
    assert float(result.vectors[2] @ short[0]) >= 0.99999  # one window: the plain vector


async def test_chunking_a_long_text_uses_several_windows(onnx_cache_dir: Path) -> None:
    text = OVERLONG[0]
    async with Engine.from_models(cache_dir=onnx_cache_dir) as engine:
        whole = (await engine.embed([text], truncate="CHUNK")).vectors[0]
        start = (await engine.embed([text], truncate="END")).vectors[0]
        with pytest.raises(InvalidRequest, match="CHUNK but `truncate_prompt_tokens`"):
            await engine.embed([text], truncate="CHUNK", truncate_prompt_tokens=-1)
    assert 0.5 < float(whole @ start) < 0.9999  # the rest of the text moved the vector
    assert abs(np.linalg.norm(whole) - 1) < 1e-5


def test_an_overlap_without_room_stops_the_start(onnx_cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="--chunk-overlap 254 must be below the 254"):
        Engine.from_models(ModelSettings(chunk_overlap=254), cache_dir=onnx_cache_dir)

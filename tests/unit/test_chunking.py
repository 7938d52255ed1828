"""CHUNK: windows over texts and token ids, and pooling the windows back into one vector."""

from __future__ import annotations

import numpy as np
import pytest

from embedserve.models import ModelSpec
from embedserve.postprocess import pool_windows
from embedserve.tokenization import TextTokenizer
from embedserve.truncation import Truncation, resolve_truncation, split_windows


def test_split_windows_cover_everything_with_the_overlap() -> None:
    ids = list(range(10))
    assert split_windows(ids, 4, 0) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert split_windows(ids, 4, 1) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert split_windows(ids, 10, 3) == [ids]
    assert split_windows([1], 4, 2) == [[1]]


def test_text_windows_carry_the_special_tokens(bundled_spec: ModelSpec) -> None:
    tokenizer = TextTokenizer(bundled_spec)
    text = "one two three four five six seven eight nine ten"
    (content,) = tokenizer.encode([text], add_special_tokens=False)
    (windows,) = tokenizer.encode_windows([text], window=6, overlap=1)
    assert all(len(w) <= 6 and w[0] == 101 and w[-1] == 102 for w in windows)
    inner = [w[1:-1] for w in windows]
    assert inner[0] == content[:4] and inner[1] == content[3:7] and inner[2] == content[6:]
    (short,) = tokenizer.encode_windows(["short"], window=6, overlap=1)
    assert short == tokenizer.encode(["short"])
    with pytest.raises(ValueError, match="no room"):
        tokenizer.encode_windows([text], window=6, overlap=4)


def test_pool_windows_is_the_token_weighted_mean() -> None:
    rows = np.array([[1, 0], [0, 1], [2, 2], [5, 5]], dtype=np.float32)
    pooled = pool_windows(rows, groups=[2, 1, 1], weights=[3, 1, 7, 2])
    np.testing.assert_allclose(pooled, [[0.75, 0.25], [2, 2], [5, 5]])


def test_chunk_mode_resolution() -> None:
    assert resolve_truncation("CHUNK", None, 256, "NONE", 16) == Truncation(chunk_overlap=16)
    assert resolve_truncation(None, None, 256, "CHUNK") == Truncation(chunk_overlap=0)
    assert resolve_truncation(None, None, 256, "CHUNK").chunked
    assert not resolve_truncation("END", None, 256, "CHUNK").chunked

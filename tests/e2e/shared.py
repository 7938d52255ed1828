"""What the real-client tests share: the reference vectors (sentence-transformers), the
clients of the session's real server, and comparisons."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from embedserve.bench.loadgen import LoadSettings, run_load
from embedserve.bench.workloads import generate_texts
from embedserve.models import BUNDLED_MODEL_ALIASES, BUNDLED_MODEL_ID, bundled_model_path

FloatArray = npt.NDArray[np.float32]


MODEL_ID = BUNDLED_MODEL_ID

# EMBEDSERVE_LONG_TESTS=1: the longer tests run at their full size (CI runs the bounded one)
LONG_TESTS = os.environ.get("EMBEDSERVE_LONG_TESTS") == "1"


MODEL_ALIAS = BUNDLED_MODEL_ALIASES[0]


DIMENSION = 384


MAX_TOKENS = 256


MIN_COSINE = 0.99999


TIMEOUT_S = 120.0


TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "café naïve résumé — 東京 と 北京 😀",
    "Order #12345 costs $99.99   (plus\t20% VAT)!",
    "Embeddings map text to dense vectors; similar meanings land close together. " * 6,
]


class Reference:
    """sentence-transformers on the bundled model, with a cache per text."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(bundled_model_path()), device="cpu")
        self._vectors: dict[str, FloatArray] = {}

    def vectors(self, texts: Sequence[str]) -> FloatArray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            # The model's Normalize module runs even with normalize_embeddings=False.
            encoded = self.model.encode(missing, batch_size=16, normalize_embeddings=False)
            for text, vector in zip(missing, encoded, strict=True):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
        return np.stack([self._vectors[text] for text in texts])

    def token_count(self, texts: Sequence[str]) -> int:
        ids = self.model.tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS)
        return sum(len(row) for row in ids["input_ids"])

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = self.model.tokenizer(text)["input_ids"]
        return ids


def as_array(vectors: Any) -> FloatArray:
    return np.asarray(vectors, dtype=np.float32)


def cosines(actual: Any, expected: Any) -> npt.NDArray[np.float64]:
    """Cosine of row i of `actual` with row i of `expected`."""
    a = np.atleast_2d(np.asarray(actual, dtype=np.float64))
    b = np.atleast_2d(np.asarray(expected, dtype=np.float64))
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = np.sum(a * b, axis=1)
    return result


def assert_matches_reference(actual: Any, expected: Any, minimum: float = MIN_COSINE) -> None:
    array = as_array(actual)
    assert array.shape == np.shape(expected)
    found = cosines(array, expected)
    assert found.min() >= minimum, f"cosines {np.round(found, 8).tolist()} (minimum {minimum})"
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)


def embed_vectors(response: Any) -> FloatArray:
    """The vectors of an SDK response, after checking `index` order."""
    assert [item.index for item in response.data] == list(range(len(response.data)))
    return as_array([item.embedding for item in response.data])


def post_embeddings(http: httpx.Client, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = http.post("/v1/embeddings", json=body, **kwargs)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


_WORD_TEXT = (
    "river mountain city people time year school family student country problem water room "
    "money story month study book job business house service friend power game team minute "
    "idea body information office door health person art history party result morning reason "
    "research moment teacher education garden music window summer winter train bridge market"
)


_WORDS = _WORD_TEXT.split()


def concurrent_cases(count: int = 64, seed: int = 64) -> list[str | list[str]]:
    """`count` request inputs: every third a single string, the others lists of 2-3 texts; each
    text unique (it names its request and item) and of a random length (a few to ~180 words)."""
    rng = random.Random(seed)

    def text(request: int, item: int) -> str:
        size = rng.choice((rng.randint(1, 6), rng.randint(15, 40), rng.randint(90, 180)))
        words = " ".join(rng.choice(_WORDS) for _ in range(size))
        return f"request {request} item {item}: {words}"

    cases: list[str | list[str]] = []
    for request in range(count):
        if request % 3 == 0:
            cases.append(text(request, 0))
        else:
            cases.append([text(request, item) for item in range(rng.randint(2, 3))])
    return cases


def as_texts(case: str | list[str]) -> list[str]:
    return [case] if isinstance(case, str) else case


def response_vectors(payload: dict[str, Any]) -> FloatArray:
    data = payload["data"]
    assert [item["index"] for item in data] == list(range(len(data)))
    return as_array([item["embedding"] for item in data])


def assert_bounded_load_never_refused(
    base_url: str, *, in_flight: int, inputs: int, seed: int, label: str
) -> None:
    """`in_flight` requests at once of `inputs` mixed texts each, without retries (a bounded
    indexer, as OVMS' demo client is): every one is answered 200."""
    report = run_load(
        LoadSettings(
            url=base_url,
            texts=generate_texts("mixed", 2000, seed=seed),
            concurrency=in_flight,
            requests=in_flight,
            inputs_per_request=inputs,
            encoding="base64",
            warmup=0,
            timeout_s=300,
            progress=False,
        ),
        label,
    )
    assert report.errors == {}, report.errors
    assert report.requests == in_flight

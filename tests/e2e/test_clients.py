"""Real clients (the openai SDK, LangChain, raw httpx) against a real `embedserve serve` process."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import langchain_openai
import numpy as np
import numpy.typing as npt
import openai
import pytest

from embedserve.models import BUNDLED_MODEL_ALIASES, BUNDLED_MODEL_ID, bundled_model_path
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

FloatArray = npt.NDArray[np.float32]
MODEL_ID = BUNDLED_MODEL_ID
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


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference()


@pytest.fixture(scope="module")
def client(real_server: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=real_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(real_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_server.base_url, timeout=TIMEOUT_S) as raw:
        yield raw


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


# --- the official openai SDK --------------------------------------------------------------------


def test_openai_default_base64_and_float_agree_and_match_reference(
    client: openai.OpenAI, reference: Reference
) -> None:
    raw = client.embeddings.with_raw_response.create(model=MODEL_ID, input=TEXTS)
    assert b'"encoding_format":"base64"' in raw.http_request.content.replace(b" ", b"")
    default = raw.parse()
    floats = client.embeddings.create(model=MODEL_ID, input=TEXTS, encoding_format="float")

    default_vectors, float_vectors = embed_vectors(default), embed_vectors(floats)
    assert default_vectors.shape == (len(TEXTS), DIMENSION)
    np.testing.assert_array_equal(default_vectors, float_vectors)
    assert_matches_reference(default_vectors, reference.vectors(TEXTS))
    for response in (default, floats):
        assert response.object == "list"
        assert response.model == MODEL_ID
        assert response.usage.prompt_tokens == reference.token_count(TEXTS)
        assert response.usage.total_tokens == response.usage.prompt_tokens


def test_openai_single_string_input(client: openai.OpenAI, reference: Reference) -> None:
    response = client.embeddings.create(model=MODEL_ID, input=TEXTS[1])
    assert len(response.data) == 1
    assert_matches_reference(embed_vectors(response), reference.vectors([TEXTS[1]]))
    assert response.usage.prompt_tokens == reference.token_count([TEXTS[1]])


def test_openai_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    ids = [model.id for model in models]
    assert MODEL_ID in ids
    assert MODEL_ALIAS in ids
    assert all(model.object == "model" for model in models)

    # The SDK percent-encodes the slash of the id (sentence-transformers%2Fall-MiniLM-L6-v2).
    retrieved = client.models.retrieve(MODEL_ID)
    assert retrieved.id == MODEL_ID
    assert retrieved.object == "model"
    assert client.models.retrieve(MODEL_ALIAS).id == MODEL_ALIAS
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such/model")


def test_openai_alias_works_as_model(client: openai.OpenAI) -> None:
    by_alias = client.embeddings.create(model=MODEL_ALIAS, input=TEXTS[:3])
    by_id = client.embeddings.create(model=MODEL_ID, input=TEXTS[:3])
    assert by_alias.model == MODEL_ALIAS
    np.testing.assert_allclose(embed_vectors(by_alias), embed_vectors(by_id), atol=1e-6)


def test_openai_native_dimensions_accepted(client: openai.OpenAI) -> None:
    plain = client.embeddings.create(model=MODEL_ID, input=TEXTS[:2])
    sized = client.embeddings.create(model=MODEL_ID, input=TEXTS[:2], dimensions=DIMENSION)
    assert embed_vectors(sized).shape == (2, DIMENSION)
    np.testing.assert_allclose(embed_vectors(sized), embed_vectors(plain), atol=1e-6)


def test_openai_smaller_dimensions_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL_ID, input=TEXTS[:2], dimensions=128)
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_dimensions"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "invalid_dimensions"
    assert caught.value.body["param"] == "dimensions"


def test_openai_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "not_found_error"
    assert MODEL_ID in caught.value.body["message"]


async def test_async_openai_client(real_server: ServerProcess, reference: Reference) -> None:
    async with openai.AsyncOpenAI(
        base_url=real_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S
    ) as client:
        default, floats = await asyncio.gather(
            client.embeddings.create(model=MODEL_ID, input=TEXTS),
            client.embeddings.create(model=MODEL_ALIAS, input=TEXTS, encoding_format="float"),
        )
        ids = [model.id async for model in client.models.list()]
        retrieved = await client.models.retrieve(MODEL_ID)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model=MODEL_ID, input=TEXTS[0], dimensions=128)

    np.testing.assert_allclose(embed_vectors(default), embed_vectors(floats), atol=1e-6)
    assert_matches_reference(embed_vectors(default), reference.vectors(TEXTS))
    assert (default.model, floats.model) == (MODEL_ID, MODEL_ALIAS)
    assert default.usage.prompt_tokens == reference.token_count(TEXTS)
    assert {MODEL_ID, MODEL_ALIAS} <= set(ids)
    assert retrieved.id == MODEL_ID
    assert caught.value.code == "invalid_dimensions"


# --- LangChain ----------------------------------------------------------------------------------


def langchain_embeddings(server: ServerProcess) -> langchain_openai.OpenAIEmbeddings:
    return langchain_openai.OpenAIEmbeddings(
        model=MODEL_ID,
        base_url=server.base_url + "/v1",
        api_key="unused",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )


def test_langchain_embed_documents_and_query(
    real_server: ServerProcess, reference: Reference
) -> None:
    embeddings = langchain_embeddings(real_server)
    documents = embeddings.embed_documents(TEXTS)
    assert len(documents) == len(TEXTS)
    assert_matches_reference(documents, reference.vectors(TEXTS))
    query = embeddings.embed_query(TEXTS[1])
    assert len(query) == DIMENSION
    assert_matches_reference([query], reference.vectors([TEXTS[1]]))


async def test_langchain_async_embed_documents(
    real_server: ServerProcess, reference: Reference
) -> None:
    embeddings = langchain_embeddings(real_server)
    documents = await embeddings.aembed_documents(TEXTS[:4])
    assert_matches_reference(documents, reference.vectors(TEXTS[:4]))
    query = await embeddings.aembed_query(TEXTS[4])
    assert_matches_reference([query], reference.vectors([TEXTS[4]]))


# --- many concurrent requests -------------------------------------------------------------------

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


async def test_concurrent_requests_match_one_at_a_time(
    real_server: ServerProcess, reference: Reference
) -> None:
    cases = concurrent_cases()
    texts = [text for case in cases for text in as_texts(case)]
    assert len(set(texts)) == len(texts)
    limits = httpx.Limits(max_connections=len(cases), max_keepalive_connections=len(cases))
    async with httpx.AsyncClient(
        base_url=real_server.base_url, timeout=TIMEOUT_S, limits=limits
    ) as http:

        async def embed(value: str | list[str]) -> dict[str, Any]:
            response = await http.post("/v1/embeddings", json={"model": MODEL_ID, "input": value})
            assert response.status_code == 200, response.text
            payload: dict[str, Any] = response.json()
            return payload

        together = await asyncio.gather(*(embed(case) for case in cases))
        alone = [await embed(text) for text in texts]

    concurrent_vectors: list[FloatArray] = []
    for case, payload in zip(cases, together, strict=True):
        vectors = response_vectors(payload)
        assert vectors.shape == (len(as_texts(case)), DIMENSION)
        assert payload["usage"]["prompt_tokens"] == reference.token_count(as_texts(case))
        concurrent_vectors.extend(vectors)
    concurrent = np.stack(concurrent_vectors)
    sequential = np.concatenate([response_vectors(payload) for payload in alone])

    # Concurrent inputs are batched with other requests' inputs and padded to the longest one in
    # their batch, so the matrix shapes differ from a lone request and the last bits may move: hence
    # allclose and a cosine bound rather than exact equality.
    np.testing.assert_allclose(concurrent, sequential, atol=1e-6)
    assert cosines(concurrent, sequential).min() >= 0.999999
    assert_matches_reference(concurrent, reference.vectors(texts))
    # Every request got its own texts' vectors, not a neighbour's.
    similarity = concurrent.astype(np.float64) @ sequential.astype(np.float64).T
    assert np.array_equal(np.argmax(similarity, axis=1), np.arange(len(texts)))


# --- raw HTTP ---------------------------------------------------------------------------------


def test_base64_is_little_endian_float32_of_the_float_vector(
    http: httpx.Client, reference: Reference
) -> None:
    body = {"model": MODEL_ID, "input": TEXTS}
    encoded = post_embeddings(http, {**body, "encoding_format": "base64"})
    floats = post_embeddings(http, {**body, "encoding_format": "float"})
    default = post_embeddings(http, body)

    decoded = []
    for item in encoded["data"]:
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"], validate=True)
        assert len(raw) == 4 * DIMENSION
        decoded.append(np.frombuffer(raw, dtype="<f4"))
    decoded_vectors = np.stack(decoded)
    float_vectors = response_vectors(floats)
    assert all(isinstance(x, float) for x in floats["data"][0]["embedding"])
    np.testing.assert_array_equal(decoded_vectors, float_vectors)
    np.testing.assert_array_equal(response_vectors(default), float_vectors)  # float is default
    assert_matches_reference(decoded_vectors, reference.vectors(TEXTS))
    assert encoded["usage"] == floats["usage"]


def test_request_id_is_returned_and_echoed(http: httpx.Client) -> None:
    body = {"model": MODEL_ID, "input": "hello"}
    first = http.post("/v1/embeddings", json=body)
    second = http.post("/v1/embeddings", json=body)
    assert first.status_code == second.status_code == 200
    generated = [first.headers.get("x-request-id"), second.headers.get("x-request-id")]
    assert all(generated), generated
    assert generated[0] != generated[1]

    sent = "client-trace-0123456789"
    echoed = http.post("/v1/embeddings", json=body, headers={"x-request-id": sent})
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == sent
    failed = http.post(
        "/v1/embeddings", json={**body, "model": "nope"}, headers={"X-Request-ID": sent}
    )
    error_of(failed, 404)
    assert failed.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "extra",
    [
        {"trace": "abc", "nested": {"list": [1, 2.5, None, True], "text": "東京 😀"}},
        ["a", 1, None],
        "just a string",
        0,
    ],
)
def test_additional_data_is_echoed(http: httpx.Client, extra: Any) -> None:
    payload = post_embeddings(
        http, {"model": MODEL_ID, "input": ["hi", "there"], "additional_data": extra}
    )
    assert payload["additional_data"] == extra
    assert len(payload["data"]) == 2


def test_extra_body_keys_are_applied(http: httpx.Client, reference: Reference) -> None:
    text = TEXTS[2]
    encoded = post_embeddings(
        http, {"model": MODEL_ID, "input": [text], "extra_body": {"encoding_format": "base64"}}
    )
    assert isinstance(encoded["data"][0]["embedding"], str)

    truncated = post_embeddings(
        http, {"model": MODEL_ID, "input": [text], "extra_body": {"truncate_prompt_tokens": 5}}
    )
    assert truncated["usage"]["prompt_tokens"] == 5
    ids = reference.token_ids(text)
    kept = [*ids[:4], ids[-1]]  # truncation keeps [CLS] ... [SEP]
    by_ids = post_embeddings(http, {"model": MODEL_ID, "input": [kept]})
    np.testing.assert_allclose(response_vectors(truncated), response_vectors(by_ids), atol=1e-6)
    full = response_vectors(post_embeddings(http, {"model": MODEL_ID, "input": [text]}))
    assert cosines(response_vectors(truncated), full)[0] < 0.99

    rejected = http.post(
        "/v1/embeddings",
        json={"model": MODEL_ID, "input": [text], "extra_body": {"dimensions": 128}},
    )
    assert error_of(rejected, 400)["code"] == "invalid_dimensions"

    conflict = http.post(
        "/v1/embeddings",
        json={
            "model": MODEL_ID,
            "input": [text],
            "encoding_format": "float",
            "extra_body": {"encoding_format": "base64"},
        },
    )
    assert error_of(conflict, 400)["type"] == "invalid_request_error"


def test_data_is_in_input_order(http: httpx.Client, reference: Reference) -> None:
    texts = [TEXTS[5], TEXTS[0], "zebra", TEXTS[3], "a second short one", TEXTS[1]]
    payload = post_embeddings(http, {"model": MODEL_ID, "input": texts})
    assert [item["index"] for item in payload["data"]] == list(range(len(texts)))
    assert all(item["object"] == "embedding" for item in payload["data"])
    vectors = response_vectors(payload)
    expected = reference.vectors(texts)
    assert_matches_reference(vectors, expected)
    similarity = vectors.astype(np.float64) @ expected.astype(np.float64).T
    assert np.array_equal(np.argmax(similarity, axis=1), np.arange(len(texts)))


@pytest.mark.parametrize("name", [MODEL_ID, MODEL_ALIAS])
def test_model_field_echoes_the_requested_name(http: httpx.Client, name: str) -> None:
    payload = post_embeddings(http, {"model": name, "input": "hello"})
    assert payload["model"] == name
    assert payload["object"] == "list"


def test_model_may_be_omitted_with_one_model(http: httpx.Client) -> None:
    payload = post_embeddings(http, {"input": "hello"})
    assert payload["model"] == MODEL_ID


@pytest.mark.parametrize(
    "path", ["/v1/models/sentence-transformers%2Fall-MiniLM-L6-v2", f"/v1/models/{MODEL_ID}"]
)
def test_model_retrieve_with_raw_or_encoded_slash(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == MODEL_ID

"""Every response body, declared once as a typed dict: the routes build the wire bodies from
these (serialised by orjson, numpy rows included) and the OpenAPI document is generated from
the same declarations."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, WithJsonSchema
from typing_extensions import TypedDict

from embedserve.encodings import encode_rows
from embedserve.engine import EmbedResult, TokenizeResult
from embedserve.runner import ModelInfo

# Floats (numpy rows on the wire) or base64 of little-endian float32.
_VECTOR_SCHEMA = {"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}]}


class EmbeddingObject(TypedDict):
    """One vector of the response."""

    object: Literal["embedding"]
    index: int
    embedding: Annotated[Any, WithJsonSchema(_VECTOR_SCHEMA)]


class Usage(TypedDict):
    """Tokens fed to the model, special tokens included."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(TypedDict):
    """Body of a successful `POST /v1/embeddings`."""

    object: Literal["list"]
    data: list[EmbeddingObject]
    model: str
    usage: Usage
    additional_data: NotRequired[Annotated[Any, Field(description="the request's, unchanged")]]


class TokenizeItem(TypedDict):
    """Token ids of one input."""

    index: int
    tokens: list[int]
    count: int


class TokenizeResponse(TypedDict):
    """Body of a successful `POST /tokenize`."""

    model: str
    data: list[TokenizeItem]
    tokens: Annotated[
        list[int] | list[list[int]],
        Field(description="the ids of a string input, or one list per input of a list input"),
    ]
    count: Annotated[int, Field(description="tokens over all inputs")]
    max_model_len: int


class ModelCard(TypedDict):
    """An OpenAI model object with embedding-specific fields."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    root: str
    aliases: list[str]
    max_model_len: int
    dimensions: int
    pooling: str
    normalized: bool
    matryoshka: bool
    backend: str
    device: str
    ready: bool
    prompts: Annotated[dict[str, str], Field(description="prompt name -> text prepended")]
    default_prompt_name: Annotated[
        str | None, Field(description="the prompt of a request that names none")
    ]
    input_types: Annotated[
        dict[str, str | None], Field(description="input_type -> the prompt name it selects")
    ]
    deterministic: Annotated[bool, Field(description="vectors independent of batching")]
    cache_entries: Annotated[int, Field(description="result cache size (0: off)")]
    task: Annotated[Literal["embed", "rerank"], Field(description="embeddings, or pair scores")]


class ModelList(TypedDict):
    """Body of `GET /v1/models`: every served id and alias."""

    object: Literal["list"]
    data: list[ModelCard]


class HealthStatus(TypedDict):
    """Body of a 200 `GET /health`."""

    status: Literal["ok"]


class Liveness(TypedDict):
    """Body of `GET /v2/health/live`."""

    live: Literal[True]


class Readiness(TypedDict):
    """Body of a 200 `GET /v2/health/ready`."""

    ready: Literal[True]


class ModelReadiness(TypedDict):
    """Body of a 200 `GET /v2/models/{name}/ready`."""

    name: str
    ready: Literal[True]


class ErrorDetail(TypedDict):
    """The OpenAI error object."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(TypedDict):
    """The OpenAI error envelope, used for every non-2xx response."""

    error: ErrorDetail


def embedding_response(result: EmbedResult, encoding: str | None, extra: Any) -> EmbeddingResponse:
    """The OpenAI response object."""
    body = EmbeddingResponse(
        object="list",
        data=[
            EmbeddingObject(object="embedding", index=index, embedding=vector)
            for index, vector in enumerate(encode_rows(result.vectors, encoding, result.dtype))
        ],
        model=result.model,
        usage=Usage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
    if extra is not None:
        body["additional_data"] = extra
    return body


def tokenize_response(result: TokenizeResult, single: bool) -> TokenizeResponse:
    """Ids per input; `tokens` is flat for a string input."""
    return TokenizeResponse(
        model=result.model,
        data=[
            TokenizeItem(index=index, tokens=ids, count=len(ids))
            for index, ids in enumerate(result.tokens)
        ],
        tokens=result.tokens[0] if single else result.tokens,
        count=sum(len(ids) for ids in result.tokens),
        max_model_len=result.max_model_len,
    )


def model_card(info: ModelInfo, name: str) -> ModelCard:
    """The model object of one served id or alias."""
    return ModelCard(
        id=name,
        object="model",
        created=info.created,
        owned_by="embedserve",
        root=info.id,
        aliases=list(info.aliases),
        max_model_len=info.max_model_len,
        dimensions=info.dimensions,
        pooling=info.pooling,
        normalized=info.normalized,
        matryoshka=info.matryoshka,
        backend=info.backend,
        device=info.device,
        ready=info.ready,
        prompts=info.prompts,
        default_prompt_name=info.default_prompt_name,
        input_types=info.input_types,
        deterministic=info.deterministic,
        cache_entries=info.cache_entries,
        task="rerank" if info.task == "rerank" else "embed",
    )


def error_body(message: str, type_: str, code: str | None, param: str | None) -> ErrorResponse:
    """The OpenAI error envelope."""
    return ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code))

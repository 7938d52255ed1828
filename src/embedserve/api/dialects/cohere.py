"""Cohere's `POST /v2/embed`: texts (or text-only `inputs`) with `input_type`, several
`embedding_types` at once (computed once), `truncate`, `output_dimension` and `max_tokens`."""

from __future__ import annotations

import base64
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.responses import Response

from embedserve.api.dialects.common import embed, served_name, validated
from embedserve.api.handling import json_response, slots_of
from embedserve.api.request_body import parse_texts, read_json_object
from embedserve.errors import InvalidRequest
from embedserve.params import EmbedParams

router = APIRouter(tags=["cohere"], include_in_schema=False)  # see docs/api.md
EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]
OUR_DTYPE = {"float": "float32", "base64": "float32"}  # the others keep their names


class CohereTextContent(BaseModel):
    """One part of an `inputs` item; only text is served."""

    type: Literal["text"]
    text: StrictStr


class CohereInput(BaseModel):
    """An `inputs` item: one text part (images are not served)."""

    content: list[CohereTextContent] = Field(min_length=1, max_length=1)


class CohereEmbedRequest(BaseModel):
    """`/v2/embed` less `texts` (read by `parse_texts`)."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    inputs: list[CohereInput] | None = None
    images: list[Any] | None = None
    input_type: (
        Literal["search_document", "search_query", "classification", "clustering"] | None
    ) = None
    embedding_types: list[EmbeddingType] | None = None
    truncate: Literal["NONE", "START", "END"] = "END"
    output_dimension: StrictInt | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)


def texts_of(data: dict[str, Any], parsed: CohereEmbedRequest) -> list[str]:
    """The texts of `texts` or of text-only `inputs` (exactly one of them)."""
    if parsed.images:
        raise InvalidRequest("images are not served; send `texts`", param="images")
    texts = parse_texts(data.get("texts"), "texts")
    if (texts is None) == (parsed.inputs is None):
        raise InvalidRequest("send `texts` or `inputs` (one of them)", param="texts")
    return texts if texts is not None else [item.content[0].text for item in parsed.inputs or []]


@router.post("/v2/embed", summary="Cohere: embed")
async def cohere_embed(request: Request) -> Response:
    """`{model, texts, input_type, embedding_types, truncate, output_dimension, max_tokens}` ->
    `{id, embeddings: {type: [...]}, texts, meta, response_type}`."""
    with slots_of(request).hold():
        data = await read_json_object(request)
        parsed = validated(CohereEmbedRequest, data, skip=("texts",))
        texts = texts_of(data, parsed)
        if parsed.max_tokens is not None and parsed.truncate == "NONE":
            raise InvalidRequest(
                "`max_tokens` cuts inputs, which `truncate: NONE` forbids; send START or END",
                param="max_tokens",
            )
        kinds = list(dict.fromkeys(parsed.embedding_types or ["float"]))
        params = EmbedParams(
            texts=texts,
            model=served_name(request, parsed.model),
            dimensions=parsed.output_dimension,
            truncate=parsed.truncate,
            truncate_prompt_tokens=parsed.max_tokens,
            input_type=parsed.input_type,
            output_dtypes=tuple(dict.fromkeys(OUR_DTYPE.get(kind, kind) for kind in kinds)),
        )
        outcome = await embed(request, params)
        if isinstance(outcome, Response):
            return outcome
        embeddings: dict[str, Any] = {}
        for kind in kinds:
            vectors = outcome.by_dtype[OUR_DTYPE.get(kind, kind)]
            embeddings[kind] = [_b64(row) for row in vectors] if kind == "base64" else vectors
        return json_response(
            {
                "id": str(uuid.uuid4()),
                "embeddings": embeddings,
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": outcome.prompt_tokens},
                },
                "response_type": "embeddings_by_type",
            }
        )


def _b64(row: Any) -> str:
    return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")

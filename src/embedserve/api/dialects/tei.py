"""TEI's embedding routes: `POST /embed`, and `POST /` where TEI's clients (huggingface_hub's
`InferenceClient` given the server's URL) post, answering bare `[[float]]`; `GET /info`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr
from starlette.responses import Response

import embedserve
from embedserve.api.dialects.common import embed, served_name, validated
from embedserve.api.handling import engine_of, json_response, slots_of
from embedserve.api.request_body import parse_input, read_json_object
from embedserve.params import EmbedParams
from embedserve.truncation import from_tei

router = APIRouter(tags=["tei"], include_in_schema=False)  # dialect shapes: docs/api.md
PRECISION_NAMES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


class TeiEmbedRequest(BaseModel):
    """TEI's `/embed` body, less `inputs` (read by `parse_input`)."""

    model_config = ConfigDict(extra="ignore")

    truncate: StrictBool | None = None
    truncation_direction: Literal["left", "right", "Left", "Right"] | None = None
    prompt_name: StrictStr | None = None
    normalize: StrictBool = True
    dimensions: StrictInt | None = None
    model: StrictStr | None = None  # not TEI's: chooses among several served models


@router.post("/embed", summary="TEI: embed")
@router.post("/", include_in_schema=False)
async def tei_embed(request: Request) -> Response:
    """TEI `POST /embed`: `inputs` (text, texts, token ids) -> `[[float]]`; `normalize`
    defaults to true as in TEI, `truncate` to the model's default (`--truncate`)."""
    with slots_of(request).hold():
        data = await read_json_object(request)
        texts, token_ids = parse_input(data.get("inputs"), "inputs")
        parsed = validated(TeiEmbedRequest, data, skip=("inputs",))
        truncate = parsed.truncate
        params = EmbedParams(
            texts=texts,
            token_ids=token_ids,
            model=served_name(request, parsed.model),
            dimensions=parsed.dimensions,
            truncate=None if truncate is None else from_tei(truncate, parsed.truncation_direction),
            prompt_name=parsed.prompt_name,
            normalize=parsed.normalize,
        )
        outcome = await embed(request, params)
        if isinstance(outcome, Response):
            return outcome
        return json_response(outcome.vectors)


@router.get("/info", summary="TEI: model and router information")
async def tei_info(request: Request) -> Response:
    """TEI's `/info`, for the first served model (TEI serves one)."""
    engine = engine_of(request)
    runner = engine.runners[0]
    info, limits = runner.info(), runner.limits
    return json_response(
        {
            "model_id": info.id,
            "model_sha": None,
            "model_dtype": PRECISION_NAMES.get(runner.precision, runner.precision),
            "served_model_name": info.id,
            "model_type": {"embedding": {"pooling": info.pooling}},
            "max_concurrent_requests": slots_of(request).limit,
            "max_input_length": info.max_model_len,
            "max_batch_tokens": limits.max_batch_tokens,
            "max_batch_requests": limits.max_batch_size,
            "max_client_batch_size": limits.max_client_batch_size,
            "auto_truncate": runner.truncate != "NONE",
            "tokenization_workers": engine.tokenizers.threads,
            "version": embedserve.__version__,
            "sha": None,
            "docker_label": None,
        }
    )

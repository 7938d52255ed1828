"""Route handlers: parse the body once, call the engine, encode the answer."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from embedserve.api.errors import error_response
from embedserve.api.handling import (
    deadline_of,
    engine_of,
    json_response,
    merge_extra_body,
    not_ready,
    readiness,
    run_unless_disconnected,
    slots_of,
)
from embedserve.api.request_body import (
    JSON,
    check_free_json,
    parse_input,
    parse_texts,
    read_json_object,
)
from embedserve.api.responses import (
    EmbeddingResponse,
    ErrorResponse,
    HealthStatus,
    Liveness,
    ModelList,
    ModelReadiness,
    Readiness,
    embedding_response,
    model_card,
    tokenize_response,
)
from embedserve.api.schemas import EmbeddingRequest, TokenizeRequest
from embedserve.api.validation import invalid_request
from embedserve.errors import InvalidRequest, ModelNotFound

EMBEDDING_PATHS = (
    "/v1/embeddings",
    "/embeddings",
    "/v3/embeddings",
    "/v3/v1/embeddings",
    "/v3/embeddings/embeddings",  # what OVMS' demo client posts to with its documented URL
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}


router = APIRouter()
_embeddings_docs: dict[str, Any] = {
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": EmbeddingRequest.model_json_schema()}},
        }
    },
    "response_model": EmbeddingResponse,
    "responses": _ERRORS,
    "summary": "Create embeddings",
    "tags": ["embeddings"],
}


async def create_embeddings(request: Request) -> Response:
    """OpenAI `POST /v1/embeddings` (and its aliases)."""
    with slots_of(request).hold():
        data = merge_extra_body(await read_json_object(request))
        texts, token_ids = parse_input(data.get("input"))
        for field in ("additional_data", "metadata"):
            check_free_json(data.get(field), field)
        try:  # every other field; `input` was checked above without pydantic's per-item cost
            parsed = EmbeddingRequest.model_validate({**data, "input": "-"})
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        params = dataclasses.replace(parsed.to_params(), texts=texts, token_ids=token_ids)
        work = engine_of(request).embed_params(params, deadline=deadline_of(request))
        outcome = await run_unless_disconnected(request, work)
        if isinstance(outcome, Response):
            return outcome
        body = embedding_response(outcome, parsed.encoding_format, parsed.additional_data)
        return json_response(body)


for _index, _path in enumerate(EMBEDDING_PATHS):
    router.add_api_route(
        _path,
        create_embeddings,
        methods=["POST"],
        include_in_schema=_index == 0,
        operation_id=f"create_embeddings_{_index}",
        **_embeddings_docs,
    )


@router.get("/v1/models", tags=["models"], responses=_ERRORS)
@router.get("/v3/models", tags=["models"], include_in_schema=False)
@router.get("/models", tags=["models"], include_in_schema=False)
async def list_models(request: Request) -> Response:
    """Every served id and alias."""
    cards = [
        model_card(info, name)
        for info in engine_of(request).models()
        for name in (info.id, *info.aliases)
    ]
    return json_response(ModelList(object="list", data=cards))


@router.get("/v1/models/{model_id:path}", tags=["models"], responses=_ERRORS)
@router.get("/v3/models/{model_id:path}", tags=["models"], include_in_schema=False)
@router.get("/models/{model_id:path}", tags=["models"], include_in_schema=False)
async def retrieve_model(request: Request, model_id: str) -> Response:
    """One model; ids may contain `/`, raw or as `%2F`."""
    runner = engine_of(request).resolve(model_id)
    return json_response(model_card(runner.info(), model_id))


@router.post("/tokenize", tags=["tokenize"], responses=_ERRORS)
async def tokenize(request: Request) -> Response:
    """Token ids and counts of each input, as the model sees them."""
    with slots_of(request).hold():
        data = await read_json_object(request)
        texts = parse_texts(data.get("input"), "input")
        if texts is None:
            texts = parse_texts(data.get("prompt"), "prompt")
        if texts is None:
            raise InvalidRequest("`input` is required", param="input")
        try:
            parsed = TokenizeRequest.model_validate({**data, "input": "-", "prompt": None})
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        value = data.get("input") if data.get("input") is not None else data.get("prompt")
        single = isinstance(value, str)
        work = engine_of(request).tokenize(
            texts,
            model=parsed.model,
            add_special_tokens=parsed.add_special_tokens,
            input_type=parsed.input_type,
            prompt_name=parsed.prompt_name,
        )
        result = await run_unless_disconnected(request, work)
        if isinstance(result, Response):
            return result
    return json_response(tokenize_response(result, single))


@router.get("/health", tags=["health"], responses={503: {"model": ErrorResponse}})
async def health(request: Request) -> Response:
    """200 once every model is loaded and warmed up; 503 before, while a model is failing, and
    while draining."""
    return readiness(request) or json_response(HealthStatus(status="ok"))


@router.get("/v2/health/live", tags=["health"], responses={503: {"model": ErrorResponse}})
async def live(request: Request) -> Response:
    """KServe liveness: the process answers and no device thread has died."""
    if engine_of(request).alive:
        return json_response(Liveness(live=True))
    return error_response(
        503,
        "a device thread has died; restart the server",
        type_="server_error",
        code="not_ready",
    )


@router.get("/v2/health/ready", tags=["health"], responses={503: {"model": ErrorResponse}})
async def ready(request: Request) -> Response:
    """KServe readiness of the whole server."""
    return readiness(request) or json_response(Readiness(ready=True))


@router.get("/v2/models/{name:path}/ready", tags=["health"], responses=_ERRORS)
async def model_ready(request: Request, name: str) -> Response:
    """KServe readiness of one model: 200, 503 not ready, 404 unknown. This probe needs no key,
    so its 404 lists the served ids only to authenticated clients."""
    engine = engine_of(request)
    try:
        is_ready = engine.is_model_ready(name)
    except ModelNotFound:
        if getattr(request.state, "authenticated", True):
            raise
        raise ModelNotFound(f"the model {name!r} does not exist", param="model") from None
    if is_ready:
        return json_response(ModelReadiness(name=name, ready=True))
    return readiness(request) or not_ready([f"model {name!r} is not ready"])


@router.get("/metrics", tags=["metrics"], include_in_schema=True)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )

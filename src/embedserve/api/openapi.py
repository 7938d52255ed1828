"""The OpenAPI document as the server really behaves: JSON-only required bodies with the engine's
constraints, every error status an operation can answer (always the OpenAI envelope), the real
success bodies and media types. FastAPI's generated document is the start; this rewrites the
parts that routes written over raw `Request`s cannot describe."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from embedserve.api.middleware import REQUEST_ID_HEADER, is_open_path
from embedserve.api.responses import (
    EmbeddingResponse,
    ErrorResponse,
    HealthStatus,
    Liveness,
    ModelCard,
    ModelList,
    ModelReadiness,
    Readiness,
    TokenizeResponse,
)
from embedserve.api.schemas import EmbeddingRequest, TokenizeRequest

JSON = "application/json"
_REF = "#/components/schemas/{model}"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What every status means here; each is answered with the error envelope.
ERROR_STATUSES: dict[int, str] = {
    400: "invalid request (`invalid_request_error`): the body is not a JSON object or not sent as "
    "application/json (`invalid_request`; there is no 415), a field has the wrong type or value, "
    "`empty_input`, `context_length_exceeded`, `too_many_inputs`, `max_tokens_per_request`, "
    "`invalid_dimensions`, `invalid_token_id`",
    401: "API keys are configured and `Authorization: Bearer <key>` is missing or wrong",
    404: "the model is not served (the message lists the served ids to authenticated clients)",
    408: "the request head or body did not arrive in time; the connection is closed",
    413: "the body is larger than the payload limit (`--max-payload-bytes`)",
    429: "admission control refused the work (`rate_limit_error`); retry after `Retry-After`",
    431: "the request head is larger than `--max-header-bytes`; the connection is closed",
    500: "internal fault (`server_error`): the message has the request id to look up in the log",
    503: "not ready (models loading, a model failing, draining, shutting down), past the "
    "deadline, or the connection limit reached",
    504: "the request was not answered before its deadline (`--request-timeout`)",
}
# The `error.code` values of each status (400 has many, listed above).
ERROR_CODES: dict[int, tuple[str, ...]] = {
    401: ("invalid_api_key",),
    404: ("model_not_found", "not_found"),
    408: ("header_timeout", "request_timeout"),
    413: ("payload_too_large",),
    429: ("server_overloaded",),
    431: ("headers_too_large",),
    500: ("internal_error",),
    503: ("not_ready", "timeout", "server_overloaded"),
    504: ("timeout",),
}
# Answered by the connection guards and the middleware, whatever the route.
_ANY_ROUTE = frozenset({408, 431, 500, 503})
# Answered by every route that takes a body: they read it, then give the engine work to do.
_WITH_BODY = frozenset({400, 404, 413, 429, 504})


@dataclass(frozen=True)
class Operation:
    """What one documented operation takes and answers, beyond the generic rules."""

    ok: type | None  # the 200 body (a typed dict of `responses`); None: plain text
    body: type | None = None  # the request body (a pydantic model of `schemas`)
    errors: frozenset[int] = frozenset()
    ok_media: str = JSON


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/embeddings"): Operation(EmbeddingResponse, EmbeddingRequest),
    ("post", "/tokenize"): Operation(TokenizeResponse, TokenizeRequest),
    ("get", "/v1/models"): Operation(ModelList),
    ("get", "/v1/models/{model_id}"): Operation(ModelCard, errors=frozenset({404})),
    ("get", "/health"): Operation(HealthStatus),
    ("get", "/v2/health/live"): Operation(Liveness),
    ("get", "/v2/health/ready"): Operation(Readiness),
    ("get", "/v2/models/{name}/ready"): Operation(ModelReadiness, errors=frozenset({404})),
    ("get", "/metrics"): Operation(None, ok_media="text/plain"),
}


def install_openapi(app: FastAPI, *, auth: bool) -> None:
    """Serve `openapi_document` as the app's `/openapi.json` (and `/docs`)."""
    app.openapi = lambda: openapi_document(app, auth=auth)  # type: ignore[method-assign]


def openapi_document(app: FastAPI, *, auth: bool = False) -> dict[str, Any]:
    """The app's document, built once; `auth`: API keys are configured."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
        app.openapi_schema = _rewrite(copy.deepcopy(document), auth=auth)
    return app.openapi_schema


def _rewrite(document: dict[str, Any], *, auth: bool) -> dict[str, Any]:
    components: dict[str, Any] = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    # FastAPI's 422 models go with its 422 responses: validation errors are 400 envelopes.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    _component(ErrorResponse, schemas)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _rewrite_operation(path, method, operation, schemas, auth=auth)
    if auth:
        components["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
    return document


def _rewrite_operation(
    path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any], *, auth: bool
) -> None:
    known = OPERATIONS.get((method, path))
    errors = set(_ANY_ROUTE | (known.errors if known else frozenset()))
    if method in ("post", "put", "patch"):
        errors |= _WITH_BODY
    if not is_open_path(path, method.upper()):
        errors.add(401)
        if auth:
            operation["security"] = [{"apiKey": []}]
    if known is not None and known.body is not None:
        schema = _schema_of(known.body, schemas)
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter.get("in") == "path":  # an empty id would change the route it reaches
            parameter["schema"]["minLength"] = 1
    parameters.append(
        {
            "name": REQUEST_ID_HEADER,
            "in": "header",
            "required": False,
            "description": "echoed in the response when printable and at most 200 characters, "
            "else replaced by a new id",
            "schema": {"type": "string"},
        }
    )
    responses: dict[str, Any] = operation.setdefault("responses", {})
    ok = responses.pop("200", None) or {"description": "Successful Response"}
    if known is not None:
        body = {"type": "string"} if known.ok is None else _component(known.ok, schemas)
        ok["content"] = {known.ok_media: {"schema": body}}
    ok["headers"] = {REQUEST_ID_HEADER: _request_id_header(required=True)}
    responses.clear()
    responses["200"] = ok
    for status in sorted(errors):
        responses[str(status)] = _error_response(status)


def _schema_of(model: type, schemas: dict[str, Any]) -> dict[str, Any]:
    """`model`'s JSON Schema, its nested models moved to the components."""
    schema = TypeAdapter(model).json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    return schema


def _component(model: type, schemas: dict[str, Any]) -> dict[str, Any]:
    """A reference to `model`'s schema, put in the components under its name."""
    schemas[model.__name__] = _schema_of(model, schemas)
    return {"$ref": _REF.format(model=model.__name__)}


def _error_response(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {REQUEST_ID_HEADER: _request_id_header(required=False)}
    if status == 429:
        headers["Retry-After"] = {
            "description": "seconds to wait before retrying",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    if status == 401:
        headers["WWW-Authenticate"] = {"required": True, "schema": {"const": "Bearer"}}
    schema: dict[str, Any] = {"$ref": _REF.format(model="ErrorResponse")}
    codes = ERROR_CODES.get(status)
    if codes:
        code = {"properties": {"code": {"enum": list(codes)}}}
        schema = {"allOf": [schema, {"properties": {"error": code}}]}
    description = ERROR_STATUSES[status]
    if codes:
        description = f"{', '.join(f'`{code}`' for code in codes)}: {description}"
    return {"description": description, "headers": headers, "content": {JSON: {"schema": schema}}}


def _request_id_header(*, required: bool) -> dict[str, Any]:
    return {
        "description": "the client's `x-request-id`, or one the server made up",
        "required": required,
        "schema": {"type": "string", "minLength": 1},
    }

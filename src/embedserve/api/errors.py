"""The one table from errors to HTTP status, OpenAI error type and code; the envelope builder."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

from embedserve.api.responses import error_body
from embedserve.errors import (
    BackendFailure,
    EmbedServeError,
    InvalidRequest,
    ModelNotFound,
    NotReady,
    Overloaded,
    RequestTimeout,
)

# Checked in order: the first class the error is an instance of decides.
ERROR_TABLE: tuple[tuple[type[EmbedServeError], int, str], ...] = (
    (InvalidRequest, 400, "invalid_request_error"),
    (ModelNotFound, 404, "not_found_error"),
    (Overloaded, 429, "rate_limit_error"),
    (NotReady, 503, "server_error"),
    (RequestTimeout, 504, "server_error"),
    (BackendFailure, 500, "server_error"),
    (EmbedServeError, 500, "server_error"),
)


class PayloadTooLarge(Exception):
    """The request body passed the configured limit while being read."""


def error_response(
    status: int,
    message: str,
    *,
    type_: str,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OpenAI error envelope response."""
    return Response(
        orjson.dumps(error_body(message, type_, code, param)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def internal_error(request_id: str) -> Response:
    """The 500 answer: no internals, only the id to look up in the server log."""
    return error_response(
        500,
        f"internal error while processing request {request_id}; the server log has the details",
        type_="server_error",
        code="internal_error",
    )


def domain_error_response(error: EmbedServeError, request_id: str) -> Response:
    """Map an engine error through `ERROR_TABLE`."""
    status, type_ = next(
        (status, type_) for cls, status, type_ in ERROR_TABLE if isinstance(error, cls)
    )
    if status == 500:
        return internal_error(request_id)
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Overloaded) else None
    return error_response(
        status, error.message, type_=type_, code=error.code, param=error.param, headers=headers
    )

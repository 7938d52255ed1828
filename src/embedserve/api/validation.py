"""The one translation of pydantic validation errors (of a body, a path or a query) into the
client's 400 `invalid_request`, naming the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from embedserve.errors import InvalidRequest
from embedserve.input_checks import INPUT_SHAPES

_CONTAINERS = ("body", "path", "query", "header")


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The first error, phrased for the client: `field` is required / `field`: what is wrong."""
    if not errors:
        return InvalidRequest("the request is invalid")
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in _CONTAINERS]
    field = location[0] if location else None
    where = ".".join(location) or "request"
    if first.get("type") == "missing":
        return InvalidRequest(f"`{where}` is required", param=field)
    if field == "input":
        return InvalidRequest(f"`input` must be {INPUT_SHAPES}; no mixed lists", param="input")
    return InvalidRequest(f"`{where}`: {first.get('msg', 'invalid value')}", param=field)

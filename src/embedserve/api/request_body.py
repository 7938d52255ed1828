"""Reading a request body cheaply and in order of cost: content type, JSON, then the `input`
shape (checked by type scans, not pydantic, so a huge token list costs microseconds per item),
then the size and depth of free-form JSON fields."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from embedserve.errors import EmptyInput, InvalidRequest
from embedserve.input_checks import INPUT_SHAPES

JSON = "application/json"
MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 10_000

Texts = list[str]
TokenLists = list[list[int]]


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or an `InvalidRequest` saying what is wrong with it. The body
    is bounded by the payload limit, so parsing it costs at most a few tens of milliseconds."""
    content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if content_type and not (content_type == JSON or content_type.endswith("+json")):
        raise InvalidRequest(
            f"unsupported Content-Type {content_type!r}; send the body as application/json"
        )
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def parse_input(value: Any, field: str = "input") -> tuple[Texts | None, TokenLists | None]:
    """Texts or token-id lists from the raw `input` value, told apart by its first item (O(1));
    the engine checks counts and lengths before it scans every item's type, so a huge list is
    refused by its length alone. Anything else is a 400 that names the accepted shapes."""
    if isinstance(value, str):
        return [value], None
    if not isinstance(value, list):
        raise _shape_error(field)
    if not value:
        raise EmptyInput(f"`{field}` must not be empty: send at least one text", param=field)
    first = value[0]
    if isinstance(first, str):
        return value, None
    if type(first) is int:
        return None, [value]
    if isinstance(first, list):
        return None, value
    raise _shape_error(field)


def parse_texts(value: Any, field: str) -> Texts | None:
    """A string or a list of strings (`/tokenize`), or None when absent."""
    if value is None:
        return None
    texts, _ = parse_input(value, field)
    if texts is None or set(map(type, texts)) != {str}:
        raise InvalidRequest(f"`{field}` must be a string or a list of strings", param=field)
    return texts


def check_free_json(value: Any, field: str) -> None:
    """Refuse a free-form JSON value (echoed or ignored by the server) deeper than
    `MAX_JSON_DEPTH` levels or with more than `MAX_JSON_VALUES` values. A container's size is
    counted before it is walked, so the check costs at most `MAX_JSON_VALUES` steps."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        seen += len(item)
        if seen > MAX_JSON_VALUES or depth > MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"`{field}` is too large: at most {MAX_JSON_VALUES} values nested at most "
                f"{MAX_JSON_DEPTH} levels deep are accepted",
                param=field,
            )
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)


def _shape_error(field: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` must be {INPUT_SHAPES}; no mixed lists", param=field)

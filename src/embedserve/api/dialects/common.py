"""What the dialect routes share: validating a body's small fields with pydantic, and running
one embedding request through the engine like the OpenAI route does (deadline, client gone)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from embedserve.api.handling import deadline_of, engine_of, run_unless_disconnected
from embedserve.api.validation import invalid_request
from embedserve.errors import InvalidRequest, ModelNotFound
from embedserve.params import EmbedParams, EmbedResult

Model = TypeVar("Model", bound=BaseModel)


def validated(schema: type[Model], data: dict[str, Any], skip: Iterable[str] = ()) -> Model:
    """`schema` over `data` without the fields in `skip` (read cheaply by the route itself)."""
    left_out = set(skip)
    try:
        return schema.model_validate({k: v for k, v in data.items() if k not in left_out})
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None


async def embed(request: Request, params: EmbedParams) -> EmbedResult | Response:
    """The engine's answer, or the 499 response when the client hung up first."""
    work = engine_of(request).embed_params(params, deadline=deadline_of(request))
    outcome: EmbedResult | Response = await run_unless_disconnected(request, work)
    return outcome


def served_name(request: Request, name: Any, *, tag_suffix: str = "") -> str | None:
    """A model name as the engine knows it: None (the only model), an id or alias, or one with
    `tag_suffix` (Ollama's `:latest`) removed."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidRequest("`model` must be a string", param="model")
    engine = engine_of(request)
    try:
        engine.resolve(name)
    except ModelNotFound:
        if tag_suffix and name.endswith(tag_suffix):
            engine.resolve(name.removesuffix(tag_suffix))
            return name.removesuffix(tag_suffix)
        raise
    return name

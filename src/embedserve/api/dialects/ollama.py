"""Ollama's routes: `POST /api/embed` and the legacy `POST /api/embeddings`, and the
`GET /api/tags` and `GET /api/version` that Ollama clients probe. A model name may carry
Ollama's `:latest` tag. As in Ollama, a request without input loads nothing and answers empty."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from starlette.responses import Response

import embedserve
from embedserve.api.dialects.common import embed, served_name, validated
from embedserve.api.handling import engine_of, json_response, slots_of
from embedserve.api.request_body import parse_texts, read_json_object
from embedserve.params import EmbedParams

router = APIRouter(tags=["ollama"], include_in_schema=False)  # see docs/api.md
TAG = ":latest"


class OllamaEmbedRequest(BaseModel):
    """`/api/embed` less `model` and `input`; `options` and `keep_alive` are accepted, unused."""

    model_config = ConfigDict(extra="ignore")

    truncate: StrictBool = True
    dimensions: StrictInt | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None


@router.post("/api/embed", summary="Ollama: embed")
async def ollama_embed(request: Request) -> Response:
    """`{model, input, truncate, dimensions}` -> `{model, embeddings, total_duration,
    load_duration, prompt_eval_count}` (durations in nanoseconds)."""
    started = time.perf_counter_ns()
    with slots_of(request).hold():
        data = await read_json_object(request)
        model = served_name(request, data.get("model"), tag_suffix=TAG)
        parsed = validated(OllamaEmbedRequest, data, skip=("model", "input"))
        answer: dict[str, Any] = {"model": data.get("model") or engine_of(request).runners[0].id}
        raw = data.get("input")
        if raw in (None, "", []):  # Ollama's way to load a model: nothing to embed
            vectors: Any = []
            tokens = 0
        else:
            texts = parse_texts(raw, "input")
            params = EmbedParams(
                texts=texts,
                model=model,
                dimensions=parsed.dimensions,
                truncate="END" if parsed.truncate else "NONE",
            )
            outcome = await embed(request, params)
            if isinstance(outcome, Response):
                return outcome
            vectors, tokens = outcome.vectors, outcome.prompt_tokens
        answer |= {
            "embeddings": vectors,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": tokens,
        }
        return json_response(answer)


@router.post("/api/embeddings", summary="Ollama: embed one prompt (legacy)")
async def ollama_embeddings(request: Request) -> Response:
    """The legacy route: `{model, prompt}` -> `{embedding}` (an empty prompt: `[]`)."""
    with slots_of(request).hold():
        data = await read_json_object(request)
        model = served_name(request, data.get("model"), tag_suffix=TAG)
        prompt = data.get("prompt")
        if prompt in (None, ""):
            return json_response({"embedding": []})
        texts = parse_texts(prompt, "prompt")
        outcome = await embed(request, EmbedParams(texts=texts, model=model, truncate="END"))
        if isinstance(outcome, Response):
            return outcome
        return json_response({"embedding": outcome.vectors[0]})


@router.get("/api/tags", summary="Ollama: the served models")
async def ollama_tags(request: Request) -> Response:
    """Every served id and alias, tagged `:latest`, in Ollama's listing shape."""
    models = []
    for info in engine_of(request).models():
        modified = datetime.fromtimestamp(info.created, UTC).isoformat()
        for name in (info.id, *info.aliases):
            models.append(
                {
                    "name": name + TAG,
                    "model": name + TAG,
                    "modified_at": modified,
                    "size": 0,
                    "digest": hashlib.sha256(info.id.encode()).hexdigest(),
                    "details": {
                        "parent_model": "",
                        "format": info.backend,
                        "family": "embedding",
                        "families": ["embedding"],
                        "parameter_size": "",
                        "quantization_level": "",
                    },
                }
            )
    return json_response({"models": models})


@router.get("/api/version", summary="Ollama: the server version")
async def ollama_version() -> Response:
    """embedserve's version, where Ollama clients look for the server's."""
    return json_response({"version": embedserve.__version__})

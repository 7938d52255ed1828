"""Rerank and score, each in its origin's format: `POST /v1/rerank`, `/v2/rerank`, `/rerank`
(Cohere / Jina / vLLM) and `/v3/rerank` (OVMS); TEI's `POST /rerank`, told apart by `texts`
instead of `documents`; vLLM's `POST /score` and `/v1/score`. For an embedding model the score
is the cosine of the query's and the document's vectors (`ranking.pair_scores`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.responses import Response

from embedserve.api.dialects.common import served_name, validated
from embedserve.api.dialects.errors import reshaped
from embedserve.api.errors import ERROR_TABLE
from embedserve.api.handling import (
    deadline_of,
    engine_of,
    json_response,
    run_unless_disconnected,
    slots_of,
)
from embedserve.api.request_body import read_json_object
from embedserve.errors import EmbedServeError, InvalidRequest
from embedserve.ranking import PairOptions, PairScores, pair_scores
from embedserve.truncation import from_tei

router = APIRouter(tags=["rerank"], include_in_schema=False)  # the formats: docs/api.md
RERANK_PATHS = ("/v1/rerank", "/v2/rerank", "/rerank", "/v3/rerank")


class DocumentText(BaseModel):
    """A document given as an object (Cohere v1, Jina)."""

    text: StrictStr


class RerankRequest(BaseModel):
    """Cohere / Jina / vLLM / OVMS rerank."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    query: StrictStr
    documents: list[StrictStr | DocumentText] = Field(min_length=1)
    top_n: StrictInt | None = Field(default=None, ge=1)
    return_documents: StrictBool | None = None
    max_tokens_per_doc: StrictInt | None = Field(default=None, ge=1)  # Cohere v2


class TeiRerankRequest(BaseModel):
    """TEI's rerank."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    query: StrictStr
    texts: list[StrictStr] = Field(min_length=1)
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    truncate: StrictBool | None = None
    truncation_direction: Literal["left", "right", "Left", "Right"] | None = None


class ScoreRequest(BaseModel):
    """vLLM's score: `text_1` against `text_2`, 1:1, 1:N or N:N."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    text_1: StrictStr | list[StrictStr]
    text_2: StrictStr | list[StrictStr]


async def scored(
    request: Request,
    model: str | None,
    texts: tuple[list[str], list[str]],
    pairs: list[tuple[int, int]],
    options: PairOptions | None = None,
) -> PairScores | Response:
    """The scores of `pairs` of (queries, documents) `texts` (under the request's deadline),
    or the 499 response when the client hung up first."""
    left, right = texts
    options = replace(options or PairOptions(), deadline=deadline_of(request))
    work = pair_scores(engine_of(request), model, left, right, pairs, options=options)
    outcome: PairScores | Response = await run_unless_disconnected(request, work)
    return outcome


async def rerank(request: Request) -> Response:
    """Documents ranked by relevance to the query, best first (`top_n` of them)."""
    with slots_of(request).hold():
        data = await read_json_object(request)
        path = request.url.path.rstrip("/")
        if path == "/rerank" and "texts" in data and "documents" not in data:
            return await tei_rerank(request, data)
        parsed = validated(RerankRequest, data)
        model = served_name(request, parsed.model)
        docs = [d if isinstance(d, str) else d.text for d in parsed.documents]
        pairs = [(0, j) for j in range(len(docs))]
        options = PairOptions(max_document_tokens=parsed.max_tokens_per_doc)
        outcome = await scored(request, model, ([parsed.query], docs), pairs, options)
        if isinstance(outcome, Response):
            return outcome
        order = sorted(range(len(docs)), key=lambda j: -outcome.scores[j])[: parsed.top_n]
        with_docs = parsed.return_documents
        with_docs = path != "/v2/rerank" if with_docs is None else with_docs  # Cohere v2: off
        results: list[dict[str, Any]] = [
            {"index": j, "relevance_score": outcome.scores[j]}
            | ({"document": {"text": docs[j]}} if with_docs else {})
            for j in order
        ]
        return json_response(
            {
                "id": str(uuid.uuid4()),
                "model": parsed.model or engine_of(request).resolve(None).id,
                "results": results,
                "usage": {"total_tokens": outcome.tokens},
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        )


for _path in RERANK_PATHS:
    router.add_api_route(_path, rerank, methods=["POST"], summary="Rerank documents")


async def tei_rerank(request: Request, data: dict[str, Any]) -> Response:
    """TEI's `[{index, score, text?}]`, best first; its errors in TEI's shape."""
    try:
        parsed = validated(TeiRerankRequest, data)
        cut = from_tei(parsed.truncate is not False, parsed.truncation_direction)
        texts = parsed.texts
        pairs = [(0, j) for j in range(len(texts))]
        model = served_name(request, parsed.model)
        both = ([parsed.query], texts)
        options = PairOptions(cut_documents=cut, raw=parsed.raw_scores)
        outcome = await scored(request, model, both, pairs, options)
    except EmbedServeError as error:
        status = next(s for cls, s, _ in ERROR_TABLE if isinstance(error, cls))
        envelope = {"error": {"message": error.message, "code": error.code}}
        tei_status, body = reshaped("tei", status, envelope)
        return json_response(body, tei_status)
    if isinstance(outcome, Response):
        return outcome
    order = sorted(range(len(texts)), key=lambda j: -outcome.scores[j])
    return json_response(
        [
            {"index": j, "score": outcome.scores[j]}
            | ({"text": texts[j]} if parsed.return_text else {})
            for j in order
        ]
    )


@router.post("/score", summary="vLLM: score text pairs")
@router.post("/v1/score")
async def score(request: Request) -> Response:
    """vLLM's `/score`: `text_1` (one text, or as many as `text_2`) against `text_2`."""
    with slots_of(request).hold():
        parsed = validated(ScoreRequest, await read_json_object(request))
        left = [parsed.text_1] if isinstance(parsed.text_1, str) else parsed.text_1
        right = [parsed.text_2] if isinstance(parsed.text_2, str) else parsed.text_2
        if not left or not right:
            raise InvalidRequest("`text_1` and `text_2` must not be empty", param="text_1")
        if len(left) == 1:
            pairs = [(0, j) for j in range(len(right))]
        elif len(left) == len(right):
            pairs = [(i, i) for i in range(len(left))]
        else:
            raise InvalidRequest(
                f"`text_1` has {len(left)} texts and `text_2` {len(right)}: send one text_1, "
                "or as many as text_2 (scored pairwise)",
                param="text_1",
            )
        model = served_name(request, parsed.model)
        outcome = await scored(request, model, (left, right), pairs)
        if isinstance(outcome, Response):
            return outcome
        return json_response(
            {
                "id": f"score-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": parsed.model or engine_of(request).resolve(None).id,
                "data": [
                    {"index": k, "object": "score", "score": value}
                    for k, value in enumerate(outcome.scores)
                ],
                "usage": {"prompt_tokens": outcome.tokens, "total_tokens": outcome.tokens},
            }
        )

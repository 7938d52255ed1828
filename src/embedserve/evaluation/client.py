"""A client for any OpenAI-compatible `/v1/embeddings`: batches in flight at once, base64 vectors,
retries on 429/503, and a progress bar. The HTTP side of `embedserve eval`."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import orjson

from embedserve.arrays import FloatArray

log = logging.getLogger(__name__)
RETRIED_STATUSES = {429, 502, 503, 504}
# Fields beyond OpenAI's: a server that refuses them gets requests without them (logged once).
EXTRA_FIELDS = ("input_type", "truncate_prompt_tokens")


class ServerError(RuntimeError):
    """The server refused or failed a request: its status (0: no answer) and what it said."""

    def __init__(self, status: int, detail: str, what: str = "POST /v1/embeddings") -> None:
        self.status = status
        self.detail = detail[:500]
        super().__init__(f"{what}: {status} {self.detail}" if status else f"{what}: {detail}")


@dataclass(frozen=True)
class ClientOptions:
    """Where to send requests and how many at once."""

    url: str
    model: str | None = None
    api_key: str | None = None
    batch_size: int = 64
    concurrency: int = 4
    timeout_s: float = 600.0
    retries: int = 5


def base_url(url: str) -> str:
    """`http://host:port`, whether given with or without `/v1` and a trailing slash."""
    return url.rstrip("/").removesuffix("/v1").rstrip("/")


class EmbeddingsClient:
    """`embed(texts)` → (n, dim) float32, in the order given. `input_type` is sent as
    embedserve, Voyage and Cohere name it; inputs longer than the model reads are cut
    (`truncate_prompt_tokens: -1`), as sentence-transformers cuts them."""

    def __init__(self, options: ClientOptions) -> None:
        if options.batch_size < 1 or options.concurrency < 1:
            raise ValueError("--batch-size and --concurrency must be at least 1")
        self.options = options
        self.url = base_url(options.url)
        self.extras_accepted = True
        self.model = options.model or self._first_model()

    def _headers(self) -> dict[str, str]:
        key = self.options.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _first_model(self) -> str:
        """The first model the server lists: the one asked for when none is named."""
        listing = asyncio.run(self._get("/v1/models"))
        models = [entry["id"] for entry in listing.get("data", [])]
        if not models:
            raise ServerError(200, "no model listed; name one with --model", "GET /v1/models")
        return str(models[0])

    async def _get(self, path: str) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=self._headers()) as session,
            session.get(self.url + path) as response,
        ):
            if response.status != 200:
                raise ServerError(response.status, await response.text(), f"GET {path}")
            body: dict[str, Any] = await response.json()
            return body

    def embed(
        self,
        texts: Sequence[str],
        *,
        input_type: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> FloatArray:
        """Vectors of `texts`; `on_progress(n)` after each batch of n texts."""
        return asyncio.run(self._embed_all(list(texts), input_type, on_progress))

    async def _embed_all(
        self, texts: list[str], input_type: str | None, on_progress: Callable[[int], None] | None
    ) -> FloatArray:
        size = self.options.batch_size
        batches = [texts[start : start + size] for start in range(0, len(texts), size)]
        in_flight = asyncio.Semaphore(self.options.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.options.concurrency)
        async with aiohttp.ClientSession(
            timeout=timeout, headers=self._headers(), connector=connector
        ) as session:

            async def one(batch: list[str]) -> FloatArray:
                async with in_flight:
                    vectors = await self._embed_batch(session, batch, input_type)
                if on_progress is not None:
                    on_progress(len(batch))
                return vectors

            parts = await asyncio.gather(*(one(batch) for batch in batches))
        if not parts:
            return np.empty((0, 0), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    async def _embed_batch(
        self, session: aiohttp.ClientSession, batch: list[str], input_type: str | None
    ) -> FloatArray:
        body: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "base64"}
        extras: dict[str, Any] = {"truncate_prompt_tokens": -1}
        if input_type is not None:
            extras["input_type"] = input_type
        if not self.extras_accepted:
            return await self._post(session, body, len(batch))
        try:
            return await self._post(session, body | extras, len(batch))
        except ServerError as refused:
            if refused.status not in (400, 422):
                raise
            try:  # a server strict about OpenAI's fields: try once without ours
                vectors = await self._post(session, body, len(batch))
            except ServerError:
                raise refused from None
            if self.extras_accepted:
                log.warning(
                    "%s refused %s (%s); sending OpenAI's fields only: no query/document "
                    "prompts, no truncation",
                    self.url,
                    ", ".join(EXTRA_FIELDS),
                    refused.detail,
                )
                self.extras_accepted = False
            return vectors

    async def _post(
        self, session: aiohttp.ClientSession, body: dict[str, Any], count: int
    ) -> FloatArray:
        delay = 0.5
        for attempt in range(self.options.retries + 1):
            try:
                async with session.post(self.url + "/v1/embeddings", json=body) as response:
                    if response.status == 200:
                        return _vectors(await response.read(), count)
                    error = ServerError(response.status, await response.text())
                    wait = _retry_after(response.headers.get("Retry-After"), delay)
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                error, wait = ServerError(0, f"{type(exc).__name__}: {exc}"), delay
            if error.status not in RETRIED_STATUSES | {0} or attempt == self.options.retries:
                raise error
            await asyncio.sleep(wait)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(float(header), 30.0) if header else default
    except ValueError:
        return default


def _vectors(raw: bytes, count: int) -> FloatArray:
    """The vectors of an embeddings response, in input order; a malformed one is an error."""
    try:
        data = sorted(orjson.loads(raw)["data"], key=lambda item: item["index"])
        rows = [_decode(item["embedding"]) for item in data]
        vectors = np.stack(rows).astype(np.float32, copy=False) if rows else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ServerError(200, f"not an embeddings response ({exc!r}): {raw[:200]!r}") from None
    if vectors is None or len(vectors) != count:
        raise ServerError(200, f"{len(rows)} embeddings for {count} inputs")
    return vectors


def _decode(embedding: str | list[float]) -> FloatArray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)

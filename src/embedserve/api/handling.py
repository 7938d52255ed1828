"""What every handler does around its engine call: concurrency slots, the deadline, the
client hanging up, `extra_body`, readiness answers and orjson responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from embedserve.api.errors import error_response
from embedserve.api.request_body import JSON
from embedserve.engine import Engine
from embedserve.errors import InvalidRequest, Overloaded

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200) -> Response:
    """Serialise with orjson (numpy arrays included)."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type=JSON,
    )


def engine_of(request: Request) -> Engine:
    """The engine the app was created with."""
    engine: Engine = request.app.state.engine
    return engine


class RequestSlots:
    """At most `limit` embedding and tokenize requests in progress at once (TEI's
    `max_concurrent_requests`); the next one is refused before its body is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the duration of the block, or raise `Overloaded`."""
        if self.in_use >= self.limit:
            raise Overloaded(
                f"{self.in_use} requests are in progress, the limit "
                "(--max-concurrent-requests); retry after the Retry-After delay",
                retry_after_s=1,
            )
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1


def slots_of(request: Request) -> RequestSlots:
    """The app's request slots."""
    slots: RequestSlots = request.app.state.slots
    return slots


def deadline_of(request: Request) -> float:
    """Event-loop time by which this request must be answered (from its arrival)."""
    arrived = getattr(request.state, "arrived", None)
    engine = engine_of(request)
    return engine.deadline() if arrived is None else arrived + engine.request_timeout_s


def merge_extra_body(data: dict[str, Any]) -> dict[str, Any]:
    """Apply `extra_body` keys as if sent at the top level; conflicting values are an error."""
    extra = data.pop("extra_body", None)
    if extra is None:
        return data
    if not isinstance(extra, dict):
        raise InvalidRequest("`extra_body` must be a JSON object", param="extra_body")
    for key, value in extra.items():
        if key in data and data[key] != value:
            raise InvalidRequest(
                f"`{key}` is given both at the top level and in `extra_body` with different "
                "values; send it once",
                param=key,
            )
        data[key] = value
    return data


async def until_disconnected(request: Request) -> None:
    """Return when the client hangs up (the body has already been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_unless_disconnected(request: Request, work: Any) -> Any:
    """Await `work`; if the client disconnects first, cancel it so its queued items are dropped
    and answer 499 (nobody reads it; the access log and metrics do)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        request.state.client_gone = True
        log.info("client disconnected before its answer; its queued work was dropped")
        return error_response(
            499,
            "the client closed the request",
            type_="invalid_request_error",
            code="client_closed",
        )
    return task.result()


def not_ready(reasons: list[str] | None = None) -> Response:
    """The 503 envelope of the readiness probes, saying why."""
    why = "; ".join(reasons or []) or "models are loading or it is draining"
    return error_response(
        503, f"the server is not ready: {why}", type_="server_error", code="not_ready"
    )


def readiness(request: Request) -> Response | None:
    """None when ready, else the 503 answer naming the cause; model ids and backend errors
    only for authenticated clients (the probes need no key)."""
    engine = engine_of(request)
    if engine.draining:
        return not_ready(["it is draining (shutting down)"])
    if not engine.ready:
        if getattr(request.state, "authenticated", True):
            return not_ready(engine.unready_reasons())
        return not_ready(["a model is loading or failing (details need an API key)"])
    return None

"""A request's deadline: the work of one request under `--request-timeout`, its expiry turned
into the client's timeout error (504) and counted, as a cancellation is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from embedserve.errors import RequestTimeout
from embedserve.runner import ModelRunner


@contextlib.asynccontextmanager
async def answered_by(
    deadline: float, runner: ModelRunner, timeout_s: float
) -> AsyncIterator[None]:
    """Run the block until `deadline` (event-loop time): past it, `RequestTimeout` (counted in
    the runner's stats); a cancelled request (the client left) is counted too."""
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except TimeoutError:
        runner.request_stats.timeouts += 1
        raise RequestTimeout(
            f"the request was not answered within its {timeout_s:g}s deadline "
            "(--request-timeout); send fewer inputs per request or retry later"
        ) from None
    except asyncio.CancelledError:
        runner.request_stats.cancelled += 1
        raise

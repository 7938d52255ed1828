"""What the scheduler queues: one `WorkItem` per input, each pointing at its `PendingRequest`,
which gathers the rows and resolves the caller's future on its event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.arrays import FloatArray

Finisher = Callable[[FloatArray], FloatArray]


class PendingRequest:
    """One submitted request: its output rows, and how many items are still outstanding."""

    __slots__ = ("cancelled", "failed", "finish", "future", "loop", "remaining", "rows", "size")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int, finish: Finisher) -> None:
        self.loop = loop
        self.future: asyncio.Future[FloatArray] = loop.create_future()
        self.rows: FloatArray | None = None
        self.size = count
        self.remaining = count
        self.finish = finish
        self.cancelled = False
        self.failed = False

    @property
    def live(self) -> bool:
        return not (self.cancelled or self.failed)

    def deliver(self, row: int, vector: FloatArray) -> None:
        """Store one item's vector (device thread); resolve the future after the last one."""
        if self.rows is None:
            self.rows = np.empty((self.size, vector.shape[0]), dtype=np.float32)
        self.rows[row] = vector
        self.remaining -= 1
        if self.remaining == 0:
            self._resolve(self.finish(self.rows), None)

    def fail(self, error: BaseException) -> None:
        """Fail the whole request once (device thread)."""
        if self.live:
            self.failed = True
            self._resolve(None, error)

    def _resolve(self, value: FloatArray | None, error: BaseException | None) -> None:
        def apply() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                assert value is not None
                self.future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self.loop.call_soon_threadsafe(apply)


@dataclass(eq=False, slots=True)
class WorkItem:
    token_ids: Sequence[int]
    request: PendingRequest
    row: int
    enqueued: float

"""The per-model scheduler: admission in tokens, a pending list, and the device thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from embedserve.backends.base import Backend, FloatArray
from embedserve.errors import BackendFailure, EmbedServeError, NotReady, Overloaded
from embedserve.models.spec import ModelSpec
from embedserve.pooling import pool
from embedserve.scheduler.admission import retry_after_seconds
from embedserve.scheduler.batching import pad_batch, select_batch

log = logging.getLogger(__name__)
Finisher = Callable[[FloatArray], FloatArray]
SHUTTING_DOWN = "the server is shutting down; retry on another replica"


@dataclass
class SchedulerStats:
    """Counters for metrics and benchmarks (written by the device thread only)."""

    batches: int = 0
    items: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    failed_batches: int = 0
    dropped_items: int = 0
    rejected_requests: int = 0


class _Request:
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
class _Item:
    token_ids: Sequence[int]
    request: _Request
    row: int


class Scheduler:
    """Batches work items of all requests of one model under a padded-token budget."""

    def __init__(
        self,
        backend: Backend,
        spec: ModelSpec,
        *,
        max_batch_tokens: int,
        max_queue_tokens: int,
        max_batch_size: int = 512,
        window: int = 1024,
        max_padding: float = 1.0,
        tokens_per_second: float | None = None,
        project: Finisher | None = None,
    ) -> None:
        self._backend = backend
        self._spec = spec
        self._max_batch_tokens = max_batch_tokens
        self._max_queue_tokens = max_queue_tokens
        self._max_batch_size = max_batch_size
        self._window = max(window, 1)
        self._max_padding = max_padding
        self._project = project  # the model's Dense head, between pooling and post-processing
        self.tokens_per_second = tokens_per_second
        self._pending: list[_Item] = []
        self._queued_tokens = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._closed = False  # no new work accepted (shutdown)
        self._thread: threading.Thread | None = None
        self.stats = SchedulerStats()

    @property
    def max_queue_tokens(self) -> int:
        """The admission limit in tokens."""
        return self._max_queue_tokens

    @property
    def queued_tokens(self) -> int:
        """Tokens admitted but not yet taken into a batch."""
        return self._queued_tokens

    def start(self) -> None:
        """Start the device thread."""
        self._thread = threading.Thread(target=self._run, name="embedserve-device", daemon=True)
        self._thread.start()

    def abort(self) -> None:
        """Refuse new work and fail whatever is still pending; the running batch completes."""
        with self._cond:
            self._closed = True
            pending, self._pending = self._pending, []
            self._queued_tokens = 0
            self._cond.notify_all()
        for item in pending:
            item.request.fail(NotReady(SHUTTING_DOWN))

    def stop(self) -> None:
        """Stop the device thread after its current batch; fail whatever is still pending."""
        with self._cond:
            self._stopping = True
        self.abort()
        if self._thread is not None:
            self._thread.join()

    async def embed(self, token_lists: Sequence[Sequence[int]], finish: Finisher) -> FloatArray:
        """Queue one item per token list and wait for all of them; `finish` post-processes the
        pooled (n, dim) matrix on the device thread. Cancelling drops the items not yet run."""
        request = self._submit(token_lists, finish)
        try:
            return await request.future
        except asyncio.CancelledError:
            self._cancel(request)
            raise

    def check_not_full(self) -> None:
        """Raise `Overloaded` now if no request could be admitted (any request has >= 1 token)."""
        if self._queued_tokens >= self._max_queue_tokens:
            with self._cond:
                self._refuse_if(self._queued_tokens >= self._max_queue_tokens)

    def _refuse_if(self, full: bool) -> None:
        """Raise `Overloaded` when `full` (caller holds the lock)."""
        if full:
            self.stats.rejected_requests += 1
            raise Overloaded(
                f"the server is at capacity ({self._queued_tokens} tokens queued, limit "
                f"{self._max_queue_tokens}); retry after a short wait",
                retry_after_s=retry_after_seconds(self._queued_tokens, self.tokens_per_second),
            )

    def _submit(self, token_lists: Sequence[Sequence[int]], finish: Finisher) -> _Request:
        tokens = sum(len(ids) for ids in token_lists)
        request = _Request(asyncio.get_running_loop(), len(token_lists), finish)
        with self._cond:
            if self._closed:
                raise NotReady(SHUTTING_DOWN)
            queued = self._queued_tokens
            self._refuse_if(bool(queued) and queued + tokens > self._max_queue_tokens)
            self._pending.extend(_Item(ids, request, row) for row, ids in enumerate(token_lists))
            self._queued_tokens += tokens
            self._cond.notify()
        return request

    def _cancel(self, request: _Request) -> None:
        request.cancelled = True
        with self._cond:
            kept = [item for item in self._pending if item.request is not request]
            dropped = len(self._pending) - len(kept)
            if dropped:
                self._queued_tokens -= sum(
                    len(item.token_ids) for item in self._pending if item.request is request
                )
                self._pending = kept
                self.stats.dropped_items += dropped

    def _take_batch(self) -> list[_Item]:
        """Remove and return the next batch (caller holds the lock)."""
        live = [item for item in self._pending if item.request.live]
        if len(live) != len(self._pending):
            self._queued_tokens -= sum(
                len(item.token_ids) for item in self._pending if not item.request.live
            )
            self.stats.dropped_items += len(self._pending) - len(live)
        positions = select_batch(
            [len(item.token_ids) for item in live[: self._window]],
            max_batch_tokens=self._max_batch_tokens,
            max_batch_size=self._max_batch_size,
            window=self._window,
            max_padding=self._max_padding,
        )
        chosen = set(positions)
        batch = [live[p] for p in positions]
        self._pending = [item for p, item in enumerate(live) if p not in chosen]
        self._queued_tokens -= sum(len(item.token_ids) for item in batch)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch = self._take_batch()
            if batch:
                self._execute(batch)

    def _execute(self, batch: list[_Item]) -> None:
        """Run one batch; any failure fails this batch's requests only."""
        try:
            input_ids, mask = pad_batch(
                [item.token_ids for item in batch], self._spec.pad_token_id, self._spec.padding_side
            )
            hidden = self._backend.forward(input_ids, mask)
            pooled = pool(hidden, mask, self._spec.pooling)
            if self._project is not None:
                pooled = self._project(pooled)
            self._record(batch, mask)
            for position, item in enumerate(batch):
                if item.request.live:
                    item.request.deliver(item.row, pooled[position])
        except Exception as exc:
            self.stats.failed_batches += 1
            log.exception("batch of %d items failed", len(batch))
            error = exc if isinstance(exc, EmbedServeError) else BackendFailure(str(exc))
            for item in batch:
                item.request.fail(error)

    def _record(self, batch: list[_Item], mask: npt.NDArray[np.int64]) -> None:
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.real_tokens += int(mask.sum())
        self.stats.padded_tokens += int(mask.size)

"""The per-model scheduler: admission in tokens, a pending list, and the device thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from embedserve.arrays import FloatArray
from embedserve.errors import BackendFailure, EmbedServeError, NotReady, Overloaded
from embedserve.executor import Executor
from embedserve.scheduler.admission import AdmissionPolicy, SpeedMeter
from embedserve.scheduler.batching import BatchShape
from embedserve.scheduler.work import Finisher, PendingRequest, WorkItem
from embedserve.stats import SchedulerStats

log = logging.getLogger(__name__)
SHUTTING_DOWN = "the server is shutting down; retry on another replica"


class Scheduler:
    """Batches work items of all requests of one model under a padded-token budget, admits
    work by `AdmissionPolicy`, and turns the model unready when its device thread dies or
    `max_failed_batches` batches fail in a row (a probe batch every `probe_interval_s` brings
    it back)."""

    def __init__(
        self,
        executor: Executor,
        *,
        max_batch_tokens: int,
        max_queue_tokens: int,
        max_queue_seconds: float = 0.0,
        max_batch_size: int = 512,
        window: int = 1024,
        max_padding: float = 1.0,
        tokens_per_second: float | None = None,
        max_failed_batches: int = 5,
        probe_interval_s: float = 2.0,
        name: str = "model",
        bucket: int = 0,
    ) -> None:
        self._executor = executor
        self._admission = AdmissionPolicy(max_queue_tokens, max_queue_seconds, max_batch_tokens)
        window, max_length = max(window, 1), executor.spec.max_length
        self._shape = BatchShape(
            max_batch_tokens, max_batch_size, window, max_padding, bucket, max_length
        )
        self._speed = SpeedMeter(tokens_per_second or 10_000.0)
        self._max_failed_batches = max_failed_batches
        self._probe_interval_s = probe_interval_s
        self.name = name
        self._pending: list[WorkItem] = []
        self._queued_tokens = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._closed = False  # no new work accepted (shutdown)
        self._unready: str | None = None  # why the model cannot serve now, or None
        self._dead = False
        self._failures_in_a_row = 0
        self._running: list[WorkItem] = []
        self._thread: threading.Thread | None = None
        self.stats = SchedulerStats()

    @property
    def max_queue_tokens(self) -> int:
        """The admission limit in tokens."""
        return self._admission.max_queue_tokens

    @property
    def queued_tokens(self) -> int:
        """Tokens admitted but not yet taken into a batch."""
        return self._queued_tokens

    @property
    def tokens_per_second(self) -> float:
        """The device's recent speed, as admission estimates waits with it."""
        return self._speed.tokens_per_second

    @property
    def ready(self) -> bool:
        """True while the device thread runs and the last batches did not all fail."""
        return self._unready is None and not self._closed

    @property
    def alive(self) -> bool:
        """False once the device thread has died (the process cannot heal that itself)."""
        return not self._dead

    @property
    def unready_reason(self) -> str | None:
        """Why the model is not ready, or None."""
        return self._unready

    def start(self) -> None:
        """Start the device thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"embedserve-device-{self.name}", daemon=True
        )
        self._thread.start()

    def abort(self) -> None:
        """Refuse new work and fail whatever is still pending; the running batch completes."""
        with self._cond:
            self._closed = True
            pending = self._drain_pending()
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

    async def embed(
        self,
        token_lists: Sequence[Sequence[int]],
        finish: Finisher,
        *,
        remaining_s: float | None = None,
    ) -> FloatArray:
        """Queue one item per token list and wait for all of them; `finish` post-processes the
        pooled (n, dim) matrix on the device thread. `remaining_s` is the time left before the
        request's deadline: work estimated to end later is refused. Cancelling drops the items
        not yet run."""
        request = self._submit(token_lists, finish, remaining_s)
        try:
            return await request.future
        except asyncio.CancelledError:
            self._cancel(request)
            raise

    def check_admission(self, remaining_s: float | None = None) -> None:
        """Raise now if no request could be admitted (before any tokenizing is spent on it)."""
        with self._cond:
            self._check_admission(1, remaining_s)

    def _check_admission(self, tokens: int, remaining_s: float | None) -> None:
        """Raise `NotReady` or `Overloaded` if `tokens` cannot be queued (caller holds the lock)."""
        if self._closed:
            raise NotReady(SHUTTING_DOWN)
        if self._unready is not None:
            raise NotReady(f"the model {self.name!r} is not ready: {self._unready}")
        running = sum(len(item.token_ids) for item in self._running)
        try:
            speed = self._speed.tokens_per_second
            self._admission.check(
                self.name, self._queued_tokens, tokens, speed, remaining_s=remaining_s,
                running_tokens=running,
            )  # fmt: skip
        except Overloaded:
            self.stats.rejected_requests += 1
            raise

    def _submit(
        self, token_lists: Sequence[Sequence[int]], finish: Finisher, remaining_s: float | None
    ) -> PendingRequest:
        tokens = sum(len(ids) for ids in token_lists)
        request = PendingRequest(asyncio.get_running_loop(), len(token_lists), finish)
        now = time.perf_counter()
        with self._cond:
            self._check_admission(tokens, remaining_s)
            self._pending.extend(
                WorkItem(ids, request, row, now) for row, ids in enumerate(token_lists)
            )
            self._queued_tokens += tokens
            self._cond.notify()
        return request

    def _cancel(self, request: PendingRequest) -> None:
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

    def _drain_pending(self) -> list[WorkItem]:
        """Empty the queue and return what it held (caller holds the lock)."""
        pending, self._pending = self._pending, []
        self._queued_tokens = 0
        return pending

    def _take_batch(self) -> list[WorkItem]:
        """Remove and return the next batch (caller holds the lock)."""
        live = [item for item in self._pending if item.request.live]
        if len(live) != len(self._pending):
            self._queued_tokens -= sum(
                len(item.token_ids) for item in self._pending if not item.request.live
            )
            self.stats.dropped_items += len(self._pending) - len(live)
        positions = self._shape.select([len(item.token_ids) for item in live[: self._shape.window]])
        chosen = set(positions)
        batch = [live[p] for p in positions]
        self._pending = [item for p, item in enumerate(live) if p not in chosen]
        self._queued_tokens -= sum(len(item.token_ids) for item in batch)
        now = time.perf_counter()
        for item in batch:
            self.stats.queue_wait.observe(now - item.enqueued)
        return batch

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:  # the thread is ending: make that loud and visible
            self._die(exc)

    def _step(self) -> bool:
        """Run one batch, or one probe while unready; False when stopping."""
        with self._cond:
            if self._unready is not None and not self._stopping:
                self._cond.wait(self._probe_interval_s)
            while not self._pending and not self._stopping and self._unready is None:
                self._cond.wait()
            if self._stopping:
                return False
            probing = self._unready is not None
            batch = [] if probing else self._take_batch()
            self._running = batch
        if probing:
            self._probe()
        elif batch:
            self._execute(batch)
        self._running = []
        return True

    def _execute(self, batch: list[WorkItem]) -> None:
        """Run one batch; any failure fails this batch's requests only."""
        started = time.perf_counter()
        try:
            width = self._shape.width(max(len(item.token_ids) for item in batch))
            output = self._executor.run([item.token_ids for item in batch], width=width)
            seconds = time.perf_counter() - started
            self.stats.record_batch(len(batch), output.real_tokens, output.padded_tokens, seconds)
            self._speed.record(output.real_tokens, seconds)
            for position, item in enumerate(batch):
                if item.request.live:
                    item.request.deliver(item.row, output.vectors[position])
            self._failures_in_a_row = 0
        except Exception as exc:
            self.stats.failed_batches += 1
            self._failures_in_a_row += 1
            log.exception("batch of %d items of %s failed", len(batch), self.name)
            error = exc if isinstance(exc, EmbedServeError) else BackendFailure(str(exc))
            if self._failures_in_a_row >= self._max_failed_batches:  # before anyone hears of it
                self._become_unready(
                    f"its last {self._failures_in_a_row} batches failed (last error: "
                    f"{type(exc).__name__}: {exc})"
                )
            for item in batch:
                item.request.fail(error)

    def _probe(self) -> None:
        """Try one small batch; on success the model is ready again."""
        try:
            self._executor.probe()
        except Exception as exc:
            log.warning("model %s: probe batch failed again: %s", self.name, exc)
            return
        with self._cond:
            if self._dead:
                return
            self._unready = None
            self._failures_in_a_row = 0
        log.warning("model %s: probe batch succeeded; ready again", self.name)

    def _become_unready(self, reason: str) -> None:
        with self._cond:
            self._unready = reason
            self.stats.unready_events += 1
            pending = self._drain_pending()
        every = self._probe_interval_s
        log.error("model %s is not ready: %s; probing every %.0fs", self.name, reason, every)
        for item in pending:
            item.request.fail(NotReady(f"the model {self.name!r} is not ready: {reason}"))

    def _die(self, exc: BaseException) -> None:
        log.critical("the device thread of %s died", self.name, exc_info=exc)
        reason = f"its device thread died ({type(exc).__name__}: {exc})"
        with self._cond:
            self._dead = True
            self._unready = reason
            self.stats.unready_events += 1
            lost = [*self._running, *self._drain_pending()]
        for item in lost:
            item.request.fail(NotReady(f"the model {self.name!r} is not ready: {reason}"))

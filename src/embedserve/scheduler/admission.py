"""Admission control: whether queued work leaves room for a request, from the measured speed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from embedserve.errors import Overloaded

# Work is admitted only if its estimated wait leaves this margin before its deadline: a
# quarter of the time left, at most 30 s. The estimate misses tokenizing and HTTP, and a
# refusal (429, retry elsewhere) is better than a timeout (504) after the wait.
DEADLINE_MARGIN_SHARE = 0.25
DEADLINE_MARGIN_MAX_S = 30.0


class SpeedMeter:
    """The device's tokens per second, from exponentially decayed sums over recent batches
    (large batches weigh more than small ones, as they do in a long queue)."""

    def __init__(self, tokens_per_second: float, *, decay: float = 0.9) -> None:
        self._tokens = max(tokens_per_second, 1.0)
        self._seconds = 1.0
        self._decay = decay

    def record(self, tokens: int, seconds: float) -> None:
        """Account one batch of `tokens` real tokens that took `seconds`."""
        self._tokens = self._tokens * self._decay + tokens
        self._seconds = self._seconds * self._decay + max(seconds, 1e-6)

    @property
    def tokens_per_second(self) -> float:
        """The current estimate."""
        return self._tokens / self._seconds


@dataclass(frozen=True)
class AdmissionPolicy:
    """What a model's queue admits: a memory bound in tokens, an optional latency bound, and no
    work that would finish after its request's deadline. An empty queue admits anything."""

    max_queue_tokens: int
    max_queue_seconds: float = 0.0  # 0: no latency bound
    batch_tokens: int = 0  # a request's own batch: it is done when that whole batch is

    def refusal(
        self,
        queued_tokens: int,
        incoming_tokens: int,
        tokens_per_second: float,
        remaining_s: float | None = None,
        running_tokens: int = 0,
    ) -> str | None:
        """Why `incoming_tokens` more cannot be queued now, or None when they can. The wait is
        estimated as everything ahead (queued, and the batch running now) plus its own work,
        which ends with a whole batch."""
        if queued_tokens == 0:
            return None
        if queued_tokens + incoming_tokens > self.max_queue_tokens:
            return f"{queued_tokens} tokens queued, limit {self.max_queue_tokens}"
        ahead = queued_tokens + running_tokens + max(incoming_tokens, self.batch_tokens)
        wait = ahead / max(tokens_per_second, 1e-6)
        if self.max_queue_seconds and wait > self.max_queue_seconds:
            return (
                f"about {wait:.2f}s of queued work, more than the {self.max_queue_seconds}s "
                "latency bound"
            )
        if remaining_s is not None:
            margin = min(remaining_s * DEADLINE_MARGIN_SHARE, DEADLINE_MARGIN_MAX_S)
            if wait > remaining_s - margin:
                return (
                    f"about {wait:.0f}s of queued work, more than the {remaining_s:.0f}s left "
                    "before this request's deadline"
                )
        return None

    def check(
        self,
        name: str,
        queued_tokens: int,
        incoming_tokens: int,
        tokens_per_second: float,
        *,
        remaining_s: float | None = None,
        running_tokens: int = 0,
    ) -> None:
        """Raise `Overloaded` (with Retry-After: the queue's drain time) when `refusal` says no."""
        reason = self.refusal(
            queued_tokens, incoming_tokens, tokens_per_second, remaining_s, running_tokens
        )
        if reason is not None:
            raise Overloaded(
                f"the server is at capacity for {name!r} ({reason}); retry after the "
                "Retry-After delay",
                retry_after_s=retry_after_seconds(queued_tokens, tokens_per_second),
            )


def retry_after_seconds(queued_tokens: int, tokens_per_second: float | None) -> int:
    """Whole seconds until the queue has drained (at least 1)."""
    if not tokens_per_second:
        return 1
    return max(1, math.ceil(queued_tokens / tokens_per_second))

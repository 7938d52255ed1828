"""Clients for the robustness rows of compare.py, which the load generator does not cover.

- `run_no_retry`: N clients in a closed loop that never retry (a 429 is a failure), the shape of
  OpenVINO Model Server's embeddings benchmark client.
- `ServerSampler`: a local server's RSS (/proc) and `embedserve_queued_tokens` (/metrics),
  sampled in a thread while something else drives it.
- shared by `flood.py` and `drain.py`: outcome names, one POST, percentiles, the session."""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import numpy as np
import orjson

from embedserve.bench.report import Report, Sample, summarize

JSON_HEADERS = {"content-type": "application/json"}


class EventLike(Protocol):
    """What the prober needs of a multiprocessing event."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class QueueLike(Protocol):
    """What the prober needs of a multiprocessing queue."""

    def put(self, obj: Any) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


_QUEUED = re.compile(rb"^embedserve_queued_tokens\{[^}]*\}\s+(\S+)", re.MULTILINE)


def outcome_of(exc: BaseException) -> str:
    """What a failed exchange is called in the tables: `refused` (nothing listens), `reset` (the
    connection was closed or broken before the answer), `timeout`, or `error`."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "refused"
    reset = aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    if isinstance(exc, reset):
        return "reset"
    return "error"


async def post(session: aiohttp.ClientSession, url: str, payload: bytes) -> str:
    """POST once; the HTTP status as a string, or what went wrong (see `outcome_of`)."""
    try:
        async with session.post(url, data=payload, headers=JSON_HEADERS) as resp:
            await resp.read()
            return str(resp.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return outcome_of(exc)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of latencies given in seconds, in ms (zeros when empty)."""
    values = np.array(seconds or [0.0]) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
        "max": round(float(values.max()), 2),
    }


def session(timeout_s: float) -> aiohttp.ClientSession:
    """A client session without a connection limit (every client gets its own connection)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s), connector=aiohttp.TCPConnector(limit=0)
    )


@dataclass(frozen=True)
class NoRetryLoad:
    """`concurrency` clients, each sending its next request as soon as the last is answered,
    `inputs` texts per request, `requests` in all, no retries and no back-off."""

    url: str
    model: str
    texts: Sequence[str] = field(repr=False)
    token_counts: Sequence[int] = field(repr=False)
    concurrency: int = 100
    inputs: int = 16
    requests: int = 300
    timeout_s: float = 600.0

    def payload(self, number: int) -> tuple[bytes, int]:
        """The body of request `number` and its token count (by the model's tokenizer)."""
        positions = [(number * self.inputs + i) % len(self.texts) for i in range(self.inputs)]
        body = {"model": self.model, "input": [self.texts[p] for p in positions]}
        return orjson.dumps(body), sum(self.token_counts[p] for p in positions)

    def summary(self) -> dict[str, Any]:
        """The settings worth recording next to the numbers."""
        return {
            "url": self.url,
            "model": self.model,
            "mode": "closed, no retries",
            "concurrency": self.concurrency,
            "inputs_per_request": self.inputs,
            "requests": self.requests,
            "timeout_s": self.timeout_s,
        }


async def _no_retry(load: NoRetryLoad) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    next_number = 0

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal next_number
        while next_number < load.requests:
            payload, tokens = load.payload(next_number)
            next_number += 1
            started = time.perf_counter()
            status = await post(http, load.url, payload)
            latency = time.perf_counter() - started
            ok = status == "200"
            samples.append(
                Sample(
                    latency,
                    200 if ok else status,
                    load.inputs if ok else 0,
                    tokens if ok else 0,
                    finished_at=time.perf_counter(),
                )
            )

    async with session(load.timeout_s) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(load.concurrency)))
        return samples, time.perf_counter() - started


def run_no_retry(load: NoRetryLoad, label: str) -> Report:
    """Run `load` to completion; the `Report` counts every non-200 as an error, by status."""
    samples, duration = asyncio.run(_no_retry(load))
    return summarize(label, samples, duration, load.summary())


def rss_mb(pid: int) -> float:
    """Resident memory of a local process in MiB, from /proc/<pid>/status (nan once gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
    return int(kib) / 1024


class ServerSampler:
    """In a thread, every `every_s`: the server's RSS and its `embedserve_queued_tokens` (summed
    over models). Use as a context manager around the run to observe."""

    def __init__(self, pid: int, root: str, every_s: float = 0.1) -> None:
        self.pid, self.root, self.every_s = pid, root, every_s
        self.rss_mb: list[float] = []
        self.queued_tokens: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(self.every_s):
                self.rss_mb.append(rss_mb(self.pid))
                try:
                    text = client.get(self.root + "/metrics").content
                except httpx.HTTPError:
                    continue  # a slow scrape under load is skipped, not fatal
                self.queued_tokens.append(sum(float(v) for v in _QUEUED.findall(text)))

    def __enter__(self) -> ServerSampler:
        self.rss_before_mb = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self) -> dict[str, float]:
        """RSS before the run, its peak, and the peak of queued tokens."""
        rss = [v for v in self.rss_mb if not math.isnan(v)]  # nan: the process was gone
        return {
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_peak_mb": round(max(rss, default=float("nan")), 1),
            "queued_tokens_peak": max(self.queued_tokens, default=0.0),
            "samples": len(self.rss_mb),
        }

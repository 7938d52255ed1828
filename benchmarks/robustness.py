"""Clients for the robustness rows of compare.py, which the load generator does not cover.

- `run_no_retry`: N clients in a closed loop that never retry (a 429 is a failure), the shape of
  OpenVINO Model Server's embeddings benchmark client.
- `ServerSampler`: a local server's RSS (/proc) and `embedserve_queued_tokens` (/metrics),
  sampled in a thread while something else drives it.
- `run_flood`: clients sending the worst cheap-to-send bodies in a loop while a process of its
  own probes /health every 20 ms.
- `run_drain`: closed-loop clients and a /health poller around a SIGTERM to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import re
import signal
import subprocess
import threading
import time
from collections import Counter
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


# --- no-retry closed loop --------------------------------------------------------------------


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
                    latency, 200 if ok else status, load.inputs if ok else 0, tokens if ok else 0
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


# --- server sampler --------------------------------------------------------------------------


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


# --- flood of worst-case bodies with a /health prober ----------------------------------------


def worst_bodies(model: str, payload_limit: int, texts: Sequence[str]) -> dict[str, bytes]:
    """The bodies that cost the client least and the server most, each within the payload
    limit: a list of token ids filling it, one ~2 MB string, `additional_data` nested as deep as
    the server's JSON parser allows (orjson: 1024 levels), and 2048 texts of 1000 characters
    with truncation asked for."""
    head = orjson.dumps({"model": model})[:-1] + b',"input":['
    ids = (payload_limit - len(head) - 64) // 2
    prose = " ".join(texts)
    while len(prose) < 2_100_000:
        prose += " " + prose
    depth = 1023  # inside the top-level object: 1024 levels in all
    nested = b'{"model":"' + model.encode() + b'","input":"hello","additional_data":'
    return {
        "token ids, one list": head + b"1," * (ids - 1) + b"1]}",
        "one ~2 MB string": orjson.dumps({"model": model, "input": prose[:2_000_000]}),
        f"additional_data nested {depth} deep": nested + b"[" * depth + b"]" * depth + b"}",
        "2048 x 1000 chars, truncate -1": orjson.dumps(
            {
                "model": model,
                "input": [prose[i * 1000 : (i + 1) * 1000] for i in range(2048)],
                "truncate_prompt_tokens": -1,
            }
        ),
    }


def probe_health(
    root: str, every_s: float, started: EventLike, stop: EventLike, out: QueueLike
) -> None:
    """GET /health every `every_s` until `stop`; put (latencies in s, statuses) on `out`."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    with httpx.Client(timeout=10) as client:
        due = time.perf_counter()
        while not stop.is_set():
            began = time.perf_counter()
            try:
                status = str(client.get(root + "/health").status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
            started.set()
            due += every_s
            stop.wait(max(0.0, due - time.perf_counter()))
    out.put((latencies, dict(statuses)))


class HealthProber:
    """GET /health every `every_s` on its own connection, from its own process (so the load
    this process generates cannot delay the probes); keeps each latency. Use as a context
    manager: entering returns after the first probe."""

    def __init__(self, root: str, every_s: float = 0.02) -> None:
        context = multiprocessing.get_context("spawn")
        self._started, self._stop = context.Event(), context.Event()
        self._out: QueueLike = context.Queue()
        self._process = context.Process(
            target=probe_health,
            args=(root, every_s, self._started, self._stop, self._out),
            daemon=True,
        )
        self.latencies_s: list[float] = []
        self.statuses: dict[str, int] = {}

    def __enter__(self) -> HealthProber:
        self._process.start()
        if not self._started.wait(60):
            self._process.kill()
            raise RuntimeError("the /health prober did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies_s, self.statuses = self._out.get(timeout=60)
        self._process.join(timeout=10)

    def summary(self) -> dict[str, Any]:
        """Probe count, statuses, p50/p99/max in ms, and how many took over 100 ms."""
        return {
            "probes": len(self.latencies_s),
            "statuses": dict(self.statuses),
            **percentiles_ms(self.latencies_s),
            "over_100ms": sum(t > 0.1 for t in self.latencies_s),
        }


async def _flood(
    url: str, bodies: dict[str, bytes], clients: int, seconds: float, timeout_s: float
) -> dict[str, Counter[str]]:
    names = list(bodies)
    statuses: dict[str, Counter[str]] = {name: Counter() for name in names}
    end = time.perf_counter() + seconds

    async def client(index: int, http: aiohttp.ClientSession) -> None:
        turn = index
        while time.perf_counter() < end:
            name = names[turn % len(names)]
            turn += 1
            statuses[name][await post(http, url, bodies[name])] += 1

    async with session(timeout_s) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    return statuses


def run_flood(
    root: str,
    url: str,
    bodies: dict[str, bytes],
    *,
    clients: int = 8,
    seconds: float = 10.0,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """`clients` clients each send the bodies in turn for `seconds` (then wait for their last
    answers) while /health is probed every 20 ms; statuses per body and the probes' latency."""
    started = time.perf_counter()
    with HealthProber(root) as prober:
        statuses = asyncio.run(_flood(url, bodies, clients, seconds, timeout_s))
    return {
        "clients": clients,
        "seconds": round(time.perf_counter() - started, 2),
        "body_bytes": {name: len(body) for name, body in bodies.items()},
        "statuses": {name: dict(counts) for name, counts in statuses.items()},
        "health": prober.summary(),
    }


# --- drain on SIGTERM ------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request seen by a client: start and end relative to the SIGTERM (s), and outcome."""

    started: float
    ended: float
    outcome: str


@dataclass
class DrainLog:
    """Everything the clients and the poller saw, with times from `perf_counter`."""

    requests: list[Exchange] = field(default_factory=list)
    probes: list[Exchange] = field(default_factory=list)
    sigterm_at: float = float("inf")
    exited_at: float = float("nan")


async def _drain_client(
    http: aiohttp.ClientSession,
    url: str,
    payloads: Sequence[bytes],
    log: DrainLog,
    stop: asyncio.Event,
) -> None:
    number = 0
    while not stop.is_set():
        payload = payloads[number % len(payloads)]
        number += 1
        started = time.perf_counter()
        outcome = await post(http, url, payload)
        log.requests.append(Exchange(started, time.perf_counter(), outcome))
        if outcome != "200":
            await asyncio.sleep(0.05)  # nothing listens, or it is closing: do not spin


async def _drain_poller(root: str, every_s: float, log: DrainLog, stop: asyncio.Event) -> None:
    async with session(2.0) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with http.get(root + "/health") as resp:
                    outcome = str(resp.status)
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = outcome_of(exc)
            log.probes.append(Exchange(started, time.perf_counter(), outcome))
            await asyncio.sleep(max(0.0, started + every_s - time.perf_counter()))


async def _drain(
    process: subprocess.Popen[bytes],
    root: str,
    url: str,
    payloads: Sequence[bytes],
    *,
    clients: int,
    load_s: float,
    wait_s: float,
) -> DrainLog:
    log = DrainLog()
    stop = asyncio.Event()
    async with session(60.0) as http:
        tasks = [
            asyncio.create_task(_drain_client(http, url, payloads, log, stop))
            for _ in range(clients)
        ]
        tasks.append(asyncio.create_task(_drain_poller(root, 0.05, log, stop)))
        await asyncio.sleep(load_s)
        log.sigterm_at = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, wait_s)
        log.exited_at = time.perf_counter()
        await asyncio.sleep(0.3)  # what clients see once it has gone
        stop.set()
        await asyncio.gather(*tasks)
    return log


def first_after(exchanges: Sequence[Exchange], start: float, outcomes: set[str]) -> float | None:
    """Seconds from `start` to the end of the first exchange begun after it with one of
    `outcomes`, or None."""
    ends = [e.ended for e in exchanges if e.started >= start and e.outcome in outcomes]
    return round(min(ends) - start, 3) if ends else None


def summarize_drain(log: DrainLog, returncode: int | None) -> dict[str, Any]:
    """The drain timeline relative to SIGTERM, and the outcome counts of the requests in flight
    at SIGTERM and of those sent after it."""
    t0 = log.sigterm_at
    in_flight = Counter(e.outcome for e in log.requests if e.started < t0 < e.ended)
    after = Counter(e.outcome for e in log.requests if e.started >= t0)
    answered = [e.started for e in log.requests if e.started >= t0 and e.outcome == "200"]
    late = [e for e in log.requests if e.ended > t0]
    return {
        "first_health_503_s": first_after(log.probes, t0, {"503"}),
        "last_200_sent_after_s": round(max(answered) - t0, 3) if answered else None,
        "listener_closed_s": first_after([*log.probes, *log.requests], t0, {"refused"}),
        "exit_after_s": round(log.exited_at - t0, 3),
        "exit_code": returncode,
        "requests_before": sum(e.ended <= t0 for e in log.requests),
        "in_flight_at_sigterm": dict(in_flight),
        "sent_after_sigterm": dict(after),
        "dropped": sum(e.outcome in ("reset", "timeout", "error") for e in late),
    }


def run_drain(
    process: subprocess.Popen[bytes],
    root: str,
    url: str,
    payloads: Sequence[bytes],
    *,
    clients: int = 16,
    load_s: float = 3.0,
    wait_s: float = 30.0,
) -> dict[str, Any]:
    """Load the server with `clients` closed-loop clients for `load_s`, send it SIGTERM, keep
    sending and polling /health every 50 ms until it exits (at most `wait_s`), and summarise."""
    log = asyncio.run(
        _drain(process, root, url, payloads, clients=clients, load_s=load_s, wait_s=wait_s)
    )
    return summarize_drain(log, process.poll())

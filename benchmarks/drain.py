"""The drain row: closed-loop clients and a /health poller around a SIGTERM to the server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from robustness import outcome_of, post, session


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

"""The flood row: clients sending the worst cheap-to-send bodies in a loop while a process of
its own probes /health every 20 ms."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx
import orjson
from robustness import EventLike, QueueLike, percentiles_ms, post, session


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

"""Closed-loop (N clients) and open-loop (Poisson arrivals) load against an embeddings URL."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tqdm import tqdm

from embedserve.bench.report import Report, Sample, summarize

MAX_BACKOFF_S = 5.0
_RSS_LINE = re.compile(rb"^process_resident_memory_bytes\s+(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class LoadSettings:
    """What to send, how, and how much."""

    url: str
    texts: Sequence[str] = field(repr=False)
    # Token count of each text by the model's tokenizer: when given, tokens/s is counted from
    # these instead of the server's `usage` (Infinity, for one, reports characters there).
    token_counts: Sequence[int] | None = field(default=None, repr=False)
    model: str | None = None
    mode: str = "closed"
    concurrency: int = 8
    rate: float = 10.0
    requests: int = 1000
    inputs_per_request: int = 1
    encoding: str = "float"
    warmup: int = 20
    timeout_s: float = 60.0
    api_key: str | None = None
    rss_every: int = 0
    server_pid: int | None = None
    progress: bool = True
    seed: int = 0

    def summary(self) -> dict[str, Any]:
        """The settings worth recording next to the numbers."""
        data = asdict(self)
        data.pop("texts")
        data.pop("token_counts")
        data["tokens_counted_by"] = "client" if self.token_counts else "server usage"
        data.pop("api_key")
        data["distinct_texts"] = len(self.texts)
        return data


def embeddings_url(url: str) -> str:
    """Accept a base URL (`http://host:port` or `.../v1`) or the full endpoint."""
    url = url.rstrip("/")
    if url.endswith("/embeddings"):
        return url
    return url + ("/embeddings" if url.endswith("/v1") else "/v1/embeddings")


def server_root(url: str) -> str:
    """`http://host:port` of a URL."""
    match = re.match(r"^(https?://[^/]+)", url)
    return match.group(1) if match else url


def process_rss_mb(pid: int) -> float:
    """Resident memory of a local process in MiB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
    return int(kib) / 1024


class LoadGenerator:
    """Sends the requests of one run and collects a `Sample` for each."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self._endpoint = embeddings_url(settings.url)
        self._headers = {"content-type": "application/json"}
        if settings.api_key:
            self._headers["authorization"] = f"Bearer {settings.api_key}"
        self._next = 0
        self.samples: list[Sample] = []
        self.rss_mb: list[float] = []

    def _positions(self, number: int) -> list[int]:
        count = self.settings.inputs_per_request
        return [(number * count + i) % len(self.settings.texts) for i in range(count)]

    def _payload(self, number: int) -> bytes:
        body: dict[str, Any] = {
            "input": [self.settings.texts[i] for i in self._positions(number)],
            "encoding_format": self.settings.encoding,
        }
        if self.settings.model:
            body["model"] = self.settings.model
        return orjson.dumps(body)

    async def _send(self, session: aiohttp.ClientSession, number: int) -> Sample:
        sample, _ = await self._exchange(session, number)
        return sample

    async def _exchange(self, session: aiohttp.ClientSession, number: int) -> tuple[Sample, float]:
        """One request; also returns the server's Retry-After (seconds, 0 if none)."""
        payload = self._payload(number)
        started = time.perf_counter()
        try:
            async with session.post(self._endpoint, data=payload, headers=self._headers) as resp:
                body = await resp.read()
                status: int | str = resp.status
                retry_after = resp.headers.get("retry-after", "")
        except TimeoutError:
            return Sample(time.perf_counter() - started, "timeout", 0, 0), 0.0
        except aiohttp.ClientError:
            return Sample(time.perf_counter() - started, "error", 0, 0), 0.0
        latency = time.perf_counter() - started
        if status != 200:
            wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
            return Sample(latency, status, 0, 0), wait
        parsed = orjson.loads(body)
        inputs = len(parsed.get("data", ()))
        if inputs != self.settings.inputs_per_request:
            return Sample(latency, "bad_response", 0, 0), 0.0
        if self.settings.token_counts is not None:
            tokens = sum(self.settings.token_counts[i] for i in self._positions(number))
        else:
            tokens = int(parsed["usage"]["prompt_tokens"])
        return Sample(latency, 200, inputs, tokens), 0.0

    async def _record(self, session: aiohttp.ClientSession, number: int, bar: tqdm[Any]) -> float:
        """Send, store the sample, sample RSS when due; returns the Retry-After asked for."""
        sample, retry_after = await self._exchange(session, number)
        self.samples.append(dataclasses.replace(sample, finished_at=time.perf_counter()))
        bar.update(1)
        every = self.settings.rss_every
        if every and len(self.samples) % every == 0:
            self.rss_mb.append(await self.sample_rss(session))
        return retry_after

    async def sample_rss(self, session: aiohttp.ClientSession) -> float:
        """Server RSS in MiB: from /proc when the pid is given, else from its /metrics."""
        if self.settings.server_pid:
            return process_rss_mb(self.settings.server_pid)
        async with session.get(server_root(self.settings.url) + "/metrics") as resp:
            match = _RSS_LINE.search(await resp.read())
        return float(match.group(1)) / 2**20 if match else float("nan")

    async def _closed(self, session: aiohttp.ClientSession, bar: tqdm[Any]) -> None:
        async def client() -> None:
            while self._next < self.settings.requests:
                number = self._next
                self._next += 1
                retry_after = await self._record(session, number, bar)
                if retry_after:  # as the openai SDK does: back off when told to
                    await asyncio.sleep(min(retry_after, MAX_BACKOFF_S))

        await asyncio.gather(*(client() for _ in range(self.settings.concurrency)))

    async def _open(self, session: aiohttp.ClientSession, bar: tqdm[Any]) -> None:
        rng = random.Random(self.settings.seed)
        start = time.perf_counter()
        due = 0.0
        tasks = []
        for number in range(self.settings.requests):
            due += rng.expovariate(self.settings.rate)
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._record(session, number, bar)))
        await asyncio.gather(*tasks)

    async def run(self, label: str) -> Report:
        """Warm up, run, summarise."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            for number in range(self.settings.warmup):
                await self._send(session, number)
            if self.settings.rss_every:
                self.rss_mb.append(await self.sample_rss(session))
            with tqdm(
                total=self.settings.requests,
                desc=label,
                disable=not self.settings.progress,
                unit="req",
                leave=False,
            ) as bar:
                started = time.perf_counter()
                if self.settings.mode == "open":
                    await self._open(session, bar)
                else:
                    await self._closed(session, bar)
                duration = time.perf_counter() - started
        return summarize(label, self.samples, duration, self.settings.summary(), self.rss_mb)


def run_load(settings: LoadSettings, label: str = "run") -> Report:
    """Run one load test to completion (blocking)."""
    return asyncio.run(LoadGenerator(settings).run(label))

"""Rows (c), (d) and (e) of compare.py over HTTP: the load generator at each concurrency, the
soak, and the robustness rows (no-retry clients, overload, flood, drain)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from drain import run_drain
from flood import run_flood, worst_bodies
from render_throughput import no_retry_table
from robustness import NoRetryLoad, ServerSampler, run_no_retry
from servers import Server, embedserve_server, root_of

from embedserve.bench.loadgen import LoadSettings, run_load
from embedserve.bench.report import Report, markdown_table
from embedserve.settings import ServerSettings, auto
from embedserve.testing import served_vectors

CONCURRENCY = (1, 8, 32, 128)


def load(server: Server, texts: list[str], counts: list[int], label: str, **kw: Any) -> Report:
    settings = LoadSettings(
        url=server.embeddings_url,
        texts=texts,
        token_counts=counts,
        model=server.model,
        progress=sys.stderr.isatty(),
        **kw,
    )
    report = run_load(settings, f"{server.name} {label}")
    print(markdown_table([report]).splitlines()[-1], flush=True)
    return report


def http_suite(
    server: Server,
    *,
    mixed: list[str],
    mixed_counts: list[int],
    short: list[str],
    short_counts: list[int],
    requests: int,
    reference: np.ndarray,
) -> dict[str, Any]:
    rows: dict[str, Report] = {}
    for clients in CONCURRENCY:
        rows[f"mixed c={clients}"] = load(
            server,
            mixed,
            mixed_counts,
            f"mixed c={clients}",
            concurrency=clients,
            requests=requests,
            warmup=2 * clients,
        )
    for clients in (1, 8):
        rows[f"short c={clients}"] = load(
            server,
            short,
            short_counts,
            f"short c={clients}",
            concurrency=clients,
            requests=requests,
            warmup=20,
        )
    vectors = served_vectors(server.embeddings_url, server.model, mixed[: len(reference)], None)
    cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1)
    return {"rows": rows, "min_cosine_to_st": float(cosine.min())}


def soak(server: Server, texts: list[str], counts: list[int], requests: int) -> Report:
    return load(
        server,
        texts,
        counts,
        f"soak {requests}",
        concurrency=8,
        requests=requests,
        warmup=1000,
        rss_every=max(requests // 50, 1),
        server_pid=server.process.pid,
    )


@dataclass(frozen=True)
class Workload:
    """The texts of the run and their token counts by the model's tokenizer."""

    mixed: list[str]
    mixed_counts: list[int]
    short: list[str]
    short_counts: list[int]


@dataclass(frozen=True)
class RobustnessSizes:
    """How much of each robustness row to run; `--quick` takes `QUICK_SIZES`."""

    ovms_requests: int = 300
    indexer_requests: int = 384
    overload_seconds: int = 20
    flood_seconds: float = 10.0
    drain_load_seconds: float = 3.0
    calibration_requests: int = 600


QUICK_SIZES = RobustnessSizes(
    ovms_requests=100,
    indexer_requests=128,
    overload_seconds=5,
    flood_seconds=5.0,
    drain_load_seconds=1.5,
    calibration_requests=200,
)


OVERLOAD_CLIENT_TIMEOUT_S = 300


LATENCY_BOUND_S = 1


DRAIN_FLAGS = ("--drain-delay", "2", "--shutdown-timeout", "10")


def no_retry(
    server: Server,
    texts: list[str],
    counts: list[int],
    *,
    clients: int,
    inputs: int,
    requests: int,
    label: str,
    path: str = "/v1/embeddings",
) -> Report:
    """`clients` closed-loop clients, `inputs` texts a request, no retries; prints its row."""
    settings = NoRetryLoad(
        url=root_of(server) + path,
        model=server.model,
        texts=texts,
        token_counts=counts,
        concurrency=clients,
        inputs=inputs,
        requests=requests,
    )
    report = run_no_retry(settings, f"{server.name} {label}")
    print(no_retry_table([report]).splitlines()[-1], flush=True)
    return report


def ovms_shape(server: Server, work: Workload, requests: int) -> Report:
    """The shape of OpenVINO Model Server's embeddings benchmark client: 100 requests in flight,
    16 mixed texts each, no retries, posted to the OVMS path /v3/embeddings."""
    return no_retry(
        server,
        work.mixed,
        work.mixed_counts,
        clients=100,
        inputs=16,
        requests=requests,
        label="OVMS shape: 100 in flight x 16 mixed",
        path="/v3/embeddings",
    )


def bounded_indexer(server: Server, work: Workload, requests: int) -> Report:
    """The heaviest bounded indexer we target: 128 requests in flight, 64 short texts each."""
    return no_retry(
        server,
        work.short,
        work.short_counts,
        clients=128,
        inputs=64,
        requests=requests,
        label="indexer: 128 in flight x 64 short",
    )


def calibrate(server: Server, work: Workload, requests: int) -> float:
    """Mixed req/s at 32 clients: the sustainable rate when the HTTP suite did not run."""
    report = load(
        server,
        work.mixed,
        work.mixed_counts,
        "calibration mixed c=32",
        concurrency=32,
        requests=requests,
        warmup=64,
    )
    return report.requests_per_s


def overload(
    server: Server, work: Workload, rate: float, *, seconds: int, label: str
) -> dict[str, Any]:
    """Open loop (Poisson arrivals) of mixed texts at `rate` for `seconds`, with a client timeout
    long enough to measure latency rather than cut it, while the server's RSS and queued tokens
    are sampled every 100 ms."""
    with ServerSampler(server.process.pid, root_of(server)) as sampler:
        report = load(
            server,
            work.mixed,
            work.mixed_counts,
            f"overload {rate:.0f}/s open, {label}",
            mode="open",
            rate=rate,
            requests=int(rate * seconds),
            warmup=10,
            timeout_s=OVERLOAD_CLIENT_TIMEOUT_S,
        )
    return {"label": label, "report": report, **sampler.peaks()}


def health_during_flood(server: Server, work: Workload, seconds: float) -> dict[str, Any]:
    """8 clients send the worst cheap-to-send bodies in a loop for `seconds` while /health is
    probed every 20 ms on its own connection."""
    bodies = worst_bodies(server.model, auto.payload_limit(ServerSettings()), work.mixed)
    result = run_flood(root_of(server), server.embeddings_url, bodies, clients=8, seconds=seconds)
    health = result["health"]
    print(
        f"flood {result['seconds']} s: /health p50 {health['p50']} ms, p99 {health['p99']} ms, "
        f"max {health['max']} ms, {health['over_100ms']} over 100 ms; {result['statuses']}",
        flush=True,
    )
    return result


def drain_on_sigterm(cache_dir: Path, work: Workload, load_seconds: float) -> dict[str, Any]:
    """16 closed-loop clients of mixed texts and a /health poller (every 50 ms) around a SIGTERM
    to a server started with --drain-delay 2 --shutdown-timeout 10."""
    with embedserve_server(cache_dir, *DRAIN_FLAGS) as server:
        payloads = [
            orjson.dumps({"model": server.model, "input": [text]}) for text in work.mixed[:500]
        ]
        result = run_drain(
            server.process,
            root_of(server),
            server.embeddings_url,
            payloads,
            clients=16,
            load_s=load_seconds,
            wait_s=2 + 10 + 15,
        )
    print(f"drain: {result}", flush=True)
    return {"flags": " ".join(DRAIN_FLAGS), **result}


def robustness(
    cache_dir: Path, work: Workload, sizes: RobustnessSizes, sustainable: float | None
) -> dict[str, Any]:
    """Every robustness row, each server at default flags unless the row says otherwise.
    `sustainable`: the best mixed req/s measured earlier (None: measured here at 32 clients)."""
    out: dict[str, Any] = {
        "sizes": dataclasses.asdict(sizes),
        "rate_from": "best mixed req/s of the HTTP suite",
    }
    if sustainable is None:  # on a server of its own, so that the rows below start afresh
        with embedserve_server(cache_dir) as server:
            sustainable = calibrate(server, work, sizes.calibration_requests)
        out["rate_from"] = "mixed req/s at 32 clients in a calibration run"
    out["sustainable_req_s"] = sustainable
    with embedserve_server(cache_dir) as server:
        out["overload"] = [
            overload(
                server,
                work,
                4 * sustainable,
                seconds=sizes.overload_seconds,
                label="defaults, no latency bound",
            )
        ]
        out["ovms"] = ovms_shape(server, work, sizes.ovms_requests)
        out["indexer"] = bounded_indexer(server, work, sizes.indexer_requests)
        out["flood"] = health_during_flood(server, work, sizes.flood_seconds)
    with embedserve_server(cache_dir, "--max-queue-seconds", str(LATENCY_BOUND_S)) as server:
        out["overload"].append(
            overload(
                server,
                work,
                4 * sustainable,
                seconds=sizes.overload_seconds,
                label=f"--max-queue-seconds {LATENCY_BOUND_S}",
            )
        )
    out["drain"] = drain_on_sigterm(cache_dir, work, sizes.drain_load_seconds)
    return out

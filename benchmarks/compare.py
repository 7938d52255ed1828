"""Every comparison of issue 3 in one run, on the same machine and texts.

(a) sentence-transformers `encode` in-process, (b) our ONNX backend in-process with our batching
(the raw ceiling), (c) embedserve over HTTP at 1, 8, 32 and 128 clients (with --soak, RSS over a
long run), (d) Infinity over HTTP with the same load generator (installed in its own virtualenv),
then (e) robustness rows: the OVMS benchmark client's shape and a 128 x 64 indexer without
retries, open-loop overload at 4x the sustainable rate (defaults, and --max-queue-seconds 1),
/health latency during a flood of worst-case bodies, and the drain on SIGTERM. Writes
benchmarks/results/<stamp>.json and benchmarks/results/latest.md (with --robustness-only:
<stamp>-robustness.json and robustness-latest.md, so a full report is not overwritten).

    .venv/bin/python benchmarks/compare.py [--quick] [--skip-infinity] [--soak 100000]
    .venv/bin/python benchmarks/compare.py --robustness-only [--quick]   # (e) alone, minutes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from robustness import NoRetryLoad, ServerSampler, run_drain, run_flood, run_no_retry, worst_bodies

from embedserve.bench.loadgen import LoadSettings, run_load, server_root
from embedserve.bench.report import Report, markdown_table
from embedserve.bench.workloads import generate_texts
from embedserve.models import BUNDLED_MODEL_ID, bundled_model_path
from embedserve.postprocess import finalize
from embedserve.runner import ModelRunner
from embedserve.scheduler.batching import select_batch
from embedserve.settings import ModelSettings, ServerSettings, auto, default_cache_dir
from embedserve.testing import free_port, served_vectors

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
INFINITY_VENV = HERE / ".infinity-venv"
INFINITY_VERSION = "0.0.78"
CONCURRENCY = (1, 8, 32, 128)


def timed_runs(fn: Callable[[], object], runs: int, warmups: int) -> list[float]:
    """Wall time of each of `runs` calls of `fn`, after `warmups` untimed ones."""
    for _ in range(warmups):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `fn` over `repeats` runs (after one untimed warm-up)."""
    times = timed_runs(fn, repeats, warmups=1)
    return statistics.median(times), times


def single_latency_ms(fn: Callable[[], object], calls: int = 200) -> float:
    """Median latency of one call, in ms."""
    return statistics.median(timed_runs(fn, calls, warmups=10)) * 1000


# --- (a) and (b): in-process ---------------------------------------------------------------


def bench_sentence_transformers(
    mixed: list[str], short: list[str], tokens: int, repeats: int
) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    seconds, runs = median_time(
        lambda: model.encode(mixed, batch_size=32, normalize_embeddings=True), repeats
    )
    latency = single_latency_ms(lambda: model.encode([short[0]], normalize_embeddings=True))
    reference = model.encode(mixed[:200], normalize_embeddings=True)
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "_reference": reference,
    }


def bench_raw_backend(
    mixed: list[str], short: list[str], tokens: int, repeats: int, cache_dir: Path
) -> dict[str, Any]:
    """The executor alone (the server's batch selection, no queue, no HTTP)."""
    settings = ModelSettings(backend="onnx")
    limits = settings.limits
    runner = ModelRunner.from_settings(settings, cache_dir)
    runner.load()
    executor, spec, tokenizer = runner.executor, runner.spec, runner.tokenizer
    assert executor is not None
    max_padding = auto.max_padding(limits, settings.device)

    def embed(texts: list[str]) -> np.ndarray:
        ids = tokenizer.encode(texts)
        out = np.empty((len(ids), spec.output_dimensions), dtype=np.float32)
        remaining = list(range(len(ids)))
        while remaining:  # the scheduler's batch selection over the whole set
            chosen = select_batch(
                [len(ids[i]) for i in remaining],
                max_batch_tokens=limits.max_batch_tokens,
                max_batch_size=limits.max_batch_size,
                window=len(remaining),
                max_padding=max_padding,
            )
            rows = [remaining[p] for p in chosen]
            pooled = executor.run([ids[r] for r in rows]).vectors
            out[rows] = finalize(pooled, dimensions=None, normalize=spec.normalize)
            taken = set(chosen)
            remaining = [r for p, r in enumerate(remaining) if p not in taken]
        return out

    seconds, runs = median_time(lambda: embed(mixed), repeats)
    latency = single_latency_ms(lambda: embed([short[0]]))
    vectors = embed(mixed[:200])
    runner.close()
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "max_batch_tokens": limits.max_batch_tokens,
        "_vectors": vectors,
    }


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    embeddings_url: str
    model: str
    log: Path


@contextlib.contextmanager
def running(
    name: str,
    command: list[str],
    port: int,
    *,
    path: str,
    model: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    log = RESULTS / f".{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    server = Server(name, process, f"http://127.0.0.1:{port}{path}", model, log)
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def embedserve_server(cache_dir: Path, *extra: str) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port)]
    command += ["--cache-dir", str(cache_dir), "--log-level", "warning", *extra]
    return running("embedserve", command, port, path="/v1/embeddings", model=BUNDLED_MODEL_ID)


def ensure_infinity() -> Path:
    """Infinity in its own virtualenv, torch pinned first so pip keeps the CPU build."""
    binary = INFINITY_VENV / "bin" / "infinity_emb"
    if binary.exists():
        return INFINITY_VENV / "bin"
    subprocess.run([sys.executable, "-m", "venv", str(INFINITY_VENV)], check=True)
    pip = [str(INFINITY_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"infinity-emb[server,optimum]=={INFINITY_VERSION}"], check=True)
    return INFINITY_VENV / "bin"


def infinity_server(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    """Infinity's fastest CPU engine (optimum = ONNX Runtime) on a copy of the same directory.

    Infinity needs an ONNX file next to the model and, with optimum 2.x, a relative model path
    (it passes the absolute file path where optimum expects a name), hence cwd + `--model-id .`.
    """
    bin_dir = ensure_infinity()
    model = workdir / "model"
    if not (model / "model.onnx").exists():
        shutil.copytree(bundled_model_path(), model, dirs_exist_ok=True)
        export = workdir / "onnx"
        subprocess.run(
            [
                str(bin_dir / "optimum-cli"),
                "export",
                "onnx",
                "--model",
                str(model),
                "--task",
                "feature-extraction",
                str(export),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        shutil.copy(export / "model.onnx", model / "model.onnx")
    port = free_port()
    command = [
        str(bin_dir / "infinity_emb"),
        "v2",
        "--model-id",
        ".",
        "--served-model-name",
        "all-MiniLM-L6-v2",
        "--engine",
        "optimum",
        "--device",
        "cpu",
        "--pooling-method",
        "mean",
        "--port",
        str(port),
    ]
    env = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    return running(
        "infinity", command, port, path="/embeddings", model="all-MiniLM-L6-v2", cwd=model, env=env
    )


# --- (c) and (d): over HTTP ------------------------------------------------------------------


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


# --- (e) robustness --------------------------------------------------------------------------


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


def root_of(server: Server) -> str:
    """`http://127.0.0.1:port` of a server."""
    return server_root(server.embeddings_url)


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


# --- report ----------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


Target = tuple[str, str, str]
FAILURES = ("timeout", "error", "reset", "refused", "bad_response")


def failures(statuses: dict[str, int]) -> int:
    """5xx answers, timeouts and connection failures: what no row may show."""
    return sum(n for status, n in statuses.items() if status in FAILURES or status[0] == "5")


def counts(statuses: dict[str, int]) -> str:
    """`200: 12, 429: 3`, or `none`."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none"


def success_rate(report: Report) -> str:
    """200s / sent, in percent."""
    return f"{100 * report.ok / report.requests:.1f}%" if report.requests else "n/a"


def no_retry_table(reports: list[Report]) -> str:
    """One row per no-retry run: success rate and the non-200 statuses first."""
    lines = [
        "| run | sent | success | non-200 | req/s | tokens/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        ms = r.latency_ms
        lines.append(
            f"| {r.label} | {r.requests} | {success_rate(r)} | {counts(r.errors)} "
            f"| {r.requests_per_s:.1f} | {r.tokens_per_s:.0f} | {ms['p50']:.0f} | {ms['p99']:.0f} "
            f"| {ms['max']:.0f} |"
        )
    return "\n".join(lines)


def render_throughput(result: dict[str, Any]) -> list[str]:
    """(a)-(d): in-process and over-HTTP throughput, and the soak."""
    st, raw, ours, inf = result["st"], result["raw"], result["embedserve"], result.get("infinity")
    lines = [
        "",
        "In-process (median of {} runs over the mixed set):".format(result["repeats"]),
        "",
        "| run | tokens/s | inputs/s | one short text, ms |",
        "|---|---|---|---|",
        f"| (a) sentence-transformers encode(batch_size=32) | {st['tokens_per_s']:.0f} "
        f"| {st['inputs_per_s']:.1f} | {st['single_short_ms']:.2f} |",
        f"| (b) embedserve ONNX backend + batching, no HTTP | {raw['tokens_per_s']:.0f} "
        f"| {raw['inputs_per_s']:.1f} | {raw['single_short_ms']:.2f} |",
        "",
        "Over HTTP, same load generator on the same 2 cores (tokens counted by the model's "
        "tokenizer on the client side):",
        "",
        markdown_table(list(ours["rows"].values()) + (list(inf["rows"].values()) if inf else [])),
    ]
    if "soak" in result:
        rss = result["soak"].rss_mb
        lines += [
            "",
            markdown_table([result["soak"]]),
            f"RSS MiB after warm-up {rss[0]}, at the end {rss[-1]}, max {max(rss)} "
            f"({(rss[-1] / rss[0] - 1) * 100:+.1f}%).",
        ]
    return lines


def throughput_targets(result: dict[str, Any]) -> list[Target]:
    """Summary rows of (a)-(d)."""
    st, raw, ours, inf = result["st"], result["raw"], result["embedserve"], result.get("infinity")
    best = max(r.tokens_per_s for k, r in ours["rows"].items() if k.startswith("mixed"))
    targets = [
        ("HTTP saturation / raw backend (b)", ratio(best, raw["tokens_per_s"]), ">= 0.90x"),
        ("HTTP saturation / sentence-transformers (a)", ratio(best, st["tokens_per_s"]), ">= 1.2x"),
        (
            "short c=8 / short c=1 requests/s",
            ratio(
                ours["rows"]["short c=8"].requests_per_s, ours["rows"]["short c=1"].requests_per_s
            ),
            ">= 2x",
        ),
        (
            "single short p50 over HTTP - (b) single call",
            f"{ours['rows']['short c=1'].latency_ms['p50'] - raw['single_short_ms']:+.2f} ms",
            "<= +2 ms",
        ),
        ("embedserve min cosine to sentence-transformers", f"{ours['min_cosine_to_st']:.6f}", ""),
    ]
    if inf:
        for key, row in ours["rows"].items():
            other = inf["rows"][key]
            targets.append(
                (
                    f"embedserve / Infinity, {key} req/s",
                    ratio(row.requests_per_s, other.requests_per_s),
                    "> 1x",
                )
            )
        targets.append(
            ("Infinity min cosine to sentence-transformers", f"{inf['min_cosine_to_st']:.6f}", "")
        )
    elif "infinity_error" in result:
        targets.append(("Infinity", "not run: " + result["infinity_error"], ""))
    return targets


def render_no_retry(rob: dict[str, Any]) -> list[str]:
    """The OVMS-shape and 128 x 64 rows, with their note."""
    return [
        "",
        "Clients that never retry (e) (default flags):",
        "",
        no_retry_table([rob["ovms"], rob["indexer"]]),
        "",
        "Each client sends its next request as soon as the last is answered and never retries "
        "or backs off, as OpenVINO Model Server's embeddings benchmark client does, so any 429 "
        "is a failure. Success = 200s / sent; latency and throughput over the 200s. The OVMS "
        "shape posts to /v3/embeddings, as that client does.",
    ]


def bound_held(entry: dict[str, Any]) -> bool:
    """With a latency bound: p99 of the admitted within it, and only 200s and 429s."""
    report: Report = entry["report"]
    within = report.latency_ms["p99"] <= LATENCY_BOUND_S * 1000
    return within and set(report.errors) <= {"429"}


def render_overload(rob: dict[str, Any]) -> list[str]:
    """The two open-loop overload rows, the server-side samples, and their note."""
    entries, seconds = rob["overload"], rob["sizes"]["overload_seconds"]
    rate = 4 * rob["sustainable_req_s"]
    lines = [
        "",
        f"Overload (e): open loop (Poisson arrivals) at 4x the sustainable rate, {rate:.0f}/s "
        f"({rob['rate_from']}: {rob['sustainable_req_s']:.1f}), for {seconds} s; client "
        f"timeout {OVERLOAD_CLIENT_TIMEOUT_S} s. Each row on a fresh server:",
        "",
        markdown_table([e["report"] for e in entries]),
        "",
        "| run | sent | answered | RSS MiB before | RSS MiB peak | queued tokens peak |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        report = e["report"]
        answered = counts({"200": report.ok, **report.errors})
        lines.append(
            f"| {e['label']} | {report.requests} | {answered} | {e['rss_before_mb']} "
            f"| {e['rss_peak_mb']} | {e['queued_tokens_peak']:.0f} |"
        )
    bounded = entries[-1]
    held = "held" if bound_held(bounded) else "NOT held"
    lines += [
        "",
        "Latency over the admitted (200) requests. At defaults there is no latency bound: "
        "requests wait in the queue up to its 4,194,304 tokens and the 512 concurrent requests "
        "(beyond those: 429), so latency grows with the backlog; RSS (from /proc) and "
        "`embedserve_queued_tokens` (from /metrics) are sampled every 100 ms during the run. "
        f"With --max-queue-seconds {LATENCY_BOUND_S} a request whose estimated wait passes "
        f"{LATENCY_BOUND_S} s is refused with 429; the bound {held} (p99 of the admitted "
        f"{bounded['report'].latency_ms['p99']:.0f} ms, answers: "
        f"{counts({'200': bounded['report'].ok, **bounded['report'].errors})}).",
    ]
    return lines


def render_flood(flood: dict[str, Any]) -> list[str]:
    """The worst-case bodies' statuses and /health's latency beside them, with their note."""
    health = flood["health"]
    lines = [
        "",
        f"/health during a flood (e): {flood['clients']} clients sending the bodies below in "
        f"turn for {flood['seconds']:.1f} s (default flags):",
        "",
        "| body | bytes | answers |",
        "|---|---|---|",
    ]
    for name, statuses in flood["statuses"].items():
        lines.append(f"| {name} | {flood['body_bytes'][name]:,} | {counts(statuses)} |")
    lines += [
        "",
        "| /health probes | p50 ms | p99 ms | max ms | over 100 ms | answers |",
        "|---|---|---|---|---|---|",
        f"| {health['probes']} | {health['p50']:.1f} | {health['p99']:.1f} | {health['max']:.1f} "
        f"| {health['over_100ms']} | {counts(health['statuses'])} |",
        "",
        "A separate client GETs /health every 20 ms on its own connection while the flood runs. "
        "The bodies cost the client nothing to send and each is at or under the payload limit: "
        "they must be answered 4xx (or 200), never 5xx, and must not stall the event loop that "
        "answers the probes (target: /health p99 <= 100 ms).",
    ]
    return lines


def seconds_or_never(value: float | None) -> str:
    """`+1.234 s`, or `never`."""
    return "never" if value is None else f"+{value:.3f} s"


def render_drain(drain: dict[str, Any]) -> list[str]:
    """The SIGTERM timeline and what the clients saw, with its note."""
    rows = [
        ("SIGTERM -> first /health 503", seconds_or_never(drain["first_health_503_s"]), "<= 0.2 s"),
        (
            "last request answered 200 was sent at",
            seconds_or_never(drain["last_200_sent_after_s"]),
            "~ drain delay (2 s)",
        ),
        (
            "listener refused connections from",
            seconds_or_never(drain["listener_closed_s"]),
            "~ drain delay (2 s)",
        ),
        ("process exited at", seconds_or_never(drain["exit_after_s"]), "< 2 + 10 s"),
        ("exit code", str(drain["exit_code"]), "0"),
        ("requests answered before SIGTERM", str(drain["requests_before"]), ""),
        ("requests in flight at SIGTERM", counts(drain["in_flight_at_sigterm"]), "all 200"),
        ("requests sent after SIGTERM", counts(drain["sent_after_sigterm"]), "200, then refused"),
        ("dropped (reset, timeout, error)", str(drain["dropped"]), "0"),
    ]
    return [
        "",
        f"Drain on SIGTERM (e): `embedserve serve {drain['flags']}`, 16 closed-loop clients of "
        "one mixed text each and a /health poller every 50 ms; times from the SIGTERM:",
        "",
        "| measure | value | expected |",
        "|---|---|---|",
        *(f"| {name} | {value} | {target} |" for name, value, target in rows),
        "",
        "Readiness must turn 503 at once while requests are still served for the drain delay "
        "(so a load balancer moves traffic away before anything is refused); then the listener "
        "closes (new connections are refused), in-flight work finishes, and the process exits "
        "0. A request dropped mid-way (connection reset, no answer) would be lost work.",
    ]


def render_robustness(rob: dict[str, Any]) -> list[str]:
    """Every (e) table with its note."""
    return [
        *render_no_retry(rob),
        *render_overload(rob),
        *render_flood(rob["flood"]),
        *render_drain(rob["drain"]),
    ]


def robustness_targets(rob: dict[str, Any]) -> list[Target]:
    """Summary rows of (e)."""
    ovms, indexer, flood, drain = rob["ovms"], rob["indexer"], rob["flood"], rob["drain"]
    defaults, bounded = rob["overload"][0]["report"], rob["overload"][-1]["report"]
    flood_failures = sum(failures(s) for s in flood["statuses"].values())
    bound = f"--max-queue-seconds {LATENCY_BOUND_S}"
    return [
        ("OVMS shape (100 x 16 mixed, no retries): success rate", success_rate(ovms), "100%"),
        (
            "indexer 128 x 64 short (no retries): success rate",
            f"{success_rate(indexer)} (p99 {indexer.latency_ms['p99']:.0f} ms)",
            "100%",
        ),
        (
            "overload at defaults: 5xx + timeouts + connection errors",
            str(failures(defaults.errors)),
            "0",
        ),
        ("overload at defaults: p99 of admitted", f"{defaults.latency_ms['p99']:.0f} ms", ""),
        (
            f"overload with {bound}: p99 of admitted",
            f"{bounded.latency_ms['p99']:.0f} ms",
            f"<= {LATENCY_BOUND_S * 1000} ms",
        ),
        (
            f"overload with {bound}: 5xx + timeouts + connection errors",
            str(failures(bounded.errors)),
            "0",
        ),
        ("/health p99 during the flood", f"{flood['health']['p99']:.1f} ms", "<= 100 ms"),
        ("flood: 5xx + timeouts + connection errors", str(flood_failures), "0"),
        ("drain: exit code", str(drain["exit_code"]), "0"),
        (
            "drain: SIGTERM -> first /health 503",
            seconds_or_never(drain["first_health_503_s"]),
            "<= 0.2 s",
        ),
        ("drain: dropped connections", str(drain["dropped"]), "0"),
    ]


def render(result: dict[str, Any]) -> str:
    """The Markdown report: whichever sections ran, then the summary of measures and targets."""
    lines = [f"Machine: {result['machine']}. Model: {BUNDLED_MODEL_ID}. Texts: {result['texts']}."]
    targets: list[Target] = []
    if "st" in result:
        lines += render_throughput(result)
        targets += throughput_targets(result)
    if "robustness" in result:
        lines += render_robustness(result["robustness"])
        targets += robustness_targets(result["robustness"])
    lines += ["", "| measure | value | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in targets]
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    if isinstance(value, Report):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def throughput(
    args: argparse.Namespace, work: Workload, cache_dir: Path, result: dict[str, Any]
) -> float:
    """(a)-(d) into `result`; returns the best mixed req/s of embedserve over HTTP."""
    tokens = sum(work.mixed_counts)
    print("(a) sentence-transformers ...", flush=True)
    result["st"] = bench_sentence_transformers(work.mixed, work.short, tokens, args.repeats)
    reference = result["st"]["_reference"]
    print("(b) raw backend ...", flush=True)
    result["raw"] = bench_raw_backend(work.mixed, work.short, tokens, args.repeats, cache_dir)
    suite = {
        "mixed": work.mixed,
        "mixed_counts": work.mixed_counts,
        "short": work.short,
        "short_counts": work.short_counts,
        "requests": len(work.mixed),
        "reference": reference,
    }
    print("(c) embedserve over HTTP ...", flush=True)
    with embedserve_server(cache_dir) as server:
        result["embedserve"] = http_suite(server, **suite)
        if args.soak:
            result["soak"] = soak(server, work.short, work.short_counts, args.soak)
    if not args.skip_infinity:
        print("(d) Infinity over HTTP ...", flush=True)
        try:
            with tempfile.TemporaryDirectory() as tmp, infinity_server(Path(tmp)) as server:
                result["infinity"] = http_suite(server, **suite)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            result["infinity_error"] = str(exc)[-500:]
    rows = result["embedserve"]["rows"]
    return float(max(r.requests_per_s for k, r in rows.items() if k.startswith("mixed")))


def parse_args() -> argparse.Namespace:
    """The command line; --quick shrinks every part."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="mixed texts (5-120 words)")
    parser.add_argument("--repeats", type=int, default=3, help="in-process runs (median)")
    parser.add_argument(
        "--quick", action="store_true", help="500 texts, 1 repeat, smaller robustness rows"
    )
    parser.add_argument("--skip-infinity", action="store_true")
    parser.add_argument("--soak", type=int, default=0, help="requests of the soak run (0: none)")
    parser.add_argument(
        "--overload-seconds", type=int, default=None, help="default: 20 (5 with --quick)"
    )
    parser.add_argument(
        "--robustness-only",
        action="store_true",
        help="run only (e), the robustness rows (a few minutes); writes "
        "results/<stamp>-robustness.json and results/robustness-latest.md",
    )
    args = parser.parse_args()
    if args.quick:
        args.texts, args.repeats = 500, 1
    return args


def main() -> int:
    args = parse_args()
    sizes = QUICK_SIZES if args.quick else RobustnessSizes()
    if args.overload_seconds is not None:
        sizes = dataclasses.replace(sizes, overload_seconds=args.overload_seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_dir = default_cache_dir()
    mixed = generate_texts("mixed", args.texts)
    short = generate_texts("short", args.texts)
    tokenizer = ModelRunner.from_settings(ModelSettings(), cache_dir).tokenizer
    work = Workload(
        mixed=mixed,
        mixed_counts=[len(ids) for ids in tokenizer.encode(mixed)],
        short=short,
        short_counts=[len(ids) for ids in tokenizer.encode(short)],
    )
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "texts": f"{len(mixed)} mixed (5-120 words, {sum(work.mixed_counts)} tokens, seed 0) "
        f"and {len(short)} short (10 tokens)",
        "repeats": args.repeats,
    }
    sustainable = None if args.robustness_only else throughput(args, work, cache_dir, result)
    print("(e) robustness ...", flush=True)
    result["robustness"] = robustness(cache_dir, work, sizes, sustainable)
    suffix = "-robustness" if args.robustness_only else ""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}{suffix}.json").write_text(json.dumps(plain(result), indent=2) + "\n")
    table = render(result)
    (RESULTS / ("robustness-latest.md" if args.robustness_only else "latest.md")).write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
